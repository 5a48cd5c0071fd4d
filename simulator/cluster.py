"""The engines of one run assembled on the cluster's topology, and how requests reach them.

Assembly: the memory plan fixes each engine's KV blocks; the topology and placement price each
replica's collectives (replicas with identical collectives share one step-cost model); the batching
entry of the registry gives each engine its policy (or splits the cluster into prefill and decode
pools). Routing: a request the model and one engine's KV can take goes to the engine the router picks
for it. KV hand-offs (`handoff.KVHandoff`) and injected failures (`failures.FailureInjector`) are the
cluster's other jobs; arrivals come from `feed`.
"""
from __future__ import annotations

import math
from functools import lru_cache

import networkx as nx
import numpy as np
import simpy

from simulator.costmodel import Communication, StepCost
from simulator.drop_reasons import NO_ENGINE, NO_PREFILL_ENGINE
from simulator.engine import Engine, StepTrace
from simulator.engine_loop import RunEnd, SimPyDriver, run_alone
from simulator.errors import ConfigError
from simulator.failures import FailureInjector
from simulator.handoff import KVHandoff
from simulator.hardware import LAUNCH_LATENCY_S, Efficiency
from simulator.kv_blocks import KVBlocks, ceil_div
from simulator.memory import MemoryPlan, plan_memory
from simulator.metrics import LatencyHistogram
from simulator.plan import Plan
from simulator.router import ROUTERS
from simulator.scheduling import BATCHING
from topologies import FlowNetwork, all_reduce, all_to_all, load_topology, place, send_recv


def replica_communication(graph: nx.Graph, placement, replica: int, plan: Plan, efficiency: Efficiency) -> Communication:
    """The collectives one replica's step needs, priced on the topology: tp all-reduce inside a stage's
    tp group, ep all-to-all over the expert group, pp hand-off over the slowest stage boundary."""
    eff = efficiency.collective_efficiency
    tp_cost = all_reduce(graph, placement.tp_group(replica), eff) if plan.tp > 1 else None
    ep_cost = all_to_all(graph, placement.ep_group(replica, plan.ep), eff) if plan.ep > 1 else None
    pp_cost = None
    if plan.pp > 1:
        stages = placement.stage_groups(replica)
        boundaries = [send_recv(graph, stages[k][0][0], stages[k + 1][0][0], eff) for k in range(plan.pp - 1)]
        pp_cost = max(boundaries, key=lambda cost: cost.time_s(1 << 20))
    # the topology prices each call's launch at LAUNCH_LATENCY_S; the stack's own per-call latencies replace it
    return Communication(tp_all_reduce=tp_cost, ep_all_to_all=ep_cost, pp_send_recv=pp_cost).scaled(
        1.0, efficiency.collective_latency_s - LAUNCH_LATENCY_S, efficiency.all_to_all_latency_s - LAUNCH_LATENCY_S)


@lru_cache(maxsize=16)
def shared_step_cost(model, gpu, precision, plan: Plan, efficiency: Efficiency,
                     communication: Communication) -> StepCost:
    """The StepCost of a deployment, one object for every run of it: a rate search simulates one
    deployment at many rates, and a StepCost memoises its step terms per token and sequence count as
    engines meet them (a calibration's runs spent ~5% of their time pricing counts an earlier run of
    the same deployment had priced). Each memo holds at most one entry per count up to the plan's
    token budget."""
    return StepCost(model, gpu, precision, plan, efficiency, communication)


def cluster_graph(config) -> nx.Graph:
    return config.topology if config.topology is not None else load_topology("auto", config.gpu, config.gpus)


def replica_layout(config, typical_request_tokens: int) -> tuple[StepCost, MemoryPlan]:
    """Replica 0's step-cost model on the cluster's topology and its memory plan, without simulating
    (to rank plans and size runs)."""
    memory = plan_memory(config.model, config.gpu, config.precision, config.plan, typical_request_tokens)
    graph = cluster_graph(config)
    placement = place(graph, config.plan.tp, config.plan.pp, config.plan.attention_dp, replicas=config.replicas,
                      gpus=config.gpus)
    communication = replica_communication(graph, placement, 0, config.plan, config.efficiency)
    return shared_step_cost(config.model, config.gpu, config.precision, config.plan, config.efficiency,
                            communication), memory


class Cluster:
    """The engines of one run, their pools and router, and the callbacks that move requests."""

    def __init__(self, config, table, typical_request_tokens: int, step_cost: StepCost | None = None,
                 simulated_replicas: int | None = None, record_steps: bool = False):
        self.config, self.table, plan = config, table, config.plan
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(config.seed)
        self.memory = plan_memory(config.model, config.gpu, config.precision, plan, typical_request_tokens)
        graph = cluster_graph(config)
        self.graph = graph.copy() if config.failures else graph   # failures edit it; routes stay cached otherwise
        self.placement = place(self.graph, plan.tp, plan.pp, plan.attention_dp, replicas=config.replicas,
                               gpus=config.gpus)
        self.network = FlowNetwork(self.env, self.graph)
        self.step_cost_override = step_cost
        self.itl = LatencyHistogram()
        window = self.memory.window_bytes_per_sequence_per_gpu
        self.window_blocks = ceil_div(int(math.ceil(window / self.memory.kv_bytes_per_token_per_gpu)),
                                      plan.block_size) if window else 0
        self.blocks_per_engine = self.memory.kv_blocks_per_replica // plan.pp
        self.simulated_replicas = config.replicas if simulated_replicas is None else simulated_replicas
        self._build_engines(record_steps)
        self.entry_pool = self.prefill_pool or self.decode_pool
        self.router = ROUTERS.get_class(config.router, "router")(self.rng, table)
        self.on_user_finish = None
        self.too_long = f"prompt + output longer than {config.model.name}'s {config.model.max_context}-token context"
        self.too_large = (f"needs more KV blocks than an engine holds ({self.blocks_per_engine} blocks of "
                          f"{plan.block_size} tokens)")
        self.no_entry = NO_PREFILL_ENGINE if self.prefill_pool else NO_ENGINE
        self.down_at_s: float | None = None        # when failures left no engine able to serve
        self.delivered: set[int] = set()           # disaggregated: first token already at the user
        self.run_end = RunEnd(self.env, len(table))
        self.handoff = KVHandoff(self) if self.prefill_pool else None
        self.failures = FailureInjector(self) if config.failures else None

    def _build_engines(self, record_steps: bool) -> None:
        config, plan = self.config, self.config.plan
        entry = BATCHING.get_class(config.batching, "batching")
        prefill_replicas = config.prefill_gpus // plan.gpus_per_replica if entry.pools else 0
        self.engines, self.replica_of, self.prefill_pool, self.decode_pool = [], [], [], []
        costs = {}
        for replica in range(self.simulated_replicas):
            cost = self.replica_cost(replica, costs)
            prefill = replica < prefill_replicas
            policy_class = entry.pools[0 if prefill else 1] if entry.pools else entry
            for _ in range(plan.pp):   # pipeline parallelism: pp virtual engines in flight
                engine = Engine(len(self.engines), self.table, cost, policy_class(),
                                KVBlocks(self.blocks_per_engine, plan.block_size, self.window_blocks), self.itl,
                                on_finish=self.finished, on_prefilled=self._prefilled if prefill else None,
                                trace=StepTrace() if record_steps else None)
                self.engines.append(engine)
                self.replica_of.append(replica)
                (self.prefill_pool if prefill else self.decode_pool).append(engine)
        self.cost = self.engines[0].cost
        # Representative mode: the replicas left out must be exact copies of the ones simulated.
        for replica in range(self.simulated_replicas, config.replicas):
            if self.replica_cost(replica, costs) is not self.cost:
                raise ConfigError("representative run: replicas differ in their collectives on this "
                                  "topology; simulate the whole cluster")

    def replica_cost(self, replica: int, cache: dict) -> StepCost:
        """StepCost of one replica on the current graph (replicas with identical collectives share one)."""
        if self.step_cost_override is not None:
            return self.step_cost_override
        config = self.config
        communication = replica_communication(self.graph, self.placement, replica, config.plan, config.efficiency)
        key = tuple(None if c is None else c.options for c in
                    (communication.tp_all_reduce, communication.ep_all_to_all, communication.pp_send_recv))
        if key not in cache:
            cache[key] = shared_step_cost(config.model, config.gpu, config.precision, config.plan, config.efficiency,
                                          communication)
        return cache[key]

    # ---- moving requests ------------------------------------------------------------------------
    def oversized(self, total):
        """(longer than the model's context, more KV blocks than one engine holds) for requests of `total`
        tokens, prompt + output (numbers, or arrays of them)."""
        return (total > self.config.model.max_context,
                ceil_div(total, self.config.plan.block_size) + self.window_blocks > self.blocks_per_engine)

    def admissible(self, rid: int) -> bool:
        """A request the model can take (prompt + output within its context) whose whole context fits one
        engine's KV cache; otherwise dropped with the reason."""
        too_long, too_large = self.oversized(self.table.input_tokens[rid] + self.table.output_tokens[rid])
        if too_long or too_large:
            self.drop(rid, self.too_long if too_long else self.too_large)
            return False
        return True

    def route(self, rid: int) -> None:
        if not self.admissible(rid):
            return
        index = self.router.choose(self.entry_pool, rid)
        if index is None:
            self.drop(rid, self.no_entry)
            return
        self.entry_pool[index].submit(rid)

    def drop(self, rid: int, reason: str) -> None:
        self.delivered.discard(rid)
        self.table.drop(rid, reason)
        self.run_end.settled()

    def finished(self, rid: int, engine: Engine) -> None:
        self.delivered.discard(rid)
        if self.on_user_finish is not None:
            self.on_user_finish(rid)
        self.table.retire(rid)
        self.run_end.settled()

    def _prefilled(self, rid: int, engine: Engine) -> None:
        self.handoff.start(rid, engine)

    def note_down(self) -> None:
        if self.down_at_s is None:
            self.down_at_s = float(self.env.now)

    # ---- running --------------------------------------------------------------------------------
    def start_engines(self) -> None:
        """Give every engine a SimPy process (the general path)."""
        for engine in self.engines:
            SimPyDriver(self.env, engine)

    def engine_arrivals(self, arrival_s: np.ndarray) -> list[tuple[list, list]]:
        """Round-robin routing decided up front: request i that is not dropped goes to engine (routed
        count) mod E, as the RoundRobin router assigns it. Returns each engine's arrival times and
        request ids, two lists in time order (no tuple per request: a run routes millions)."""
        table, count = self.table, len(self.engines)
        too_long, too_large = self.oversized(np.frombuffer(table.input_tokens, dtype=np.int64)
                                             + np.frombuffer(table.output_tokens, dtype=np.int64))
        refused = too_long | too_large
        for rid in np.flatnonzero(refused).tolist():
            self.admissible(rid)                # drops it with its reason
        kept = np.flatnonzero(~refused)
        per_engine = []
        for e in range(count):
            mine = kept[e::count]
            per_engine.append((arrival_s[mine].tolist(), mine.tolist()))
        return per_engine

    def run_engines_alone(self, arrival_s: np.ndarray, until: float | None, watch=None, progress=None) -> float:
        """Engines that never interact each run their own loop over their arrivals, without SimPy, one
        after another. Returns the end time (the last engine to fall idle, or `until`); with `watch`,
        stops at the first engine whose check finds the SLA missed for sure; `progress(k, n, what)` hears
        each engine done."""
        limit = math.inf if until is None else until
        end = 0.0
        for done, (engine, arrivals) in enumerate(zip(self.engines, self.engine_arrivals(arrival_s)), start=1):
            if watch is not None:
                watch.next_check_s = watch.check_every_s     # each engine's clock starts at 0
            end = max(end, run_alone(engine, arrivals, limit, watch))
            if progress is not None:
                progress(done, len(self.engines), "engines simulated")
            if watch is not None and watch.stopped_at_s is not None:
                break
        return end
