"""Validation splits on a synthetic set generated from known efficiencies: every GPU, round and model
the fit never saw is predicted back within tolerance and inside its interval, and the report holds
every held-out row."""
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.cli import main
from simulator.errors import ConfigError, InfeasibleError
from simulator.fit_parameters import power_prior_offsets
from simulator.hardware import Efficiency, load_gpus
from simulator.measurements import measurement_from_record
from simulator.row_models import RowSpec, row_model
from simulator.validate import (SHIFT_SHOWN, HeldOut, _unseen_lines, breakdown, markdown, node_ratios, pinned_records,
                                summarise, unseen_groups, unseen_model_log_sigma, unseen_run_log_sigmas, validate,
                                worst_rows)

TRUTH = replace(Efficiency(), compute_efficiency=0.55, memory_efficiency=0.7, step_overhead_s=0.0025)
POWER_OFFSETS = power_prior_offsets(load_gpus())
SHAPES = [dict(users=1, input_tokens=128, output_tokens=128), dict(users=8, input_tokens=8000, output_tokens=32),
          dict(users=64, input_tokens=2048, output_tokens=32), dict(users=24, input_tokens=6000, output_tokens=96)]


def row(gpu, model, round_, shape):
    """A row measured at TRUTH, with the GPU's compute where its board power puts it in its family (the
    calibration's prior: H100 and H200 at 700 W run 0.93x the Hopper mean, B200 1.02x Blackwell's)."""
    record = dict(model=model, gpu=gpu, gpus=1, scenario="closed", source=f"synthetic {gpu} {model} {shape}",
                  precision="fp8", tp=1, round=round_, submitter="test", system=gpu, **shape)
    spec = RowSpec.of(measurement_from_record("synthetic", {**record, "output_tokens_per_s": 1}))
    truth = replace(TRUTH, compute_efficiency=TRUTH.compute_efficiency * math.exp(POWER_OFFSETS[gpu]))
    return measurement_from_record("synthetic", {**record, "output_tokens_per_s": row_model(spec, truth).predict(truth)})


@pytest.fixture(scope="module")
def results():
    rows = [row(gpu, model, round_, shape) for gpu, round_ in (("h200", "v4.1"), ("b200", "v5.1"), ("h100", "v4.1"))
            for model in ("llama3.1-8b", "mixtral-8x7b") for shape in SHAPES[:3 if gpu == "h100" else 4]
            if not (gpu == "h100" and model == "mixtral-8x7b")]
    return validate(rows)


def test_every_split_predicts_the_held_out_rows(results):
    """All rows come from one efficiency: whatever is left out, the rest pins the shared (global and vendor)
    values, so held-out rows come back within 10% and mostly inside their 80% intervals."""
    for split in ("gpu", "round", "model"):
        summary = results[split]["summary"]
        assert summary["rows"] > 0
        assert summary["median_abs_error_pct"] < 5, split
        assert summary["p90_abs_error_pct"] < 10, split
    gpu_split = {h.left_out for h in results["gpu"]["held_out"]}
    assert gpu_split == {"h200", "b200", "h100"}            # each GPU has at least three rows
    assert {h.left_out for h in results["round"]["held_out"]} == {"v5.1"}


def test_report_lists_every_held_out_row(results):
    text = markdown(results)
    for split in ("gpu", "round", "model"):
        for h in results[split]["held_out"]:
            assert h.spec.label in text
    assert "| leave one GPU out |" in text and "80% interval coverage" in text
    ratios = node_ratios(results["gpu"]["held_out"])
    assert ratios and all(abs(r["ratio_error"]) < 0.1 for r in ratios)
    assert len(worst_rows(results, 3)) == 3


def test_report_says_what_each_held_out_gpu_own_rows_pin(results):
    """Every left-out GPU gets its field shifts: each listed field moved by over SHIFT_SHOWN between the fit
    of all rows and the fit without the GPU's rows, and by little (one efficiency made every row, so the
    other GPUs' rows pin the shared values), and the report prints those rows."""
    shifts = results["gpu"]["pinned"]
    assert set(shifts) == {h.left_out for h in results["gpu"]["held_out"]}
    for fields in shifts.values():
        for with_rows, without in fields.values():
            assert SHIFT_SHOWN < abs(math.log(without / with_rows)) < 0.25
    text = markdown(results)
    assert "## What a GPU's own rows pin" in text
    for gpu, fields in shifts.items():
        for name in fields:
            assert f"| {gpu} | {name} |" in text
    records = pinned_records(results)         # the same, as `infersim validate --json` prints it
    assert {(r["left_out"], r["field"]): (r["value_all_rows"], r["value_without_left_out_rows"])
            for r in records if r["split"] == "gpu"} == {(g, f): v for g, fields in shifts.items() for f, v in fields.items()}


def test_unseen_model_spread_puts_the_level_of_rows_inside():
    """Five held-out rows with log-sigma 0.1 and log errors 0, 0.1, 0.2, 0.3, 0.5; z(80%) = 1.2816. Row
    i needs s^2 >= (e_i / z)^2 - 0.01: 0, 0, 0.01435, 0.04480, 0.14221. The 80% quantile of those five
    (the fourth) is 0.04480: s = 0.2117 puts four of five inside. Rows already inside need nothing: 0."""
    measured = row("h200", "llama3.1-8b", "v4.1", SHAPES[0])
    spec = RowSpec.of(measured)
    tokens = measured.output_tokens_per_s

    def held(log_error, sigma=0.1):
        return HeldOut("model", "llama3.1-8b", measured, spec, tokens * math.exp(log_error), sigma)

    rows = [held(e) for e in (0.0, 0.1, 0.2, 0.3, 0.5)]
    s = unseen_model_log_sigma(rows)
    assert s == pytest.approx(0.2117, abs=2e-4)
    assert sum(abs(math.log(h.predicted / tokens)) <= 1.2816 * math.hypot(h.log_sigma, s) + 1e-9 for h in rows) == 4
    assert unseen_model_log_sigma([held(0.05), held(-0.05)]) == 0.0


def test_unseen_run_spread_per_model_and_scenario():
    """The five rows above as one model and scenario held out with their GPU give 0.2117, as for a held-out
    model; four rows of another scenario are too few (MIN_GROUP_ROWS = 5), and five rows already inside
    need nothing, so neither is written."""
    measured = row("h200", "llama3.1-8b", "v4.1", SHAPES[0])
    spec, tokens = RowSpec.of(measured), measured.output_tokens_per_s

    def held(log_error, scenario):
        return HeldOut("gpu", "h200", replace(measured, scenario=scenario), spec, tokens * math.exp(log_error), 0.1)

    rows = [held(e, "server") for e in (0.0, 0.1, 0.2, 0.3, 0.5)] + [held(0.5, "offline")] * 4
    rows += [held(0.05, "interactive")] * 5
    assert unseen_run_log_sigmas(rows) == {"llama3.1-8b server": pytest.approx(0.2117, abs=2e-4)}
    text = markdown({"gpu": {"held_out": rows, "summary": summarise(rows), "pinned": {}},
                     "fit": SimpleNamespace(rows=rows, residual_log_rms=0.1, model_log_sigma=0.1)})
    assert "(`unseen_run_log_sigma`): llama3.1-8b server 0.212." in text


def test_a_split_with_nothing_to_hold_out_is_an_error_not_an_empty_summary():
    """Rows of one model: leaving it out leaves nothing to fit, as one round does for the round split."""
    rows = [row("h200", "llama3.1-8b", "v4.1", shape) for shape in SHAPES[:3]]
    for split, kind in (("model", "models"), ("gpu", "GPUs"), ("round", "rounds")):
        with pytest.raises(ConfigError, match=f"leave one {split} out needs rows of two {kind}.*`splits` chooses"):
            validate(rows, splits=(split,))      # refused before any fit (a fit here would take seconds)


def test_rows_marked_invalid_do_not_make_a_split_and_the_refusal_says_so():
    """Three valid v4.1 rows and two v5.1 rows marked invalid: the fits leave the invalid ones out, so there
    is one round; before, the refusal did not mention the two rows it had left out."""
    rows = [row("h200", "llama3.1-8b", "v4.1", shape) for shape in SHAPES[:3]]
    rows += [replace(row("h200", "llama3.1-8b", "v5.1", shape), valid=False) for shape in SHAPES[:2]]
    with pytest.raises(ConfigError, match=r"two rounds or more.*; 2 row\(s\) marked invalid \(valid = false\) are left out"):
        validate(rows, splits=("round",))


def test_a_held_out_row_the_simulator_refuses_is_named(results, monkeypatch):
    """The simulator's refusal of a held-out row (here: does not fit at the split's efficiencies) says
    which row it is about, and stays an InfeasibleError (the CLI's "cannot run")."""
    import simulator.validate as validate_module

    def refuse(*args, **kwargs):
        raise InfeasibleError("does not fit on 1 h200 at any tp")

    monkeypatch.setattr(validate_module, "row_model", refuse)
    spec = results["fit"].specs[0]
    with pytest.raises(InfeasibleError, match=f"validate: held-out row {spec.label} cannot be simulated: does not"):
        validate_module._predict_held_out(results["fit"], [spec])


def test_cli_validate_names_its_rows_and_seed(tmp_path, capsys):
    """The report says what it was generated from: the command (a seed other than 0 included) and the
    rows given, not the shipped MLPerf file it did not read."""
    rows = tmp_path / "rows.csv"
    rows.write_text("model,gpu,gpus,scenario,output_tokens_per_s,source,users,input_tokens,output_tokens,precision,tp\n"
                    "llama3.1-8b,b200,1,closed,270,one user,1,128,256,fp8,1\n"
                    "llama3.1-8b,b200,1,closed,24000,128 users,128,256,256,fp8,1\n"
                    "llama2-70b,b200,1,closed,270,one user,1,128,256,fp8,1\n")
    report = tmp_path / "v.md"
    main(["validate", str(rows), "--split", "model", "--seed", "1", "--out", str(report), "--quiet"])
    assert f"Generated by `infersim validate {rows} --seed 1` from 3 rows of {rows};" in report.read_text()


def test_groups_only_the_held_out_round_runs_are_listed_with_their_factor():
    """A release no fitted row runs is predicted at its stack's values; the report names it with the factor
    the fit of all rows gives it (log 1.13 = 0.122 is over SHIFT_SHOWN; 1.01 is not; the global group is
    known to both fits)."""
    release = ("compute_efficiency", "release", "nvidia/tensorrt-llm 10.11")
    small = ("step_overhead_s", "release", "nvidia/tensorrt-llm 10.11")
    shared = ("compute_efficiency", "global", "*")
    base = SimpleNamespace(parameters=SimpleNamespace(groups=[shared, release, small], mean=np.zeros(3)),
                           theta=np.log([1.2, 1.13, 1.01]), unpinned=frozenset())
    split = SimpleNamespace(parameters=SimpleNamespace(index={shared: 0}), unpinned=frozenset())
    unseen = unseen_groups(base, split)
    assert unseen == {release: pytest.approx(1.13)}
    records = pinned_records({"round": {"pinned": {"v5.1": unseen}}})
    text = "\n".join(_unseen_lines(records, "round"))
    assert "| v5.1 | release nvidia/tensorrt-llm 10.11 | compute_efficiency | 1.13 |" in text
    assert records == [
        {"split": "round", "left_out": "v5.1", "field": "compute_efficiency", "level": "release",
         "group": "nvidia/tensorrt-llm 10.11", "factor_all_rows": pytest.approx(1.13)}]


def test_fields_only_the_held_out_model_exercises_are_listed_with_their_factor():
    """Held out, DeepSeek-R1 takes the expert-parallel all-to-all latency to the split's fit's prior: the
    group is in that fit but no kept row depends on it. The report names it with its factor over the prior
    in the fit of all rows (12x). A GPU's compute offset the fit of all rows also leaves at its prior (a GPU
    without rows, prior mean log 1.14 from its board power) is no finding, though its factor is over 1."""
    all_to_all = ("all_to_all_latency_s", "global", "*")
    unmeasured = ("compute_efficiency", "gpu", "b300")
    shared = ("compute_efficiency", "global", "*")
    groups = [shared, all_to_all, unmeasured]
    base = SimpleNamespace(parameters=SimpleNamespace(groups=groups, mean=np.log([1.0, 1.0, 1.14])),
                           theta=np.log([1.2, 12.0, 1.14]), unpinned=frozenset({2}))
    split = SimpleNamespace(parameters=SimpleNamespace(index={g: i for i, g in enumerate(groups)}),
                            unpinned=frozenset({1, 2}))
    unseen = unseen_groups(base, split)
    assert unseen == {all_to_all: pytest.approx(12.0)}
    records = pinned_records({"model": {"pinned": {"deepseek-r1": unseen}}})
    text = "\n".join(_unseen_lines(records, "model"))
    assert "## What a held-out model's own rows alone pin" in text
    assert "| deepseek-r1 | global * | all_to_all_latency_s | 12.00 |" in text


def test_rounds_sort_by_number_and_must_be_named_as_rounds():
    """Leave one round out fits the earliest round and predicts the later: v10.0 comes after v5.1 (as
    text it sorts first, and the split would fit v10.0 to predict v4.1); a row without a vX.Y round
    cannot be placed, so the split says so instead of guessing."""
    from simulator.validate import _groups
    rounds = [SimpleNamespace(round=name, gpu="h200", model="llama2-70b") for name in ("v10.0", "v4.1", "v5.1")]
    assert _groups(rounds, "round") == {"v10.0": [2, 0]}      # v5.1 and v10.0 held out, v4.1 fitted
    with pytest.raises(ConfigError, match="round as vX.Y .* 1 rows have round 'banana'"):
        _groups(rounds + [SimpleNamespace(round="banana", gpu="h200", model="llama2-70b")], "round")


def test_breakdown_groups_held_out_errors_by_model_scenario_and_gpu():
    """Four held-out rows of one model and scenario, errors +10%, -20%, +30%, +40% (two GPUs: h200 holds
    +10% and -20%, b200 +30% and +40%): median signed error (10 + 30) / 2 = +20%, median |error| (20 + 30)
    / 2 = 25%; per GPU, h200 -5% and 15%, b200 +35% and 35%. The model and scenario group pools both GPUs'
    rows; only the GPU split is also grouped by GPU."""
    measured = row("h200", "llama3.1-8b", "v4.1", SHAPES[0])
    spec, tokens = RowSpec.of(measured), measured.output_tokens_per_s
    held = [HeldOut("gpu", gpu, measured, spec, tokens * (1 + e), 0.1)
            for gpu, e in (("h200", 0.1), ("h200", -0.2), ("b200", 0.3), ("b200", 0.4))]
    records = breakdown({"gpu": {"held_out": held}, "model": {"held_out": held[:1]}})
    by = {(r["split"], r["by"], r["group"]): r for r in records}
    whole = by[("gpu", "model and scenario", "llama3.1-8b closed")]
    assert whole["rows"] == 4
    assert whole["median_error_pct"] == pytest.approx(20) and whole["median_abs_error_pct"] == pytest.approx(25)
    assert by[("gpu", "held-out GPU", "h200")]["median_error_pct"] == pytest.approx(-5)
    assert by[("gpu", "held-out GPU", "h200")]["median_abs_error_pct"] == pytest.approx(15)
    assert by[("gpu", "held-out GPU", "b200")]["median_error_pct"] == pytest.approx(35)
    assert {k[:2] for k in by} == {("gpu", "model and scenario"), ("gpu", "held-out GPU"),
                                   ("model", "model and scenario")}
    assert summarise(held)["median_error_pct"] == pytest.approx(20)


def test_report_shows_where_the_errors_sit(results):
    text = markdown(results)
    assert "## Where the held-out errors sit" in text
    for r in breakdown(results):
        assert f"| {r['group']} | {r['rows']} |" in text


def test_cli_validate_takes_the_catalogs_calibrate_takes(tmp_path, capsys):
    """Rows naming a GPU and a model of the user's own catalogs validate as they calibrate; before, validate
    had no --catalog or --model-catalog and said the GPU was not in the catalog."""
    gpus = tmp_path / "gpus.toml"
    gpus.write_text('[mygpu]\ndisplay_name = "My GPU"\nvendor = "nvidia"\nfamily = "hopper"\nhbm_gb = 96\n'
                    'hbm_tb_per_s = 4\npeak_tflops = { bf16 = 989, fp8 = 1979 }\nscaleup = "nvswitch"\n'
                    'scaleup_gb_per_s = 900\ngpus_per_server = 8\nnic_gbps = 400\npower_w = 700\n'
                    'usd_per_gpu_hour = [2.0, 3.0]\n')
    models = tmp_path / "models.toml"
    models.write_text('[my8b]\nlayers = 32\nhidden = 4096\nheads = 32\nkv_heads = 8\nhead_dim = 128\nffn = 14336\n'
                      'vocab = 128256\n')
    rows = tmp_path / "rows.csv"
    rows.write_text("model,gpu,gpus,scenario,output_tokens_per_s,source,users,input_tokens,output_tokens,precision,tp\n"
                    "my8b,mygpu,1,closed,270,one user,1,128,256,fp8,1\n"
                    "my8b,mygpu,1,closed,24000,128 users,128,256,256,fp8,1\n"
                    "llama2-70b,mygpu,1,closed,270,one user,1,128,256,fp8,1\n")
    main(["validate", str(rows), "--split", "model", "--catalog", str(gpus), "--model-catalog", str(models),
          "--quiet"])
    assert "model" in capsys.readouterr().out
