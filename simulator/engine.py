"""One serving engine (a replica, or one pipeline virtual engine): its waiting queue, its prompts in
flight, its decode batch (`DecodeBatch`) and KV blocks (`KVBlocks`), and the steps it runs.

Speed comes from aggregates: stretches of decode steps in which nothing arrives, finishes or runs out
of KV cache are priced in closed form (decode step time is `a(n) + b x context_sum`, an arithmetic
series). Each step comes in two halves, `begin_*` (price it) and `end_*` (apply it), so the same
engine runs under SimPy (`engine_loop.SimPyDriver`, when engines interact) or in a plain loop
(`engine_loop.run_alone`, when nothing else touches it). Nothing loops over tokens.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from simulator.costmodel import StepCost, causal_pairs, shape_arrays
from simulator.decode_batch import DecodeBatch
from simulator.kv_blocks import KVBlocks
from simulator.metrics import LatencyHistogram


@dataclass
class StepTrace:
    """Every step one engine ran, as batch aggregates: prompt steps as BatchShape tuples, folded decode
    stretches as (sequences, context sum at the first step, steps). Re-priced under other efficiencies
    it gives the engine's busy time without simulating again (the steps of a run whose arrivals are all
    at t = 0 do not depend on how long they take)."""

    prompt_steps: list = field(default_factory=list)
    decode_stretches: list = field(default_factory=list)
    # every MARK_EVERY finished requests: (requests finished, their output tokens, prompt steps and decode
    # stretches recorded so far); the steps between two marks are a stretch of the run's steady state
    marks: list = field(default_factory=list)
    finished_requests: int = 0
    finished_tokens: int = 0
    _arrays: tuple | None = field(default=None, repr=False, compare=False)

    MARK_EVERY = 64

    def note_finish(self, output_tokens: int) -> None:
        self.finished_requests += 1
        self.finished_tokens += output_tokens
        if self.finished_requests % self.MARK_EVERY == 0:
            self.marks.append((self.finished_requests, self.finished_tokens, len(self.prompt_steps),
                               len(self.decode_stretches)))

    def arrays(self) -> tuple:
        """(the steps to price, as one RecordedSteps: the prompt steps, then a decode-only step of each
        batch size at context 0, whose time is a(n); the number of prompt steps; decode steps folded or
        None), built once per trace length: calibration re-prices one trace thousands of times, and one
        pricing of both shares its per-count terms. Decode steps fold exactly into (batch sizes, steps
        run at each size, context sum S): a stretch of k steps from n sequences at context C takes
        k a(n) + b (k C + n k (k - 1) / 2), and b does not depend on n, so the whole trace's decode time
        is sum over sizes of steps x a(n), plus b x S. None for a trace without steps."""
        lengths = (len(self.prompt_steps), len(self.decode_stretches))
        if self._arrays is None or self._arrays[0] != lengths:
            decode = fold_decode(self.decode_stretches) if self.decode_stretches else None
            sizes = decode[0].tolist() if decode is not None else []
            rows = self.prompt_steps + [(0, 0.0, 0.0, 0, n, 0.0) for n in sizes]
            self._arrays = (lengths, shape_arrays(rows) if rows else None, len(self.prompt_steps), decode)
        return self._arrays[1:]


def fold_decode(stretches) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode stretches (sequences, context sum at the first step, steps) as (batch sizes, steps run at
    each size, context sum S): see `StepTrace.arrays`."""
    n, context, k = np.asarray(stretches, dtype=float).reshape(-1, 3).T
    sizes, where = np.unique(n, return_inverse=True)
    return sizes, np.bincount(where, weights=k), float(np.sum(k * context + n * k * (k - 1) / 2))


def prompt_step_row(engine, chunks, decode_seqs: int) -> tuple:
    """Aggregates of a step that runs prompt `chunks` ((request id, tokens) pairs) and, when
    `decode_seqs`, the engine's decode batch with them: a BatchShape's fields in SHAPE_FIELDS order, as
    the cost model prices (`StepCost.row_time_s`) and the trace records them."""
    window = engine.cost.model.sliding_window
    tokens = pairs = window_pairs = completes = 0
    prefilling = engine.prefilling
    for rid, take in chunks:
        done, _, prompt = prefilling[rid]
        tokens += take
        pairs += causal_pairs(done, take)
        if window:
            window_pairs += causal_pairs(done, take, window)
        completes += done + take == prompt
    return (tokens, pairs, window_pairs, completes, decode_seqs, engine.batch.context if decode_seqs else 0)


class InterTokenGaps:
    """Records decode steps' inter-token gaps into the run's histogram. Under prefill-first policies
    running sequences sit through prompt-only steps; their next gap includes the ones they sat through: a
    sequence whose prompt completes during a run of prompt-only steps waits through the rest of the run
    alone (before, every sequence joining after the run's first step was recorded as not waiting, and
    the ITL p99 of an overloaded engine fell to one decode step)."""

    def __init__(self, itl: LatencyHistogram):
        self.itl = itl
        self.stalls = []    # [sequences waiting, seconds] of the prompt-only steps since the last decode
        self.joined = []    # last-token times of sequences that joined from another engine since then

    def joined_at(self, last_token_s: float) -> None:
        """A sequence prefilled elsewhere joins the running batch; its next gap runs from the token it
        streamed when its KV landed (a hand-off held back for KV space waits in that gap)."""
        self.joined.append(last_token_s)

    def stall(self, duration_s: float, sequences: int) -> None:
        if self.stalls and self.stalls[-1][0] == sequences:
            self.stalls[-1][1] += duration_s
        else:
            self.stalls.append([sequences, duration_s])

    def preempted(self) -> None:
        """The newest sequence left the batch: if it joined from another engine, its gap goes with it."""
        if self.joined:
            self.joined.pop()

    def record(self, start_s: float, first_s: float, last_s: float, steps: int, n: int) -> None:
        """`steps` decode steps for `n` sequences from `start_s`, lasting first_s .. last_s."""
        if not self.joined and not self.stalls:
            self.itl.add_linear(first_s, last_s, steps, n)
            return
        # the first step's gaps: joiners' from their last token, then the stalls sat through
        for last_token_s in self.joined:
            self.itl.add(start_s + first_s - last_token_s, 1)
        rest, self.joined = n - len(self.joined), []
        # the first sequences waited through every stall, each later joiner from its own on
        waited_s, counted = sum(duration for _, duration in self.stalls), 0
        for waiting, duration in self.stalls:
            group = min(waiting, rest) - counted
            if group > 0:
                self.itl.add(first_s + waited_s, group)
                counted += group
            waited_s -= duration
        if rest > counted:
            self.itl.add(first_s, rest - counted)
        self.stalls = []
        if steps > 1:
            self.itl.add_linear(first_s + (last_s - first_s) / (steps - 1), last_s, steps - 1, n)


class Engine:
    """State and steps of one engine; `policy` decides each step, `cost` prices it."""

    def __init__(self, index: int, table, cost: StepCost, policy, kv: KVBlocks, itl: LatencyHistogram,
                 on_finish, on_prefilled=None, trace: StepTrace | None = None):
        self.index, self.table, self.cost, self.policy, self.kv = index, table, cost, policy, kv
        plan = cost.plan
        # limits are per attention group: a wide-EP replica runs attention_dp groups side by side
        self.max_batch_size = plan.max_batch_size * plan.attention_dp
        self.max_tokens_per_step = plan.max_tokens_per_step * plan.attention_dp
        self.on_finish = on_finish              # callback(request id, engine) when a request completes
        self.on_prefilled = on_prefilled        # disaggregated prefill pool: callback(request id, engine)
        self.batch = DecodeBatch(table, policy.holds_finished_slots)
        self.waiting = policy.new_queue(table)
        self.handed_off: deque[int] = deque()   # disaggregated decode pool: prefilled, waiting to join
        # id -> [prompt tokens in KV, KV blocks charged, prompt tokens to process (`prompt_tokens`)]
        self.prefilling: dict[int, list[int]] = {}
        self.outstanding = 0
        self.alive = True
        self.busy_s, self.steps, self.kv_block_s, self.preemptions = 0.0, 0, 0.0, 0
        self.peak_sequences = 0                 # most sequences held at once (decoding + prefilling)
        self.gaps = InterTokenGaps(itl)
        self.trace = trace                      # records every step's batch aggregates when given
        self.wake = None                        # set by a driver: new work might change the next step

    # ---- what routers read ----------------------------------------------------------------------
    @property
    def kv_load(self) -> float:
        return self.kv.used(self.batch) / self.kv.capacity

    def prompt_tokens(self, rid: int) -> int:
        """Tokens a (re)started prefill processes: the prompt plus anything generated before preemption."""
        return self.table.input_tokens[rid] + self.table.generated[rid]

    # ---- entry points ----------------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        self.waiting.push(rid)
        self._arrived(rid)

    def receive_handoff(self, rid: int) -> None:
        """A request prefilled elsewhere arrives to decode here."""
        self.handed_off.append(rid)
        self._arrived(rid)

    def _arrived(self, rid: int) -> None:
        self.table.engine[rid] = self.index
        self.outstanding += 1
        if self.wake is not None:
            self.wake()

    def hold_for_handoff(self, blocks: int) -> None:
        """A prefilled prompt's KV stays here until its hand-off lands; the request has left this engine."""
        self.kv.reserved += blocks
        self.outstanding -= 1

    def release_reserved(self, blocks: int) -> None:
        self.kv.reserved -= blocks
        if self.wake is not None:
            self.wake()

    def reprice(self, cost: StepCost) -> None:
        """Price later steps with `cost` (its collectives changed after a link failure)."""
        self.cost = cost

    def note_held(self) -> None:
        """Keep the peak of sequences held (admission, which alone adds them, has just run): while it stays
        below the batch limit, the limit never bound and any limit above the peak runs the same steps."""
        held = self.batch.size + len(self.prefilling)
        if held > self.peak_sequences:
            self.peak_sequences = held

    # ---- prompt steps ----------------------------------------------------------------------------
    def begin_prompt_step(self, chunks, with_decode: bool, now: float) -> float:
        """Price a step of prompt work (and the running batch's decode with it) starting at `now`:
        returns its duration."""
        decode_seqs = self.batch.size if with_decode else 0
        row = prompt_step_row(self, chunks, decode_seqs)
        duration = self.cost.row_time_s(*row)
        self.note_held()
        if self.trace is not None:
            self.trace.prompt_steps.append(row)
        self._step_started = (now, duration, self.kv.used(self.batch), chunks, decode_seqs)
        return duration

    def end_prompt_step(self, now: float) -> None:
        """The prompt step is over at `now`: chunks land in KV, completed prompts emit their first token."""
        start, duration, used_before, chunks, n = self._step_started
        table, kv, batch = self.table, self.kv, self.batch
        self.busy_s += duration
        self.steps += 1
        if n:
            batch.advance(1)
            self.gaps.record(start, duration, duration, 1, n)
        elif batch.size:
            self.gaps.stall(duration, batch.size)
        for rid, take in chunks:
            state = self.prefilling[rid]
            state[0] += take
            needed = kv.for_context(state[0])
            if needed > state[1]:
                kv.prefill += needed - state[1]
                state[1] = needed
            if state[0] < state[2]:
                continue
            del self.prefilling[rid]
            kv.prefill -= state[1]      # from here the decode batch's bound counts its KV
            table.generated[rid] += 1
            if math.isnan(table.first_token_s[rid]):
                table.first_token_s[rid] = now
            if self.on_prefilled is not None:
                self.on_prefilled(rid, self)
            elif table.generated[rid] >= table.output_tokens[rid]:
                self._finish(rid, now)
            else:
                batch.join(rid)
        self.kv_block_s += (used_before + kv.used(batch)) / 2 * (now - start)
        if n:       # only a decode step brings a finish due: a prompt that joins has a token left to make
            self._finish_due(now)

    # ---- decode stretches ------------------------------------------------------------------------
    def begin_stretch(self, now: float):
        """Plan a stretch of decode steps from `now` up to the next finish or KV exhaustion: (k steps, the
        first step's duration, how much longer each later step is); None when the newest sequence had to
        be preempted instead (the caller asks the policy again)."""
        batch, n = self.batch, self.batch.size
        steps_to_full = self.kv.decode_steps_that_fit(batch) if self.policy.preempts else math.inf
        if steps_to_full < 1:
            self.waiting.push_front(batch.preempt_newest())
            self.gaps.preempted()
            self.preemptions += 1
            return None
        k = int(min(batch.steps_to_next_finish(), steps_to_full))
        a, b = self.cost.decode_coefficients(n)
        first = a + b * batch.context       # duration of the first step
        growth = b * n                      # each later step is this much longer
        self._stretch_started = (now, n, first, growth, self.kv.used(batch))
        return k, first, growth

    def end_stretch(self, done: int, now: float) -> None:
        """`done` steps of the stretch are over at `now`."""
        start, n, first, growth, used_before = self._stretch_started
        span, batch = now - start, self.batch
        if self.trace is not None:
            self.trace.decode_stretches.append((n, batch.context, done))
        self.busy_s += span
        self.steps += done
        batch.advance(done)
        self.gaps.record(start, first, first + growth * (done - 1), done, n)
        self.kv_block_s += (used_before + self.kv.used(batch)) / 2 * span
        self._finish_due(now)

    def _finish_due(self, now: float) -> None:
        for rid in self.batch.pop_finished():
            self._finish(rid, now)

    def _finish(self, rid: int, now: float) -> None:
        self.table.finish_s[rid] = now
        self.outstanding -= 1
        if self.trace is not None:
            self.trace.note_finish(self.table.output_tokens[rid])
        self.on_finish(rid, self)

    # ---- failure ---------------------------------------------------------------------------------
    def fail(self) -> list[int]:
        """Take this engine down now; returns the requests it held, to be retried elsewhere. A request
        keeps the tokens it already streamed (a retry recomputes prompt + those tokens)."""
        self.alive = False
        held = list(self.waiting) + list(self.handed_off) + list(self.prefilling) + self.batch.evict_all()
        for rid in held:
            self.table.epoch[rid] += 1
        self.waiting.clear()
        self.handed_off.clear()
        self.prefilling.clear()
        self.outstanding = 0
        if self.wake is not None:
            self.wake()
        return held
