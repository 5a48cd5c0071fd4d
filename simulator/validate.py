"""Validation: how well calibration predicts rows it never saw, in three leave-out splits.

- leave one GPU out: for every GPU with at least MIN_ROWS rows, fit without any row of that GPU and
  predict its rows (what a buyer of a GPU nobody calibrated on gets);
- leave one round out: fit the earliest round (MLPerf v4.1), predict the later one (v5.1);
- leave one model out: for every model, fit without it and predict its rows.
Per row: predicted, measured, error, inside the 80% interval or not; per split: median and
90th-percentile |error| and interval coverage; for leave-one-GPU-out also the ratio of two GPUs' per-GPU
throughput on one model and scenario, predicted against measured. Fits are warm-started from the fit of
all rows and reuse its simulations; every held-out prediction is re-anchored at the split's own
efficiencies, so it is the simulator's output, not the local model's.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from simulator.calibrate import Fit, fit, _sensitivity
from simulator.errors import ConfigError
from simulator.fit_parameters import Membership
from simulator.hardware import Efficiency, get_gpu
from simulator.intervals import DEFAULT_INTERVAL, interval_z
from simulator.row_models import RowSpec

MIN_ROWS = 3
SPLITS = ("gpu", "round", "model")


@dataclass(frozen=True)
class HeldOut:
    split: str
    left_out: str
    row: object
    spec: RowSpec
    predicted: float
    log_sigma: float

    @property
    def error(self) -> float:
        return self.predicted / self.row.output_tokens_per_s - 1

    @property
    def inside(self) -> bool:
        return abs(math.log(self.predicted / self.row.output_tokens_per_s)) <= interval_z(DEFAULT_INTERVAL) * self.log_sigma


def _predict_held_out(split_fit: Fit, specs, progress=None) -> dict:
    """Held-out specs predicted at the split's efficiencies (re-anchored: the simulator's own number),
    with their prediction log-sigma."""
    out = {}
    parameters, theta = split_fit.parameters, split_fit.theta
    for k, spec in enumerate(specs):
        if progress:
            progress(f"predicting held-out rows {k + 1}/{len(specs)}")
        model = split_fit.models[spec]
        indices = parameters.indices(Membership.of(get_gpu(spec.gpu, split_fit.gpu_catalog), spec.stack))
        efficiency = parameters.efficiency(theta, indices)
        model.refresh(efficiency)
        predicted = model.predict(efficiency)
        sensitivity = _sensitivity(model, parameters, theta, indices, predicted)
        out[spec] = (predicted, split_fit.prediction_log_sigma(Membership.of(get_gpu(spec.gpu)), sensitivity))
    return out


def _groups(rows, split: str) -> dict:
    """Left-out key -> held-out row indices, for one split."""
    groups = defaultdict(list)
    for i, row in enumerate(rows):
        key = {"gpu": row.gpu, "round": row.round, "model": row.model}[split]
        groups[key].append(i)
    if split == "gpu":
        return {k: v for k, v in groups.items() if len(v) >= MIN_ROWS}
    if split == "round":
        rounds = sorted(groups)
        if len(rounds) < 2:
            raise ConfigError("validate: leave one round out needs rows from two rounds")
        return {rounds[-1]: [i for r in rounds[1:] for i in groups[r]]}     # fit the earliest, predict the rest
    return dict(groups)


def run_split(base: Fit, split: str, progress=None) -> list[HeldOut]:
    """One split's held-out predictions; models (and their anchors) are shared with `base`."""
    rows = base.rows
    held = []
    for key, indices in sorted(_groups(rows, split).items()):
        left = set(indices)
        train = [r for i, r in enumerate(rows) if i not in left]
        if not train:
            continue
        if progress:
            progress(f"{split} split: fitting without {key} ({len(indices)} rows held out)")
        # the held-out rows' models stay in the shared dict, re-anchored at the split's efficiencies
        split_fit = fit(train, base.parameters.prior, models=base.models, theta0=base.theta, reanchor=False,
                        gpu_catalog=base.gpu_catalog)
        specs = list(dict.fromkeys(base.specs[i] for i in indices))
        predicted = _predict_held_out(split_fit, specs, progress)
        held += [HeldOut(split, key, rows[i], base.specs[i], *predicted[base.specs[i]]) for i in indices]
    return held


def summarise(held: list[HeldOut]) -> dict:
    errors = np.abs([h.error for h in held])
    return {"rows": len(held), "median_abs_error_pct": 100 * float(np.median(errors)),
            "p90_abs_error_pct": 100 * float(np.percentile(errors, 90)),
            "interval_coverage_pct": 100 * float(np.mean([h.inside for h in held]))}


def node_ratios(held: list[HeldOut]) -> list[dict]:
    """Per model and scenario, every pair of GPUs measured in the leave-one-GPU-out split: per-GPU
    throughput ratio predicted (each GPU from the fit that never saw it) against measured (medians)."""
    per = defaultdict(lambda: defaultdict(list))
    for h in held:
        per[(h.row.model, h.row.scenario)][h.row.gpu].append((h.predicted / h.row.gpus, h.row.output_tokens_per_s / h.row.gpus))
    out = []
    for (model, scenario), gpus in sorted(per.items()):
        for a, b in itertools.combinations(sorted(gpus), 2):
            pa, ma = np.median([p for p, _ in gpus[a]]), np.median([m for _, m in gpus[a]])
            pb, mb = np.median([p for p, _ in gpus[b]]), np.median([m for _, m in gpus[b]])
            out.append({"model": model, "scenario": scenario, "pair": f"{a}/{b}", "predicted_ratio": pa / pb,
                        "measured_ratio": ma / mb, "ratio_error": pa / pb - ma / mb})
    return out


def validate(rows, prior: Efficiency | None = None, *, splits=SPLITS, progress=None, base: Fit | None = None) -> dict:
    """The three splits (see the module docstring): per-row results, per-split summaries, node ratios."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ConfigError(f"--split: {sorted(unknown)[0]!r} is not one of {', '.join(SPLITS)}")
    base = base or fit(rows, prior, progress=progress)
    results = {}
    for split in splits:
        held = run_split(base, split, progress)
        results[split] = {"held_out": held, "summary": summarise(held) if held else {}}
    if "gpu" in results:
        results["gpu"]["node_ratios"] = node_ratios(results["gpu"]["held_out"])
    results["fit"] = base
    return results
