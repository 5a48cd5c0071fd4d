"""A workload described as data: arrival process, prompt and output lengths, and how many requests (or
for how long), or a trace to replay. Built from TOML, a dict, or CLI flags; `build(seed)` draws it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.catalog_io import read_toml
from simulator.errors import ConfigError, reject_unknown_keys, require_choice, require_number
from workloads.arrivals import ARRIVALS, ClosedLoop, Offline, rate_driven
from workloads.lengths import Fixed, lengths_from_dict, parse_length_flag
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

    # ---- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, where: str = "workload", base_dir: Path | None = None) -> "WorkloadSpec":
        reject_unknown_keys(where, data, ("arrival", "input", "output", "requests", "duration_s", "trace"))
        if "trace" in data and len(data) > 1:
            other = sorted(k for k in data if k != "trace")[0]
            raise ConfigError(f"{where}: trace replays a recorded workload; {other!r} beside it would be ignored")
        if "trace" in data:
            trace = Path(str(data["trace"]))
            return cls(trace=str(trace if trace.is_absolute() or base_dir is None else base_dir / trace))
        arrival_table = data.get("arrival", {"kind": "offline"})
        if not isinstance(arrival_table, dict):
            raise ConfigError(f"{where}: [arrival] must be a table")
        kind = require_choice(f"{where}: arrival.kind", arrival_table.get("kind"), ARRIVALS)
        params = {k: v for k, v in arrival_table.items() if k != "kind"}
        allowed = ARRIVALS[kind].parameters
        reject_unknown_keys(f"{where}: [arrival]", params, allowed)
        try:
            arrival = ARRIVALS[kind](**params)
        except TypeError:
            raise ConfigError(f"{where}: [arrival] kind {kind!r} needs {', '.join(allowed)}") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: [arrival] {exc}") from None
        for key in ("input", "output"):
            if key not in data:
                raise ConfigError(f"{where}: missing [{key}] length table")
        return cls(arrival=arrival,
                   input_lengths=lengths_from_dict(f"{where}: [input]", data["input"], base_dir),
                   output_lengths=lengths_from_dict(f"{where}: [output]", data["output"], base_dir),
                   requests=data.get("requests"), duration_s=data.get("duration_s"))

    @classmethod
    def from_toml(cls, path: str | Path) -> "WorkloadSpec":
        path = Path(path)
        return cls.from_dict(read_toml(path), where=str(path), base_dir=path.parent)

    @classmethod
    def from_flags(cls, *, rate=None, arrival="poisson", cv=1.0, duration_s=None, requests=None, offline=False,
                   users=None, think_time_s=0.0, input_tokens="1024", output_tokens="256",
                   input_lengths=None, output_lengths=None) -> "WorkloadSpec":
        """Keyword options (the CLI's flags) to a spec; `input_lengths`/`output_lengths` (distribution objects)
        win over the text. An option the chosen workload would ignore is an error, not a silent default."""
        modes = sum(x for x in (rate is not None, bool(offline), users is not None))
        if modes > 1:
            raise ConfigError("workload: give one of `rate`, `offline` or `users`")
        if rate is not None and requests is not None and duration_s is not None:
            raise ConfigError("`duration_s`: give `requests` or `duration_s` with `rate`, not both")
        if duration_s is not None and rate is None:
            raise ConfigError("`duration_s`: only with `rate` (open loop); `offline` and `users` take `requests`")
        if think_time_s and users is None:
            raise ConfigError("`think_time_s`: only with `users` (a closed loop)")
        if arrival != "poisson" and rate is None:
            raise ConfigError(f"`arrival`: {arrival} arrivals need `rate`")
        with_cv = [name for name in rate_driven() if "cv" in ARRIVALS[name].parameters]
        if cv != 1.0 and arrival not in with_cv:
            raise ConfigError(f"`cv`: only with `arrival` {' or '.join(with_cv)}")
        if modes == 0:
            raise ConfigError("workload: give `rate` R (open loop), `offline` or `users` N (closed loop)")
        if offline:
            process = Offline()
        elif users is not None:
            process = ClosedLoop(users=users, think_time_s=think_time_s)
        else:
            require_choice("`arrival`", arrival, rate_driven())
            require_number("`rate`", rate, low=0, low_inclusive=False, high=1e9)
            kind = ARRIVALS[arrival]
            process = kind(rate_per_s=rate, **({"cv": cv} if "cv" in kind.parameters else {}))
        if (offline or users is not None) and requests is None:
            raise ConfigError("`requests`: needed with `offline` or `users`")
        if rate is not None and requests is None and duration_s is None:
            raise ConfigError("`duration_s`: needed with `rate` (or give `requests`)")
        return cls(arrival=process,
                   input_lengths=input_lengths or parse_length_flag("`input_tokens`", input_tokens),
                   output_lengths=output_lengths or parse_length_flag("`output_tokens`", output_tokens),
                   requests=requests, duration_s=duration_s if requests is None else None)
