"""A workload described as data: arrival process, prompt and output lengths, and how many requests (or
for how long), or a trace to replay. Built from TOML, a dict, or CLI flags (workloads/spec_inputs.py);
`build(seed)` draws it."""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from simulator.errors import ConfigError, require_number
from workloads.arrivals import ClosedLoop, Offline
from workloads.lengths import Fixed
from workloads.requests import MAX_ARRIVAL_S, Requests
from workloads.traces import load_trace

MAX_REQUESTS = 50_000_000
DURATION_TRIES = 64     # draws of a duration's first arrival before giving up on one within it


@dataclass(frozen=True)
class WorkloadSpec:
    arrival: object = Offline()
    input_lengths: object = Fixed(1024)
    output_lengths: object = Fixed(256)
    requests: int | None = None
    duration_s: float | None = None
    trace: str | None = None

    def __post_init__(self):
        if self.trace is not None:
            return
        if self.requests is not None and self.duration_s is not None:
            raise ConfigError("workload: give requests or duration_s, not both (one of them would be ignored)")
        if self.requests is not None:
            require_number("requests", self.requests, low=1, high=MAX_REQUESTS, integer=True)
        if self.duration_s is not None:
            require_number("duration_s", self.duration_s, low=0, low_inclusive=False, high=1e8)
            if isinstance(self.arrival, (Offline, ClosedLoop)):
                raise ConfigError("duration_s: needs an open-loop arrival rate (poisson, gamma or constant); "
                                  "give requests for offline and closed-loop workloads")
        if self.requests is None and self.duration_s is None:
            raise ConfigError("workload: give requests or duration_s")
        if self.duration_s is not None and self.requests is None:
            expected = self.arrival.rate_per_s * self.duration_s
            if expected > MAX_REQUESTS:
                raise ConfigError(f"workload: rate x duration = {expected:.3g} requests exceeds {MAX_REQUESTS}")
        rate, least = getattr(self.arrival, "rate_per_s", None), self.requests or 1    # a duration draws one at least
        if self.duration_s is not None and self.requests is None:
            span, beyond = self.duration_s, f"the duration_s of {self.duration_s:.3g} s"
        else:
            span, beyond = MAX_ARRIVAL_S, f"the {MAX_ARRIVAL_S:g} s a run can hold"
        if rate and not self.closed_loop and least / rate > span:
            raise ConfigError(f"`rate`: {rate:.3g} requests/s spreads {least} request(s) over about "
                              f"{least / rate:.3g} s, beyond {beyond}")

    @property
    def closed_loop(self) -> bool:
        return isinstance(self.arrival, ClosedLoop)

    def request_count(self, rng=None) -> int:
        if self.requests is not None:
            return int(self.requests)
        return max(1, int(round(self.arrival.rate_per_s * self.duration_s)))

    def build(self, seed: int = 0) -> Requests:
        """Draw the open-loop request stream (deterministic for a seed). With duration_s, arrivals after
        the duration are cut."""
        if self.trace is not None:
            return load_trace(self.trace)
        if self.closed_loop:
            raise ConfigError("workload: a closed loop has no arrival times to draw; use lengths()")
        rng = np.random.default_rng(seed)
        if self.duration_s is not None and self.requests is None:
            # draw a little more than expected and cut at the duration
            expected = self.arrival.rate_per_s * self.duration_s
            count = int(expected + 6 * np.sqrt(expected) + 10)
            times = self.arrival.times(count, rng)
            times = times[times < self.duration_s]
            if times.size == 0:
                times = self._one_within_duration(rng)
        else:
            times = self.arrival.times(self.request_count(), rng)
        inputs, outputs = self._lengths(times.size, rng)
        return Requests(times, inputs, outputs)

    def _one_within_duration(self, rng) -> np.ndarray:
        """The one request a duration draws at least when by chance none arrives within it: its first
        arrival redrawn until it lies within the duration (never past it). Since rate x duration >= 1,
        the mean gap fits in the duration and each try lands within it at odds of about half or better."""
        for _ in range(DURATION_TRIES):
            times = self.arrival.times(1, rng)
            if times[0] <= self.duration_s:
                return times
        raise ConfigError(f"duration_s: no request arrives within {self.duration_s:.3g} s at "
                          f"{self.arrival.rate_per_s:.3g} requests/s in {DURATION_TRIES} draws; give a longer "
                          f"duration_s or requests")

    def chunks(self, seed: int = 0, size: int = 1 << 16):
        """The open-loop stream drawn `size` requests at a time (for long runs in bounded memory). Gaps
        are i.i.d., so a chunk continues from the previous one's last arrival; the draws interleave
        differently from `build`, so the two give different (each deterministic) streams."""
        if self.trace is not None or self.closed_loop:
            raise ConfigError("workload: streaming needs an open-loop arrival process (not a trace or closed loop)")
        rng = np.random.default_rng([seed, 1])
        remaining = None if self.duration_s is not None and self.requests is None else self.request_count()
        offset = 0.0
        while remaining is None or remaining > 0:
            count = size if remaining is None else min(size, remaining)
            times = self.arrival.times(count, rng) + offset
            if remaining is None:
                times = times[times < self.duration_s]
            if times.size == 0:
                return
            inputs, outputs = self._lengths(times.size, rng)
            yield Requests(times, inputs, outputs)
            offset = float(times[-1])
            if remaining is not None:
                remaining -= times.size
            elif times.size < count:
                return

    def _lengths(self, count, rng):
        return self.input_lengths.sample(count, rng), self.output_lengths.sample(count, rng)

    def lengths(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Prompt and output lengths of `requests` requests (closed loop: issued as users free up)."""
        rng = np.random.default_rng(seed)
        rng.random()   # keep streams distinct from build()'s
        return self._lengths(self.request_count(), rng)

    def describe(self) -> dict:
        if self.trace is not None:
            return {"trace": str(self.trace)}
        arrival = {"kind": self.arrival.name, **{k: v for k, v in vars(self.arrival).items()}}
        if arrival["kind"] == "offline":
            arrival.pop("rate_per_s", None)
        return {"arrival": arrival, "input_tokens_mean": self.input_lengths.mean,
                "output_tokens_mean": self.output_lengths.mean, "requests": self.requests,
                "duration_s": self.duration_s}
