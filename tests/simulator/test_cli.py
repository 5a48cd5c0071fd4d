import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from simulator.cli import cli, main

KEYS = ("output_tokens_per_s", "requests_completed", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
        "usd_per_million_tokens", "plan")


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, capsys.readouterr()


def test_simulate_json_end_to_end():
    result = invoke("simulate", "--model", "llama2-70b", "--gpu", "mi355x", "--gpus", "8", "--tp", "1",
                    "--rate", "20", "--duration", "20", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    for key in KEYS:
        assert key in document
    assert document["output_tokens_per_s"] > 0 and document["ttft_p99_s"] > 0 and document["tpot_p50_s"] > 0
    assert document["requests_completed"] > 300
    assert document["plan"]["replicas"] == 8


def test_same_seed_same_output_and_different_seed_differs():
    args = ("simulate", "--rate", "30", "--duration", "10", "--json", "--seed", "4")
    assert invoke(*args).output == invoke(*args).output
    assert invoke(*args[:-1], "5").output != invoke(*args).output


def test_offline_requests_and_outputs(tmp_path):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    result = invoke("simulate", "--offline", "--requests", "200", "--gpus", "2", "--json", "--out", str(out_json))
    assert json.loads(result.output)["requests_completed"] == 200
    assert json.loads(out_json.read_text())["requests_completed"] == 200
    invoke("simulate", "--offline", "--requests", "50", "--gpus", "1", "--out", str(out_csv))
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("request,arrival_s") and len(lines) == 51


@pytest.mark.parametrize("args, message", [
    (("simulate", "--gpu", "a100", "--rate", "3", "--duration", "3"), "unknown GPU 'a100'"),
    (("simulate", "--model", "llama9", "--rate", "3", "--duration", "3"), "unknown model 'llama9'"),
    (("simulate", "--rate", "-3", "--duration", "3"), "--rate: -3.0 is out of range"),
    (("simulate", "--model", "llama3.1-405b", "--gpu", "h100", "--rate", "3", "--duration", "3"), "does not fit"),
    (("simulate", "--tp", "16", "--gpus", "8", "--rate", "3", "--duration", "3"), "cannot hold one replica"),
    (("simulate", "--rate", "3"), "--duration: needed"),
    (("simulate", "--rate", "3", "--duration", "3", "--topology", "torus"), "unknown topology 'torus'"),
    (("simulate", "--rate", "3", "--duration", "3", "--scaleout-gbps", "0"), "--scaleout-gbps: 0.0 is out of range"),
    (("simulate", "--rate", "3", "--duration", "3", "--scaleout-gbps", "1e-6"),
     "--scaleout-gbps: 1e-06 is out of range [0.1, 1e+06]"),
    (("simulate", "--rate", "3", "--duration", "3", "--oversubscription", "0.5"), "--oversubscription: 0.5 is out of range"),
    (("simulate", "--rate", "3", "--duration", "3", "--set", "gpu.hbm_tb_per_s"), "is not KEY=VALUE"),
    (("simulate", "--rate", "3", "--duration", "3", "--fail", "gpu:x@3"), "must be a whole number"),
    (("simulate", "--rate", "3", "--duration", "3", "--fail", "gpu:99@1"), "no such GPU"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    code, captured = run_main(args, capsys)
    assert code == 2
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("args", [(), ("catalog",)])
def test_a_group_alone_prints_its_help_and_exits_0(capsys, args):
    """`infersim` or `infersim catalog` with no command is a request for help, not bad input: the help as
    click formats it, on stdout (it was squashed into one 'error' line, exit 2)."""
    code, captured = run_main(args, capsys)
    assert code == 0 and captured.err == ""
    assert captured.out.startswith("Usage: infersim") and "Commands:" in captured.out


def test_an_unknown_catalog_key_lists_only_keys_a_user_may_write(tmp_path, capsys):
    """The catalog reader's own bookkeeping key (which file an entry came from) is not offered as allowed."""
    extra = tmp_path / "gpus.toml"
    extra.write_text('[xg]\nbogus_key = 1\n')
    code, captured = run_main(("simulate", "--catalog", str(extra), "--gpu", "xg", "--rate", "3", "--duration", "3"),
                              capsys)
    assert code == 2 and "unknown key 'bogus_key'; allowed: aliases," in captured.err
    assert "_file" not in captured.err


def test_catalog_commands():
    for what in ("gpus", "models", "scenarios", "topologies"):
        result = invoke("catalog", what, "--json")
        assert result.exit_code == 0
        assert len(json.loads(result.output)) >= 7
    assert "mi355x" in invoke("catalog", "gpus").output


def test_console_script_installed():
    completed = subprocess.run([sys.executable, "-m", "simulator", "catalog", "gpus"], capture_output=True, text=True)
    assert completed.returncode == 0 and "b300" in completed.stdout


def test_a_library_warning_is_one_line_like_infersims_own(tmp_path):
    """matplotlib warns of a glyph its font lacks with the file, line and source line; the CLI prints any
    warning as one 'infersim: warning:' line."""
    results = tmp_path / "rows.csv"
    results.write_text("x,y\n1,2\n2,3\n")
    done = subprocess.run([sys.executable, "-m", "simulator", "plot", str(results), "--x", "x", "--y", "y",
                           "--title", "\U0001F680", "-o", str(tmp_path / "p.png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("infersim: warning: UserWarning: Glyph") for line in lines), lines
