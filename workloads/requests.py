"""A stream of requests as numpy arrays: arrival time, prompt length and output length, sorted by arrival."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import ConfigError

MAX_ARRIVAL_S = 1e9     # ~31 years: later times leave too few float digits for millisecond steps


@dataclass(frozen=True)
class Requests:
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __post_init__(self):
        arrival = np.asarray(self.arrival_s, dtype=float)
        inputs = np.asarray(self.input_tokens, dtype=np.int64)
        outputs = np.asarray(self.output_tokens, dtype=np.int64)
        if not (arrival.shape == inputs.shape == outputs.shape) or arrival.ndim != 1:
            raise ConfigError("requests: arrival_s, input_tokens and output_tokens must be 1-D arrays of one length")
        if arrival.size and (not np.all(np.isfinite(arrival)) or arrival.min() < 0 or arrival.max() > MAX_ARRIVAL_S):
            raise ConfigError(f"requests: arrival_s must be in [0, {MAX_ARRIVAL_S:g}]")
        if arrival.size and np.any(np.diff(arrival) < 0):
            raise ConfigError("requests: arrival_s must be sorted")
        if inputs.size and (inputs.min() < 1 or outputs.min() < 1):
            raise ConfigError("requests: input_tokens and output_tokens must be >= 1")
        object.__setattr__(self, "arrival_s", arrival)
        object.__setattr__(self, "input_tokens", inputs)
        object.__setattr__(self, "output_tokens", outputs)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def total_output_tokens(self) -> int:
        return int(self.output_tokens.sum())

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0


@dataclass(frozen=True)
class ClosedLoopRequests:
    """The requests closed-loop users send in turn: `arrival` (a ClosedLoop: how many users, how long
    they think) and the lengths of every request, drawn up front; arrival times come from the run."""

    arrival: object          # workloads.arrivals.ClosedLoop
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __post_init__(self):
        inputs = np.asarray(self.input_tokens, dtype=np.int64)
        outputs = np.asarray(self.output_tokens, dtype=np.int64)
        if inputs.shape != outputs.shape or inputs.ndim != 1 or inputs.size == 0:
            raise ConfigError("closed loop: input and output length arrays must be non-empty and equal in size")
        if inputs.min() < 1 or outputs.min() < 1:
            raise ConfigError("closed loop: input_tokens and output_tokens must be >= 1")
        object.__setattr__(self, "input_tokens", inputs)
        object.__setattr__(self, "output_tokens", outputs)

    def __len__(self) -> int:
        return int(self.input_tokens.size)
