"""A replica's saturated throughput in closed form, from the step-cost model: to rank plans and size runs
before simulating them (the simulation, not this estimate, gives every reported number).

Continuous batching at steady state holds B sequences: the plan's batch limit, or as many as the KV
cache holds at their average context (prompt + half the output). Each decode step yields B tokens and
completes B / output requests, whose prompts (B x input / output tokens) are prefilled in steps of at
most the token budget; when fewer than one prompt arrives per decode step (long outputs), a prompt
gets a prefill step of its own only every output / B decode steps, so that step's fixed costs are
shared by those decode steps, not paid by each. Tokens per second = B / (decode step + prefill per
decode step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.costmodel import BatchShape, StepCost, causal_pairs


@dataclass(frozen=True)
class Capacity:
    batch: float                   # sequences in flight across the replica
    tokens_per_s: float            # output tokens per second of one replica (one pipeline engine x pp)
    requests_per_s: float
    decode_step_s: float


def _at_batch(cost: StepCost, batch: float, input_mean: float, output_mean: float) -> tuple[float, float]:
    """(decode step, decode step plus the prefill work each decode step brings) at `batch` sequences."""
    plan = cost.plan
    average_context = input_mean + output_mean / 2
    decode = cost.step_time_s(BatchShape(decode_seqs=batch, decode_context=batch * average_context))
    arriving = batch / output_mean                # prompts per decode step
    budget = plan.max_tokens_per_step * plan.attention_dp
    if arriving < 1:
        chunks = max(1, math.ceil(input_mean / budget))
        steps, per_step = arriving * chunks, input_mean / chunks
    else:
        steps = max(1.0, math.ceil(arriving * input_mean / budget))
        per_step = arriving * input_mean / steps
    prompts = per_step / input_mean
    window = cost.model.sliding_window
    prefill = steps * cost.step_time_s(BatchShape(
        prefill_tokens=per_step, prefill_pairs=prompts * causal_pairs(0, input_mean),
        prefill_window_pairs=prompts * causal_pairs(0, input_mean, window) if window else 0.0, prefill_seqs=prompts))
    return decode, decode + prefill


def replica_capacity(cost: StepCost, kv_tokens_per_replica: int, input_mean: float, output_mean: float,
                     window_tokens: float = 0.0, tpot_limit_s: float | None = None) -> Capacity:
    """Saturated output tokens/s of one replica (all its pipeline engines) under continuous batching;
    `window_tokens`: what each sequence's sliding-window layers hold, in full-layer token equivalents.
    With `tpot_limit_s` the batch also stays small enough that a decode step with its share of prefill
    fits the limit (where Interactive's TPOT limit, not capacity, bounds the rate)."""
    plan = cost.plan
    engines = plan.pp
    by_kv = kv_tokens_per_replica / engines / (input_mean + output_mean / 2 + window_tokens)
    batch = max(1.0, min(plan.max_batch_size * plan.attention_dp, by_kv))
    decode, step = _at_batch(cost, batch, input_mean, output_mean)
    if tpot_limit_s is not None and step > tpot_limit_s:
        low, high = 1.0, batch               # the step grows with the batch: bisect for the limit
        for _ in range(30):
            middle = (low + high) / 2
            if _at_batch(cost, middle, input_mean, output_mean)[1] <= tpot_limit_s:
                low = middle
            else:
                high = middle
        batch = low
        decode, step = _at_batch(cost, batch, input_mean, output_mean)
    tokens = engines * batch / step
    return Capacity(batch * engines, tokens, tokens / output_mean, decode)
