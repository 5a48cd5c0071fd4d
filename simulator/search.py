"""Searches over simulations: the highest request rate that meets a p99 SLA (a bracket on a Poisson
rate, narrowed where the runs' latencies place the threshold), and the fewest GPUs that reach a
throughput target (exponential then binary search).

Both take the simulation as a callable, so they are tested on synthetic models with known answers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from simulator.errors import InfeasibleError
from simulator.metrics import SLA


def meets_sla(summary: dict, sla: SLA) -> bool:
    """p99 TTFT and p99 TPOT within the limits, and nothing dropped or left unfinished."""
    if summary.get("requests_dropped", 0):
        return False
    if sla.ttft_p99_s is not None and not (summary["ttft_p99_s"] <= sla.ttft_p99_s):
        return False
    if sla.tpot_p99_s is not None and not (summary["tpot_p99_s"] <= sla.tpot_p99_s):
        return False
    return True


@dataclass(frozen=True)
class RateSearch:
    rate_per_s: float
    summary: dict
    evaluations: int
    history: tuple      # per run: (rate, met the SLA, p99 TTFT, p99 TPOT, limit an early stop missed or None)


def _widened(factor: float, step: float) -> float:
    """The next step factor after a pass (going up) or a miss (going down): a fine step squared, at most
    doubling or halving; a coarse `step` (2 or more) unchanged."""
    return max(step, min(factor * factor, 2.0))


def max_rate_meeting_sla(run: Callable[[float], dict], sla: SLA, initial_rate_per_s: float,
                         relative_tolerance: float = 0.02, max_evaluations: int = 24,
                         ceiling_rate_per_s: float | None = None, step: float = 2.0) -> RateSearch:
    """Highest rate whose run meets `sla`: step up (or down) by `step` from `initial_rate_per_s` to
    bracket the threshold, then narrow the bracket until it is within `relative_tolerance`: each probe
    goes where the two ends' p99 / limit ratios place the threshold (`_interpolated`), or to the middle
    when they cannot or the last probe did not halve the bracket (so it never takes much more than
    bisection's runs, and takes one or two where latency rises smoothly with the rate). A
    `ceiling_rate_per_s` the system is not expected to exceed (its saturation rate) is tried before
    stepping past it. A search started near the answer (a small `step`) brackets it in two runs; each
    further pass (going up) or miss (going down) squares a small step, up to a factor of 2, so a start
    far from the answer costs a few runs more, not a bisection from half nor a crawl that runs out of
    evaluations (2% steps climb only 1.6x in 24 runs).

    Raises InfeasibleError when even a nearly idle system (1/1000 of the start) misses the SLA, naming
    what missed (an unloaded system's TTFT or TPOT already over the limit); that run follows the first
    miss (the first two when `step` is small).
    """
    history = []

    def evaluate(rate):
        summary = run(rate)
        ok = meets_sla(summary, sla)
        history.append((rate, ok, summary.get("ttft_p99_s"), summary.get("tpot_p99_s"),
                        summary.get("stopped_early_by")))
        return ok, summary

    rate = initial_rate_per_s
    ok, summary = evaluate(rate)
    good = good_summary = bad = bad_summary = None
    if ok:
        good, good_summary = rate, summary
        factor = step
        while bad is None and len(history) < max_evaluations:
            ceiling = ceiling_rate_per_s if ceiling_rate_per_s and ceiling_rate_per_s > rate * (1 + relative_tolerance) else None
            rate = min(ceiling, rate * factor) if ceiling is not None else rate * factor
            ok, summary = evaluate(rate)
            if ok:
                good, good_summary = rate, summary
                factor = _widened(factor, step)
            else:
                bad, bad_summary = rate, summary
        if bad is None:
            return RateSearch(good, good_summary, len(history), tuple(history))
    else:
        bad, bad_summary = rate, summary
        floor = initial_rate_per_s / 1000
        factor = step
        while good is None:
            rate = bad / factor
            if len(history) == (1 if step >= 2 else 2) or rate <= floor:
                # Missed (twice when stepping finely): is any rate feasible? A nearly idle system answers
                # in one run, not ten.
                ok, worst = evaluate(floor)
                if not ok:
                    raise SLAUnreachable(_unreachable(sla, floor, worst), _limit_ratio(worst, sla) or math.inf)
                if rate <= floor:
                    good, good_summary = floor, worst
                    break
            ok, summary = evaluate(rate)
            if ok:
                good, good_summary = rate, summary
            else:
                bad, bad_summary = rate, summary
                factor = _widened(factor, step)
    halved = True           # whether the last probe at least halved the bracket (else the next bisects)
    while bad - good > relative_tolerance * good and len(history) < max_evaluations:
        width = bad - good
        probe = _interpolated(good, _limit_ratio(good_summary, sla), bad, _limit_ratio(bad_summary, sla),
                              relative_tolerance) if halved else None
        rate = probe if probe is not None else (good + bad) / 2
        ok, summary = evaluate(rate)
        if ok:
            good, good_summary = rate, summary
        else:
            bad, bad_summary = rate, summary
        halved = bad - good <= width / 2
    return RateSearch(good, good_summary, len(history), tuple(history))


def _limit_ratio(summary: dict, sla: SLA) -> float | None:
    """How close a run came to its binding limit: the larger of p99 TTFT / limit and p99 TPOT / limit
    (above 1 misses), of the p99s the run has; None when that cannot say (requests dropped, no p99). A
    run stopped early by a latency limit reports its unfinished requests as dropped: its ratio is that
    of the ones it finished."""
    if summary.get("requests_dropped", 0) and summary.get("stopped_early_by") not in ("ttft", "tpot"):
        return None
    ratios = [summary[key] / limit for key, limit in (("ttft_p99_s", sla.ttft_p99_s), ("tpot_p99_s", sla.tpot_p99_s))
              if limit and summary.get(key) is not None and math.isfinite(summary[key])]
    worst = max(ratios, default=0.0)
    return worst if worst > 0 else None


def _interpolated(good: float, good_ratio, bad: float, bad_ratio, tolerance: float) -> float | None:
    """The rate where the limit ratio reaches 1, interpolated linearly in log ratio against log rate
    between a passing and a missing run (p99 latencies rise smoothly with the rate until the queue blows
    up), kept at least one tolerance inside the bracket from either end: if the guess is right, one run
    closes the bracket. None when the ratios cannot place it (a missed run stopped early reports p99s of
    the requests it finished, which can sit below the limit)."""
    if good_ratio is None or bad_ratio is None or not good_ratio <= 1.0 < bad_ratio:
        return None
    fraction = -math.log(good_ratio) / (math.log(bad_ratio) - math.log(good_ratio))
    rate = good * (bad / good) ** fraction
    inner = 0.98 * tolerance
    return min(max(rate, good * (1 + inner)), bad / (1 + inner))


class SLAUnreachable(InfeasibleError):
    """No rate meets the SLA. `limit_ratio`: how far the nearly idle run missed it, the worse of p99 TTFT /
    limit and p99 TPOT / limit (inf when requests were dropped): plans compare by it."""

    def __init__(self, message: str, limit_ratio: float):
        super().__init__(message)
        self.limit_ratio = limit_ratio

    def __reduce__(self):       # a sweep worker's error reaches its parent whole
        return type(self), (str(self), self.limit_ratio)


def _unreachable(sla: SLA, floor: float, worst: dict) -> str:
    parts = []
    if sla.ttft_p99_s is not None and not (worst["ttft_p99_s"] <= sla.ttft_p99_s):
        parts.append(f"p99 TTFT {worst['ttft_p99_s']:.3g} s > {sla.ttft_p99_s:g} s")
    if sla.tpot_p99_s is not None and not (worst["tpot_p99_s"] <= sla.tpot_p99_s):
        parts.append(f"p99 TPOT {worst['tpot_p99_s']:.3g} s > {sla.tpot_p99_s:g} s")
    if worst.get("requests_dropped"):
        parts.append(f"{worst['requests_dropped']} requests dropped")
    return f"SLA unreachable: even at {floor:.3g} requests/s " + ("; ".join(parts) or "the run missed the SLA")


@dataclass(frozen=True)
class SizeSearch:
    units: int
    value: float
    result: object
    evaluations: int
    history: tuple


def fewest_units_reaching(evaluate: Callable[[int], tuple[float, object]], target: float,
                          max_units: int = 4096, start: int = 1) -> SizeSearch:
    """Fewest units (nodes or replicas) whose `evaluate(units)[0]` reaches `target`.

    Assumes more units never serve less (what a capacity planner assumes; the robustness tests check
    it holds for the engine within noise). From `start` (a good estimate saves runs) it steps up or
    down with a doubling step until the threshold is bracketed, then bisects.
    """
    if not 1 <= start <= max_units:
        raise ValueError(f"start {start} outside 1..{max_units}")
    history = []
    cache = {}

    def value_at(units):
        if units not in cache:
            cache[units] = evaluate(units)
            history.append((units, cache[units][0]))
        return cache[units]

    step = max(1, start // 16)
    if value_at(start)[0] >= target:
        high, low = start, start - step
        while low >= 1 and value_at(low)[0] >= target:
            high, step = low, step * 2
            low = high - step
        low = max(low, 0)              # zero units serve nothing
    else:
        low, high = start, start + step
        while True:
            high = min(high, max_units)
            if value_at(high)[0] >= target:
                break
            if high >= max_units:
                raise InfeasibleError(f"target unreachable: {max_units} units serve {value_at(high)[0]:.4g}, "
                                      f"below the target {target:.4g}")
            low, step = high, step * 2
            high = low + step
    while high - low > 1:
        middle = (low + high) // 2
        if value_at(middle)[0] >= target:
            high = middle
        else:
            low = middle
    value, result = value_at(high)
    return SizeSearch(high, value, result, len(history), tuple(history))
