"""A stream of requests as numpy arrays: arrival time, prompt length and output length, sorted by arrival."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import ConfigError

MAX_ARRIVAL_S = 1e9     # ~31 years: later times leave too few float digits for millisecond steps
DRAW_CHUNK = 1 << 18    # draws taken at a time when only a share of a long stream is kept


@dataclass(frozen=True)
class Share:
    """Which requests of a stream one simulated replica receives under round-robin routing: of every
    `period` consecutive requests (one per engine), the first `take` (replica 0's `take` pipeline
    engines). A stream drawn as a share holds only those, bit for bit the values the whole stream
    would hold at their positions."""

    period: int
    take: int

    def positions(self, start: int, stop: int) -> np.ndarray:
        """The kept positions in [start, stop), relative to `start`."""
        cycles = np.arange(start // self.period, -(-stop // self.period))
        kept = (cycles[:, None] * self.period + np.arange(self.take)).ravel()
        return kept[(kept >= start) & (kept < stop)] - start

    def count(self, total: int) -> int:
        """How many of a stream of `total` are kept."""
        cycles, rest = divmod(total, self.period)
        return cycles * self.take + min(rest, self.take)

    def pick(self, values: np.ndarray) -> np.ndarray:
        """The kept values of a whole stream."""
        return values[self.positions(0, len(values))]

    def chunks(self, count: int):
        """(chunk size, kept positions within it) over a stream of `count`, DRAW_CHUNK at a time (one
        empty chunk when `count` is 0)."""
        for start in range(0, max(count, 1), DRAW_CHUNK):
            stop = min(start + DRAW_CHUNK, count)
            yield stop - start, self.positions(start, stop)


def share_of(source, draw: str, count: int, rng: np.random.Generator, share: Share) -> np.ndarray:
    """`source.<draw>(count, rng)` (a length distribution's `sample`, an arrival process's `times`) at the
    positions `share` keeps, bit for bit, leaving `rng` where the whole draw leaves it. A source with a
    `<draw>_share` of its own draws a chunk at a time (memory of one chunk); any other draws all and
    picks."""
    own = getattr(source, f"{draw}_share", None)
    return own(count, rng, share) if own is not None else share.pick(getattr(source, draw)(count, rng))


@dataclass(frozen=True)
class Requests:
    """`share`: set when the arrays hold only one replica's share of a longer stream (`Share`)."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    share: Share | None = None

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
