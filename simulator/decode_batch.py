"""The sequences one engine is decoding, held as aggregates so nothing loops over tokens.

A sequence that joins at engine step `s` with context `c` has context `c + (step - s)` later: the batch
keeps `base = c - s` per sequence, and the whole batch's context sum as a running total (each step
adds `size`; a sequence that joins or leaves adds or removes its `base + step`). Finishes sit in a heap
keyed by the step at which they happen; entries go stale (and are skipped) when a request is preempted
or its engine fails (its epoch moves on). Static batching keeps a finished sequence's slot decoding
padding until the batch ends: its context stays in the sum and keeps growing.
"""
from __future__ import annotations

import heapq


class DecodeBatch:
    """Running sequences: id -> (context base, join step, tokens generated at join), plus padding."""

    def __init__(self, table, holds_finished_slots: bool):
        self.table = table
        self.holds_finished_slots = holds_finished_slots
        self.running: dict[int, tuple[int, int, int]] = {}
        self.finish_heap: list[tuple[int, int, int]] = []   # (finish step, id, epoch)
        self.step = 0                    # decode steps this engine has run
        self.context = 0                 # sum of the contexts the next decode step attends
        self.padding = 0                 # finished sequences still holding a static-batch slot
        self.size = 0                    # sequences taking part in a decode step (static padding included)

    def advance(self, steps: int) -> None:
        """`steps` decode steps ran: every sequence taking part (padding too) gained one token each."""
        self.step += steps
        self.context += self.size * steps

    def join(self, rid: int) -> None:
        """A request whose prompt is in KV and whose latest token is out joins the batch."""
        table, step = self.table, self.step
        generated = table.generated[rid]
        base = table.input_tokens[rid] + generated - step
        self.running[rid] = (base, step, generated)
        self.size += 1
        self.context += base + step
        heapq.heappush(self.finish_heap, (step + table.output_tokens[rid] - generated, rid, table.epoch[rid]))

    def steps_to_next_finish(self) -> float:
        """Decode steps until the next live sequence finishes (inf with none); drops stale heap entries."""
        heap, running, epoch = self.finish_heap, self.running, self.table.epoch
        while heap and (heap[0][1] not in running or heap[0][2] != epoch[heap[0][1]]):
            heapq.heappop(heap)
        return heap[0][0] - self.step if heap else float("inf")

    def pop_finished(self) -> list[int]:
        """Remove the sequences whose last token came out by now; returns their ids."""
        heap, step = self.finish_heap, self.step
        if not heap or heap[0][0] > step:
            return []
        table, running, holds = self.table, self.running, self.holds_finished_slots
        done = []
        while heap and heap[0][0] <= step:
            _, rid, epoch = heapq.heappop(heap)
            if rid not in running or epoch != table.epoch[rid]:
                continue
            base, join_step, generated = running.pop(rid)
            table.generated[rid] = generated + step - join_step
            if holds:                        # the slot keeps decoding padding: its context stays
                self.padding += 1
            else:
                self.size -= 1
                self.context -= base + step
            done.append(rid)
        if holds and not running and self.padding:
            # the static batch is over: free every slot and the padding's KV at once
            self.context, self.padding, self.size = 0, 0, 0
        return done

    def preempt_newest(self) -> int:
        """vLLM's recompute preemption: the newest sequence leaves, keeping the tokens it streamed."""
        rid, (base, join_step, generated) = self.running.popitem()
        self.size -= 1
        self.context -= base + self.step
        table = self.table
        table.generated[rid] = generated + self.step - join_step
        table.epoch[rid] += 1
        table.preemptions[rid] += 1
        return rid

    def evict_all(self) -> list[int]:
        """Every running sequence leaves (its engine failed); returns their ids."""
        table = self.table
        for rid, (base, join_step, generated) in self.running.items():
            table.generated[rid] = generated + self.step - join_step
            self.context -= base + self.step
        held = list(self.running)
        self.size -= len(held)
        self.running.clear()
        self.finish_heap.clear()
        return held
