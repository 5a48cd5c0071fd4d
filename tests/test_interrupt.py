"""Interrupts as a shell user delivers them: Ctrl-C (SIGINT) or `kill -9` to the main process only, timed to
hit the output file while its temporary file exists (during the computation, and during the write itself).
The output is then either absent or whole, an interrupted run removes its temporary file, a killed run's
stale one is removed by the next write, sweeps keep whole rows and resume, and a killed sweep's worker
processes do not outlive it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.sweep import read_rows

SIM = ["simulate", "--model", "llama3.1-8b", "--gpu", "b200"]


def start(args):
    """The CLI in a process of its own, with SIGINT at its default even when this test runs with it
    ignored (a job started in the background, as CI runners do, ignores it, and children inherit that:
    SIGINT would never reach the run)."""
    return subprocess.Popen([sys.executable, "-m", "simulator", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def temporaries(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


def signal_when(process, ready, sig, timeout_s=60.0) -> bool:
    """Poll `ready()` every 0.2 ms and send `sig` to the main process only once it holds; False when the
    process ended first."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and process.poll() is None:
        if ready():
            os.kill(process.pid, sig)
            return True
        time.sleep(0.0002)
    return False


def umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def finish(process) -> tuple[int, str]:
    _, err = process.communicate(timeout=120)
    return process.returncode, err.decode()


def rerun_cleans_up(out: Path) -> None:
    """A later run writing the same file removes the killed run's temporary file and writes a whole one."""
    completed = subprocess.run([sys.executable, "-m", "simulator", *SIM, "--gpus", "1", "--offline", "--requests", "5",
                                "--out", str(out)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert temporaries(out) == []
    if out.suffix == ".csv":
        assert out.read_text().count("\n") == 6          # header and five requests
    else:
        json.loads(out.read_text())
    assert out.stat().st_mode & 0o777 == umask_mode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_signal_while_the_output_is_claimed(tmp_path, sig):
    """The temporary file exists from the start of the run (the output is claimed before computing)."""
    out = tmp_path / "result.json"
    process = start(SIM + ["--gpus", "4", "--rate", "400", "--duration", "600", "--out", out])
    assert signal_when(process, lambda: temporaries(out), sig), "the run ended before claiming its output"
    code, err = finish(process)
    assert not out.exists()
    if sig == signal.SIGINT:
        assert code == 130 and err.strip() == "infersim: interrupted", err
        assert temporaries(out) == []
    else:
        assert code == -signal.SIGKILL and len(temporaries(out)) == 1
        rerun_cleans_up(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_signal_during_the_write_itself(tmp_path, sig):
    """A 200,000-row per-request CSV takes tens of milliseconds to write: the signal lands once the
    temporary file has bytes in it. The target is then absent (or whole, if the rename won the race)."""
    out = tmp_path / "requests.csv"
    requests = 200_000
    for _ in range(3):
        process = start(SIM + ["--gpus", "8", "--offline", "--requests", requests, "--input-tokens", "64",
                               "--output-tokens", "4", "--out", out])

        def writing():
            return any(p.stat().st_size > 0 for p in temporaries(out) if p.exists())
        try:
            caught = signal_when(process, writing, sig)
        except FileNotFoundError:
            caught = False
        code, err = finish(process)
        if caught:
            break
        out.unlink(missing_ok=True)
    else:
        pytest.fail("three runs wrote their CSV before the test saw it being written")
    assert "Traceback" not in err
    if out.exists():                   # the signal came after the rename: the file is whole
        assert out.read_text().count("\n") == requests + 1
    if sig == signal.SIGINT:
        assert code in (0, 130) and temporaries(out) == []
    else:
        assert code == -signal.SIGKILL
        out.unlink(missing_ok=True)
        rerun_cleans_up(out)


SWEEP = ('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b200"\nrequests = 600\n'
         '[grid]\nrate = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]\ngpus = [1, 2]\n')


def test_ctrl_c_to_the_sweep_alone_keeps_whole_rows_and_resume_finishes(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP)
    out = tmp_path / "rows.csv"
    process = start(["sweep", spec, "--out", out, "--jobs", "2", "--quiet"])
    assert signal_when(process, lambda: out.exists() and out.read_text().count("\n") >= 3, signal.SIGINT)
    started = time.time()
    code, err = finish(process)
    assert time.time() - started < 20            # running points are abandoned, not waited for
    assert code == 130 and err.strip() == "infersim: interrupted", err
    text = out.read_text()
    assert text.endswith("\n")
    assert all(r["status"] in ("ok", "error") for r in read_rows(out))
    subprocess.run([sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    ids = [r["point_id"] for r in read_rows(out)]
    assert len(ids) == 16 and len(set(ids)) == 16


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state         # a zombie has exited (its reaper may be slow in a container)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_killed_sweep_leaves_no_worker_behind(tmp_path):
    """SIGKILL gives the sweep no chance to stop its pool; before, both workers ran on forever."""
    spec = tmp_path / "sweep.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b200"\nrequests = 40000\n'
                    'input_tokens = "512"\noutput_tokens = "128"\n[grid]\nrate = [300.0, 400.0, 500.0, 600.0]\n')
    process = start(["sweep", spec, "--out", tmp_path / "rows.csv", "--jobs", "2", "--quiet"])
    workers: set[int] = set()
    deadline = time.time() + 30
    while time.time() < deadline and len(workers) < 2:
        workers = children(process.pid)
        time.sleep(0.05)
    assert len(workers) == 2, "the sweep did not start two workers"
    time.sleep(0.5)                             # let them pick up their points
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(running(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if running(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived the killed sweep"
