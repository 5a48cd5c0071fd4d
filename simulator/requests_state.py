"""Per-request state of one simulation, kept in flat Python lists for speed and turned into numpy
arrays for metrics at the end. One row per request; the engine and every replica share it."""
from __future__ import annotations

import math

import numpy as np


class RequestTable:
    """Arrival, lengths and what happened to each request (first token, finish, preemptions, drops)."""

    def __init__(self, arrival_s, input_tokens, output_tokens):
        self.arrival_s = [float(x) for x in arrival_s]
        self.input_tokens = [int(x) for x in input_tokens]
        self.output_tokens = [int(x) for x in output_tokens]
        count = len(self.input_tokens)
        self.first_token_s = [math.nan] * count
        self.finish_s = [math.nan] * count
        self.generated = [0] * count        # tokens produced so far (kept across preemption)
        self.preemptions = [0] * count
        self.engine = [-1] * count
        self.epoch = [0] * count            # bumped when a request leaves an engine early (lazy heap deletion)
        self.dropped: dict[int, str] = {}   # request id -> reason

    def __len__(self) -> int:
        return len(self.input_tokens)

    def append(self, arrival_s: float, input_tokens: int, output_tokens: int) -> int:
        """Add one request (closed-loop users create theirs as they go); returns its id."""
        self.arrival_s.append(arrival_s)
        self.input_tokens.append(input_tokens)
        self.output_tokens.append(output_tokens)
        for column, value in ((self.first_token_s, math.nan), (self.finish_s, math.nan), (self.generated, 0),
                              (self.preemptions, 0), (self.engine, -1), (self.epoch, 0)):
            column.append(value)
        return len(self.input_tokens) - 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {"arrival_s": np.asarray(self.arrival_s, dtype=float),
                "input_tokens": np.asarray(self.input_tokens, dtype=np.int64),
                "output_tokens": np.asarray(self.output_tokens, dtype=np.int64),
                "first_token_s": np.asarray(self.first_token_s, dtype=float),
                "finish_s": np.asarray(self.finish_s, dtype=float),
                "preemptions": np.asarray(self.preemptions, dtype=np.int64),
                "engine": np.asarray(self.engine, dtype=np.int64)}
