"""Calibration: parameters recovered from rows the simulator itself generated, prior-anchored fits for a
GPU with one row, intervals that widen with fewer rows, measurement files and importers, and the CLI."""
import json
import math
from pathlib import Path

import pytest

from simulator.calibrate import FIT_FIELDS, RowModel, fit
from simulator.intervals import interval_fields
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.hardware import Efficiency, efficiency_for, get_gpu, load_profile
from simulator.measurements import (from_inferencemax, from_vllm_benchmark, load_measurements,
                                    measurement_from_record)

DATA = Path(__file__).parent.parent / "data"
TRUTH = Efficiency(compute_efficiency=0.45, memory_efficiency=0.6, step_overhead_s=0.002)
SHAPES = [dict(users=1, input_tokens=128, output_tokens=256), dict(users=8, input_tokens=16000, output_tokens=64),
          dict(users=64, input_tokens=2048, output_tokens=32), dict(users=128, input_tokens=256, output_tokens=256)]


def synthetic_row(gpu="b200", truth=TRUTH, model="llama3.1-8b", **shape):
    """A closed-loop row whose 'measured' figures are the simulator's own at `truth`."""
    record = dict(model=model, gpu=gpu, gpus=1, scenario="closed", source="synthetic", precision="fp8", tp=1, **shape)
    predicted = RowModel(measurement_from_record("synthetic", {**record, "output_tokens_per_s": 1}), Efficiency()).predict(truth)
    return measurement_from_record("synthetic", {**record, "output_tokens_per_s": predicted["output_tokens_per_s"],
                                                 "tpot_p50_s": predicted["tpot_p50_s"],
                                                 "ttft_p50_s": predicted["ttft_p50_s"]})


@pytest.fixture(scope="module")
def full_fit():
    return fit([synthetic_row(**shape) for shape in SHAPES])


def test_recovers_parameters_from_its_own_predictions(full_fit):
    """Compute efficiency is pinned by the prefill-heavy rows; memory efficiency and step overhead trade
    off along decode time = overhead + bytes / bandwidth, so the weak prior (0.75, 3 ms) keeps them
    within 25% rather than exact. What matters, predictions, must come back within 5% on a shape the
    fit never saw, and inside the fit's own 95% interval."""
    fitted = full_fit.efficiency_for_row(0)
    assert fitted.compute_efficiency == pytest.approx(TRUTH.compute_efficiency, rel=0.05)
    assert fitted.memory_efficiency == pytest.approx(TRUTH.memory_efficiency, rel=0.25)
    assert fitted.step_overhead_s == pytest.approx(TRUTH.step_overhead_s, rel=0.25)
    unseen = synthetic_row(users=32, input_tokens=4096, output_tokens=512)
    model = RowModel(unseen, Efficiency())
    predicted = model.predict(fitted)["output_tokens_per_s"]
    assert predicted == pytest.approx(unseen.output_tokens_per_s, rel=0.05)
    assert abs(math.log(predicted / unseen.output_tokens_per_s)) < 1.96 * full_fit.log_sigma("b200", "blackwell")
    assert full_fit.residual_log_rms < 0.03


def test_gpu_with_one_row_gets_finite_prior_anchored_parameters(full_fit):
    rows = [synthetic_row(**shape) for shape in SHAPES] + [synthetic_row(gpu="mi355x", **SHAPES[3])]
    result = fit(rows)
    values = result.group_values("gpu", "mi355x")
    assert all(math.isfinite(v) and v > 0 for v in values.values())
    # One row cannot move a GPU far from its prior: every offset within 2 prior sigmas (0.5 in log units)
    offsets = result.theta.reshape(len(result.parameters.groups), len(FIT_FIELDS))
    gpu_offsets = offsets[result.parameters.index[("gpu", "mi355x")]]
    assert all(abs(o) <= 0.5 for o in gpu_offsets)
    assert math.isfinite(result.log_sigma("mi355x", "cdna4"))
    assert result.log_sigma("mi355x", "cdna4") > result.log_sigma("b200", "blackwell")


def test_intervals_widen_when_rows_are_removed(full_fit):
    fewer = fit([synthetic_row(**SHAPES[0])])
    assert fewer.log_sigma("b200", "blackwell") > full_fit.log_sigma("b200", "blackwell")
    # a GPU the rows never saw gets the prior-only spread, wider still; one of a measured family sits between
    assert full_fit.log_sigma("h100", "hopper") > full_fit.log_sigma("b300", "blackwell") \
        > full_fit.log_sigma("b200", "blackwell")


def test_interval_fields_arithmetic():
    """80% central interval: z = 1.2816; sigma 0.1 gives x exp(-0.12816) = 0.8797 and x 1.1367."""
    fields = interval_fields(1000.0, 0.1, 0.8)
    assert fields["tokens_per_s_low"] == pytest.approx(879.72, rel=1e-4)
    assert fields["tokens_per_s_high"] == pytest.approx(1136.74, rel=1e-4)
    assert interval_fields(1000.0, None) == {}


def test_measurement_file_and_errors(tmp_path):
    rows = load_measurements(DATA / "measurements_small.csv")
    assert [r.scenario for r in rows] == ["closed", "closed", "open"] and rows[2].rate_per_s == 4
    shipped = load_measurements(Path(__file__).parents[2] / "simulator/catalog/measurements/mlperf.csv")
    assert len(shipped) >= 10 and all(r.source for r in shipped)
    cases = {
        "model,gpu,gpus,scenario,output_tokens_per_s,source,colour\nm,b200,1,offline,1,s,red\n": "unknown column 'colour'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,0,offline,1,s\n": "gpus '0' is out of range",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,offline,nan,s\n": "output_tokens_per_s 'nan'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,weekly,1,s\n": "scenario 'weekly'",
        "model,gpu,gpus,scenario,output_tokens_per_s,source\nm,b200,1,open,1,s\n": "needs rate_per_s",
        "model,gpu,gpus,scenario,source\n": "header lacks column 'output_tokens_per_s'",
        "": "file is empty",
    }
    for text, message in cases.items():
        path = tmp_path / "rows.csv"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
            load_measurements(path)


def test_importers_read_the_documented_shapes():
    open_row = from_vllm_benchmark(DATA / "vllm_bench_rate.json", model="llama3.1-8b", gpu="h100", gpus=1, tp=1)
    assert (open_row.scenario, open_row.rate_per_s, open_row.input_tokens, open_row.output_tokens) == ("open", 8.0, 1024, 256)
    assert open_row.tpot_p50_s == pytest.approx(0.0096) and open_row.output_tokens_per_s == 2009.4
    closed_row = from_vllm_benchmark(DATA / "vllm_bench_concurrency.json", model="llama3.1-8b", gpu="h100", gpus=1)
    assert (closed_row.scenario, closed_row.users) == ("closed", 64)
    imx = from_inferencemax(DATA / "inferencemax_gptoss_mi355x.json")
    assert (imx.model, imx.gpu, imx.gpus, imx.users, imx.tp) == ("gpt-oss-120b", "mi355x", 8, 64, 8)
    assert imx.output_tokens_per_s == pytest.approx(1395.2 * 8)
    imx70 = from_inferencemax(DATA / "inferencemax_llama70b_b200.json")
    assert (imx70.model, imx70.gpu, imx70.gpus) == ("llama3.1-70b", "b200", 4)


def test_inferencemax_rows_simulate_as_closed_loops():
    row = from_inferencemax(DATA / "inferencemax_gptoss_mi355x.json")
    predicted = RowModel(row, Efficiency()).predict(Efficiency())
    assert predicted["output_tokens_per_s"] > 0 and predicted["tpot_p50_s"] > 0


def test_stack_factor_multiplies(tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text('[default]\nmemory_efficiency = 0.8\n[stack.slow]\nmemory_efficiency_factor = 0.5\n')
    efficiency = efficiency_for(get_gpu("b200"), load_profile(str(path)), "slow", profile_path=str(path))
    assert efficiency.memory_efficiency == pytest.approx(0.4)


def test_cli_calibrate_then_simulate_with_interval(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text((DATA / "measurements_small.csv").read_text())
    profile = tmp_path / "fitted.toml"
    main(["calibrate", str(rows), "--out", str(profile), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert len(report["rows"]) == 3 and all("loo_error_pct" in r for r in report["rows"])
    main(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--rate", "2", "--requests", "50",
          "--profile", str(profile), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["tokens_per_s_low"] < document["output_tokens_per_s"] < document["tokens_per_s_high"]
