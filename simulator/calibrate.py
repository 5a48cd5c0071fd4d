"""Calibration: fit the efficiency parameters to measured rows, with honest prediction intervals.

Model. Each efficiency field of a row is prior x exp(sum of offsets of its groups) (`fit_parameters`:
global, vendor, chip family, base family, GPU, stack, release), every level with a Gaussian prior in
log units (centred on 0, except a GPU's compute offset: where its board power puts it in its family).
A row's prediction is the simulator's (`row_models`: the MLPerf scenario run or the measured loop).
Measured tokens/s enter as log residuals with sigma 5% (submitters of one system differ by a few
percent); a row's latencies do not enter the fit.

Fit. Levenberg-Marquardt (`scipy.optimize.least_squares`) on the whitened residuals plus the priors.
The Jacobian comes by the chain rule from one forward difference per fitted field per distinct row (a
prediction depends on its own effective fields only), at the row model's own step (`difference_step`). The
cost is smooth in the parameters (values bend under their ceilings, kernels near their ridge overlap
smoothly), so the solver ends where its linear model stops finding a lower cost, not at a kink.
Server/Interactive rows move by their local model between anchors; after each inner fit a row whose
anchored steps got faster or slower by more than LOCAL_RANGE is re-anchored with a rate search at its new
efficiency, until no prediction moves by more than CONVERGED. Within LOCAL_RANGE the local model is as
good as a new search: against fresh searches on ten rows of every model and scenario, at step-time changes
up to 8% it was within 2.5% (the search's own resolution is 2%) on nine rows and 4.6% on the tenth; at 15%
two rows were 8% off. They are first anchored at a fit of the rows that need no anchor (Offline), not at
the prior.

Uncertainty. Cov(theta) = (J^T J)^-1 of the whitened problem at the solution. A prediction's log-sigma
is sqrt(g^T Cov g + s^2 + u), g its gradient in theta, s the residual scatter beyond the parameters
(estimated with the degrees of freedom the parameters use), u the prior variance of the groups it names
that no fitted row belongs to (a stack or release the fit never saw). A GPU no row measures keeps its own
groups at the prior, so its interval carries the prior spread. Per GPU the profile stores the mean over
its rows (else over all rows' sensitivities mapped onto its groups) in `[fit.log_sigma]`; a model no row
ran has no parameters of its own to carry its uncertainty, so validation measures it
(`validate.unseen_model_log_sigma`) and the shipped profile adds it for models outside `[fit] models`.
"""
from __future__ import annotations

import copy
import math
import os
import platform
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from simulator.catalog_io import toml_string
from simulator.errors import ConfigError, InfeasibleError
from simulator.fit_parameters import FIT_FIELDS, LEVELS, REFERENCE_STACKS, Membership, Parameters, stack_key
from simulator.hardware import (EFFICIENCY_FIELDS, PEAK_FRACTIONS, Efficiency, check_profile, composed_efficiency,
                                get_gpu, load_gpus, load_profile)
from simulator.intervals import DEFAULT_INTERVAL, datasheet_digest, interval_z, run_key
from simulator.measurements import SHIPPED_MEASUREMENTS, Measurement, load_measurement_files, round_order
from simulator.row_models import RowSpec, needs_anchor_search, row_model
from simulator.run import check_seed

TOKENS_LOG_SIGMA = 0.05        # measured tokens/s: submitters of one system differ by a few percent
# Tried and left out (scripts/fit_default_profile.py --validate, seed 0; median / p90 abs error for leave
# one GPU, round, model out; this choice in the same runs: 8.4/19.7, 12.6/33.6, 8.9/20.7%): a sigma of
# 0.065 or 0.08 (the in-sample scatter), so the priors weigh more: 8.0/21.0, 12.9/52.6, 8.4/24.1% and 7.8/25.1, 12.0/42.9,
# 8.7/21.2%. A soft-L1 loss on the rows (squares within 1 or 2 sigma, linear beyond), so a submitter's odd
# run pulls less: 8.9/22.9, 12.5/41.7, 7.9/18.6% and 8.8/21.2, 12.3/29.2, 7.3/21.7% (DeepSeek-R1 held
# out +35-39% against +1%). Each moves which rows make the tail; none predicts held-out GPUs better.
# Again at 0.08 with the code of 2026-11-29 (infersim validate, seeds 0 / 1; against 0.05 in brackets):
# 8.2, 8.6 (7.7, 8.0) / 20.3, 25.1 (19.9, 24.1); 12.3, 12.4 (12.6, 13.1) / 25.6, 25.2 (28.9, 25.9); 7.8, 6.9
# (8.0, 7.6) / 22.1, 21.3 (20.7, 21.7)%: leave one round out a little better, leave one GPU out worse.
LOCAL_RANGE = 0.05              # re-anchor a row once its anchored steps' speed moved by more than 5% (log)
# (at 8% the shipped fit took 254 s against 273 s, each run beside another fit, and leave one GPU out came
# to 9.1% / 19.7% median / p90 against 8.2% / 19.0%: the saving is not worth the fidelity)
CONVERGED = 0.01                # stop re-anchoring when no prediction moves by more than 1%
MAX_EVALUATIONS = 200           # per solver pass (at 60, with the smaller difference steps, the first joint pass stopped on it)
MAX_REANCHORS = 3
# Tried and left out (2026-11-29, before fit_parameters.SHARED_GROUPS): stopping the first joint pass
# after 20 evaluations (it runs to the 60 cap), since most Server/Interactive rows are re-anchored after
# it. The shipped fit took 141 s against 152 s, log-RMS 0.0793 against 0.0786; --validate at seed 0,
# median / p90 / coverage for leave one GPU, round, model out: 8.3/20.1/76, 13.3/52.1/52, 8.7/20.6/74%
# against 7.6/20.0/75, 12.7/35.4/47, 9.7/19.4/69% (seed 1 unchanged): where re-anchoring starts moves
# where the fit ends.


@dataclass
class Fit:
    parameters: Parameters
    theta: np.ndarray
    covariance: np.ndarray
    rows: list                       # Measurement rows fitted
    specs: list                      # per row: its RowSpec
    models: dict                     # RowSpec -> row model
    predictions: dict                # RowSpec -> predicted tokens/s at theta
    sensitivities: dict              # RowSpec -> {field: d log prediction / d log field}
    residual_log_rms: float
    model_log_sigma: float
    evaluations: int
    wall_s: float
    skipped: list = field(default_factory=list)    # (row, reason) for rows that cannot be simulated
    gpu_catalog: tuple = ()
    seed: int = 0                    # the seed of the row models' simulated requests
    unpinned: frozenset = frozenset()   # indices of the groups no fitted row depends on (held at their prior)
    model_catalog: tuple = ()

    def membership(self, spec: RowSpec) -> Membership:
        return Membership.of(get_gpu(spec.gpu, self.gpu_catalog), spec.stack, spec.stack_version)

    def default_releases(self) -> dict:
        """Per vendor/stack the release predictions use when none is named: the one with the most rows
        in the newest round."""
        counts = {}
        newest = max((r.round for r in self.rows), key=lambda name: round_order(name) or (-1, -1), default="")
        for row, spec in zip(self.rows, self.specs):
            if spec.stack_version:
                gpu = get_gpu(spec.gpu, self.gpu_catalog)
                key = f"{gpu.vendor}/{spec.stack}"
                weight = (row.round == newest, 1)
                tally = counts.setdefault(key, {})
                tally[spec.stack_version] = tuple(a + b for a, b in zip(tally.get(spec.stack_version, (0, 0)), weight))
        return {key: max(tally, key=tally.get) for key, tally in counts.items()}

    def default_membership(self, gpu) -> Membership:
        """A prediction for `gpu` without a named stack: its vendor's reference stack at its default release."""
        stack = REFERENCE_STACKS.get(gpu.vendor)
        return Membership.of(gpu, stack, self.default_releases().get(f"{gpu.vendor}/{stack}"))

    def efficiency_for(self, spec: RowSpec) -> Efficiency:
        return self.parameters.efficiency(self.theta, self.parameters.indices(self.membership(spec)))

    def log_error(self, i: int) -> float:
        return math.log(self.predictions[self.specs[i]] / self.rows[i].fitted_tokens_per_s)

    def prediction_log_sigma(self, member: Membership, sensitivity: dict) -> float:
        g = self.parameters.gradient(self.parameters.indices(member), sensitivity)
        return math.sqrt(max(float(g @ self.covariance @ g), 0.0) + self.model_log_sigma ** 2
                         + self.parameters.unseen_variance(member, sensitivity))

    def spec_log_sigma(self, spec: RowSpec) -> float:
        return self.prediction_log_sigma(self.membership(spec), self.sensitivities[spec])

    def log_sigma(self, gpu) -> float:
        """A GPU's prediction log-sigma: the mean variance over its rows, else all rows' sensitivities
        applied to its groups (its vendor's reference stack)."""
        own = [spec for spec in self.models if spec.gpu == gpu.name]
        if own:
            return math.sqrt(float(np.mean([self.spec_log_sigma(s) ** 2 for s in own])))
        typical = {f: float(np.mean([s.get(f, 0.0) for s in self.sensitivities.values()])) for f in FIT_FIELDS}
        return self.prediction_log_sigma(self.default_membership(gpu), typical)


def _sensitivity(model, parameters: Parameters, theta, indices, base: float, fields=FIT_FIELDS) -> dict:
    """d log prediction / d log field, one forward difference per fitted field (of `fields`) at the row
    model's own step. Past its ceiling a field moves nothing (`hardware.under_ceiling`) and its derivative
    is 0: the prior then pulls its offsets back under the ceiling, where the rows pin it again. (With a
    hard cap a backward difference stood in there, and the Jacobian claimed a slope the rows did not have
    on the capped side.)"""
    out = {}
    for name in fields:
        if not indices.get(name):
            continue
        step = model.difference_step
        shifted = theta.copy()
        shifted[indices[name][0]] += step      # any one group of the field moves the field by `step`
        out[name] = math.log(model.predict(parameters.efficiency(shifted, indices)) / base) / step
    return out


def build_models(specs, anchor_of, models: dict | None = None, progress=None, model_catalog=(),
                 gpu_catalog=(), seed: int = 0) -> tuple[dict, list]:
    """A row model per distinct spec (reusing `models`), each anchored at `anchor_of(spec)`, and the specs
    that cannot be simulated. Rows that simulate the same run (they differ in stack, release or Server
    duration only) share the first one's run, anchored where it was: an Offline trace re-prices exactly at any
    efficiency, and a Server row is re-anchored by the fit once its own efficiency is out of the local
    model's range (its copy keeps its anchors apart from the first row's, and scores over its own
    duration)."""
    models = dict(models or {})
    failed, plans, built = [], {}, {}
    todo = [s for s in dict.fromkeys(specs) if s not in models]
    for k, spec in enumerate(todo):
        if progress:
            progress(k + 1, len(todo), f"rows simulated ({spec.label})")
        run = spec.simulated()
        if run not in built:
            try:
                built[run] = (row_model(spec, anchor_of(spec), model_catalog, gpu_catalog, plans, seed), None)
            except (ConfigError, InfeasibleError) as exc:
                built[run] = (None, str(exc))
        model, error = built[run]
        if error is None:
            models[spec] = copy.copy(model)
            models[spec].spec = spec        # what the run does not depend on (a Server run's duration) is its own
        else:
            failed.append((spec, error))
    return models, failed


def _build_staged(rows, specs, prior: Efficiency, models: dict | None, progress, model_catalog, gpu_catalog,
                  seed: int):
    """Row models for `specs`: first the rows whose prediction needs no anchor search (Offline traces
    re-price exactly), anchored at the prior and fitted alone; then Server/Interactive rows anchored at
    that fit's efficiencies, so the joint fit starts near its answer and re-anchors them less often.
    Returns (models, failed, the first stage's Fit or None)."""
    quick = [i for i, s in enumerate(specs) if s not in (models or {}) and not needs_anchor_search(s)]
    models, failed = build_models([specs[i] for i in quick], lambda _: prior, models, progress, model_catalog,
                                  gpu_catalog, seed)
    bad = {spec for spec, _ in failed}
    pending = [s for s in specs if s not in models and s not in bad]
    fitted = [rows[i] for i in quick if specs[i] not in bad]
    stage = None
    if pending and fitted:
        stage = fit(fitted, prior, models=models, reanchor=False, model_catalog=model_catalog,
                    gpu_catalog=gpu_catalog, seed=seed)
    anchor_of = (lambda spec: stage.efficiency_for(spec)) if stage else (lambda _: prior)
    models, more = build_models(pending, anchor_of, models, progress, model_catalog, gpu_catalog, seed)
    return models, failed + more, stage


def require_rows_to_fit(rows: list[Measurement]) -> None:
    """A ConfigError unless some row is there to fit (given, and not marked invalid)."""
    if not any(row.valid for row in rows):
        raise ConfigError("measurement rows: none to fit" + (" (every row is marked invalid, valid = false)"
                                                             if rows else ""))


# A fit runs its BLAS (numpy's products, scipy's SVDs) on one thread. A threaded product sums in another
# order, and re-anchoring and rate searches turn on thresholds, so the last bit can move a fit by as much as
# another seed does: the shipped rows fitted with one OpenBLAS thread instead of two on one machine
# (2026-11-29) came to log-RMS 0.0753 against 0.0742, the rows' predictions moving by a median 0.3%, 1.7% at
# the 90th percentile and 7.9% at most. Pinned, a fit no longer depends on the machine's CPU count. It is no
# slower: the solver's linear algebra is a few seconds of a fit whose simulated runs are single-threaded
# (scripts/fit_default_profile.py --dry-run: 110 s on one pinned core, 114 s with two threads on two).
@threadpool_limits.wrap(limits=1, user_api="blas")
def fit(rows: list[Measurement], prior: Efficiency | None = None, *, models: dict | None = None,
        theta0: np.ndarray | None = None, reanchor: bool = True, progress=None, model_catalog=(),
        gpu_catalog=(), seed: int = 0) -> Fit:
    """Fit the parameters to `rows` (see the module docstring). `models` (from an earlier fit) are
    reused and, when `reanchor`, re-anchored at the fitted efficiencies; `seed` draws the requests of the
    runs new row models simulate (another seed shows how far the fit moves with that sampling)."""
    start = time.perf_counter()
    check_seed(seed)
    prior = prior or Efficiency()
    require_rows_to_fit(rows)
    invalid = [(row, "its result is marked invalid (valid = false)") for row in rows if not row.valid]
    rows = [row for row in rows if row.valid]
    all_specs = [RowSpec.of(r) for r in rows]
    models, failed, stage = _build_staged(rows, all_specs, prior, models, progress, model_catalog, gpu_catalog,
                                          seed)
    reasons = dict(failed)
    skipped = invalid + [(row, reasons[spec]) for row, spec in zip(rows, all_specs) if spec in reasons]
    kept = [(row, spec) for row, spec in zip(rows, all_specs) if spec not in reasons]
    if not kept:
        spec, reason = failed[0]
        raise ConfigError(f"measurement rows: none can be simulated (row {spec.label}: {reason})")
    rows, specs = [r for r, _ in kept], [s for _, s in kept]
    gpus = load_gpus(gpu_catalog)
    members = {s: Membership.of(gpus[s.gpu], s.stack, s.stack_version) for s in specs}
    parameters = Parameters(prior, gpus, {m.stack for m in members.values()}, {m.release for m in members.values()})
    distinct = list(dict.fromkeys(specs))
    indices = {s: parameters.indices(members[s]) for s in distinct}
    row_of = [distinct.index(s) for s in specs]
    measured = np.log([r.fitted_tokens_per_s for r in rows])
    evaluations = [0]
    last = {}          # the latest theta's predictions: the solver asks for the Jacobian where it just evaluated

    def predictions(theta):
        key = theta.tobytes()
        if key not in last:
            evaluations[0] += len(distinct)
            last.clear()
            last[key] = {s: models[s].predict(parameters.efficiency(theta, indices[s])) for s in distinct}
        return last[key]

    def residuals(theta):
        predicted = predictions(theta)
        logs = np.log([predicted[s] for s in distinct])[row_of]
        return np.concatenate([(logs - measured) / TOKENS_LOG_SIGMA, (theta - parameters.mean) / parameters.sigma])

    if stage is not None and theta0 is None:       # start where the first stage ended
        theta0 = np.array([stage.theta[stage.parameters.index[g]] if g in stage.parameters.index else mean
                           for g, mean in zip(parameters.groups, parameters.mean)])
    # fields a row does not depend on at all (MoE efficiency for a dense model, collectives at tp 1, 4-bit
    # GEMMs in fp8) stay out of its finite differences. Told at the prior, not at the start: a start
    # (the first stage's fit) can hold a field past its ceiling, where no small step moves a prediction,
    # and a field left out there would never be fitted again.
    start_theta = parameters.mean.copy() if theta0 is None or len(theta0) != parameters.size else theta0.copy()
    at_prior = predictions(parameters.mean)
    active = {s: tuple(f for f, v in _sensitivity(models[s], parameters, parameters.mean, indices[s],
                                                  at_prior[s]).items() if abs(v) > 1e-6) for s in distinct}
    # A group no row depends on has its prior as its only residual, so its optimum is the prior mean: it
    # starts there. A start from another fit must not carry that fit's value over, or a split of validate
    # (warm-started from the fit of all rows) would keep what the rows it hides taught it: the fit without
    # DeepSeek-R1 kept most of the all-to-all latency those rows set (12.4x the prior, from 13.6x: the
    # solver stops when its trust region has shrunk, which the data directions decide).
    pinned = {i for s in distinct for field in active[s] for i in indices[s][field]}
    unpinned = [i for i in range(parameters.size) if i not in pinned]
    start_theta[unpinned] = parameters.mean[unpinned]

    def jacobian(theta):
        predicted = predictions(theta)
        gradients = {s: parameters.gradient(indices[s], _sensitivity(models[s], parameters, theta, indices[s],
                                                                       predicted[s], active[s])) for s in distinct}
        data = np.array([gradients[s] for s in specs]) / TOKENS_LOG_SIGMA
        return np.vstack([data, np.diag(1.0 / parameters.sigma)])

    theta = start_theta.copy()
    for round_ in range(MAX_REANCHORS + 1):
        if progress:
            progress(None, None, f"fitting {len(rows):,} rows ({len(distinct):,} distinct), pass {round_ + 1}")
        solution = least_squares(residuals, theta, jac=jacobian, method="trf", x_scale=1.0, xtol=1e-5,
                                 ftol=1e-7, max_nfev=MAX_EVALUATIONS)
        theta = solution.x
        if not reanchor or round_ == MAX_REANCHORS:
            break
        before = predictions(theta)
        anchored = [s for s in distinct if needs_anchor_search(s)]
        for k, s in enumerate(anchored):
            if progress:
                progress(k + 1, len(anchored), "Server/Interactive rows re-anchored")
            models[s].refresh(parameters.efficiency(theta, indices[s]), LOCAL_RANGE)
        last.clear()                # re-anchored models predict anew at the same theta
        after = predictions(theta)
        if max((abs(math.log(after[s] / before[s])) for s in distinct), default=0.0) < CONVERGED:
            break
    predicted = predictions(theta)
    sensitivities = {s: _sensitivity(models[s], parameters, theta, indices[s], predicted[s]) for s in distinct}
    whitened = jacobian(theta)
    covariance = np.linalg.pinv(whitened.T @ whitened)
    errors = np.log([predicted[s] for s in specs]) - measured
    data_rows = whitened[:len(specs)]
    used = float(np.trace(data_rows @ covariance @ data_rows.T))      # degrees of freedom the parameters take
    scatter = float(np.sum(errors ** 2)) / max(len(specs) - used, 1.0)
    return Fit(parameters, theta, covariance, rows, specs, models, predicted, sensitivities,
               math.sqrt(float(np.mean(errors ** 2))), math.sqrt(scatter), evaluations[0],
               time.perf_counter() - start, skipped, tuple(gpu_catalog), seed, frozenset(unpinned), tuple(model_catalog))


def report_rows(result: Fit) -> list[dict]:
    """Per row: measured vs predicted at the fitted parameters, the error and the 80% interval. With an
    open loop among the rows, also the median TPOT it is fitted on (`Measurement.fitted_tokens_per_s`):
    its error is that of one user's tokens/s (1 / TPOT: positive when predicted faster), and no output
    tokens/s is predicted (its arrivals set them)."""
    z = interval_z(DEFAULT_INTERVAL)
    with_tpot = any(row.scenario == "open" for row in result.rows)
    out = []
    for row, spec in zip(result.rows, result.specs):
        fitted = result.predictions[spec]
        sigma = result.spec_log_sigma(spec)
        record = {"row": spec.label, "round": row.round, "submitter": row.submitter,
                  "plan": getattr(result.models[spec], "plan_label", ""),
                  "measured_output_tokens_per_s": row.output_tokens_per_s}
        if row.scenario == "open":
            record.update(predicted_output_tokens_per_s=None, measured_tpot_p50_s=row.tpot_p50_s,
                          predicted_tpot_p50_s=1.0 / fitted)
        else:
            record["predicted_output_tokens_per_s"] = fitted
            if with_tpot:
                record.update(measured_tpot_p50_s=None, predicted_tpot_p50_s=None)
        record.update(error_pct=100 * (fitted / row.fitted_tokens_per_s - 1),
                      inside_interval=abs(math.log(fitted / row.fitted_tokens_per_s)) <= z * sigma, source=row.source)
        out.append(record)
    return out


def _toml_value(value) -> str:
    if isinstance(value, str):
        return toml_string(value)
    return format(float(value), ".8g") if isinstance(value, float) else str(value)


def profile_toml(result: Fit, header: str = "", interval: float = DEFAULT_INTERVAL,
                 unseen_model_log_sigma: float | None = None, unseen_run_log_sigma: dict | None = None) -> str:
    """The fitted profile: [default] global values, FIELD_factor sections per vendor, family, base family,
    GPU, stack and release, and [fit] with the models fitted, the reference stacks and each catalog GPU's
    prediction log-sigma; with `unseen_model_log_sigma` (from validation's leave-one-model-out split),
    what intervals of other models add (`intervals.prediction_log_sigma`); with `unseen_run_log_sigma`
    (leave one GPU out, per model and scenario), the runs fitted and what a run of a GPU none of them ran
    on that model and scenario adds (`intervals.unseen_run_log_sigma`)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"# {line}" for line in fitted_with(result.seed)] + [""]
    sections = result.parameters.profile_sections(result.theta)
    lines.append("[default]")
    lines += [f"{name} = {_toml_value(float(value))}" for name, value in sections["default"].items()]
    for level in LEVELS:
        for key in sorted(sections[level]):
            lines += ["", f"[{level}.{toml_string(key)}]"]
            lines += [f"{name} = {_toml_value(value)}" for name, value in sorted(sections[level][key].items())]
    lines += ["", "[fit]", f"interval = {interval}", f"rows = {len(result.rows)}",
              f"residual_log_rms = {_toml_value(result.residual_log_rms)}",
              f"model_log_sigma = {_toml_value(result.model_log_sigma)}",
              "models = [" + ", ".join(toml_string(m) for m in sorted({r.model for r in result.rows})) + "]"]
    if unseen_model_log_sigma is not None:
        lines.append(f"unseen_model_log_sigma = {_toml_value(float(unseen_model_log_sigma))}")
    if unseen_run_log_sigma is not None:
        runs = sorted({run_key(r.gpu, r.model, r.scenario) for r in result.rows})
        lines.append("runs = [" + ", ".join(toml_string(run) for run in runs) + "]")
    lines += ["", "[fit.reference_stack]"]
    lines += [f"{vendor} = {toml_string(stack)}" for vendor, stack in REFERENCE_STACKS.items()]
    lines += ["", "[fit.default_release]"]
    lines += [f"{toml_string(key)} = {toml_string(version)}"
              for key, version in sorted(result.default_releases().items())]
    gpus = load_gpus(result.gpu_catalog).values()
    lines += ["", "[fit.log_sigma]"]
    lines += [f"{toml_string(gpu.name)} = {_toml_value(result.log_sigma(gpu))}" for gpu in gpus]
    lines += ["", "[fit.datasheet]"]     # what each GPU's sigma was fitted on (`intervals.no_interval_reason`)
    lines += [f"{toml_string(gpu.name)} = {toml_string(datasheet_digest(gpu))}" for gpu in gpus]
    if unseen_run_log_sigma:
        lines += ["", "[fit.unseen_run_log_sigma]"]
        lines += [f"{toml_string(key)} = {_toml_value(float(sigma))}" for key, sigma in sorted(unseen_run_log_sigma.items())]
    return "\n".join(lines) + "\n"


def fitted_with(seed: int) -> list[str]:
    """What a fit's numbers depend on beyond its rows: the seed of its simulated requests and the numeric
    libraries (another numpy, scipy or BLAS build, or another CPU's BLAS kernels, sums in another order;
    `fit` pins the BLAS threads, see above it). Compare profiles fitted with the same ones."""
    return [f"Fitted with seed {seed}, Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, one BLAS thread."]


def prior_from(profile_path=None) -> Efficiency:
    """The prior: a profile's [default] (its global values) as a run would use them (bent under their
    ceilings), or the built-in defaults. A fit from it bends prior x factors once more, so a [default]
    value within a tenth of its ceiling starts a little lower than the profile gave it (collective
    efficiency 1.0: 0.975, then 0.961); the profile it writes composes to what it fitted either way."""
    if profile_path is None:
        return Efficiency()
    return composed_efficiency([(f"{profile_path}: [default]", load_profile(profile_path).get("default", {}))])


def calibrate_files(paths: list[str], *, prior_profile=None, header: str = "", interval: float = DEFAULT_INTERVAL,
                    progress=None, gpu_catalog=(), model_catalog=(), seed: int = 0) -> tuple[Fit, str, list[dict]]:
    """Load measurement files (GPU and model names checked against the catalogs plus the extra files
    given), fit, and render the profile TOML and the per-row report. A model no row ran is predicted with
    the shipped profile's `unseen_model_log_sigma` added to its interval: what leaving each model out of
    the published rows' fit measured (a fit of a few rows cannot measure it; without it, a profile fitted
    on Llama 3.1 8B rows gave Llama 3.1 70B at tp 8 the 8B rows' +-6.5%)."""
    rows = load_measurement_files(paths, gpu_catalog=gpu_catalog, model_catalog=model_catalog)
    result = fit(rows, prior_from(prior_profile), progress=progress, gpu_catalog=gpu_catalog,
                 model_catalog=model_catalog, seed=seed)
    unseen = load_profile(None).get("fit", {}).get("unseen_model_log_sigma")
    text = profile_toml(result, header, interval, unseen_model_log_sigma=unseen)
    try:                # a profile every reader accepts, or none: the fit's factors are unbounded in log units
        check_profile("the fitted profile", tomllib.loads(text))
    except ConfigError as exc:
        raise ConfigError(f"calibration: {exc}; {UNIT_HINT}") from None
    refuse_implausible(result)
    return result, text, report_rows(result)


def _own_files(paths: list[str]) -> list[str]:
    """The measurement files among `paths` other than the shipped one: the user's own rows."""
    return [path for path in paths if Path(path).resolve() != SHIPPED_MEASUREMENTS.resolve()]


def stack_note(paths: list[str], gpu_catalog=()) -> str | None:
    """Which `stack` a user's own rows (those outside the shipped file) ask predictions of them to name:
    a command without one applies each vendor's reference stack (TensorRT-LLM on NVIDIA GPUs), so a
    profile fitted to vLLM runs on H100 predicted that H100 16% above its measurement. None when every
    such row ran its vendor's reference stack."""
    gpus = load_gpus(gpu_catalog)
    ran = {(row.stack, gpus[row.gpu.lower()].vendor)
           for row in load_measurement_files(_own_files(paths), gpu_catalog=gpu_catalog)}
    stacks = sorted((stack, vendor) for stack, vendor in ran if stack and stack_key(vendor, stack))
    if not stacks:
        return None
    which = "; ".join(f"{stack} on {vendor} GPUs" for stack, vendor in stacks)
    reference = ", ".join(f"{REFERENCE_STACKS[vendor]} on {vendor}" for vendor in sorted({v for _, v in stacks})
                          if vendor in REFERENCE_STACKS)
    return (f"your rows ran {which}: predict them with `stack` {stacks[0][0]} (without it, commands apply each "
            f"vendor's reference stack{': ' + reference if reference else ''}; output shows it as plan.stack)")


def fitted_alone(paths: list[str]) -> str | None:
    """What a user must know of a profile fitted without the shipped rows: it does not refine the shipped
    fit. GPUs, models and fields the rows do not measure fall back to the built-in priors; None when the
    shipped rows are among `paths`."""
    if len(_own_files(paths)) < len(paths):
        return None
    shipped = os.path.relpath(SHIPPED_MEASUREMENTS)
    return (f"the profile is fitted to these rows alone: what they do not measure (other GPUs, models, "
            f"efficiency fields) takes the built-in priors, not the shipped profile's fit of the published MLPerf "
            f"rows; to build on that, calibrate with {shipped if not shipped.startswith('..') else SHIPPED_MEASUREMENTS} "
            f"beside them")


UNIT_HINT = ("the rows ask for efficiencies no run reaches (is each output_tokens_per_s the whole system's "
             "output tokens per second, and each open row's tpot_p50_s in seconds?)")
# No serving stack's kernels reach less than this share of a datasheet peak (the slowest measured rows fit
# at 0.2-0.3 of GEMM peak and 0.3 of attention's): a fit below it says the rows are off by orders of
# magnitude, as a throughput in tokens per minute or per GPU-hour would be.
PLAUSIBLE_PEAK_FRACTION = 0.02
# Nor spends more than this on one step's or one sequence's bookkeeping (fitted: 2-5 ms a step, ~2 us a
# sequence; a Python scheduler ~10 us): a fit above it explains its rows by overheads, as an open row's
# median TPOT of seconds for an 8B model would.
PLAUSIBLE_OVERHEAD_S = {"step_overhead_s": 0.1, "sequence_overhead_s": 1e-3}


def refuse_implausible(result: Fit) -> None:
    """Raise naming the first row whose fitted efficiencies put a kernel below PLAUSIBLE_PEAK_FRACTION of
    its peak, or an overhead above PLAUSIBLE_OVERHEAD_S, instead of writing a profile that would run that
    slowly without a word."""
    for spec in dict.fromkeys(result.specs):
        efficiency, sensitive = result.efficiency_for(spec), result.sensitivities[spec]
        for name in PEAK_FRACTIONS:
            value = getattr(efficiency, name)
            if value < PLAUSIBLE_PEAK_FRACTION and sensitive.get(name):
                raise ConfigError(f"calibration: row {spec.label} fits {name} at {value:.3g} of the datasheet "
                                  f"peak, below the {PLAUSIBLE_PEAK_FRACTION:g} no serving stack falls to; {UNIT_HINT}")
        for name, most in PLAUSIBLE_OVERHEAD_S.items():
            value = getattr(efficiency, name)
            if value > most and sensitive.get(name):
                raise ConfigError(f"calibration: row {spec.label} fits {name} at {value:.3g} s, above the {most:g} s "
                                  f"no serving stack spends; {UNIT_HINT}")
