"""The early-stop rule for Server runs (issue 14): it stops overloaded runs early and never flips a verdict."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from simulator.api import serving_config
from simulator.early_stop import violations_needed
from simulator.metrics import SLA
from simulator.run import simulate
from simulator.search import meets_sla
from workloads.requests import Requests


def test_violations_needed_matches_numpys_interpolated_p99():
    """p99 of N values sits between sorted[floor(h)] and sorted[ceil(h)], h = 0.99 (N - 1): with 100
    values h = 98.01, so 100 - 98 = 2 values above the limit force it above; 1 does not."""
    assert violations_needed(100) == 2
    values = np.zeros(100)
    values[-1] = 10.0
    assert np.percentile(values, 99) <= 1.0          # one late value: p99 still within a limit of 1
    values[-2] = 10.0
    assert np.percentile(values, 99) > 1.0           # two: above it
    for n in (1, 2, 7, 101, 1000, 12345):
        k = violations_needed(n)
        values = np.zeros(n)
        values[n - k:] = 10.0                 # k values far above a limit of 1 force the p99 above it
        assert np.percentile(values, 99) > 1.0
        if k > 1:                             # k - 1 values just above it need not
            values[:] = 0.0
            values[n - k + 1:] = 1.0 + 1e-9
            assert np.percentile(values, 99) <= 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(rate=st.floats(5, 400), router=st.sampled_from(["round-robin", "least-outstanding"]),
       replicas=st.integers(1, 3), ttft=st.sampled_from([0.5, 2.0]), tpot=st.sampled_from([0.02, 0.05, 0.2]),
       seed=st.integers(0, 20))
def test_early_stop_never_flips_a_server_verdict(rate, router, replicas, ttft, tpot, seed):
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=replicas, router=router, seed=seed,
                            max_batch_size=64)
    rng = np.random.default_rng(seed)
    count = 400
    requests = Requests(np.cumsum(rng.exponential(1 / rate, count)), rng.integers(50, 2000, count),
                        rng.integers(2, 400, count))
    sla = SLA(ttft, tpot)
    full = simulate(config, requests)
    early = simulate(config, requests, stop_when_missed=sla)
    assert meets_sla(early.summary, sla) == meets_sla(full.summary, sla)
    if "stopped_early_s" in early.summary:
        assert not meets_sla(full.summary, sla)
        assert early.summary["stopped_early_s"] <= full.summary["simulated_s"] + 1e-9
        # the limit it names is one the full run misses
        missed = early.summary["stopped_early_by"]
        limit = {"ttft": ttft, "tpot": tpot}.get(missed)
        assert (full.summary[f"{missed}_p99_s"] > limit) if limit else full.summary["requests_dropped"] > 0
    else:
        assert early.summary["output_tokens_per_s"] == full.summary["output_tokens_per_s"]


def test_an_overloaded_run_stops_early():
    """At 20x one H100's capacity the queue grows from the start: the run stops well before the end."""
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=1)
    count = 3000
    requests = Requests(np.linspace(0, 30, count), np.full(count, 1000), np.full(count, 200))
    early = simulate(config, requests, stop_when_missed=SLA(2.0, 0.1))
    full = simulate(config, requests)
    assert early.summary["stopped_early_s"] < 0.5 * full.summary["simulated_s"]
    assert early.summary["stopped_early_by"] == "ttft"       # queueing: first tokens come late
    assert not meets_sla(full.summary, SLA(2.0, 0.1))
