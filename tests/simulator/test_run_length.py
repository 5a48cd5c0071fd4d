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
