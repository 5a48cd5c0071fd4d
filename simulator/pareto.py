"""`infersim pareto`: the frontier of throughput per GPU against tokens per second per user, InferenceX
style, over plans and concurrency levels, with cost and tokens per provisioned megawatt at every point.

Each point is a closed loop: `concurrency` users, each sending its next request as soon as the last one
finishes (InferenceX runs `benchmark_serving --max-concurrency CONC --num-prompts 10xCONC`).
- Per-user rate (interactivity, tok/s/user) = 1 / median TPOT, where a request's TPOT is (latency - TTFT)
  / (output tokens - 1): InferenceX's `median_intvty` (utils/process_result.py: 1000 / median_tpot_ms;
  the dashboard's x axis "Interactivity (tok/s/user)").
- Throughput per GPU = completed tokens per second of the run (first request to last completion) over
  every GPU of the cluster: output tokens (`output_tput_per_gpu`) or prompt + output (`tput_per_gpu`,
  the dashboard's "Token Throughput per GPU (tok/s/gpu)").
- A point is on the front when no other point of the same GPU type has at least its per-user rate and
  its output tokens/s per GPU, and more of one (`front_mask`).
How the search prunes: see `pareto_search` (`GpuSearch.search`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from simulator.drop_reasons import counted
from simulator.errors import ConfigError, InfeasibleError, refuse_repeats, require_number
from simulator.front import front_mask
from simulator.metrics import SLA, request_metrics
from simulator.mlperf import PRUNE_MARGIN
from simulator.pareto_search import BATCHING_MODES, GpuSearch, modes
from simulator.plan import MAX_GPUS
from simulator.scenario_runs import resolve_config
from simulator.search import meets_sla
from workloads.arrivals import DEFAULT_CONCURRENCY_RATIO, DEFAULT_MAX_CONCURRENCY, MIN_CONCURRENCY_RATIO
from workloads.lengths import parse_length_flag
from workloads.scenarios import check_limit, scenario_for

LATENCY_PERCENTILES = ("p99 TTFT and TPOT over every request but each user's first: every user sends its first "
                       "request at once, a start-up burst no served load sees (InferenceX's p99 counts it)")
PER_USER_RATE = ("1 / median TPOT (TPOT = (latency - TTFT) / (output tokens - 1)), InferenceX's interactivity "
                 "median_intvty = 1000 / median_tpot_ms")
SCALARS = ("gpu", "gpus", "plan_label", "concurrency", "output_tokens_per_s", "output_tokens_per_s_per_gpu",
           "total_tokens_per_s_per_gpu", "output_tokens_per_s_per_user", "ttft_p99_s", "tpot_p99_s",
           "usd_per_million_tokens", "usd_per_million_tokens_low", "usd_per_million_tokens_high",
           "output_tokens_per_s_per_provisioned_mw", "on_front", "meets_sla")


@dataclass(frozen=True)
class ParetoPoint:
    """One closed-loop run: its plan, concurrency, throughput, latency, cost and power figures."""

    gpu: str
    gpus: int
    plan: dict
    plan_label: str
    concurrency: int
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    total_tokens_per_s_per_gpu: float
    output_tokens_per_s_per_user: float
    ttft_p99_s: float
    tpot_p99_s: float
    usd_per_million_tokens: float
    usd_per_million_tokens_low: float
    usd_per_million_tokens_high: float
    output_tokens_per_s_per_provisioned_mw: float
    on_front: bool = False
    meets_sla: bool | None = None        # within the p99 TTFT/TPOT limits given (None: no limits given)
    serving_options: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def xy(self) -> tuple[float, float]:
        return self.output_tokens_per_s_per_user, self.output_tokens_per_s_per_gpu

    def to_dict(self) -> dict:
        return {"gpu": self.gpu, "gpus": self.gpus, "plan": dict(self.plan),
                **{k: getattr(self, k) for k in SCALARS if k not in ("gpu", "gpus")}}

    def row(self) -> dict:
        return {k: getattr(self, k) for k in SCALARS}


@dataclass(frozen=True)
class ParetoResult:
    model: str
    input_tokens: float
    output_tokens: float
    gpus: int
    points: tuple
    power_counted: str
    search: dict
    warnings: tuple = ()
    sla: dict = field(default_factory=dict)     # the p99 limits given: ttft_limit_s, tpot_limit_s

    def to_dict(self) -> dict:
        return {"kind": "pareto", "model": self.model, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "gpus": self.gpus,
                "per_user_rate": PER_USER_RATE, "latency_percentiles": LATENCY_PERCENTILES, **self.sla, "points": [p.to_dict() for p in self.points],
                "power_counted": self.power_counted, "search": _without_wall_time(self.search),
                "warnings": list(self.warnings)}

    def rows(self) -> list[dict]:
        return [p.row() for p in self.points]

    def front(self, gpu: str | None = None) -> list[ParetoPoint]:
        """Front points (of one GPU type, or all), by per-user rate, fastest users first."""
        chosen = [p for p in self.points if p.on_front and (gpu is None or p.gpu == gpu)]
        return sorted(chosen, key=lambda p: -p.output_tokens_per_s_per_user)

    def best(self, gpu: str) -> ParetoPoint | None:
        """The point of `gpu` serving the most output tokens/s per GPU within the p99 TTFT / TPOT limits
        given (the plan a reader of the front picks for an SLA; `emit` takes it), or None."""
        fits = [p for p in self.points if p.gpu == gpu and p.meets_sla is not False]
        return max(fits, key=lambda p: p.output_tokens_per_s_per_gpu, default=None)


def gpu_names(gpu) -> list[str]:
    names = [n.strip() for n in (gpu.split(",") if isinstance(gpu, str) else gpu)]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("`gpu`: give one or more catalog GPU names separated by commas, e.g. b200,mi355x")
    refuse_repeats("`gpu`", names)
    return names


def _levels(concurrency) -> list[int] | None:
    if concurrency is None:
        return None
    values = concurrency.split(",") if isinstance(concurrency, str) else list(concurrency)
    levels = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"`concurrency`: {value!r} is not a number (give users like 1,4,16,64)") from None
        levels.append(require_number("`concurrency`", int(number) if number.is_integer() else number,
                                     low=1, high=1_000_000, integer=True))
    if not levels:
        raise ConfigError("`concurrency`: give one or more user counts, e.g. 1,4,16,64")
    refuse_repeats("`concurrency`", levels)
    return sorted(levels)


def provisioned_w_per_gpu(gpu) -> float:
    """Watts provisioned per GPU: its TDP plus the rest of its node's rated power per GPU (when catalogued)."""
    return gpu.power_w + (gpu.node_other_power_w or 0.0)


def power_counted(gpus: list) -> str:
    parts = []
    for gpu in gpus:
        if gpu.node_other_power_w is None:
            parts.append(f"{gpu.name}: {gpu.power_w:,.0f} W TDP only (no node power in the GPU catalog)")
        else:
            parts.append(f"{gpu.name}: {gpu.power_w:,.0f} W TDP + {gpu.node_other_power_w:,.1f} W rest of the node "
                         f"= {provisioned_w_per_gpu(gpu):,.1f} W per GPU")
    return ("per GPU: the GPU's TDP plus the rest of its node's rated power (server maximum less its GPUs, over "
            "its GPUs: host CPUs, memory, NICs, NVSwitch, fans, power-supply losses; gpus.toml node_other_power_w); "
            "not counted: switches outside the node, cooling plant, facility overhead (PUE). " + "; ".join(parts))


def _point(config, candidate, run, label: str, options: dict) -> ParetoPoint:
    summary, cost, plan = run.summary, run.cost, candidate.plan
    gpus, mode = config.gpus, candidate.mode
    megawatts = gpus * provisioned_w_per_gpu(config.gpu) / 1e6
    # the plan section mlperf and size give (what --emit reads), with the prefill/decode split
    described = {**run.plan, "precision": dict(run.plan["precision"]), "memory_utilization": plan.memory_utilization,
                 "prefill_gpus": mode.prefill_gpus, "decode_gpus": gpus - mode.prefill_gpus}
    precision = "/".join(run.plan["precision"][k] for k in ("weights", "activations", "kv_cache"))
    serving = {**options, "gpu": config.gpu.name, "gpus": gpus, "tp": plan.tp, "pp": plan.pp, "ep": plan.ep,
               "precision": precision, "batching": mode.batching, "prefill_gpus": mode.prefill_gpus,
               "max_batch_size": plan.max_batch_size, "max_tokens_per_step": plan.max_tokens_per_step,
               "block_size": plan.block_size, "memory_utilization": plan.memory_utilization}
    return ParetoPoint(
        gpu=config.gpu.name, gpus=gpus, plan=described, plan_label=label, concurrency=candidate.concurrency,
        output_tokens_per_s=summary["output_tokens_per_s"],
        output_tokens_per_s_per_gpu=summary["output_tokens_per_s"] / gpus,
        total_tokens_per_s_per_gpu=summary["total_tokens_per_s"] / gpus,
        output_tokens_per_s_per_user=1.0 / summary["tpot_p50_s"],
        **_steady_p99s(run.engine_result.arrays, candidate.concurrency),
        usd_per_million_tokens=cost["usd_per_million_tokens"],
        usd_per_million_tokens_low=cost["usd_per_million_tokens_low"],
        usd_per_million_tokens_high=cost["usd_per_million_tokens_high"],
        output_tokens_per_s_per_provisioned_mw=summary["output_tokens_per_s"] / megawatts,
        serving_options=serving)


def merge_identical_modes(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """Runs that differ only in their batching policy and came out identical (one user, or batches no
    prompt work joins: continuous and chunked then run the same steps) listed once, the label naming
    each policy ("tp8-pp1-ep1-mbs1 continuous/chunked"); the first policy's plan is the one emitted."""
    merged, index = [], {}
    for point in points:
        setup = {k: v for k, v in point.serving_options.items() if k != "batching"}
        key = (repr(sorted(setup.items())), point.concurrency, point.output_tokens_per_s,
               point.total_tokens_per_s_per_gpu, point.output_tokens_per_s_per_user, point.ttft_p99_s, point.tpot_p99_s)
        if key in index:
            first = merged[index[key]]
            merged[index[key]] = replace(first, plan_label=f"{first.plan_label}/{point.serving_options['batching']}")
        else:
            index[key] = len(merged)
            merged.append(point)
    return merged


def _steady_p99s(arrays: dict, users: int) -> dict:
    """p99 TTFT and TPOT of the requests after each user's first (request ids from `users` on: a closed
    loop numbers requests as they are sent, and every user sends its first at time 0); all requests when
    each user sends one."""
    first = users if len(arrays["finish_s"]) > users else 0
    metrics = request_metrics({k: v[first:] for k, v in arrays.items()})
    finished = np.isfinite(arrays["finish_s"][first:])
    return {"ttft_p99_s": float(np.percentile(metrics["ttft_s"][finished], 99)),
            "tpot_p99_s": float(np.nanpercentile(metrics["tpot_s"][finished], 99))}


def pareto(*, model="llama3.1-70b", gpu="b200", gpus: int = 8, input_tokens=1024, output_tokens=1024,
           concurrency=None, max_concurrency: int | None = None, concurrency_ratio: float | None = None,
           requests_per_user: int = 10, batching=BATCHING_MODES, precision="auto", max_tokens_per_step: int = 8192,
           seed: int = 0, usd_per_gpu_hour=None, gpu_catalog=(), model_catalog=(), profile=None, stack=None,
           prune: bool = True, sla_ttft_s: float | None = None, sla_tpot_s: float | None = None,
           progress=None) -> ParetoResult:
    """The front of output tokens/s per GPU against tokens/s per user for each GPU type in `gpu` (a list
    or "b200,mi355x") on `gpus` GPUs each (see the module docstring). Concurrency levels are 1, r, r^2 ...
    (`concurrency_ratio`) up to `max_concurrency` or what the KV cache holds, or the `concurrency` list
    given (the two shape the default levels only: given with `concurrency`, they are refused, not ignored;
    None: DEFAULT_MAX_CONCURRENCY, DEFAULT_CONCURRENCY_RATIO); `batching` chooses among continuous,
    chunked (aggregated) and disaggregated serving; `prune` False runs every candidate (the pruned search must give the same front); `progress(done, total, what)`
    hears each point simulated (see `simulator.progress`). `sla_ttft_s` / `sla_tpot_s`: p99 limits; each
    point says whether it meets them (`meets_sla`) and `best` picks among those that do."""
    started = time.perf_counter()
    names = gpu_names(gpu)
    require_number("`gpus`", gpus, low=1, high=MAX_GPUS, integer=True)
    if concurrency is not None:
        given = [name for name, value in (("max_concurrency", max_concurrency),
                                          ("concurrency_ratio", concurrency_ratio)) if value is not None]
        if given:
            raise ConfigError(f"`{given[0]}`: shapes the default concurrency levels; `concurrency` lists them "
                              "itself (give one or the other)")
    max_concurrency = DEFAULT_MAX_CONCURRENCY if max_concurrency is None else max_concurrency
    concurrency_ratio = DEFAULT_CONCURRENCY_RATIO if concurrency_ratio is None else concurrency_ratio
    require_number("`max_concurrency`", max_concurrency, low=1, high=1_000_000, integer=True)
    # each level is a simulated run: at 1.1, levels up to 1,024 users are about 60 runs a plan; a ratio
    # nearer 1 only repeats rounded levels (consecutive counts are what `concurrency` lists directly)
    require_number("`concurrency_ratio`", concurrency_ratio, low=MIN_CONCURRENCY_RATIO, high=16)
    require_number("`requests_per_user`", requests_per_user, low=1, high=10_000, integer=True)
    batching = tuple(batching.split(",")) if isinstance(batching, str) else tuple(batching)
    for mode in batching:
        if mode not in BATCHING_MODES:
            raise ConfigError(f"`batching`: {mode!r} is not one of {', '.join(BATCHING_MODES)}")
    refuse_repeats("`batching`", batching)
    inputs = parse_length_flag("`input_tokens`", input_tokens)
    outputs = parse_length_flag("`output_tokens`", output_tokens)
    levels = _levels(concurrency)
    sla = {key: check_limit(name, value) for key, name, value in (("ttft_limit_s", "`sla_ttft_s`", sla_ttft_s),
                                                                 ("tpot_limit_s", "`sla_tpot_s`", sla_tpot_s))
           if value is not None}
    limits = SLA(sla.get("ttft_limit_s"), sla.get("tpot_limit_s"))
    options = {"model": model, "precision": precision, "max_tokens_per_step": max_tokens_per_step, "seed": seed,
               "gpu_catalog": tuple(gpu_catalog), "model_catalog": tuple(model_catalog), "profile": profile,
               "stack": stack}
    configs = [resolve_config({**options, "gpu": name, "gpus": gpus}, {}) for name in names]
    longest = inputs.maximum + outputs.maximum
    if longest > configs[0].model.max_context:
        raise ConfigError(f"`input_tokens`/`output_tokens`: up to {longest} tokens per request, beyond "
                          f"{configs[0].model.name}'s {configs[0].model.max_context}-token context")
    scenario = scenario_for(configs[0].model.name, "offline", inputs, outputs)   # the plans' and bounds' lengths
    points, warnings, searched = [], [], {}
    for config in configs:
        began = time.perf_counter()
        all_modes, rejected = modes(config, scenario, batching)
        if not all_modes:
            warnings.append(f"{config.gpu.name}: no plan fits {gpus} GPUs: " + "; ".join(rejected[:3]))
            continue
        search = GpuSearch(config, scenario, requests_per_user, usd_per_gpu_hour)
        candidates = search.candidates(all_modes, concurrency_ratio, max_concurrency, levels)
        runs, skipped, dropped = search.search(candidates, PRUNE_MARGIN, prune, progress)
        found = merge_identical_modes([_point(config, c, run, c.mode.label(c.plan, gpus), options) for c, run in runs])
        mask = front_mask([p.xy for p in found])
        points += [replace(p, on_front=on, meets_sla=meets_sla(p.row(), limits) if sla else None)
                   for p, on in zip(found, mask)]
        warnings += [f"{config.gpu.name} {c.mode.label(c.plan, gpus)} at {c.concurrency} users dropped "
                     f"{run.summary['requests_dropped']} requests ({counted(run.summary['requests_dropped_by_reason'])}); "
                     "left out" for c, run in dropped]
        searched[config.gpu.name] = {"modes": len(all_modes), "candidates": len(candidates), "simulated": len(runs)
                                     + len(dropped), "pruned": len(skipped), "wall_s": time.perf_counter() - began,
                                     "plans_rejected": rejected}
    if not points:
        raise InfeasibleError("pareto: no plan fits: " + " | ".join(warnings[:3]))
    missing = [c.gpu.name for c in configs if c.gpu.node_other_power_w is None]
    if missing:
        warnings.append(f"tokens per provisioned MW count GPU TDP only for {', '.join(missing)}: the GPU catalog "
                        f"has no node power (node_other_power_w) for them")
    search_info = {"per_gpu": searched, "prune_margin": PRUNE_MARGIN if prune else None,
                   "concurrency_levels": levels or f"1 x {concurrency_ratio:g}^k up to {max_concurrency} or the "
                                                   f"users the KV cache holds", "requests_per_user": requests_per_user,
                   "wall_s": time.perf_counter() - started}
    return ParetoResult(model=configs[0].model.name, input_tokens=inputs.mean, output_tokens=outputs.mean, gpus=gpus,
                        points=tuple(points), power_counted=power_counted([c.gpu for c in configs]),
                        search=search_info, warnings=tuple(warnings), sla=sla)


def _without_wall_time(search: dict) -> dict:
    """The search as the JSON document gives it: without wall-clock seconds, so a run's document is the
    same every time (the console prints them)."""
    return {k: ({name: {f: v for f, v in info.items() if f != "wall_s"} for name, info in value.items()}
                if k == "per_gpu" else value) for k, value in search.items() if k != "wall_s"}
