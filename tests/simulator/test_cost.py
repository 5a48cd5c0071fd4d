import pytest

from simulator.cost import cost_fields, usd_per_million_tokens
from simulator.hardware import get_gpu


def test_usd_per_million_tokens_by_hand():
    """8 GPUs x $4/h = $32/h; 100,000 tok/s = 3.6e8 tok/h -> $32 / 360 = $0.0889 per million."""
    assert usd_per_million_tokens(100_000, 32.0) == pytest.approx(32 / 360)


def test_cost_fields_use_catalog_range_or_user_price():
    gpu = get_gpu("b200")   # catalog 2.25 .. 5.0 $/GPU-hour
    fields = cost_fields(gpu, 8, 100_000)
    assert fields["usd_per_hour_low"] == pytest.approx(18.0)
    assert fields["usd_per_hour_high"] == pytest.approx(40.0)
    assert fields["usd_per_million_tokens_low"] < fields["usd_per_million_tokens"] < fields["usd_per_million_tokens_high"]
    mine = cost_fields(gpu, 8, 100_000, usd_per_gpu_hour=3.0)
    assert mine["usd_per_hour"] == 24.0
    assert mine["tokens_per_usd"] == pytest.approx(100_000 * 3600 / 24)
    assert mine["gpu_energy_j_per_token_upper_bound"] == pytest.approx(8 * 1000 / 100_000)
