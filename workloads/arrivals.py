"""Arrival processes: when requests arrive. Open-loop processes draw all times up front (vectorised);
a closed loop is only a spec, since a user's next request depends on when the previous one finishes.

Each process is a small frozen dataclass registered in `ARRIVALS` under its `name` (a workload file's
`[arrival] kind`); `parameters` are the keys its table takes. A process whose parameters include
`rate_per_s` is open-loop and rate-driven, so it is also a choice of `--arrival` (with `--rate`, and
`--cv` where it takes `cv`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import require_number
from simulator.registry import Registry
from workloads.requests import DRAW_CHUNK

ARRIVALS = Registry("arrival process")
MAX_USERS = 10_000_000
# The closed-loop user counts a concurrency sweep tries by default (`simulator.pareto`): 1, r, r^2 ... up to
DEFAULT_MAX_CONCURRENCY = 1024       # users (InferenceX's sweeps stop well below)
DEFAULT_CONCURRENCY_RATIO = 2.0      # r
MIN_CONCURRENCY_RATIO = 1.1          # the densest r accepted (`simulator.pareto` says why)


@ARRIVALS.register
@dataclass(frozen=True)
class Poisson:
    """Exponential gaps at `rate_per_s`."""
    name = "poisson"
    parameters = ("rate_per_s",)

    rate_per_s: float

    def __post_init__(self):
        require_number("arrival.rate_per_s", self.rate_per_s, low=0, low_inclusive=False, high=1e9)

    def times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return np.cumsum(rng.exponential(1.0 / self.rate_per_s, count))

    def times_share(self, count: int, rng: np.random.Generator, share) -> np.ndarray:
        """`times` at the positions `share` keeps, a chunk of gaps at a time in one buffer: slot 0 carries
        the running sum over, added in the order cumsum adds, and each gap is the standard exponential
        times the scale, as `rng.exponential` makes it."""
        kept, buffer = [], np.zeros(min(count, DRAW_CHUNK) + 1)
        for size, where in share.chunks(count):
            chunk = buffer[:size + 1]
            rng.standard_exponential(out=chunk[1:])
            chunk[1:] *= 1.0 / self.rate_per_s
            np.cumsum(chunk, out=chunk)
            kept.append(chunk[1:][where])
            buffer[0] = chunk[size]
        return np.concatenate(kept)


@ARRIVALS.register
@dataclass(frozen=True)
class Gamma:
    """Gamma-distributed gaps with mean 1/rate and coefficient of variation `cv` (cv = 1 is Poisson;
    cv > 1 is bursty): shape k = 1/cv^2, scale = cv^2/rate."""
    name = "gamma"
    parameters = ("rate_per_s", "cv")

    rate_per_s: float
    cv: float

    def __post_init__(self):
        require_number("arrival.rate_per_s", self.rate_per_s, low=0, low_inclusive=False, high=1e9)
        require_number("arrival.cv", self.cv, low=0, low_inclusive=False, high=100)

    def times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        shape = 1.0 / self.cv ** 2
        return np.cumsum(rng.gamma(shape, 1.0 / (self.rate_per_s * shape), count))


@ARRIVALS.register
@dataclass(frozen=True)
class Constant:
    """Evenly spaced arrivals, the first at 1/rate."""
    name = "constant"
    parameters = ("rate_per_s",)

    rate_per_s: float

    def __post_init__(self):
        require_number("arrival.rate_per_s", self.rate_per_s, low=0, low_inclusive=False, high=1e9)

    def times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return np.arange(1, count + 1, dtype=float) / self.rate_per_s


@ARRIVALS.register
@dataclass(frozen=True)
class Offline:
    """Everything queued at t = 0 (MLPerf Offline)."""
    name = "offline"
    parameters = ()

    rate_per_s: float = float("inf")

    def times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(count)

    def times_share(self, count: int, rng: np.random.Generator, share) -> np.ndarray:
        return self.times(share.count(count), rng)


@ARRIVALS.register
@dataclass(frozen=True)
class ClosedLoop:
    """`users` concurrent users; each sends its next request `think_time_s` after the previous one
    finishes (how vLLM's benchmark with max concurrency and InferenceMAX runs measure)."""
    name = "closed-loop"
    parameters = ("users", "think_time_s")

    users: int
    think_time_s: float = 0.0

    def __post_init__(self):
        require_number("arrival.users", self.users, low=1, high=MAX_USERS, integer=True)
        require_number("arrival.think_time_s", self.think_time_s, low=0, high=1e6)


def rate_driven() -> list[str]:
    """Processes `arrival` offers: open loop, driven by a request rate."""
    return [name for name, cls in ARRIVALS.items() if "rate_per_s" in cls.parameters]
