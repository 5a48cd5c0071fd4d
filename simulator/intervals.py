"""Prediction intervals: how far a prediction may be off, from the calibration's uncertainty.

A calibrated profile stores, per GPU, the log-sd of its predictions (`[fit.log_sigma]`); an interval at
level L is the prediction times exp(+-z sigma) with z the central normal quantile of L. A model no
fitted row ran (not in `[fit] models`) adds, in quadrature, the log-sigma that would have put 80% of
the rows of models held out of the fit inside their intervals (`[fit] unseen_model_log_sigma`). An
MLPerf run of a GPU no fitted row ran on that model and scenario (not in `[fit] runs`) adds the
log-sigma that would have put 80% of that model and scenario's rows, each held out with its GPU, inside
(`[fit.unseen_run_log_sigma]`, from `validate.unseen_run_log_sigmas`). A GPU whose chip figures (HBM,
tensor rates: DATASHEET_FIELDS) differ from the ones the fit saw (`[fit.datasheet]`; a what-if through
`--set gpu.*`, or a user catalog overriding it) gets no interval: the spread was measured on other
hardware. The default level is written here once.
"""
from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

from simulator.errors import ConfigError, excerpt, require_number

DEFAULT_INTERVAL = 0.8


MAX_INTERVAL = 0.999    # wider, z passes 3.3: the tails' shape, which no fit of a few hundred rows knows


def check_interval(where: str, level) -> float:
    """An interval level in (0, MAX_INTERVAL], else a one-line ConfigError naming `where`."""
    return require_number(where, level, low=0, low_inclusive=False, high=MAX_INTERVAL)


def interval_z(level: float) -> float:
    """Central normal quantile of an interval level: 0.8 -> 1.2816."""
    return NormalDist().inv_cdf(0.5 + check_interval("`interval`", level) / 2)


def check_log_sigma(where: str, value) -> float:
    """A log-sigma: a number in [0, 10), else a one-line ConfigError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number in [0, 10), got {excerpt(value)}")
    if not 0 <= value < 10:
        raise ConfigError(f"{where}: {value!r} is out of range [0, 10)")
    return float(value)


def _log_sigma(where: str, value) -> float | None:
    """A profile's log-sigma entry: absent is None; anything but a number in [0, 10) is refused."""
    return None if value is None else check_log_sigma(f"profile [fit] {where}", value)


# The chip's own figures, whose efficiencies the fit measured: another HBM or tensor rate is another chip.
# Its network (NICs, scale-up links) is the topology's what-if, priced by the network model, as
# `--scaleout-gbps` is; its power sets only the energy figures.
DATASHEET_FIELDS = ("vendor", "family", "base_family", "hbm_gb", "hbm_tb_per_s", "peak_tflops")


def _figure(value):
    """A datasheet value as the fingerprint reads it: numbers as floats (180 and 180.0 are one value)."""
    if isinstance(value, dict):
        return sorted((key, _figure(item)) for key, item in value.items())
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def datasheet_digest(gpu) -> str:
    """A short fingerprint of `gpu`'s datasheet figures (DATASHEET_FIELDS), which a fitted profile records
    per GPU (`[fit.datasheet]`) so a prediction can tell whether it runs the hardware the fit saw."""
    figures = [(name, _figure(getattr(gpu, name))) for name in DATASHEET_FIELDS]
    return hashlib.sha256(repr(figures).encode()).hexdigest()[:16]


def no_interval_reason(profile: dict, gpu) -> str | None:
    """Why the profile gives `gpu` no prediction interval (None when it gives one)."""
    fit = profile.get("fit", {})
    if fit.get("log_sigma", {}).get(gpu.name) is None:
        return (f"the efficiency profile holds no fit for {gpu.name} ([fit.log_sigma]); it runs at the profile's "
                f"values for its vendor ({gpu.vendor}) and family ({gpu.family}) where the profile has them, else "
                "the [default] ones: calibrate it on measured rows (infersim calibrate)")
    seen = fit.get("datasheet", {}).get(gpu.name)
    if seen is not None and seen != datasheet_digest(gpu):
        return (f"{gpu.name}'s datasheet differs from the one the profile was fitted on (a `set_values` gpu.* "
                "change or a catalog overriding it): its efficiencies are the fitted GPU's, and how far off they "
                "are on other hardware was never measured")
    return None


def prediction_log_sigma(profile: dict, gpu, model=None) -> float | None:
    """The profile's prediction log-sigma for `gpu` (None when the profile carries no fit for it, or a fit
    of another datasheet: `no_interval_reason`), widened for a `model` the fit never ran (see the module
    docstring)."""
    if no_interval_reason(profile, gpu) is not None:
        return None
    fit = profile.get("fit", {})
    sigma = _log_sigma(f"log_sigma.{gpu.name}", fit.get("log_sigma", {}).get(gpu.name))
    unseen = _log_sigma("unseen_model_log_sigma", fit.get("unseen_model_log_sigma"))
    fitted = fit.get("models")
    if model is None or unseen is None or not isinstance(fitted, list) or model.name in fitted:
        return sigma
    return math.hypot(sigma, unseen)


def group_key(model: str, scenario: str) -> str:
    """How a profile names a model and scenario (`[fit.unseen_run_log_sigma]`): "llama2-70b interactive"."""
    return f"{model} {scenario}"


def run_key(gpu: str, model: str, scenario: str) -> str:
    """How a profile names one run the fit saw: a GPU, a model and a scenario (`[fit] runs`)."""
    return f"{gpu} {group_key(model, scenario)}"


def unmeasured_run(profile: dict, gpu, model, scenario: str) -> bool:
    """Whether the profile's fit ran no row of `gpu` on `model` in `scenario` (False when the profile does
    not list its runs `[fit] runs`: it cannot say)."""
    runs = profile.get("fit", {}).get("runs")
    return isinstance(runs, list) and run_key(gpu.name, model.name, scenario) not in runs


def unmeasured_run_note(profile: dict, gpu, model, scenario: str) -> str | None:
    """A note when the fit ran no such row (`unmeasured_run`): the number comes from other GPUs', models'
    or scenarios' rows, and its interval from what such predictions erred by."""
    if not unmeasured_run(profile, gpu, model, scenario):
        return None
    return (f"no measured row of {gpu.name} on {model.name} {scenario} in the profile's fit: predicted from other "
            "rows (other GPUs, models or scenarios), its interval from what such predictions erred by held out")


def unseen_run_log_sigma(profile: dict, gpu, model, scenario: str) -> float:
    """What an MLPerf `scenario` run of `model` on `gpu` adds to its prediction log-sigma (in quadrature):
    the profile's value for the model and scenario when the fit ran no row of all three, else 0."""
    table, key = profile.get("fit", {}).get("unseen_run_log_sigma", {}), group_key(model.name, scenario)
    if key not in table or not unmeasured_run(profile, gpu, model, scenario):
        return 0.0
    return _log_sigma(f"unseen_run_log_sigma.{key}", table[key])


def interval_fields(tokens_per_s: float, log_sigma: float | None, level: float = DEFAULT_INTERVAL) -> dict:
    """output_tokens_per_s_low/high at `level` (central), from the calibration's log-sigma; {} without one."""
    if log_sigma is None:
        return {}
    z = interval_z(level)
    return {"output_tokens_per_s_low": tokens_per_s * math.exp(-z * log_sigma),
            "output_tokens_per_s_high": tokens_per_s * math.exp(z * log_sigma), "interval": level,
            "prediction_log_sigma": log_sigma}
