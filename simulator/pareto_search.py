"""The plans and concurrency levels `infersim pareto` tries on one GPU type, the closed-form estimate
that orders and prunes them, and the closed-loop run of one of them.

Plan shapes (tp / pp / ep, attention data-parallel for MoE) are `mlperf.candidate_plans`' (those that
fit in memory); each serves aggregated (continuous or chunked batching) or disaggregated (every split of
the replicas into a prefill and a decode pool). A point is a shape, a serving mode and a concurrency:
that many users in a closed loop, each sending its next request when the last one finishes. The batch
limit of a point is the engine's share of the users, as InferenceX sets `max-num-seqs` to the
concurrency: a smaller limit only makes users wait (same tokens/s and TPOT as fewer users, longer TTFT).

Bound (the decode step of `capacity.replica_capacity`, through `ScenarioRunner.capacity`): with b users
in flight per engine no user gets a token faster than one decode step at b, d(b), and the cluster serves
at most users / d(b) tokens/s. Fewer than b may be in flight (users waiting for prefill), so a point at
concurrency C lies under the curve (1 / d(b), b / d(b)) for b up to C's share: inside the boxes whose
corners are (1 / d(b_i-1), b_i / d(b_i)) over the levels up to C, and (1 / d(1), ...) below the first.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator.api import RunResult, run_config
from simulator.front import front_mask, weakly_dominates
from simulator.mlperf import candidate_plans
from simulator.plan import Plan
from simulator.scenario_runs import ScenarioRunner, plan_label
from workloads.arrivals import ClosedLoop
from workloads.requests import ClosedLoopRequests
from workloads.scenarios import Scenario

AGGREGATED = ("continuous", "chunked")
DISAGGREGATED = "disaggregated"
BATCHING_MODES = AGGREGATED + (DISAGGREGATED,)


@dataclass(frozen=True)
class Mode:
    """How one GPU type's cluster serves: a plan shape, a batching policy, the prefill pool's GPUs."""

    shape: Plan
    batching: str
    prefill_gpus: int = 0

    def label(self, plan: Plan, gpus: int) -> str:
        text = plan_label(plan)
        if self.batching == DISAGGREGATED:
            return f"{text} disagg {self.prefill_gpus}P+{gpus - self.prefill_gpus}D"
        return f"{text} {self.batching}"


@dataclass(frozen=True)
class Candidate:
    mode: Mode
    concurrency: int
    plan: Plan                       # the shape with this point's batch limit
    estimate: tuple[float, float]    # ideal (output tokens/s per user, output tokens/s per GPU), closed form
    corners: tuple = ()              # the bound: corners of boxes whose union holds the point


# The most prefill/decode splits tried per plan shape: every split of up to this many + 1 replicas, else
# this many spread evenly (every split of 4,096 one-GPU replicas ran out of memory past 9 GB).
MAX_SPLITS = 15


def prefill_replica_counts(replicas: int) -> list[int]:
    """The prefill replica counts tried out of `replicas`: 1 .. replicas - 1, or MAX_SPLITS spread evenly."""
    if replicas - 1 <= MAX_SPLITS:
        return list(range(1, replicas))
    return sorted({max(1, min(replicas - 1, round(i * replicas / (MAX_SPLITS + 1)))) for i in range(1, MAX_SPLITS + 1)})


def modes(config, scenario: Scenario, batchings) -> tuple[list[Mode], list[str]]:
    """Every serving mode worth trying on `config.gpus` GPUs, and why shapes that do not fit were refused."""
    plans, rejected = candidate_plans(config, scenario, {})
    shapes = list(dict.fromkeys(replace(p.plan, max_batch_size=1) for p in plans))
    found = []
    for shape in shapes:
        found += [Mode(shape, b) for b in AGGREGATED if b in batchings]
        replicas = config.gpus // shape.gpus_per_replica
        if DISAGGREGATED in batchings:
            found += [Mode(shape, DISAGGREGATED, k * shape.gpus_per_replica) for k in prefill_replica_counts(replicas)]
            if replicas < 2:
                rejected.append(f"{plan_label(shape)} {DISAGGREGATED}: needs a prefill and a decode replica of "
                                f"{shape.gpus_per_replica} GPUs each; the cluster has {config.gpus}")
    return found, rejected


def concurrency_levels(ratio: float, maximum: int, held: float) -> list[int]:
    """Geometric levels 1, r, r^2, ... (rounded, distinct) up to `maximum`, stopping at the first level
    at or above `held`, the users the cluster's KV cache holds at once (more would only queue)."""
    levels, value = [], 1.0
    while True:
        level = int(round(value))
        if level > maximum:
            break
        if not levels or level > levels[-1]:
            levels.append(level)
            if level >= held:
                break
        value *= ratio
    return levels


class GpuSearch:
    """Estimates and runs of one GPU type's cluster (`config`: the resolved base ServingConfig)."""

    def __init__(self, config, scenario: Scenario, requests_per_user: int, usd_per_gpu_hour=None):
        self.config, self.scenario, self.usd = config, scenario, usd_per_gpu_hour
        self.requests_per_user = requests_per_user
        self.runners: dict = {}
        self.kv_held: dict = {}
        self.draws: dict = {}

    def _runner(self, mode: Mode) -> ScenarioRunner:
        """Capacity of the pool whose steps set the per-user rate: the whole cluster, or the decode pool."""
        gpus = self.config.gpus - mode.prefill_gpus
        key = (mode.batching == DISAGGREGATED, gpus)
        if key not in self.runners:
            self.runners[key] = ScenarioRunner(replace(self.config, gpus=gpus, batching="continuous",
                                                       prefill_gpus=0), self.scenario)
        return self.runners[key]

    def engines(self, mode: Mode) -> int:
        """Engines the users spread over (decode engines when disaggregated), each with attention groups."""
        gpus = self.config.gpus - mode.prefill_gpus
        return (gpus // mode.shape.gpus_per_replica) * mode.shape.pp

    def plan_for(self, mode: Mode, concurrency: int) -> Plan:
        return replace(mode.shape, max_batch_size=concurrency)

    def held(self, mode: Mode) -> float:
        """Users the KV cache of the serving pool holds at once (its closed-form batch with no batch limit)."""
        key = (mode.shape, mode.batching == DISAGGREGATED, mode.prefill_gpus)
        if key not in self.kv_held:
            self.kv_held[key] = self._runner(mode).capacity(replace(mode.shape, max_batch_size=65536)).batch
        return self.kv_held[key]

    def ideal(self, mode: Mode, concurrency: int) -> tuple[float, float]:
        """(output tokens/s per user, output tokens/s per GPU) if every step were a pure decode step of the
        users' share of an engine (fewer in flight than that only makes steps faster, hence the whole-share
        floor): an optimistic bound, as prefill work, waiting for it and uneven shares only slow users."""
        per_group = max(1, concurrency // (self.engines(mode) * mode.shape.attention_dp))
        capacity = self._runner(mode).capacity(replace(mode.shape, max_batch_size=per_group))
        per_user = 1.0 / capacity.decode_step_s
        return per_user, min(concurrency, self.held(mode)) * per_user / self.config.gpus

    def candidates(self, all_modes, ratio: float, maximum: int, levels=None) -> list[Candidate]:
        """Every (mode, concurrency) point with its bound: the point lies, within the estimate's error,
        in the union of the boxes under `corners` (users in flight anywhere between one and its level)."""
        found = []
        for mode in all_modes:
            chosen = levels if levels is not None else concurrency_levels(ratio, maximum, self.held(mode))
            corners, previous_x = [], self.ideal(mode, 1)[0]
            for level in chosen:
                x, y = self.ideal(mode, level)
                corners.append((previous_x, y))
                found.append(Candidate(mode, level, self.plan_for(mode, level), (x, y), tuple(corners)))
                previous_x = x
        return found

    def workload(self, concurrency: int) -> ClosedLoopRequests:
        """`concurrency` users sending `requests_per_user` requests each (InferenceX: num_prompts = 10 x
        conc); the lengths are drawn once per concurrency, so every plan serves the same requests."""
        count = concurrency * self.requests_per_user
        if count not in self.draws:
            rng = np.random.default_rng(self.config.seed)
            self.draws[count] = (self.scenario.input_lengths.sample(count, rng),
                                 self.scenario.output_lengths.sample(count, rng))
        inputs, outputs = self.draws[count]
        return ClosedLoopRequests(ClosedLoop(users=concurrency), input_tokens=inputs, output_tokens=outputs)

    def run(self, candidate: Candidate) -> RunResult:
        mode = candidate.mode
        config = replace(self.config, plan=candidate.plan, batching=mode.batching, prefill_gpus=mode.prefill_gpus)
        return run_config(config, self.workload(candidate.concurrency), self.usd,
                          {"users": candidate.concurrency, "requests": candidate.concurrency * self.requests_per_user})

    def search(self, candidates: list[Candidate], margin: float, prune: bool = True, progress=None):
        """Run the candidates, the ones on the front of their bounds first, skipping any whose every bound
        corner, raised by `margin` (the bound's error), is weakly dominated by a point already run: that
        point then weakly dominates the skipped one. Returns [(candidate, run)] for the runs that served
        every request, the candidates skipped, and [(candidate, run)] for runs that dropped requests."""
        likely = front_mask([c.estimate for c in candidates])
        order = sorted(range(len(candidates)), key=lambda i: (not likely[i], -candidates[i].estimate[1]))
        runs, skipped, dropped, seen = [], [], [], []
        for i in order:
            candidate = candidates[i]
            if prune and seen and all(any(weakly_dominates(p, (x * (1 + margin), y * (1 + margin))) for p in seen)
                                      for x, y in candidate.corners):
                skipped.append(candidate)
                continue
            if progress is not None:
                progress(len(runs) + len(dropped) + 1, None, f"{self.config.gpu.name} points simulated "
                         f"({len(skipped)} of {len(candidates)} pruned so far)")
            run = self.run(candidate)
            summary = run.summary
            if summary["requests_dropped"] or not summary["tpot_p50_s"] > 0:
                dropped.append((candidate, run))
                continue
            runs.append((candidate, run))
            seen.append((1.0 / summary["tpot_p50_s"], summary["output_tokens_per_s"] / self.config.gpus))
        return runs, skipped, dropped
