"""Admission: which waiting requests join an engine's next step, within its slots, KV blocks and token
budget. The batching policies call these; the order requests are considered in is the policy's
waiting queue (first come first served, or shortest prompt first), so a policy chooses the order and
the mechanics (slots, blocks, vLLM's watermark) live here once.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque


class FirstComeFirstServed(deque):
    """Arrival order; a preempted request goes back to the front (vLLM)."""

    push = deque.append
    push_front = deque.appendleft
    pop_next = deque.popleft

    def peek(self) -> int:
        return self[0]


class ShortestPromptFirst:
    """Shortest prompt (plus tokens to recompute) first; ties in arrival order. A preempted request
    competes by its length like any other."""

    def __init__(self, table):
        self.table, self.heap, self.order = table, [], itertools.count()

    def push(self, rid: int) -> None:
        length = self.table.input_tokens[rid] + self.table.generated[rid]
        heapq.heappush(self.heap, (length, next(self.order), rid))

    push_front = push

    def peek(self) -> int:
        return self.heap[0][2]

    def pop_next(self) -> int:
        return heapq.heappop(self.heap)[2]

    def clear(self) -> None:
        self.heap.clear()

    def __len__(self) -> int:
        return len(self.heap)

    def __iter__(self):
        return (rid for _, _, rid in self.heap)


def slots_free(engine) -> int:
    return engine.max_batch_size - engine.batch.size - len(engine.prefilling)


def headroom_blocks(engine) -> int:
    """Blocks a new prompt must leave free: one per sequence already in the batch (each needs a new block
    within `block_size` decode steps), as vLLM's watermark does; without it a full cache admits a prompt,
    preempts it a step later and admits it again, forever recomputing."""
    return len(engine.batch.running) + len(engine.prefilling)


def whole_prompts(engine, token_budget, reserve_output: bool = False) -> list:
    """Admit waiting requests in queue order while slots, KV blocks and the token budget allow; returns
    (request id, prompt tokens) chunks. The first prompt may exceed the budget alone (it would otherwise
    never run). `reserve_output`: charge the blocks of the whole output up front (static batching)."""
    waiting = engine.waiting
    if not waiting:
        return []
    slots = slots_free(engine)
    if slots <= 0:
        return []
    kv, table = engine.kv, engine.table
    chunks, budget = [], token_budget
    free = kv.free(engine.batch) - headroom_blocks(engine)
    while waiting and slots > 0:
        rid = waiting.peek()
        prompt = engine.prompt_tokens(rid)
        if budget is not None and prompt > budget and chunks:
            break
        length = prompt + (table.output_tokens[rid] - table.generated[rid] if reserve_output else 1)
        blocks = kv.for_context(length)
        if blocks > free:
            break
        waiting.pop_next()
        engine.prefilling[rid] = [0, blocks, prompt]
        kv.prefill += blocks
        free -= blocks + 1          # and one block of headroom for its own decode
        slots -= 1
        chunks.append((rid, prompt))
        if budget is not None:
            budget -= prompt
    return chunks


def admitted_prompts(engine, token_budget: int) -> list:
    """The prompts an engine has admitted, continued in admission order within `token_budget` tokens (the
    last one taken chunked if it does not fit whole); their KV is already reserved (static batching)."""
    chunks, budget = [], token_budget
    for rid, (done, _, prompt) in engine.prefilling.items():
        if budget <= 0:
            break
        take = min(prompt - done, budget)
        chunks.append((rid, take))
        budget -= take
    return chunks


def prompt_chunks(engine, token_budget: int) -> list:
    """Sarathi: continue partial prompts first, then admit new ones, chunking to the budget."""
    if not engine.prefilling and not engine.waiting:
        return []
    chunks, budget, kv = [], token_budget, engine.kv
    free = kv.free(engine.batch)
    for rid, (done, _, prompt) in engine.prefilling.items():
        if budget <= 0:
            break
        take = min(prompt - done, budget)
        blocks = kv.for_context(done + take) - kv.for_context(done)
        if blocks > free:
            break
        chunks.append((rid, take))
        budget -= take
        free -= blocks
    slots = slots_free(engine)
    free -= headroom_blocks(engine)
    waiting = engine.waiting
    while waiting and slots > 0 and budget > 0:
        rid = waiting.peek()
        prompt = engine.prompt_tokens(rid)
        take = min(prompt, budget)
        blocks = kv.for_context(take)
        if blocks > free:
            break
        waiting.pop_next()
        engine.prefilling[rid] = [0, 0, prompt]       # blocks are charged as chunks land
        chunks.append((rid, take))
        budget -= take
        free -= blocks + 1
        slots -= 1
    return chunks


def handed_off(engine) -> None:
    """Disaggregated decode pool: prefilled requests join the running batch directly."""
    kv, queue = engine.kv, engine.handed_off
    if not queue:
        return
    free, slots = kv.free(engine.batch) - headroom_blocks(engine), slots_free(engine)
    while queue and slots > 0:
        rid = queue[0]
        blocks = kv.for_context(engine.prompt_tokens(rid) + 1)
        if blocks > free:
            break
        queue.popleft()
        engine.batch.join(rid)
        engine.gaps.joined_at(engine.table.first_token_s[rid])
        free -= blocks
        slots -= 1
    engine.note_held()
