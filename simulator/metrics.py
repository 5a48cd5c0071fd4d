"""Metrics: per-request arrays turned into throughput, latency percentiles and goodput, plus a
bounded log-binned histogram for inter-token latency (recorded per step, not per token)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 99)
# A run's arrivals span at least this many request lifetimes: shorter, its throughput is mostly the drain
# after the last arrival and a queue growing under overload has not shown yet (`mlperf` sizes its runs
# so; `simulate` warns of a shorter one)
REQUEST_LIFETIMES = 8


class LatencyHistogram:
    """Weighted histogram of durations on log-spaced bins (1 us .. 10^4 s, ~0.5% wide): memory stays
    flat however long the run, and percentiles are good to half a percent."""

    BINS_PER_DECADE = 460
    LOW_S, DECADES = 1e-6, 10

    def __init__(self):
        # a list, not an array: a run adds millions of durations, and one list item's += costs a third of
        # a numpy element's
        self.weights = [0.0] * (self.BINS_PER_DECADE * self.DECADES + 1)
        self._log_low = math.log10(self.LOW_S)
        self._top = len(self.weights) - 1

    def add(self, duration_s: float, weight: float) -> None:
        if duration_s <= self.LOW_S:
            index = 0
        else:
            index = int((math.log10(duration_s) - self._log_low) * self.BINS_PER_DECADE)
            if index > self._top:
                index = self._top
        self.weights[index] += weight

    def clear(self) -> None:
        self.weights = [0.0] * len(self.weights)

    def merge(self, weights) -> None:
        """Add another histogram's `weights` (a worker process's) bin by bin."""
        self.weights = [mine + theirs for mine, theirs in zip(self.weights, weights)]

    def add_linear(self, first_s: float, last_s: float, steps: int, weight_per_step: float) -> None:
        """`steps` durations spread evenly from first_s to last_s, each counted `weight_per_step` times."""
        if steps <= 1:
            if steps == 1:      # a stretch of one step: most of a busy engine's (finishes come every step)
                self.add(first_s, weight_per_step)
            return
        if steps <= 4 or last_s - first_s < 0.005 * first_s:
            if steps <= 4:
                for j in range(steps):
                    self.add(first_s + (last_s - first_s) * (j / (steps - 1) if steps > 1 else 0), weight_per_step)
            else:
                self.add((first_s + last_s) / 2, weight_per_step * steps)
            return
        parts = 8
        for j in range(parts):
            self.add(first_s + (last_s - first_s) * (j + 0.5) / parts, weight_per_step * steps / parts)

    def percentile(self, q: float) -> float:
        weights = np.asarray(self.weights)
        total = weights.sum()
        if total <= 0:
            return math.nan
        index = int(np.searchsorted(np.cumsum(weights), q / 100 * total))
        centre = (index + 0.5) / self.BINS_PER_DECADE + self._log_low
        return float(10 ** centre)


def _stack_active_params(model) -> float:
    """Parameters every token passes through in the layer stack: the active ones, less the output head
    (prompt tokens skip it), the floor both bounds below rest on."""
    return model.active_params_per_token - model.vocab * model.hidden


def weight_read_bound_tpot_s(model, gpu, gpus: int) -> float:
    """The shortest time per output token `gpus` GPUs can reach: each decode step reads at least the layer
    stack's active parameters once, at 4 bits each (the narrowest weights any catalog GPU computes in),
    split over every GPU, at the datasheet HBM bandwidth. No real run comes near it; a measured median
    TPOT below it is wrong (a unit slip: milliseconds as seconds)."""
    return 0.5 * _stack_active_params(model) / (gpus * gpu.hbm_bytes_per_s)


def compute_bound_tokens_per_s(model, gpu, gpus: int) -> float:
    """The most tokens (prompt and generated) per second `gpus` GPUs can process: every token multiplies
    through at least the layer stack's active parameters (2 FLOPs each; the output head is left out, since
    prompt tokens skip it) at the GPU's fastest dense rate. No real run comes near it; a measured or
    simulated figure above it is wrong."""
    flops_per_token = 2.0 * _stack_active_params(model)
    return gpus * max(gpu.peak_tflops.values()) * 1e12 / flops_per_token


def percentile_fields(prefix: str, values: np.ndarray) -> dict:
    values = values[np.isfinite(values)]
    out = {}
    for q in PERCENTILES:
        out[f"{prefix}_p{q}_s"] = float(np.percentile(values, q)) if values.size else math.nan
    out[f"{prefix}_mean_s"] = float(values.mean()) if values.size else math.nan
    return out


@dataclass(frozen=True)
class SLA:
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None


def request_metrics(arrays: dict) -> dict[str, np.ndarray]:
    """Per-request TTFT, TPOT (MLPerf: (latency - TTFT) / (output - 1)) and end-to-end latency."""
    arrival, first, finish = arrays["arrival_s"], arrays["first_token_s"], arrays["finish_s"]
    output = arrays["output_tokens"]
    ttft = first - arrival
    latency = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output > 1, (finish - first) / np.maximum(output - 1, 1), np.nan)
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": latency}


# Above this share of what the arrivals brought, a run's throughput is the steady state's as far as a
# planner cares; below, the drain after the last arrival (or a backlog) weighs in the figure.
DRAIN_SHARE = 0.10


def short_run_warning(arrival_s: np.ndarray, output_tokens: np.ndarray, summary: dict) -> str | None:
    """What a reader must know of an open-loop run whose arrivals span fewer than REQUEST_LIFETIMES mean
    request latencies, or whose throughput falls DRAIN_SHARE or more below what its arrivals brought (the
    slowest requests drain long after the last arrival: 60 s of arrivals at 12 lifetimes scored 17% under
    a 600 s run); None otherwise, or for arrivals all at once (offline). The arrivals' rate is n - 1 gaps
    over their span, so the tokens they bring per second are (n - 1) / n of all n requests' tokens over it."""
    span = float(arrival_s.max() - arrival_s.min()) if arrival_s.size else 0.0
    lifetime = summary.get("latency_mean_s", math.nan)
    if span <= 0 or not math.isfinite(lifetime):
        return None
    brought = float(output_tokens.sum()) * (arrival_s.size - 1) / arrival_s.size / span
    if span >= REQUEST_LIFETIMES * lifetime:
        served = summary.get("output_tokens_per_s", math.nan)
        if not served < (1 - DRAIN_SHARE) * brought:
            return None
        return (f"output_tokens_per_s {served:,.0f} is {1 - served / brought:.0%} below the {brought:,.0f} tokens/s "
                f"the arrivals brought: the run counts the drain after its last arrival ({summary['makespan_s']:.4g} "
                f"s against {span:.4g} s of arrivals), or the cluster fell behind; a longer `duration_s` tells which")
    return (f"the run's {span:.4g} s of arrivals span {span / lifetime:.2g} mean request lifetimes (latency_mean_s "
            f"{lifetime:.4g}): output_tokens_per_s counts the drain after the last arrival (the arrivals brought "
            f"{brought:,.0f} tokens/s), and a queue that grows under overload may not show yet; arrivals over at "
            f"least {REQUEST_LIFETIMES} lifetimes ({REQUEST_LIFETIMES * lifetime:.4g} s: a longer `duration_s`, "
            "trace or workload) show both")


def summarize(arrays: dict, itl: LatencyHistogram, sla: SLA | None = None) -> dict:
    """Throughput and latency summary of the finished requests."""
    finished = np.isfinite(arrays["finish_s"])
    per_request = request_metrics(arrays)
    completed = int(finished.sum())
    out_tokens = int(arrays["output_tokens"][finished].sum())
    in_tokens = int(arrays["input_tokens"][finished].sum())
    if completed:
        start = float(arrays["arrival_s"].min())
        end = float(arrays["finish_s"][finished].max())
        makespan = max(end - start, 1e-12)
    else:
        makespan = math.nan
    summary = {
        "requests_total": int(finished.size),
        "requests_completed": completed,
        "requests_dropped": int(finished.size - completed),
        # the completed requests' tokens, not a request's length (what `input_tokens` / `output_tokens` set)
        "output_tokens_completed": out_tokens,
        "input_tokens_completed": in_tokens,
        "makespan_s": makespan,
        "output_tokens_per_s": out_tokens / makespan if completed else 0.0,
        "total_tokens_per_s": (out_tokens + in_tokens) / makespan if completed else 0.0,
        "requests_per_s": completed / makespan if completed else 0.0,
    }
    for name in ("ttft", "tpot", "latency"):
        summary.update(percentile_fields(name, per_request[f"{name}_s"][finished]))
    for q in PERCENTILES:
        summary[f"itl_p{q}_s"] = itl.percentile(q)
    if sla is not None and completed:
        ok = finished.copy()
        if sla.ttft_p99_s is not None:
            ok &= per_request["ttft_s"] <= sla.ttft_p99_s
        if sla.tpot_p99_s is not None:
            ok &= ~(per_request["tpot_s"] > sla.tpot_p99_s)
        summary["goodput_requests_per_s"] = float(ok.sum()) / makespan
        summary["goodput_output_tokens_per_s"] = float(arrays["output_tokens"][ok].sum()) / makespan
    return summary
