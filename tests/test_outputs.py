"""Output files: every writing command checks --out before its computation (a read-only folder is one
line, not a traceback after the work), files get the mode a plain open gives, a run that fails or is
interrupted leaves no temporary file, and stale temporaries of our own naming are removed."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.output import PendingOutput, remove_stale_temporaries, write_atomic
from tests.fuzzing import run_cli

ROWS_UNKNOWN_GPU = "model,gpu,gpus,scenario,output_tokens_per_s,source\nllama2-70b,b9000,8,offline,1000,x\n"
IMX_UNKNOWN_GPU = json.dumps({"hw": "b9000", "model": "llama3.3-70b", "precision": "fp8", "tp": 8, "isl": 1024,
                              "osl": 1024, "conc": 8, "output_tput_per_gpu": 100.0})
SWEEP_TYPO = 'command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b9000"\nrequests = 5\noffline = true\n[grid]\ngpus = [1]\n'
# Per command: arguments whose computation would fail with a different error, so seeing the --out error
# proves the output was checked first.
WRITERS = {
    "simulate": ["simulate", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1", "--offline", "--requests",
                 "5", "--out", "{ro}/x.json"],
    "mlperf": ["mlperf", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1", "--out", "{ro}/x.json"],
    "size": ["size", "--model", "llama3.1-8b", "--gpu", "b200", "--target-tokens-per-s", "1e12", "--out",
             "{ro}/x.json"],
    "calibrate": ["calibrate", "{tmp}/rows.csv", "--out", "{ro}/p.toml"],
    "validate": ["validate", "{tmp}/rows.csv", "--out", "{ro}/v.md"],
    "import-runs": ["import-runs", "--format", "inferencemax", "{tmp}/imx.json", "--out", "{ro}/rows.csv"],
    "sweep": ["sweep", "{tmp}/sweep.toml", "--out", "{ro}/s.csv", "--quiet"],
    "plot": ["plot", "{tmp}/results.csv", "--x", "nosuch", "--y", "tokens_per_s", "-o", "{ro}/p.png"],
    "report": ["report", "{tmp}/results.csv", "-o", "{ro}/r.html"],
}
LATER_ERRORS = ("does not fit", "no plan fits", "beyond what", "b9000", "every point failed", "no column",
                "not an infersim result")


def _obey_permissions() -> None:
    """preexec_fn for root: without CAP_DAC_OVERRIDE in the bounding set, the program exec'd next is held
    to permission bits like any user (PR_CAPBSET_DROP = 24, CAP_DAC_OVERRIDE = 1)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:
        os._exit(97)


def run_unprivileged(args, cwd):
    preexec = _obey_permissions if os.geteuid() == 0 else None
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, preexec_fn=preexec)


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    probe = run_unprivileged(["-c", f"open({str(folder / 'probe')!r}, 'w')"], tmp_path)
    if probe.returncode == 0:
        folder.chmod(0o755)
        pytest.skip("this user can write into a 0555 folder and cannot drop that right")
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_read_only_out_folder_is_one_line_before_the_computation(tmp_path, read_only_folder, command):
    (tmp_path / "rows.csv").write_text(ROWS_UNKNOWN_GPU)
    (tmp_path / "imx.json").write_text(IMX_UNKNOWN_GPU)
    (tmp_path / "sweep.toml").write_text(SWEEP_TYPO)
    (tmp_path / "results.csv").write_text("gpus,tokens_per_s\n1,10\n")
    args = [a.replace("{ro}", str(read_only_folder)).replace("{tmp}", str(tmp_path)) for a in WRITERS[command]]
    completed = run_unprivileged(["-m", "simulator", *args], tmp_path)
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2 and len(lines) == 1, completed.stderr
    flag = "-o" if command in ("plot", "report") else "--out"
    assert lines[0].startswith(f"infersim: error: {flag}: {read_only_folder}"), lines[0]
    assert "Permission denied" in lines[0] and not any(text in lines[0] for text in LATER_ERRORS)
    assert list(read_only_folder.iterdir()) == []


def test_a_failed_run_leaves_no_folder_its_output_claimed(tmp_path):
    """Before: the folders of --out new/dir/x.json stayed behind after the run failed on its input."""
    (tmp_path / "keep").mkdir()
    out = tmp_path / "keep" / "new" / "dir" / "x.json"
    outcome = run_cli(["simulate", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1", "--offline",
                       "--requests", "5", "--out", str(out)])
    assert outcome.code == 2 and "does not fit" in outcome.err
    assert list(tmp_path.iterdir()) == [tmp_path / "keep"] and list((tmp_path / "keep").iterdir()) == []
    written = tmp_path / "made" / "x.json"       # a run that writes keeps the folder it made
    assert run_cli(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--offline",
                    "--requests", "5", "--quiet", "--out", str(written)]).code == 0
    assert written.is_file()


def test_a_failed_run_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "x.json"
    outcome = run_cli(["simulate", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1", "--offline",
                       "--requests", "5", "--out", str(out)])
    assert outcome.code == 2 and "does not fit" in outcome.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing, umask, expected", [(0o644, 0o022, 0o644), (0o640, 0o022, 0o640),
                                                       (None, 0o022, 0o644), (None, 0o077, 0o600),
                                                       (None, 0o002, 0o664)])
def test_written_files_keep_the_usual_mode(tmp_path, existing, umask, expected):
    """Not mkstemp's 0600: the mode of the file replaced, or 0666 less the umask for a new one."""
    out = tmp_path / "x.json"
    if existing is not None:
        out.write_text("old")
        out.chmod(existing)
    old = os.umask(umask)
    try:
        write_atomic(out, "{}\n")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == expected and out.read_text() == "{}\n"


def test_cli_replacing_a_0644_file_keeps_0644(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("old")
    out.chmod(0o644)
    outcome = run_cli(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--offline", "--requests",
                       "3", "--out", str(out)])
    assert outcome.code == 0 and out.stat().st_mode & 0o777 == 0o644
    assert json.loads(out.read_text())["requests_completed"] == 3


def test_stale_temporaries_of_our_naming_are_removed(tmp_path):
    """A killed run's `.NAME.PID.XXXX.tmp` goes when the next run writes NAME; a live process's, another
    file's and files of other naming stay."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".x.json.{dead_pid}.ab12cd.tmp"
        busy = tmp_path / f".x.json.{live.pid}.ef34gh.tmp"
        other = tmp_path / f".y.json.{dead_pid}.ij56kl.tmp"
        foreign = tmp_path / "x.json.tmp"
        for path in (stale, busy, other, foreign):
            path.write_text("")
        write_atomic(tmp_path / "x.json", "{}")
        assert not stale.exists() and busy.exists() and other.exists() and foreign.exists()
        assert remove_stale_temporaries(tmp_path / "y.json") == [other]
    finally:
        live.kill()
        live.wait()


def test_claiming_a_folder_path_or_a_file_under_a_file_is_refused(tmp_path):
    from simulator.errors import ConfigError
    with pytest.raises(ConfigError, match="is a folder"):
        PendingOutput(tmp_path)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ConfigError, match="cannot create the folder"):
        PendingOutput(tmp_path / "plain" / "x.json")
    target = PendingOutput(tmp_path / "a" / "b" / "x.json")     # missing folders are created
    assert target.tmp.parent == tmp_path / "a" / "b" and target.tmp.exists()
    target.discard()
    assert not target.tmp.exists()


def test_import_of_topologies_or_workloads_first_works():
    """Issue 13: `import topologies` or `import workloads` as a fresh interpreter's first import."""
    for module in ("topologies", "workloads", "topologies.flows", "workloads.spec", "simulator.engine", "simulator.run",
                   "simulator.cli"):
        completed = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                                   cwd=Path(__file__).parent.parent)
        assert completed.returncode == 0, (module, completed.stderr)
