"""Ctrl-C (SIGINT) during `simulate --out` or `sweep` leaves only complete output files: the JSON is
either absent or whole, no temporary file remains, and an interrupted sweep's rows are whole and resume
completes it without duplicates."""
import json
import os
import signal
import subprocess
import sys
import time

from simulator.sweep import read_rows


def interrupt_after(args, ready, timeout_s=60):
    process = subprocess.Popen([sys.executable, "-m", "simulator", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and not ready() and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return process.returncode, err.decode()


def test_ctrl_c_during_simulate_leaves_no_partial_file(tmp_path):
    out = tmp_path / "result.json"
    start = time.time()
    code, err = interrupt_after(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "4", "--rate", "400",
                                 "--duration", "600", "--out", str(out)], lambda: time.time() - start > 2.0)
    assert code in (0, 130), err
    if code == 130:
        assert "interrupted" in err and "Traceback" not in err
        assert not out.exists()
    else:
        json.loads(out.read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_during_sweep_keeps_whole_rows_and_resume_finishes(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b200"\nrequests = 600\n'
                    '[grid]\nrate = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]\ngpus = [1, 2]\n')
    out = tmp_path / "rows.csv"
    code, err = interrupt_after(["sweep", str(spec), "--out", str(out), "--jobs", "2", "--quiet"],
                                lambda: out.exists() and out.read_text().count("\n") >= 3)
    assert "Traceback" not in err
    text = out.read_text()
    assert text.endswith("\n")
    rows = read_rows(out)
    assert all(r["status"] in ("ok", "error") for r in rows)
    subprocess.run([sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    ids = [r["point_id"] for r in read_rows(out)]
    assert len(ids) == 16 and len(set(ids)) == 16
