"""The sequences one engine is decoding, held as aggregates so nothing loops over tokens.

A sequence that joins at engine step `s` with context `c` has context `c + (step - s)` later: the batch
keeps `base = c - s` per sequence and their sum, so the whole batch's context is
`base_sum + size x step`. Finishes sit in a heap keyed by the step at which they happen; entries go
stale (and are skipped) when a request is preempted or its engine fails (its epoch moves on).
Static batching keeps a finished sequence's slot decoding padding until the batch ends: its base
moves to `padding_base`, counted once.
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
        self.base_sum = 0
        self.padding = 0                 # finished sequences still holding a static-batch slot
        self.padding_base = 0
        self.size = 0                    # sequences taking part in a decode step (static padding included)

    @property
    def context(self) -> int:
        """Sum of the contexts the next decode step attends."""
        return self.base_sum + self.padding_base + self.size * self.step

    def join(self, rid: int) -> None:
        """A request whose prompt is in KV and whose latest token is out joins the batch."""
        table, step = self.table, self.step
        generated = table.generated[rid]
        base = table.input_tokens[rid] + generated - step
        self.running[rid] = (base, step, generated)
        self.size += 1
        self.base_sum += base
        heapq.heappush(self.finish_heap, (step + table.output_tokens[rid] - generated, rid, table.epoch[rid]))

    def steps_to_next_finish(self) -> float:
        """Decode steps until the next live sequence finishes (inf with none); drops stale heap entries."""
        heap, running, epoch = self.finish_heap, self.running, self.table.epoch
        while heap and (heap[0][1] not in running or heap[0][2] != epoch[heap[0][1]]):
            heapq.heappop(heap)
        return heap[0][0] - self.step if heap else float("inf")

    def pop_finished(self) -> list[int]:
        """Remove the sequences whose last token came out by now; returns their ids."""
        heap, table, running = self.finish_heap, self.table, self.running
        done = []
        while heap and heap[0][0] <= self.step:
            _, rid, epoch = heapq.heappop(heap)
            if rid not in running or epoch != table.epoch[rid]:
                continue
            base, join_step, generated = running.pop(rid)
            table.generated[rid] = generated + self.step - join_step
            self.base_sum -= base
            if self.holds_finished_slots:    # the slot keeps decoding padding: its context moves over
                self.padding += 1
                self.padding_base += base
            else:
                self.size -= 1
            done.append(rid)
        if self.holds_finished_slots and not running and self.padding:
            # the static batch is over: free every slot and the padding's KV at once
            self.base_sum, self.padding, self.padding_base, self.size = 0, 0, 0, 0
        return done

    def preempt_newest(self) -> int:
        """vLLM's recompute preemption: the newest sequence leaves, keeping the tokens it streamed."""
        rid, (base, join_step, generated) = self.running.popitem()
        self.size -= 1
        self.base_sum -= base
        table = self.table
        table.generated[rid] = generated + self.step - join_step
        table.epoch[rid] += 1
        table.preemptions[rid] += 1
        return rid

    def evict_all(self) -> list[int]:
        """Every running sequence leaves (its engine failed); returns their ids."""
        table = self.table
        for rid, (_, join_step, generated) in self.running.items():
            table.generated[rid] = generated + self.step - join_step
        held = list(self.running)
        self.size -= len(held)
        self.running.clear()
        self.finish_heap.clear()
        return held
