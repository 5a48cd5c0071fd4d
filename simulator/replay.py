"""Re-price a recorded run: the busy time of an engine's steps under another step-cost model.

An Offline run's steps (which prompts join, when sequences finish or get preempted) depend on KV blocks,
slots and token budgets, never on how long a step takes; so its makespan under any efficiency is the
sum of its recorded steps priced anew, computed for all steps at once. Calibration uses this to move
efficiency parameters without simulating again; a window of the trace (its steady state) is priced
from the same step times, not again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.costmodel import StepCost
from simulator.engine import StepTrace, fold_decode


@dataclass(frozen=True)
class TraceWindow:
    """The steps of a trace between two of its marks: prompt steps [prompt_from, prompt_to), decode steps
    folded per batch size (`size_index` into the whole trace's sizes, steps at each, context sum), and
    the output tokens they generated (one per completed prompt and per decoding sequence)."""

    prompt_from: int
    prompt_to: int
    size_index: np.ndarray
    steps: np.ndarray
    context_sum: float
    tokens: float


def trace_window(trace: StepTrace, first_mark=None, last_mark=None) -> TraceWindow:
    """The window between two of `trace`'s marks (None: its first or last step)."""
    prompt_from, decode_from = (first_mark[2], first_mark[3]) if first_mark else (0, 0)
    prompt_to, decode_to = (last_mark[2], last_mark[3]) if last_mark else (len(trace.prompt_steps),
                                                                           len(trace.decode_stretches))
    shapes, _, decode = trace.arrays()
    tokens = 0.0
    if prompt_to > prompt_from:
        tokens += float(np.sum(shapes.prefill_seqs[prompt_from:prompt_to] + shapes.decode_seqs[prompt_from:prompt_to]))
    size_index, steps, context_sum = np.zeros(0, dtype=int), np.zeros(0), 0.0
    if decode_to > decode_from:
        sizes, steps, context_sum = fold_decode(trace.decode_stretches[decode_from:decode_to])
        size_index = np.searchsorted(decode[0], sizes)
        tokens += float(np.dot(sizes, steps))
    return TraceWindow(prompt_from, prompt_to, size_index, steps, context_sum, tokens)


def busy_times_s(trace: StepTrace, cost: StepCost, windows=()) -> tuple[float, list[float]]:
    """Seconds the traced steps take under `cost`, and those of each of `windows` (`trace_window`s of
    it): prompt steps priced from their aggregates, decode steps as steps x a(n) per batch size n plus
    b x the context sum, a(n) priced with the prompt steps (`StepTrace.arrays`)."""
    total, parts = 0.0, [0.0] * len(windows)
    shapes, prompts, decode = trace.arrays()
    if shapes is None:
        return total, parts
    times = cost.step_time_s(shapes)
    if prompts:
        total += float(np.sum(times[:prompts]))
        for i, window in enumerate(windows):
            parts[i] += float(np.sum(times[window.prompt_from:window.prompt_to]))
    if decode is not None:
        _, steps, context_sum = decode
        a, b = times[prompts:], cost.decode_s_per_context_token
        total += float(np.dot(steps, a)) + b * context_sum
        for i, window in enumerate(windows):
            parts[i] += float(np.dot(window.steps, a[window.size_index])) + b * window.context_sum
    return total, parts


def busy_time_s(trace: StepTrace, cost: StepCost) -> float:
    """Seconds the traced steps take under `cost` (`busy_times_s` without windows)."""
    return busy_times_s(trace, cost)[0]
