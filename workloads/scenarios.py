"""MLPerf benchmark scenarios: a dataset's length distributions plus each scenario's latency limits.

Offline queues everything at t = 0; Server and Interactive are Poisson at a rate the search picks, valid
when p99 TTFT and p99 TPOT meet the limits. Figures live in `workloads/catalog/scenarios.toml`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.catalog_io import packaged_toml
from simulator.errors import ConfigError, reject_unknown_keys, require_number
from workloads.arrivals import Offline, Poisson
from workloads.lengths import lengths_from_dict
from workloads.requests import Requests

KINDS = ("offline", "server", "interactive")


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

    @property
    def min_queries(self) -> int:
        """Queries for a stable p99: MLPerf asks for at least the dataset once (and 270,336 queries in a
        real Server run); a simulation needs a few thousand for the 99th percentile to settle."""
        return max(4000, min(self.samples, 24576))

    def requests(self, count: int, rate_per_s: float | None, seed: int = 0,
                 output_tokens_mean: float | None = None) -> Requests:
        """`count` queries, Offline (rate None) or Poisson at `rate_per_s`. `output_tokens_mean` rescales
        the drawn output lengths to that mean (a measured tokens per sample), within the dataset's cap."""
        rng = np.random.default_rng(seed)
        arrival = Offline() if rate_per_s is None else Poisson(rate_per_s)
        times = arrival.times(count, rng)
        inputs, outputs = self.input_lengths.sample(count, rng), self.output_lengths.sample(count, rng)
        if output_tokens_mean is not None:
            outputs = rescale_mean(outputs, output_tokens_mean, self.output_lengths.maximum)
        return Requests(times, inputs, outputs)

    def describe(self) -> dict:
        return {"model": self.model, "scenario": self.kind, "ttft_p99_s": self.ttft_p99_s,
                "tpot_p99_s": self.tpot_p99_s, "input_tokens_mean": self.input_lengths.mean,
                "output_tokens_mean": self.output_lengths.mean, "dataset": self.dataset}


def rescale_mean(lengths: np.ndarray, mean: float, cap: int) -> np.ndarray:
    """Lengths scaled so their mean is `mean` (clipped to [1, cap], the scale re-solved after clipping)."""
    require_number("output_tokens_mean", mean, low=1, high=cap)
    values = lengths.astype(float)
    factor = mean / values.mean()
    for _ in range(20):
        scaled = np.clip(np.rint(values * factor), 1, cap)
        if abs(scaled.mean() - mean) <= 0.01 * mean:
            break
        factor *= mean / scaled.mean()
    return scaled.astype(np.int64)


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
        raise ConfigError(f"--model: no MLPerf scenario for {model!r}; known: {', '.join(sorted(catalog))}")
    table = catalog[model]
    where = f"scenarios.toml: [{model}]"
    reject_unknown_keys(where, table, ("dataset", "samples", "source", "server", "interactive", "input", "output"))
    kind = kind.lower()
    if kind not in KINDS:
        raise ConfigError(f"--scenario: {kind!r} is not one of {', '.join(KINDS)}")
    limits = {}
    if kind != "offline":
        if kind not in table:
            raise ConfigError(f"--scenario: {model} has no {kind} scenario; it has offline"
                              + "".join(f", {k}" for k in ("server", "interactive") if k in table))
        limits = table[kind]
        reject_unknown_keys(f"{where}.{kind}", limits, ("ttft_p99_s", "tpot_p99_s"))
        for key in ("ttft_p99_s", "tpot_p99_s"):
            require_number(f"{where}.{kind}.{key}", limits.get(key), low=0, low_inclusive=False, high=3600)
    return Scenario(model=model, kind=kind, input_lengths=lengths_from_dict(f"{where}.input", table["input"]),
                    output_lengths=lengths_from_dict(f"{where}.output", table["output"]),
                    samples=int(table["samples"]), dataset=table["dataset"], source=table["source"], **limits)


def mlperf_tpot_s(latency_s, ttft_s, output_tokens) -> np.ndarray:
    """MLPerf's TPOT: (latency - TTFT) / (output tokens - 1); NaN for one-token outputs."""
    latency_s, ttft_s = np.asarray(latency_s, dtype=float), np.asarray(ttft_s, dtype=float)
    output_tokens = np.asarray(output_tokens, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(output_tokens > 1, (latency_s - ttft_s) / (output_tokens - 1), np.nan)
