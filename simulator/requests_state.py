"""Per-request state of one simulation, kept in typed flat arrays (`array.array`: Python-speed indexing,
8 bytes per value instead of a list slot plus a boxed float) and viewed as numpy arrays for metrics at the
end without a copy. One row per request; the engine and every replica share it."""
from __future__ import annotations

import math
from array import array

import numpy as np


class RequestTable:
    """Arrival, lengths and what happened to each request (first token, finish, preemptions, drops)."""

    def __init__(self, arrival_s, input_tokens, output_tokens):
        self.arrival_s = array("d", np.asarray(arrival_s, dtype=float).tobytes())
        self.input_tokens = array("q", np.asarray(input_tokens, dtype=np.int64).tobytes())
        self.output_tokens = array("q", np.asarray(output_tokens, dtype=np.int64).tobytes())
        count = len(self.input_tokens)
        self.first_token_s = array("d", [math.nan]) * count
        self.finish_s = array("d", [math.nan]) * count
        self.generated = array("q", [0]) * count        # tokens produced so far (kept across preemption)
        self.preemptions = array("q", [0]) * count
        self.engine = array("q", [-1]) * count
        self.epoch = array("q", [0]) * count            # bumped when a request leaves an engine early (lazy heap deletion)
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
        """Numpy copies of the columns (copies: the table may grow again in a closed loop)."""
        return {"arrival_s": np.array(self.arrival_s, dtype=float),
                "input_tokens": np.array(self.input_tokens, dtype=np.int64),
                "output_tokens": np.array(self.output_tokens, dtype=np.int64),
                "first_token_s": np.array(self.first_token_s, dtype=float),
                "finish_s": np.array(self.finish_s, dtype=float),
                "preemptions": np.array(self.preemptions, dtype=np.int64),
                "engine": np.array(self.engine, dtype=np.int64)}
