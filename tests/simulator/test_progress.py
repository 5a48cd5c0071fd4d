"""Progress on stderr: shown on a terminal after the delay, never with --quiet or when stderr is not a
terminal (unless forced with INFERSIM_PROGRESS=always, the test hook), and the engine's hook contract."""
import io
import time

import pytest
from click.testing import CliRunner

from simulator import api
from simulator.cli import cli
from simulator.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_forcing(monkeypatch):
    monkeypatch.delenv("INFERSIM_PROGRESS", raising=False)


def test_a_terminal_sees_the_line_redrawn_and_cleared():
    stream = Terminal()
    with Progress("mlperf", stream=stream, delay_s=0) as progress:
        progress(3, 12, "search runs", approximate=True)
        time.sleep(0.6)
    text = stream.getvalue()
    assert "\rinfersim mlperf: 3 of about 12 search runs (25%), 0 s" in text
    assert text.endswith("\r") and text.split("\r")[-2].strip() == ""   # cleared: results print on a clean line


def test_short_work_shows_nothing_on_a_terminal():
    stream = Terminal()
    with Progress("simulate", stream=stream) as progress:      # the default ~2 s delay
        progress(5, 10, "simulated s")
        time.sleep(0.3)
    assert stream.getvalue() == ""


def test_not_a_terminal_or_quiet_shows_nothing():
    for stream, quiet in ((io.StringIO(), False), (Terminal(), True)):
        with Progress("validate", stream=stream, quiet=quiet, delay_s=0) as progress:
            progress(1, 2, "held-out rows predicted")
            time.sleep(0.3)
        assert stream.getvalue() == ""


def test_forced_progress_writes_lines_to_a_log(monkeypatch):
    monkeypatch.setenv("INFERSIM_PROGRESS", "always")
    stream = io.StringIO()
    with Progress("calibrate", stream=stream) as progress:
        progress(None, None, "fitting 12 rows")
        time.sleep(0.4)
        progress(7, 12, "rows simulated")
    lines = stream.getvalue().splitlines()
    assert lines == ["infersim calibrate: fitting 12 rows, 0 s", "infersim calibrate: 7 of 12 rows simulated (58%), 0 s"]
    monkeypatch.setenv("INFERSIM_PROGRESS", "always")
    quiet = io.StringIO()
    with Progress("calibrate", stream=quiet, quiet=True) as progress:
        progress(7, 12, "rows simulated")
    assert quiet.getvalue() == ""


MLPERF = ["mlperf", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--queries", "300"]
# 300 queries keep the runs quick; stderr says once that LoadGen would not accept so short a run
SHORT_RUN = "infersim: warning: not valid: 300 queries, below LoadGen's min_query_count (13368) for llama3.1-8b Offline\n"


def test_commands_are_silent_when_stderr_is_not_a_terminal_and_with_quiet(monkeypatch):
    runner = CliRunner()
    plain = runner.invoke(cli, MLPERF, catch_exceptions=False)
    assert plain.exit_code == 0 and plain.stderr == SHORT_RUN
    monkeypatch.setenv("INFERSIM_PROGRESS", "always")
    quiet = runner.invoke(cli, MLPERF + ["--quiet"], catch_exceptions=False)
    assert quiet.exit_code == 0 and quiet.stderr == SHORT_RUN
    forced = runner.invoke(cli, MLPERF, catch_exceptions=False)
    assert "infersim mlperf: 3 of about 3 search runs (100%)" in forced.stderr
    simulated = runner.invoke(cli, ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--offline",
                                    "--requests", "50"], catch_exceptions=False)
    assert "infersim simulate: 1 of 1 engines simulated (100%)" in simulated.stderr


def test_a_run_reports_simulated_seconds_or_engines_done():
    """A SimPy run (load-aware routing makes engines interact) reports simulated seconds rising to the
    last arrival; the no-SimPy path (round-robin) reports each of its 2 engines done."""
    calls = []
    api.simulate(model="llama3.1-8b", gpu="b200", gpus=2, rate=20, duration_s=30, router="least-outstanding",
                 progress=lambda *args, **kw: calls.append(args))
    simulated = [c for c in calls if c[2] == "simulated s"]
    assert calls[0][2].startswith("simulating") and len(simulated) > 10
    times = [c[0] for c in simulated]
    assert times == sorted(times) and 0 < times[-1] <= simulated[-1][1] + 1e-9 and simulated[-1][1] < 30
    calls.clear()
    api.simulate(model="llama3.1-8b", gpu="b200", gpus=2, rate=20, duration_s=30,
                 progress=lambda *args, **kw: calls.append(args))
    assert calls[1:] == [(1, 2, "engines simulated"), (2, 2, "engines simulated")]

