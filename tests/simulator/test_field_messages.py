"""The core speaks of fields, only cli.py of --flags: a core message names a field as the Python API spells
it, in backticks ("`gpus`: 0 is out of range"), and `simulator.cli.flag_message` says it with the flag
("--gpus: 0 is out of range") wherever the CLI prints or writes a core message about its own options. A
sweep's rows keep the field: its file sets fields, not flags."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from simulator.api import serving_config
from simulator.cli import FIELD_FLAGS, derived_flags, field_flags, flag_message, flag_values, main
from simulator.errors import ConfigError
from simulator.plan import PLAN_LIMITS
from simulator.sweep import read_rows

ROOT = Path(__file__).resolve().parents[2]
CORE = ("simulator", "topologies", "workloads")
# cli.py speaks of flags; the launch emitters write other tools' command lines, flags and all
FLAGS_ALLOWED = {"simulator/cli.py", "simulator/launch/vllm.py", "simulator/launch/sglang.py",
                 "simulator/launch/trtllm.py"}
# an infersim command line quoted as prose (an HTML page's hint), not a message
QUOTED_COMMANDS = {("simulator/report.py", "infersim pareto --out x.json")}
# backticked names in core literals that are no field a message names, so no flag is wanted
NOT_FLAGS = {"name": "registry.py: a TypeError for extension authors, never a CLI message",
             "unseen_model_log_sigma": "validate.py: a profile key in the validation report's prose",
             "unseen_run_log_sigma": "validate.py: a profile key in the validation report's prose"}
BACKTICKED = re.compile(r"`([a-z][a-z0-9_]*)`")


def core_literals():
    """(path, line, text) of every string literal in the core except docstrings."""
    for package in CORE:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and node.body and isinstance(node.body[0], ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    yield name, node.lineno, node.value


@pytest.mark.parametrize("core, cli", [
    ("`gpus`: 0 is out of range [1, 100000]", "--gpus: 0 is out of range [1, 100000]"),
    ("`kv_transfer_gb_per_s`: only meaningful with `batching` disaggregated",
     "--kv-transfer-gb-per-s: only meaningful with --batching disaggregated"),
    ("`set_values` gpu.hbm_tb_per_s: 'x' is not a number", "--set gpu.hbm_tb_per_s: 'x' is not a number"),
    ("does not fit: ...; raise `tp`/`pp` or use narrower weights", "does not fit: ...; raise --tp/--pp or use narrower weights"),
    ("`engine` vllm: static batching", "--emit vllm: static batching"),
    ("the profile has no `unseen_model_log_sigma`", "the profile has no unseen_model_log_sigma"),
    ("tp=3 stays, --tp stays, `Not A Field` stays", "tp=3 stays, --tp stays, `Not A Field` stays"),
])
def test_flag_message_names_flags(core, cli):
    assert flag_message(core) == cli


def test_result_documents_name_flags_in_every_text():
    document = {"search": {"h100": {"plans_rejected": ["tp1: raise `tp`/`pp`"], "modes": 1}}, "kept": ("`seed`",)}
    assert flag_values(document) == {"search": {"h100": {"plans_rejected": ["tp1: raise --tp/--pp"], "modes": 1}},
                                     "kept": ("--seed",)}


def test_api_callers_read_fields_and_the_cli_reads_flags(capsys):
    with pytest.raises(ConfigError, match=r"^`gpus`: 0 is out of range \[1, 100000\]$"):
        serving_config(gpus=0)
    with pytest.raises(SystemExit):
        main(["simulate", "--gpus", "0"])
    assert capsys.readouterr().err == "infersim: error: --gpus: 0 is out of range [1, 100000]\n"


def test_a_sweep_names_the_fields_its_file_names(tmp_path, capsys):
    """A sweep file sets the Python API's fields (`gpus = [0]`), so its rows' errors, and the CLI's line
    quoting the first of them, name the field as the file does, not the --flag the user never typed."""
    spec = tmp_path / "sweep.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\noffline = true\nrequests = 5\n'
                    '[grid]\ngpus = [0]\n')
    with pytest.raises(SystemExit):
        main(["sweep", str(spec), "--out", str(tmp_path / "rows.csv"), "--quiet"])
    assert read_rows(tmp_path / "rows.csv")[0]["error"] == "ConfigError: `gpus`: 0 is out of range [1, 100000]"
    assert capsys.readouterr().err.endswith("the first: gpus: 0 is out of range [1, 100000]\n")


def test_the_core_names_no_flags():
    """Rule kept: no core string but a docstring (or another tool's command line) names a --flag."""
    found = [f"{name}:{line}: {text!r}" for name, line, text in core_literals()
             if name not in FLAGS_ALLOWED and (re.search(r"--[a-z]", text) or text == "--")
             and not any(name == where and quote in text for where, quote in QUOTED_COMMANDS)]
    assert not found, "name the field in backticks (`gpus`), not its flag:\n" + "\n".join(found)


def test_every_backticked_field_has_a_flag():
    names = {name for path, _, text in core_literals() if path != "simulator/cli.py"
             for name in BACKTICKED.findall(text)}
    names |= set(PLAN_LIMITS)             # plan.py names each of these as f"`{name}`"
    assert sorted(names - set(field_flags()) - set(NOT_FLAGS)) == []


def test_fields_that_name_two_flags_are_settled_explicitly():
    _, clashes = derived_flags()
    assert clashes <= set(FIELD_FLAGS)
