"""Representative runs (one replica stands for interchangeable ones) against the full cluster (issue 14)."""
import numpy as np
import pytest

from simulator.api import serving_config
from simulator.errors import ConfigError
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


@pytest.mark.parametrize("model, scenario, output_mean", [("llama2-70b", "offline", None), ("llama2-70b", "server", 250.0),
                                                          ("llama3.1-8b", "server", None),
                                                          ("deepseek-r1", "offline", 900.0)])
def test_a_drawn_share_holds_the_whole_streams_values(model, scenario, output_mean):
    """Drawing only one replica's share (of every 12 queries, the first 3: a pp-3 replica among four)
    gives bit for bit the values the whole stream holds at those positions: empirical, fixed, lognormal
    and rescaled lengths, Offline and Poisson arrivals (the running sum carried across chunks), over a
    count spanning several draw chunks; the rescaled outputs' scale still sees every draw."""
    from workloads.requests import DRAW_CHUNK, Share
    from workloads.scenarios import get_scenario
    spec = get_scenario(model, scenario)
    rate = None if scenario == "offline" else 40.0
    share = Share(12, 3)
    for count in (0, 1, 11, 2 * DRAW_CHUNK + 5):
        whole = spec.requests(count, rate, 7, output_mean)
        part = spec.requests(count, rate, 7, output_mean, share)
        assert part.share == share and len(part) == share.count(count)
        for field in ("arrival_s", "input_tokens", "output_tokens"):
            np.testing.assert_array_equal(getattr(part, field), share.pick(getattr(whole, field)), field)


def test_a_run_on_a_drawn_share_is_the_representative_run():
    """A representative run on the drawn share of replica 0 is the representative run on the whole
    stream, summary for summary; a share drawn for another cluster is refused."""
    from workloads.requests import Share
    from workloads.scenarios import get_scenario
    config = serving_config(model="llama3.1-8b", gpu="h100", gpus=4, max_batch_size=64, seed=3)
    spec = get_scenario("llama3.1-8b", "server")
    whole = simulate(config, spec.requests(3000, 30.0, 3), representative=True)
    part = simulate(config, spec.requests(3000, 30.0, 3, share=Share(4, 1)), representative=True)
    assert part.summary == whole.summary
    with pytest.raises(ConfigError, match="share"):
        simulate(config, spec.requests(3000, 30.0, 3, share=Share(8, 1)), representative=True)
