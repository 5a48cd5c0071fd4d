"""Run files: --print-config then --config gives the same result, flags override the file, typos are
one-line errors naming file, table and key; grouped --help; registry-derived choices."""
import json
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from simulator import runfile
from simulator.cli import OUTPUT_ONLY, cli, main
from simulator.router import ROUTERS, Router

SIMULATE = ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "2", "--rate", "5", "--duration", "10",
            "--sla-ttft", "0.5", "--set", "topology.nic_gbps=200", "--input-tokens", "uniform:100,300"]
MLPERF = ["mlperf", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--queries", "300"]
SIZE = ["size", "--model", "llama3.1-8b", "--gpu", "b200", "--scenario", "offline", "--target-tokens-per-s", "40000",
        "--queries", "300", "--node-gpus", "1"]
WALL_TIME = ("wall_s",)


def invoke(*args, cwd=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr()


def without_wall_time(document):
    if isinstance(document, list):
        return [without_wall_time(d) for d in document]
    return {k: without_wall_time(v) if isinstance(v, dict) else v for k, v in document.items() if k not in WALL_TIME}


@pytest.mark.parametrize("args", [SIMULATE, MLPERF, SIZE], ids=["simulate", "mlperf", "size"])
def test_print_config_then_config_gives_the_same_json(tmp_path, args):
    direct = json.loads(invoke(*args, "--json"))
    assert direct["infersim_version"] == runfile.version()
    assert direct["config"]["command"] == args[0]
    run = tmp_path / "sub" / "run.toml"
    invoke(*args, "--print-config", run)
    assert tomllib.loads(run.read_text())["command"] == args[0]
    again = json.loads(invoke(args[0], "--config", run, "--json"))
    assert without_wall_time(again) == without_wall_time(direct)
    from_result = tmp_path / "result.json"
    from_result.write_text(json.dumps(direct))
    assert without_wall_time(json.loads(invoke(args[0], "--config", from_result, "--json"))) == without_wall_time(direct)


def test_print_config_to_stdout_is_the_embedded_config():
    text = invoke(*SIMULATE, "--print-config")
    document = json.loads(invoke(*SIMULATE, "--json"))
    assert tomllib.loads(text) == document["config"]
    assert document["config"]["sla"] == {"sla_ttft_s": 0.5}
    assert document["config"]["whatif"] == {"set_values": ["topology.nic_gbps=200"]}
    assert document["config"]["workload"]["input_tokens"] == "uniform:100,300"


def test_flags_override_the_file(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('command = "simulate"\n[cluster]\nmodel = "llama3.1-8b"\ngpu = "b200"\ngpus = 2\n'
                   '[plan]\nmax_batch_size = 64\n[workload]\nrate = 5.0\nduration_s = 10.0\nseed = 3\n')
    base = json.loads(invoke("simulate", "--config", run, "--json"))
    assert base["plan"]["max_batch_size"] == 64 and base["plan"]["gpus"] == 2
    over = json.loads(invoke("simulate", "--config", run, "--gpus", "1", "--max-batch-size", "32", "--json"))
    assert over["plan"]["gpus"] == 1 and over["plan"]["max_batch_size"] == 32
    assert over["config"]["cluster"]["gpus"] == 1 and over["config"]["workload"]["seed"] == 3
    assert over["requests_total"] == base["requests_total"]     # the file's workload and seed still apply


def test_relative_paths_follow_the_run_file(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "trace.csv").write_text("arrival_s,input_tokens,output_tokens\n0.0,100,20\n0.5,200,30\n")
    (data / "run.toml").write_text('[cluster]\nmodel = "llama3.1-8b"\ngpu = "b200"\ngpus = 1\n'
                                   '[workload]\ntrace = "trace.csv"\n')
    monkeypatch.chdir(tmp_path)
    document = json.loads(invoke("simulate", "--config", "data/run.toml", "--json"))
    assert document["requests_completed"] == 2
    assert document["config"]["workload"]["trace"] == str(data / "trace.csv")
    invoke("simulate", "--config", "data/run.toml", "--print-config", "elsewhere/copy.toml")
    assert tomllib.loads((tmp_path / "elsewhere" / "copy.toml").read_text())["workload"]["trace"] == "../data/trace.csv"
    assert json.loads(invoke("simulate", "--config", "elsewhere/copy.toml", "--json"))["requests_completed"] == 2


def test_a_length_may_be_a_number_as_in_a_sweep(tmp_path):
    """input_tokens = 128 is a fixed length, as a sweep point and the API take it (before: 'expected a
    string, got 128'); the written config gives it back as the length form."""
    run = tmp_path / "run.toml"
    run.write_text('[cluster]\nmodel = "llama3.1-8b"\ngpu = "b200"\ngpus = 1\n'
                   '[workload]\noffline = true\nrequests = 4\ninput_tokens = 128\noutput_tokens = 16\n')
    result = json.loads(invoke("simulate", "--config", run, "--json"))
    assert result["input_tokens_completed"] == 4 * 128 and result["output_tokens_completed"] == 4 * 16
    assert result["config"]["workload"]["input_tokens"] == "128"


@pytest.mark.parametrize("text, message", [
    ("[plan]\ntpp = 2\n", "run.toml: [plan] tpp: unknown key for simulate; [plan] takes tp, pp, ep,"),
    ("[cluster]\ntp = 2\n", "run.toml: [cluster] tp: belongs in [plan]"),
    ("[plans]\ntp = 2\n", "run.toml: [plans]: unknown table; allowed: command, [cluster], [plan]"),
    ("[plan]\ntp = 1.5\n", "run.toml: [plan] tp: expected a whole number, got 1.5"),
    ("[workload]\noffline = 1\n", "run.toml: [workload] offline: expected true or false, got 1"),
    ("[plan]\nrouter = 'nearest'\n", "run.toml: [plan] router: 'nearest' is not one of"),
    ("[plan]\nmax_batch_size = 0\n", "run.toml: [plan] max_batch_size: 0 is out of range [1, 65536]"),
    ("[whatif]\nfail = ['gpu:99@1']\n", "run.toml: [whatif] fail gpu:99: no such GPU"),
    ("[workload]\nqueries = 5\n", "run.toml: [workload] queries: unknown key for simulate"),
    ('command = "size"\n', "run.toml: command = 'size' is a run file of another command; this is simulate"),
    ("[plan\n", "run.toml: not valid TOML"),
])
def test_bad_run_files_are_one_line_errors(tmp_path, capsys, text, message):
    run = tmp_path / "run.toml"
    run.write_text(text)
    code, captured = run_main(["simulate", "--config", run, "--rate", "5", "--duration", "5"], capsys)
    assert code == 2 and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_a_json_without_config_is_refused(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text('{"output_tokens_per_s": 3}')
    code, captured = run_main(["simulate", "--config", path], capsys)
    assert code == 2 and 'a JSON result with a "config" table' in captured.err


def test_size_target_may_come_from_the_file(tmp_path, capsys):
    code, captured = run_main(["size", "--model", "llama3.1-8b", "--gpu", "b200"], capsys)
    assert code == 2 and "--target-tokens-per-s: required" in captured.err
    run = tmp_path / "run.toml"
    run.write_text('[sla]\ntarget_tokens_per_s = 40000.0\n[workload]\nscenario = "offline"\nqueries = 300\n'
                   '[cluster]\nmodel = "llama3.1-8b"\ngpu = "b200"\nnode_gpus = 1\n')
    assert json.loads(invoke("size", "--config", run, "--json"))["target_tokens_per_s"] == 40000


def test_toml_writer_round_trips_awkward_values():
    document = {"command": "simulate", "cluster": {"model": 'we"ird\\name\t\u00e9\x7f', "gpus": 3},
                "whatif": {"fail": ["gpu:1@2.5", "link:a-b@3"], "scaleout_gbps": 1e-7},
                "workload": {"offline": True, "max_time_s": float("inf")}}
    assert tomllib.loads(runfile.dumps(document, "a header\nof two lines")) == document


def test_every_option_of_a_run_file_command_is_a_field_of_its_type():
    import click
    kinds = {int: click.INT, float: click.FLOAT}
    for name in ("simulate", "mlperf", "size", "pareto"):
        for param in cli.commands[name].params:
            field = runfile.FIELDS.get(param.name)
            if field is None:
                assert param.name in (*OUTPUT_ONLY, "help"), param.name
            elif field.kind in kinds:
                assert param.type is kinds[field.kind], (name, param.name)
            assert field is None or param.multiple == field.multiple


def test_help_groups_options_under_headings():
    for name in ("simulate", "mlperf", "size", "pareto"):
        text = invoke(name, "--help")
        headings = [line for line in text.splitlines() if line.endswith(" options:")]
        expected = ["Cluster options:", "Plan options:", "Workload options:", "SLA options:",
                    *(["What-if options:"] if name != "pareto" else []), "Output options:", "Other options:"]
        assert headings == expected, (name, headings)
        sections = {}
        for line in text.splitlines():
            if line.endswith(" options:"):
                current = line
            elif line.strip().startswith("--"):
                sections.setdefault(current, []).append(line.split()[0])
        assert "--precision" in sections["Plan options:"] and "--gpu" in sections["Cluster options:"]
        assert "--config" in sections["Output options:"] and "--sla-ttft" in sections["SLA options:"]
        if name != "pareto":
            assert "--tp" in sections["Plan options:"] and "--fail" in sections["What-if options:"]
            assert "--duration" in sections["Workload options:"]
    assert "600 s" in invoke("simulate", "--help") and "600" in invoke("mlperf", "--help")


@pytest.fixture
def test_router():
    @ROUTERS.register
    class FirstAlive(Router):
        """The first live engine (registered from a test module)."""

        name = "first-alive-test"

        def choose(self, engines, rid):
            return next((i for i, e in enumerate(engines) if e.alive), None)

    yield FirstAlive
    ROUTERS._entries.pop("first-alive-test")


def test_a_router_registered_from_a_test_module_is_a_cli_choice(test_router):
    assert "first-alive-test" in invoke("simulate", "--help")
    document = json.loads(invoke("simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "2",
                                 "--router", "first-alive-test", "--rate", "5", "--duration", "5", "--json"))
    assert document["plan"]["router"] == "first-alive-test" and document["requests_completed"] > 0
    assert "first-alive-test" in invoke("catalog", "extensions")


@pytest.fixture
def test_policy():
    from simulator import admission
    from simulator.scheduling import BATCHING, DECODE, BatchingPolicy, StepPlan

    @BATCHING.register
    class DecodeFirst(BatchingPolicy):
        """Decode while anything runs; admit whole prompts only when the batch is empty (a test policy)."""

        name = "decode-first-test"

        def next_step(self, engine):
            if engine.batch.size:
                return DECODE
            chunks = admission.whole_prompts(engine, token_budget=engine.max_tokens_per_step)
            return StepPlan(chunks) if chunks else None

    yield DecodeFirst
    BATCHING._entries.pop("decode-first-test")


def test_a_batching_policy_registered_from_a_test_module_is_a_cli_choice(test_policy):
    """One class in one (test) module: it is a --batching choice, runs, and is listed by the catalog."""
    assert "decode-first-test" in invoke("simulate", "--help")
    document = json.loads(invoke("simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1",
                                 "--batching", "decode-first-test", "--rate", "5", "--duration", "5", "--json"))
    assert document["plan"]["batching"] == "decode-first-test" and document["requests_completed"] > 0
    assert document["requests_dropped"] == 0
    assert "decode-first-test" in invoke("catalog", "extensions")


def test_catalog_extensions_lists_every_registry():
    rows = json.loads(invoke("catalog", "extensions", "--json"))
    points = {row["extension_point"] for row in rows}
    assert points == {"batching policy", "router", "arrival process", "length distribution", "topology builder",
                      "import format", "launch emitter"}
    assert all(row["summary"] for row in rows)
    names = {(row["extension_point"], row["name"]) for row in rows}
    assert {("arrival process", "gamma"), ("length distribution", "lognormal"), ("topology builder", "nvl72"),
            ("import format", "inferencemax"), ("batching policy", "disaggregated"), ("launch emitter", "sglang")} <= names


def test_catalog_topology_names_what_fail_takes(capsys):
    document = json.loads(invoke("catalog", "topology", "--gpu", "b200", "--gpus", "16", "--json"))
    links = [row["fail_as"] for row in document["links"]]
    assert "link:gpu0-nic0@T" in links and "gpu:15@T" in [row["fail_as"] for row in document["nodes"]]
    # a name the listing gives is one --fail accepts
    result = json.loads(invoke("simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "16", "--rate", "5",
                               "--duration", "5", "--fail", "link:gpu0-nvswitch0@1", "--json"))
    assert result["requests_completed"] > 0
    assert np.isfinite(result["output_tokens_per_s"])
    # a 2-GPU cluster on an 8-GPU server: the other six slots are idle, and no failure names them (or their
    # links), as --fail refuses them (before: gpu:5@T was listed, then refused)
    small = json.loads(invoke("catalog", "topology", "--gpu", "b200", "--gpus", "2", "--json"))
    named = [row["fail_as"] for row in small["nodes"] + small["links"] if row["fail_as"]]
    assert named and all("gpu2" not in f and "gpu:2@" not in f and "gpu7" not in f for f in named)
    assert sum(row["kind"] == "gpu (idle slot)" for row in small["nodes"]) == 6


def test_a_result_rerun_with_config_does_not_overwrite_itself(tmp_path, monkeypatch, capsys):
    """A JSON result records the --out it was written to; re-run from it, that file is the one --config
    reads. Before, the re-run replaced it silently; now it prints and says so."""
    monkeypatch.chdir(tmp_path)
    run = ["simulate", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "1", "--rate", "2", "--requests", "5"]
    main(run + ["--out", "a.json"])
    before = (tmp_path / "a.json").read_bytes()
    main(["simulate", "--config", "a.json", "--gpus", "2"])
    assert "a.json: [output] out: not written over (it is the file --config reads)" in capsys.readouterr().err
    assert (tmp_path / "a.json").read_bytes() == before


def test_a_workload_way_given_beside_config_replaces_the_files(tmp_path, monkeypatch, capsys):
    """A run file of a rate-driven run, re-run with --offline (or --users): the flag wins, as beside
    --config every flag does. Before, the file's rate and the flag clashed ('give one of ...')."""
    monkeypatch.chdir(tmp_path)
    main(["simulate", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "1", "--rate", "5", "--duration", "4",
          "--out", "rate.json"])
    capsys.readouterr()
    main(["simulate", "--config", "rate.json", "--offline", "--requests", "6", "--out", "offline.json", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["requests_total"] == 6 and document["workload"]["arrival"]["kind"] == "offline"
    assert runfile.replaced_by_flags({"users", "requests"}) == {"rate", "arrival", "cv", "duration_s", "offline",
                                                                 "trace", "workload"}
    assert runfile.replaced_by_flags({"gpus"}) == set()
