"""MLPerf-style scenario runs of one cluster, scored as LoadGen scores them; shared by `mlperf`, `sizing`
and calibration.

Offline: every query queued at t = 0, as many queries as keep the cluster busy for MLPerf's 600 s
minimum (at least the dataset once); the score is completed output tokens over the whole run, start-up
fill and drain tail included, as LoadGen counts them. A short pilot run sizes the query count.
Server / Interactive: Poisson arrivals at a rate for at least 600 s, and for several request lifetimes
when requests live long (reasoning outputs), so an overload shows up as a growing queue instead of
hiding in a window shorter than the queue's growth; valid when p99 TTFT and p99 TPOT meet the limits
and nothing is dropped; the score is completed output tokens per second of the run (LoadGen's
"Completed tokens per second": the drain after the last arrival counts).

Where replicas are interchangeable (round-robin routing, no failures or hand-offs), one replica is
simulated on the arrivals round-robin gives it and rates are scaled to the cluster
(`replicas_simulated` in the summary); `exact=True` simulates every replica.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from simulator.api import RunResult, run_config, serving_config
from simulator.errors import require_number
from simulator.hardware import get_gpu
from simulator.metrics import SLA
from simulator.plan import Plan
from simulator.search import max_rate_meeting_sla, meets_sla
from workloads.requests import Requests
from workloads.scenarios import Scenario

MLPERF_MIN_DURATION_S = 600.0     # LoadGen's min_duration for every LLM scenario
REQUEST_LIFETIMES = 8             # a Server run also lasts this many worst-case request lifetimes
RATE_TOLERANCE = 0.02
PILOT_BATCHES = 3                 # pilot Offline run: this many batch fills per engine
MAX_QUERIES = 50_000_000


def default_precision(gpu) -> str:
    """What MLPerf submitters run: fp4 on GPUs with an fp4 tensor rate (B200, MI355X), else fp8."""
    return "fp4" if "fp4" in gpu.peak_tflops else "fp8"


def resolve_config(options: dict, pins: dict):
    """serving_config with precision "auto" resolved per GPU and the plan's pins applied."""
    options = dict(options)
    if options.get("precision", "auto") == "auto":
        gpu = options.get("gpu", "mi355x")
        gpu_spec = get_gpu(gpu, options.get("gpu_catalog", ())) if isinstance(gpu, str) else gpu
        options["precision"] = default_precision(gpu_spec)
    return serving_config(**options, **pins)


def plan_label(plan: Plan) -> str:
    return f"tp{plan.tp}-pp{plan.pp}-ep{plan.ep}-mbs{plan.max_batch_size}"


def server_duration_s(scenario: Scenario, duration_s: float | None = None) -> float:
    """Seconds of arrivals a Server/Interactive run covers: MLPerf's 600 s (or `duration_s`), and at
    least REQUEST_LIFETIMES worst-case lifetimes (TTFT limit + mean output x TPOT limit), so a queue that
    grows slowly behind long-lived requests has time to show."""
    lifetime = scenario.ttft_p99_s + scenario.output_lengths.mean * scenario.tpot_p99_s
    return max(duration_s if duration_s is not None else MLPERF_MIN_DURATION_S, REQUEST_LIFETIMES * lifetime)


def steady_offline_tokens_per_s(arrays: dict, warmup_requests: int = 0) -> tuple[float, float]:
    """Output tokens/s and requests/s of an Offline run in its steady state: from the moment the first
    `warmup_requests` queries (the initial batch fill of every engine) all have their first token, to
    the moment the last queued query gets its first token. Tokens of a query in flight at either edge
    are counted pro rata between its first token and its finish (decode runs at a near-constant pace).
    Used to size a scored run from a short pilot, where fill and drain would distort the rate."""
    first, finish, output = arrays["first_token_s"], arrays["finish_s"], arrays["output_tokens"].astype(float)
    done = np.isfinite(finish)
    if not done.any():
        return 0.0, 0.0
    first, finish, output = first[done], finish[done], output[done]

    def produced_by(moment: float) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(finish > first, (moment - first) / (finish - first), 1.0)
        partial = 1 + (output - 1) * np.clip(fraction, 0, 1)
        return float(np.where(finish <= moment, output, np.where(first <= moment, partial, 0.0)).sum())

    window_start = float(arrays["arrival_s"].min())
    window_end = float(np.max(first))
    warm = np.asarray(arrays["first_token_s"][:warmup_requests], dtype=float)
    if warmup_requests and np.isfinite(warm).all() and float(warm.max()) < window_end:
        window_start = float(warm.max())
    span = window_end - window_start
    if span <= 0:
        return 0.0, 0.0
    tokens_per_s = (produced_by(window_end) - produced_by(window_start)) / span
    return tokens_per_s, tokens_per_s / float(output.mean())


def offline_score(run: RunResult) -> tuple[float, float]:
    """MLPerf Offline (tokens/s, queries/s): completed output tokens and queries over the whole run."""
    return run.summary["output_tokens_per_s"], run.summary["requests_per_s"]


def server_score(run: RunResult) -> tuple[float, float]:
    """MLPerf Server/Interactive (tokens/s, queries/s) of a run: completed output tokens and queries per
    second from the first arrival to the last completion."""
    return run.summary["output_tokens_per_s"], run.summary["requests_per_s"]


class ScenarioRunner:
    """Runs one scenario on variations of one cluster config (plans and rates share the seed, so
    comparisons between them use the same queries). `output_tokens_mean` rescales the dataset's output
    lengths to a measured tokens-per-sample (quantised models answer a little shorter or longer)."""

    def __init__(self, config, scenario: Scenario, usd_per_gpu_hour=None, duration_s=None, queries=None,
                 step_cost=None, output_tokens_mean: float | None = None, exact: bool = False):
        self.config, self.scenario, self.usd = config, scenario, usd_per_gpu_hour
        self.step_cost = step_cost      # tests replace the cost model with hand-set step times
        if duration_s is not None:
            require_number("--duration", duration_s, low=1, high=1e6)
        self.duration_s = server_duration_s(scenario, duration_s) if scenario.kind != "offline" else None
        self.queries = require_number("--queries", queries, low=1, high=MAX_QUERIES, integer=True) \
            if queries is not None else None
        self.output_tokens_mean = output_tokens_mean
        self.representative = not exact
        self.evaluations = 0
        self.history = []
        self.sla = SLA(scenario.ttft_p99_s, scenario.tpot_p99_s) if scenario.kind != "offline" else None
        self.info = scenario.describe()

    def config_for(self, plan: Plan):
        return replace(self.config, plan=plan)

    def requests(self, count: int, rate_per_s: float | None) -> Requests:
        return self.scenario.requests(count, rate_per_s, self.config.seed, self.output_tokens_mean)

    def _run(self, config, requests: Requests, info: dict) -> RunResult:
        result = run_config(config, requests, self.usd, info, self.step_cost, representative=self.representative)
        self.evaluations += 1
        return result

    def offline_queries(self, plan: Plan) -> int:
        """MLPerf's Offline query count: enough for 600 s at the rate a short pilot run reaches, and at
        least the dataset once (`queries` overrides)."""
        if self.queries:
            return self.queries
        config = self.config_for(plan)
        engines = config.replicas * plan.pp
        pilot_count = PILOT_BATCHES * engines * plan.max_batch_size * plan.attention_dp
        pilot = self._run(config, self.requests(pilot_count, None), {"pilot": True})
        warmup = pilot.engine_result.engines["count"] * plan.max_batch_size * plan.attention_dp
        _, requests_per_s = steady_offline_tokens_per_s(pilot.engine_result.arrays, warmup)
        scale = config.replicas / pilot.engine_result.summary.get("replicas_simulated", config.replicas)
        wanted = math.ceil(requests_per_s * scale * MLPERF_MIN_DURATION_S)
        return int(min(MAX_QUERIES, max(self.scenario.samples, wanted, pilot_count)))

    def offline(self, plan: Plan) -> tuple[RunResult, int]:
        config = self.config_for(plan)
        count = self.offline_queries(plan)
        result = self._run(config, self.requests(count, None), {**self.info, "queries": count})
        self.history.append((plan_label(plan), None, True, result.summary["ttft_p99_s"], result.summary["tpot_p99_s"]))
        return result, count

    def server_run(self, plan: Plan, rate_per_s: float, tokens_per_s: float | None = None) -> tuple[RunResult, int]:
        """One Poisson run at `rate_per_s` covering `duration_s` of arrivals; with `tokens_per_s`, the rate
        is set so that the drawn queries offer exactly that many output tokens per second (arrival times
        rescaled, still Poisson)."""
        count = max(self.queries or 1, int(math.ceil(rate_per_s * self.duration_s)))
        requests = self.requests(count, rate_per_s)
        if tokens_per_s is not None:
            exact_rate = tokens_per_s / float(requests.output_tokens.mean())
            requests = Requests(requests.arrival_s * (rate_per_s / exact_rate), requests.input_tokens,
                                requests.output_tokens)
            rate_per_s = exact_rate
        result = self._run(self.config_for(plan), requests,
                           {**self.info, "rate_per_s": rate_per_s, "queries": count, "arrivals_s": self.duration_s})
        ok = meets_sla(result.summary, self.sla)
        self.history.append((plan_label(plan), rate_per_s, ok, result.summary["ttft_p99_s"],
                             result.summary["tpot_p99_s"]))
        return result, count

    def search_rate(self, plan: Plan, initial_rate_per_s: float):
        """Highest Poisson rate meeting the SLA for `plan`, with every run kept by rate."""
        runs = {}

        def run(rate):
            if rate not in runs:
                runs[rate] = self.server_run(plan, rate)
            return runs[rate][0].summary

        found = max_rate_meeting_sla(run, self.sla, initial_rate_per_s, relative_tolerance=RATE_TOLERANCE)
        return found.rate_per_s, runs[found.rate_per_s]
