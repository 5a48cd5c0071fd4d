"""MLPerf benchmark scenarios: a dataset's length distributions plus each scenario's latency limits.

Offline queues everything at t = 0; Server and Interactive are Poisson at a rate the search picks, valid
when p99 TTFT and p99 TPOT meet the limits. Figures live in `workloads/catalog/scenarios.toml`.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from simulator.catalog_io import packaged_toml
from simulator.errors import ConfigError, reject_unknown_keys, require_number
from workloads.arrivals import Offline, Poisson
from workloads.lengths import Rescaled, lengths_from_dict, parse_length_flag
from workloads.requests import Requests, Share, share_of

# the most queries an Offline run issues (`queries`, or the count sized for 600 s); a measured row's
# query count is held to the same (simulator.measurements)
MAX_QUERIES = 50_000_000

KINDS = ("offline", "server", "interactive")
DEFAULT_KIND = "offline"    # the scenario `mlperf` scores and `size` sizes for when none is given


@dataclass(frozen=True)
class Scenario:
    model: str
    kind: str
    input_lengths: object
    output_lengths: object
    samples: int
    dataset: str
    source: str
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    generated_output_mean: float | None = None   # tokens the benchmark's model generates per sample, when the
                                                 # dataset's lengths are another model's reference answers

    @property
    def output_mean(self) -> float:
        """Mean output tokens per query the benchmark generates."""
        return self.generated_output_mean or self.output_lengths.mean

    @property
    def generated_lengths(self):
        """The output lengths the benchmark's model generates: the dataset's shape at its generated mean."""
        if self.generated_output_mean is None:
            return self.output_lengths
        return Rescaled(self.output_lengths, self.generated_output_mean)

    def requests(self, count: int, rate_per_s: float | None, seed: int = 0,
                 output_tokens_mean: float | None = None, share: Share | None = None) -> Requests:
        """`count` queries, Offline (rate None) or Poisson at `rate_per_s`. Output lengths are rescaled to
        `output_tokens_mean` (a measured tokens per sample; default: what the benchmark's model generates),
        within the dataset's cap. With `share`, only the queries one replica receives (`Share`): the same
        values at their positions, drawn without holding the whole stream."""
        rng = np.random.default_rng(seed)
        arrival = Offline() if rate_per_s is None else Poisson(rate_per_s)
        outputs = self.generated_lengths if output_tokens_mean is None else Rescaled(self.output_lengths,
                                                                                     output_tokens_mean)
        if share is None:
            times = arrival.times(count, rng)
            inputs, outputs = self.input_lengths.sample(count, rng), outputs.sample(count, rng)
            return Requests(times, inputs, outputs)
        times = share_of(arrival, "times", count, rng, share)
        inputs = share_of(self.input_lengths, "sample", count, rng, share)
        return Requests(times, inputs, share_of(outputs, "sample", count, rng, share), share)

    def describe(self) -> dict:
        # the p99 limits a run is held to: named as mlperf's results name them, not as a measured p99
        return {"model": self.model, "scenario": self.kind, "ttft_limit_s": self.ttft_p99_s,
                "tpot_limit_s": self.tpot_p99_s, "input_tokens_mean": self.input_lengths.mean,
                "output_tokens_mean": self.output_mean, "dataset": self.dataset}


LIMIT_MAX_S = 3600          # the longest p99 TTFT or TPOT limit a scenario (or a user's SLA) may set


def check_limit(where: str, value) -> float:
    """A p99 latency limit in seconds, in (0, LIMIT_MAX_S], or a ConfigError naming `where`."""
    return require_number(where, value, low=0, low_inclusive=False, high=LIMIT_MAX_S)


def _catalog() -> dict:
    return packaged_toml("workloads.catalog", "scenarios.toml")


def list_scenarios() -> list[Scenario]:
    out = []
    for model, table in _catalog().items():
        for kind in KINDS:
            if kind == "offline" or kind in table:
                out.append(get_scenario(model, kind))
    return out


def get_scenario(model: str, kind: str) -> Scenario:
    catalog = _catalog()
    if model not in catalog:
        raise ConfigError(f"`model`: no MLPerf scenario for {model!r}; known: {', '.join(sorted(catalog))}")
    table = catalog[model]
    where = f"scenarios.toml: [{model}]"
    reject_unknown_keys(where, table, ("dataset", "samples", "source", "server", "interactive", "input", "output",
                                       "generated_output_mean"))
    kind = kind.lower()
    if kind not in KINDS:
        raise ConfigError(f"`scenario`: {kind!r} is not one of {', '.join(KINDS)}")
    limits = {}
    if kind != "offline":
        if kind not in table:
            raise ConfigError(f"`scenario`: {model} has no {kind} scenario; it has offline"
                              + "".join(f", {k}" for k in ("server", "interactive") if k in table))
        limits = table[kind]
        reject_unknown_keys(f"{where}.{kind}", limits, ("ttft_p99_s", "tpot_p99_s"))
        for key in ("ttft_p99_s", "tpot_p99_s"):
            check_limit(f"{where}.{kind}.{key}", limits.get(key))
    here = Path(str(resources.files("workloads.catalog")))
    generated = table.get("generated_output_mean")
    if generated is not None:
        require_number(f"{where}.generated_output_mean", generated, low=1, high=1e7)
    return Scenario(model=model, kind=kind, input_lengths=_lengths(f"{where}.input", table["input"], here),
                    output_lengths=_lengths(f"{where}.output", table["output"], here),
                    samples=int(table["samples"]), dataset=table["dataset"], source=table["source"],
                    generated_output_mean=generated, **limits)


CUSTOM_SAMPLES = 24_576     # queries a workload of given lengths draws from (as MLPerf's largest datasets)


def scenario_for(model: str, kind: str, input_tokens=None, output_tokens=None, ttft_limit_s=None,
                 tpot_limit_s=None) -> Scenario:
    """The scenario a run is held to: `model`'s MLPerf scenario `kind`, with the lengths given (length
    forms as `input_tokens` takes them) replacing its dataset's and the p99 limits given replacing its
    own. A model with no MLPerf scenario needs both lengths, and Server/Interactive need both limits."""
    kind = str(kind).lower()
    if kind not in KINDS:
        raise ConfigError(f"`scenario`: {kind!r} is not one of {', '.join(KINDS)}")
    given = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    lengths = {name: parse_length_flag(f"`{name}`", value) for name, value in given.items() if value is not None}
    if model in _catalog():
        base = get_scenario(model, "offline" if kind != "offline" and kind not in _catalog()[model] else kind)
        base = replace(base, kind=kind)
    else:
        if len(lengths) < 2:
            missing = " and ".join(f"`{name}`" for name in given if name not in lengths)
            raise ConfigError(f"{missing}: {model} has no MLPerf scenario (known: {', '.join(sorted(_catalog()))}); "
                              f"give the workload's prompt and output lengths")
        base = Scenario(model=model, kind=kind, input_lengths=lengths["input_tokens"],
                        output_lengths=lengths["output_tokens"], samples=CUSTOM_SAMPLES, dataset="given lengths",
                        source="command line")
    if lengths:
        base = replace(base, input_lengths=lengths.get("input_tokens", base.input_lengths),
                       output_lengths=lengths.get("output_tokens", base.output_lengths), generated_output_mean=None,
                       samples=CUSTOM_SAMPLES, dataset=f"{base.dataset} with given lengths"
                       if base.dataset != "given lengths" else base.dataset)
    limits = {"ttft_p99_s": ttft_limit_s, "tpot_p99_s": tpot_limit_s}
    for key, name in (("ttft_p99_s", "`sla_ttft_s`"), ("tpot_p99_s", "`sla_tpot_s`")):
        if limits[key] is not None:
            check_limit(name, limits[key])
    if kind == "offline":
        return replace(base, ttft_p99_s=None, tpot_p99_s=None)
    base = replace(base, **{k: v for k, v in limits.items() if v is not None})
    if base.ttft_p99_s is None or base.tpot_p99_s is None:
        raise ConfigError(f"`scenario`: {model} has no {kind} scenario in MLPerf; give the p99 limits its "
                          f"{kind} runs must meet with `sla_ttft_s` and `sla_tpot_s`")
    return base


@functools.lru_cache(maxsize=64)
def _cached_lengths(where: str, key: str, base: Path):
    return lengths_from_dict(where, json.loads(key), base)


def _lengths(where: str, table: dict, base: Path):
    """A length distribution of the catalog (dataset histograms load once per process)."""
    return _cached_lengths(where, json.dumps(table, sort_keys=True), base)


def mlperf_tpot_s(latency_s, ttft_s, output_tokens) -> np.ndarray:
    """MLPerf's TPOT: (latency - TTFT) / (output tokens - 1); NaN for one-token outputs."""
    latency_s, ttft_s = np.asarray(latency_s, dtype=float), np.asarray(ttft_s, dtype=float)
    output_tokens = np.asarray(output_tokens, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(output_tokens > 1, (latency_s - ttft_s) / (output_tokens - 1), np.nan)
