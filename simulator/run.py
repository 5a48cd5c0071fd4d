"""One run: the cluster's configuration (`ServingConfig`), `simulate`, and what it returns (`Result`).

The path of one request: the arrival process (open loop: pre-drawn times; closed loop: a user's next
request after the previous one finishes; `feed`) hands it to the cluster's router, which picks an
engine (`cluster`); the engine's batching policy admits it into a step (`scheduling`, `admission`);
the cost model prices every step (`costmodel`); the request's first-token and finish times land in
the shared `RequestTable`; metrics summarise the table at the end.
"""
from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from simulator import feed
from simulator.cluster import Cluster
from simulator.costmodel import StepCost
from simulator.drop_reasons import CLUSTER_DOWN, UNFINISHED, counted, is_unfinished
from simulator.early_stop import SLAMissWatch
from simulator.engine_loop import progress_process, watch_process
from simulator.errors import ConfigError, first_repeat, require_number
from simulator.failures import failure_text
from simulator.hardware import Efficiency, GPUSpec
from simulator.intervals import DEFAULT_INTERVAL, check_interval
from simulator.metrics import SLA, summarize
from simulator.models import ModelSpec, Precision
from simulator.parallel import check_jobs, run_engines_in_processes
from simulator.plan import MAX_GPUS, Plan, check_model_split
from simulator.requests_state import RequestTable, StreamingTable
from simulator.router import ROUTERS
from simulator.scheduling import BATCHING, DEFAULT_BATCHING
from workloads.requests import ClosedLoopRequests, Share

EARLY_STOP_CHECKS = 40       # SLA checks over a run's arrival span when it may stop early


def check_seed(seed) -> int:
    """A random seed: a whole number in [0, 2^63 - 1] (numpy's generators take any; this keeps it portable)."""
    return require_number("`seed`", seed, low=0, high=2**63 - 1, integer=True)


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
    batching: str = DEFAULT_BATCHING
    router: str = "round-robin"
    prefill_gpus: int = 0
    kv_transfer_gb_per_s: float | None = None
    kv_transfer_latency_s: float = 20e-6
    topology: nx.Graph | None = field(default=None, hash=False, compare=False)
    failures: tuple = ()      # (("gpu", index, time_s) | ("link", a, b, time_s), ...)
    seed: int = 0
    max_time_s: float | None = None
    sla: SLA | None = None
    stack: str | None = None      # the stack (and release) the efficiencies stand for, as output shows it
    prediction_log_sigma: float | None = None     # from the profile's fit: intervals around predictions
    no_interval_reason: str | None = None         # why the profile gives none (`intervals.no_interval_reason`)
    interval: float = DEFAULT_INTERVAL

    def __post_init__(self):
        require_number("`gpus`", self.gpus, low=1, high=MAX_GPUS, integer=True)
        self.plan.replicas_for(self.gpus)           # at least one replica fits
        check_model_split(self.model, self.plan.tp, self.plan.pp, self.plan.ep)
        BATCHING.get_class(self.batching, "`batching`")
        ROUTERS.get_class(self.router, "`router`")
        check_seed(self.seed)
        check_interval("`interval`", self.interval)
        if self.max_time_s is not None:
            require_number("`max_time_s`", self.max_time_s, low=0, low_inclusive=False, high=1e9)
        if self.kv_transfer_gb_per_s is not None:
            # from 10 MB/s (a twelfth of 1 GbE: slower than any link a hand-off would take; slower still, a
            # run's simulated span, and the periodic checks over it, grow without bound) to 1 PB/s
            require_number("`kv_transfer_gb_per_s`", self.kv_transfer_gb_per_s, low=0.01, high=1e6)
            if not BATCHING[self.batching].pools:
                raise ConfigError("`kv_transfer_gb_per_s`: only meaningful with `batching` disaggregated "
                                  "(no KV hand-off happens otherwise)")
        try:   # the GPU must have tensor rates for the deployment's number formats
            self.gpu.peak_flops(self.precision.gemm_dtype)
            self.gpu.peak_flops(self.precision.attention_dtype)
        except ConfigError as exc:
            raise ConfigError(f"`precision`: {exc}") from None
        if BATCHING[self.batching].pools:
            width = self.plan.gpus_per_replica
            if self.gpus < 2 * width:
                raise ConfigError(f"`batching`: disaggregated needs a prefill and a decode pool of at least one "
                                  f"replica ({width} GPUs) each, so `gpus` >= {2 * width}; got {self.gpus}")
            if not self.prefill_gpus:
                raise ConfigError(f"`prefill_gpus`: required with `batching` disaggregated: GPUs of the prefill pool, "
                                  f"a multiple of {width} from {width} to {self.gpus - width}")
            require_number("`prefill_gpus`", self.prefill_gpus, low=self.plan.gpus_per_replica,
                           high=self.gpus - self.plan.gpus_per_replica, integer=True)
            if self.prefill_gpus % self.plan.gpus_per_replica:
                raise ConfigError(f"`prefill_gpus`: {self.prefill_gpus} must be a multiple of the replica size "
                                  f"{self.plan.gpus_per_replica}")
        elif self.prefill_gpus:
            raise ConfigError("`prefill_gpus`: only meaningful with `batching` disaggregated")
        for failure in self.failures:
            require_number("`fail` time", failure[-1], low=0, high=1e9)
        twice = first_repeat(failure[:-1] for failure in self.failures)
        if twice is not None:
            raise ConfigError(f"`fail`: {twice[0]}:{'-'.join(map(str, twice[1:]))} is given twice; a GPU or link "
                              "fails once")

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


def independent(config: ServingConfig) -> bool:
    """Engines never interact: oblivious (round-robin) routing, no failures, no KV hand-offs."""
    return config.router == "round-robin" and not BATCHING[config.batching].pools and not config.failures


def _run_env(cluster: "Cluster", config: ServingConfig, progress=None, horizon_s: float | None = None) -> float:
    """Run the SimPy loop until every request has finished or been dropped (a failure or a progress tick
    scheduled later changes nothing: `--fail gpu:3@1e8` ran 1e8 simulated seconds of progress ticks), or
    until `max_time_s`, or until nothing else can happen (a cluster that went down)."""
    env = cluster.env
    if progress is not None:
        env.process(progress_process(env, progress, horizon_s))
    stop = cluster.run_end.event
    if config.max_time_s is not None:
        stop = env.any_of([stop, env.timeout(config.max_time_s)])
    try:
        env.run(until=stop)
    except RuntimeError:
        if stop.triggered or env.peek() != math.inf:
            raise      # not SimPy's "no scheduled events left": a real error
    return float(env.now)


def representative_ok(config: ServingConfig, workload=None, requests: int | None = None) -> bool:
    """Whether one replica stands for all: round-robin routing hands replica r every R-th arrival, and
    without failures, load-aware routing or KV hand-offs the replicas never interact, so every
    replica's requests are distributed exactly like replica 0's (`workload`: None for a stream of
    Requests not drawn yet, of `requests` requests when known). Not with fewer requests than engines:
    some would sit idle, and replica 0's rate times the replicas would count work that never arrives."""
    if requests is None and hasattr(workload, "arrival_s") and getattr(workload, "share", None) is None:
        requests = len(workload.arrival_s)      # (a drawn share was checked when it was drawn)
    return (config.replicas > 1 and independent(config)
            and not isinstance(workload, (ClosedLoopRequests, ChunkedWorkload))
            and (requests is None or requests >= replica_share(config).period))


def replica_share(config: ServingConfig) -> Share:
    """The arrivals round-robin routing gives replica 0: its pp engines' turns in every cycle over all
    engines."""
    return Share(config.replicas * config.plan.pp, config.plan.pp)


def simulate(config: ServingConfig, workload, *, step_cost: StepCost | None = None,
             representative: bool = False, record_steps: bool = False, fast: bool = True, jobs: int = 1,
             stop_when_missed: SLA | None = None, progress=None) -> Result:
    """Run `workload` (arrays `arrival_s`, `input_tokens`, `output_tokens`, or ClosedLoopRequests)
    on the cluster `config` describes. `step_cost` replaces the cost model (tests use hand-set step times).

    `representative` (where `representative_ok`): simulate replica 0 on the arrivals round-robin routing
    gives it; throughput fields are scaled to the whole cluster and `replicas_simulated` says so. A
    workload drawn as that share already (`Requests.share`, `replica_share`) is run as it is.
    `record_steps`: every engine keeps a StepTrace of its steps (Result.traces).
    `fast`: where engines never interact (`independent`), each runs its own loop over the arrivals
    round-robin routing gives it, without SimPy (the same steps and times; `fast=False` forces SimPy).
    `jobs`: on that fast path, groups of engines run in `jobs` processes (the same result); elsewhere the
    run stays in one process and the result's warnings say why.
    `stop_when_missed`: stop as soon as the run's p99s must miss this SLA (`early_stop`); the summary then
    says `stopped_early_s` and `stopped_early_by` (the limit that must miss: "ttft", "tpot", or "dropped"
    when a request was dropped) and the requests left count as unfinished (a rate search's probes use it).
    `progress(done, total, what)`: told the simulated seconds as a SimPy run advances (total: the last
    arrival, None for closed-loop users), or the engines done on the no-SimPy path."""
    check_jobs(jobs)
    if isinstance(workload, ChunkedWorkload):
        return _simulate_streaming(config, workload, step_cost, jobs, progress)
    simulated = None
    if isinstance(workload, ClosedLoopRequests):
        count = len(workload.input_tokens)
        table = RequestTable(np.zeros(count), workload.input_tokens, workload.output_tokens)
    else:
        arrival = np.asarray(workload.arrival_s, dtype=float)
        if arrival.size == 0:
            raise ConfigError("workload: no requests to simulate")
        if np.any(np.diff(arrival) < 0):
            raise ConfigError("workload: arrival_s must be sorted")
        inputs, outputs = np.asarray(workload.input_tokens), np.asarray(workload.output_tokens)
        share = replica_share(config) if representative and representative_ok(config, workload) else None
        drawn_share = getattr(workload, "share", None)
        if drawn_share is not None:
            if drawn_share != share:
                raise ConfigError(f"workload: drawn as {drawn_share} (one replica's share of a longer stream), "
                                  f"but this run simulates {share or 'every replica'}")
            simulated = 1
        elif share is not None:
            arrival, inputs, outputs = share.pick(arrival), share.pick(inputs), share.pick(outputs)
            simulated = 1
        table = RequestTable(arrival, inputs, outputs)
    lengths = np.add(np.asarray(table.input_tokens), np.asarray(table.output_tokens))
    if lengths.min() > config.model.max_context:
        raise ConfigError(f"workload: every request is longer than {config.model.name}'s context of "
                          f"{config.model.max_context} tokens (prompt + output; the shortest is {int(lengths.min())})")
    # The run is infeasible when a typical request cannot fit; single oversized ones are dropped with a reason.
    typical = int(np.median(lengths))
    cluster = Cluster(config, table, min(typical, config.model.max_context), step_cost, simulated, record_steps)
    watch = None
    if stop_when_missed is not None:
        span = float(np.asarray(table.arrival_s)[-1]) if len(table) else 0.0
        watch = SLAMissWatch(table, stop_when_missed, check_every_s=max(span / EARLY_STOP_CHECKS, 0.05))
        if not (fast and independent(config)) or isinstance(workload, ClosedLoopRequests):
            cluster.env.process(watch_process(cluster.env, watch, table, span))
    if isinstance(workload, ClosedLoopRequests):
        cluster.start_engines()
        cluster.env.process(feed.ClosedLoopUsers(cluster, workload.arrival, len(table)).start())
        end_s = _run_env(cluster, config, progress, None)
    elif fast and independent(config):
        end_s = (run_engines_in_processes(cluster, arrival, config.max_time_s, jobs) if jobs > 1 and watch is None
                 else cluster.run_engines_alone(arrival, config.max_time_s, watch, progress))
    else:
        cluster.start_engines()
        cluster.env.process(feed.open_loop(cluster, arrival))
        end_s = _run_env(cluster, config, progress, float(arrival[-1]))
    cluster.end_s = end_s
    arrays = table.arrays()
    unfinished = np.flatnonzero(~np.isfinite(arrays["finish_s"]))
    # requests the run cut off (an early stop leaves thousands) count as dropped, unless dropped already
    dropped = {**dict.fromkeys(unfinished.tolist(), UNFINISHED.format(end_s)), **table.dropped}
    summary = summarize(arrays, cluster.itl, config.sla)
    if watch is not None and watch.stopped_at_s is not None:
        summary["stopped_early_s"] = watch.stopped_at_s
        summary["stopped_early_by"] = watch.missed_limit
    by_reason = collections.Counter(dropped.values())
    notes = []
    if jobs > 1 and not (fast and independent(config) and not isinstance(workload, ClosedLoopRequests)):
        notes.append(f"jobs: {jobs} asked, but this run's engines interact (closed-loop users, load-aware "
                     f"routing, KV hand-offs or failures), so it ran in one process")
    elif jobs > 1 and len(cluster.engines) == 1:
        notes.append(f"jobs: {jobs} asked, but the run simulates one engine, so it ran in one process")
    return _result(config, cluster, summary, arrays, dropped, by_reason, int(arrays["preemptions"].sum()), notes)


def _simulate_streaming(config: ServingConfig, workload: "ChunkedWorkload", step_cost, jobs: int = 1,
                        progress=None) -> Result:
    """A long open-loop run in bounded memory: arrivals drawn chunk by chunk, finished requests folded
    into histograms (see StreamingTable). Percentiles are histogram-based; no per-request arrays."""
    chunks = iter(workload.chunks())
    first = next(chunks, None)
    if first is None or len(first.arrival_s) == 0:
        raise ConfigError("workload: no requests to simulate")
    typical = int(np.median(np.add(first.input_tokens, first.output_tokens)))
    table = StreamingTable(config.sla)
    cluster = Cluster(config, table, min(typical, config.model.max_context), step_cost)
    cluster.start_engines()
    cluster.env.process(feed.open_loop_chunks(cluster, itertools.chain([first], chunks)))
    cluster.end_s = _run_env(cluster, config, progress, None)
    summary = table.summary()
    for q in (50, 90, 99):
        summary[f"itl_p{q}_s"] = cluster.itl.percentile(q)
    dropped = dict(table.drop_reasons)
    if table.live:
        dropped[UNFINISHED.format(cluster.end_s)] = table.live
    notes = [f"jobs: {jobs} asked, but a streamed run (arrivals drawn as it goes) runs in one process"] if jobs > 1 else []
    return _result(config, cluster, summary, None, dropped, collections.Counter(dropped), table.preemption_total,
                   notes)


def _result(config, cluster, summary, arrays, dropped, by_reason, preemptions, notes=()) -> Result:
    """The Result of a finished run. `dropped`: request id -> reason (or reason -> count when streamed);
    `by_reason`: reason -> count of requests dropped for it."""
    if cluster.simulated_replicas < config.replicas:
        scale = config.replicas / cluster.simulated_replicas
        for key in [k for k in summary if k.endswith("_per_s")]:
            summary[key] *= scale
        summary["replicas_simulated"] = cluster.simulated_replicas
    summary["requests_dropped_by_reason"] = dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    warnings = list(notes)
    if config.prediction_log_sigma is None:
        warnings.append("no prediction interval: " + (config.no_interval_reason or
                                                       f"none was given for {config.gpu.name} (prediction_log_sigma)"))
    if arrays is not None:
        finished = arrays["finish_s"][np.isfinite(arrays["finish_s"])]
        last_finish = float(finished.max()) if finished.size else 0.0
    else:       # a streamed run keeps no per-request arrays, only its last finish
        last_finish = float(getattr(cluster.table, "last_finish_s", 0.0))
    for failure in config.failures if summary["requests_completed"] else ():
        if failure[-1] > last_finish and not summary["requests_dropped"]:
            warnings.append(f"`fail` at {failure[-1]:g} s came after the last request finished ({last_finish:.4g} s): "
                            "it never happened (the run ends when its requests do)")
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
        if config.max_time_s is not None and summary["requests_total"] and not summary["requests_completed"]:
            warnings.append(f"no request finished in the {float(cluster.end_s):.4g} s simulated (`max_time_s`): "
                            "throughput is 0 and cost per token unbounded; simulate longer")
    summary["preemptions"] = preemptions
    summary["simulated_s"] = float(cluster.end_s)
    engines = cluster.engines
    makespan = summary["makespan_s"] if summary["requests_completed"] else float(cluster.end_s) or 1.0
    # a step still running when a --max-time run stops counts up to the stop, not to its own end
    busy = np.minimum([e.busy_s for e in engines], makespan)
    block_s = np.minimum([e.kv_block_s for e in engines], cluster.blocks_per_engine * makespan)
    # time shares, averaged over the engines: busy stepping, and of the KV blocks held
    summary["engine_busy_fraction_mean"] = float(np.mean(busy) / makespan) if makespan else 0.0
    summary["kv_occupied_fraction_mean"] = (float(np.mean(block_s) / cluster.blocks_per_engine / makespan)
                                            if makespan else 0.0)
    summary["engine_steps"] = int(sum(e.steps for e in engines))
    summary["engine_sequences_peak"] = max((e.peak_sequences for e in engines), default=0)
    plan = {"model": config.model.name, "gpu": config.gpu.name, "gpus": config.gpus,
            "replicas": config.replicas, "batching": config.batching, "router": config.router,
            "precision": {"weights": config.precision.weights, "activations": config.precision.activations,
                          "kv_cache": config.precision.kv_cache},
            **config.plan.describe()}
    if cluster.prefill_pool:
        plan["prefill_gpus"] = config.prefill_gpus
        plan["decode_gpus"] = config.replicas * config.plan.gpus_per_replica - config.prefill_gpus
    plan["topology"] = str(cluster.graph.graph.get("name", "auto"))
    if config.stack:
        plan["stack"] = config.stack
    if config.failures:
        plan["failures"] = [failure_text(f) for f in config.failures]
        summary["engines_failed"] = sum(1 for e in engines if not e.alive)
    idle_gpus = config.gpus - config.replicas * config.plan.gpus_per_replica
    plan["idle_gpus"] = idle_gpus
    if idle_gpus:
        warnings.append(f"{idle_gpus} of {config.gpus} GPUs stay idle: a replica takes "
                        f"{config.plan.gpus_per_replica} GPUs, so {config.gpus} GPUs hold {config.replicas}")
    causes = {r: n for r, n in by_reason.items() if r not in CLUSTER_DOWN and not is_unfinished(r)}
    if causes:
        warnings.append(f"{sum(causes.values())} of {summary['requests_total']} requests dropped: {counted(causes)}")
    if preemptions:
        warnings.append(f"{preemptions} preemptions: the batch limit (`max_batch_size` {config.plan.max_batch_size}) "
                        "admitted more sequences than the KV cache held, and each preempted one was prefilled again")
    cut = sum(count for reason, count in by_reason.items() if is_unfinished(reason))
    if cut and summary["requests_completed"]:
        why = ("(`max_time_s`)" if config.max_time_s is not None else
               "(early: it could no longer meet the SLA)" if "stopped_early_s" in summary else
               "with nothing left to happen (no engine could take them: a fault of the simulator)")
        warnings.append(f"{cut} of {summary['requests_total']} requests were unfinished when the run stopped at "
                        f"{float(cluster.end_s):.4g} s {why}: its percentiles count the finished ones, the slowest "
                        "left out")
    engine_info = {"count": len(engines), "kv_blocks_per_engine": cluster.blocks_per_engine,
                   "block_size": config.plan.block_size}
    if cluster.prefill_pool:
        engine_info["prefill"] = len(cluster.prefill_pool)      # engines 0..prefill-1; the rest decode
    if config.failures:
        engine_info["failed"] = [i for i, e in enumerate(engines) if not e.alive]
    return Result(summary=summary, plan=plan, memory=cluster.memory.describe(), engines=engine_info,
                  arrays=arrays, dropped=dropped, traces=tuple(e.trace for e in engines if e.trace is not None),
                  step_costs=tuple(e.cost for e in engines), warnings=tuple(warnings))
