"""The Python API scripts use, with the same options as the CLI: `simulate`, (and in later modules
`mlperf`, `size`, `sweep`). Names resolve against the catalogs; results come back as `RunResult`.

    >>> from simulator import simulate
    >>> result = simulate(model="llama2-70b", gpu="mi355x", gpus=8, rate=40, duration_s=60)
    >>> result.summary["output_tokens_per_s"] > 0
    True
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

import numpy as np

from simulator.cost import cost_fields
from simulator.errors import ConfigError, excerpt, require_number
from simulator.hardware import (GPUSpec, applied_stack, check_nic_gbps, check_profile_names, efficiency_for, get_gpu,
                                load_gpus, load_profile)
from simulator.intervals import (DEFAULT_INTERVAL, check_interval, interval_fields, no_interval_reason,
                                 prediction_log_sigma)
from simulator.metrics import SLA, short_run_warning
from simulator.models import ModelSpec, Precision, get_model
from simulator.plan import MAX_GPUS, Plan
from simulator.run import ChunkedWorkload, ServingConfig, simulate as run_engine
from simulator.scheduling import DEFAULT_BATCHING
from topologies import load_topology
from topologies.registry import override_names
from topologies.builders import check_oversubscription
from workloads import WorkloadSpec, workload_from_flags, workload_from_toml
from workloads.lengths import Fixed, parse_length_flag
from workloads.requests import ClosedLoopRequests, Requests
from workloads.scenarios import check_limit, get_scenario

CLUSTER_OPTIONS = ("model", "gpu", "gpus", "tp", "pp", "ep", "precision", "batching", "router", "prefill_gpus",
                   "max_batch_size", "max_tokens_per_step", "block_size", "memory_utilization", "seed",
                   "max_time_s", "gpu_catalog", "model_catalog", "profile", "stack", "kv_transfer_gb_per_s",
                   "usd_per_gpu_hour", "sla_ttft_s", "sla_tpot_s", "topology", "scaleout_gbps", "oversubscription",
                   "set_values", "fail", "interval")
WORKLOAD_OPTIONS = ("rate", "arrival", "cv", "duration_s", "requests", "offline", "users", "think_time_s",
                    "input_tokens", "output_tokens", "workload", "trace", "stream_metrics")
STREAM_ABOVE_REQUESTS = 2_000_000   # longer open-loop runs stream their metrics (bounded memory)


@dataclass(frozen=True)
class RunResult:
    """A run's summary (every number with its unit in its name), cost, plan, memory and workload."""

    summary: dict
    cost: dict
    plan: dict
    memory: dict
    workload: dict
    engine_result: object = field(repr=False, compare=False, default=None)
    warnings: tuple = ()

    def to_dict(self) -> dict:
        return {**self.summary, **self.cost, "plan": self.plan, "memory": self.memory, "workload": self.workload,
                "warnings": list(self.warnings)}

    def row(self) -> dict:
        """Flat dict for tables and sweeps: summary, cost, and the plan's scalar fields (a table such as
        requests_dropped_by_reason as one JSON cell)."""
        flat = {k: v for k, v in self.plan.items() if not isinstance(v, dict)}
        flat.update({f"precision_{k}": v for k, v in self.plan.get("precision", {}).items()})
        summary = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in self.summary.items()}
        return {**flat, **summary, **self.cost}


def _items(where: str, value) -> tuple:
    """A list option (`set_values`, `fail`): one string is that one item; anything but strings is refused."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of strings, got {excerpt(value)}")
    return tuple(value)


def serving_config(*, model="llama2-70b", gpu="mi355x", gpus=8, tp=1, pp=1, ep=1, precision="fp8",
                   batching=DEFAULT_BATCHING, router="round-robin", prefill_gpus=0, max_batch_size=256,
                   max_tokens_per_step=8192, block_size=16, memory_utilization=0.92, seed=0, max_time_s=None,
                   gpu_catalog=(), model_catalog=(), profile=None, stack=None, kv_transfer_gb_per_s=None,
                   usd_per_gpu_hour=None, sla_ttft_s=None, sla_tpot_s=None, topology=None, scaleout_gbps=None,
                   oversubscription=None, set_values=(), fail=(), interval=None) -> ServingConfig:
    """Resolve names and numbers into a validated ServingConfig.

    Interconnect what-ifs: `topology` (catalog name or TOML path), `scaleout_gbps` (NIC speed),
    `oversubscription` (leaf uplinks), `set_values` ("gpu.FIELD=V", "gpu.peak_tflops.fp4=V" or
    "topology.PARAM=V"), `fail` ("gpu:ID@T" or "link:A-B@T", T in simulated seconds).
    """
    for name, value, kinds, what in (("`model`", model, (str, ModelSpec), "a catalog name, a config.json path"),
                                     ("`gpu`", gpu, (str, GPUSpec), "a catalog name"),
                                     ("`precision`", precision, (str, Precision), "a number format such as fp8")):
        if not isinstance(value, kinds):
            raise ConfigError(f"{name}: expected {what} or a {kinds[1].__name__}, got {excerpt(value)}")
    set_values, fail = _items("`set_values`", set_values), _items("`fail`", fail)
    gpus = require_number("`gpus`", gpus, low=1, high=MAX_GPUS, integer=True)
    for name, value in (("`sla_ttft_s`", sla_ttft_s), ("`sla_tpot_s`", sla_tpot_s)):
        if value is not None:
            check_limit(name, value)
    sla = SLA(sla_ttft_s, sla_tpot_s) if sla_ttft_s is not None or sla_tpot_s is not None else None
    model_spec = get_model(model, model_catalog) if isinstance(model, str) else model
    # the catalog is loaded once (a few ms, as long as the rest of this function) for the name and the
    # profile's section names
    catalog = load_gpus(gpu_catalog) if isinstance(gpu, str) or profile is not None else None
    gpu_spec = get_gpu(gpu, gpus=catalog) if isinstance(gpu, str) else gpu
    gpu_overrides, topology_overrides = parse_set_values(set_values)
    gpu_spec = apply_gpu_overrides(gpu_spec, gpu_overrides)
    for name, key, value, check in (("`scaleout_gbps`", "nic_gbps", scaleout_gbps, check_nic_gbps),
                                    ("`oversubscription`", "oversubscription", oversubscription,
                                     check_oversubscription)):
        if value is not None and key in topology_overrides:
            raise ConfigError(f"{name}: also given as `set_values` topology.{key}; give one")
        if key in gpu_overrides and (value is not None or key in topology_overrides):
            given = name if value is not None else f"`set_values` topology.{key}"
            raise ConfigError(f"{given}: also given as `set_values` gpu.{key}; give one")
        if key in topology_overrides:
            check(f"`set_values` topology.{key}", topology_overrides[key])
        if value is not None:
            check(name, value)
            topology_overrides[key] = value
    graph = (load_topology(topology, gpu_spec, gpus, topology_overrides) if topology is not None or topology_overrides
             else None)
    precision_spec = Precision.parse(precision) if isinstance(precision, str) else precision
    profile_data = load_profile(profile)
    if profile is not None:
        check_profile_names(str(profile), profile_data, catalog)
    efficiency = efficiency_for(gpu_spec, profile_data, stack, profile_path=profile)
    plan = Plan(tp=tp, pp=pp, ep=ep, max_batch_size=max_batch_size, max_tokens_per_step=max_tokens_per_step,
                block_size=block_size, memory_utilization=memory_utilization)
    level = DEFAULT_INTERVAL if interval is None else check_interval("`interval`", interval)
    log_sigma = prediction_log_sigma(profile_data, gpu_spec, model_spec)
    reason = no_interval_reason(profile_data, gpu_spec)
    if interval is not None and log_sigma is None:
        raise ConfigError(f"`interval`: the profile ({profile or 'shipped'}) gives no prediction spread to draw an "
                          f"interval from: {reason}")
    return ServingConfig(model=model_spec, gpu=gpu_spec, gpus=gpus, precision=precision_spec, plan=plan,
                         efficiency=efficiency, batching=batching, router=router, prefill_gpus=prefill_gpus,
                         kv_transfer_gb_per_s=kv_transfer_gb_per_s, seed=seed, max_time_s=max_time_s, sla=sla,
                         stack=applied_stack(gpu_spec, profile_data, stack), topology=graph,
                         failures=tuple(parse_failure(f) for f in fail),
                         prediction_log_sigma=log_sigma, no_interval_reason=reason,
                         interval=level)


def _number(where: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: {excerpt(text)} is not a number") from None


def parse_set_values(set_values) -> tuple[dict, dict]:
    """'gpu.hbm_tb_per_s=10' -> GPU override; 'topology.nic_gbps=200' (or a bare topology parameter) ->
    topology override. Values are numbers (or strings for fabric and server_kind)."""
    gpu_overrides, topology_overrides = {}, {}
    for item in set_values or ():
        if "=" not in item:
            raise ConfigError(f"`set_values`: {item!r} is not KEY=VALUE (e.g. topology.nic_gbps=200, "
                              f"gpu.hbm_tb_per_s=10)")
        key, value = (part.strip() for part in item.split("=", 1))
        scope, _, name = key.partition(".")
        if name in (gpu_overrides if scope == "gpu" else topology_overrides):
            raise ConfigError(f"`set_values` {key}: given twice; give each field once")
        if scope == "gpu" and name:
            gpu_overrides[name] = value
        elif scope == "topology" and name:
            known = override_names()
            if name not in known:
                raise ConfigError(f"`set_values` {key}: unknown topology key; allowed: {', '.join(known)}")
            topology_overrides[name] = (value if name in ("fabric", "server_kind")
                                        else _number(f"`set_values` {key}", value))
        else:
            raise ConfigError(f"`set_values`: {key!r} must start with gpu. or topology.")
    return gpu_overrides, topology_overrides


def apply_gpu_overrides(gpu, overrides: dict):
    """A GPUSpec with fields replaced (validated again by GPUSpec itself)."""
    if not overrides:
        return gpu
    names = {f.name for f in fields(gpu)} - {"name", "aliases"}
    text_fields = {f.name for f in fields(gpu) if f.type == "str"}
    changes = {}
    peaks = dict(gpu.peak_tflops)
    for key, value in overrides.items():
        if key.startswith("peak_tflops."):
            peaks[key.split(".", 1)[1]] = _number(f"`set_values` gpu.{key}", value)
            changes["peak_tflops"] = peaks
        elif key not in names or key in ("peak_tflops", "usd_per_gpu_hour"):
            allowed = sorted(names - {"peak_tflops", "usd_per_gpu_hour"}) + ["peak_tflops.DTYPE"]
            raise ConfigError(f"`set_values` gpu.{key}: unknown GPU field; allowed: {', '.join(allowed)}")
        elif key in text_fields:
            changes[key] = value
        else:
            number = _number(f"`set_values` gpu.{key}", value)
            whole = key in ("gpus_per_server", "scaleup_links") and number.is_integer()   # else refused as not whole
            changes[key] = int(number) if whole else number
    try:
        return replace(gpu, **changes)
    except ConfigError as exc:
        raise ConfigError(f"`set_values`: {exc}") from None


def parse_failure(text: str) -> tuple:
    """'gpu:12@30' -> ("gpu", 12, 30.0); 'link:gpu0-nvswitch0@5' -> ("link", "gpu0", "nvswitch0", 5.0)."""
    kind, _, rest = str(text).partition(":")
    target, _, when = rest.rpartition("@")
    if kind not in ("gpu", "link") or not target or not when:
        raise ConfigError(f"`fail`: {text!r} is not gpu:ID@T or link:A-B@T")
    time_s = _number("`fail` time", when)
    if kind == "gpu":
        try:
            return ("gpu", int(target), time_s)
        except ValueError:
            raise ConfigError(f"`fail`: GPU id {target!r} must be a whole number") from None
    a, sep, b = target.partition("-")
    if not sep or not a or not b:
        raise ConfigError(f"`fail`: link {target!r} must be A-B (node ids, e.g. nic0-leaf0)")
    return ("link", a, b, time_s)


def default_lengths(model_name: str):
    """Prompt and output lengths when none are given: the model's MLPerf dataset where there is one,
    else 1,024 in / 256 out."""
    try:
        scenario = get_scenario(model_name, "offline")
        return scenario.input_lengths, scenario.generated_lengths, f"MLPerf {model_name} dataset lengths"
    except ConfigError:
        return Fixed(1024), Fixed(256), "fixed 1024 in / 256 out"


def workload_spec(model_name: str, *, rate=None, arrival="poisson", cv=1.0, duration_s=None, requests=None,
                  offline=False, users=None, think_time_s=0.0, input_tokens=None, output_tokens=None,
                  workload=None, trace=None) -> tuple[WorkloadSpec, str]:
    if workload is not None and trace is not None:
        raise ConfigError("`workload` and `trace`: give one")
    if workload is not None or trace is not None:
        # a file describes the whole workload; an option beside it would be silently ignored
        given = [name for name, value in (("`rate`", rate), ("`duration_s`", duration_s), ("`requests`", requests),
                                          ("`users`", users), ("`input_tokens`", input_tokens),
                                          ("`output_tokens`", output_tokens)) if value is not None]
        given += [name for name, off in (("`offline`", not offline), ("`arrival`", arrival == "poisson"),
                                         ("`cv`", cv == 1.0), ("`think_time_s`", think_time_s == 0.0)) if not off]
        if given:
            source = "`workload`" if workload is not None else "`trace`"
            raise ConfigError(f"{given[0]}: {source} describes the whole workload, so {given[0]} would be "
                              f"ignored; drop one")
    if isinstance(workload, WorkloadSpec):
        return workload, "given"
    if workload is not None:
        return workload_from_toml(workload), str(workload)
    if trace is not None:
        return WorkloadSpec(trace=str(trace)), str(trace)
    default_in, default_out, lengths_note = default_lengths(model_name)
    spec = workload_from_flags(
        rate=rate, arrival=arrival, cv=cv, duration_s=duration_s, requests=requests, offline=offline, users=users,
        think_time_s=think_time_s,
        input_lengths=parse_length_flag("`input_tokens`", input_tokens) if input_tokens is not None else default_in,
        output_lengths=parse_length_flag("`output_tokens`", output_tokens) if output_tokens is not None else default_out)
    note = lengths_note if input_tokens is None or output_tokens is None else "given"
    return spec, note


def engine_workload(spec: WorkloadSpec, seed: int, stream_metrics: bool | None = None):
    """What the engine runs: Requests, ClosedLoopRequests, or (long open-loop runs, or when asked) a
    ChunkedWorkload simulated in bounded memory with histogram percentiles."""
    open_loop = spec.trace is None and not spec.closed_loop
    if stream_metrics is None:
        expected = spec.request_count() if open_loop else 0
        stream_metrics = open_loop and expected > STREAM_ABOVE_REQUESTS
    if stream_metrics:
        if not open_loop:
            raise ConfigError("`stream_metrics`: needs an open-loop workload (`rate` or `offline`), not a trace or "
                              "`users`")
        return ChunkedWorkload(lambda: spec.chunks(seed))
    if spec.closed_loop:
        inputs, outputs = spec.lengths(seed)
        return ClosedLoopRequests(spec.arrival, input_tokens=inputs, output_tokens=outputs)
    return spec.build(seed)


def run_config(config: ServingConfig, workload, usd_per_gpu_hour=None, workload_info: dict | None = None,
               step_cost=None, representative: bool = False, record_steps: bool = False, jobs: int = 1,
               stop_when_missed=None, progress=None) -> RunResult:
    """Run a resolved config on an engine workload (Requests or ClosedLoopRequests); `representative`
    simulates one replica where that stands for all, `record_steps` keeps step traces (see
    `run.simulate`). `progress(done, total, what)` (see `simulator.progress`) hears how far the run is (simulated seconds, or engines done on the no-SimPy path; see `run.simulate`)."""
    result = run_engine(config, workload, step_cost=step_cost, representative=representative,
                        record_steps=record_steps, jobs=jobs, stop_when_missed=stop_when_missed,
                        progress=progress)
    cost = cost_fields(config.gpu, config.gpus, result.summary["output_tokens_per_s"], usd_per_gpu_hour)
    summary = dict(result.summary)
    if step_cost is None:
        summary.update(interval_fields(summary["output_tokens_per_s"], config.prediction_log_sigma, config.interval))
    return RunResult(summary=summary, cost=cost, plan=result.plan, memory=result.memory,
                     workload=workload_info or {}, engine_result=result, warnings=result.warnings)


def simulate(workload=None, jobs: int = 1, progress=None, **options) -> RunResult:
    """Simulate one cluster on one workload. Cluster options: see `serving_config`; workload options:
    rate, arrival, cv, duration_s, requests, offline, users, think_time_s, input_tokens, output_tokens,
    workload (TOML path or WorkloadSpec), trace (CSV/JSONL path); or pass `Requests` as `workload`.
    `jobs`: processes for this one run where its engines never interact (see `run.simulate`).
    `progress`: a callable `progress(done, total, what)` (see `simulator.progress`)."""
    unknown = set(options) - set(CLUSTER_OPTIONS) - set(WORKLOAD_OPTIONS)
    if unknown:
        raise ConfigError(f"simulate: unknown option {sorted(unknown)[0]!r}")
    cluster = {k: v for k, v in options.items() if k in CLUSTER_OPTIONS}
    usd = cluster.pop("usd_per_gpu_hour", None)
    config = serving_config(**cluster)
    expected = None
    if isinstance(workload, (Requests, ClosedLoopRequests)):
        engine_input, info = workload, {"requests": len(workload.input_tokens)}
    else:
        flags = {k: v for k, v in options.items() if k in WORKLOAD_OPTIONS and k != "stream_metrics"}
        if workload is not None:
            flags["workload"] = workload
        spec, note = workload_spec(config.model.name, **flags)
        engine_input = engine_workload(spec, config.seed, options.get("stream_metrics"))
        info = {**spec.describe(), "lengths": note}
        if isinstance(engine_input, ChunkedWorkload):
            info["metrics"] = "streamed (bounded memory; percentiles from 0.5%-wide histogram bins)"
            expected = spec.request_count()
    if progress is not None:
        if hasattr(engine_input, "input_tokens"):
            count = f"{len(engine_input.input_tokens):,}"
        else:
            count = f"about {expected:,}"
        progress(None, None, f"simulating {count} requests on {config.gpus:,} {config.gpu.name}")
    result = run_config(config, engine_input, usd, info, jobs=jobs, progress=progress)
    # a run cut at `max_time_s` is short by choice, and says what it cut
    short = (short_run_warning(engine_input.arrival_s, engine_input.output_tokens, result.summary)
             if isinstance(engine_input, Requests) and config.max_time_s is None else None)
    return replace(result, warnings=result.warnings + (short,)) if short else result


def requests_from_arrays(arrival_s, input_tokens, output_tokens) -> Requests:
    return Requests(np.asarray(arrival_s, float), np.asarray(input_tokens), np.asarray(output_tokens))
