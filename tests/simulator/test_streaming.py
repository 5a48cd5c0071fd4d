"""Streaming metrics (bounded memory for long runs) against the full per-request table: the same
requests give identical counts, tokens and makespan, and percentiles within the histogram's bin width."""
import math

import numpy as np
import pytest

from simulator.api import serving_config, simulate as api_simulate
from simulator.run import ChunkedWorkload, simulate
from simulator.metrics import request_metrics
from simulator.plan import Plan
from workloads.requests import Requests
from workloads.spec import WorkloadSpec
from workloads.arrivals import Poisson
from workloads.lengths import LogNormal


def stream(requests, size=97):
    """The same requests cut into chunks of `size` (an odd size exercises chunk boundaries)."""
    def chunks():
        for start in range(0, len(requests.arrival_s), size):
            end = start + size
            yield Requests(requests.arrival_s[start:end], requests.input_tokens[start:end],
                           requests.output_tokens[start:end])
    return ChunkedWorkload(chunks)


@pytest.mark.parametrize("options", [
    dict(batching="continuous"),
    dict(batching="chunked", max_tokens_per_step=256),
    dict(batching="static", max_batch_size=8),
    dict(batching="disaggregated", prefill_gpus=1, gpus=3),
    dict(batching="continuous", memory_utilization=0.3, max_batch_size=512),   # tight KV: preemptions
    dict(batching="continuous", gpus=4, fail=("gpu:1@2",)),
])
def test_streaming_matches_the_full_table(options):
    options = {"model": "llama3.1-8b", "gpu": "h100", "gpus": 2, "tp": 1, "sla_ttft_s": 0.5, **options}
    config = serving_config(**options)
    rng = np.random.default_rng(7)
    count = 1500
    requests = Requests(np.cumsum(rng.exponential(1 / 60.0, count)), rng.integers(50, 3000, count),
                        rng.integers(1, 400, count))
    full_result = simulate(config, requests)
    full, streamed = full_result.summary, simulate(config, stream(requests)).summary
    for key in ("requests_total", "requests_completed", "requests_dropped", "output_tokens_completed", "input_tokens_completed",
                "preemptions", "engine_steps"):
        assert streamed[key] == full[key], key
    for key in ("makespan_s", "output_tokens_per_s", "ttft_mean_s", "latency_mean_s", "goodput_requests_per_s"):
        assert streamed[key] == pytest.approx(full[key], rel=1e-9), key
    # A histogram percentile is the order statistic at rank q% of n, to the bin width (~0.5%); numpy
    # interpolates between neighbours. So the streamed value must sit within a bin of the two order
    # statistics around that rank.
    per_request = request_metrics(full_result.arrays)
    finished = np.isfinite(full_result.arrays["finish_s"])
    for name in ("ttft", "tpot", "latency"):
        values = np.sort(per_request[f"{name}_s"][finished])
        values = values[np.isfinite(values)]
        for q in (50, 90, 99):
            rank = q / 100 * (values.size - 1)
            low, high = values[max(int(math.floor(rank)) - 1, 0)], values[min(int(math.ceil(rank)) + 1, values.size - 1)]
            value = streamed[f"{name}_p{q}_s"]
            assert low * 0.99 - 1e-6 <= value <= high * 1.01 + 1e-6, (name, q, low, value, high)


def test_chunked_spec_continues_arrivals_and_counts():
    spec = WorkloadSpec(arrival=Poisson(100.0), input_lengths=LogNormal(500, 0.5, 1, 4000),
                        output_lengths=LogNormal(200, 0.5, 1, 2000), requests=10_000)
    chunks = list(spec.chunks(seed=3, size=1000))
    arrival = np.concatenate([c.arrival_s for c in chunks])
    assert arrival.size == 10_000 and np.all(np.diff(arrival) >= 0)
    assert arrival[-1] == pytest.approx(100.0, rel=0.05)              # 10,000 arrivals at 100/s
    timed = WorkloadSpec(arrival=Poisson(100.0), input_lengths=LogNormal(500, 0.5, 1, 4000),
                         output_lengths=LogNormal(200, 0.5, 1, 2000), duration_s=30.0)
    arrival = np.concatenate([c.arrival_s for c in timed.chunks(seed=3, size=512)])
    assert arrival.max() < 30.0 and arrival.size == pytest.approx(3000, rel=0.1)


def test_api_streams_when_asked_and_refuses_a_per_request_csv(tmp_path):
    result = api_simulate(model="llama3.1-8b", gpu="b200", gpus=1, rate=20.0, requests=500, stream_metrics=True)
    assert result.engine_result.arrays is None and result.summary["requests_completed"] == 500
    assert math.isfinite(result.summary["ttft_p99_s"])
    from simulator.cli import main
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--rate", "20", "--requests", "50",
              "--stream-metrics", "--out", str(tmp_path / "r.csv")])
    assert exit_info.value.code == 2
