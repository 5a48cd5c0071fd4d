"""A run too short for its requests' lifetimes says so: its throughput is mostly the drain after the last
arrival, and an overload has not shown yet."""
import numpy as np

from simulator.api import simulate
from simulator.metrics import REQUEST_LIFETIMES, short_run_warning


def test_short_run_warning_by_hand():
    """Arrivals at 0, 1, ..., 10 s (span 10 s, 10 gaps), 100 output tokens each: the arrivals bring
    10 x 100 / 10 = 100 tokens/s. With a mean latency of 2 s the span is 5 lifetimes, fewer than 8:
    8 x 2 = 16 s is asked for.
    At 16 s of arrivals or more, or when every arrival comes at once (offline), nothing is said."""
    assert REQUEST_LIFETIMES == 8
    outputs = np.full(11, 100)
    text = short_run_warning(np.arange(11.0), outputs, {"latency_mean_s": 2.0})
    assert "10 s of arrivals span 5 mean request lifetimes" in text
    assert "brought 100 tokens/s" in text and "at least 8 lifetimes (16 s" in text and "`duration_s`" in text
    assert short_run_warning(np.linspace(0, 16, 11), outputs, {"latency_mean_s": 2.0}) is None
    assert short_run_warning(np.zeros(11), outputs, {"latency_mean_s": 2.0}) is None
    assert short_run_warning(np.arange(11.0), outputs, {"latency_mean_s": float("nan")}) is None


def test_simulate_warns_of_a_run_shorter_than_its_lifetimes():
    """256 output tokens at ~10-20 ms a token last several seconds, so 3 s of arrivals is under 8 of them;
    60 s is not."""
    options = dict(model="llama3.1-8b", gpu="h100", gpus=1, rate=4, input_tokens="512", output_tokens="256")
    short, long = simulate(duration_s=3, **options), simulate(duration_s=60, **options)
    assert any("mean request lifetimes" in w for w in short.warnings)
    assert not any("mean request lifetimes" in w for w in long.warnings)


def test_a_run_whose_drain_weighs_in_its_throughput_says_so():
    """Arrivals at 0, 1.6, ..., 16 s (span 16 s: 8 lifetimes of 2 s), 100 output tokens each: they bring
    10 x 100 / 16 = 62.5 tokens/s. A run that served 50 tokens/s over its 20 s makespan is 20% below it
    (the drain after the last arrival, or a backlog): said, with both figures. At 57 tokens/s (9% below,
    under DRAIN_SHARE) nothing is."""
    from simulator.metrics import DRAIN_SHARE
    assert DRAIN_SHARE == 0.10
    outputs, arrivals = np.full(11, 100), np.linspace(0, 16, 11)
    text = short_run_warning(arrivals, outputs, {"latency_mean_s": 2.0, "output_tokens_per_s": 50.0,
                                                 "makespan_s": 20.0})
    assert text.startswith("output_tokens_per_s 50 is 20% below the 62 tokens/s the arrivals brought")
    assert "(20 s against 16 s of arrivals)" in text and "`duration_s`" in text
    assert short_run_warning(arrivals, outputs, {"latency_mean_s": 2.0, "output_tokens_per_s": 57.0,
                                                 "makespan_s": 17.5}) is None


def test_simulate_warns_when_the_drain_weighs_more_than_a_tenth():
    """The README's first command at 120 s of arrivals (12 lifetimes, so no short-run warning) scored 14%
    under what its arrivals brought, the slowest requests draining 19 s past the last arrival; at 600 s it
    is within the tenth."""
    options = dict(model="llama2-70b", gpu="mi355x", gpus=8, rate=40)
    short, long = simulate(duration_s=120, **options), simulate(duration_s=600, **options)
    assert any("below the" in w and "the arrivals brought" in w for w in short.warnings)
    assert not any("the arrivals brought" in w for w in long.warnings)
