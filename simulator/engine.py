"""Build a serving cluster in a SimPy environment, feed it a workload, run it, return a `Result`.

The path of one request: the arrival process (open loop: pre-drawn times; closed loop: a user's next
request after the previous one finishes) hands it to the router, which picks an engine; the engine's
batching policy admits it into a step; the cost model prices every step; the request's first-token
and finish times land in the shared `RequestTable`; metrics summarise the table at the end.
"""
from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import simpy

import networkx as nx

from simulator.costmodel import Communication, StepCost
from simulator.errors import ConfigError, require_choice, require_number
from simulator.hardware import Efficiency, GPUSpec
from simulator.intervals import DEFAULT_INTERVAL
from simulator.memory import MemoryPlan, plan_memory
from simulator.metrics import SLA, LatencyHistogram, summarize
from simulator.models import ModelSpec, Precision
from simulator.plan import BATCHING_POLICIES, MAX_GPUS, Plan
from simulator.replica import Engine, StepTrace, _ceil_div
from simulator.requests_state import RequestTable
from simulator.router import ROUTERS
from simulator.scheduling import POLICIES
from topologies import FlowNetwork, NetworkError, all_reduce, all_to_all, load_topology, place, send_recv


@dataclass(frozen=True)
class ClosedLoopWorkload:
    """N users, each sending its next request `think_time_s` after the previous one finishes, until
    `len(input_tokens)` requests have been sent (the lengths are drawn up front)."""

    users: int
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    think_time_s: float = 0.0

    def __post_init__(self):
        require_number("users", self.users, low=1, high=10_000_000, integer=True)
        require_number("think_time_s", self.think_time_s, low=0, high=1e6)
        if len(self.input_tokens) != len(self.output_tokens) or len(self.input_tokens) == 0:
            raise ConfigError("closed loop: input and output length arrays must be non-empty and equal in size")


@dataclass(frozen=True)
class ChunkedWorkload:
    """An open-loop stream too long to hold: `chunks()` yields `Requests` batches with increasing arrival
    times. `simulate` then runs with a StreamingTable (bounded memory, histogram percentiles)."""

    chunks: object        # a callable returning an iterator of Requests chunks (called once per run)


@dataclass(frozen=True)
class ServingConfig:
    """Everything about the cluster a run needs besides the workload."""

    model: ModelSpec
    gpu: GPUSpec
    gpus: int
    precision: Precision = Precision()
    plan: Plan = Plan()
    efficiency: Efficiency = Efficiency()
    batching: str = "continuous"
    router: str = "round-robin"
    prefill_gpus: int = 0
    kv_transfer_gb_per_s: float | None = None
    kv_transfer_latency_s: float = 20e-6
    topology: nx.Graph | None = field(default=None, hash=False, compare=False)
    failures: tuple = ()      # (("gpu", index, time_s) | ("link", a, b, time_s), ...)
    seed: int = 0
    max_time_s: float | None = None
    sla: SLA | None = None
    stack: str | None = None
    prediction_log_sigma: float | None = None     # from the profile's fit: intervals around predictions
    interval: float = DEFAULT_INTERVAL

    def __post_init__(self):
        require_number("--gpus", self.gpus, low=1, high=MAX_GPUS, integer=True)
        self.plan.replicas_for(self.gpus)           # at least one replica fits
        self.model.check_tensor_parallel(self.plan.tp)
        require_choice("--batching", self.batching, BATCHING_POLICIES)
        require_choice("--router", self.router, ROUTERS)
        require_number("--seed", self.seed, low=0, high=2**63 - 1, integer=True)
        require_number("--interval", self.interval, low=0, low_inclusive=False, high=0.999)
        if self.max_time_s is not None:
            require_number("--max-time", self.max_time_s, low=0, low_inclusive=False, high=1e9)
        if self.kv_transfer_gb_per_s is not None:
            require_number("--kv-transfer-gb-per-s", self.kv_transfer_gb_per_s, low=0, low_inclusive=False, high=1e6)
            if self.batching != "disaggregated":
                raise ConfigError("--kv-transfer-gb-per-s: only meaningful with --batching disaggregated "
                                  "(no KV hand-off happens otherwise)")
        try:   # the GPU must have tensor rates for the deployment's number formats
            self.gpu.peak_flops(self.precision.gemm_dtype)
            self.gpu.peak_flops(self.precision.attention_dtype)
        except ConfigError as exc:
            raise ConfigError(f"--precision: {exc}") from None
        if self.batching == "disaggregated":
            require_number("--prefill-gpus", self.prefill_gpus, low=self.plan.gpus_per_replica,
                           high=self.gpus - self.plan.gpus_per_replica, integer=True)
            if self.prefill_gpus % self.plan.gpus_per_replica:
                raise ConfigError(f"--prefill-gpus: {self.prefill_gpus} must be a multiple of the replica size "
                                  f"{self.plan.gpus_per_replica}")
        elif self.prefill_gpus:
            raise ConfigError("--prefill-gpus: only meaningful with --batching disaggregated")
        for failure in self.failures:
            require_number("--fail time", failure[-1], low=0, high=1e9)

    @property
    def replicas(self) -> int:
        return self.plan.replicas_for(self.gpus)


@dataclass(frozen=True)
class Result:
    """What one run measured: the summary (units in every key), the plan and memory layout used, and
    the per-request arrays for anyone who wants more."""

    summary: dict
    plan: dict
    memory: dict
    engines: dict
    arrays: dict = field(repr=False, hash=False, compare=False)
    dropped: dict = field(repr=False, hash=False, compare=False)
    traces: tuple = field(default=(), repr=False, hash=False, compare=False)   # per engine, when recorded
    step_costs: tuple = field(default=(), repr=False, hash=False, compare=False)  # per engine
    warnings: tuple = ()      # what a reader of the numbers must know: idle GPUs, drops, a failed cluster

    def to_dict(self) -> dict:
        return {**self.summary, "plan": self.plan, "memory": self.memory, "engines": self.engines,
                "warnings": list(self.warnings)}


def replica_communication(graph: nx.Graph, placement, replica: int, plan: Plan, efficiency: Efficiency) -> Communication:
    """The collectives one replica's step needs, priced on the topology: tp all-reduce inside a stage's
    tp group, ep all-to-all over the expert group, pp hand-off over the slowest stage boundary."""
    eff = efficiency.collective_efficiency
    tp_group = placement.tp_group(replica)
    tp_cost = all_reduce(graph, tp_group, eff) if plan.tp > 1 else None
    ep_cost = all_to_all(graph, placement.ep_group(replica, plan.ep), eff) if plan.ep > 1 else None
    pp_cost = None
    if plan.pp > 1:
        stages = placement.stage_groups(replica)
        boundaries = [send_recv(graph, stages[k][0][0], stages[k + 1][0][0], eff) for k in range(plan.pp - 1)]
        pp_cost = max(boundaries, key=lambda cost: cost.time_s(1 << 20))
    return Communication(tp_all_reduce=tp_cost, ep_all_to_all=ep_cost, pp_send_recv=pp_cost)


def replica_layout(config: ServingConfig, typical_request_tokens: int) -> tuple[StepCost, MemoryPlan]:
    """Replica 0's step-cost model on the cluster's topology and its memory plan, without simulating
    (to rank plans and size runs)."""
    memory = plan_memory(config.model, config.gpu, config.precision, config.plan, typical_request_tokens)
    graph = config.topology if config.topology is not None else load_topology("auto", config.gpu, config.gpus)
    placement = place(graph, config.plan.tp, config.plan.pp, config.plan.attention_dp, replicas=config.replicas,
                      gpus=config.gpus)
    communication = replica_communication(graph, placement, 0, config.plan, config.efficiency)
    return StepCost(config.model, config.gpu, config.precision, config.plan, config.efficiency, communication), memory


# Why a request did not finish: the keys of `requests_dropped_by_reason`. Each text is fixed for a run, so
# counting requests by text counts them by cause.
NO_ENGINE = "no engine left alive after failures"
NO_PREFILL_ENGINE = "no prefill engine left alive after failures"
NO_DECODE_ENGINE = "no decode engine left alive after failures"
HANDOFF_UNREACHABLE = "KV hand-off found no route to a live decode engine after a link failure"
CLUSTER_DOWN = (NO_ENGINE, NO_PREFILL_ENGINE, NO_DECODE_ENGINE)
UNFINISHED = "unfinished when the simulation stopped at {:.3f} s"     # --max-time: expected, no warning


class Cluster:
    """The engines of one run, their routers and the callbacks that move requests between them."""

    def __init__(self, config: ServingConfig, table: RequestTable, typical_request_tokens: int,
                 step_cost: StepCost | None = None, simulated_replicas: int | None = None,
                 record_steps: bool = False):
        self.config, self.table = config, table
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(config.seed)
        plan = config.plan
        self.memory: MemoryPlan = plan_memory(config.model, config.gpu, config.precision, plan,
                                              typical_request_tokens)
        self.graph = config.topology if config.topology is not None else load_topology("auto", config.gpu, config.gpus)
        self.graph = self.graph.copy()   # failures edit it
        self.placement = place(self.graph, plan.tp, plan.pp, plan.attention_dp, replicas=config.replicas,
                               gpus=config.gpus)
        self.network = FlowNetwork(self.env, self.graph)
        self.step_cost_override = step_cost
        self.itl = LatencyHistogram()
        per_token = self.memory.kv_bytes_per_token_per_gpu
        self.window_blocks = _ceil_div(int(math.ceil(self.memory.window_bytes_per_sequence_per_gpu / per_token)),
                                       plan.block_size) if self.memory.window_bytes_per_sequence_per_gpu else 0
        blocks_per_engine = self.memory.kv_blocks_per_replica // plan.pp
        replicas = config.replicas if simulated_replicas is None else simulated_replicas
        prefill_replicas = config.prefill_gpus // plan.gpus_per_replica if config.batching == "disaggregated" else 0
        self.on_user_finish = None
        self.engines: list[Engine] = []
        self.replica_of: list[int] = []
        self.prefill_pool: list[Engine] = []
        self.decode_pool: list[Engine] = []
        costs = {}
        for replica in range(replicas):
            cost = self._replica_cost(replica, costs)
            for stage_engine in range(plan.pp):   # pipeline parallelism: pp virtual engines in flight
                if config.batching == "disaggregated":
                    role = "prefill-only" if replica < prefill_replicas else "decode-only"
                else:
                    role = config.batching
                engine = Engine(self.env, len(self.engines), table, cost, POLICIES[role](),
                                blocks_per_engine, plan.block_size, self.window_blocks, self.itl,
                                on_finish=self._finished,
                                on_prefilled=self._prefilled if role == "prefill-only" else None,
                                trace=StepTrace() if record_steps else None)
                self.engines.append(engine)
                self.replica_of.append(replica)
                (self.prefill_pool if role == "prefill-only" else self.decode_pool).append(engine)
        self.cost = self.engines[0].cost
        self.simulated_replicas = replicas
        if replicas < config.replicas:
            # Representative mode: the replicas left out must be exact copies of the ones simulated.
            for replica in range(replicas, config.replicas):
                if self._replica_cost(replica, costs) is not self.cost:
                    raise ConfigError("representative run: replicas differ in their collectives on this "
                                      "topology; simulate the whole cluster")
        self.entry_pool = self.prefill_pool or self.decode_pool
        self.router = ROUTERS[config.router](self.rng)
        self.handoff_router = ROUTERS[config.router](self.rng)
        self.kv_transfer_bytes_per_s = config.kv_transfer_gb_per_s * 1e9 if config.kv_transfer_gb_per_s else None
        # a hand-off moves every rank's shard (replicated KV heads once per rank that holds them)
        kv, tp = config.precision.kv_cache, plan.tp
        self.kv_bytes_per_token = config.model.kv_bytes_per_token(kv, tp) * tp
        self.kv_window_bytes = config.model.kv_bytes_per_sequence_window(kv, tp) * tp
        self.blocks_per_engine = blocks_per_engine
        self.too_long = f"prompt + output longer than {config.model.name}'s {config.model.max_context}-token context"
        self.too_large = (f"needs more KV blocks than an engine holds ({blocks_per_engine} blocks of "
                          f"{plan.block_size} tokens)")
        self.no_entry = NO_PREFILL_ENGINE if self.prefill_pool else NO_ENGINE
        self.down_at_s: float | None = None        # when failures left no engine able to serve
        self.delivered: set[int] = set()           # disaggregated: first token already at the user
        self.failed_gpus: list[str] = []
        for failure in config.failures:
            if failure[0] == "gpu" and not 0 <= failure[1] < config.gpus:
                raise ConfigError(f"--fail gpu:{failure[1]}: no such GPU (GPUs are 0..{config.gpus - 1})")
            if failure[0] == "link" and not self.graph.has_edge(failure[1], failure[2]):
                raise ConfigError(f"--fail link:{failure[1]}-{failure[2]}: no such link in the topology")
            self.env.process(self._fail_at(failure))

    def _replica_cost(self, replica: int, cache: dict) -> StepCost:
        """StepCost of one replica on the current graph (replicas with identical collectives share one)."""
        if self.step_cost_override is not None:
            return self.step_cost_override
        config = self.config
        communication = replica_communication(self.graph, self.placement, replica, config.plan, config.efficiency)
        key = tuple(None if c is None else c.options for c in
                    (communication.tp_all_reduce, communication.ep_all_to_all, communication.pp_send_recv))
        if key not in cache:
            cache[key] = StepCost(config.model, config.gpu, config.precision, config.plan, config.efficiency,
                                  communication)
        return cache[key]

    # ---- moving requests ------------------------------------------------------------------------
    def admissible(self, rid: int) -> bool:
        """A request the model can take (prompt + output within its context) whose whole context fits one
        engine's KV cache; otherwise dropped with the reason."""
        table = self.table
        total = table.input_tokens[rid] + table.output_tokens[rid]
        if total > self.config.model.max_context:
            self._drop(rid, self.too_long)
            return False
        need = _ceil_div(total, self.config.plan.block_size) + self.window_blocks
        if need > self.blocks_per_engine:
            self._drop(rid, self.too_large)
            return False
        return True

    def route(self, rid: int) -> None:
        if not self.admissible(rid):
            return
        index = self.router.choose(self.entry_pool)
        if index is None:
            self._drop(rid, self.no_entry)
            return
        self.entry_pool[index].submit(rid)

    def _drop(self, rid: int, reason: str) -> None:
        self.delivered.discard(rid)
        self.table.drop(rid, reason)

    def _finished(self, rid: int, engine: Engine) -> None:
        self.delivered.discard(rid)
        if self.on_user_finish is not None:
            self.on_user_finish(rid)
        self.table.retire(rid)

    def _prefilled(self, rid: int, engine: Engine) -> None:
        """Disaggregated: hold the prompt's KV on the prefill engine while it streams to a decode engine."""
        table = self.table
        context = table.input_tokens[rid] + table.generated[rid]
        blocks = _ceil_div(context + 1, self.config.plan.block_size) + self.window_blocks
        engine.reserved_blocks += blocks
        engine.outstanding -= 1
        self.env.process(self._transfer(rid, engine, blocks, context))

    def _transfer(self, rid: int, source: Engine, blocks: int, context: int):
        """Stream the prompt's KV from the prefill replica to a live decode replica: with a fixed bandwidth
        when one is given, else rank-to-rank flows on the topology sharing links with other transfers.

        Failures on the way: if the decode engine dies before the KV lands, the KV goes to another live
        one (sent again); if the prefill engine dies first, its KV is lost and the request starts over
        at a prefill engine (keeping the tokens it streamed, as after any failure); with no decode engine
        left, or none the network still reaches, the request is dropped saying which."""
        nbytes = self.kv_bytes_per_token * context + self.kv_window_bytes
        table = self.table
        unreachable: set[int] = set()
        while True:
            if not source.alive:
                source.release_reserved(blocks)
                table.engine[rid] = -1
                self.route(rid)
                return
            target = self._pick_decode(unreachable)
            if target is None:
                source.release_reserved(blocks)
                alive = any(e.alive for e in self.decode_pool)
                self._drop(rid, HANDOFF_UNREACHABLE if alive else NO_DECODE_ENGINE)
                self._note_down()
                return
            landed = yield from self._send_kv(source, target, nbytes)
            if landed is None:
                unreachable.add(target.index)
            elif landed:
                break
        source.release_reserved(blocks)
        now = self.env.now
        if rid not in self.delivered:          # a retry after a decode failure keeps its first token's time
            self.delivered.add(rid)
            table.first_token_s[rid] = now     # the first token reaches the user with its KV
        if table.generated[rid] >= table.output_tokens[rid]:
            table.finish_s[rid] = now
            self._finished(rid, source)
            return
        target.receive_handoff(rid)

    def _pick_decode(self, excluded: set) -> Engine | None:
        pool = self.decode_pool if not excluded else [e for e in self.decode_pool if e.index not in excluded]
        index = self.handoff_router.choose(pool)
        return None if index is None else pool[index]

    def _send_kv(self, source: Engine, target: Engine, nbytes: float):
        """Move one hand-off's KV: True when it landed with both engines still alive, False when either
        died on the way, None when the network has no route between them any more."""
        if self.kv_transfer_bytes_per_s is not None:
            yield self.env.timeout(self.config.kv_transfer_latency_s + nbytes / self.kv_transfer_bytes_per_s)
            return source.alive and target.alive
        senders = self.placement.gpus(self.replica_of[source.index])
        receivers = self.placement.gpus(self.replica_of[target.index])
        flows = [self.env.process(self._flow(a, b, nbytes / len(senders))) for a, b in zip(senders, receivers)]
        done = yield self.env.all_of(flows)
        if not (source.alive and target.alive):
            return False
        return True if all(done.values()) else None

    def _flow(self, a: str, b: str, nbytes: float):
        """One rank's share of a hand-off; False when the network loses its route. (Each flow catches its
        own failure: a condition over several failing flows would leave all but the first unhandled.)"""
        try:
            yield self.network.transfer(a, b, nbytes)
        except NetworkError:
            return False
        return True

    def _note_down(self) -> None:
        if self.down_at_s is None:
            self.down_at_s = float(self.env.now)

    # ---- failures -------------------------------------------------------------------------------
    def _fail_at(self, failure):
        yield self.env.timeout(failure[-1])
        if failure[0] == "gpu":
            gpu = f"gpu{failure[1]}"
            if gpu not in self.graph:         # already down (the same GPU named twice)
                return
            self.failed_gpus.append(gpu)
            doomed = {i for i, engine in enumerate(self.engines)
                      if gpu in self.placement.gpus(self.replica_of[i])}
            self.network.fail_node(gpu)
        else:
            _, a, b, _ = failure
            if not self.graph.has_edge(a, b):  # already down: the same link twice, or an end's GPU failed
                return
            self.network.fail_link(a, b)
            doomed = set()
            costs = {}
            for i, engine in enumerate(self.engines):
                if not engine.alive:
                    continue
                try:
                    engine.cost = self._replica_cost(self.replica_of[i], costs)
                    engine._coefficients.clear()
                except ConfigError:
                    doomed.add(i)          # its own GPUs can no longer reach each other
        for i in sorted(doomed):
            for rid in self.engines[i].fail():
                self.table.engine[rid] = -1
                self.route(rid)
        if not any(e.alive for e in self.entry_pool) or not any(e.alive for e in self.decode_pool):
            self._note_down()

    # ---- arrivals -------------------------------------------------------------------------------
    def run_engines_alone(self, arrival_s: np.ndarray, until: float | None) -> float:
        """Round-robin routing without SimPy: request i that is not dropped goes to engine (routed count)
        mod E, as the RoundRobin router assigns it; each engine then runs its own loop. Returns the end
        time (the last engine to fall idle, or `until`)."""
        per_engine = [[] for _ in self.engines]
        routed = 0
        for rid, when in enumerate(arrival_s.tolist()):
            if self.admissible(rid):
                per_engine[routed % len(self.engines)].append((when, rid))
                routed += 1
        limit = math.inf if until is None else until
        return max(engine.run_alone(arrivals, limit) for engine, arrivals in zip(self.engines, per_engine))

    def open_loop(self, arrival_s: np.ndarray):
        env = self.env
        for rid, when in enumerate(arrival_s.tolist()):
            if when > env.now:
                yield env.timeout(when - env.now)
            self.route(rid)

    def open_loop_chunks(self, chunks):
        """Open loop from an iterator of request chunks (a long run's arrivals, drawn as needed): each
        request takes a table slot when it arrives."""
        env, table = self.env, self.table
        for chunk in chunks:
            for when, inputs, outputs in zip(chunk.arrival_s.tolist(), chunk.input_tokens.tolist(),
                                             chunk.output_tokens.tolist()):
                if when > env.now:
                    yield env.timeout(when - env.now)
                self.route(table.admit(when, inputs, outputs))

    def closed_loop(self, workload: ClosedLoopWorkload, total: int):
        issued = [0]

        def issue(rid_hint=None):
            if issued[0] >= total:
                return
            rid = issued[0]
            issued[0] += 1
            self.table.arrival_s[rid] = self.env.now
            self.route(rid)
            if rid in self.table.dropped:
                self.env.process(later(0.0))

        def later(delay):
            if delay > 0:
                yield self.env.timeout(delay)
            issue()

        def on_finish(rid):
            self.env.process(later(workload.think_time_s))

        self.on_user_finish = on_finish
        for _ in range(min(workload.users, total)):
            issue()
        yield self.env.timeout(0)


def independent(config: ServingConfig) -> bool:
    """Engines never interact: oblivious (round-robin) routing, no failures, no KV hand-offs."""
    return config.router == "round-robin" and config.batching != "disaggregated" and not config.failures


def _run_env(cluster: "Cluster", config: ServingConfig) -> float:
    if config.max_time_s is not None:
        cluster.env.run(until=config.max_time_s)
    else:
        cluster.env.run()
    return float(cluster.env.now)


def representative_ok(config: ServingConfig, workload) -> bool:
    """Whether one replica stands for all: round-robin routing hands replica r every R-th arrival, and
    without failures, load-aware routing or KV hand-offs the replicas never interact, so every
    replica's requests are distributed exactly like replica 0's."""
    return (config.replicas > 1 and config.router == "round-robin" and config.batching != "disaggregated"
            and not config.failures and not isinstance(workload, (ClosedLoopWorkload, ChunkedWorkload)))


def simulate(config: ServingConfig, workload, *, step_cost: StepCost | None = None,
             representative: bool = False, record_steps: bool = False, fast: bool = True) -> Result:
    """Run `workload` (arrays `arrival_s`, `input_tokens`, `output_tokens`, or a ClosedLoopWorkload)
    on the cluster `config` describes. `step_cost` replaces the cost model (tests use hand-set step times).

    `representative` (where `representative_ok`): simulate replica 0 on the arrivals round-robin routing
    gives it; throughput fields are scaled to the whole cluster and `replicas_simulated` says so.
    `record_steps`: every engine keeps a StepTrace of its steps (Result.traces).
    `fast`: where engines never interact (`independent`), each runs its own loop over the arrivals
    round-robin routing gives it, without SimPy (the same steps and times; `fast=False` forces SimPy)."""
    if isinstance(workload, ChunkedWorkload):
        return _simulate_streaming(config, workload, step_cost)
    simulated = None
    if isinstance(workload, ClosedLoopWorkload):
        count = len(workload.input_tokens)
        table = RequestTable(np.zeros(count), workload.input_tokens, workload.output_tokens)
    else:
        arrival = np.asarray(workload.arrival_s, dtype=float)
        if arrival.size == 0:
            raise ConfigError("workload: no requests to simulate")
        if np.any(np.diff(arrival) < 0):
            raise ConfigError("workload: arrival_s must be sorted")
        inputs, outputs = np.asarray(workload.input_tokens), np.asarray(workload.output_tokens)
        if representative and representative_ok(config, workload):
            engines = config.replicas * config.plan.pp        # round-robin cycles over every engine
            mine = np.flatnonzero(np.arange(arrival.size) % engines < config.plan.pp)
            if mine.size:
                arrival, inputs, outputs, simulated = arrival[mine], inputs[mine], outputs[mine], 1
        table = RequestTable(arrival, inputs, outputs)
    lengths = np.add(np.asarray(table.input_tokens), np.asarray(table.output_tokens))
    if lengths.min() > config.model.max_context:
        raise ConfigError(f"workload: every request is longer than {config.model.name}'s context of "
                          f"{config.model.max_context} tokens (prompt + output; the shortest is {int(lengths.min())})")
    # The run is infeasible when a typical request cannot fit; single oversized ones are dropped with a reason.
    typical = int(np.median(lengths))
    cluster = Cluster(config, table, min(typical, config.model.max_context), step_cost, simulated, record_steps)
    if isinstance(workload, ClosedLoopWorkload):
        cluster.env.process(cluster.closed_loop(workload, len(table)))
        end_s = _run_env(cluster, config)
    elif fast and independent(config):
        end_s = cluster.run_engines_alone(arrival, config.max_time_s)
    else:
        cluster.env.process(cluster.open_loop(arrival))
        end_s = _run_env(cluster, config)
    cluster.end_s = end_s
    arrays = table.arrays()
    unfinished = np.flatnonzero(~np.isfinite(arrays["finish_s"]))
    dropped = dict(table.dropped)
    for rid in unfinished.tolist():
        dropped.setdefault(rid, UNFINISHED.format(end_s))
    summary = summarize(arrays, cluster.itl, config.sla)
    by_reason = collections.Counter(dropped.values())
    return _result(config, cluster, summary, arrays, dropped, by_reason, int(arrays["preemptions"].sum()))


def _simulate_streaming(config: ServingConfig, workload: "ChunkedWorkload", step_cost) -> Result:
    """A long open-loop run in bounded memory: arrivals drawn chunk by chunk, finished requests folded
    into histograms (see StreamingTable). Percentiles are histogram-based; no per-request arrays."""
    from simulator.requests_state import StreamingTable
    chunks = iter(workload.chunks())
    first = next(chunks, None)
    if first is None or len(first.arrival_s) == 0:
        raise ConfigError("workload: no requests to simulate")
    typical = int(np.median(np.add(first.input_tokens, first.output_tokens)))
    table = StreamingTable(config.sla)
    cluster = Cluster(config, table, min(typical, config.model.max_context), step_cost)
    cluster.env.process(cluster.open_loop_chunks(itertools.chain([first], chunks)))
    cluster.end_s = _run_env(cluster, config)
    summary = table.summary()
    for q in (50, 90, 99):
        summary[f"itl_p{q}_s"] = cluster.itl.percentile(q)
    dropped = dict(table.drop_reasons)
    if table.live:
        dropped[UNFINISHED.format(cluster.end_s)] = table.live
    return _result(config, cluster, summary, None, dropped, collections.Counter(dropped), table.preemption_total)


def _result(config, cluster, summary, arrays, dropped, by_reason, preemptions) -> Result:
    """The Result of a finished run. `dropped`: request id -> reason (or reason -> count when streamed);
    `by_reason`: reason -> count of requests dropped for it."""
    if cluster.simulated_replicas < config.replicas:
        scale = config.replicas / cluster.simulated_replicas
        for key in [k for k in summary if k.endswith("_per_s")]:
            summary[key] *= scale
        summary["replicas_simulated"] = cluster.simulated_replicas
    summary["requests_dropped_by_reason"] = dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    warnings = []
    if any(reason in by_reason for reason in CLUSTER_DOWN):
        # The cluster stopped serving with requests still to serve: what finished before says nothing
        # about the throughput or cost of serving this workload, so no rate is reported.
        summary["run_status"] = "failed"
        for key in [k for k in summary if k.endswith("_per_s")]:
            summary[key] = math.nan
        down = cluster.down_at_s if cluster.down_at_s is not None else float(cluster.end_s)
        warnings.append(f"injected failures took down every engine able to serve by {down:.3f} s; "
                        f"{summary['requests_dropped']} of {summary['requests_total']} requests dropped, "
                        f"so no throughput or cost per token is reported")
    else:
        summary["run_status"] = "partial" if summary["requests_dropped"] else "complete"
    summary["preemptions"] = preemptions
    summary["simulated_s"] = float(cluster.end_s)
    engines = cluster.engines
    makespan = summary["makespan_s"] if summary["requests_completed"] else float(cluster.end_s) or 1.0
    busy = np.array([e.busy_s for e in engines])
    summary["engine_utilization_mean"] = float(np.mean(busy) / makespan) if makespan else 0.0
    summary["kv_occupancy_mean"] = float(np.mean([e.kv_block_s for e in engines]) / cluster.blocks_per_engine
                                         / makespan) if makespan else 0.0
    summary["engine_steps"] = int(sum(e.steps for e in engines))
    plan = {"model": config.model.name, "gpu": config.gpu.name, "gpus": config.gpus,
            "replicas": config.replicas, "batching": config.batching, "router": config.router,
            "precision": {"weights": config.precision.weights, "activations": config.precision.activations,
                          "kv_cache": config.precision.kv_cache},
            **config.plan.describe()}
    if config.batching == "disaggregated":
        plan["prefill_gpus"] = config.prefill_gpus
        plan["decode_gpus"] = config.replicas * config.plan.gpus_per_replica - config.prefill_gpus
    plan["topology"] = str(cluster.graph.graph.get("name", "auto"))
    if config.failures:
        plan["failures"] = [":".join(map(str, f)) for f in config.failures]
        summary["engines_failed"] = sum(1 for e in engines if not e.alive)
    idle_gpus = config.gpus - config.replicas * config.plan.gpus_per_replica
    plan["idle_gpus"] = idle_gpus
    if idle_gpus:
        warnings.append(f"{idle_gpus} of {config.gpus} GPUs stay idle: a replica takes "
                        f"{config.plan.gpus_per_replica} GPUs, so {config.gpus} GPUs hold {config.replicas}")
    cut_at_stop = UNFINISHED.split(" at ")[0]
    causes = {r: n for r, n in by_reason.items() if r not in CLUSTER_DOWN and not r.startswith(cut_at_stop)}
    if causes:
        warnings.append(f"{sum(causes.values())} of {summary['requests_total']} requests dropped: "
                        + "; ".join(f"{reason} ({count})" for reason, count in causes.items()))
    engine_info = {"count": len(engines), "kv_blocks_per_engine": cluster.blocks_per_engine,
                   "block_size": config.plan.block_size}
    if cluster.prefill_pool:
        engine_info["prefill"] = len(cluster.prefill_pool)      # engines 0..prefill-1; the rest decode
    if config.failures:
        engine_info["failed"] = [i for i, e in enumerate(engines) if not e.alive]
    return Result(summary=summary, plan=plan, memory=cluster.memory.describe(), engines=engine_info,
                  arrays=arrays, dropped=dropped, traces=tuple(e.trace for e in engines if e.trace is not None),
                  step_costs=tuple(e.cost for e in engines), warnings=tuple(warnings))
