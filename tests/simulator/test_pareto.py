"""`infersim pareto`: the front is non-dominated and pruning does not change it, the plan it picks for a
scenario's SLA is the one `mlperf` picks, per-point figures follow their definitions, and the CLI runs end
to end (table, CSV, JSON with its run file, --emit, one-line errors)."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from simulator.cli import cli
from tests.fuzzing import run_cli
from simulator.front import dominates, front_mask
from simulator.mlperf import mlperf
from simulator.pareto import pareto
from workloads.scenarios import get_scenario

SMALL = dict(model="llama3.1-8b", gpus=2, input_tokens=512, output_tokens=64, concurrency="1,4,16,64",
             requests_per_user=4)


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=40))
def test_front_mask_keeps_exactly_the_non_dominated_points(points):
    mask = front_mask(points)
    for point, on in zip(points, mask):
        dominated = any(dominates(other, point) for other in points)
        assert on == (not dominated)


@pytest.fixture(scope="module")
def small_fronts():
    return (pareto(gpu="b200,h200", **SMALL), pareto(gpu="b200,h200", prune=False, **SMALL))


def test_front_is_non_dominated_per_gpu_and_pruning_keeps_it(small_fronts):
    pruned, full = small_fronts
    for result in (pruned, full):
        for gpu in ("b200", "h200"):
            mine = [p for p in result.points if p.gpu == gpu]
            for point in mine:
                dominated = any(dominates(other.xy, point.xy) for other in mine)
                assert point.on_front == (not dominated)
    key = lambda r: sorted((p.gpu, p.plan_label, p.concurrency) for p in r.points if p.on_front)  # noqa: E731
    assert key(pruned) == key(full)
    assert full.search["per_gpu"]["b200"]["pruned"] == 0
    assert pruned.search["per_gpu"]["b200"]["simulated"] <= full.search["per_gpu"]["b200"]["simulated"]


def test_point_figures_follow_their_definitions(small_fronts):
    """Per GPU = the cluster's tokens/s over its 2 GPUs; total counts prompt tokens too (512 in per 64
    out, so total / output = 9 when every request finishes); provisioned MW = 2 x (TDP + node share)."""
    from simulator.hardware import get_gpu
    for point in small_fronts[1].points:
        assert point.output_tokens_per_s_per_gpu == pytest.approx(point.output_tokens_per_s / 2)
        assert point.total_tokens_per_s_per_gpu / point.output_tokens_per_s_per_gpu == pytest.approx(9.0)
        gpu = get_gpu(point.gpu)
        watts = 2 * (gpu.power_w + (gpu.node_other_power_w or 0.0))
        assert point.output_tokens_per_s_per_provisioned_mw == pytest.approx(point.output_tokens_per_s / watts * 1e6)
        assert point.usd_per_million_tokens_low <= point.usd_per_million_tokens <= point.usd_per_million_tokens_high


@pytest.mark.parametrize("gpu, scenario", [("h200", "interactive"), ("b200", "server")])
def test_the_plan_picked_for_a_scenario_sla_is_the_one_mlperf_picks(gpu, scenario):
    """mlperf searches the Poisson rate meeting the scenario's p99 limits over plans; pareto, over the
    same plans, closed-loop concurrency. The best point within the same limits has the same tp/pp/ep,
    and that plan is on the front."""
    limits = get_scenario("llama3.1-8b", scenario)
    picked = mlperf(model="llama3.1-8b", gpu=gpu, gpus=2, scenario=scenario, duration_s=60.0).to_dict()["plan"]
    result = pareto(model="llama3.1-8b", gpu=gpu, gpus=2, input_tokens=limits.input_lengths,
                    output_tokens=limits.output_lengths, batching="continuous", max_concurrency=65536,
                    sla_ttft_s=limits.ttft_p99_s, sla_tpot_s=limits.tpot_p99_s)
    best = result.best(gpu)
    shape = lambda plan: (plan["tp"], plan["pp"], plan["ep"])  # noqa: E731
    assert best.meets_sla and shape(best.plan) == shape(picked)
    assert shape(picked) in {shape(p.plan) for p in result.front(gpu)}


def run(*args):
    return CliRunner().invoke(cli, ["pareto", "--model", "llama3.1-8b", "--gpus", "2", "--input-tokens", "512",
                                    "--output-tokens", "64", "--requests-per-user", "3", "--quiet", *args])


def test_cli_prints_the_front_and_writes_csv_and_json(tmp_path):
    table = run("--gpu", "b200,h200", "--concurrency", "1,8", "--out", str(tmp_path / "front.csv"))
    assert table.exit_code == 0, table.output
    assert "output_tokens_per_s_per_user" in table.output and "power_counted" in table.output
    rows = list(csv.DictReader((tmp_path / "front.csv").open()))
    assert {r["gpu"] for r in rows} == {"b200", "h200"} and any(r["on_front"] == "True" for r in rows)
    document = json.loads(run("--gpu", "b200", "--concurrency", "1,8", "--json").output)
    assert document["kind"] == "pareto" and document["config"]["command"] == "pareto"
    assert document["config"]["workload"]["concurrency"] == "1,8" and "infersim_version" in document


def test_run_file_round_trip_gives_the_same_document(tmp_path):
    run_file = tmp_path / "pareto.toml"
    assert run("--gpu", "b200", "--concurrency", "2,8", "--print-config", str(run_file)).exit_code == 0
    first = run("--gpu", "b200", "--concurrency", "2,8", "--json").output
    again = CliRunner().invoke(cli, ["pareto", "--config", str(run_file), "--json"]).output
    assert json.loads(first) == json.loads(again)


def test_emit_launches_the_best_point_within_the_sla():
    outcome = run("--gpu", "b200", "--concurrency", "1,8,32", "--sla-ttft", "2", "--sla-tpot", "0.05",
                  "--emit", "vllm")
    assert outcome.exit_code == 0, outcome.output
    assert "vllm serve" in outcome.output and "within the SLA" in outcome.output
    assert "meets_sla" in outcome.output


@pytest.mark.parametrize("args, field", [(["--concurrency", "abc"], "--concurrency"),
                                         (["--gpu", "nosuch"], "nosuch"),
                                         (["--concurrency-ratio", "1"], "--concurrency-ratio"),
                                         # before: 1.0000001 passed and the level loop spun for minutes
                                         (["--concurrency-ratio", "1.0000001"], "--concurrency-ratio"),
                                         # before: each ran once, silently (size --compare refuses a repeat)
                                         (["--concurrency", "1,1"], "--concurrency: 1 is named twice"),
                                         (["--gpu", "b200,b200"], "--gpu: b200 is named twice"),
                                         (["--batching", "continuous,continuous"],
                                          "--batching: continuous is named twice"),
                                         (["--batching", "static"], "--batching"),
                                         (["--sla-tpot", "0"], "--sla-tpot")])
def test_bad_input_is_one_line_with_exit_2(args, field):
    outcome = run_cli(["pareto", "--model", "llama3.1-8b", "--gpus", "2", "--quiet", *args])
    assert outcome.code == 2 and field in outcome.err and len(outcome.err.strip().splitlines()) == 1


def test_identical_runs_of_two_batching_policies_are_listed_once(small_fronts):
    """With one user no prompt ever joins a running batch, so continuous and chunked batching run the
    same steps: that run is one point named for both policies, not two tied points; and no two points
    of a GPU left in the list share a setup and every figure."""
    for result in small_fronts:
        one_user = [p for p in result.points if p.gpu == "b200" and p.concurrency == 1 and "disagg" not in p.plan_label]
        assert one_user and all(p.plan_label.endswith("continuous/chunked") for p in one_user)
        seen = set()
        for p in result.points:
            setup = {k: v for k, v in p.serving_options.items() if k != "batching"}
            key = (p.gpu, repr(sorted(setup.items())), p.concurrency, p.xy, p.ttft_p99_s, p.tpot_p99_s)
            assert key not in seen
            seen.add(key)


def test_prefill_decode_splits_are_bounded_for_large_clusters():
    """One node's replicas try every split (8 one-GPU replicas: 1 to 7 prefill); 4,096 replicas try 15,
    spread evenly (256, 512, ... 3,840): every split took pareto past 9 GB and 100 s, and never returned."""
    from simulator.pareto_search import MAX_SPLITS, prefill_replica_counts
    assert prefill_replica_counts(8) == list(range(1, 8))
    assert prefill_replica_counts(4096) == [256 * i for i in range(1, MAX_SPLITS + 1)]
