"""Validation: how well calibration predicts rows it never saw, in three leave-out splits.

- leave one GPU out: for every GPU with at least MIN_ROWS rows, fit without any row of that GPU and
  predict its rows (what a buyer of a GPU nobody calibrated on gets);
- leave one round out: fit the earliest round (MLPerf v4.1), predict the later one (v5.1);
- leave one model out: for every model, fit without it and predict its rows.
Per row: predicted, measured, error, inside the 80% interval or not; per split: median and
90th-percentile |error| and interval coverage; for leave-one-GPU-out also the ratio of two GPUs' per-GPU
throughput on one model and scenario, predicted against measured. Fits are warm-started from the fit of
all rows (groups no kept row depends on, such as a held-out GPU's own offsets, start at their prior: see
`calibrate.fit`) and reuse its simulations; every held-out row is simulated afresh at the split's own
efficiencies (its plan searched there too), so it is the simulator's output, not the local model's.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from simulator.calibrate import Fit, fit, require_rows_to_fit, _sensitivity
from simulator.errors import ConfigError
from simulator.fit_parameters import FIT_FIELDS
from simulator.hardware import Efficiency, get_gpu
from simulator.intervals import DEFAULT_INTERVAL, group_key, interval_z
from simulator.measurements import round_order
from simulator.row_models import RowSpec, row_model

MIN_ROWS = 3
SPLITS = ("gpu", "round", "model")
SHIFT_SHOWN = 0.03      # what held-out rows pin is listed when it moved (or sits) over 3% (log) from the other fit


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
        return self.predicted / self.row.fitted_tokens_per_s - 1

    @property
    def log_error(self) -> float:
        return math.log(self.predicted / self.row.fitted_tokens_per_s)

    @property
    def inside(self) -> bool:
        return abs(self.log_error) <= interval_z(DEFAULT_INTERVAL) * self.log_sigma


def _predict_held_out(split_fit: Fit, specs, progress=None) -> dict:
    """Held-out specs predicted at the split's efficiencies with their prediction log-sigma: the plan
    searched and the run scored afresh there (the simulator's own number and plan; the plan the fit of
    all rows chose could carry what the held-out rows taught it)."""
    out, plans = {}, {}
    parameters, theta = split_fit.parameters, split_fit.theta
    for k, spec in enumerate(specs):
        if progress:
            progress(k + 1, len(specs), "held-out rows predicted")
        member = split_fit.membership(spec)
        indices = parameters.indices(member)
        efficiency = parameters.efficiency(theta, indices)
        try:
            model = row_model(spec, efficiency, split_fit.model_catalog, split_fit.gpu_catalog, plans=plans,
                              seed=split_fit.seed)
        except ConfigError as exc:       # InfeasibleError too, kept as such; the simulator's message names no row
            raise type(exc)(f"validate: held-out row {spec.label} cannot be simulated: {exc}") from None
        predicted = model.predict(efficiency)
        sensitivity = _sensitivity(model, parameters, theta, indices, predicted)
        out[spec] = (predicted, split_fit.prediction_log_sigma(member, sensitivity))
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
        unnamed = next((name for name in groups if round_order(name) is None), None)
        if unnamed is not None:
            raise ConfigError(f"validate: leave one round out needs every row's round as vX.Y (e.g. v5.1); "
                              f"{len(groups[unnamed])} rows have round {unnamed!r}")
        rounds = sorted(groups, key=round_order)
        if len(rounds) < 2:
            return {}
        return {rounds[-1]: [i for r in rounds[1:] for i in groups[r]]}     # fit the earliest, predict the rest
    return dict(groups)


def field_shifts(base: Fit, split_fit: Fit, gpu_name: str) -> dict[str, tuple[float, float]]:
    """What a GPU's own rows pin: its efficiencies (its vendor's reference stack at the default release)
    in the fit of all rows and in the fit without its rows, {field: (with, without)}, for the fields that
    moved by over SHIFT_SHOWN."""
    gpu = get_gpu(gpu_name, base.gpu_catalog)
    values = [f.parameters.efficiency(f.theta, f.parameters.indices(f.default_membership(gpu))) for f in (base, split_fit)]
    pairs = {name: (getattr(values[0], name), getattr(values[1], name)) for name in FIT_FIELDS}
    return {name: pair for name, pair in pairs.items()
            if min(pair) > 0 and abs(math.log(pair[1] / pair[0])) > SHIFT_SHOWN}


def unseen_groups(base: Fit, split_fit: Fit) -> dict[tuple, float]:
    """Groups only held-out rows pin: a stack or release only they run (the split's fit predicts it at the
    level above), or a field only they exercise (the split's fit holds it at its prior: the expert-parallel
    all-to-all when DeepSeek-R1 is held out). Each with the factor over its prior the fit of all rows gives
    it, where that is over SHIFT_SHOWN from 1."""
    known = {group for group, i in split_fit.parameters.index.items() if i not in split_fit.unpinned}
    offsets = base.theta - base.parameters.mean
    return {group: math.exp(float(offsets[i])) for i, group in enumerate(base.parameters.groups)
            if group not in known and i not in base.unpinned and abs(float(offsets[i])) > SHIFT_SHOWN}


def run_split(base: Fit, split: str, progress=None) -> tuple[list[HeldOut], dict]:
    """One split's held-out predictions, and what the held-out rows alone pin: per held-out GPU its
    `field_shifts`, per held-out round or model its `unseen_groups`; models (and their anchors) are shared
    with `base`."""
    rows = base.rows
    held, shifts = [], {}
    groups = sorted(_groups(rows, split).items())
    for number, (key, indices) in enumerate(groups, start=1):
        left = set(indices)
        train = [r for i, r in enumerate(rows) if i not in left]
        if not train:
            continue
        if progress:
            progress(number, len(groups), f"{split} split fits (without {key}: {len(indices)} rows held out)")
        # the held-out rows' models stay in the shared dict, re-anchored at the split's efficiencies
        split_fit = fit(train, base.parameters.prior, models=base.models, theta0=base.theta, reanchor=False,
                        model_catalog=base.model_catalog, gpu_catalog=base.gpu_catalog, seed=base.seed)
        specs = list(dict.fromkeys(base.specs[i] for i in indices))
        predicted = _predict_held_out(split_fit, specs, progress)
        held += [HeldOut(split, key, rows[i], base.specs[i], *predicted[base.specs[i]]) for i in indices]
        if split == "gpu":
            shifts[key] = field_shifts(base, split_fit, key)
        else:
            shifts[key] = unseen_groups(base, split_fit)
    return held, shifts


def summarise(held: list[HeldOut]) -> dict:
    """Median signed error (the bias a buyer can correct for), median and 90th-percentile |error|, interval
    coverage."""
    signed = [h.error for h in held]
    errors = np.abs(signed)
    return {"rows": len(held), "median_error_pct": 100 * float(np.median(signed)),
            "median_abs_error_pct": 100 * float(np.median(errors)),
            "p90_abs_error_pct": 100 * float(np.percentile(errors, 90)),
            "interval_coverage_pct": 100 * float(np.mean([h.inside for h in held]))}


def _model_and_scenario(h: HeldOut) -> str:
    return group_key(h.row.model, h.row.scenario)


# How `breakdown` groups held-out rows, and in which splits: by model and scenario in every split, and by
# the GPU held out where GPUs are (a buyer reads the line of the GPU, model and scenario it asks about).
BREAKDOWNS = (("model and scenario", _model_and_scenario, SPLITS), ("held-out GPU", lambda h: h.left_out, ("gpu",)))


def _grouped(held: list[HeldOut], key) -> dict[str, list[HeldOut]]:
    """Held-out rows by `key(row)`, groups in key order."""
    groups = defaultdict(list)
    for h in held:
        groups[key(h)].append(h)
    return dict(sorted(groups.items()))


def breakdown(results: dict) -> list[dict]:
    """Where each split's held-out errors sit: `summarise` per group of `BREAKDOWNS`, as records."""
    records = []
    for split in SPLITS:
        held = results.get(split, {}).get("held_out", [])
        for by, key, splits in BREAKDOWNS:
            if split in splits:
                records += [{"split": split, "by": by, "group": group, **summarise(members)}
                            for group, members in _grouped(held, key).items()]
    return records


def unseen_model_log_sigma(held: list[HeldOut], level: float = DEFAULT_INTERVAL) -> float:
    """The log-sigma s that, added in quadrature to every held-out row's own, puts `level` of the rows
    inside their intervals (0 when they already are): row i is inside once s^2 >= (e_i / z)^2 - sigma_i^2,
    e_i its log error, so s^2 is the `level` quantile of that need. A profile adds it to the intervals of
    models no fitted row ran."""
    if not held:
        return 0.0
    z = interval_z(level)
    need = [max((h.log_error / z) ** 2 - h.log_sigma ** 2, 0.0) for h in held]
    return math.sqrt(float(np.quantile(need, level, method="inverted_cdf")))


# A model and scenario needs this many held-out rows before its spread is written to a profile.
MIN_GROUP_ROWS = 5


def unseen_run_log_sigmas(held: list[HeldOut], level: float = DEFAULT_INTERVAL) -> dict[str, float]:
    """Per model and scenario ("llama2-70b interactive"), `unseen_model_log_sigma` of its rows held out with
    their GPU, where it is above 0 and the group has MIN_GROUP_ROWS rows or more: what intervals of a GPU no
    fitted row ran on that model and scenario add (`intervals.unseen_run_log_sigma`). A GPU nobody
    measured errs like these rows did, by scenario: held out, Llama 3.1 405B Offline rows came out 12% low
    with a quarter of them inside their intervals, while Mixtral's were nearly all inside."""
    sigmas = {key: unseen_model_log_sigma(rows, level) for key, rows in _grouped(held, _model_and_scenario).items()
              if len(rows) >= MIN_GROUP_ROWS}
    return {key: sigma for key, sigma in sigmas.items() if sigma > 0}


def node_ratios(held: list[HeldOut]) -> list[dict]:
    """Per model and scenario, every pair of GPUs measured in the leave-one-GPU-out split: per-GPU
    throughput ratio predicted (each GPU from the fit that never saw it) against measured (medians)."""
    per = defaultdict(lambda: defaultdict(list))
    for h in (h for h in held if h.row.fitted_on == "output_tokens_per_s"):    # a system's throughput
        per[(h.row.model, h.row.scenario)][h.row.gpu].append((h.predicted / h.row.gpus, h.row.output_tokens_per_s / h.row.gpus))
    out = []
    for (model, scenario), gpus in sorted(per.items()):
        for a, b in itertools.combinations(sorted(gpus), 2):
            pa, ma = np.median([p for p, _ in gpus[a]]), np.median([m for _, m in gpus[a]])
            pb, mb = np.median([p for p, _ in gpus[b]]), np.median([m for _, m in gpus[b]])
            out.append({"model": model, "scenario": scenario, "pair": f"{a}/{b}", "predicted_ratio": pa / pb,
                        "measured_ratio": ma / mb, "ratio_error": pa / pb - ma / mb})
    return out


def validate(rows, prior: Efficiency | None = None, *, splits=SPLITS, progress=None, base: Fit | None = None,
             seed: int = 0, gpu_catalog=(), model_catalog=()) -> dict:
    """The three splits (see the module docstring): per-row results, per-split summaries, node ratios;
    `seed` draws the simulated runs' requests (of `base`'s fit when given); the catalogs are extra GPU and
    model files the rows may name (`base`'s when given)."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ConfigError(f"`splits`: {sorted(unknown)[0]!r} is not one of {', '.join(SPLITS)}")
    require_rows_to_fit(rows)
    usable = [row for row in rows if row.valid]      # the fits leave out rows marked invalid
    invalid = len(rows) - len(usable)
    for split in splits:              # a split the rows cannot make is refused before the fits, not after
        if not any(len(held) < len(usable) for held in _groups(usable, split).values()):
            raise _unsplittable(split, invalid)
    base = base or fit(rows, prior, progress=progress, seed=seed, gpu_catalog=gpu_catalog,
                       model_catalog=model_catalog)
    results = {}
    for split in splits:
        held, shifts = run_split(base, split, progress)
        if not held:
            raise _unsplittable(split, invalid)
        results[split] = {"held_out": held, "summary": summarise(held), "pinned": shifts}
    if "gpu" in results:
        results["gpu"]["node_ratios"] = node_ratios(results["gpu"]["held_out"])
    results["fit"] = base
    return results


def _unsplittable(split: str, invalid: int = 0) -> ConfigError:
    kinds = {"gpu": f"GPUs (one with {MIN_ROWS} rows or more)", "model": "models", "round": "rounds"}
    left_out = f"; {invalid} row(s) marked invalid (valid = false) are left out" if invalid else ""
    return ConfigError(f"validate: leave one {split} out needs rows of two {kinds[split]} or more: one is fitted "
                       f"while the other is held out (`splits` chooses which splits run){left_out}")


def _pct(value: float) -> str:
    return f"{value:+.1f}%"


def _tokens(value: float, row) -> str:
    """A fitted figure (`Measurement.fitted_tokens_per_s`): an open loop's is one user's tokens/s."""
    return f"{value:,.0f}" + (" per user" if row.fitted_on != "output_tokens_per_s" else "")


SHIPPED_ROWS = "published MLPerf rows (simulator/catalog/measurements/mlperf.csv)"


def markdown(results: dict, command: str = "infersim validate", rows: str = SHIPPED_ROWS) -> str:
    """docs/validation.md: the summary table, node ratios and every held-out row; `rows` says what the
    rows are."""
    fit_ = results["fit"]
    lines = ["# Validation: predicting what the fit never saw", "",
             f"Generated by `{command}` from {len(fit_.rows)} {rows}; do not edit by hand.", "",
             "Each split fits the calibration without some rows and predicts them as `infersim mlperf` would "
             "at the split's efficiencies (plan search included); errors are predicted / measured - 1; an "
             "interval is the 80% prediction interval the held-out fit gives the row.", "",
             "| split | rows | median abs error | 90th pct abs error | 80% interval coverage |",
             "|---|---|---|---|---|"]
    names = {"gpu": "leave one GPU out", "round": "leave one round out (v4.1 -> v5.1)", "model": "leave one model out"}
    for split in SPLITS:
        if split in results and results[split]["summary"]:
            s = results[split]["summary"]
            lines.append(f"| {names[split]} | {s['rows']} | {s['median_abs_error_pct']:.1f}% | "
                         f"{s['p90_abs_error_pct']:.1f}% | {s['interval_coverage_pct']:.0f}% |")
    lines += ["", f"In-sample (all rows fitted): residual log-RMS {fit_.residual_log_rms:.3f}, scatter beyond the "
              f"parameters {fit_.model_log_sigma:.3f}.", ""]
    if results.get("model", {}).get("held_out"):
        lines += [f"Added in quadrature to each held-out model's interval, a log-sigma of "
                  f"{unseen_model_log_sigma(results['model']['held_out']):.3f} would have put 80% of its rows "
                  "inside: a profile written with this report adds it to the intervals of models no fitted row "
                  "ran (`unseen_model_log_sigma`).", ""]
    lines += _breakdown_lines(breakdown(results), names)
    if sigmas := unseen_run_log_sigmas(results.get("gpu", {}).get("held_out", [])):
        lines += ["Added in quadrature to the intervals of a model and scenario's rows held out with their GPU, "
                  "these log-sigmas would have put 80% of them inside: a profile written with this report adds "
                  "them to a benchmark run whose GPU, model and scenario no fitted row ran "
                  "(`unseen_run_log_sigma`): " + "; ".join(f"{key} {sigma:.3f}" for key, sigma in sigmas.items())
                  + ".", ""]
    if "gpu" in results and results["gpu"].get("node_ratios"):
        lines += ["## Per-GPU throughput ratios, each GPU predicted by a fit that never saw it", "",
                  "| model | scenario | pair | predicted | measured | difference |", "|---|---|---|---|---|---|"]
        for r in results["gpu"]["node_ratios"]:
            lines.append(f"| {r['model']} | {r['scenario']} | {r['pair']} | {r['predicted_ratio']:.3f} | "
                         f"{r['measured_ratio']:.3f} | {r['ratio_error']:+.3f} |")
        lines.append("")
    pinned = pinned_records(results)
    if shifts := [r for r in pinned if r["split"] == "gpu"]:
        lines += _shift_lines(shifts)
    for split in UNSEEN_TEXT:
        if unseen := [r for r in pinned if r["split"] == split]:
            lines += _unseen_lines(unseen, split)
    for split in SPLITS:
        if split not in results:
            continue
        lines += [f"## {names[split]}: every held-out row", "",
                  "| left out | row | round | submitter | measured tok/s | predicted tok/s | error | inside 80% |",
                  "|---|---|---|---|---|---|---|---|"]
        for h in sorted(results[split]["held_out"], key=lambda h: (h.left_out, h.spec.label, h.row.submitter)):
            lines.append(f"| {h.left_out} | {h.spec.label} | {h.row.round} | {h.row.submitter} | "
                         f"{_tokens(h.row.fitted_tokens_per_s, h.row)} | {_tokens(h.predicted, h.row)} | {_pct(100 * h.error)} | "
                         f"{'yes' if h.inside else 'no'} |")
        lines.append("")
    return "\n".join(lines)


def _breakdown_lines(records: list[dict], names: dict) -> list[str]:
    if not records:
        return []
    lines = ["## Where the held-out errors sit", "",
             "Each split's held-out rows grouped by model and scenario (and, leaving one GPU out, by the GPU held "
             "out): the median signed error is the bias a prediction of such a row carries.", "",
             "| split | group | rows | median error | median abs error | 90th pct abs error | 80% interval coverage |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {names[r['split']]} | {r['group']} | {r['rows']} | {_pct(r['median_error_pct'])} | "
                     f"{r['median_abs_error_pct']:.1f}% | {r['p90_abs_error_pct']:.1f}% | "
                     f"{r['interval_coverage_pct']:.0f}% |")
    return lines + [""]


def _shift_lines(shifts: list[dict]) -> list[str]:
    lines = ["## What a GPU's own rows pin", "",
             "Each held-out GPU's efficiencies (its vendor's reference stack, default release) in the fit of all "
             f"rows and in the fit without its rows, where they differ by over {SHIFT_SHOWN:.0%}: the fields its "
             "own rows decide, which a GPU nobody measured takes from its siblings and the priors.", "",
             "| left out | field | all rows | without its rows | ratio |", "|---|---|---|---|---|"]
    for r in shifts:
        with_rows, without = r["value_all_rows"], r["value_without_left_out_rows"]
        lines.append(f"| {r['left_out']} | {r['field']} | {with_rows:.4g} | {without:.4g} | {without / with_rows:.2f} |")
    return lines + [""]


# The splits whose report has a table of `unseen_groups`, with its heading and introduction.
UNSEEN_TEXT = {
    "round": ("What the held-out round alone runs",
              "Stacks and releases no row of the fitted round runs, and fields no row of it exercises: the fit "
              "without them predicts a release at its stack's nearest earlier fitted release, a stack at its "
              "vendor's values and such a field at its prior, while the fit of all rows gives them these factors "
              "over their priors (a newer release's speed-up is what no fit of an older round can know)."),
    "model": ("What a held-out model's own rows alone pin",
              "Fields no row of the other models exercises (and stacks or releases only the model's rows run): the "
              "fit without the model's rows holds them at their priors, while the fit of all rows gives them these "
              "factors over their priors (a cost only that model's runs incur is what no fit of other models can "
              "know)."),
}


def _unseen_lines(unseen: list[dict], split: str) -> list[str]:
    heading, introduction = UNSEEN_TEXT[split]
    lines = [f"## {heading}", "", introduction, "",
             "| left out | group | field | factor in the fit of all rows |", "|---|---|---|---|"]
    for r in unseen:
        lines.append(f"| {r['left_out']} | {r['level']} {r['group']} | {r['field']} | {r['factor_all_rows']:.2f} |")
    return lines + [""]


def pinned_records(results: dict) -> list[dict]:
    """The report's "pin" tables as records: per held-out GPU each field its own rows moved (value in the
    fit of all rows and without them), per held-out round or model each group only it pins (its factor)."""
    records = [{"split": "gpu", "left_out": gpu, "field": name, "value_all_rows": with_rows,
                "value_without_left_out_rows": without}
               for gpu, fields in sorted(results.get("gpu", {}).get("pinned", {}).items())
               for name, (with_rows, without) in sorted(fields.items())]
    return records + [{"split": split, "left_out": left_out, "field": name, "level": level, "group": key,
                       "factor_all_rows": factor}
                      for split in UNSEEN_TEXT
                      for left_out, groups in sorted(results.get(split, {}).get("pinned", {}).items())
                      for (name, level, key), factor in sorted(groups.items(), key=lambda item: item[0][::-1])]


def worst_rows(results: dict, count: int = 10) -> list[HeldOut]:
    """The largest held-out errors over all splits (a row once, at its worst)."""
    worst = {}
    for split in SPLITS:
        for h in results.get(split, {}).get("held_out", []):
            key = h.row.source
            if key not in worst or abs(h.error) > abs(worst[key].error):
                worst[key] = h
    return sorted(worst.values(), key=lambda h: -abs(h.error))[:count]
