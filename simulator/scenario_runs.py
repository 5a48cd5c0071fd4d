"""MLPerf-style scenario runs of one cluster, scored as LoadGen scores them; shared by `mlperf`, `sizing`
and calibration.

Offline: every query queued at t = 0, as many queries as keep the cluster busy for MLPerf's 600 s
minimum and for several request lifetimes (at least the dataset once); the score is completed output
tokens over the whole run, start-up fill and drain tail included, as LoadGen counts them. The
closed-form capacity estimate (`capacity`) sizes the query count.
Server / Interactive: Poisson arrivals at a rate for at least 600 s, and for several request lifetimes
when requests live long (reasoning outputs), so an overload shows up as a growing queue instead of
hiding in a window shorter than the queue's growth; valid when p99 TTFT and p99 TPOT meet the limits
and nothing is dropped; the score is LoadGen's "Completed tokens per second": output tokens over the time
from the start to the completion of the final query issued (`server_score`).

Where replicas are interchangeable (round-robin routing, no failures or hand-offs), one replica is
simulated on the arrivals round-robin gives it and rates are scaled to the cluster
(`replicas_simulated` in the summary); `exact=True` simulates every replica.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np

from simulator.api import RunResult, run_config, serving_config
from simulator.run import replica_share, representative_ok
from simulator.capacity import Capacity, replica_capacity
from simulator.cluster import cluster_graph, replica_layout
from simulator.errors import require_number
from simulator.hardware import get_gpu
from simulator.metrics import REQUEST_LIFETIMES, SLA
from simulator.plan import Plan
from simulator.search import max_rate_meeting_sla, meets_sla
from workloads.requests import Requests
from workloads.scenarios import MAX_QUERIES, Scenario

MLPERF_MIN_DURATION_S = 600.0     # LoadGen's min_duration for every LLM scenario
OFFLINE_MIN_QUERIES = 24576       # LoadGen's Offline min_query_count for LLMs: the dataset once, at most this
# LoadGen's Server/Interactive min_query_count for LLMs (every v4.1/v5.1 summary): a run at a rate that
# issues fewer in its min_duration goes on until it has issued this many. Without it, where even an idle
# system misses a p99 limit on its longest prompts, a rate search sank to runs of 6-12 queries that drew
# none of them and passed (Llama 3.1 405B on 8 H200 at slowed efficiencies: 0.012 queries/s).
SERVER_MIN_QUERIES = 100
RATE_TOLERANCE = 0.02
# A Server / Interactive score is averaged (in log) over draws of its run's queries until they hold
# DRAW_QUERIES together, over at most MAX_DRAWS runs of the same length (each from an empty system, as
# LoadGen's are); the queries counted are the simulated replica's, whose p99s decide the run. Llama 3.1
# 405B serves 0.3-0.5 queries/s: its 600 s run issues 200-550, and its p99 TTFT, set by a few long prompts
# queued together, swings one draw's score (8 x H200 Server, seeds 0-5: 278-356 tok/s at the profile
# fitted before draws, 290-354 at the one fitted with them, whose averaged scores at seeds 0-2 are
# 277-304; Llama 2 70B's runs of tens of thousands of queries: within 1%). A measured run is one such draw
# too, so the mean is what to predict it by. Longer runs would not do: a queue that has run for hours
# serves a lower rate within the TTFT limit than one 600 s from empty (4,000 queries: 253-296 tok/s).
# Draw k takes seed + k x DRAW_SEED_STRIDE (modulo 2^63), so seeds less than DRAW_SEED_STRIDE apart share
# no draw.
DRAW_QUERIES = 2000
MAX_DRAWS = 6
DRAW_SEED_STRIDE = 1000
# an Offline prefix whose steady state stands for a longer run (row_models.OfflineRow): at 4,096 per
# replica, extending 405B's widely spread prompt lengths came 2-4% off simulating every query; at 16,384
# the shipped rows' extensions are within 2.5% (0.3-0.7% rms)
PREFIX_QUERIES_PER_REPLICA = 16384


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


def draws_for(queries: int) -> int:
    """Runs of `queries` queries each that together hold DRAW_QUERIES (at most MAX_DRAWS; 1 for a run that
    holds them alone)."""
    return min(MAX_DRAWS, math.ceil(DRAW_QUERIES / max(queries, 1)))


def draw_seed(seed: int, k: int) -> int:
    """The seed of draw k (0: the run's own) of a run seeded `seed`, within the seeds a run takes."""
    return (seed + k * DRAW_SEED_STRIDE) % 2 ** 63


def geometric_mean(values) -> float:
    """The mean in log of positive values (a score over draws)."""
    return math.exp(sum(math.log(value) for value in values) / len(values))


def server_duration_s(scenario: Scenario, duration_s: float | None = None) -> float:
    """Seconds of arrivals a Server/Interactive run covers: MLPerf's 600 s (or `duration_s`), and at
    least REQUEST_LIFETIMES worst-case lifetimes (TTFT limit + mean output x TPOT limit), so a queue that
    grows slowly behind long-lived requests has time to show."""
    lifetime = scenario.ttft_p99_s + scenario.output_mean * scenario.tpot_p99_s
    return max(duration_s if duration_s is not None else MLPERF_MIN_DURATION_S, REQUEST_LIFETIMES * lifetime)



# LoadGen scores a Server/Interactive run over the time from its start to the completion of the final query
# it issued (loadgen/results.cc: token_count / final_query_all_samples_done_time), not to the last completion
# of all. That query finishes while the batch drains behind it, sooner than a query in the thick of the run:
# the v5.1 Server logs' scheduled and completed samples per second put it 0.4-0.45 x the mean latency after
# the last arrival (B200, MI300X, MI325X on Llama 2 70B), as simulated runs do. Its expected latency is the
# mean over the arrivals in the run's last FINAL_WINDOW of a mean latency, and at least the last
# FINAL_ARRIVALS of them: one query's latency alone would make every score a draw of that query's length.
FINAL_WINDOW = 0.05
FINAL_ARRIVALS = 16


@dataclass(frozen=True)
class ServerLoad:
    """What a Server/Interactive run issued and how its final query fared: output tokens and queries per
    second issued, the seconds over which they were issued, and the expected latency of the final one."""

    tokens_per_s: float
    requests_per_s: float
    duration_s: float
    final_latency_s: float

    def score(self, duration_s: float | None = None) -> tuple[float, float]:
        """LoadGen's (tokens/s, queries/s) for this load issued over `duration_s` (default: as simulated)."""
        return self.scored(self.tokens_per_s, duration_s), self.scored(self.requests_per_s, duration_s)

    def scored(self, issued_per_s: float, duration_s: float | None = None, speedup: float = 1.0) -> float:
        """What LoadGen reports for a run issuing `issued_per_s` (tokens or queries per second) for
        `duration_s` seconds (default: as simulated), its final query completing its latency / `speedup`
        after it was issued (steps `speedup` times faster)."""
        duration_s = duration_s or self.duration_s
        return issued_per_s * duration_s / (duration_s + self.final_latency_s / speedup)


def server_load(run: RunResult) -> ServerLoad:
    """The run's `ServerLoad`. A run that keeps no per-request arrays (streamed) or issued all its queries
    at once is counted as issuing over its whole makespan, to its last completion; a final query that
    was dropped, as finishing after the mean latency of those that finished."""
    summary = run.summary
    whole_run = ServerLoad(summary["output_tokens_per_s"], summary["requests_per_s"], summary["makespan_s"], 0.0)
    arrival = run.engine_result.arrays.get("arrival_s")
    if arrival is None or len(arrival) != summary["requests_total"] or not summary["requests_completed"]:
        return whole_run
    order = np.argsort(arrival, kind="stable")
    latency = (run.engine_result.arrays["finish_s"] - arrival)[order]
    arrival = arrival[order]
    duration_s = float(arrival[-1] - arrival[0])
    if duration_s <= 0:
        return whole_run
    finished = np.isfinite(latency)
    mean = float(latency[finished].mean())
    last = arrival >= arrival[-1] - FINAL_WINDOW * mean
    last[-FINAL_ARRIVALS:] = True
    last &= finished
    issued = summary["makespan_s"] / duration_s          # per second of the run -> per second of issuing
    return ServerLoad(summary["output_tokens_per_s"] * issued, summary["requests_per_s"] * issued, duration_s,
                      float(latency[last].mean()) if last.any() else mean)


def offline_score(run: RunResult) -> tuple[float, float]:
    """MLPerf Offline (tokens/s, queries/s): completed output tokens and queries over the whole run."""
    return run.summary["output_tokens_per_s"], run.summary["requests_per_s"]


def server_score(run: RunResult, duration_s: float | None = None) -> tuple[float, float]:
    """MLPerf Server/Interactive (tokens/s, queries/s) of a run as LoadGen scores it: output tokens and
    queries over the time to the final query's completion; with `duration_s`, of a run issuing the same
    load for that many seconds (a measured run's own length: submitters ran 600-30,000 s)."""
    return server_load(run).score(duration_s)


class ScenarioRunner:
    """Runs one scenario on variations of one cluster config (plans share the seed, so plans compared at
    one rate see the same queries; a run at another rate draws others). `output_tokens_mean` rescales
    the dataset's output lengths to a measured tokens-per-sample (quantised models answer a little
    shorter or longer)."""

    def __init__(self, config, scenario: Scenario, usd_per_gpu_hour=None, duration_s=None, queries=None,
                 step_cost=None, output_tokens_mean: float | None = None, exact: bool = False,
                 record_steps: bool = False, early_stop: bool = False, long_runs_as_prefix: bool = False,
                 progress=None):
        # the auto topology depends on the GPU and its count only: built once, not for every plan and run
        self.config = config if config.topology is not None else replace(config, topology=cluster_graph(config))
        self.scenario, self.usd = scenario, usd_per_gpu_hour
        self.progress = progress          # told "run k of about n" before each run (see simulator.progress)
        self.expected_runs = None         # the search's estimate of its run count, once it has one
        self.step_cost = step_cost      # tests replace the cost model with hand-set step times
        if duration_s is not None:
            require_number("`duration_s`", duration_s, low=1, high=1e6)
        self.duration_s = server_duration_s(scenario, duration_s) if scenario.kind != "offline" else None
        self.queries = require_number("`queries`", queries, low=1, high=MAX_QUERIES, integer=True) \
            if queries is not None else None
        self.output_tokens_mean = output_tokens_mean
        # Offline with `queries` beyond the count of the run mlperf would issue itself: simulate only that
        # count (the first queries); calibration extrapolates the steady state (row_models.OfflineRow)
        self.long_runs_as_prefix = long_runs_as_prefix
        self.representative = not exact
        self.record_steps = record_steps          # keep step traces of the scored runs (calibration re-prices them)
        # stop Server runs once they must miss the limits (their p99s are then partial: calibration,
        # which reads a failed probe's p99s, keeps it off)
        self.early_stop = early_stop
        self.evaluations = 0
        self.history = []
        self.sla = SLA(scenario.ttft_p99_s, scenario.tpot_p99_s) if scenario.kind != "offline" else None
        self.info = scenario.describe()

    def reseeded(self, seed: int) -> "ScenarioRunner":
        """This runner with its queries drawn from `seed`, with a history of its own; its run count goes
        on from this one's (a progress line counts every draw's runs)."""
        other = copy.copy(self)
        other.config = replace(self.config, seed=seed)
        other.history = []
        return other

    def config_for(self, plan: Plan):
        return replace(self.config, plan=plan)

    def requests(self, count: int, rate_per_s: float | None, plan: Plan | None = None) -> Requests:
        """The run's queries; with `plan`, only those of the replica a representative run of it simulates
        (a 1,000-GPU Offline run issues tens of millions of queries and simulates one replica's)."""
        config = self.config_for(plan) if plan is not None else None
        share = (replica_share(config) if config is not None and self.representative
                 and representative_ok(config, requests=count) else None)
        return self.scenario.requests(count, rate_per_s, self.config.seed, self.output_tokens_mean, share)

    def _run(self, config, requests: Requests, info: dict, sla: SLA | None = None) -> RunResult:
        if self.progress is not None:
            expected = max(self.expected_runs or 0, self.evaluations + 1)
            self.progress(self.evaluations + 1, expected, "search runs", approximate=True)
        result = run_config(config, requests, self.usd, info, self.step_cost, representative=self.representative,
                            record_steps=self.record_steps, stop_when_missed=sla)
        self.evaluations += 1
        return result

    def capacity(self, plan: Plan, within_tpot_limit: bool = False) -> Capacity:
        """The plan's saturated throughput in closed form (whole cluster: every replica); with
        `within_tpot_limit`, at the largest batch whose steps still meet the scenario's TPOT limit."""
        config = self.config_for(plan)
        scenario = self.scenario
        typical = int(min(scenario.input_lengths.mean + self.output_mean, config.model.max_context))
        cost, memory = replica_layout(config, typical)
        if self.step_cost is not None:
            cost = self.step_cost
        window = memory.window_bytes_per_sequence_per_gpu / memory.kv_bytes_per_token_per_gpu
        limit = scenario.tpot_p99_s if within_tpot_limit and scenario.tpot_p99_s else None
        one = replica_capacity(cost, memory.kv_tokens_per_replica, scenario.input_lengths.mean, self.output_mean,
                               window, limit)
        return Capacity(one.batch * config.replicas, one.tokens_per_s * config.replicas,
                        one.requests_per_s * config.replicas, one.decode_step_s)

    @property
    def output_mean(self) -> float:
        return self.output_tokens_mean or self.scenario.output_mean

    def offline_queries(self, plan: Plan) -> int:
        """The Offline query count: enough for MLPerf's 600 s, and for REQUEST_LIFETIMES mean request
        lifetimes (output mean x decode step), at the plan's estimated saturated rate; at least the dataset
        once (`queries` overrides). Long outputs end a run with a drain tail at shrinking batch; published
        DeepSeek-R1 runs last 2,700-11,400 s, where it weighs a few percent, not the quarter it would in
        600 s. With `long_runs_as_prefix`, `queries` is a ceiling on the count of the run's own."""
        if self.queries and not self.long_runs_as_prefix:
            return self.queries
        capacity = self.capacity(plan)
        duration_s = max(MLPERF_MIN_DURATION_S, REQUEST_LIFETIMES * self.output_mean * capacity.decode_step_s)
        wanted = math.ceil(capacity.requests_per_s * duration_s)
        own = int(min(MAX_QUERIES, max(self.scenario.samples, wanted)))
        if not self.queries:
            return own
        # a prefix long enough for its steady state to stand for the rest of the run
        prefix = max(own, PREFIX_QUERIES_PER_REPLICA * self.config_for(plan).replicas)
        return min(prefix, self.queries)

    def offline(self, plan: Plan) -> tuple[RunResult, int]:
        config = self.config_for(plan)
        count = self.offline_queries(plan)
        result = self._run(config, self.requests(count, None, plan), {**self.info, "queries": count})
        self.history.append((plan_label(plan), None, True, result.summary["ttft_p99_s"], result.summary["tpot_p99_s"]))
        return result, count

    def server_run(self, plan: Plan, rate_per_s: float, tokens_per_s: float | None = None) -> tuple[RunResult, int]:
        """One Poisson run at `rate_per_s` covering `duration_s` of arrivals; with `tokens_per_s`, the rate
        is set so that the simulated queries offer exactly that many output tokens per second (arrival times
        rescaled, still Poisson): a representative run's replica exactly its part of them."""
        count = max(self.queries or SERVER_MIN_QUERIES, int(math.ceil(rate_per_s * self.duration_s)))
        requests = self.requests(count, rate_per_s, plan)
        if tokens_per_s is not None:
            exact_rate = tokens_per_s / float(requests.output_tokens.mean())
            requests = Requests(requests.arrival_s * (rate_per_s / exact_rate), requests.input_tokens,
                                requests.output_tokens, requests.share)
            rate_per_s = exact_rate
        result = self._run(self.config_for(plan), requests,
                           {**self.info, "rate_per_s": rate_per_s, "queries": count, "arrivals_s": self.duration_s},
                           self.sla if self.early_stop else None)
        ok = meets_sla(result.summary, self.sla)
        self.history.append((plan_label(plan), rate_per_s, ok, result.summary["ttft_p99_s"],
                             result.summary["tpot_p99_s"]))
        return result, count

    def search_rate(self, plan: Plan, initial_rate_per_s: float, ceiling_rate_per_s: float | None = None,
                    step: float = 2.0, known_runs: dict | None = None):
        """Highest Poisson rate meeting the SLA for `plan`, with every run kept by rate; `known_runs`
        (rate -> `server_run`'s result) are runs of this plan already made, not repeated. The search's
        history is kept as `last_search` (calibration reads how the limits respond near the threshold), its
        runs as `last_runs`."""
        runs = dict(known_runs or {})

        def run(rate):
            if rate not in runs:
                runs[rate] = self.server_run(plan, rate)
            return runs[rate][0].summary

        found = max_rate_meeting_sla(run, self.sla, initial_rate_per_s, relative_tolerance=RATE_TOLERANCE,
                                     ceiling_rate_per_s=ceiling_rate_per_s, step=step)
        self.last_search, self.last_runs = found, runs
        return found.rate_per_s, runs[found.rate_per_s]
