"""One simulation split over processes gives the same result as one process (issue 14)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from simulator.api import serving_config
from simulator.errors import ConfigError
from simulator.parallel import engine_groups
from simulator.run import simulate
from workloads.requests import Requests


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(2, 6), st.sampled_from(["continuous", "chunked", "static"]), st.integers(0, 50),
       st.integers(2, 3))
def test_jobs_give_the_same_result_as_one_process(replicas, batching, seed, jobs):
    """Counts, tokens, makespan, every percentile and every per-request time are identical."""
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=replicas, batching=batching, seed=seed,
                            max_batch_size=16)
    rng = np.random.default_rng(seed)
    count = 300
    workload = Requests(np.sort(rng.uniform(0, 20, count)), rng.integers(10, 400, count),
                        rng.integers(1, 200, count))
    one, many = simulate(config, workload), simulate(config, workload, jobs=jobs)
    assert all(_same(one.summary[k], many.summary[k]) for k in one.summary), \
        {k: (one.summary[k], many.summary[k]) for k in one.summary if not _same(one.summary[k], many.summary[k])}
    for key in ("first_token_s", "finish_s", "engine", "preemptions"):
        np.testing.assert_array_equal(one.arrays[key], many.arrays[key])


def test_interacting_engines_run_in_one_process_and_say_so():
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=2, router="least-outstanding")
    workload = Requests(np.linspace(0, 1, 20), np.full(20, 100), np.full(20, 10))
    result = simulate(config, workload, jobs=2)
    assert any("ran in one process" in w for w in result.warnings)


def test_engine_groups_balance_requests_and_keep_every_engine_once():
    groups = engine_groups([10, 10, 10, 10, 40], 2)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert groups == [[0, 1, 2, 3], [4]]
    assert engine_groups([5] * 3, 8) == [[0], [1], [2]]


@pytest.mark.parametrize("jobs", [0, -1, 2.5, True, 10**6])
def test_bad_jobs_are_refused_naming_the_field(jobs):
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=2)
    with pytest.raises(ConfigError, match="`jobs`"):
        simulate(config, Requests(np.zeros(2), np.full(2, 10), np.full(2, 2)), jobs=jobs)
