"""Batching policies: each decides what one engine runs next, behind one small interface.

`next_step(engine)` returns a `StepPlan` (prompt work to run this step, and whether decoding sequences
advance in the same step), `DECODE` (decode only; the engine folds such steps until something changes)
or `None` (nothing to do). A policy decides the mix and, through the waiting queue it gives its engine
(`new_queue`), the order requests are admitted in; the mechanics of slots and KV blocks live in
`simulator.admission`, as in vLLM's scheduler.

Adding a policy is one class here (or in any module imported before the run) decorated with
`@BATCHING.register`: the CLI's `--batching` choices and `infersim catalog` read the registry.
A registered entry with `pools = (prefill policy, decode policy)` splits the cluster into a prefill
and a decode pool (disaggregated serving).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from simulator import admission
from simulator.registry import Registry

BATCHING = Registry("batching policy")
# The policy a run uses unless told otherwise. Serving engines now mostly mix prompt chunks into decode
# steps (vLLM's V1 engine, SGLang; NVIDIA's MLPerf TensorRT-LLM harness sets enable_chunked_context with
# max_num_tokens 1,536-16,384), yet with `chunked` as every row's policy, and a 2,048-token step budget
# searched beside 8,192 for Server and Interactive, the refitted MLPerf rows predicted held-out GPUs
# worse: leave-one-GPU-out median 8.8% against 8.3%, p90 22.7% against 20.4%, coverage 70% against 75%
# (in-sample log-RMS 0.074 against 0.077). With `chunked` for TensorRT-LLM and SGLang rows only, the
# in-sample fit was worse too (0.083). All these were single fits at seed 0, and the seed alone moves
# those figures by as much (`infersim validate --seed`: medians 8.3-8.9%, p90s 20.0-23.8%, log-RMS
# 0.073-0.080 over seeds 0-3): the evidence does not favour `chunked`, nor does it rule it out. Chunked
# Server and Interactive runs were measured on all three held-out splits later, at two seeds and three step
# budgets (mlperf.candidate_plans records the figures): each predicted held-out rows worse than this default.
DEFAULT_BATCHING = "continuous"


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
    pools = None

    def new_queue(self, table):
        """The engine's waiting queue: its order is the order requests are admitted in."""
        return admission.FirstComeFirstServed()

    def next_step(self, engine):  # pragma: no cover - interface
        raise NotImplementedError


@BATCHING.register
class StaticBatching(BatchingPolicy):
    """FasterTransformer style: take up to max_batch_size waiting requests, reserve KV for their whole
    prompt + output, prefill them (in steps of at most max_tokens_per_step tokens, the activations the
    memory plan holds), decode until the longest finishes; finished sequences keep their slot (padding)
    until the batch ends."""

    name = "static"
    admits_mid_decode = False
    preempts = False
    holds_finished_slots = True

    def next_step(self, engine):
        if not engine.prefilling:
            if engine.batch.running:
                return DECODE
            if not admission.whole_prompts(engine, token_budget=None, reserve_output=True):
                return None
        return StepPlan(admission.admitted_prompts(engine, engine.max_tokens_per_step))


@BATCHING.register
class ContinuousBatching(BatchingPolicy):
    """Orca / vLLM (v0 default): iteration-level scheduling, prefill first. A step either prefills newly
    admitted whole prompts (within max_tokens_per_step) or decodes every running sequence."""

    name = "continuous"

    def next_step(self, engine):
        chunks = admission.whole_prompts(engine, token_budget=engine.max_tokens_per_step)
        if chunks:
            return StepPlan(chunks)
        return DECODE if engine.batch.size else None


@BATCHING.register
class ChunkedPrefill(BatchingPolicy):
    """Sarathi-Serve: a token budget per step; every running sequence decodes one token and the rest
    of the budget goes to prompt chunks (partially prefilled prompts first, then new admissions)."""

    name = "chunked"

    def next_step(self, engine):
        budget = engine.max_tokens_per_step - engine.batch.size
        chunks = admission.prompt_chunks(engine, token_budget=budget) if budget > 0 else []
        if chunks:
            return StepPlan(chunks, with_decode=engine.batch.size > 0)
        return DECODE if engine.batch.size else None


class PrefillOnly(BatchingPolicy):
    """Prefill pool of disaggregated serving: prefill whole prompts, then hand the KV cache on."""

    name = "prefill-only"

    def next_step(self, engine):
        chunks = admission.whole_prompts(engine, token_budget=engine.max_tokens_per_step)
        return StepPlan(chunks) if chunks else None


class DecodeOnly(BatchingPolicy):
    """Decode pool of disaggregated serving: prefilled requests join at step boundaries. A sequence this
    engine preempted (its KV full) is prefilled again here, prompt and streamed tokens, before any new
    hand-off joins, as vLLM's decode instances recompute (they run the whole model). Before, it waited
    for a prefill this policy never ran: a disaggregated closed loop of 1,024 users left 88 requests
    unfinished forever."""

    name = "decode-only"

    def next_step(self, engine):
        if engine.waiting:
            chunks = admission.whole_prompts(engine, token_budget=engine.max_tokens_per_step)
            if chunks:
                return StepPlan(chunks)
        else:
            admission.handed_off(engine)
        return DECODE if engine.batch.size else None


@BATCHING.register
class ShortestPromptFirst(ContinuousBatching):
    """Continuous batching that admits the shortest waiting prompt first (lower mean TTFT under load;
    long prompts can wait behind a stream of short ones)."""

    name = "shortest-prompt-first"

    def new_queue(self, table):
        return admission.ShortestPromptFirst(table)


@BATCHING.register
class Disaggregated:
    """Splits the cluster: a prefill pool (whole prompts) hands each prompt's KV to a decode pool over the
    network (DistServe / Splitwise). Not a policy itself: it names the policies of its two pools."""

    name = "disaggregated"
    pools = (PrefillOnly, DecodeOnly)
