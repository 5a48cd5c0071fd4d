import math

import pytest

from simulator.errors import InfeasibleError
from simulator.metrics import SLA
from simulator.search import _limit_ratio, fewest_units_reaching, max_rate_meeting_sla


def synthetic_queue(service_s: float):
    """An M/M/1-like stand-in: p99 TTFT = service / (1 - rho) x 4.6, TPOT constant. With service 0.01 s
    and a 1 s limit the threshold is rho = 1 - 0.046 -> rate = 95.4 /s."""
    def run(rate):
        rho = rate * service_s
        ttft = math.inf if rho >= 1 else service_s / (1 - rho) * 4.6
        return {"ttft_p99_s": ttft, "tpot_p99_s": 0.01, "requests_dropped": 0}
    return run




def test_bisection_finds_known_threshold():
    found = max_rate_meeting_sla(synthetic_queue(0.01), SLA(ttft_p99_s=1.0, tpot_p99_s=0.2), 10.0,
                                 relative_tolerance=0.005)
    assert found.rate_per_s == pytest.approx(95.4, rel=0.006)
    assert found.rate_per_s <= 95.4 + 1e-9


def test_bisection_from_above():
    found = max_rate_meeting_sla(synthetic_queue(0.01), SLA(ttft_p99_s=1.0), 1000.0, relative_tolerance=0.005)
    assert found.rate_per_s == pytest.approx(95.4, rel=0.006)


def test_unreachable_sla_says_why():
    with pytest.raises(InfeasibleError, match=r"SLA unreachable.*p99 TPOT 0.01 s > 0.001 s"):
        max_rate_meeting_sla(synthetic_queue(0.01), SLA(tpot_p99_s=0.001), 10.0)


def test_sizing_returns_the_minimum():
    """Each unit serves 1,000 tok/s: 12,345 tok/s needs 13 units and 12 miss."""
    found = fewest_units_reaching(lambda units: (units * 1000.0, None), 12_345)
    assert found.units == 13
    assert found.units - 1 < 12.345


def test_sizing_unreachable():
    with pytest.raises(InfeasibleError, match="target unreachable"):
        fewest_units_reaching(lambda units: (min(units, 5) * 1.0, None), 10, max_units=64)


@pytest.mark.parametrize("start", [1, 3, 13, 14, 50, 400])
def test_sizing_minimum_from_any_start(start):
    """The start is only an estimate: from above or below the answer is still 13, and 12 was tried."""
    found = fewest_units_reaching(lambda units: (units * 1000.0, None), 12_345, start=start)
    assert found.units == 13
    assert (12, 12_000.0) in found.history


def test_unreachable_sla_costs_two_runs_not_ten():
    calls = []

    def run(rate):
        calls.append(rate)
        return {"ttft_p99_s": 0.5, "tpot_p99_s": 0.01}

    with pytest.raises(InfeasibleError):
        max_rate_meeting_sla(run, SLA(tpot_p99_s=0.001), 10.0)
    assert calls == [10.0, 0.01]


def test_fine_steps_widen_when_the_start_is_well_above_the_threshold():
    """A re-anchoring search starts near its guess in 2% steps; when the guess is 10% high (threshold
    95.4/s, start 105/s) each miss squares the step (1.02, 1.04, 1.08), so it brackets in 5 runs
    (105, 102.9, floor, 98.9, 91.4) and narrows the 8% bracket in 3 (93.6 interpolated, then midpoints
    96.3 and 94.4, as the queue's convex TTFT makes interpolation undershoot): 8 runs, where halving
    after the floor check took 10."""
    found = max_rate_meeting_sla(synthetic_queue(0.01), SLA(ttft_p99_s=1.0), 105.0, step=1.02)
    assert found.rate_per_s == pytest.approx(95.4, rel=0.021) and found.rate_per_s <= 95.4 + 1e-9
    assert found.evaluations <= 8


def test_fine_steps_widen_when_the_start_is_far_below_the_threshold():
    """A re-anchoring guess 3x too low (start 31.8/s, threshold 95.4/s): 2% steps would climb 1.02^23 =
    1.58x in the 24 runs allowed and stop at ~50/s; squaring the step on each pass (1.02, 1.04, 1.08,
    1.17, 1.37, 1.87, 2) brackets it in a few runs and bisects to within 2%."""
    found = max_rate_meeting_sla(synthetic_queue(0.01), SLA(ttft_p99_s=1.0), 31.8, step=1.02)
    assert found.rate_per_s == pytest.approx(95.4, rel=0.021) and found.rate_per_s <= 95.4 + 1e-9
    assert found.evaluations <= 14


def test_a_smooth_latency_curve_closes_the_bracket_in_two_probes():
    """p99 TPOT = 10 ms x (rate / 50)^3 against a 30 ms limit: the threshold is 50 x 3^(1/3) = 72.11/s.
    From 40/s in steps of 2 the search brackets it with 40 (pass) and 80 (miss). Bisection to 2% would
    take five more runs (60, 70, 75, 72.5, 71.25); log TPOT is linear in log rate, so the interpolated
    probe lands on 72.11 (passes) and the next, one tolerance above it (73.5), misses: four runs."""
    def run(rate):
        return {"ttft_p99_s": 0.1, "tpot_p99_s": 0.01 * (rate / 50) ** 3, "requests_dropped": 0}

    found = max_rate_meeting_sla(run, SLA(ttft_p99_s=1.0, tpot_p99_s=0.03), 40.0)
    threshold = 50 * 3 ** (1 / 3)
    assert threshold / 1.02 <= found.rate_per_s <= threshold * (1 + 1e-9)
    assert found.evaluations == 4


def test_a_queue_that_blows_up_still_converges_like_bisection():
    """The M/M/1-like TTFT (see synthetic_queue) is convex in log rate, so interpolation undershoots
    from below; the search then alternates with midpoints and needs no more runs than bisection's
    (from 10/s in steps of 2: 10, 20, 40, 80, 160 bracket it; bisecting 80-160 to 0.5% takes 8, the
    search 6)."""
    found = max_rate_meeting_sla(synthetic_queue(0.01), SLA(ttft_p99_s=1.0), 10.0, relative_tolerance=0.005)
    assert found.rate_per_s == pytest.approx(95.4, rel=0.006) and found.rate_per_s <= 95.4 + 1e-9
    assert found.evaluations <= 5 + 8


def test_limit_ratio_reads_the_p99s_a_run_has():
    """The binding ratio is the larger p99 / limit; a p99 a run could not measure (nan: one-token outputs
    have no TPOT) is left out whichever limit it is, and a run that dropped requests cannot say."""
    sla = SLA(ttft_p99_s=2.0, tpot_p99_s=0.1)
    assert _limit_ratio({"ttft_p99_s": 1.0, "tpot_p99_s": 0.08}, sla) == pytest.approx(0.8)
    assert _limit_ratio({"ttft_p99_s": math.nan, "tpot_p99_s": 0.08}, sla) == pytest.approx(0.8)
    assert _limit_ratio({"ttft_p99_s": 1.0, "tpot_p99_s": math.nan}, sla) == pytest.approx(0.5)
    assert _limit_ratio({"ttft_p99_s": 1.0, "tpot_p99_s": 0.08, "requests_dropped": 3}, sla) is None
    stopped = {"ttft_p99_s": 3.0, "tpot_p99_s": 0.05, "requests_dropped": 40, "stopped_early_by": "ttft"}
    assert _limit_ratio(stopped, sla) == pytest.approx(1.5)
