"""The MLPerf results importer on real MLCommons files (unchanged copies in tests/data/mlperf, and the
whole v4.1/v5.1 set in ../shared/data when it is there): rows checked by hand against their summary
files, a multi-node system, aliases, unknown names reported with counts."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.errors import ConfigError
from simulator.hardware import alias_key, get_gpu, gpu_by_alias, load_gpus
from simulator.mlperf_results import import_mlperf, parse_log_summary, stack_of

DATA = Path(__file__).parent.parent / "data" / "mlperf"
SHARED = Path(__file__).parents[3] / "shared" / "data" / "mlperf-inference"
H200_OFFLINE = "v4.1/closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/Offline/performance/run_1/mlperf_log_summary.txt"


def rows_by_source(report):
    return {row.source: row for row in report.rows}


def test_one_row_checked_by_hand_against_its_summary():
    """H200-SXM-141GBx8_TRT, llama2-70b-99 Offline (v4.1): the summary says 'Samples per second:
    107.477', 'Tokens per second: 31302.7', VALID; systems/H200-SXM-141GBx8_TRT.json: 8 x 'NVIDIA
    H200-SXM-141GB' on 1 node, 'TensorRT 10.2.0, CUDA 12.4', hw_notes 'H200 TGP 700W'. So: 8 h200, 1
    node, 31,302.7 tokens/s, 31302.7 / 107.477 = 291.25 tokens per sample, TensorRT-LLM, fp8 (v4.1 files
    give no weight type: what the GPU's submitters run), 700 W. Every Offline sample is issued at t = 0,
    so the run lasted its 'Max latency (ns): 2743947981334' and issued 107.477 x 2,743.948 = 294,911
    queries (12 datasets of 24,576 = 294,912, to the summary's six digits; not samples_per_query,
    274,560)."""
    row = rows_by_source(import_mlperf([DATA]))[H200_OFFLINE]
    assert (row.model, row.benchmark, row.gpu, row.gpus, row.nodes, row.scenario) == \
        ("llama2-70b", "llama2-70b", "h200", 8, 1, "offline")
    assert row.output_tokens_per_s == 31302.7 and row.output_tokens == pytest.approx(291.25, abs=0.06)
    assert (row.stack, row.precision, row.gpu_power_w, row.valid) == ("tensorrt-llm", "fp8", 700, True)
    assert (row.round, row.division, row.submitter, row.system) == ("v4.1", "closed", "NVIDIA", "H200-SXM-141GBx8_TRT")
    assert row.queries == 294_911


def test_server_row_carries_latencies_and_limits():
    """The Server summary: p99 first token 452,744,202 ns, p99 time to output token 146,040,006 ns, limits
    ttft_latency 2e9 ns and tpot_latency 2e8 ns. LoadGen issued queries for 'min_duration (ms): 2400000'
    (its 'min_query_count : 100' at 'Scheduled samples per second : 101.25' takes 1 s): 2,400 s."""
    row = rows_by_source(import_mlperf([DATA]))[H200_OFFLINE.replace("Offline", "Server")]
    assert (row.ttft_p99_s, row.tpot_p99_s) == (pytest.approx(0.452744202), pytest.approx(0.146040006))
    assert (row.ttft_limit_s, row.tpot_limit_s) == (2.0, 0.2)
    assert row.output_tokens_per_s == 29228.22
    assert row.duration_s == 2400.0 and row.queries is None


def test_a_server_run_lasts_until_its_min_query_count_is_issued():
    """GB200-NVL72 x72 DeepSeek-R1 Server (v5.1): min_duration 600,000 ms, but min_query_count 210,624 at
    45.06 scheduled samples per second takes 210,624 / 45.06 = 4,674.3 s, and LoadGen issues until both
    are met."""
    row = next(r for r in import_mlperf([DATA]).rows
               if r.system == "GB200-NVL72_GB200-186GB_aarch64x72_TRT" and r.scenario == "server")
    assert row.duration_s == 4674.3


def test_multi_node_system_and_summary_json_merge():
    """GB200-NVL72 x72: 4 accelerators per node x 18 nodes = 72 GPUs; summary_results.json adds the fp4
    weights and tokens per sample for the same result."""
    rows = [r for r in import_mlperf([DATA]).rows if r.system == "GB200-NVL72_GB200-186GB_aarch64x72_TRT"
            and r.model == "deepseek-r1" and r.scenario == "server"]
    assert len(rows) == 1
    row = rows[0]
    assert (row.gpu, row.gpus, row.nodes, row.precision) == ("gb200", 72, 18, "fp4")
    assert row.output_tokens_per_s == 167578.06 and row.output_tokens == pytest.approx(3716.7, abs=0.1)
    assert row.source.endswith("deepseek-r1/Server/performance/run_1/mlperf_log_summary.txt")


def test_power_and_aliases():
    """'NVIDIA H200-SXM-141GB-CTS' maps to the h200-cts entry (run at 1,000 W TGP); every alias of the
    catalog maps back to its GPU, whatever the case and spacing."""
    row = [r for r in import_mlperf([DATA]).rows if r.system == "H200-SXM-141GB-CTSx1_TRT"][0]
    assert (row.gpu, row.gpus, row.gpu_power_w) == ("h200-cts", 1, 1000)
    table = gpu_by_alias(load_gpus())
    assert table[alias_key("AMD  Instinct MI325X 256GB HBM3e")] == "mi325x"
    assert table[alias_key("nvidia b200-sxm-180gb")] == "b200"
    for gpu in load_gpus().values():
        for alias in gpu.aliases:
            assert table[alias_key(alias)] == gpu.name
    assert get_gpu("gb300").family == get_gpu("b300").family == "blackwell-ultra"


def test_unknown_names_are_counted_not_dropped_silently():
    report = import_mlperf([DATA / "v4.1"])
    line = report.summary_line()
    assert "unknown accelerator 'NVIDIA L40S' x1" in line
    assert "the same run filed under a second accuracy target x1" in line    # the -99.9 copy of H200 Offline
    assert report.skipped["unknown accelerator 'NVIDIA L40S'"] == 1
    assert len(report.rows) == 3          # H200 x8 Offline and Server, H200-CTS x1 Offline
    with pytest.raises(ConfigError, match="`strict`: .*unknown accelerator 'NVIDIA L40S'"):
        import_mlperf([DATA / "v4.1"], strict=True)


def test_summary_json_only_results_map_open_division_models():
    """Results present only in summary_results.json still import; an open-division run of Llama 3.1 70B on
    the Llama 2 70B benchmark keeps the benchmark's dataset and serves its own model; pruned models do
    not map."""
    report = import_mlperf([DATA / "v5.1" / "summary_results.json"])
    krai = [r for r in report.rows if r.submitter == "Krai" and r.system == "xd670_h200_x8_vllm_092"]
    assert krai and all((r.model, r.benchmark, r.stack) == ("llama3.1-70b", "llama2-70b", "vllm") for r in krai)
    assert report.skipped["modified model 'llama3_1-405b_pruned' (open division)"] == 1


def test_log_summary_parser_on_bad_text():
    assert parse_log_summary("not a log")["tokens_per_s"] is None
    with pytest.raises(ConfigError, match="file not found"):
        import_mlperf([DATA / "nosuch"])


@pytest.mark.parametrize("framework, stack", [("TensorRT 10.2.0, CUDA 12.4", "tensorrt-llm"),
                                              ("vLLM 0.9.0, ROCm 6.4", "vllm"), ("MAX 25.4", "max"),
                                              ("8", "unknown"), ("-", "unknown"), ("", "unknown")])
def test_a_framework_string_names_its_stack_or_none(framework, stack):
    assert stack_of(framework) == stack


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/mlperf-inference is not here")
def test_the_whole_published_set():
    report = import_mlperf([SHARED])
    assert len(report.rows) == 362
    assert sum(r.round == "v4.1" for r in report.rows) == 92
    assert {r.gpu for r in report.rows} >= {"h100", "h200", "b200", "gb200", "gb300", "mi300x", "mi325x", "mi355x"}
    assert not [r for r in report.rows if r.round.startswith("v6")]


def test_cli_strict_names_the_unknown_accelerator():
    done = subprocess.run([sys.executable, "-m", "simulator", "import-runs", "--format", "mlperf", str(DATA),
                           "--strict"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown accelerator 'NVIDIA L40S'" in done.stderr
    assert "Traceback" not in done.stderr


def _h200_tree(tmp_path, summary_edit=None, system_edit=None, scenario_folder="Offline", log_of="Offline"):
    """A copy of the H200 x8 Offline (or `log_of`) result (log and system file), edited: the importer's
    input from a submitter's tree, with one thing wrong."""
    import json
    system = "v4.1/closed/NVIDIA/systems/H200-SXM-141GBx8_TRT.json"
    log = tmp_path / H200_OFFLINE.replace("/Offline/", f"/{scenario_folder}/")
    log.parent.mkdir(parents=True)
    (tmp_path / system).parent.mkdir(parents=True)
    text = (DATA / H200_OFFLINE.replace("/Offline/", f"/{log_of}/")).read_text()
    log.write_text(summary_edit(text) if summary_edit else text)
    description = json.loads((DATA / system).read_text())
    (tmp_path / system).write_text(json.dumps(system_edit(description) if system_edit else description))
    return tmp_path


def test_log_numbers_parse_as_loadgen_writes_them_or_are_refused_by_line(tmp_path):
    """'Tokens per second: 2.2e+04' is 22,000 (not 2.2, what a digits-and-dots pattern reads); a value
    that is not a number ('22,020.92', '.') is an error quoting the line, never a traceback or 22."""
    sci = _h200_tree(tmp_path / "sci", lambda t: t.replace("Tokens per second: 31302.7", "Tokens per second: 2.2e+04"))
    assert import_mlperf([sci]).rows[0].output_tokens_per_s == 22000.0
    for bad in ("22,020.92", ".", "31_302.7"):      # Python's float() reads '31_302.7'; LoadGen never writes it
        tree = _h200_tree(tmp_path / bad.replace(".", "dot"),
                          lambda t: t.replace("Tokens per second: 31302.7", f"Tokens per second: {bad}"))
        with pytest.raises(ConfigError, match=f"mlperf_log_summary.txt: the line 'Tokens per second: {bad}' needs"):
            import_mlperf([tree])
    # the figure given twice with different values: which one was scored is not for the importer to guess
    twice = _h200_tree(tmp_path / "twice", lambda t: t + "Tokens per second: 40000\n")
    with pytest.raises(ConfigError, match="2 lines give 'Tokens per second', with different values"):
        import_mlperf([twice])


def test_suspect_results_are_counted_with_their_reason(tmp_path):
    """A log whose scenario is not its folder's, a log with no 'Result is' line, a fractional accelerator
    count: each is counted under its reason, not imported with a guess (a run filed as Offline with a
    Server log would fit the wrong scenario; 8.7 GPUs is no system)."""
    cases = {"mismatch": dict(scenario_folder="Server"),
             "no_result": dict(summary_edit=lambda t: t.replace("Result is : VALID", "")),
             # an empty value is not read from the next line ("Min")
             "empty_result": dict(summary_edit=lambda t: t.replace("Result is : VALID", "Result is :")),
             "fraction": dict(system_edit=lambda d: {**d, "accelerators_per_node": 8.7}),
             "infinite": dict(system_edit=lambda d: {**d, "number_of_nodes": float("inf")})}
    reasons = {}
    for name, edits in cases.items():
        report = import_mlperf([_h200_tree(tmp_path / name, **edits)])
        assert not report.rows
        reasons[name] = set(report.skipped)
    assert reasons == {"mismatch": {"log's scenario 'Offline' differs from its folder's ('Server')"},
                       "no_result": {"mlperf_log_summary.txt: 'Result is' missing (validity unknown)"},
                       "empty_result": {"mlperf_log_summary.txt: 'Result is' missing (validity unknown)"},
                       "fraction": {"accelerators per node 8.7 x nodes 1: not whole numbers >= 1"},
                       "infinite": {"accelerators per node 8 x nodes inf: not whole numbers >= 1"}}


def test_hostile_files_are_one_line_errors(tmp_path):
    """Found by a hostile sweep, each a traceback before: a sample rate so large that the Offline query
    count overflows, a summary entry whose UsedModel is a number, a FIFO named like a log (it was read
    and blocked), a log path that does not exist (it was 'outside a results/ folder')."""
    huge = _h200_tree(tmp_path / "huge", lambda t: t.replace("Samples per second: 107.477", "Samples per second: 1e308"))
    with pytest.raises(ConfigError, match="out of range"):
        import_mlperf([huge])
    summary = tmp_path / "v5.1" / "summary_results.json"
    summary.parent.mkdir()
    summary.write_text('[{"ID": "5.1-0001", "Model": "llama2-70b-99", "UsedModel": 5}]')
    with pytest.raises(ConfigError, match="result '5.1-0001': UsedModel must be a string, not the int '5'"):
        import_mlperf([summary])
    fifo = _h200_tree(tmp_path / "fifo")
    log = next(fifo.rglob("mlperf_log_summary.txt"))
    log.unlink()
    os.mkfifo(log)
    with pytest.raises(ConfigError, match="no MLPerf results found"):
        import_mlperf([fifo])
    with pytest.raises(ConfigError, match="not a regular file"):
        import_mlperf([log])
    with pytest.raises(ConfigError, match="file not found"):
        import_mlperf([tmp_path / "nosuch" / "mlperf_log_summary.txt"])


def test_system_file_fields_of_the_wrong_type_name_the_key(tmp_path):
    tree = _h200_tree(tmp_path, system_edit=lambda d: {**d, "framework": 5})
    with pytest.raises(ConfigError, match=r"H200-SXM-141GBx8_TRT.json: framework must be a string, not 5"):
        import_mlperf([tree])


def test_an_input_without_results_is_an_error_and_unknown_weight_types_are_counted(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no MLPerf results found"):
        import_mlperf([tmp_path / "empty"])
    import json
    entries = json.loads((DATA / "v5.1" / "summary_results.json").read_text())
    entry = next(e for e in entries if e.get("weight_data_types") == "fp4" and e.get("Accelerator", "").startswith("NVIDIA B200"))
    (tmp_path / "v5.1").mkdir()
    (tmp_path / "v5.1" / "summary_results.json").write_text(json.dumps([{**entry, "weight_data_types": "int2"}]))
    report = import_mlperf([tmp_path / "v5.1" / "summary_results.json"])
    assert not report.rows and report.skipped == {"unknown weight data type 'int2' (known: fp4, mxfp4, nvfp4, fp6, "
                                                  "mxfp6, fp8, bf16, fp16)": 1}


def test_cli_out_may_not_overwrite_an_input(tmp_path):
    tree = _h200_tree(tmp_path)
    system = tree / "v4.1/closed/NVIDIA/systems/H200-SXM-141GBx8_TRT.json"
    before = system.read_text()
    done = subprocess.run([sys.executable, "-m", "simulator", "import-runs", "--format", "mlperf", str(tree),
                           "--out", str(system)], capture_output=True, text=True)
    assert done.returncode == 2 and "would overwrite the input" in done.stderr
    assert system.read_text() == before


def test_the_row_script_refuses_a_folder_of_held_out_rounds_only(tmp_path, monkeypatch, capsys):
    """scripts/import_mlperf_rows.py keeps v4.1 and v5.1 only: a folder holding nothing but a later
    (held-out) round is refused with exit 2, and the rows file is not written."""
    spec = importlib.util.spec_from_file_location("import_mlperf_rows", Path(__file__).parents[2] / "scripts" /
                                                  "import_mlperf_rows.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "mlperf.csv"
    monkeypatch.setattr(script, "OUT", out)
    shutil.copytree(DATA / "v5.1", tmp_path / "data" / "v6.0")
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(tmp_path / "data")])
    assert exit_info.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "no v4.1 or v5.1 rows" in err and "held-out rounds left out" in err and err.count("\n") == 1


def test_a_folder_given_twice_is_read_once():
    once, twice = import_mlperf([DATA]), import_mlperf([DATA, DATA / "v4.1" / ".." / "v4.1", DATA])
    assert twice.rows == once.rows and twice.skipped == once.skipped


SERVER_LOG_LINES = (DATA / H200_OFFLINE.replace("/Offline/", "/Server/")).read_text().splitlines(keepends=True)


@pytest.mark.parametrize("scenario, edit, reason", [
    ("Offline", lambda t: t.replace("Result is : VALID", "Result is : MAYBE"),
     "'Result is' is 'MAYBE', not VALID or INVALID"),
    ("Offline", lambda t: t.replace("Samples per second: 107.477", "Samples per second: 0"),
     "'Samples per second' missing or 0"),
    ("Offline", lambda t: t.replace("Max latency (ns)                : 2743947981334", "Max latency (ns) : 0"),
     "'Max latency (ns)' missing or 0"),
    ("Server", lambda t: t.replace("Scheduled samples per second : 101.25", "Scheduled samples per second : 0"),
     "'Scheduled samples per second' missing or 0"),
    ("Server", lambda t: t.replace("Scheduled samples per second : 101.25", ""),
     "'Scheduled samples per second' missing or 0"),
    ("Server", lambda t: "".join(SERVER_LOG_LINES[:9]), "'Scheduled samples per second' missing or 0"),
    ("Server", lambda t: t.replace("min_query_count : 100", ""), "'min_query_count' missing"),
    ("Server", lambda t: t.replace("tpot_latency (ns): 200000000", "tpot_latency (ns): 0"),
     "'tpot_latency (ns)' is 0"),
])
def test_a_summary_without_the_figures_of_its_row_is_counted_naming_the_line(tmp_path, scenario, edit, reason):
    """Found by a hostile sweep: each of these was imported with the figure left blank (or 'MAYBE' read as
    INVALID). A row's throughput, validity, tokens per sample (samples/s) and how long the run lasted (an
    Offline run's longest latency, a Server run's scheduled rate, min_duration and min_query_count) come
    from its summary: without them there is no row, and the reason names the line; `strict` refuses it."""
    tree = _h200_tree(tmp_path, edit, scenario_folder=scenario, log_of=scenario)
    report = import_mlperf([tree])
    assert not report.rows and report.skipped == {f"mlperf_log_summary.txt: {reason}": 1}
    assert f"0 rows imported; not imported: mlperf_log_summary.txt: {reason} x1" == report.summary_line()
    with pytest.raises(ConfigError, match="`strict`: .*" + re.escape(reason)):
        import_mlperf([tree], strict=True)


def test_a_server_summary_without_latency_percentiles_still_makes_a_row(tmp_path):
    """The p99 latencies and their limits are copied when a summary gives them; a row does without them."""
    drop = ("99.00 percentile first token latency", "99.00 percentile time to output token", "ttft_latency",
            "tpot_latency")
    tree = _h200_tree(tmp_path, lambda t: "".join(line for line in SERVER_LOG_LINES if not line.startswith(drop)),
                      scenario_folder="Server", log_of="Server")
    report = import_mlperf([tree])
    (row,) = report.rows
    assert (row.ttft_p99_s, row.tpot_p99_s, row.ttft_limit_s, row.tpot_limit_s) == (None, None, None, None)
    assert row.duration_s == 2400.0 and not report.skipped


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/mlperf-inference is not here")
def test_every_published_summary_has_the_figures_of_its_row():
    """The figures a row needs are in every v4.1 and v5.1 summary: requiring them loses no published row."""
    from simulator.mlperf_results import log_problem
    for log in SHARED.rglob("mlperf_log_summary.txt"):
        kind = log.parts[-4].lower()
        assert log_problem(parse_log_summary(log.read_text(), str(log)), kind) is None, log


def test_a_tokens_per_sample_of_0_is_counted_not_left_blank(tmp_path):
    """summary_results.json 'TOKENS_PER_SAMPLE: 0' made a row with no output tokens; a result needs more
    than 0 tokens per sample."""
    import json
    entries = json.loads((DATA / "v5.1" / "summary_results.json").read_text())
    entry = next(e for e in entries if e.get("weight_data_types") == "fp4" and e.get("Accelerator", "").startswith("NVIDIA B200"))
    (tmp_path / "v5.1").mkdir()
    accuracy = re.sub(r"TOKENS_PER_SAMPLE: \S+", "TOKENS_PER_SAMPLE: 0", entry["Accuracy"])
    (tmp_path / "v5.1" / "summary_results.json").write_text(json.dumps([{**entry, "Accuracy": accuracy}]))
    report = import_mlperf([tmp_path / "v5.1" / "summary_results.json"])
    assert not report.rows and report.skipped == {"summary_results.json: 'TOKENS_PER_SAMPLE' is 0": 1}


def test_a_tree_under_folders_named_results_or_like_a_round_imports(tmp_path):
    """A copy kept under .../v3.0/results/ imported nothing ('missing systems/SYSTEM.json': the first
    `results` in the path was taken for the submission's) and would have been filed as round v3.0: the
    submission's `results` is the one followed by SYSTEM/BENCHMARK/SCENARIO/performance/run_1."""
    _h200_tree(tmp_path / "v3.0" / "results")
    report = import_mlperf([tmp_path])
    (row,) = report.rows
    assert (row.round, row.division, row.submitter, row.system) == ("v4.1", "closed", "NVIDIA", "H200-SXM-141GBx8_TRT")
    assert row.source == f"v3.0/results/{H200_OFFLINE}"


def test_an_entry_given_twice_is_reported_as_a_duplicate(tmp_path):
    """The same summary_results.json entry twice was reported as 'the same run filed under a second
    accuracy target'; it is a duplicate, and is named so."""
    import json
    entries = json.loads((DATA / "v5.1" / "summary_results.json").read_text())
    entry = next(e for e in entries if e.get("weight_data_types") == "fp4" and e.get("Accelerator", "").startswith("NVIDIA B200"))
    (tmp_path / "v5.1").mkdir()
    (tmp_path / "v5.1" / "summary_results.json").write_text(json.dumps([entry, dict(reversed(entry.items()))]))
    report = import_mlperf([tmp_path / "v5.1" / "summary_results.json"])
    assert len(report.rows) == 1
    assert report.skipped == {"summary_results.json: duplicate entry (the same result given twice)": 1}


def test_cli_importing_nothing_is_an_error_and_writes_no_file(tmp_path):
    """A log named on its own (outside a submission tree) imported 0 rows with exit status 0, and --out
    wrote a header-only CSV; an empty folder was already exit 2. Nothing imported is one line saying why."""
    loose = tmp_path / "loose" / "mlperf_log_summary.txt"
    loose.parent.mkdir()
    shutil.copy(DATA / H200_OFFLINE, loose)
    out = tmp_path / "rows.csv"
    done = subprocess.run([sys.executable, "-m", "simulator", "import-runs", "--format", "mlperf", str(loose),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and not out.exists() and not list(tmp_path.glob(".rows.csv*"))
    assert done.stderr == f"infersim: error: {loose}: 0 rows imported; not imported: log outside a results/ folder x1\n"
    assert done.stdout == ""
