"""Calibration: parameters recovered from rows the simulator itself generated, a GPU with one row stays
near its family, intervals widen with fewer rows and for unmeasured GPUs, measurement files and
importers, and the CLI from calibrate to a prediction with an interval."""
import copy
import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from scipy.optimize import least_squares

import simulator.calibrate as calibrate
from simulator.calibrate import build_models, fit
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.fit_parameters import Membership, Parameters, power_prior_offsets
from simulator.hardware import Efficiency, efficiency_for, get_gpu, load_gpus, load_profile
from simulator.intervals import (datasheet_digest, interval_fields, no_interval_reason, prediction_log_sigma,
                                 unseen_run_log_sigma)
from simulator.models import get_model
from simulator.measurements import load_measurements, measurement_from_record
from simulator.run_results import from_inferencemax, from_vllm_benchmark
from simulator.replay import busy_time_s
from simulator.validate import validate
import simulator.scenario_runs as scenario_runs
from simulator.row_models import RowSpec, _binding_limit, row_model
from simulator.api import serving_config
from simulator.scenario_runs import ScenarioRunner
from workloads.scenarios import get_scenario

DATA = Path(__file__).parent.parent / "data"
PRIOR = Efficiency()
TRUTH = replace(PRIOR, compute_efficiency=0.5, memory_efficiency=0.6, step_overhead_s=0.002)
# compute-bound prefill, overhead- and weight-bound small decode, KV-bound long-context decode, big batches
SHAPES = [dict(users=1, input_tokens=128, output_tokens=128), dict(users=8, input_tokens=8000, output_tokens=32),
          dict(users=64, input_tokens=2048, output_tokens=32), dict(users=96, input_tokens=256, output_tokens=128),
          dict(users=24, input_tokens=6000, output_tokens=96)]


def closed_row(gpu="b200", truth=TRUTH, model="llama3.1-8b", measured=None, **shape):
    """A closed-loop row; its 'measured' tokens/s is the simulator's own at `truth` unless given."""
    record = dict(model=model, gpu=gpu, gpus=1, scenario="closed", source="synthetic", precision="fp8", tp=1, **shape)
    if measured is None:
        spec = RowSpec.of(measurement_from_record("synthetic", {**record, "output_tokens_per_s": 1}))
        measured = row_model(spec, truth).predict(truth)
    return measurement_from_record("synthetic", {**record, "output_tokens_per_s": measured})


@pytest.fixture(scope="module")
def full_fit():
    return fit([closed_row(**shape) for shape in SHAPES])


def test_recovers_predictions_from_its_own_rows(full_fit):
    """Rows generated at known efficiencies: the fit reproduces them, and predicts a shape it never saw
    within 5% and inside its own 95% interval. Compute efficiency (pinned by the prefill-heavy rows) comes
    back within 10%; memory efficiency and step overhead trade off along decode time = overhead + bytes /
    bandwidth, and with 5% measurement noise assumed the prior holds them near its own values along
    that ridge: what the rows pin is their sum, which is what predictions need."""
    assert full_fit.residual_log_rms < 0.03
    fitted = full_fit.efficiency_for(full_fit.specs[0])
    assert fitted.compute_efficiency == pytest.approx(TRUTH.compute_efficiency, rel=0.1)
    unseen = closed_row(users=32, input_tokens=4096, output_tokens=256)
    spec = RowSpec.of(unseen)
    predicted = row_model(spec, PRIOR).predict(fitted)
    assert predicted == pytest.approx(unseen.output_tokens_per_s, rel=0.05)
    sigma = full_fit.prediction_log_sigma(Membership.of(get_gpu("b200")), full_fit.sensitivities[full_fit.specs[0]])
    assert abs(math.log(predicted / unseen.output_tokens_per_s)) < 1.96 * sigma


def h100_rows_at_tp_1_and_4(truth, tp4_faster=1.0):
    """Three closed-loop shapes of Llama 3.1 8B on one H100 and on four at tp 4, 'measured' at `truth`
    (the tp 4 rows `tp4_faster` times faster): the tp 1 rows pin compute and memory, the tp 4 rows the
    collectives."""
    shapes = [dict(users=64, input_tokens=2048, output_tokens=32), dict(users=96, input_tokens=256, output_tokens=128),
              dict(users=8, input_tokens=8000, output_tokens=32)]
    rows = []
    for tp in (1, 4):
        for shape in shapes:
            record = dict(model="llama3.1-8b", gpu="h100", gpus=tp, scenario="closed", source="synthetic",
                          precision="fp8", tp=tp, **shape)
            spec = RowSpec.of(measurement_from_record("synthetic", {**record, "output_tokens_per_s": 1}))
            measured = row_model(spec, truth).predict(truth) * (tp4_faster if tp == 4 else 1.0)
            rows.append(measurement_from_record("synthetic", {**record, "output_tokens_per_s": measured}))
    return rows


def test_a_field_the_start_holds_at_its_ceiling_is_still_fitted():
    """Collective efficiency starts at its ceiling (1.0), where a step up moves a prediction only a
    little (`hardware.under_ceiling`; under a hard cap, not at all). Rows on one H100 pin compute and
    memory; the same shapes at tp 4, measured with collectives at 0.5, must pull it well down (under the
    hard cap a forward difference's derivative was 0 there, and the prior held it at 1.0)."""
    capped = replace(PRIOR, collective_efficiency=1.0)
    truth = replace(capped, collective_efficiency=0.5)
    result = fit(h100_rows_at_tp_1_and_4(truth), capped)
    assert result.efficiency_for(result.specs[-1]).collective_efficiency < 0.75


def test_a_fit_whose_rows_want_a_field_past_its_ceiling_ends_near_a_stationary_point(monkeypatch):
    """Rows at tp 4 measured 5% faster than collectives at their ceiling allow: the fit pushes collective
    efficiency into its ceiling. With a hard cap the cost had a kink there; the solver's linear model kept
    promising a decrease up the capped direction, its trust region shrank until `xtol` stopped it, and the
    largest gradient it left (`optimality`) was 3.4. Bent smoothly under the ceiling
    (`hardware.under_ceiling`) it ends at 0.28: what is left is the finite differences' own error."""
    truth = replace(PRIOR, collective_efficiency=1.0)
    rows = h100_rows_at_tp_1_and_4(truth, tp4_faster=1.05)
    ends = []

    def recording(function, x0, **options):
        ends.append(least_squares(function, x0, **options))
        return ends[-1]

    monkeypatch.setattr(calibrate, "least_squares", recording)
    result = fit(rows, PRIOR)
    assert ends[-1].optimality < 1.0
    assert result.efficiency_for(result.specs[-1]).collective_efficiency > 0.95


def test_a_start_from_another_fit_does_not_carry_over_what_no_row_pins(full_fit, monkeypatch):
    """validate starts each split from the fit of all rows. A group no row of the split depends on (here
    the expert-parallel all-to-all latency: dense rows at tp 1) has only its prior residual, so the solver
    starts it at its prior mean, not at the start's value (which the rows the split hides had set): on the
    shipped rows the solver, which stops once its trust region has shrunk, had left such a group at 12.4x
    its prior from 13.6x. The caller's start is left as it was."""
    starts = []

    def recording(function, x0, **options):
        starts.append(x0.copy())
        return least_squares(function, x0, **options)

    monkeypatch.setattr(calibrate, "least_squares", recording)
    parameters = full_fit.parameters
    i = parameters.index[("all_to_all_latency_s", "global", "*")]
    start = full_fit.theta.copy()
    start[i] = parameters.mean[i] + 2.5
    result = fit([closed_row(**shape) for shape in SHAPES], models=full_fit.models, theta0=start, reanchor=False)
    assert starts[0][i] == parameters.mean[i]
    assert result.theta[i] == pytest.approx(parameters.mean[i], abs=1e-9)
    assert i in result.unpinned
    assert start[i] == parameters.mean[i] + 2.5
    pinned = parameters.index[("compute_efficiency", "global", "*")]
    assert starts[0][pinned] == full_fit.theta[pinned]


def test_a_fit_runs_its_blas_on_one_thread(full_fit, monkeypatch):
    """A threaded BLAS sums in an order set by the CPU count, and the fit's thresholds can turn that last
    bit into a different fit: inside `fit` every BLAS library is pinned to one thread, and the caller's
    limits come back afterwards."""
    from threadpoolctl import threadpool_info
    seen = []

    def recording(function, x0, **options):
        seen.append([library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"])
        return least_squares(function, x0, **options)

    before = [library["num_threads"] for library in threadpool_info()]
    monkeypatch.setattr(calibrate, "least_squares", recording)
    fit([closed_row(**shape) for shape in SHAPES], models=full_fit.models, theta0=full_fit.theta, reanchor=False)
    assert seen and all(call and set(call) == {1} for call in seen)
    assert [library["num_threads"] for library in threadpool_info()] == before


def test_gpu_with_one_row_stays_near_its_family(full_fit):
    """One MI355X row at a very different truth: each of its GPU-level offsets (compute, prior sigma
    0.1; memory, 0.05) moves by at most about two of its prior sigmas, and its interval is wider than
    the well-measured B200's."""
    odd = replace(TRUTH, compute_efficiency=0.25)
    rows = [closed_row(**shape) for shape in SHAPES] + [closed_row(gpu="mi355x", truth=odd, **SHAPES[3])]
    result = fit(rows)
    gpu_offsets = {field: (t - mean, sigma) for (field, level, key), t, mean, sigma
                   in zip(result.parameters.groups, result.theta, result.parameters.mean, result.parameters.sigma)
                   if level == "gpu" and key == "mi355x"}
    assert set(gpu_offsets) == {"compute_efficiency", "memory_efficiency"}
    assert gpu_offsets["memory_efficiency"][1] == 0.05
    assert all(abs(t) <= 2.5 * sigma for t, sigma in gpu_offsets.values())
    assert result.log_sigma(get_gpu("mi355x")) > result.log_sigma(get_gpu("b200"))


def test_compute_prior_follows_board_power_within_a_family():
    """Sustained clocks go as power^(1/3). MI300X (750 W) and MI325X (1,000 W), same quoted peaks, are
    CDNA3's two GPUs: offsets +-(1/3) ln(1000/750) / 2 = +-0.04795 around the family. B200 (1,000 W,
    2,250 TFLOPS BF16) against GB200 (1,200 W, 2,500): (1/3) ln(1000/1200) - ln(2250/2500) = -0.06077 +
    0.10536 = +0.04459: B200 against GB200 comes out 4.6% above the ratio of their quoted peaks. A family
    keeps its datasheet scale: the offsets of its GPUs sum to 0. Only compute offsets of GPUs move."""
    gpus = load_gpus()
    offsets = power_prior_offsets(gpus)
    assert offsets["mi300x"] == pytest.approx(-0.04795, abs=1e-5)
    assert offsets["mi325x"] == pytest.approx(0.04795, abs=1e-5)
    assert offsets["b200"] - offsets["gb200"] == pytest.approx(0.04459, abs=1e-5)
    for family in {g.family for g in gpus.values()}:
        assert sum(offsets[g.name] for g in gpus.values() if g.family == family) == pytest.approx(0, abs=1e-12)
    parameters = Parameters(PRIOR, gpus)
    moved = {(field, level) for (field, level, _), mean in zip(parameters.groups, parameters.mean) if mean}
    assert moved == {("compute_efficiency", "gpu")}


def test_a_gpu_a_user_adds_to_a_family_does_not_move_its_siblings_priors():
    """The family's mean is taken over the shipped catalog's GPUs: a user's CDNA4 part quoting twice
    MI355X's peaks at MI355X's 1,400 W leaves MI355X's and MI350X's prior offsets where they were (it
    moved MI350X's predicted prefill 13% before). Its own offset is MI355X's minus ln 2: within a family,
    compute follows board power, so the prior reads it as MI355X's silicon at MI355X's power."""
    shipped = load_gpus()
    mine = replace(shipped["mi355x"], name="mi355x-2x", aliases=(),
                   peak_tflops={k: 2 * v for k, v in shipped["mi355x"].peak_tflops.items()})
    offsets = power_prior_offsets({**shipped, "mi355x-2x": mine})
    before = power_prior_offsets(shipped)
    assert all(offsets[name] == before[name] for name in shipped)
    assert offsets["mi355x-2x"] == pytest.approx(before["mi355x"] - math.log(2), abs=1e-12)


def test_a_vendors_narrow_gemms_carry_its_compute_offset_and_the_profile_folds_it_in():
    """A vendor's 4/6-bit GEMMs share its 8/16-bit vendor offset (SHARED_GROUPS). With AMD's compute
    vendor offset ln 0.8 and its own narrow offset ln 1.1, an AMD GPU's narrow share is prior x 0.8 x 1.1
    = 0.5 x 0.88 = 0.44, its compute share 0.7 x 0.8 x its board-power offset; NVIDIA's narrow share stays
    at the prior. The profile writes AMD's narrow factor as 0.88 (one factor per field and level), its
    compute factor as 0.8."""
    parameters = Parameters(PRIOR, load_gpus())
    theta = parameters.mean.copy()
    theta[parameters.index[("compute_efficiency", "vendor", "amd")]] = math.log(0.8)
    theta[parameters.index[("narrow_compute_efficiency", "vendor", "amd")]] = math.log(1.1)
    amd = parameters.efficiency(theta, parameters.indices(Membership.of(get_gpu("mi355x"))))
    nvidia = parameters.efficiency(theta, parameters.indices(Membership.of(get_gpu("b200"))))
    assert amd.narrow_compute_efficiency == pytest.approx(PRIOR.narrow_compute_efficiency * 0.88, rel=1e-12)
    assert amd.compute_efficiency == pytest.approx(PRIOR.compute_efficiency * 0.8 * math.exp(
        theta[parameters.index[("compute_efficiency", "gpu", "mi355x")]]), rel=1e-12)
    assert nvidia.narrow_compute_efficiency == PRIOR.narrow_compute_efficiency
    vendor = parameters.profile_sections(theta)["vendor"]
    assert vendor["amd"]["narrow_compute_efficiency_factor"] == pytest.approx(0.88, rel=1e-12)
    assert vendor["amd"]["compute_efficiency_factor"] == pytest.approx(0.8, rel=1e-12)
    assert "nvidia" not in vendor


def test_intervals_widen_with_fewer_rows_and_for_unmeasured_gpus(full_fit):
    fewer = fit([closed_row(**SHAPES[0])])
    assert fewer.log_sigma(get_gpu("b200")) > full_fit.log_sigma(get_gpu("b200"))
    # unmeasured: another vendor is widest, the same family's sibling (B300 is blackwell-ultra, GB200 blackwell)
    # sits between
    assert full_fit.log_sigma(get_gpu("mi300x")) > full_fit.log_sigma(get_gpu("gb200")) \
        > full_fit.log_sigma(get_gpu("b200"))


def test_profile_round_trip_reproduces_fitted_efficiencies(full_fit, tmp_path):
    """The written profile gives every catalog GPU the efficiency the fit would give it, and its header
    names what else the fit's numbers depend on (numeric builds can move a fit; its BLAS threads are pinned)."""
    from simulator.calibrate import profile_toml
    path = tmp_path / "profile.toml"
    path.write_text(profile_toml(full_fit))
    profile = load_profile(str(path))
    import numpy, scipy
    assert path.read_text().startswith(f"# Fitted with seed 0, Python ")
    assert f"numpy {numpy.__version__}, scipy {scipy.__version__}, one BLAS thread." in path.read_text().splitlines()[0]
    for name in ("b200", "mi355x", "h100"):
        gpu = get_gpu(name)
        expected = full_fit.parameters.efficiency(full_fit.theta, full_fit.parameters.indices(full_fit.default_membership(gpu)))
        got = efficiency_for(gpu, profile, profile_path=str(path))
        for field in ("compute_efficiency", "memory_efficiency", "step_overhead_s", "narrow_compute_efficiency"):
            assert getattr(got, field) == pytest.approx(getattr(expected, field), rel=1e-5)
    assert profile["fit"]["log_sigma"]["b200"] == pytest.approx(full_fit.log_sigma(get_gpu("b200")), rel=1e-4)
    assert profile["fit"]["models"] == ["llama3.1-8b"] and "unseen_model_log_sigma" not in profile["fit"]


def test_a_global_value_past_its_ceiling_composes_in_the_profile_as_the_fit_priced_it(full_fit, tmp_path):
    """Global collective efficiency at 0.8 x e^0.3 = 1.0799 (past the 1.0 ceiling) and AMD's offset -0.1:
    the fit prices AMD at under_ceiling(1.0799 x e^-0.1 = 0.9771) = 0.9771 - 0.0771^2 / 0.4 = 0.96224 and
    NVIDIA at under_ceiling(1.0799) = 1.0799 - 0.1799^2 / 0.4 = 0.99899. Written as [default] 1.0 with a factor of 1.0799, the
    profile composes to the same; a [default] capped at 1.0 gave AMD under_ceiling(0.9048) = 0.90474."""
    from simulator.calibrate import profile_toml
    parameters, theta = full_fit.parameters, full_fit.theta.copy()
    prior = parameters.prior.collective_efficiency
    theta[parameters.index[("collective_efficiency", "global", "*")]] = math.log(1.0799 / prior)
    theta[parameters.index[("collective_efficiency", "vendor", "amd")]] = -0.1
    path = tmp_path / "profile.toml"
    path.write_text(profile_toml(replace(full_fit, theta=theta)))
    profile = load_profile(str(path))
    assert profile["default"]["collective_efficiency"] == 1.0
    for name, expected in (("mi300x", 0.96224), ("h100", 0.99899)):
        gpu = get_gpu(name)
        fitted = parameters.efficiency(theta, parameters.indices(full_fit.default_membership(gpu)))
        assert fitted.collective_efficiency == pytest.approx(expected, abs=2e-5)
        assert efficiency_for(gpu, profile, profile_path=str(path)).collective_efficiency == pytest.approx(
            fitted.collective_efficiency, rel=1e-7)


def test_a_model_the_fit_never_ran_widens_its_interval():
    """[fit] log_sigma 0.09 for b200, unseen_model_log_sigma 0.2, models = [llama2-70b]: Llama 2 70B
    keeps 0.09; gpt-oss-120b gets sqrt(0.09^2 + 0.2^2) = 0.2193; without the model, the GPU's 0.09."""
    profile = {"fit": {"log_sigma": {"b200": 0.09}, "unseen_model_log_sigma": 0.2, "models": ["llama2-70b"]}}
    b200 = get_gpu("b200")
    assert prediction_log_sigma(profile, b200, get_model("llama2-70b")) == 0.09
    assert prediction_log_sigma(profile, b200, get_model("gpt-oss-120b")) == pytest.approx(0.21932, rel=1e-4)
    assert prediction_log_sigma(profile, b200) == 0.09
    profile["fit"]["unseen_model_log_sigma"] = -0.2
    with pytest.raises(ConfigError, match=r"unseen_model_log_sigma: -0.2 is out of range \[0, 10\)"):
        prediction_log_sigma(profile, b200, get_model("gpt-oss-120b"))
    profile["fit"]["unseen_model_log_sigma"] = "0.2"         # a string is refused, not ignored
    with pytest.raises(ConfigError, match=r"unseen_model_log_sigma: expected a number in \[0, 10\), got '0.2'"):
        prediction_log_sigma(profile, b200, get_model("gpt-oss-120b"))
    profile["fit"] = {"log_sigma": {"b200": "wide"}}
    with pytest.raises(ConfigError, match=r"\[fit\] log_sigma.b200: expected a number in \[0, 10\), got 'wide'"):
        prediction_log_sigma(profile, b200)


def test_a_gpu_whose_datasheet_differs_from_the_fitted_one_gets_no_interval():
    """[fit.datasheet] records each GPU's chip figures as the fit saw them: MI355X as catalogued keeps its
    0.08; the same name with twice the HBM bandwidth (a `--set gpu.hbm_tb_per_s` what-if) gets none, and
    the reason says so; its name, aliases and price do not count. A profile without the table (older
    ones) checks nothing."""
    mi355x = get_gpu("mi355x")
    profile = {"fit": {"log_sigma": {"mi355x": 0.08}, "datasheet": {"mi355x": datasheet_digest(mi355x)}}}
    assert prediction_log_sigma(profile, mi355x) == 0.08 and no_interval_reason(profile, mi355x) is None
    faster = replace(mi355x, hbm_tb_per_s=16.0)
    assert prediction_log_sigma(profile, faster) is None
    assert "mi355x's datasheet differs from the one the profile was fitted on" in no_interval_reason(profile, faster)
    renamed = replace(mi355x, display_name="mine", aliases=(), usd_per_gpu_hour=(1.0, 2.0))
    assert prediction_log_sigma(profile, renamed) == 0.08
    # its shipped values written another way (288 as 288.0) are the same chip; its network and power are
    # the topology's and the energy figures' what-ifs (--scaleout-gbps keeps the interval, so does this)
    same = replace(mi355x, hbm_gb=float(mi355x.hbm_gb), nic_gbps=800.0, power_w=2000.0, scaleup_gb_per_s=1.0)
    assert prediction_log_sigma(profile, same) == 0.08
    assert prediction_log_sigma({"fit": {"log_sigma": {"mi355x": 0.08}}}, faster) == 0.08
    assert "holds no fit for mi355x" in no_interval_reason({"fit": {}}, mi355x)


def test_a_run_the_fit_never_saw_takes_its_model_and_scenario_spread():
    """[fit] runs = ["b200 llama2-70b interactive"], unseen_run_log_sigma "llama2-70b interactive" = 0.3:
    B200 there adds nothing (fitted); B300 adds 0.3; B300 Offline and another model add nothing (no entry);
    a profile without `runs` adds nothing (it cannot say what was fitted)."""
    table = {"llama2-70b interactive": 0.3}
    profile = {"fit": {"runs": ["b200 llama2-70b interactive"], "unseen_run_log_sigma": table}}
    llama = get_model("llama2-70b")
    assert unseen_run_log_sigma(profile, get_gpu("b200"), llama, "interactive") == 0.0
    assert unseen_run_log_sigma(profile, get_gpu("b300"), llama, "interactive") == 0.3
    assert unseen_run_log_sigma(profile, get_gpu("b300"), llama, "offline") == 0.0
    assert unseen_run_log_sigma(profile, get_gpu("b300"), get_model("llama3.1-8b"), "interactive") == 0.0
    assert unseen_run_log_sigma({"fit": {"unseen_run_log_sigma": table}}, get_gpu("b300"), llama, "interactive") == 0.0


def test_mlperf_widens_an_unfitted_run_by_its_spread(tmp_path):
    """The shipped profile plus runs (B200 Llama 3.1 8B Offline fitted) and a spread of 0.5 for Llama 3.1
    8B Offline: 1 x B300 there carries sqrt(s^2 + 0.5^2), s its own log-sigma; 1 x B200 keeps s; a run of
    the user's own lengths keeps s (the spread is the benchmark's); a bad spread is refused at load."""
    from simulator.mlperf import mlperf
    shipped = (Path(__file__).resolve().parents[2] / "simulator" / "catalog" / "profile.toml").read_text()
    shipped = "\n".join(line for line in shipped.split("\n[fit.unseen_run_log_sigma]")[0].splitlines()
                        if not line.startswith("runs = "))        # the shipped fit's own, replaced below
    text = shipped.replace("[fit]\n", '[fit]\nruns = ["b200 llama3.1-8b offline"]\n', 1)
    path = tmp_path / "p.toml"
    path.write_text(text + '\n[fit.unseen_run_log_sigma]\n"llama3.1-8b offline" = 0.5\n')
    profile = load_profile(str(path))
    run = dict(model="llama3.1-8b", gpus=1, scenario="offline", queries=64, profile=str(path))
    for gpu, extra in (("b300", 0.5), ("b200", 0.0)):
        own = profile["fit"]["log_sigma"][gpu]
        assert mlperf(gpu=gpu, **run).prediction_log_sigma == pytest.approx(math.hypot(own, extra))
    assert mlperf(gpu="b300", **run, output_tokens="fixed:64").prediction_log_sigma == \
        pytest.approx(profile["fit"]["log_sigma"]["b300"])
    path.write_text(text + '\n[fit.unseen_run_log_sigma]\n"llama3.1-8b offline" = "wide"\n')
    with pytest.raises(ConfigError, match=r"\[fit.unseen_run_log_sigma\] llama3.1-8b offline: expected a number in \[0, 10\), got 'wide'"):
        load_profile(str(path))


def test_interval_fields_arithmetic():
    """80% central interval: z = 1.2816; sigma 0.1 gives x exp(-0.12816) = 0.8797 and x 1.1367."""
    fields = interval_fields(1000.0, 0.1, 0.8)
    assert fields["output_tokens_per_s_low"] == pytest.approx(879.72, rel=1e-4)
    assert fields["output_tokens_per_s_high"] == pytest.approx(1136.74, rel=1e-4)
    assert interval_fields(1000.0, None) == {}


def open_row(tpot_p50_s: float, gpu="h100"):
    """A vLLM-style open loop that keeps up with its arrivals: Llama 3.1 8B, 8 requests/s of 1024 + 256
    tokens, so its output is the arrivals' 2,048 tokens/s whatever the GPU's speed."""
    return measurement_from_record("open", dict(model="llama3.1-8b", gpu=gpu, gpus=1, scenario="open", tp=1,
                                                source="synthetic", precision="fp8", rate_per_s=8, input_tokens=1024,
                                                output_tokens=256, output_tokens_per_s=2000, tpot_p50_s=tpot_p50_s))


def test_an_open_loop_is_fitted_on_its_median_tpot():
    """An open loop below capacity says how fast the GPU ran only through its latency: fitted on output
    tokens/s, a row measured at 10 ms and one at 30 ms median TPOT both predicted 2,048 tokens/s under any
    efficiencies and left the prior in place. Fitted on 1 / TPOT, each fit reproduces its own row's TPOT
    (within 5%), the slower row fits a slower memory (decode at 8 requests/s x ~1.3 s in flight, ~10
    sequences, reads the weights every step), and the per-row report shows both TPOTs. Its sensitivities
    are no longer zero, so a GPU with no row keeps the prior spread of its vendor and family: its
    interval is wider than the measured GPU's (before, every GPU got the row's tiny residual)."""
    fast, slow = fit([open_row(0.010)]), fit([open_row(0.030)])
    for result, tpot in ((fast, 0.010), (slow, 0.030)):
        report = calibrate.report_rows(result)[0]
        assert report["measured_tpot_p50_s"] == tpot
        assert report["predicted_tpot_p50_s"] == pytest.approx(tpot, rel=0.05)
        assert report["predicted_output_tokens_per_s"] is None      # the arrivals set it
    memory = [r.efficiency_for(r.specs[0]).memory_efficiency for r in (fast, slow)]
    assert memory[1] < 0.7 * memory[0]
    assert fast.log_sigma(get_gpu("mi300x")) > 3 * fast.log_sigma(get_gpu("h100"))


def test_a_fit_without_the_shipped_rows_says_it_does_not_build_on_them(capsys):
    """A user's own rows alone give a profile whose unmeasured GPUs and fields sit at the built-in priors,
    not at the shipped MLPerf fit: calibrate says so (once, on stderr) and names the shipped file; with
    that file among the paths it says nothing."""
    from simulator.measurements import SHIPPED_MEASUREMENTS
    assert calibrate.fitted_alone([str(DATA / "measurements_small.csv"), str(SHIPPED_MEASUREMENTS)]) is None
    main(["calibrate", str(DATA / "measurements_small.csv")])
    err = capsys.readouterr().err
    assert err.count("fitted to these rows alone") == 1 and "mlperf.csv beside them" in err


def test_rows_of_a_non_reference_stack_say_which_stack_to_predict_with(capsys, tmp_path):
    """A profile fitted to vLLM rows on B200, predicted without --stack, applies TensorRT-LLM (NVIDIA's
    reference): calibrate says to name the stack, and every prediction names the one it applied."""
    main(["calibrate", str(DATA / "measurements_small.csv"), "--out", str(tmp_path / "p.toml")])
    err = capsys.readouterr().err
    assert "your rows ran vllm on nvidia GPUs: predict them with --stack vllm" in err
    assert "tensorrt-llm on nvidia" in err
    reference = tmp_path / "reference.csv"
    reference.write_text((DATA / "measurements_small.csv").read_text().replace(",vllm,", ",tensorrt-llm,"))
    assert calibrate.stack_note([str(reference)]) is None
    for stack, shown in ((None, "tensorrt-llm"), ("vllm", "vllm")):
        config = serving_config(model="llama3.1-8b", gpu="b200", gpus=1, profile=tmp_path / "p.toml", stack=stack)
        assert config.stack == shown
    assert serving_config(model="llama3.1-8b", gpu="mi300x", gpus=1).stack.startswith("vllm ")


def test_an_open_loop_without_its_median_tpot_is_refused(tmp_path):
    """Without tpot_p50_s an open loop's row could not tell a fast GPU from a slow one: refused at load,
    naming the column."""
    record = dict(model="llama3.1-8b", gpu="h100", gpus=1, scenario="open", source="s", rate_per_s=8,
                  input_tokens=1024, output_tokens=256, output_tokens_per_s=2000)
    with pytest.raises(ConfigError, match="needs tpot_p50_s and output_tokens >= 2"):
        measurement_from_record("row 1", record)
    with pytest.raises(ConfigError, match="needs tpot_p50_s"):
        measurement_from_record("row 1", {**record, "output_tokens": 1, "output_tokens_per_s": 8, "tpot_p50_s": 0.01})
    data = json.loads((Path(__file__).parents[2] / "docs/examples/vllm_run.json").read_text())
    del data["median_tpot_ms"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="run.json: median_tpot_ms is missing"):
        from_vllm_benchmark(path, model="llama3.1-8b", gpu="h100", gpus=1)


def test_measurement_file_and_errors(tmp_path):
    rows = load_measurements(DATA / "measurements_small.csv")
    assert [r.scenario for r in rows] == ["closed", "closed", "open"] and rows[2].rate_per_s == 4
    shipped = load_measurements(Path(__file__).parents[2] / "simulator/catalog/measurements/mlperf.csv")
    assert len(shipped) >= 300 and all(r.source and r.round and r.submitter and r.system for r in shipped)
    assert not [r for r in shipped if r.round.startswith("v6")]
    cases = {
        "model,gpu,gpus,scenario,output_tokens_per_s,source,colour\nm,b200,1,offline,1,s,red\n": "unknown column 'colour'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,0,offline,1,s\n": "gpus '0' is out of range",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,offline,nan,s\n": "output_tokens_per_s 'nan'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,weekly,1,s\n": "scenario 'weekly'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,open,1,s\n": "needs rate_per_s",
        "model,gpu,gpus,scenario,output_tokens_per_s,source,valid\nm,b200,1,offline,1,s,maybe\n": "valid 'maybe'",
        "model,gpu,gpus,scenario,source\n": "header lacks column 'output_tokens_per_s'",
        "model,gpu,gpus,gpus,scenario,output_tokens_per_s,source\nm,b200,1,1000,offline,1,s\n": "'gpus' appears twice",
        "": "file is empty",
    }
    for text, message in cases.items():
        path = tmp_path / "rows.csv"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
            load_measurements(path)


def test_stack_version_is_a_release_number():
    """Release numbers as the importers write them and as stacks name their own pass; a word does not."""
    record = {"model": "llama3.1-8b", "gpu": "h100", "gpus": 1, "scenario": "offline", "source": "test",
              "output_tokens_per_s": 100}
    for version in ("0.9", "10.11", "1.0", "0.6.3.post1", "1.0.0rc2", "0.10.1.dev0"):
        assert measurement_from_record("t", {**record, "stack_version": version}).stack_version == version
    for version in ("banana", "v0.9", "10", "0.9.", "0.9rc"):
        with pytest.raises(ConfigError, match=r"t: stack_version .* is not a release number: expected digits"):
            measurement_from_record("t", {**record, "stack_version": version})


def test_importers_read_the_documented_shapes():
    open_row = from_vllm_benchmark(DATA / "vllm_bench_rate.json", model="llama3.1-8b", gpu="h100", gpus=1, tp=1)
    assert (open_row.scenario, open_row.rate_per_s, open_row.input_tokens, open_row.output_tokens) == ("open", 8.0, 1024, 256)
    assert open_row.tpot_p50_s == pytest.approx(0.0096) and open_row.output_tokens_per_s == 2009.4
    closed_row_ = from_vllm_benchmark(DATA / "vllm_bench_concurrency.json", model="llama3.1-8b", gpu="h100", gpus=1)
    assert (closed_row_.scenario, closed_row_.users) == ("closed", 64)
    imx = from_inferencemax(DATA / "inferencemax_gptoss_mi355x.json")
    assert (imx.model, imx.gpu, imx.gpus, imx.users, imx.tp) == ("gpt-oss-120b", "mi355x", 8, 64, 8)
    assert imx.output_tokens_per_s == pytest.approx(1395.2 * 8)
    imx70 = from_inferencemax(DATA / "inferencemax_llama70b_b200.json")
    assert (imx70.model, imx70.gpu, imx70.gpus) == ("llama3.1-70b", "b200", 4)


def test_inferencemax_rows_simulate_as_closed_loops():
    row = from_inferencemax(DATA / "inferencemax_gptoss_mi355x.json")
    assert row_model(RowSpec.of(row), PRIOR).predict(PRIOR) > 0


def test_a_missing_catalog_file_is_reported_as_missing(tmp_path):
    """Not as every row's GPU missing from the catalog, as it was."""
    with pytest.raises(ConfigError, match="missing.toml: file not found"):
        load_measurements(DATA / "measurements_small.csv", gpu_catalog=(str(tmp_path / "missing.toml"),))


def test_a_spreadsheet_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (DATA / "measurements_small.csv").read_bytes())
    assert load_measurements(path) == load_measurements(DATA / "measurements_small.csv")


def test_rows_split_only_where_csv_splits_them(tmp_path):
    """Blank lines before the header are not an empty file, and a form feed or U+2028 inside a cell stays
    in the cell (str.splitlines split the row there, and the errors named the wrong row and column)."""
    path = tmp_path / "rows.csv"
    path.write_text("\n\nmodel,gpu,gpus,scenario,output_tokens_per_s,source\n"
                    "llama2-70b,b200,8,offline,30000,page\u2028one\fnote\n")
    [row] = load_measurements(path)
    assert row.source == "page\u2028one\fnote" and row.output_tokens_per_s == 30000


@pytest.mark.parametrize("body, message", [
    ("default = 1", r"\[default\] must be a table, not 1"),
    ("fit = [1, 2]", r"\[fit\] must be a table"),
    ("[fit]\nlog_sigma = 0.1", r"\[fit\] log_sigma: must be a table of numbers, not '0.1'"),
    ("[fit.reference_stack]\nnvidia = 5", r"\[fit\] reference_stack: must be a table of names"),
    ("[fit.log_sigma]\nh100 = -1", r"\[fit.log_sigma\] h100: -1 is out of range \[0, 10\)"),
    ("[fit]\ninterval = 5", r"\[fit\] interval: 5 is out of range \(0, 0.999\]"),
    ("[fit]\nbogus = 1", r"\[fit\]: unknown key 'bogus'"),
    ('[fit]\nruns = ["b200 llama2-70b offline", 2]', r"\[fit\] runs: entry 2, '2', is not a name \(a string\)$"),
    ("[fit]\nmodels = 3", r"\[fit\] models: must be a list of names, not '3'$"),
    ('[fit.unseen_run_log_sigma]\n"llama2-70b interactive" = -1',
     r"\[fit.unseen_run_log_sigma\] llama2-70b interactive: -1 is out of range \[0, 10\)"),
    ("[gpu]\nb200 = 1", r"\[gpu.b200\] must be a table of factors, not 1"),
    ('[vendor."amd"]\ncompute_efficiency_factor = nan', r"\[vendor.amd\]: compute_efficiency_factor: must be a finite number"),
    ("[default]\ncompute_efficiency_factor = 1e-300", r"1e-300 is out of range \[0.01, 100\]"),
])
def test_a_malformed_profile_is_refused_whole_at_load(tmp_path, body, message):
    """Every section is checked when the profile loads, whether or not a run reads it (an AMD section in
    a run on B200, another GPU's log-sigma): a one-line error naming the file and the entry, where a
    wrong type used to raise a traceback later and a wrong value in an unread section passed."""
    path = tmp_path / "profile.toml"
    path.write_text(body + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_profile(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_cli_calibrate_warns_of_rows_it_cannot_fit_and_never_overwrites_its_input(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    good = (DATA / "measurements_small.csv").read_text().splitlines()
    # 405B parameters in fp8 do not fit one B200: the loader accepts the row (its median TPOT of 42 ms is
    # above the 25 ms one read of its weights takes), the simulator cannot run it
    big = good[-1].replace("llama3.1-8b,", "llama3.1-405b,").replace(",0.0042,", ",0.042,")
    rows.write_text("\n".join(good + [big]) + "\n")
    main(["calibrate", str(rows), "--json"])
    err = capsys.readouterr().err
    assert err.count("left out of the fit") == 1 and "row llama3.1-405b b200 x1" in err and "does not fit" in err
    before = rows.read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", str(rows), "--out", str(rows)])
    assert exit_info.value.code == 2 and "would overwrite the input" in capsys.readouterr().err
    assert rows.read_text() == before


def test_rows_marked_invalid_are_not_fitted():
    """A result that broke its benchmark's rules (valid = false) is no measurement of the hardware."""
    rows = load_measurements(DATA / "measurements_small.csv")
    for command in (fit, validate):      # validate says so before its first fit
        with pytest.raises(ConfigError, match="measurement rows: none to fit .every row is marked invalid"):
            command([replace(row, valid=False) for row in rows])
    result = fit([replace(rows[0], valid=False)] + rows[1:])
    assert len(result.rows) == 2 and result.skipped == [(replace(rows[0], valid=False),
                                                         "its result is marked invalid (valid = false)")]


def test_stack_factor_multiplies(tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text('[default]\nmemory_efficiency = 0.8\n[stack."nvidia/slow"]\nmemory_efficiency_factor = 0.5\n')
    efficiency = efficiency_for(get_gpu("b200"), load_profile(str(path)), "slow", profile_path=str(path))
    assert efficiency.memory_efficiency == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="`stack`: 'fast' is not in the profile"):
        efficiency_for(get_gpu("b200"), load_profile(str(path)), "fast", profile_path=str(path))


def test_cli_calibrate_then_simulate_with_interval(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text((DATA / "measurements_small.csv").read_text())
    profile = tmp_path / "fitted.toml"
    main(["calibrate", str(rows), "--out", str(profile), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert len(report["rows"]) == 3 and all("error_pct" in r for r in report["rows"])
    main(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--rate", "2", "--requests", "50",
          "--profile", str(profile), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["output_tokens_per_s_low"] < document["output_tokens_per_s"] < document["output_tokens_per_s_high"]
    # a model the rows never ran takes the shipped validation's unseen-model spread on top (it took the
    # fitted model's own before): wider, by sqrt(sigma^2 + unseen^2)
    fitted = load_profile(str(profile))
    unseen = load_profile()["fit"]["unseen_model_log_sigma"]
    assert fitted["fit"]["unseen_model_log_sigma"] == unseen and "llama3.1-70b" not in fitted["fit"]["models"]
    b200 = get_gpu("b200")
    assert prediction_log_sigma(fitted, b200, get_model("llama3.1-70b")) == pytest.approx(
        math.hypot(prediction_log_sigma(fitted, b200, get_model("llama3.1-8b")), unseen))


def test_binding_limit_reads_the_runs_around_the_threshold():
    """Synthetic rate searches (scenario limits 2 s TTFT, 55 ms TPOT). The first failing run above the
    found rate names the limit that binds; TPOT's slope d log p99 TPOT / d log rate from 50 ms at 10/s to
    60 ms at 11/s is log 1.2 / log 1.1 = 1.913. A probe stopped early names the limit it had to miss, but
    its p99s cover only finished requests: the slope then comes from the two highest passing runs,
    45 ms at 9/s to 50 ms at 10/s: log(10/9) / log(10/9) = 1."""
    scenario = SimpleNamespace(ttft_p99_s=2.0, tpot_p99_s=0.055)
    passing = ((9.0, True, 0.3, 0.045, None), (10.0, True, 0.4, 0.050, None))

    def search(*failing):
        return SimpleNamespace(history=passing + failing)

    assert _binding_limit(search((11.0, False, 0.5, 0.060, None)), scenario) == \
        ("tpot", pytest.approx(math.log(1.2) / math.log(1.1)))
    assert _binding_limit(search((11.0, False, 0.1, 0.010, "tpot")), scenario) == ("tpot", pytest.approx(1.0))
    assert _binding_limit(search((11.0, False, 5.0, 0.050, None)), scenario) == ("ttft", 1.0)
    assert _binding_limit(search((11.0, False, 0.1, 0.010, "ttft")), scenario) == ("ttft", 1.0)
    assert _binding_limit(search((11.0, False, 0.1, 0.010, "dropped")), scenario) == ("ttft", 1.0)
    assert _binding_limit(search(), scenario) == ("ttft", 1.0)        # nothing failed: no threshold seen


def test_rows_differing_only_in_stack_share_one_run():
    """Two Offline rows of one system, one per stack release: one simulated run, two models (copies,
    so re-anchoring one leaves the other), and the same prediction at the same efficiency."""
    base = RowSpec("llama3.1-8b", "llama3.1-8b", "h100", 1, "offline", "fp8", "tensorrt-llm", "10.2",
                   output_tokens=128.0)
    other = replace(base, stack="vllm", stack_version="0.9")
    models, failed = build_models([base, other], lambda spec: PRIOR)
    assert not failed and set(models) == {base, other}
    assert models[base] is not models[other]
    assert models[base].traces is models[other].traces                  # one simulated run
    assert models[base].predict(PRIOR) == models[other].predict(PRIOR)


def test_server_rows_differing_only_in_duration_share_one_run_and_score_over_their_own():
    """Two Server rows of one system, one measured over 600 s and one over 2,400 s (LoadGen's
    min_duration; 4,674.3 s enters a spec as 4,700): one simulated run; each scores the run's load issued
    over its own duration, to the final query's completion: tokens/s issued x D / (D + its latency). A
    duration on an Offline row is refused (its length follows from its query count)."""
    record = {"model": "llama3.1-8b", "gpu": "h100", "gpus": 1, "scenario": "server", "source": "test",
              "output_tokens_per_s": 1, "duration_s": 4674.3}
    assert RowSpec.of(measurement_from_record("t", record)).duration_s == 4700.0
    with pytest.raises(ConfigError, match="duration_s applies to scenarios server and interactive only, not offline"):
        measurement_from_record("t", {**record, "scenario": "offline"})
    base = RowSpec("llama3.1-8b", "llama3.1-8b", "h100", 1, "server", "fp8", "tensorrt-llm", "10.2",
                   output_tokens=128.0, duration_s=600.0)
    longer = replace(base, duration_s=2400.0)
    models, failed = build_models([base, longer], lambda spec: PRIOR)
    assert not failed and models[base].traces is models[longer].traces
    load = models[base].load
    assert load.final_latency_s > 0 and load.duration_s == pytest.approx(600, rel=0.01)
    for spec, duration in ((base, 600.0), (longer, 2400.0)):
        expected = load.tokens_per_s * duration / (duration + load.final_latency_s)
        assert models[spec].predict(PRIOR) == pytest.approx(expected, rel=1e-9)


def test_a_server_row_of_few_queries_is_predicted_over_several_draws():
    """Llama 3.1 405B on 8 H200 serves well under 1 query/s: one 600 s run issues a few hundred queries, so
    its row model runs more draws, with other seeds, until they hold DRAW_QUERIES queries together (at most
    MAX_DRAWS), on the plan the first draw searched; it predicts their scores' geometric mean. A copy given
    another Server duration scores its own draws over it and leaves the original's alone. Llama 3.1 8B's
    run of thousands of queries stays one draw."""
    spec = RowSpec("llama3.1-405b", "llama3.1-405b", "h200", 8, "server", "fp8", "tensorrt-llm", "10.11",
                   output_tokens=650.0, duration_s=600.0)
    model = row_model(spec, PRIOR)
    first = model.draws[0]
    assert len(model.draws) == min(scenario_runs.MAX_DRAWS, math.ceil(scenario_runs.DRAW_QUERIES / first.queries)) > 1
    assert [draw.seed for draw in model.draws] == [k * scenario_runs.DRAW_SEED_STRIDE for k in range(len(model.draws))]
    assert all(draw.plan == first.plan for draw in model.draws)
    assert len({draw.anchor_rate for draw in model.draws}) > 1          # other queries, other found rates
    scores = [draw.predict(PRIOR) for draw in model.draws]
    assert model.predict(PRIOR) == pytest.approx(math.exp(sum(map(math.log, scores)) / len(scores)), rel=1e-12)
    longer = copy.copy(model)
    longer.spec = replace(spec, duration_s=2400.0)
    assert model.spec.duration_s == 600.0 and all(d.spec.duration_s == 600.0 for d in model.draws)
    for draw, scored in zip(longer.draws, scores):
        load = draw.load
        assert draw.predict(PRIOR) == pytest.approx(load.tokens_per_s * 2400 / (2400 + load.final_latency_s), rel=1e-9)
        assert scored == pytest.approx(load.tokens_per_s * 600 / (600 + load.final_latency_s), rel=1e-9)
    many = RowSpec("llama3.1-8b", "llama3.1-8b", "h100", 1, "server", "fp8", "tensorrt-llm", "10.2", output_tokens=128.0)
    single = row_model(many, PRIOR)
    assert single.queries >= scenario_runs.DRAW_QUERIES and not hasattr(single, "draws")


def test_the_fit_re_anchors_every_draw_of_a_drawn_server_row():
    """A 405B Server row measured at 85% of its prediction at the prior: the fit slows the steps by more than
    LOCAL_RANGE (TTFT binds, so the rate goes as the steps' speed: log 0.85 = -0.16), so it re-anchors the
    row, every draw of it at the fitted efficiencies (before, the fit picked the rows to re-anchor by an
    attribute only a single draw has, and left drawn rows at the prior), and its prediction comes within
    5% of the measured value; a draw's seed past 2^63 - 1 wraps round."""
    record = dict(model="llama3.1-405b", gpu="h200", gpus=8, scenario="server", source="synthetic",
                  precision="fp8", stack="tensorrt-llm", stack_version="10.11", output_tokens=650.0, duration_s=600.0)
    spec = RowSpec.of(measurement_from_record("synthetic", {**record, "output_tokens_per_s": 1}))
    measured = 0.85 * row_model(spec, PRIOR).predict(PRIOR)
    result = fit([measurement_from_record("synthetic", {**record, "output_tokens_per_s": measured})])
    model = result.models[spec]
    assert len(model.draws) > 1
    assert all(draw.anchor_efficiency != PRIOR for draw in model.draws)
    assert result.predictions[spec] == pytest.approx(measured, rel=0.05)
    assert scenario_runs.draw_seed(2 ** 63 - 1, 1) == scenario_runs.DRAW_SEED_STRIDE - 1


def test_a_release_the_fit_never_saw_widens_the_interval_by_its_prior():
    """A fit that saw TensorRT-LLM 10.2 only, asked about 10.11: the release's compute and step-overhead
    offsets are unknown within the release level's prior (log-sigma 0.1). With d log prediction / d log
    field of 0.5 (compute) and -0.2 (step overhead) the added variance is (0.5 x 0.1)^2 + (0.2 x 0.1)^2
    = 0.0029; the release it saw adds nothing (its offset is a fitted parameter)."""
    parameters = Parameters(PRIOR, load_gpus(), releases=["nvidia/tensorrt-llm 10.2"])
    h100 = get_gpu("h100")
    sensitivity = {"compute_efficiency": 0.5, "step_overhead_s": -0.2}
    unseen = Membership.of(h100, "tensorrt-llm", "10.11")
    assert parameters.unseen_variance(unseen, sensitivity) == pytest.approx(0.0029)
    assert parameters.unseen_variance(Membership.of(h100, "tensorrt-llm", "10.2"), sensitivity) == 0.0


def test_a_release_the_fit_never_saw_takes_its_stacks_nearest_earlier_one():
    """Fitted TensorRT-LLM 9.3 and 10.2 (MLPerf v4.1): 10.11 and 10.8 are later than both (10.11 > 10.2 by
    its numbers, not as text), so they take 10.2's offsets; 10.1 falls between and takes 9.3's; 9.0
    predates both and takes none (the stack's own values), as does a stack with no fitted release."""
    releases = ["nvidia/tensorrt-llm 9.3", "nvidia/tensorrt-llm 10.2"]
    parameters = Parameters(PRIOR, load_gpus(), releases=releases)
    nearest = {v: parameters.nearest_release(f"nvidia/tensorrt-llm {v}") for v in ("10.11", "10.8", "10.1", "9.0", "10.2")}
    assert nearest == {"10.11": releases[1], "10.8": releases[1], "10.1": releases[0], "9.0": None,
                       "10.2": releases[1]}
    assert parameters.nearest_release("nvidia/vllm 0.9") is None
    h100 = get_gpu("h100")
    later = parameters.indices(Membership.of(h100, "tensorrt-llm", "10.11"))
    assert later == parameters.indices(Membership.of(h100, "tensorrt-llm", "10.2"))
    assert parameters.index[("compute_efficiency", "release", releases[1])] in later["compute_efficiency"]


def test_offline_rows_issue_the_measured_query_count():
    """An Offline row's count (LoadGen: samples/s x run length) enters its spec within a 10% step:
    294,912 -> exp(round(log 294,912, 1)) = exp(12.6) = 296,558.6 -> 296,559; a Server row with one is
    refused (its count follows from rate and duration). The row's run issues that many queries: twice the
    queries, twice the output tokens (lengths are sampled, so within a few percent)."""
    record = {"model": "llama3.1-8b", "gpu": "h100", "gpus": 1, "scenario": "offline", "source": "test",
              "output_tokens_per_s": 1, "queries": 294_912}
    assert RowSpec.of(measurement_from_record("t", record)).queries == 296_559
    with pytest.raises(ConfigError, match="queries applies to scenario offline only, not server"):
        measurement_from_record("t", {**record, "scenario": "server"})
    base = RowSpec("llama3.1-8b", "llama3.1-8b", "h100", 1, "offline", "fp8", "tensorrt-llm", queries=3000)
    short, long = (row_model(spec, PRIOR) for spec in (base, replace(base, queries=6000)))
    assert long.tokens / short.tokens == pytest.approx(2.0, rel=0.03)


def test_a_long_measured_offline_run_is_its_simulated_prefix_extended_by_the_steady_state():
    """A measured Offline run far longer than the one `mlperf` would issue (gpt-oss-120b on one B200:
    4x the queries of that run, which lasts 8 request lifetimes of ~1,300 output tokens) is simulated
    for the shorter count and extended: the queries beyond it take what as many output tokens took
    between a quarter and three quarters of the prefix's completions. Fill and drain are counted once,
    as in the long run, so the score is within 1% of simulating all the queries (lengths are sampled:
    the extension stands for other draws), at the anchor and re-priced under other efficiencies alike;
    the prefix's own score, drain tail weighing on an eighth of its run, is over 4% below."""
    spec = RowSpec("gpt-oss-120b", "gpt-oss-120b", "b200", 1, "offline", "fp4", "tensorrt-llm")
    config = replace(serving_config(model="gpt-oss-120b", gpu="b200", gpus=1, precision="fp4", seed=0),
                     efficiency=PRIOR)
    scenario = get_scenario("gpt-oss-120b", "offline")
    own = ScenarioRunner(config, scenario).offline_queries(row_model(spec, PRIOR).plan)
    row = row_model(replace(spec, queries=4 * own), PRIOR)
    assert row.extension == pytest.approx(3.0)
    whole, _ = ScenarioRunner(config, scenario, queries=4 * own, record_steps=True).offline(row.plan)
    trace, cost = whole.engine_result.traces[0], whole.engine_result.step_costs[0]
    tokens = float(whole.engine_result.arrays["output_tokens"].sum())
    for efficiency in (PRIOR, TRUTH, replace(PRIOR, compute_efficiency=0.3, step_overhead_s=0.006)):
        simulated_whole = tokens / busy_time_s(trace, cost.with_efficiency(efficiency))
        assert row.predict(efficiency) == pytest.approx(simulated_whole, rel=0.01)
        prefix = row.tokens / busy_time_s(row.traces[0], row.costs[0].with_efficiency(efficiency))
        assert prefix < 0.96 * simulated_whole


def test_the_fit_seed_draws_the_rows_simulated_requests(tmp_path, capsys):
    """`--seed` draws the requests of the runs that stand for measured rows (the shipped profile uses 0):
    an open loop at 4 requests/s for 120 s (480 Poisson arrivals) lands on other arrival times under
    seed 1, so its median TPOT (what it is fitted on) moves by a few percent and no more, and the same seed gives the same
    prediction. calibrate records a seed other than 0 in the profile's header; a negative seed is a
    one-line error naming --seed (exit 2)."""
    spec = RowSpec("llama3.1-8b", "llama3.1-8b", "b200", 1, "open", "fp8", "vllm", output_tokens=256.0,
                   input_tokens=512.0, rate_per_s=4.0)
    zero, one, again = (row_model(spec, PRIOR, seed=s).predict(PRIOR) for s in (0, 1, 1))
    assert one == again and one != zero and one == pytest.approx(zero, rel=0.15)
    profile = tmp_path / "seeded.toml"
    main(["calibrate", str(DATA / "measurements_small.csv"), "--seed", "1", "--out", str(profile)])
    assert profile.read_text().splitlines()[0].endswith("(--seed 1)")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["calibrate", str(DATA / "measurements_small.csv"), "--seed", "-1"])
    assert exited.value.code == 2 and "--seed" in capsys.readouterr().err


def test_a_row_left_out_is_warned_of_in_its_columns_not_flags(capsys):
    """A row's reason names its own columns (`tp`), not a flag the user never gave (--tp)."""
    from simulator.cli import warn_unfitted
    row = load_measurements(DATA / "measurements_small.csv")[0]
    warn_unfitted(SimpleNamespace(skipped=[(row, "`tp`: 3 does not divide 32 attention heads")]))
    err = capsys.readouterr().err
    assert "left out of the fit: tp: 3 does not divide" in err and "--tp" not in err
