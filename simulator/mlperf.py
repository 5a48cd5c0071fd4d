"""MLPerf-style scenario runs: Offline throughput, and Server/Interactive as the highest Poisson rate whose
p99 TTFT and p99 TPOT meet the scenario's limits, with a search over the plans that fit.

How a Server score is found, per candidate plan:
  1. Offline run of the plan (everything queued at t = 0) gives its saturated request rate, used to
     order candidates and to start the rate search at 60% of it.
  2. `search.max_rate_meeting_sla` brackets and bisects the Poisson rate; each evaluation simulates
     `duration_s` seconds of arrivals (default 120 s, at least `MIN_SERVER_QUERIES` queries).
  3. A later candidate is first tried at the best rate so far (+ the tolerance); if it misses, it cannot
     win and costs one run.
A short run hides a slight overload (the queue has too little time to grow): the overshoot is bounded
by about TTFT limit / duration, 1.7% for Server's 2 s limit at 120 s and 0.4% for Interactive's
0.45 s. MLPerf's own 600 s minimum tightens that; `duration_s=600` reproduces it at 5x the cost.

The reported `tokens_per_s` is MLPerf's metric, output tokens per second: for Server/Interactive the
found rate times the mean output length of the issued queries (the steady-state completion rate); for
Offline the completed output tokens over the makespan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from simulator.api import CLUSTER_OPTIONS, RunResult, run_config, serving_config
from simulator.cost import cost_fields
from simulator.errors import ConfigError, InfeasibleError, require_number
from simulator.memory import plan_memory
from simulator.metrics import SLA
from simulator.plan import Plan
from simulator.search import max_rate_meeting_sla, meets_sla
from workloads.requests import Requests
from workloads.scenarios import Scenario, get_scenario

DEFAULT_SERVER_DURATION_S = 120.0
MIN_SERVER_QUERIES = 2000
RATE_TOLERANCE = 0.02
OFFLINE_BATCH_SIZES = (256, 512, 1024)
SERVER_BATCH_SIZES = (64, 128, 256, 512, 1024)
PLAN_PINS = ("tp", "pp", "ep", "max_batch_size", "max_tokens_per_step")


def default_precision(gpu) -> str:
    """What MLPerf submitters run: fp4 on GPUs with an fp4 tensor rate (B200, MI355X), else fp8."""
    return "fp4" if "fp4" in gpu.peak_tflops else "fp8"


@dataclass(frozen=True)
class Candidate:
    plan: Plan
    label: str
    offline_tokens_per_s: float | None = None
    offline_requests_per_s: float | None = None
    outcome: str = ""


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's score with the run that defines it and how it was found."""

    scenario: Scenario
    valid: bool
    tokens_per_s: float
    requests_per_s: float
    run: RunResult
    evaluations: int
    queries: int
    candidates: tuple
    history: tuple
    prediction_log_sigma: float | None = None
    interval: float = 0.8
    cost: dict | None = None          # money and energy at the score (the run's own throughput differs a little)

    def to_dict(self) -> dict:
        summary = self.run.summary
        document = {
            "model": self.scenario.model, "scenario": self.scenario.kind, "gpu": self.run.plan["gpu"],
            "gpus": self.run.plan["gpus"], "tokens_per_s": self.tokens_per_s, "valid": self.valid,
            "requests_per_s": self.requests_per_s, "ttft_p99_s": summary["ttft_p99_s"],
            "tpot_p99_s": summary["tpot_p99_s"], "ttft_p50_s": summary["ttft_p50_s"],
            "tpot_p50_s": summary["tpot_p50_s"], "ttft_limit_s": self.scenario.ttft_p99_s,
            "tpot_limit_s": self.scenario.tpot_p99_s, "tokens_per_s_per_gpu": self.tokens_per_s / self.run.plan["gpus"],
            "queries": self.queries, "evaluations": self.evaluations,
        }
        if self.scenario.kind != "offline":
            document["arrivals_s"] = self.queries / self.requests_per_s
        from simulator.calibrate import interval_fields
        document.update(interval_fields(self.tokens_per_s, self.prediction_log_sigma, self.interval))
        document.update(self.cost if self.cost is not None else self.run.cost)
        document["plan"] = self.run.plan
        document["memory"] = self.run.memory
        document["candidates"] = [{"plan": c.label, "offline_tokens_per_s": c.offline_tokens_per_s,
                                   "outcome": c.outcome} for c in self.candidates]
        return document

    def row(self) -> dict:
        flat = {k: v for k, v in self.to_dict().items() if not isinstance(v, (dict, list))}
        flat.update({k: v for k, v in self.run.plan.items() if not isinstance(v, (dict, list)) and k not in flat})
        return flat


def plan_label(plan: Plan) -> str:
    return f"tp{plan.tp}-pp{plan.pp}-ep{plan.ep}-mbs{plan.max_batch_size}"


def candidate_plans(config, scenario: Scenario, pins: dict) -> tuple[list[Candidate], list[str]]:
    """Plans worth trying on `config.gpus` GPUs: tensor parallel within a server (powers of two), pipeline
    stages only when tensor parallelism alone does not fit, expert parallelism for MoE models, and a few
    batch limits. Returns the candidates that fit in memory and the reasons the others do not."""
    base, model, gpu = config.plan, config.model, config.gpu
    widest = min(config.gpus, gpu.gpus_per_server, 8)
    tps = [pins["tp"]] if pins.get("tp") else [t for t in (1, 2, 4, 8) if t <= widest]
    pps = [pins["pp"]] if pins.get("pp") else [1, 2, 4]
    batch_sizes = ([pins["max_batch_size"]] if pins.get("max_batch_size")
                   else OFFLINE_BATCH_SIZES if scenario.kind == "offline" else SERVER_BATCH_SIZES)
    request_tokens = int(scenario.input_lengths.mean + scenario.output_lengths.mean)
    fitting, rejected, seen = [], [], set()
    for pp in pps:
        for tp in tps:
            if pins.get("ep"):
                eps = [pins["ep"]]
            elif model.is_moe:
                eps = sorted({1, tp} | ({widest} if tp == 1 and widest > 1 else set()))
            else:
                eps = [1]
            for ep in eps:
                for batch in batch_sizes:
                    try:
                        plan = Plan(tp=tp, pp=pp, ep=ep, max_batch_size=batch,
                                    max_tokens_per_step=pins.get("max_tokens_per_step") or base.max_tokens_per_step,
                                    block_size=base.block_size, memory_utilization=base.memory_utilization)
                        if plan.gpus_per_replica > config.gpus:
                            continue
                        plan_memory(model, gpu, config.precision, plan, min(request_tokens, model.max_context))
                    except (ConfigError, InfeasibleError) as exc:
                        rejected.append(f"tp{tp}-pp{pp}-ep{ep}: {exc}")
                        break
                    if plan not in seen:
                        seen.add(plan)
                        fitting.append(Candidate(plan, plan_label(plan)))
        if fitting and not pins.get("pp"):
            break    # deeper pipelines only when nothing fits with fewer stages
    return fitting, rejected


def offline_queries(scenario: Scenario, replicas: int, max_batch_size: int) -> int:
    """MLPerf's sample count, or enough for every replica to fill its batch four times over."""
    return max(scenario.samples, 4 * replicas * max_batch_size)


class ScenarioRunner:
    """Runs one scenario on variations of one cluster config (plans and rates share the seed, so
    comparisons between them use the same queries)."""

    def __init__(self, config, scenario: Scenario, usd_per_gpu_hour=None, duration_s=None, queries=None,
                 step_cost=None):
        self.config, self.scenario, self.usd = config, scenario, usd_per_gpu_hour
        self.step_cost = step_cost      # tests replace the cost model with hand-set step times
        self.duration_s = require_number("--duration", duration_s, low=1, high=1e6) if duration_s is not None \
            else DEFAULT_SERVER_DURATION_S
        self.queries = require_number("--queries", queries, low=1, high=50_000_000, integer=True) \
            if queries is not None else None
        self.evaluations = 0
        self.history = []
        self.sla = SLA(scenario.ttft_p99_s, scenario.tpot_p99_s) if scenario.kind != "offline" else None
        self.info = scenario.describe()

    def config_for(self, plan: Plan):
        return replace(self.config, plan=plan)

    def offline(self, plan: Plan) -> tuple[RunResult, int]:
        config = self.config_for(plan)
        count = self.queries or offline_queries(self.scenario, config.replicas, plan.max_batch_size)
        requests = self.scenario.requests(count, None, self.config.seed)
        result = run_config(config, requests, self.usd, {**self.info, "queries": count}, self.step_cost)
        self.evaluations += 1
        self.history.append((plan_label(plan), None, True, result.summary["ttft_p99_s"], result.summary["tpot_p99_s"]))
        return result, count

    def server_run(self, plan: Plan, rate_per_s: float, tokens_per_s: float | None = None) -> tuple[RunResult, int]:
        """One Poisson run at `rate_per_s`; with `tokens_per_s`, the rate is set so that the drawn queries
        offer exactly that many output tokens per second (arrival times rescaled, still Poisson)."""
        # At least `duration_s` of arrivals: a shorter run hides an overload of up to TTFT limit / duration.
        count = max(self.queries or MIN_SERVER_QUERIES, int(math.ceil(rate_per_s * self.duration_s)))
        requests = self.scenario.requests(count, rate_per_s, self.config.seed)
        if tokens_per_s is not None:
            exact_rate = tokens_per_s / float(requests.output_tokens.mean())
            requests = Requests(requests.arrival_s * (rate_per_s / exact_rate), requests.input_tokens,
                                requests.output_tokens)
            rate_per_s = exact_rate
        result = run_config(self.config_for(plan), requests, self.usd,
                            {**self.info, "rate_per_s": rate_per_s, "queries": count}, self.step_cost)
        self.evaluations += 1
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


def steady_offline_tokens_per_s(arrays: dict, warmup_requests: int = 0) -> tuple[float, float]:
    """Output tokens/s and requests/s of an Offline run in its steady state: from the moment the first
    `warmup_requests` queries (the initial batch fill of every engine) all have their first token, to
    the moment the last queued query gets its first token. Tokens of a query in flight at either edge
    are counted pro rata between its first token and its finish (decode runs at a near-constant pace).
    This drops the start-up fill, when prompts run with no decode output, and the drain tail, when
    engines idle one by one: a 600 s MLPerf run amortises both, a short simulated run would not."""
    import numpy as np
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
    """Steady-state Offline (tokens/s, requests/s) of a run; the warm-up is one full batch per engine."""
    warmup = run.engine_result.engines["count"] * run.plan["max_batch_size"]
    return steady_offline_tokens_per_s(run.engine_result.arrays, warmup)


def server_score(run: RunResult) -> tuple[float, float]:
    """Server/Interactive (tokens/s, requests/s) of a run: its Poisson rate times the mean output of the
    queries it issued, the steady-state completion rate of a valid run (MLPerf's completed tokens/s)."""
    rate_per_s = run.workload["rate_per_s"]
    return rate_per_s * float(run.engine_result.arrays["output_tokens"].mean()), rate_per_s


def mlperf(*, scenario: str = "offline", rate=None, duration_s=None, queries=None, **options) -> ScenarioResult:
    """Score a cluster in an MLPerf scenario (see the module docstring). Options are `serving_config`'s
    (model, gpu, gpus, precision="auto", ...); `tp`, `pp`, `ep`, `max_batch_size`, `max_tokens_per_step`
    given pin the plan, otherwise the best plan that fits is chosen. `rate` scores one given Poisson
    rate instead of searching (its `valid` says whether it met the limits)."""
    unknown = set(options) - set(CLUSTER_OPTIONS)
    if unknown:
        raise ConfigError(f"mlperf: unknown option {sorted(unknown)[0]!r}")
    pins = {key: options.pop(key) for key in PLAN_PINS if options.get(key) is not None}
    for key in PLAN_PINS:
        options.pop(key, None)
    usd = options.pop("usd_per_gpu_hour", None)
    model_name = options.get("model", "llama2-70b")
    config = resolve_config(options, pins)
    the_scenario = get_scenario(config.model.name if not isinstance(model_name, str) else model_name, scenario)
    if rate is not None:
        require_number("--rate", rate, low=0, low_inclusive=False, high=1e7)
        if the_scenario.kind == "offline":
            raise ConfigError("--rate: Offline queues every query at t=0; give --rate only for server or interactive")
    runner = ScenarioRunner(config, the_scenario, usd, duration_s, queries)
    candidates, rejected = candidate_plans(config, the_scenario, pins)
    if not candidates:
        raise InfeasibleError(f"no plan fits {config.gpus} x {config.gpu.name} for {config.model.name}: "
                              + "; ".join(rejected[:3]))
    # Offline score of every candidate: the answer for Offline, the ordering and starting rate otherwise.
    scored = []
    for candidate in candidates:
        result, count = runner.offline(candidate.plan)
        tokens, requests = offline_score(result)
        scored.append((replace(candidate, offline_tokens_per_s=tokens, offline_requests_per_s=requests), result, count))
    scored.sort(key=lambda item: -item[0].offline_tokens_per_s)
    if the_scenario.kind == "offline":
        best, best_run, count = scored[0]
        marked = tuple(replace(c, outcome="best" if c is best else "lower offline throughput") for c, _, _ in scored)
        tokens, requests = offline_score(best_run)
        found = ScenarioResult(the_scenario, best_run.summary["requests_dropped"] == 0, tokens, requests, best_run,
                               runner.evaluations, count, marked, tuple(runner.history))
    else:
        found = _score_given_rate(runner, scored, rate) if rate is not None else _search_server(runner, scored)
    return replace(found, prediction_log_sigma=config.extra.get("prediction_log_sigma"),
                   interval=config.extra.get("interval", 0.8),
                   cost=cost_fields(config.gpu, config.gpus, found.tokens_per_s, usd))


def resolve_config(options: dict, pins: dict):
    """serving_config with precision "auto" resolved per GPU and the plan's pins applied."""
    from simulator.hardware import get_gpu
    options = dict(options)
    if options.get("precision", "auto") == "auto":
        gpu = options.get("gpu", "mi355x")
        gpu_spec = get_gpu(gpu, options.get("gpu_catalog", ())) if isinstance(gpu, str) else gpu
        options["precision"] = default_precision(gpu_spec)
    return serving_config(**options, **pins)


def _score_given_rate(runner: ScenarioRunner, scored, rate: float) -> ScenarioResult:
    """Every candidate at the given rate; the valid one with the lowest p99 TPOT wins (else the closest miss)."""
    outcomes = []
    for candidate, _, _ in scored:
        result, count = runner.server_run(candidate.plan, rate)
        outcomes.append((meets_sla(result.summary, runner.sla), candidate, result, count))
    outcomes.sort(key=lambda o: (not o[0], o[2].summary["tpot_p99_s"] / runner.sla.tpot_p99_s
                                 + o[2].summary["ttft_p99_s"] / runner.sla.ttft_p99_s))
    valid, best, run, count = outcomes[0]
    tokens, requests = server_score(run)
    marked = tuple(replace(c, outcome=("best" if c is best else "valid" if ok else "missed the limits"))
                   for ok, c, _, _ in outcomes)
    return ScenarioResult(runner.scenario, valid, tokens, requests, run, runner.evaluations, count, marked,
                          tuple(runner.history))


def _search_server(runner: ScenarioRunner, scored) -> ScenarioResult:
    best = None       # (rate, candidate, run, count)
    marked, reasons = [], []
    for candidate, _, _ in scored:
        if best is not None:
            probe_rate = best[0] * (1 + RATE_TOLERANCE)
            if candidate.offline_requests_per_s * 1.1 < probe_rate:      # 10% margin: offline is an estimate
                marked.append(replace(candidate, outcome=f"saturates at {candidate.offline_requests_per_s:.4g} "
                                                         f"requests/s offline, below {probe_rate:.4g}"))
                continue
            probe, _ = runner.server_run(candidate.plan, probe_rate)
            if not meets_sla(probe.summary, runner.sla):
                marked.append(replace(candidate, outcome=f"misses the limits at {probe_rate:.4g} requests/s"))
                continue
            start = probe_rate
        else:
            start = 0.6 * candidate.offline_requests_per_s
        try:
            rate, (run, count) = runner.search_rate(candidate.plan, start)
        except InfeasibleError as exc:
            reasons.append(f"{candidate.label}: {exc}")
            marked.append(replace(candidate, outcome=str(exc)))
            continue
        marked.append(replace(candidate, outcome=f"valid up to {rate:.4g} requests/s"))
        if best is None or rate > best[0]:
            best = (rate, candidate, run, count)
    if best is None:
        scenario = runner.scenario
        raise InfeasibleError(f"{scenario.kind} SLA (p99 TTFT <= {scenario.ttft_p99_s:g} s, p99 TPOT <= "
                              f"{scenario.tpot_p99_s:g} s) unreachable with every plan that fits: "
                              + " | ".join(reasons[:3]))
    rate, winner, run, count = best
    marked = tuple(replace(c, outcome=f"best ({c.outcome})") if c.plan == winner.plan else c for c in marked)
    tokens, requests = server_score(run)
    return ScenarioResult(runner.scenario, True, tokens, requests, run, runner.evaluations, count, marked,
                          tuple(runner.history))
