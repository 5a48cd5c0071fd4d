"""Re-price a recorded run: the busy time of an engine's steps under another step-cost model.

An Offline run's steps (which prompts join, when sequences finish or get preempted) depend on KV blocks,
slots and token budgets, never on how long a step takes; so its makespan under any efficiency is the
sum of its recorded steps priced anew, computed for all steps at once. Calibration uses this to move
efficiency parameters without simulating again.
"""
from __future__ import annotations

import numpy as np

from simulator.costmodel import StepCost
from simulator.engine import StepTrace


def busy_time_s(trace: StepTrace, cost: StepCost) -> float:
    """Seconds the traced steps take under `cost`: prompt steps priced from their aggregates, decode steps
    as steps x a(n) per batch size n plus b x the trace's context sum (`StepTrace.arrays`)."""
    total = 0.0
    prompt, decode = trace.arrays()
    if prompt is not None:
        total += float(np.sum(cost.step_time_s(prompt)))
    if decode is not None:
        sizes, steps, context_sum = decode
        a, b = cost.decode_coefficients(sizes)
        total += float(np.dot(steps, a)) + b * context_sum
    return total
