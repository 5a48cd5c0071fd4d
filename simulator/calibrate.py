"""Calibration: fit efficiency parameters to measured rows with `scipy.optimize.least_squares`.

Model. Three fields of `Efficiency` are fitted (`FIT_FIELDS`: compute and memory efficiency, per-step
overhead), in log space relative to the prior profile's `[default]`. A row's effective value of a field
is default x exp(theta_family + theta_gpu [+ theta_stack]): a GPU family shares one offset, each GPU
adds its own, and a software stack adds one when the rows name two or more stacks. Weak Gaussian priors
(sigma 0.5 for a family, 0.25 for a GPU or stack, in log units) keep a GPU with one row finite and close
to its family; measured tokens/s enter with sigma 0.05 (5%), latencies with 0.10 (TPOT) and 0.25 (TTFT).

Speed. A row's prediction depends only on its own effective fields, so the Jacobian is built by the
chain rule from one forward difference per fitted field per row (not per parameter), and simulations are
cached by (row, effective efficiency). Server/Interactive rows are priced during the fit as Offline x
the server/offline ratio the simulator gives at the prior (one rate search per row up front); the
reported predictions run the full rate search at the fitted parameters.

Uncertainty. Cov(theta) = (J^T J)^-1 of the whitened problem at the solution. A GPU's prediction
log-sigma is the mean over its rows (else its family's, else all rows) of g^T Cov g plus the in-sample
residual variance, where g is the row's sensitivity of log tokens/s to theta. GPUs with no rows get the
prior-only spread. An interval is exp(+-z sigma) around the prediction (80% by default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import least_squares

from simulator.api import run_config, serving_config
from simulator.engine import ClosedLoopWorkload
from simulator.errors import ConfigError, InfeasibleError
from simulator.hardware import Efficiency, get_gpu
from simulator.intervals import DEFAULT_INTERVAL
from simulator.measurements import Measurement
from simulator.memory import plan_memory
from simulator.scenario_runs import ScenarioRunner, offline_score, server_score
OFFLINE_BATCH_SIZES = (256, 512, 1024)
from simulator.models import Precision, get_model
from simulator.plan import Plan
from workloads.requests import Requests
from workloads.scenarios import get_scenario

FIT_FIELDS = ("compute_efficiency", "memory_efficiency", "step_overhead_s")
PRIOR_SIGMA = {"family": 0.5, "gpu": 0.25, "stack": 0.25}
MEASUREMENT_SIGMA = {"tokens": 0.05, "tpot": 0.10, "ttft": 0.25}
FIELD_CEILING = {"compute_efficiency": 0.99, "memory_efficiency": 0.99, "step_overhead_s": 10.0}
DIFF_STEP = 0.05


class RowModel:
    """Predicts one measurement row with the simulator for a given Efficiency."""

    def __init__(self, row: Measurement, base: Efficiency, seed: int = 0, model_catalog=(), gpu_catalog=()):
        self.row = row
        self.gpu = get_gpu(row.gpu, gpu_catalog)
        self.model = get_model(row.model, model_catalog)
        self.precision = Precision.parse(row.precision)
        self.seed = seed
        self.cache: dict = {}
        self.scenario = get_scenario(self.model.name, row.scenario) if row.scenario in (
            "offline", "server", "interactive") else None
        request_tokens = (int(self.scenario.input_lengths.mean + self.scenario.output_lengths.mean) if self.scenario
                          else row.input_tokens + row.output_tokens)
        tp = row.tp or self._smallest_tp(request_tokens)
        self.plan = Plan(tp=tp, pp=row.pp or 1, ep=row.ep or 1, max_batch_size=row.max_batch_size or 256)
        if self.plan.gpus_per_replica > row.gpus:
            raise ConfigError(f"{row.label}: plan needs {self.plan.gpus_per_replica} GPUs, the row has {row.gpus}")
        plan_memory(self.model, self.gpu, self.precision, self.plan, min(request_tokens, self.model.max_context))
        self.server_ratio = None
        if self.scenario is not None and row.max_batch_size is None:
            self.plan = self._best_offline_batch(base)
        if self.scenario is not None and self.scenario.kind != "offline":
            self.server_ratio = self._server_ratio(base)

    def _smallest_tp(self, request_tokens: int) -> int:
        for tp in (1, 2, 4, 8, 16):
            if tp > self.row.gpus:
                break
            try:
                plan_memory(self.model, self.gpu, self.precision, Plan(tp=tp), min(request_tokens, self.model.max_context))
                return tp
            except InfeasibleError:
                continue
        raise InfeasibleError(f"{self.row.label}: does not fit on {self.row.gpus} {self.gpu.name} at any tp")

    def config(self, efficiency: Efficiency, plan: Plan | None = None):
        base = serving_config(model=self.model, gpu=self.gpu, gpus=self.row.gpus, precision=self.precision,
                              tp=self.plan.tp, pp=self.plan.pp, ep=self.plan.ep, seed=self.seed)
        return replace(base, efficiency=efficiency, plan=plan or self.plan)

    def _runner(self, efficiency, kind=None, plan=None, fit=True):
        scenario = self.scenario if kind is None else get_scenario(self.model.name, kind)
        config = self.config(efficiency, plan)
        # Fit mode: four batches' worth of Offline queries per replica (the mlperf command runs the whole
        # dataset or that, whichever is more); Server rows are priced with the rate search the mlperf
        # command runs (once up front for the ratio, and in the report).
        queries = max(4000, 4 * config.replicas * config.plan.max_batch_size) if fit and kind == "offline" else None
        return ScenarioRunner(config, scenario, queries=queries)

    def _offline_tokens(self, efficiency, plan=None, fit: bool = True) -> float:
        runner = self._runner(efficiency, "offline", plan, fit=fit)
        run, _ = runner.offline(runner.config.plan)
        return offline_score(run)[0]

    def _best_offline_batch(self, base: Efficiency) -> Plan:
        scored = [(self._offline_tokens(base, replace(self.plan, max_batch_size=b)), b) for b in OFFLINE_BATCH_SIZES]
        return replace(self.plan, max_batch_size=max(scored)[1])

    def _server_tokens(self, efficiency, offline_tokens: float | None = None) -> float:
        """The mlperf command's rate search, started at 60% of the Offline rate (given, or run here)."""
        runner = self._runner(efficiency, fit=False)
        offline = offline_tokens if offline_tokens is not None else self._offline_tokens(efficiency)
        _, (run, _) = runner.search_rate(runner.config.plan, 0.6 * offline / self.scenario.output_lengths.mean)
        return server_score(run)[0]

    def _server_ratio(self, base: Efficiency) -> float:
        offline = self._offline_tokens(base)
        return self._server_tokens(base, offline) / offline

    def predict(self, efficiency: Efficiency, full: bool = False) -> dict:
        """{"output_tokens_per_s", and ttft_p50_s/tpot_p50_s where the workload gives them}."""
        key = (full, tuple(round(getattr(efficiency, f), 9) for f in FIT_FIELDS))
        if key in self.cache:
            return self.cache[key]
        row = self.row
        if self.scenario is not None:
            if self.scenario.kind == "offline":
                result = {"output_tokens_per_s": self._offline_tokens(efficiency, fit=not full)}
            elif full:
                result = {"output_tokens_per_s": self._server_tokens(efficiency)}
            else:
                result = {"output_tokens_per_s": self._offline_tokens(efficiency) * self.server_ratio}
        else:
            if row.scenario == "open":
                count = int(min(4000, max(400, row.rate_per_s * 120)))
                rng = np.random.default_rng(self.seed)
                arrival = np.cumsum(rng.exponential(1 / row.rate_per_s, count))
                arrival -= arrival[0]
                workload = Requests(arrival, np.full(count, row.input_tokens), np.full(count, row.output_tokens))
            else:
                count = int(min(5000, max(8 * row.users, 200)))
                workload = ClosedLoopWorkload(users=row.users, input_tokens=np.full(count, row.input_tokens),
                                              output_tokens=np.full(count, row.output_tokens))
            summary = run_config(self.config(efficiency), workload).summary
            result = {"output_tokens_per_s": summary["output_tokens_per_s"], "ttft_p50_s": summary["ttft_p50_s"],
                      "tpot_p50_s": summary["tpot_p50_s"]}
        self.cache[key] = result
        return result

    def residuals(self, efficiency: Efficiency) -> np.ndarray:
        """Whitened log residuals: tokens/s, then TPOT and TTFT medians where measured."""
        predicted = self.predict(efficiency)
        out = [math.log(predicted["output_tokens_per_s"] / self.row.output_tokens_per_s) / MEASUREMENT_SIGMA["tokens"]]
        for name, key in (("tpot", "tpot_p50_s"), ("ttft", "ttft_p50_s")):
            if getattr(self.row, key) and key in predicted and predicted[key] > 0:
                out.append(math.log(predicted[key] / getattr(self.row, key)) / MEASUREMENT_SIGMA[name])
        return np.array(out)


@dataclass
class Parameters:
    """Group offsets (family, gpu, stack) x FIT_FIELDS, flattened for least_squares."""

    groups: list                  # [(kind, name)]
    base: Efficiency

    def __post_init__(self):
        self.index = {group: i for i, group in enumerate(self.groups)}

    @property
    def size(self) -> int:
        return len(self.groups) * len(FIT_FIELDS)

    def prior_sigma(self) -> np.ndarray:
        return np.repeat([PRIOR_SIGMA[kind] for kind, _ in self.groups], len(FIT_FIELDS))

    def row_groups(self, row_model: RowModel) -> list[int]:
        keys = [("family", row_model.gpu.family), ("gpu", row_model.gpu.name)]
        if ("stack", row_model.row.stack) in self.index:
            keys.append(("stack", row_model.row.stack))
        return [self.index[k] for k in keys if k in self.index]

    def log_offsets(self, theta: np.ndarray, groups: list[int]) -> np.ndarray:
        matrix = theta.reshape(len(self.groups), len(FIT_FIELDS))
        return matrix[groups].sum(axis=0) if groups else np.zeros(len(FIT_FIELDS))

    def efficiency(self, log_offsets: np.ndarray) -> Efficiency:
        values = {}
        for name, offset in zip(FIT_FIELDS, log_offsets):
            values[name] = min(getattr(self.base, name) * math.exp(float(offset)), FIELD_CEILING[name])
        return replace(self.base, **values)


def build_parameters(row_models: list[RowModel], base: Efficiency) -> Parameters:
    families = sorted({m.gpu.family for m in row_models})
    gpus = sorted({m.gpu.name for m in row_models})
    stacks = sorted({m.row.stack for m in row_models if m.row.stack})
    groups = [("family", f) for f in families] + [("gpu", g) for g in gpus]
    # A stack offset is identifiable only when some GPU was measured under two stacks; otherwise it
    # would be confounded with that GPU's own offset (and lost when --stack is not given).
    mixed = any(len({m.row.stack for m in row_models if m.gpu.name == g}) >= 2 for g in gpus)
    if len(stacks) >= 2 and mixed:
        reference = max(stacks, key=lambda s: (sum(m.row.stack == s for m in row_models), s))
        groups += [("stack", s) for s in stacks if s != reference]
    return Parameters(groups, base)


@dataclass
class Fit:
    parameters: Parameters
    theta: np.ndarray
    covariance: np.ndarray
    row_models: list
    residual_log_rms: float
    sensitivities: list            # per row: d log tokens / d field-offset (len FIT_FIELDS)
    cost: float
    evaluations: int
    loo: list = field(default_factory=list)

    def efficiency_for_row(self, i: int) -> Efficiency:
        return self.parameters.efficiency(self.parameters.log_offsets(self.theta, self.parameters.row_groups(self.row_models[i])))

    def group_values(self, kind: str, name: str) -> dict:
        groups = [self.parameters.index[("family", name)]] if kind == "family" else []
        if kind == "gpu":
            model = next(m for m in self.row_models if m.gpu.name == name)
            groups = [self.parameters.index[("family", model.gpu.family)], self.parameters.index[("gpu", name)]]
        efficiency = self.parameters.efficiency(self.parameters.log_offsets(self.theta, groups))
        return {f: getattr(efficiency, f) for f in FIT_FIELDS}

    def stack_factors(self, name: str) -> dict:
        offsets = self.parameters.log_offsets(self.theta, [self.parameters.index[("stack", name)]])
        return {f"{f}_factor": math.exp(float(o)) for f, o in zip(FIT_FIELDS, offsets)}

    def log_sigma(self, gpu_name: str | None, family: str | None) -> float:
        """Prediction log-sd for a GPU: parameter uncertainty through its rows' sensitivities plus the
        in-sample scatter; prior-only spread for a GPU the rows never saw."""
        params = self.parameters
        own = [i for i, m in enumerate(self.row_models) if m.gpu.name == gpu_name]
        chosen = own or [i for i, m in enumerate(self.row_models) if m.gpu.family == family]
        scatter = self.residual_log_rms ** 2
        if chosen and not own:
            # a GPU the rows never saw, of a measured family: the family's uncertainty plus the GPU's own
            # prior spread, which no row constrains
            sensitivity = np.mean([self.sensitivities[i] for i in chosen], axis=0)
            scatter += float(np.sum(sensitivity ** 2)) * PRIOR_SIGMA["gpu"] ** 2
        if chosen:
            variances = []
            for i in chosen:
                g = np.zeros(params.size)
                for group in params.row_groups(self.row_models[i]):
                    g[group * len(FIT_FIELDS):(group + 1) * len(FIT_FIELDS)] = self.sensitivities[i]
                variances.append(float(g @ self.covariance @ g))
            return math.sqrt(float(np.mean(variances)) + scatter)
        mean_sensitivity = np.mean(self.sensitivities, axis=0)
        prior = PRIOR_SIGMA["family"] ** 2 + PRIOR_SIGMA["gpu"] ** 2
        return math.sqrt(float(np.sum(mean_sensitivity ** 2)) * prior + scatter)


def fit(rows: list[Measurement], base: Efficiency | None = None, *, row_models: list | None = None,
        start: np.ndarray | None = None, parameters: Parameters | None = None) -> Fit:
    base = base or Efficiency()
    row_models = row_models if row_models is not None else [RowModel(row, base) for row in rows]
    if not row_models:
        raise ConfigError("calibrate: no measurement rows to fit")
    params = parameters or build_parameters(row_models, base)
    prior_sigma = params.prior_sigma()
    groups = [params.row_groups(m) for m in row_models]
    evaluations = [0]

    def row_residuals(i, offsets):
        evaluations[0] += 1
        return row_models[i].residuals(params.efficiency(offsets))

    def fun(theta):
        parts = [row_residuals(i, params.log_offsets(theta, groups[i])) for i in range(len(row_models))]
        return np.concatenate(parts + [theta / prior_sigma])

    def jac(theta):
        rows_j = []
        for i in range(len(row_models)):
            offsets = params.log_offsets(theta, groups[i])
            r0 = row_residuals(i, offsets)
            block = np.zeros((len(r0), params.size))
            for k in range(len(FIT_FIELDS)):
                shifted = offsets.copy()
                shifted[k] += DIFF_STEP
                derivative = (row_residuals(i, shifted) - r0) / DIFF_STEP
                for group in groups[i]:
                    block[:, group * len(FIT_FIELDS) + k] = derivative
            rows_j.append(block)
        return np.vstack(rows_j + [np.diag(1 / prior_sigma)])

    x0 = np.zeros(params.size) if start is None else start
    solution = least_squares(fun, x0, jac=jac, method="trf", x_scale=1.0, xtol=1e-4, ftol=1e-6, max_nfev=40)
    theta = solution.x
    jacobian = jac(theta)
    covariance = np.linalg.pinv(jacobian.T @ jacobian)
    log_errors, sensitivities = [], []
    for i, model in enumerate(row_models):
        offsets = params.log_offsets(theta, groups[i])
        efficiency = params.efficiency(offsets)
        predicted = model.predict(efficiency)["output_tokens_per_s"]
        log_errors.append(math.log(predicted / model.row.output_tokens_per_s))
        sensitivity = []
        for k in range(len(FIT_FIELDS)):
            shifted = offsets.copy()
            shifted[k] += DIFF_STEP
            moved = model.predict(params.efficiency(shifted))["output_tokens_per_s"]
            sensitivity.append(math.log(moved / predicted) / DIFF_STEP)
        sensitivities.append(np.array(sensitivity))
    rms = math.sqrt(float(np.mean(np.square(log_errors))))
    return Fit(params, theta, covariance, row_models, rms, sensitivities, float(solution.cost), evaluations[0])


def leave_one_out(result: Fit) -> list[float]:
    """Per row: log(predicted / measured) when that row is left out of the fit (warm-started)."""
    errors = []
    models = result.row_models
    for i in range(len(models)):
        others = models[:i] + models[i + 1:]
        sub = fit([], result.parameters.base, row_models=others, start=result.theta, parameters=result.parameters)
        offsets = result.parameters.log_offsets(sub.theta, result.parameters.row_groups(models[i]))
        predicted = models[i].predict(result.parameters.efficiency(offsets))["output_tokens_per_s"]
        errors.append(math.log(predicted / models[i].row.output_tokens_per_s))
    result.loo = errors
    return errors


def report_rows(result: Fit, full: bool = True) -> list[dict]:
    """Per row: measured vs predicted at the fitted parameters (full rate search for Server rows), the
    residual, and the leave-one-out error when computed."""
    rows = []
    for i, model in enumerate(result.row_models):
        efficiency = result.efficiency_for_row(i)
        predicted = model.predict(efficiency, full=full)["output_tokens_per_s"]
        row = {"row": model.row.label, "plan": f"tp{model.plan.tp}-mbs{model.plan.max_batch_size}",
               "measured_tokens_per_s": model.row.output_tokens_per_s, "predicted_tokens_per_s": predicted,
               "residual_pct": 100 * (predicted / model.row.output_tokens_per_s - 1)}
        if result.loo:
            row["loo_error_pct"] = 100 * (math.exp(result.loo[i]) - 1)
        row["source"] = model.row.source
        rows.append(row)
    return rows


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(float(value)) if isinstance(value, float) else str(value)


def profile_toml(result: Fit, header: str = "", interval: float = DEFAULT_INTERVAL, gpu_catalog=()) -> str:
    """The fitted profile: [default] (the prior), [gpu.family-X], [gpu.NAME], [stack.NAME] factors, and a
    [fit] section with per-GPU prediction log-sigmas for intervals."""
    from simulator.hardware import EFFICIENCY_FIELDS, load_gpus
    lines = [f"# {line}" if line else "#" for line in header.splitlines()] + [""] if header else []
    base = result.parameters.base
    lines.append("[default]")
    lines += [f"{name} = {_toml_value(getattr(base, name))}" for name in EFFICIENCY_FIELDS]
    for kind, name in result.parameters.groups:
        values = result.stack_factors(name) if kind == "stack" else result.group_values(kind, name)
        section = {"family": f'gpu."family-{name}"', "gpu": f'gpu."{name}"', "stack": f'stack."{name}"'}[kind]
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(round(value, 6))}" for key, value in values.items()]
    lines += ["", "[fit]", f"interval = {interval}", f"rows = {len(result.row_models)}",
              f"residual_log_rms = {round(result.residual_log_rms, 6)}"]
    if result.loo:
        lines.append(f"loo_log_rms = {round(math.sqrt(float(np.mean(np.square(result.loo)))), 6)}")
    lines += ["", "[fit.log_sigma]"]
    for gpu in load_gpus(gpu_catalog).values():
        lines.append(f'"{gpu.name}" = {round(result.log_sigma(gpu.name, gpu.family), 6)}')
    return "\n".join(lines) + "\n"



def calibrate_files(paths: list[str], *, prior_profile=None, header: str = "", loo: bool = True,
                    interval: float = DEFAULT_INTERVAL) -> tuple[Fit, str, list[dict]]:
    """Load measurement files, fit, optionally leave-one-out, and render the profile TOML and the
    per-row report. The prior is the `[default]` of `prior_profile` (else the built-in defaults)."""
    from simulator.hardware import efficiency_from_table, load_profile
    from simulator.measurements import load_measurements
    rows = [row for path in paths for row in load_measurements(path)]
    base = Efficiency()
    if prior_profile is not None:
        base = efficiency_from_table(f"{prior_profile}: [default]", load_profile(prior_profile).get("default", {}), base)
    result = fit(rows, base)
    if loo:
        leave_one_out(result)
    return result, profile_toml(result, header, interval), report_rows(result)
