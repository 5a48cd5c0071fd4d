"""Representative runs (one replica stands for interchangeable ones) against the full cluster (issue 14)."""
import numpy as np
import pytest

from simulator.api import serving_config
from simulator.run import simulate
from workloads.requests import Requests


def test_one_replica_stands_for_the_cluster():
    """Round-robin over 4 replicas hands replica 0 arrivals 0, 4, 8, ...: simulated alone on exactly
    those, its requests get exactly the times they get in the full run; the cluster's throughput is the
    replica's times 4, within the spread between replicas (a few percent over 4,000 requests), and the
    summary says one replica was simulated."""
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=4, max_batch_size=64, seed=3)
    rng = np.random.default_rng(3)
    count = 4000
    requests = Requests(np.cumsum(rng.exponential(1 / 60.0, count)), rng.integers(50, 1500, count),
                        rng.integers(2, 300, count))
    full = simulate(config, requests)
    one = simulate(config, requests, representative=True)
    assert one.summary["replicas_simulated"] == 1 and "replicas_simulated" not in full.summary
    mine = np.arange(count) % 4 == 0
    for key in ("first_token_s", "finish_s"):
        np.testing.assert_array_equal(one.arrays[key], full.arrays[key][mine])
    for key in ("output_tokens_per_s", "requests_per_s"):
        assert one.summary[key] == pytest.approx(full.summary[key], rel=0.05), key
    assert one.summary["ttft_p99_s"] == pytest.approx(full.summary["ttft_p99_s"], rel=0.25)
