"""Batching policies: each decides what one engine runs next, behind one small interface.

`next_step(engine)` returns a `StepPlan` (prompt work to run this step, and whether decoding sequences
advance in the same step), `DECODE` (decode only; the engine folds such steps until something changes)
or `None` (nothing to do). Admission mechanics (slots, KV blocks) live in the engine; a policy only
decides order and mix, as vLLM's scheduler does.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepPlan:
    chunks: list = field(default_factory=list)   # (request id, prompt tokens this step)
    with_decode: bool = False


DECODE = StepPlan(chunks=[], with_decode=True)


class BatchingPolicy:
    """Interface. `admits_mid_decode`: a new request can join at the next step boundary, so an arrival
    should wake an engine that is folding decode steps."""

    name = "base"
    admits_mid_decode = True
    preempts = True
    holds_finished_slots = False

    def next_step(self, engine):  # pragma: no cover - interface
        raise NotImplementedError


class StaticBatching(BatchingPolicy):
    """FasterTransformer style: take up to max_batch_size waiting requests, reserve KV for their whole
    prompt + output, prefill them together, decode until the longest finishes; finished sequences keep
    their slot (padding) until the batch ends."""

    name = "static"
    admits_mid_decode = False
    preempts = False
    holds_finished_slots = True

    def next_step(self, engine):
        if engine.batch_active():
            return DECODE
        chunks = engine.admit_whole_prompts(token_budget=None, reserve_output=True)
        return StepPlan(chunks) if chunks else None


class ContinuousBatching(BatchingPolicy):
    """Orca / vLLM (v0 default): iteration-level scheduling, prefill first. A step either prefills newly
    admitted whole prompts (within max_tokens_per_step) or decodes every running sequence."""

    name = "continuous"

    def next_step(self, engine):
        chunks = engine.admit_whole_prompts(token_budget=engine.max_tokens_per_step)
        if chunks:
            return StepPlan(chunks)
        return DECODE if engine.decoding else None


class ChunkedPrefill(BatchingPolicy):
    """Sarathi-Serve: a token budget per step; every running sequence decodes one token and the rest
    of the budget goes to prompt chunks (partially prefilled prompts first, then new admissions)."""

    name = "chunked"

    def next_step(self, engine):
        budget = engine.max_tokens_per_step - engine.decoding
        chunks = engine.admit_chunks(token_budget=budget) if budget > 0 else []
        if chunks:
            return StepPlan(chunks, with_decode=engine.decoding > 0)
        return DECODE if engine.decoding else None


class PrefillOnly(BatchingPolicy):
    """Prefill pool of disaggregated serving: prefill whole prompts, then hand the KV cache on."""

    name = "prefill-only"

    def next_step(self, engine):
        chunks = engine.admit_whole_prompts(token_budget=engine.max_tokens_per_step)
        return StepPlan(chunks) if chunks else None


class DecodeOnly(BatchingPolicy):
    """Decode pool of disaggregated serving: prefilled requests join at step boundaries, no prefill."""

    name = "decode-only"

    def next_step(self, engine):
        engine.admit_handed_off()
        return DECODE if engine.decoding else None


POLICIES = {cls.name: cls for cls in (StaticBatching, ContinuousBatching, ChunkedPrefill, PrefillOnly, DecodeOnly)}
