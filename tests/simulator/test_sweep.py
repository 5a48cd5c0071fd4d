"""Sweeps: grid expansion, failing points recorded, resume after a kill (no duplicate, no lost row),
Dask LocalCluster rows equal local rows, and the plot command's PNG."""
import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.errors import ConfigError
from simulator.sweep import api_options, expand, point_id, read_rows, run_sweep

SHIPPED_PROFILE = Path(__file__).resolve().parents[2] / "simulator" / "catalog" / "profile.toml"

BASE = {"model": "llama3.1-8b", "gpu": "b200", "rate": 5.0, "requests": 60, "input_tokens": "256",
        "output_tokens": "64"}


def small_spec(grid=None, points=None):
    spec = {"command": "simulate", "base": dict(BASE), "grid": grid or {"gpus": [1, 2], "batching": ["continuous", "chunked"]}}
    if points:
        spec["points"] = points
    return spec


def comparable(rows):
    drop = {"wall_s"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in rows), key=lambda r: r["point_id"])


def test_grid_expansion_and_options():
    command, points = expand({"command": "simulate", "base": {"model": "m"},
                              "grid": {"nodes": [1, 2], "gpu": ["b200", "mi355x"], "topology.nic_gbps": [400, 800]},
                              "points": [{"gpu": "h200", "gpus": 8}]})
    assert command == "simulate" and len(points) == 2 * 2 * 2 + 1
    assert points[0] == {"model": "m", "nodes": 1, "gpu": "b200", "topology.nic_gbps": 400}
    assert points[-1] == {"model": "m", "gpu": "h200", "gpus": 8}
    assert len({point_id(p) for p in points}) == len(points)
    options = api_options(points[7])         # nodes 2, mi355x (8 per server), 800G
    assert options["gpus"] == 16 and options["set_values"] == ("topology.nic_gbps=800",)
    with pytest.raises(ConfigError, match="grid.gpu must be a non-empty list"):
        expand({"grid": {"gpu": []}})
    with pytest.raises(ConfigError, match="unknown key 'gird'|'gird'"):
        expand({"gird": {}})


def test_a_plan_that_names_a_parallelism_twice_is_refused():
    """Before: 'tp8-tp2' ran at tp 2 (the last one won)."""
    from simulator.sweep import parse_plan
    assert parse_plan("pp2-tp8") == {"pp": 2, "tp": 8}
    with pytest.raises(ConfigError, match=r"plan: 'tp8-tp2' is not like .* \(each of tp, pp, ep at most once\)"):
        parse_plan("tp8-tp2")


def test_a_grid_past_the_point_limit_is_refused_before_a_point_is_built():
    """2 x 10^9 combinations: refused from the list lengths (before, every point was built first, and 6 GB
    later the run died of MemoryError); listed points count with the grid's."""
    values = list(range(1000))
    with pytest.raises(ConfigError, match=r"sweep: 2,000,000,000 points is more than 1,000,000$"):
        expand({"grid": {"gpus": values, "rate": values, "duration_s": values, "seed": [0, 1]}})
    with pytest.raises(ConfigError, match=r"1,000,001 points"):
        expand({"grid": {"gpus": values, "rate": values}, "points": [{"gpus": 8}]})


@pytest.mark.parametrize("spec, message", [
    ({"base": {"gpus": 4}, "grid": {"nodes": [1]}}, "sets both nodes and gpus"),
    ({"base": {"tp": 4}, "grid": {"plan": ["tp2"]}}, "sets both plan and tp"),
    ({"points": [{"plan": "tp8", "pp": 2}]}, "sets both plan and pp"),
    ({"base": {"fail": 5}, "grid": {"gpus": [8]}}, "fail must be a string"),
    ({"base": {"fail": ["gpu:0@1", 3]}}, "fail must be a string"),
    ({"command": "size", "grid": {"gpu": ["h100"]}}, "needs target_tokens_per_s"),
    # before: these ran and failed with Python's own text ('int' object has no attribute 'vendor'), or
    # (offline = "false") ran an Offline simulation
    ({"base": {"gpu": 5}}, "sweep: gpu: expected a string, got 5"),
    ({"grid": {"offline": ["false"]}}, "sweep: offline: expected true or false"),
    ({"grid": {"gpus": [1.5]}}, "sweep: gpus: expected a whole number, got 1.5"),
    ({"base": {"topology": {"a": 1}}}, "sweep: topology: expected a string, got a table"),
    # before: a misspelt key in one [[points]] table failed that point alone, after the others ran (exit 0)
    ({"points": [{"gpus": 8}, {"max_batch_sise": 64}]},
     r"'max_batch_sise' is no option of simulate \(did you mean max_batch_size\?\)"),
    ({"grid": {"catalog": ["mine.toml"]}}, r"'catalog' is no option of simulate \(did you mean gpu_catalog\?\)"),
    ({"command": "size", "base": {"target_tokens_per_s": 1e5, "gpus": 8}}, "gpus is what size finds"),
    ({"command": "size", "base": {"target_tokens_per_s": 1e5, "fail": "gpu:0@1"}}, "'fail' is no option of size"),
])
def test_a_point_that_sets_one_thing_twice_or_lacks_a_field_is_refused_before_running(spec, message):
    """Before: base gpus = 4 with grid nodes = [1] ran 8 GPUs and recorded gpus = 4; fail = 5 and a size
    sweep without a target failed every point with Python's own TypeError text."""
    with pytest.raises(ConfigError, match=message):
        expand(spec)


def test_failing_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "rows.csv"
    rows = run_sweep(*expand(small_spec(grid={"gpu": ["b200", "no-such-gpu"]})), out)
    by_gpu = {r["gpu"]: r for r in rows}
    assert by_gpu["b200"]["status"] == "ok" and by_gpu["b200"]["output_tokens_per_s"] > 0
    assert by_gpu["no-such-gpu"]["status"] == "error" and "unknown GPU" in by_gpu["no-such-gpu"]["error"]
    assert len(read_rows(out)) == 2


def test_a_sweep_with_failed_points_says_so_beside_the_rows(tmp_path, capsys):
    """Some points failing is a sweep's outcome (exit 0), but the first failure is printed, not left to
    be found in the CSV."""
    spec = tmp_path / "s.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\nrequests = 5\noffline = true\n'
                    '[grid]\ngpu = ["b200", "no-such-gpu"]\n')
    main(["sweep", str(spec), "--out", str(tmp_path / "o.csv"), "--quiet"])
    captured = capsys.readouterr()
    assert "2 points run (1 failed" in captured.out
    assert "warning: 1 of 2 points failed; the first (point_id " in captured.err and "unknown GPU" in captured.err


def test_a_points_warnings_are_kept_in_its_row(tmp_path):
    """What simulate prints beside its numbers is kept in the row: 3 GPUs at tp 2 hold one replica and
    leave one GPU idle; 2 GPUs at tp 2 leave none (an empty cell)."""
    rows = run_sweep(*expand(small_spec(grid={"gpus": [2, 3], "tp": [2]})), tmp_path / "rows.csv")
    by_gpus = {r["gpus"]: r for r in read_rows(tmp_path / "rows.csv")}
    assert len(rows) == 2 and "1 of 3 GPUs stay idle" in by_gpus["3"]["warnings"]
    assert "idle" not in by_gpus["2"]["warnings"]


def test_resume_after_a_torn_write_neither_duplicates_nor_loses(tmp_path):
    """A killed sweep leaves whole lines plus at most one torn line: resume drops the torn line, keeps
    the finished rows byte for byte and runs only the missing points."""
    command, points = expand(small_spec())
    out = tmp_path / "rows.csv"
    run_sweep(command, points[:2], out)
    finished = out.read_text()
    out.write_text(finished + "abc123,ok,,0.1,llama3.1")        # torn last line
    with pytest.raises(ConfigError, match="exists; pass `resume`"):
        run_sweep(command, points, out)
    ran = run_sweep(command, points, out, resume=True)
    assert len(ran) == len(points) - 2
    rows = read_rows(out)
    assert sorted(r["point_id"] for r in rows) == sorted(point_id(p) for p in points)
    assert out.read_text().startswith(finished)


def test_resume_refuses_rows_computed_from_another_profile(tmp_path):
    """A point's id hashes its options, not the profile file it names: after a recalibration rewrites
    that file, resuming would have kept the old profile's rows beside the new one's. Each row records
    its inputs (`inputs_id`); a resume with the same inputs runs only the missing points, one after the
    file changed is refused."""
    profile = tmp_path / "profile.toml"
    profile.write_text(SHIPPED_PROFILE.read_text())
    command, points = expand(small_spec(grid={"gpus": [1, 2]}) | {"base": {**BASE, "profile": str(profile)}})
    out = tmp_path / "rows.csv"
    first = run_sweep(command, points[:1], out)
    assert len(first[0]["inputs_id"]) == 12 and read_rows(out)[0]["inputs_id"] == first[0]["inputs_id"]
    assert len(run_sweep(command, points, out, resume=True)) == 1
    profile.write_text(SHIPPED_PROFILE.read_text() + "\n# refitted: any change to the file's bytes counts\n")
    with pytest.raises(ConfigError, match=r"2 of 2 rows .* other inputs .* choose a new file"):
        run_sweep(command, points, out, resume=True)


def test_the_studies_script_refuses_a_stale_resume_in_one_line(tmp_path, capsys):
    """scripts/sweep_studies.py --resume onto a study CSV one of whose rows came from other inputs: exit 2
    and one line on stderr naming the file, not a traceback; nothing is run or written."""
    spec = importlib.util.spec_from_file_location("sweep_studies", Path(__file__).parents[2] / "scripts" /
                                                  "sweep_studies.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    shipped = Path(__file__).parents[2] / "docs" / "studies" / "scaling.csv"
    rows = list(csv.DictReader(shipped.open()))
    rows[0]["inputs_id"] = "0123456789ab"
    study = tmp_path / "scaling.csv"
    with study.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = study.read_text()
    assert script.main(["scaling", "--outdir", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "computed from other inputs" in err and str(study) in err
    assert study.read_text() == before


def test_resume_after_a_real_kill(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b200"\nrequests = 400\n'
                    'input_tokens = "512"\noutput_tokens = "128"\n[grid]\nrate = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]\n'
                    'gpus = [1, 2]\n')
    out = tmp_path / "rows.csv"
    process = subprocess.Popen([sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = read_rows(out)
    assert 2 <= len(before) < 16
    main(["sweep", str(spec), "--out", str(out), "--resume", "--quiet"])
    after = read_rows(out)
    ids = [r["point_id"] for r in after]
    assert len(ids) == 16 and len(set(ids)) == 16
    kept = {r["point_id"]: r for r in after}
    assert all(kept[r["point_id"]] == r for r in before)


def test_dask_local_cluster_gives_the_same_rows_as_local_processes(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    command, points = expand(small_spec())
    local = run_sweep(command, points, jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            remote = run_sweep(command, points, scheduler=client)
        by_address = run_sweep(command, points, scheduler=cluster.scheduler_address)   # what --scheduler passes
    assert comparable(local) == comparable(remote) == comparable(by_address)


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "rows.csv"
    main(["sweep", _write_spec(tmp_path), "--out", str(out), "--quiet"])
    png = tmp_path / "scaling.png"
    main(["plot", str(out), "--x", "gpus", "--y", "output_tokens_per_s", "--color", "batching", "-o", str(png)])
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "front.svg"
    main(["plot", str(out), "--x", "tpot_p50_s", "--y", "output_tokens_per_s", "--kind", "pareto", "-o", str(svg)])
    assert b"<svg" in svg.read_bytes()[:500]


def test_plot_says_how_many_rows_it_left_out_and_refuses_a_log_axis_below_zero(tmp_path, capsys):
    """Rows whose y is text, nan or inf were dropped in silence; a log axis over -5 leaked matplotlib's
    two-line warning."""
    rows = tmp_path / "rows.csv"
    rows.write_text("gpus,output_tokens_per_s\n1,100\n2,abc\n4,inf\n8,400\n")
    main(["plot", str(rows), "--x", "gpus", "--y", "output_tokens_per_s", "-o", str(tmp_path / "a.png")])
    assert "rows.csv: 2 row(s) left out: gpus or output_tokens_per_s is not a finite number" in capsys.readouterr().err
    rows.write_text("gpus,output_tokens_per_s\n1,-5\n2,10\n")
    with pytest.raises(SystemExit) as refused:
        main(["plot", str(rows), "--x", "gpus", "--y", "output_tokens_per_s", "--logy", "-o", str(tmp_path / "b.png")])
    assert refused.value.code == 2
    assert "output_tokens_per_s reaches -5; a log axis shows values > 0 only" in capsys.readouterr().err


def _write_spec(tmp_path) -> str:
    spec = tmp_path / "small.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\ngpu = "b200"\nrate = 5.0\nrequests = 60\n'
                    '[grid]\ngpus = [1, 2, 4]\nbatching = ["continuous", "chunked"]\n')
    return str(spec)


def test_pareto_front():
    from simulator.plot import pareto_front
    assert pareto_front([(1, 5), (2, 4), (3, 1), (2, 2), (0.5, 5)]) == [(1, 5), (2, 4), (3, 1)]


def header(path) -> list[str]:
    return next(csv.reader([Path(path).read_text().splitlines()[0]]))


def test_first_point_failing_keeps_every_metric_in_its_column(tmp_path):
    """Issue 13: when the first point to finish was an error, the header was fixed without metrics and
    every later row's results went into one `extra` cell that plot could not read."""
    out = tmp_path / "rows.csv"
    run_sweep(*expand(small_spec(grid={"gpu": ["no-such-gpu", "b200", "mi355x"]})), out)
    columns = header(out)
    assert "output_tokens_per_s" in columns and "extra" not in columns
    rows = read_rows(out)
    assert [r["gpu"] for r in rows] == ["no-such-gpu", "b200", "mi355x"]
    assert rows[0]["output_tokens_per_s"] == "" and float(rows[1]["output_tokens_per_s"]) > 0
    png = tmp_path / "p.png"
    main(["plot", str(out), "--x", "gpus", "--y", "output_tokens_per_s", "--color", "gpu", "-o", str(png)])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_header_does_not_depend_on_which_point_finishes_first(tmp_path):
    """The same sweep finished in two orders (all at once; the last two points first, then resumed)
    leaves the same file, rows in the sweep's order."""
    command, points = expand(small_spec())
    straight, shuffled = tmp_path / "a.csv", tmp_path / "b.csv"
    run_sweep(command, points, straight)
    run_sweep(command, points[2:], shuffled)
    run_sweep(command, points, shuffled, resume=True)

    def content(path):
        rows = read_rows(path)
        return header(path), [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]
    assert content(straight) == content(shuffled)
    assert [r["point_id"] for r in read_rows(straight)] == [point_id(p) for p in points]


def test_resume_onto_another_header_loses_nothing(tmp_path):
    """Issue 13: resuming onto a results file with a different header dropped the new rows' metrics."""
    out = tmp_path / "rows.csv"
    out.write_text("point_id,status,error,wall_s,colour\nold1,ok,,0.5,red\n")
    command, points = expand(small_spec(grid={"gpus": [1, 2]}))
    run_sweep(command, points, out, resume=True)
    rows = {r["point_id"]: r for r in read_rows(out)}
    assert rows["old1"]["colour"] == "red"
    assert all(float(rows[point_id(p)]["output_tokens_per_s"]) > 0 for p in points)
    assert "extra" not in header(out) and "output_tokens_per_s" in header(out)


def test_resume_refuses_a_file_that_is_not_a_sweeps(tmp_path):
    out = tmp_path / "rows.csv"
    out.write_text("gpus,tokens_per_s\n1,10\n")
    with pytest.raises(ConfigError, match="not a sweep's results file"):
        run_sweep(*expand(small_spec()), out, resume=True)
    assert out.read_text() == "gpus,tokens_per_s\n1,10\n"


def test_a_sweep_whose_every_point_fails_exits_2(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('command = "simulate"\n[base]\nmodel = "llama3.1-8b"\nrequests = 5\noffline = true\n'
                    '[grid]\nnodes = [0, -1, "x"]\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(spec), "--out", str(tmp_path / "o.csv"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "every point failed (3 of 3" in err
    rows = read_rows(tmp_path / "o.csv")
    assert len(rows) == 3          # the rows say why, one per point, in the sweep file's names (not as flags)
    assert all("nodes: " in r["error"] and "--nodes" not in r["error"] for r in rows)
    assert "the first: nodes: " in err and "--nodes" not in err


@pytest.mark.parametrize("address", ["not a url", "tcp://", "host:port", ""])
def test_scheduler_address_is_checked_before_any_point(tmp_path, address):
    with pytest.raises(ConfigError, match="is not a Dask scheduler address"):
        run_sweep(*expand(small_spec()), tmp_path / "o.csv", scheduler=address)
    assert not (tmp_path / "o.csv").exists()


def test_a_requests_length_and_the_runs_token_totals_are_two_columns(tmp_path):
    """A sweep over input_tokens (a request's prompt length) kept that column and silently dropped the
    run's total of the same name; the totals are input_tokens_completed / output_tokens_completed."""
    rows = run_sweep(*expand(small_spec(grid={"input_tokens": ["128"]})), tmp_path / "rows.csv")
    row = rows[0]
    assert row["input_tokens"] == "128"
    assert row["input_tokens_completed"] == 128 * row["requests_completed"]


def test_every_option_of_a_command_passes_the_key_check():
    """The key check refuses only what the command does not take: simulate's jobs and workload keys,
    mlperf's scenario, rate and queries, size's node_gpus and confidence, what-if keys all pass."""
    assert expand({"base": {"jobs": 2, "users": 4, "think_time_s": 1.0, "gpu.hbm_tb_per_s": 9.0,
                            "topology.nic_gbps": 800}})[1]
    assert expand({"command": "mlperf", "base": {"scenario": "server", "rate": 2.0, "queries": 100, "nodes": 2}})[1]
    assert expand({"command": "size", "base": {"target_tokens_per_s": 1e5, "node_gpus": 4, "confidence": 0.9,
                                               "scenario": "server"}})[1]
