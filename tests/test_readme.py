"""Every `infersim` command in the README: each parses (its options exist, values convert, choices are
valid), every file it reads is shipped or written by an earlier README command, and the quick ones run
(exit 0) in README order in a scratch folder that sees the repository's docs/, simulator/ and scripts/.
Commands that take more than a few seconds (cluster sizing to 1M tok/s, a full calibration or
validation, an hour of traffic on 87 GPUs, sweeps, a full two-GPU Pareto search, and what reads their
outputs) are parsed and their inputs checked, not run: the suite stays fast, and each of them is
exercised by its own module's tests."""
from __future__ import annotations

import glob
import os
import re
import shlex
from pathlib import Path

import click
import pytest

from simulator.cli import cli
from tests.fuzzing import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# substrings of the commands only parsed (see the module docstring)
NOT_RUN = ("--target-tokens-per-s 1e6", "calibrate ", "validate ", "sweep ", "--stream-metrics", "my_profile.toml",
           "plot scaling.csv", "report ", "../shared/", "--gpus 87", "--out pareto.json", "--out front.csv",
           "plot front.csv")
OUTPUT_FLAGS = ("--out", "-o", "--print-config")


def readme_commands() -> list[list[str]]:
    """The README's infersim command lines (continuations joined, comments dropped), as argv lists."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("#") or "infersim " not in line:
                continue
            line = line.split(" && ")[-1]
            words = shlex.split(line, comments=True)
            if words and words[0] == "infersim":
                commands.append(words[1:])
    return commands


COMMANDS = readme_commands()


def parse(argv: list[str]) -> click.Context:
    """Parse argv down to the leaf command (click converts every option and checks choices)."""
    command, ctx, args = cli, None, list(argv)
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        ctx = click.Context(command, info_name=command.name, parent=ctx)
        command = command.get_command(ctx, name)
        assert command is not None, f"no command {name!r}"
    return command.make_context(argv[0], args, parent=ctx)


def inputs_and_outputs(argv: list[str]) -> tuple[list[str], list[str]]:
    """Files the command reads (path-like words not after an output flag) and files it writes."""
    reads, writes = [], []
    for before, word in zip([""] + argv, argv):
        if before in OUTPUT_FLAGS:
            writes.append(word)
        elif not word.startswith("-") and re.search(r"\.(csv|json|toml|md)$|/", word) and before != "--catalog":
            reads.append(word)
    return reads, writes


def test_the_readme_opens_with_the_two_set_up_commands():
    first = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(first) == 2 and first[0].startswith("pip install -e . && infersim ")
    assert first[1] == "pip install -e '.[dev]' && python -m pytest -q"
    assert (ROOT / ".ci" / "run").read_text().count("python -m pytest -q") == 1


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_every_readme_command_parses(argv):
    parse(argv)


def test_every_file_a_readme_command_reads_exists_or_is_written_before():
    written = set()
    for argv in COMMANDS:
        reads, writes = inputs_and_outputs(argv)
        for path in reads:
            if path.startswith("../"):
                continue                   # the shared data beside the project, not part of the repository
            found = glob.glob(str(ROOT / path)) or path in written
            assert found, f"infersim {' '.join(argv)}: {path} is neither shipped nor written by an earlier command"
        written.update(writes)


def test_the_quick_readme_commands_run(tmp_path, monkeypatch):
    for folder in ("docs", "simulator", "scripts"):
        os.symlink(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    ran = 0
    for argv in COMMANDS:
        line = " ".join(argv)
        if any(marker in line for marker in NOT_RUN):
            continue
        expanded = [m for word in argv for m in (sorted(glob.glob(word)) if "*" in word else [word])]
        outcome = run_cli(expanded + (["--quiet"] if argv[0] in ("simulate", "mlperf", "size") else []))
        assert outcome.code == 0, f"infersim {line}: exit {outcome.code}\n{outcome.err}{outcome.error}"
        ran += 1
    assert ran >= 20


@pytest.mark.parametrize("first", ["", "import simulator.sizing, simulator.mlperf, simulator.sweep\n"])
def test_the_readme_python_imports_give_the_functions(first):
    """The README's `from simulator import ...` lines, in a fresh interpreter, give functions, also when
    the modules named like two of them (simulator.mlperf, simulator.sweep) were imported first: the import
    system sets a submodule as an attribute of its package, which gave `from simulator import mlperf` the
    module."""
    import subprocess
    import sys
    block = README.split("```python", 1)[1].split("```", 1)[0]
    imports = [line for line in block.splitlines() if line.startswith("from simulator import ")]
    names = [name.strip() for line in imports for name in line.split(" import ", 1)[1].split(",")]
    assert {"mlperf", "sweep", "simulate", "size"} <= set(names)
    check = (first + "import types\n" + "\n".join(imports) + "\nassert not any(isinstance(f, types.ModuleType) "
             f"for f in ({', '.join(names)},))\n")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_the_python_api_example_runs(tmp_path):
    """scripts/api_example.py, the README's Python API at work (a second or two): it exits 0 and prints a
    line per call."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "api_example.py")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    for call in ("simulate:", "mlperf server:", "size:", "sweep:"):
        assert call in done.stdout, done.stdout
