"""Failures that lose nothing: GPU and link failures at random times, with and without a fixed KV hand-off
bandwidth, across every router and batching policy. Every request finishes or is dropped, once, with a
reason that is true of the run (no request is left "unfinished" when nothing stopped the simulation);
routers never pick a dead engine nor raise; a run whose cluster went down says so and reports no rate.
"""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from simulator.api import serving_config, simulate as api_simulate
from simulator.drop_reasons import CLUSTER_DOWN, HANDOFF_UNREACHABLE, NO_DECODE_ENGINE, NO_ENGINE, NO_PREFILL_ENGINE
from simulator.plan import check_model_split
from simulator.run import simulate
from simulator.errors import ConfigError, InfeasibleError
from simulator.router import ROUTERS
from topologies import load_topology
from workloads.requests import Requests

ROUTER_NAMES = sorted(name for name, cls in ROUTERS.items() if cls.__module__ == "simulator.router")  # shipped ones
BATCHING = ["static", "continuous", "chunked", "disaggregated"]


@st.composite
def failing_clusters(draw):
    """A cluster of 2-8 B200s (one NVSwitch server) serving Llama 3.1 8B, with 1-3 failures."""
    tp = draw(st.sampled_from([1, 2]))
    replicas = draw(st.integers(2, 8 // tp))
    batching = draw(st.sampled_from(BATCHING))
    options = dict(model="llama3.1-8b", gpu="b200", gpus=tp * replicas, tp=tp, batching=batching,
                   router=draw(st.sampled_from(ROUTER_NAMES)), max_batch_size=draw(st.sampled_from([4, 64])),
                   seed=draw(st.integers(0, 5)))
    if batching == "disaggregated":
        options["prefill_gpus"] = tp * draw(st.integers(1, replicas - 1))
        if draw(st.booleans()):
            options["kv_transfer_gb_per_s"] = draw(st.sampled_from([0.01, 0.05, 1.0, 100.0]))
    graph = load_topology("auto", serving_config(model="llama3.1-8b", gpu="b200").gpu, options["gpus"])
    idle = {f"gpu{i}" for i in range(options["gpus"], 8)}       # the server's slots beyond the cluster
    edges = sorted(tuple(sorted(e)) for e in graph.edges if not idle & set(e))
    failures = {}                                               # target -> failure: each fails once
    for _ in range(draw(st.integers(1, 3))):
        when = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0, 3.0]))
        if draw(st.booleans()):
            target = f"gpu:{draw(st.integers(0, options['gpus'] - 1))}"
        else:
            a, b = draw(st.sampled_from(edges))
            target = f"link:{a}-{b}"
        failures.setdefault(target, f"{target}@{when}")
    options["fail"] = tuple(failures.values())
    return options


@st.composite
def streams(draw):
    count = draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    arrival = np.sort(rng.uniform(0, draw(st.sampled_from([0.01, 1.0, 5.0])), count))
    return Requests(arrival, rng.integers(16, 1500, count), rng.integers(1, 300, count))


def run(options, workload):
    try:
        config = serving_config(**options)
        return config, simulate(config, workload)
    except InfeasibleError:
        assume(False)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(failing_clusters(), streams())
def test_failures_conserve_requests_and_every_drop_has_a_true_reason(options, workload):
    config, result = run(options, workload)
    arrays, summary = result.arrays, result.summary
    total = len(workload)
    finished = set(np.flatnonzero(np.isfinite(arrays["finish_s"])).tolist())
    dropped = set(result.dropped)
    assert not finished & dropped and finished | dropped == set(range(total))
    assert summary["requests_completed"] + summary["requests_dropped"] == total == summary["requests_total"]
    assert sum(summary["requests_dropped_by_reason"].values()) == summary["requests_dropped"] == len(dropped)
    engines = result.engines
    failed = set(engines.get("failed", []))
    prefill = engines.get("prefill", 0)
    entry = range(prefill) if prefill else range(engines["count"])
    decode = range(prefill, engines["count"])
    links_failed = any(f.startswith("link:") for f in options["fail"])
    for reason in summary["requests_dropped_by_reason"]:
        # nothing stopped this run early, so no request may be left in flight
        assert not reason.startswith("unfinished"), reason
        if reason in (NO_ENGINE, NO_PREFILL_ENGINE):
            assert set(entry) <= failed, (reason, failed)
            assert (reason == NO_PREFILL_ENGINE) == bool(prefill)
        elif reason == NO_DECODE_ENGINE:
            assert prefill and set(decode) <= failed, (reason, failed)
        elif reason == HANDOFF_UNREACHABLE:
            # (the decode pool may all fail later in the run: one GPU at 0.05 s after a hand-off's link at 0)
            assert prefill and links_failed
        else:
            assert "context" in reason or "KV blocks" in reason, reason
    down = any(r in CLUSTER_DOWN for r in summary["requests_dropped_by_reason"])
    assert (summary["run_status"] == "failed") == down
    if down:
        assert all(math.isnan(v) for k, v in summary.items() if k.endswith("_per_s"))
    else:
        assert summary["run_status"] == ("partial" if dropped else "complete")
    done = np.array(sorted(finished), dtype=int)
    if done.size:
        first, finish, arrival = (arrays[k][done] for k in ("first_token_s", "finish_s", "arrival_s"))
        assert np.all(arrival <= first + 1e-12) and np.all(first <= finish + 1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(ROUTER_NAMES), st.lists(st.booleans(), min_size=1, max_size=6), st.integers(0, 9))
def test_routers_pick_only_live_engines_and_say_none_when_all_are_dead(name, alive, seed):
    class Engine:
        def __init__(self, up, load):
            self.alive, self.outstanding, self.kv_load, self.waiting, self.max_batch_size = up, load, load / 10, [], 8

    engines = [Engine(up, i % 3) for i, up in enumerate(alive)]
    router = ROUTERS[name](np.random.default_rng(seed))
    for _ in range(len(engines) + 2):
        choice = router.choose(engines, 0)
        if any(alive):
            assert choice is not None and engines[choice].alive
        else:
            assert choice is None


DISAGGREGATED = dict(model="llama3.1-70b", gpu="b200", tp=2, batching="disaggregated", rate=40.0, duration_s=20,
                     kv_transfer_gb_per_s=0.05)


@pytest.mark.parametrize("router", ROUTER_NAMES)
def test_decode_engine_dying_during_handoffs_reroutes_to_a_live_one(router):
    """Issue 13: a decode GPU failing while slow (0.05 GB/s) KV hand-offs are in flight. With other decode
    engines alive every request still finishes (none is handed to the dead engine, none "unfinished")."""
    result = api_simulate(**DISAGGREGATED, gpus=16, prefill_gpus=4, router=router, fail=("gpu:8@5",))
    summary = result.summary
    assert summary["run_status"] == "complete", summary["requests_dropped_by_reason"]
    assert summary["requests_completed"] == summary["requests_total"] > 700
    assert result.engine_result.engines["failed"] == [4]          # gpu8 = decode replica 4 of 8 (tp=2)


@pytest.mark.parametrize("router", ROUTER_NAMES)
def test_last_decode_engine_dying_drops_with_the_true_reason(router):
    """The issue's case: the only decode engine dies at 5 s. Round-robin raised RuntimeError, power-of-two
    ValueError, least-* handed requests to the dead engine ("unfinished"). Now each is dropped saying
    that no decode engine is left, and the run reports itself failed."""
    result = api_simulate(**DISAGGREGATED, gpus=8, prefill_gpus=6, router=router, fail=("gpu:6@5",))
    summary = result.summary
    assert summary["requests_dropped_by_reason"] == {NO_DECODE_ENGINE: summary["requests_total"]}
    assert summary["run_status"] == "failed" and math.isnan(summary["output_tokens_per_s"])
    assert math.isnan(result.cost["usd_per_million_tokens"]) and result.cost["usd_per_hour"] > 0


def test_every_gpu_failing_reports_a_failed_run_exit_3_and_a_reason_per_request(tmp_path):
    """After all GPUs fail, the JSON says how many requests were dropped and why, the per-request CSV
    names each one's reason, throughput and cost per token are null, and the command exits 3."""
    from tests.fuzzing import run_cli
    args = ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "2", "--rate", "20", "--duration", "4",
            "--fail", "gpu:0@1", "--fail", "gpu:1@1.5"]
    outcome = run_cli(args + ["--json", "--out", str(tmp_path / "run.json")])
    assert outcome.code == 3
    assert outcome.err.strip().splitlines()[-1].startswith("infersim: run failed: injected failures took down")
    document = json.loads(outcome.out)
    assert document == json.loads((tmp_path / "run.json").read_text())
    assert document["run_status"] == "failed"
    assert document["output_tokens_per_s"] is None and document["usd_per_million_tokens"] is None
    assert document["requests_completed"] > 0          # what finished before the failure is still counted
    assert document["requests_dropped_by_reason"] == {NO_ENGINE: document["requests_dropped"]}
    outcome = run_cli(args + ["--out", str(tmp_path / "requests.csv")])
    assert outcome.code == 3
    assert "requests_dropped_by_reason.no engine left alive after failures" in outcome.out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "requests.csv").read_text())))
    assert len(rows) == document["requests_total"]
    assert sum(r["drop_reason"] == NO_ENGINE for r in rows) == document["requests_dropped"]
    assert all((r["drop_reason"] == "") == (r["finish_s"] != "") for r in rows)


def test_mlperf_whose_scored_run_lost_every_engine_exits_3_as_simulate_does():
    """An mlperf score whose run lost every engine to --fail has no throughput: it says so once, last, and
    exits 3 (it exited 0 with output_tokens_per_s nan)."""
    from tests.fuzzing import run_cli
    outcome = run_cli(["mlperf", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--tp", "1",
                       "--max-batch-size", "64", "--quiet", "--fail", "gpu:0@1", "--queries", "100", "--json"])
    assert outcome.code == 3, outcome.err
    lines = outcome.err.strip().splitlines()
    assert lines[-1].startswith("infersim: run failed: injected failures took down every engine")
    assert sum("took down every engine" in line for line in lines) == 1
    assert json.loads(outcome.out)["output_tokens_per_s"] is None


def test_a_run_stopped_before_any_request_finished_says_so():
    """--max-time short of the first finish: the run is partial, as any stopped run, and warns that
    throughput is 0 (before, it passed without a word, cost per token infinite)."""
    result = api_simulate(model="llama3.1-8b", gpu="b200", gpus=1, rate=1.0, requests=10, max_time_s=0.001)
    assert result.summary["run_status"] == "partial" and result.summary["requests_completed"] == 0
    assert any("no request finished" in w for w in result.warnings)
    stopped_later = api_simulate(model="llama3.1-8b", gpu="b200", gpus=1, rate=1.0, requests=10, max_time_s=5.0)
    assert stopped_later.summary["requests_completed"] > 0
    assert not any("no request finished" in w for w in stopped_later.warnings)


def test_a_stopped_run_counts_no_finish_after_the_stop_and_says_how_many_were_cut():
    """--max-time 30 s on a run of 300 requests: engines run alone (no SimPy) unless something interacts,
    such as a failure injected after the stop. Both paths end every step at the stop, so they count the
    same finishes, none after 30 s (before, the engines alone finished the steps in flight: 141 against
    139, one at 30.04 s), and the run says how many requests the stop cut."""
    options = dict(model="llama3.1-70b", gpu="h100", gpus=8, tp=4, rate=10.0, requests=300, input_tokens=2000,
                   output_tokens=500, max_time_s=30.0)
    alone, with_simpy = api_simulate(**options), api_simulate(**options, fail=("gpu:0@1000",))
    assert alone.summary["requests_completed"] == with_simpy.summary["requests_completed"] < 300
    assert np.nanmax(alone.engine_result.arrays["finish_s"]) <= 30.0
    cut = 300 - alone.summary["requests_completed"]
    assert any(w.startswith(f"{cut} of 300 requests were unfinished when the run stopped at 30 s") for w in alone.warnings)


def test_some_gpus_failing_is_a_partial_run_that_exits_0():
    result = api_simulate(model="llama3.1-8b", gpu="b200", gpus=2, rate=20.0, duration_s=4, fail=("gpu:0@1",),
                          max_time_s=3.0)
    summary = result.summary
    assert summary["run_status"] == "partial" and summary["output_tokens_per_s"] > 0
    assert all(r.startswith("unfinished when the simulation stopped at 3.000 s")
               for r in summary["requests_dropped_by_reason"])


def test_a_failure_run_leaves_the_shared_topology_whole():
    """A config's topology is shared by its runs (routes stay cached); a run with failures edits a copy:
    the graph keeps every node and link, and a second run of the same config sees the same cluster."""
    from dataclasses import replace
    from simulator.api import serving_config
    graph = load_topology("auto", serving_config(gpu="b200").gpu, 4)
    nodes, edges = graph.number_of_nodes(), graph.number_of_edges()
    config = replace(serving_config(model="llama3.1-8b", gpu="b200", gpus=4), topology=graph,
                     failures=(("gpu", 1, 0.5), ("link", "gpu2", "nvswitch0", 0.5)))
    workload = Requests(np.linspace(0, 2, 40), np.full(40, 200), np.full(40, 20))
    first, second = simulate(config, workload), simulate(config, workload)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (nodes, edges)
    assert first.summary == second.summary and first.summary["requests_total"] == 40


def test_idle_gpus_are_a_warning_and_a_field():
    """--tp 2 on 3 GPUs: one GPU holds no replica; the result says so instead of pricing it silently."""
    result = api_simulate(model="llama3.1-8b", gpu="b200", gpus=3, tp=2, offline=True, requests=4)
    assert result.plan["idle_gpus"] == 1 and result.to_dict()["warnings"] == [
        "1 of 3 GPUs stay idle: a replica takes 2 GPUs, so 3 GPUs hold 1"]
    assert result.cost["usd_per_hour"] == pytest.approx(3 * result.cost["usd_per_gpu_hour"])


@pytest.mark.parametrize("tp, message", [(3, "64 attention heads"), (5, "64 attention heads"), (16, None),
                                         (64, None)])
def test_tp_must_split_the_attention_heads(tp, message):
    """Llama 2 70B has 64 query heads and 8 KV heads: tp 16 or 64 gives each GPU whole query heads and a
    replicated KV head (as vLLM and TensorRT-LLM serve it); tp 3 or 5 splits no head evenly."""
    from simulator.models import get_model
    model = get_model("llama2-70b")
    if message is None:
        check_model_split(model, tp)
    else:
        with pytest.raises(ConfigError, match=f"`tp`: {tp} does not divide llama2-70b's {message}"):
            check_model_split(model, tp)


def test_tp_must_split_or_replicate_the_kv_heads():
    """48 query heads over 16 KV heads: tp 12 divides the query heads but neither divides 16 KV heads nor
    is a multiple of them, so some GPU would hold a fraction of a KV head."""
    from dataclasses import replace
    from simulator.models import get_model
    model = replace(get_model("llama2-70b"), name="odd", heads=48, kv_heads=16)
    check_model_split(model, 8)
    with pytest.raises(ConfigError, match="16 KV heads"):
        check_model_split(model, 12)


def test_a_failure_after_the_last_request_finished_is_reported_as_changing_nothing():
    """gpu:0@1000 on a run whose requests finish within seconds: the run is complete, ends with its last
    request (not at 1000 s, which also took the CLI's progress ticks there: gpu:3@1e8 never returned), no
    engine failed, and it says the failure came too late to matter."""
    from simulator.api import simulate
    result = simulate(model="llama3.1-8b", gpu="h200", gpus=2, rate=5, requests=10, fail=("gpu:0@1000",))
    assert result.summary["run_status"] == "complete" and result.summary["engines_failed"] == 0
    assert result.summary["simulated_s"] < 100
    assert any("came after the last request finished" in w and "never happened" in w for w in result.warnings)


def test_a_runs_failures_print_as_fail_takes_them():
    """plan.failures echoed ("gpu", 9, 0.0) as gpu:9:0.0, a form --fail refuses; it is the input's form
    now, and parses back to the same failure."""
    from simulator.api import parse_failure
    from simulator.failures import failure_text
    for text in ("gpu:9@0", "link:nic0-leaf0@2.5", "gpu:3@0.1234567", "gpu:1@100000000"):
        assert failure_text(parse_failure(text)) == text
        assert parse_failure(failure_text(parse_failure(text))) == parse_failure(text)


def test_a_streamed_run_also_ends_with_its_requests():
    """--stream-metrics keeps no per-request table, so a run's end was 'nothing left to do': a failure at
    1e8 s ran on to it (the CLI never returned) and counted an engine failed."""
    from simulator.api import simulate
    result = simulate(model="llama3.1-8b", gpu="h200", gpus=2, rate=5, requests=10, stream_metrics=True,
                      fail=("gpu:0@1e8",))
    assert result.summary["engines_failed"] == 0 and result.summary["simulated_s"] < 100
    assert any("never happened" in w for w in result.warnings)


def test_a_run_far_slower_than_its_arrivals_reports_progress_a_bounded_number_of_times():
    """At 1e-6 TB/s of HBM a 10 s arrival window drains for 1.55e6 simulated seconds; progress ticked every
    10 s / 200 of it (3e7 ticks); past the horizon it now ticks at 5% of the time simulated: about
    200 + ln(1.55e6 / 10) / ln(1.05) = 445 ticks (451 counted)."""
    from simulator.api import simulate
    ticks = []
    result = simulate(model="llama3.1-8b", gpu="h200", gpus=2, rate=1, duration_s=10, router="least-kv",
                      set_values=("gpu.hbm_tb_per_s=1e-6",), progress=lambda *args, **kw: ticks.append(args))
    assert result.summary["simulated_s"] > 1e5 and len(ticks) < 1000
