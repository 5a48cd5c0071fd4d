"""One serving engine (a replica, or one pipeline virtual engine) as a SimPy process.

Speed comes from aggregates: the running batch is a count `n` and a context sum `base + n x step`
(step = decode steps done), finishes sit in a heap keyed by their finish step, and stretches of
decode steps in which nothing arrives, finishes or runs out of KV cache are advanced in closed form
with one timeout (decode step time is `a(n) + b x context_sum`, an arithmetic series). An arrival that
could join interrupts the stretch at the next step boundary. Nothing loops over tokens.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import astuple, dataclass, field

import simpy

from simulator.costmodel import BatchShape, StepCost, causal_pairs
from simulator.metrics import LatencyHistogram


@dataclass
class StepTrace:
    """Every step one engine ran, as batch aggregates: prompt steps as BatchShape tuples, folded decode
    stretches as (sequences, context sum at the first step, steps). Re-priced under other efficiencies
    it gives the engine's busy time without simulating again (the steps of a run whose arrivals are all
    at t = 0 do not depend on how long they take)."""

    prompt_steps: list = field(default_factory=list)
    decode_stretches: list = field(default_factory=list)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Engine:
    """State and step loop of one engine; `policy` decides each step, `cost` prices it."""

    def __init__(self, env: simpy.Environment, index: int, table, cost: StepCost, policy,
                 kv_blocks: int, block_size: int, window_blocks: int, itl: LatencyHistogram,
                 on_finish, on_prefilled=None, trace: "StepTrace | None" = None):
        self.env, self.index, self.table, self.cost, self.policy = env, index, table, cost, policy
        self.plan = cost.plan
        # limits are per attention group: a wide-EP replica runs attention_dp groups side by side
        self.max_batch_size = self.plan.max_batch_size * self.plan.attention_dp
        self.max_tokens_per_step = self.plan.max_tokens_per_step * self.plan.attention_dp
        self.kv_blocks, self.block_size, self.window_blocks = kv_blocks, block_size, window_blocks
        self.itl = itl
        self.on_finish = on_finish              # callback(request id, engine) when a request completes
        self.on_prefilled = on_prefilled        # disaggregated prefill pool: callback(request id, engine)
        self.waiting: deque[int] = deque()
        self.handed_off: deque[int] = deque()   # disaggregated decode pool: prefilled, waiting to join
        self.prefilling: dict[int, list[int]] = {}  # id -> [prompt tokens in KV, KV blocks charged]
        self.prefill_blocks = 0
        self.reserved_blocks = 0                # held for KV transfers in flight (prefill pool)
        self.running: dict[int, tuple[int, int, int]] = {}  # id -> (context base, join step, generated at join)
        self.finish_heap: list[tuple[int, int, int]] = []   # (finish step, id, epoch)
        self.step = 0
        self.base_sum = 0
        self.padding = 0                         # finished sequences still holding a static-batch slot
        self.padding_base = 0
        self.outstanding = 0
        self.alive = True
        self.busy_s = 0.0
        self.steps = 0
        self.kv_block_s = 0.0                    # integral of used blocks over time
        self.preemptions = 0
        self._stall_s = 0.0                      # prompt-only steps decoding sequences sat through
        self._stalled = 0                        # how many sequences sat through them
        self._coefficients: dict[int, tuple[float, float]] = {}
        self.trace = trace                       # records every step's batch aggregates when given
        self._interruptible = False
        self._wake: simpy.Event | None = None
        self.process = env.process(self._run())

    # ---- what routers and policies read ----------------------------------------------------
    @property
    def decoding(self) -> int:
        """Sequences taking part in a decode step (static padding included)."""
        return len(self.running) + self.padding

    def batch_active(self) -> bool:
        return bool(self.running)

    def kv_used_blocks(self) -> int:
        n = self.decoding
        context = self.base_sum + self.padding_base + n * self.step
        decode = (context + n * (self.block_size - 1)) // self.block_size + n * self.window_blocks
        return decode + self.prefill_blocks + self.reserved_blocks

    @property
    def kv_load(self) -> float:
        return self.kv_used_blocks() / self.kv_blocks

    def prompt_tokens(self, rid: int) -> int:
        """Tokens a (re)started prefill processes: the prompt plus anything generated before preemption."""
        return self.table.input_tokens[rid] + self.table.generated[rid]

    # ---- entry points ----------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        self.table.engine[rid] = self.index
        self.waiting.append(rid)
        self.outstanding += 1
        self._poke()

    def receive_handoff(self, rid: int) -> None:
        self.table.engine[rid] = self.index
        self.handed_off.append(rid)
        self.outstanding += 1
        self._poke()

    def release_reserved(self, blocks: int) -> None:
        self.reserved_blocks -= blocks
        self._poke()

    def _poke(self) -> None:
        """Wake the engine if it sleeps, or cut a decode stretch short if the newcomer could join."""
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        elif self._interruptible:
            self._interruptible = False
            self.process.interrupt()

    # ---- admission (called by policies) -----------------------------------------------------
    def _slots_free(self) -> int:
        return self.max_batch_size - len(self.running) - self.padding - len(self.prefilling)

    def _free_blocks(self) -> int:
        return self.kv_blocks - self.kv_used_blocks()

    def _admission_headroom(self) -> int:
        """Blocks a new prompt must leave free: one per sequence already in the batch (each needs a new
        block within `block_size` decode steps), as vLLM's watermark does; without it a full cache
        admits a prompt, preempts it a step later and admits it again, forever recomputing."""
        return len(self.running) + len(self.prefilling)

    def admit_whole_prompts(self, token_budget, reserve_output: bool = False) -> list:
        """Admit waiting requests in order while slots, KV blocks and the token budget allow. The first
        prompt may exceed the budget alone (it would otherwise never run)."""
        chunks, budget, slots = [], token_budget, self._slots_free()
        free = self._free_blocks() - self._admission_headroom()
        while self.waiting and slots > 0:
            rid = self.waiting[0]
            prompt = self.prompt_tokens(rid)
            if budget is not None and prompt > budget and chunks:
                break
            length = prompt + (self.table.output_tokens[rid] - self.table.generated[rid] if reserve_output else 1)
            blocks = _ceil_div(length, self.block_size) + self.window_blocks
            if blocks > free:
                break
            self.waiting.popleft()
            self.prefilling[rid] = [0, blocks]
            self.prefill_blocks += blocks
            free -= blocks + 1          # and one block of headroom for its own decode
            slots -= 1
            chunks.append((rid, prompt))
            if budget is not None:
                budget -= prompt
        return chunks

    def admit_chunks(self, token_budget: int) -> list:
        """Sarathi: continue partial prompts first, then admit new ones, chunking to the budget."""
        chunks, budget = [], token_budget
        free = self._free_blocks()
        for rid, (done, _) in self.prefilling.items():
            if budget <= 0:
                break
            take = min(self.prompt_tokens(rid) - done, budget)
            blocks = _ceil_div(done + take, self.block_size) - _ceil_div(done, self.block_size)
            if blocks > free:
                break
            chunks.append((rid, take))
            budget -= take
            free -= blocks
        slots = self._slots_free()
        free -= self._admission_headroom()
        while self.waiting and slots > 0 and budget > 0:
            rid = self.waiting[0]
            take = min(self.prompt_tokens(rid), budget)
            blocks = _ceil_div(take, self.block_size) + self.window_blocks
            if blocks > free:
                break
            self.waiting.popleft()
            self.prefilling[rid] = [0, 0]       # blocks are charged as chunks land
            chunks.append((rid, take))
            budget -= take
            free -= blocks + 1
            slots -= 1
        return chunks

    def admit_handed_off(self) -> None:
        """Disaggregated decode pool: prefilled requests join the running batch directly."""
        free, slots = self._free_blocks() - self._admission_headroom(), self._slots_free()
        while self.handed_off and slots > 0:
            rid = self.handed_off[0]
            context = self.prompt_tokens(rid)
            blocks = _ceil_div(context + 1, self.block_size) + self.window_blocks
            if blocks > free:
                break
            self.handed_off.popleft()
            self._join(rid)
            free -= blocks
            slots -= 1

    # ---- the step loop -----------------------------------------------------------------------
    def _run(self):
        """The engine as a SimPy process: wait for work, run prompt steps, fold decode stretches (cut short
        at the next step boundary when a newcomer could join)."""
        while self.alive:
            plan = self.policy.next_step(self)
            if plan is None:
                self._wake = self.env.event()
                yield self._wake
                self._wake = None
            elif plan.chunks:
                duration = self.begin_prompt_step(plan.chunks, plan.with_decode, self.env.now)
                yield self.env.timeout(duration)
                if self.alive:
                    self.end_prompt_step(self.env.now)
            else:
                stretch = self.begin_stretch(self.env.now)
                if stretch is None:
                    continue
                k, first, growth = stretch
                start, done = self.env.now, k
                self._interruptible = self.policy.admits_mid_decode and k > 1 and self._slots_free() > 0
                try:
                    yield self.env.timeout(stretch_time_s(first, growth, k))
                except simpy.Interrupt:
                    if not self.alive:
                        return
                    done = min(k, _steps_completed(first, growth, self.env.now - start) + 1)
                    yield self.env.timeout(max(stretch_time_s(first, growth, done) - (self.env.now - start), 0.0))
                self._interruptible = False
                if self.alive:
                    self.end_stretch(done, self.env.now)

    def run_alone(self, arrivals, until: float = math.inf) -> float:
        """The same step loop without SimPy, for an engine nothing else interacts with: `arrivals` are its
        (time, request id) pairs in time order. A decode stretch is cut at the step boundary after the
        next arrival that could join, exactly as the SimPy process cuts it when interrupted. Returns the
        time the engine fell idle with nothing left to arrive (or `until`)."""
        now, i, count = 0.0, 0, len(arrivals)
        while now < until:
            while i < count and arrivals[i][0] <= now:
                self.submit(arrivals[i][1])
                i += 1
            plan = self.policy.next_step(self)
            if plan is None:
                if i >= count:
                    break
                now = arrivals[i][0]
                continue
            if plan.chunks:
                now += self.begin_prompt_step(plan.chunks, plan.with_decode, now)
                self.end_prompt_step(now)
                continue
            stretch = self.begin_stretch(now)
            if stretch is None:
                continue
            k, first, growth = stretch
            done = k
            if i < count and k > 1 and self.policy.admits_mid_decode and self._slots_free() > 0:
                elapsed = arrivals[i][0] - now
                if elapsed < stretch_time_s(first, growth, k):
                    done = min(k, _steps_completed(first, growth, elapsed) + 1)
            now += stretch_time_s(first, growth, done)
            self.end_stretch(done, now)
        return min(now, until)

    def _join(self, rid: int) -> None:
        """A request whose prompt is in KV and whose latest token is out joins the decode batch."""
        table = self.table
        generated = table.generated[rid]
        context = table.input_tokens[rid] + generated
        self.running[rid] = (context - self.step, self.step, generated)
        self.base_sum += context - self.step
        heapq.heappush(self.finish_heap, (self.step + table.output_tokens[rid] - generated, rid, table.epoch[rid]))

    def begin_prompt_step(self, chunks, with_decode: bool, now: float) -> float:
        """Price a step of prompt work (and the running batch's decode with it) starting at `now`:
        returns its duration."""
        window = self.cost.model.sliding_window
        tokens = pairs = window_pairs = completes = 0
        for rid, take in chunks:
            done = self.prefilling[rid][0]
            tokens += take
            pairs += causal_pairs(done, take)
            if window:
                window_pairs += causal_pairs(done, take, window)
            completes += done + take == self.prompt_tokens(rid)
        n = self.decoding if with_decode else 0
        context = self.base_sum + self.padding_base + n * self.step if n else 0
        shape = BatchShape(tokens, pairs, window_pairs, completes, n, context)
        duration = self.cost.step_time_s(shape)
        if self.trace is not None:
            self.trace.prompt_steps.append(astuple(shape))
        self._step_started = (now, duration, self.kv_used_blocks(), chunks, n)
        return duration

    def end_prompt_step(self, now: float) -> None:
        """The prompt step is over at `now`: chunks land in KV, completed prompts emit their first token."""
        start, duration, used_before, chunks, n = self._step_started
        table = self.table
        self.busy_s += duration
        self.steps += 1
        if n:
            self.step += 1
            self._record_itl(duration, duration, 1, n)
        elif self.decoding:
            # prefill-first: running sequences wait through this step; their next gap includes it
            self._stalled = self._stalled or self.decoding
            self._stall_s += duration
        for rid, take in chunks:
            state = self.prefilling[rid]
            state[0] += take
            needed = _ceil_div(state[0], self.block_size) + self.window_blocks
            if needed > state[1]:
                self.prefill_blocks += needed - state[1]
                state[1] = needed
            if state[0] < self.prompt_tokens(rid):
                continue
            del self.prefilling[rid]
            self.prefill_blocks -= state[1]      # from here the running batch's bound counts its KV
            table.generated[rid] += 1
            if math.isnan(table.first_token_s[rid]):
                table.first_token_s[rid] = now
            if self.on_prefilled is not None:
                self.on_prefilled(rid, self)
            elif table.generated[rid] >= table.output_tokens[rid]:
                self._finish(rid, now)
            else:
                self._join(rid)
        self.kv_block_s += (used_before + self.kv_used_blocks()) / 2 * (now - start)
        self._finish_due(now)

    def _decode_coefficients(self, n: int) -> tuple[float, float]:
        coefficients = self._coefficients.get(n)
        if coefficients is None:
            coefficients = self._coefficients[n] = self.cost.decode_coefficients(n)
        return coefficients

    def _steps_until_kv_full(self, n: int) -> float:
        """Decode steps that still fit in KV blocks before the bound exceeds capacity."""
        if not self.policy.preempts:
            return math.inf
        other = self.prefill_blocks + self.reserved_blocks + n * self.window_blocks
        room = (self.kv_blocks - other + 1) * self.block_size - 1 - n * (self.block_size - 1)
        context_now = self.base_sum + self.padding_base + n * self.step
        return (room - context_now) // n

    def begin_stretch(self, now: float):
        """Plan a stretch of decode steps from `now` up to the next finish or KV exhaustion: (k steps, the
        first step's duration, how much longer each later step is); None when the newest sequence had to
        be preempted instead (the caller asks the policy again)."""
        n = self.decoding
        heap = self.finish_heap
        while heap and (heap[0][1] not in self.running or heap[0][2] != self.table.epoch[heap[0][1]]):
            heapq.heappop(heap)
        steps_to_finish = heap[0][0] - self.step if heap else math.inf
        steps_to_full = self._steps_until_kv_full(n)
        if steps_to_full < 1:
            self._preempt_newest()
            return None
        k = int(min(steps_to_finish, steps_to_full))
        a, b = self._decode_coefficients(n)
        first = a + b * (self.base_sum + self.padding_base + n * self.step)   # duration of the first step
        growth = b * n                                                        # each step is this much longer
        self._stretch_started = (now, n, first, growth, self.kv_used_blocks())
        return k, first, growth

    def end_stretch(self, done: int, now: float) -> None:
        """`done` steps of the stretch are over at `now`."""
        start, n, first, growth, used_before = self._stretch_started
        span = now - start
        if self.trace is not None:
            self.trace.decode_stretches.append((n, self.base_sum + self.padding_base + n * self.step, done))
        self.busy_s += span
        self.steps += done
        self.step += done
        self._record_itl(first, first + growth * (done - 1), done, n)
        self.kv_block_s += (used_before + self.kv_used_blocks()) / 2 * span
        self._finish_due(now)

    def _record_itl(self, first_s: float, last_s: float, steps: int, n: int) -> None:
        """Inter-token gaps of `steps` decode steps for `n` sequences; the first gap of sequences that
        sat through prompt-only steps includes those steps."""
        if self._stall_s:
            stalled = min(self._stalled, n)
            self.itl.add(first_s + self._stall_s, stalled)
            self.itl.add(first_s, n - stalled)
            self._stall_s, self._stalled = 0.0, 0
            if steps > 1:
                self.itl.add_linear(first_s + (last_s - first_s) / (steps - 1), last_s, steps - 1, n)
            return
        self.itl.add_linear(first_s, last_s, steps, n)

    def _finish_due(self, now: float) -> None:
        heap, table = self.finish_heap, self.table
        while heap and heap[0][0] <= self.step:
            _, rid, epoch = heapq.heappop(heap)
            if rid not in self.running or epoch != table.epoch[rid]:
                continue
            base, join_step, generated = self.running.pop(rid)
            table.generated[rid] = generated + self.step - join_step
            self.base_sum -= base
            if self.policy.holds_finished_slots:   # the slot keeps decoding padding: its context moves over
                self.padding += 1
                self.padding_base += base
            self._finish(rid, now)
        if self.policy.holds_finished_slots and not self.running and self.padding:
            # the static batch is over: free every slot and the padding's KV at once
            self.base_sum, self.padding, self.padding_base = 0, 0, 0

    def _finish(self, rid: int, now: float) -> None:
        self.table.finish_s[rid] = now
        self.outstanding -= 1
        self.on_finish(rid, self)

    def _preempt_newest(self) -> None:
        """vLLM's recompute preemption: the newest running request gives back its KV and waits again."""
        rid, (base, join_step, generated) = self.running.popitem()
        self.base_sum -= base
        table = self.table
        table.generated[rid] = generated + self.step - join_step
        table.epoch[rid] += 1
        table.preemptions[rid] += 1
        self.preemptions += 1
        self.waiting.appendleft(rid)

    # ---- failure -------------------------------------------------------------------------------
    def fail(self) -> list[int]:
        """Take this engine down now; returns the requests it held, to be retried elsewhere. A request
        keeps the tokens it already streamed (a retry recomputes prompt + those tokens)."""
        self.alive = False
        table = self.table
        held = list(self.waiting) + list(self.handed_off) + list(self.prefilling)
        for rid, (_, join_step, generated) in self.running.items():
            table.generated[rid] = generated + self.step - join_step
            held.append(rid)
        for rid in held:
            table.epoch[rid] += 1
        self.waiting.clear()
        self.handed_off.clear()
        self.prefilling.clear()
        self.running.clear()
        self.finish_heap.clear()
        self.outstanding = 0
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        elif self._interruptible:
            self._interruptible = False
            self.process.interrupt()
        return held


def stretch_time_s(first: float, growth: float, steps: int) -> float:
    """Duration of `steps` decode steps when step j lasts first + growth x j (an arithmetic series)."""
    return steps * first + growth * steps * (steps - 1) / 2


def _steps_completed(first: float, growth: float, elapsed: float) -> int:
    """Whole steps done after `elapsed` when step j lasts first + growth x j: the largest k with
    k x first + growth x k(k-1)/2 <= elapsed."""
    if growth <= 0:
        return int(elapsed // first) if first > 0 else 0
    half = growth / 2
    linear = first - half
    k = int((-linear + math.sqrt(linear * linear + 4 * half * elapsed)) / (2 * half))
    while k > 0 and k * first + half * k * (k - 1) > elapsed:
        k -= 1
    while (k + 1) * first + half * (k + 1) * k <= elapsed:
        k += 1
    return k
