"""Predict a measured row with the simulator, fast enough to sit inside a least-squares fit.

A row is turned into the run that would have measured it: an MLPerf scenario of the row's model and
dataset (Offline, Server or Interactive: the `mlperf` command's plan search and scoring, with the row's
measured tokens per sample), or an open / closed loop of fixed lengths (vLLM and InferenceMAX runs).

Speed: an MLPerf Offline row is simulated once at its anchor efficiency with step traces; under other
efficiencies its score is the traced steps re-priced (exact, `replay`); a measured run longer than the
one `mlperf` would issue is simulated in part and extended by its steady state (`OfflineRow`). A
Server / Interactive row is anchored by a full rate search; between anchors its score moves with how
much faster the anchored run's own steps become (rho): by rho where queueing (TTFT) binds, by
rho^(1 + 1/e) where TPOT binds, e being how steeply p99 TPOT rose with the rate around the threshold
(a faster step also lets the batch grow until TPOT is back at the limit). `refresh` re-anchors with a
new rate search; a fit re-anchors a row once its steps' speed has moved beyond the range where the local
model matches a new search to the search's own resolution (`calibrate.LOCAL_RANGE`).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np

from simulator.api import run_config, serving_config
from workloads.requests import ClosedLoopRequests
from workloads.arrivals import ClosedLoop
from simulator.errors import InfeasibleError
from simulator.hardware import EFFICIENCY_FIELDS, Efficiency, get_gpu
from simulator.measurements import Measurement, fitted_tokens_per_s
from simulator.memory import plan_memory
from simulator.mlperf import PLAN_PINS, score_scenario
from simulator.models import Precision, get_model
from simulator.plan import Plan
from simulator.replay import TraceWindow, busy_time_s, busy_times_s, trace_window
from simulator.engine import StepTrace
from simulator.scenario_runs import (RATE_TOLERANCE, ScenarioRunner, draw_seed, draws_for, geometric_mean,
                                     server_load)
from workloads.requests import Requests
from workloads.scenarios import get_scenario

MLPERF_SCENARIOS = ("offline", "server", "interactive")
THINNED_STEPS = 1500
# Below this the local model would let a 1% faster step lift the rate by more than 3% (exponent 1 + 1/e):
# beyond what one rate search can vouch for, so flatter TPOT curves are treated as this steep.
MIN_ELASTICITY = 0.5
# The log step of calibration's finite differences (`calibrate._sensitivity`) per row model: re-priced
# traces and the local model move smoothly (on the shipped rows, second differences of 1e-6 at steps of
# 0.002 in the global compute, memory and overhead offsets), so a small step keeps the Jacobian's own error
# small: at 0.03 the solver stopped (`xtol`) where its linear model no longer matched the rows. A run
# simulated afresh reorders its events at any change, so its step must move it well past that noise.
REPRICED_DIFFERENCE_STEP = 0.005
SIMULATED_DIFFERENCE_STEP = 0.03
# an Offline run's steady state: between these fractions of its completions (past fill, before drain)
STEADY_FROM, STEADY_TO = 0.25, 0.75
# The plan fields a measured row can state: PLAN_PINS but the step's token budget, which no row reports.
ROW_PINS = tuple(k for k in PLAN_PINS if k != "max_tokens_per_step")


@dataclass(frozen=True)
class RowSpec:
    """What a prediction depends on; measured rows with the same spec share one prediction."""

    model: str
    benchmark: str
    gpu: str
    gpus: int
    scenario: str
    precision: str
    stack: str
    stack_version: str = ""
    output_tokens: float | None = None
    input_tokens: float | None = None
    rate_per_s: float | None = None
    users: int | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    max_batch_size: int | None = None
    queries: int | None = None
    duration_s: float | None = None

    @classmethod
    def of(cls, row: Measurement) -> "RowSpec":
        output = row.output_tokens
        if output and row.scenario in MLPERF_SCENARIOS:
            output = round(math.exp(round(math.log(output), 2)), 1)   # tokens/sample within 1% share a spec
        queries = None
        if row.queries and row.scenario == "offline":     # the count moves a score only through the drain
            queries = round(math.exp(round(math.log(row.queries), 1)))    # tail: counts in one 10% step share
        duration = None
        if row.duration_s and row.scenario in ("server", "interactive"):    # two significant digits: 4,674.3 ->
            duration = float(f"{row.duration_s:.2g}")                          # 4,700 moves a score 0.01%
        return cls(row.model, row.benchmark or row.model, row.gpu, row.gpus, row.scenario, row.precision,
                   row.stack, row.stack_version, output, row.input_tokens, row.rate_per_s, row.users, row.tp, row.pp,
                   row.ep, row.max_batch_size, queries, duration)

    def simulated(self) -> "RowSpec":
        """The run this spec's prediction simulates: the stack and its release only set the efficiencies
        the run is priced at, and a Server run's duration only how its score counts the final query's
        latency, so rows differing in them alone can share one run."""
        return replace(self, stack="", stack_version="", duration_s=None)

    @property
    def label(self) -> str:
        load = f" @{self.rate_per_s:g}/s" if self.rate_per_s else f" x{self.users}u" if self.users else ""
        model = self.model if self.benchmark == self.model else f"{self.model} on {self.benchmark}"
        words = (model, self.gpu, f"x{self.gpus}", self.precision, self.stack, self.stack_version, self.scenario)
        return " ".join(w for w in words if w) + load


def _config(spec: RowSpec, efficiency: Efficiency, model_catalog=(), gpu_catalog=(), seed: int = 0):
    config = serving_config(model=get_model(spec.model, model_catalog), gpu=get_gpu(spec.gpu, gpu_catalog),
                            gpus=spec.gpus, precision=Precision.parse(spec.precision), seed=seed)
    return replace(config, efficiency=efficiency)


def _pins(spec: RowSpec, plans: dict | None = None) -> dict:
    """The plan fields a row fixes: its own, else the plan a row of the same system, model and scenario
    already chose (`plans`, keyed by `plan_key`: measured tokens per sample or a stack release do not
    change which plan is best, so the search runs once per system)."""
    own = {k: getattr(spec, k) for k in ROW_PINS if getattr(spec, k)}
    return own or dict((plans or {}).get(plan_key(spec), {}).get("pins", {}))


def plan_key(spec: RowSpec) -> tuple:
    return (spec.model, spec.benchmark, spec.gpu, spec.gpus, spec.precision, spec.scenario)


def _remember(plans: dict | None, spec: RowSpec, plan, tokens_per_s: float) -> None:
    if plans is not None:
        plans.setdefault(plan_key(spec), {"pins": {k: getattr(plan, k) for k in ROW_PINS},
                                          "output_tokens_per_s": tokens_per_s})


def _start_rate(spec: RowSpec, plans: dict | None, runner: ScenarioRunner) -> float | None:
    """Where a Server row's rate search starts: the rate at which a row of the same system, model and
    scenario scored (its tokens/s at this row's tokens per sample), else the search's own estimate."""
    earlier = (plans or {}).get(plan_key(spec))
    return earlier["output_tokens_per_s"] / runner.output_mean if earlier else None


class OfflineRow:
    """An MLPerf Offline row: the best plan at the anchor efficiency, its scored run re-priced. The score
    is that of a run of as many queries as the measured one issued (else as many as `mlperf` would
    issue): with long outputs the drain tail after the last query starts weighs on the score, more so in
    a short run, and measured runs last 640-19,000 s (median 2,700). A measured run longer than the one
    `mlperf` would issue (up to 4M queries, 30 times as many) is simulated for `mlperf`'s count, or
    `scenario_runs.PREFIX_QUERIES_PER_REPLICA` per replica if more, and extended by its steady state:
    the queries beyond take what as many output tokens took between the simulated run's first and last
    quarter of completions (re-priced like the rest), so fill and drain tail are counted once, as in
    the measured run. Against simulating every query, on the 60 longest shipped rows: 0.3-0.7% rms,
    at most 2.5%, across efficiencies (lengths are sampled: the extension stands for other draws)."""

    difference_step = REPRICED_DIFFERENCE_STEP

    def __init__(self, spec: RowSpec, anchor: Efficiency, model_catalog=(), gpu_catalog=(), plans=None, seed=0):
        self.spec = spec
        config = _config(spec, anchor, model_catalog, gpu_catalog, seed)
        scenario = get_scenario(spec.benchmark, "offline")
        runner = ScenarioRunner(config, scenario, output_tokens_mean=spec.output_tokens, queries=spec.queries,
                                record_steps=True, long_runs_as_prefix=True)
        result = score_scenario(runner, _pins(spec, plans))
        run = result.run.engine_result
        self.plan = result.scored_plan(config.plan)
        self.plan_label = next((c.label for c in result.candidates if c.outcome == "best"), "")
        self.tokens = float(run.arrays["output_tokens"].sum())
        replicas = replace(config, plan=self.plan).replicas
        self.scale = replicas / run.summary.get("replicas_simulated", replicas)
        self.traces, self.costs = run.traces, run.step_costs
        # the measured run's queries beyond the simulated ones, per simulated query
        self.extension = max(0.0, (spec.queries or 0) / result.queries - 1.0)
        self.steady = [steady_window(trace) for trace in self.traces] if self.extension else []
        self.anchor_score = self.predict(anchor) if self.extension else result.tokens_per_s
        _remember(plans, spec, self.plan, self.anchor_score)

    def predict(self, efficiency: Efficiency) -> float:
        makespans = []
        for k, (trace, cost) in enumerate(zip(self.traces, self.costs)):
            window = self.steady[k] if self.steady else None      # a run extended by its steady state
            busy, steady = busy_times_s(trace, cost.with_efficiency(efficiency), (window,) if window else ())
            if window:
                busy += self.extension * trace.finished_tokens * steady[0] / window.tokens
            makespans.append(busy)
        return self.tokens * (1.0 + self.extension) * self.scale / max(makespans)

    def refresh(self, efficiency: Efficiency, tolerance: float = 0.0) -> None:
        """Offline traces do not depend on the efficiency: nothing to re-anchor."""


class ServerRow:
    """An MLPerf Server / Interactive row: best plan and rate at an anchor, a local model between. The
    local model moves the rate the run issues queries at; the score counts it over the measured run's
    duration (else the simulated run's), to the final query's completion (`scenario_runs.server_score`),
    whose latency scales with the steps' time. Given pins fix the plan (a later draw of a DrawnServerRow
    runs the first one's)."""

    difference_step = REPRICED_DIFFERENCE_STEP

    def __init__(self, spec: RowSpec, anchor: Efficiency, model_catalog=(), gpu_catalog=(), plans=None, seed=0,
                 pins: dict | None = None):
        self.spec, self.catalogs, self.seed = spec, (model_catalog, gpu_catalog), seed
        config = _config(spec, anchor, model_catalog, gpu_catalog, seed)
        self.scenario = get_scenario(spec.benchmark, spec.scenario)
        runner = ScenarioRunner(config, self.scenario, output_tokens_mean=spec.output_tokens, record_steps=True,
                                early_stop=True)
        pins = _pins(spec, plans) if pins is None else pins
        result = score_scenario(runner, pins, start_rate_per_s=_start_rate(spec, plans, runner))
        self.plan = result.scored_plan(config.plan)
        _remember(plans, spec, self.plan, result.tokens_per_s)
        self.plan_label = next((c.label for c in result.candidates if c.outcome.startswith("best")), "")
        self._anchor(anchor, runner, result.run)

    def _anchor(self, efficiency: Efficiency, runner: ScenarioRunner, run) -> None:
        self.anchor_efficiency = efficiency
        self.anchor_rate = run.workload["rate_per_s"]
        self.queries = int(run.summary["requests_total"])
        self.load = server_load(run)
        engine = run.engine_result
        # the local model needs a ratio of busy times: an evenly thinned trace gives it to well under 0.1%
        self.traces, self.costs = tuple(thinned(t) for t in engine.traces), engine.step_costs
        self.anchor_busy = sum(busy_time_s(t, c) for t, c in zip(self.traces, self.costs))
        self.binding, self.elasticity = _binding_limit(runner.last_search, self.scenario)

    def speedup(self, efficiency: Efficiency) -> float:
        busy = sum(busy_time_s(t, c.with_efficiency(efficiency)) for t, c in zip(self.traces, self.costs))
        return self.anchor_busy / busy

    def rate_factor(self, rho: float) -> float:
        """How much faster queries can be issued when the anchored run's steps run `rho` times faster."""
        return rho ** (1.0 + 1.0 / self.elasticity if self.binding == "tpot" else 1.0)

    def predict(self, efficiency: Efficiency) -> float:
        rho = self.speedup(efficiency)
        return self.load.scored(self.load.tokens_per_s * self.rate_factor(rho), self.spec.duration_s, rho)

    def refresh(self, efficiency: Efficiency, tolerance: float = 0.0) -> None:
        """A new rate search at `efficiency` for the anchored plan, started where the local model says;
        skipped when the anchored run's steps change by less than `tolerance` (log), where the local
        model is as good as a new search."""
        if tolerance and abs(math.log(self.speedup(efficiency))) < tolerance:
            return
        model_catalog, gpu_catalog = self.catalogs
        config = replace(_config(self.spec, efficiency, model_catalog, gpu_catalog, self.seed), plan=self.plan)
        runner = ScenarioRunner(config, self.scenario, output_tokens_mean=self.spec.output_tokens, record_steps=True,
                                early_stop=True)
        guess = self.anchor_rate * self.rate_factor(self.speedup(efficiency))
        # the local model is good to a few percent: start one tolerance below the guess and step by one
        # tolerance (two or three runs bracket the rate; before: a 4% bracket bisected, three or four)
        step = 1 + 0.999 * RATE_TOLERANCE
        try:
            rate, (run, _) = runner.search_rate(self.plan, guess / step, step=step)
        except InfeasibleError:     # no rate meets the limits there (an idle system's longest prompt
            return                  # misses TTFT): the local model, steeply down, stays the row's
        self._anchor(efficiency, runner, run)


class DrawnServerRow:
    """A Server / Interactive row whose run issues few queries, predicted as the geometric mean of its
    draws (`scenario_runs.DRAW_QUERIES`), each a `ServerRow` anchored on its own run."""

    difference_step = REPRICED_DIFFERENCE_STEP

    def __init__(self, draws):
        self.draws = tuple(draws)

    @property
    def spec(self) -> RowSpec:
        return self.draws[0].spec

    @spec.setter
    def spec(self, spec: RowSpec) -> None:
        for draw in self.draws:
            draw.spec = spec

    @property
    def plan(self):
        return self.draws[0].plan

    @property
    def plan_label(self) -> str:
        return self.draws[0].plan_label

    def __copy__(self):
        return DrawnServerRow(copy.copy(draw) for draw in self.draws)

    def predict(self, efficiency: Efficiency) -> float:
        return geometric_mean([draw.predict(efficiency) for draw in self.draws])

    def refresh(self, efficiency: Efficiency, tolerance: float = 0.0) -> None:
        for draw in self.draws:
            draw.refresh(efficiency, tolerance)


def server_row(spec: RowSpec, anchor: Efficiency, model_catalog=(), gpu_catalog=(), plans=None, seed=0):
    """`ServerRow`, or a `DrawnServerRow` of as many draws as `scenario_runs.draws_for` asks: the first
    searches the plan, the others run that plan (their rate searches start at its rate). A later draw
    whose queries meet the limits at no rate is left out (the first did)."""
    plans = {} if plans is None else plans
    first = ServerRow(spec, anchor, model_catalog, gpu_catalog, plans, seed)
    draws = draws_for(first.queries)
    if draws <= 1:
        return first
    pins = {k: getattr(first.plan, k) for k in ROW_PINS}
    others = []
    for k in range(1, draws):
        try:
            others.append(ServerRow(spec, anchor, model_catalog, gpu_catalog, plans, draw_seed(seed, k), pins))
        except InfeasibleError:
            continue
    return DrawnServerRow([first, *others]) if others else first


def steady_window(trace: StepTrace) -> TraceWindow:
    """The steps between the marks nearest a quarter and three quarters of the trace's completions (past
    the fill at the start and before the drain tail at the end); the whole trace when it has too few
    marks."""
    total = trace.finished_requests
    inside = [m for m in trace.marks if STEADY_FROM * total <= m[0] <= STEADY_TO * total]
    return trace_window(trace, inside[0], inside[-1]) if len(inside) >= 2 else trace_window(trace)


def thinned(trace: StepTrace, keep: int = THINNED_STEPS) -> StepTrace:
    """Every k-th prompt step and decode stretch of a long trace (their busy time scales by k)."""
    every = max(1, math.ceil(max(len(trace.prompt_steps), len(trace.decode_stretches)) / keep))
    return StepTrace(trace.prompt_steps[::every], trace.decode_stretches[::every]) if every > 1 else trace


def _binding_limit(search, scenario) -> tuple[str, float]:
    """Which limit stopped the rate search just above the found rate, and d log p99 TPOT / d log rate
    there (clamped; 1 when the history cannot tell). A probe stopped early names the limit it was bound
    to miss, but its p99s cover only the requests that had finished: the TPOT slope then comes from the
    two highest passing runs."""
    history = sorted(search.history, key=lambda h: h[0])
    good = [h for h in history if h[1]]
    bad = [h for h in history if not h[1] and good and h[0] > good[-1][0]]
    if not good or not bad:
        return "ttft", 1.0
    lower, upper = good[-1], bad[0]
    stopped_by = upper[4]
    if stopped_by:
        if stopped_by != "tpot":
            return "ttft", 1.0
        if len(good) < 2:
            return "tpot", 1.0
        lower, upper = good[-2], good[-1]
    elif (upper[3] or 0) / scenario.tpot_p99_s <= (upper[2] or 0) / scenario.ttft_p99_s:
        return "ttft", 1.0
    (r_low, _, _, tpot_low, _), (r_high, _, _, tpot_high, _) = lower, upper
    if not (tpot_low and tpot_high) or r_high <= r_low:
        return "tpot", 1.0
    elasticity = math.log(tpot_high / tpot_low) / math.log(r_high / r_low)
    return "tpot", float(np.clip(elasticity, MIN_ELASTICITY, 5.0))


class StreamRow:
    """An open (Poisson at rate_per_s) or closed (`users` concurrent) loop of fixed lengths, simulated
    afresh for each efficiency (these are a user's own few rows)."""

    difference_step = SIMULATED_DIFFERENCE_STEP

    def __init__(self, spec: RowSpec, anchor: Efficiency, model_catalog=(), gpu_catalog=(), plans=None, seed=0):
        self.spec, self.catalogs, self.seed = spec, (model_catalog, gpu_catalog), seed
        self.cache: dict = {}
        model = get_model(spec.model, model_catalog)
        tp = spec.tp or _smallest_tp(spec, model, get_gpu(spec.gpu, gpu_catalog))
        self.plan = Plan(tp=tp, pp=spec.pp or 1, ep=spec.ep or 1, max_batch_size=spec.max_batch_size or 256)
        self.plan_label = f"tp{self.plan.tp}-mbs{self.plan.max_batch_size}"
        self.anchor_score = self.predict(anchor)

    def run(self, efficiency: Efficiency) -> dict:
        key = tuple(round(getattr(efficiency, f), 12) for f in EFFICIENCY_FIELDS)
        if key not in self.cache:
            spec = self.spec
            config = replace(_config(spec, efficiency, *self.catalogs, self.seed), plan=self.plan)
            inputs, outputs = round(spec.input_tokens), round(spec.output_tokens)
            if spec.scenario == "open":
                count = int(min(4000, max(400, spec.rate_per_s * 120)))
                arrival = np.cumsum(np.random.default_rng(self.seed).exponential(1 / spec.rate_per_s, count))
                workload = Requests(arrival - arrival[0], np.full(count, inputs), np.full(count, outputs))
            else:
                count = int(min(5000, max(8 * spec.users, 200)))
                workload = ClosedLoopRequests(ClosedLoop(users=spec.users), input_tokens=np.full(count, inputs),
                                              output_tokens=np.full(count, outputs))
            self.cache[key] = run_config(config, workload).summary
        return self.cache[key]

    def predict(self, efficiency: Efficiency) -> float:
        """The simulated run's `measurements.fitted_tokens_per_s`."""
        summary = self.run(efficiency)
        return fitted_tokens_per_s(self.spec.scenario, summary["output_tokens_per_s"], summary["tpot_p50_s"])

    def refresh(self, efficiency: Efficiency, tolerance: float = 0.0) -> None:
        """Simulated afresh each time: nothing to re-anchor."""


def _smallest_tp(spec: RowSpec, model, gpu) -> int:
    tokens = min(int((spec.input_tokens or 1024) + (spec.output_tokens or 256)), model.max_context)
    for tp in (1, 2, 4, 8, 16):
        if tp > spec.gpus:
            break
        try:
            plan_memory(model, gpu, Precision.parse(spec.precision), Plan(tp=tp), tokens)
            return tp
        except InfeasibleError:
            continue
    raise InfeasibleError(f"does not fit on {spec.gpus} {gpu.name} at any tp")   # callers name the row


def needs_anchor_search(spec: RowSpec) -> bool:
    """Server/Interactive rows: their model is anchored by a rate search at one efficiency."""
    return spec.scenario in ("server", "interactive")


def row_model(spec: RowSpec, anchor: Efficiency, model_catalog=(), gpu_catalog=(), plans: dict | None = None,
              seed: int = 0):
    """The row's model; `plans` (shared across calls) lets rows of one system, model and scenario reuse
    the plan the first of them searched for; `seed` draws its simulated runs' requests."""
    kind = {"offline": OfflineRow, "server": server_row, "interactive": server_row}.get(spec.scenario, StreamRow)
    return kind(spec, anchor, model_catalog, gpu_catalog, plans, seed)
