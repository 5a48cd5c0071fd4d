"""The closed-form capacity estimate that ranks plans: prefill work per decode step, by hand."""
from types import SimpleNamespace

import pytest

from simulator.capacity import _at_batch
from simulator.plan import Plan


class FixedPlusPerToken:
    """A step costs 20 ms plus 10 us per token (prompt or decode) when it has any token."""

    plan = Plan(max_tokens_per_step=8192)
    model = SimpleNamespace(sliding_window=0)

    def step_time_s(self, shape):
        tokens = shape.prefill_tokens + shape.decode_seqs
        return (tokens > 0) * (0.020 + 1e-5 * tokens)


def test_long_outputs_share_a_prefill_steps_fixed_cost():
    """100 sequences, 1,000 output and 500 prompt tokens: 0.1 prompts arrive per decode step, so a
    500-token prefill step (20 + 5 ms) runs every tenth decode step: 2.5 ms per decode step, on a 21 ms
    decode step (20 ms + 100 x 10 us). Charging a whole prefill step to every decode step (its 20 ms
    fixed cost included) would give 20.5 ms instead."""
    decode, with_prefill = _at_batch(FixedPlusPerToken(), 100, 500, 1000)
    assert decode == pytest.approx(0.021)
    assert with_prefill == pytest.approx(0.021 + 0.1 * 0.025)


def test_short_outputs_prefill_every_decode_step():
    """400 sequences, 100 output and 500 prompt tokens: 4 prompts (2,000 tokens, within the 8,192 budget)
    arrive per decode step, one prefill step each time: 20 + 20 ms, on a 24 ms decode step."""
    decode, with_prefill = _at_batch(FixedPlusPerToken(), 400, 500, 100)
    assert decode == pytest.approx(0.024)
    assert with_prefill == pytest.approx(0.024 + 0.040)
