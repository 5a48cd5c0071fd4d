"""Money and energy: $/GPU-hour ranges to $/hour for a cluster, $ per million output tokens, tokens
per dollar, and an upper bound on energy per token from TDP (GPUs only, at full power)."""
from __future__ import annotations

import math

from simulator.errors import require_number
from simulator.hardware import GPUSpec


def usd_per_hour(gpus: int, usd_per_gpu_hour: float) -> float:
    return gpus * usd_per_gpu_hour


def usd_per_million_tokens(tokens_per_s: float, cluster_usd_per_hour: float) -> float:
    """$/hour / (tokens/s x 3600 s/hour) x 1e6 (nan when the throughput is unknown)."""
    if math.isnan(tokens_per_s):
        return math.nan
    if tokens_per_s <= 0:
        return float("inf")
    return cluster_usd_per_hour / (tokens_per_s * 3600.0) * 1e6


def cost_fields(gpu: GPUSpec, gpus: int, output_tokens_per_s: float,
                usd_per_gpu_hour: float | tuple[float, float] | None = None) -> dict:
    """Cost of `gpus` GPUs serving `output_tokens_per_s`, over the catalog's price range (or the user's).

    A single user price gives low = mid = high. Energy is TDP x GPUs / tokens/s: an upper bound
    (GPUs rarely sit at TDP; hosts, network and cooling are not counted).
    """
    served = output_tokens_per_s if math.isfinite(output_tokens_per_s) else math.nan  # nan: a failed run
    if usd_per_gpu_hour is None:
        low, high = gpu.usd_per_gpu_hour
    elif isinstance(usd_per_gpu_hour, (tuple, list)):
        low, high = usd_per_gpu_hour
    else:
        low = high = require_number("`usd_per_gpu_hour`", usd_per_gpu_hour, low=0, high=1e4)
    mid = (low + high) / 2
    fields = {
        "usd_per_gpu_hour": mid,
        "usd_per_hour": usd_per_hour(gpus, mid),
        "usd_per_hour_low": usd_per_hour(gpus, low),
        "usd_per_hour_high": usd_per_hour(gpus, high),
        "usd_per_million_tokens": usd_per_million_tokens(served, usd_per_hour(gpus, mid)),
        "usd_per_million_tokens_low": usd_per_million_tokens(served, usd_per_hour(gpus, low)),
        "usd_per_million_tokens_high": usd_per_million_tokens(served, usd_per_hour(gpus, high)),
        "tokens_per_usd": served * 3600.0 / usd_per_hour(gpus, mid) if mid > 0 else float("inf"),
        "gpu_power_w_upper_bound": gpus * gpu.power_w,
        "gpu_energy_j_per_token_upper_bound": gpus * gpu.power_w / served if served > 0
        else math.nan if math.isnan(served) else float("inf"),
    }
    return fields
