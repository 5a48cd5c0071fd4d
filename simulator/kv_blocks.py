"""One engine's KV-cache blocks: how many there are, what holds them, and how many decode steps still fit.

vLLM's paged allocator gives each sequence whole blocks of `block_size` tokens; a sequence of context
`c` holds ceil(c / block_size) of them (plus, for models with sliding-window layers, the window's
blocks). Over a batch of `n` sequences with context sum `C` that is at most
floor((C + n (block_size - 1)) / block_size): the bound the engine charges, exact when the contexts'
remainders are spread evenly. Prompts in flight hold the blocks charged to them as their chunks land
(`prefill`); a prefill engine of disaggregated serving holds a finished prompt's KV until the hand-off
lands (`reserved`). The batching policies admit work against `free`.
"""
from __future__ import annotations

import math


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class KVBlocks:
    def __init__(self, capacity: int, block_size: int, window_blocks: int):
        self.capacity, self.block_size, self.window_blocks = capacity, block_size, window_blocks
        self.prefill = 0        # charged to prompts being prefilled
        self.reserved = 0       # held for KV hand-offs in flight

    def for_context(self, tokens: int) -> int:
        """Blocks one sequence of `tokens` context holds (`ceil_div` written out: the engine's hottest call)."""
        return -(-tokens // self.block_size) + self.window_blocks

    def used(self, batch) -> int:
        """Blocks held now by the decode batch (an object with `size` and `context`) and prompts in flight."""
        n = batch.size
        decode = (batch.context + n * (self.block_size - 1)) // self.block_size + n * self.window_blocks
        return decode + self.prefill + self.reserved

    def free(self, batch) -> int:
        return self.capacity - self.used(batch)

    def decode_steps_that_fit(self, batch) -> float:
        """Decode steps the batch can still take before its bound exceeds the capacity (each step adds one
        token to every sequence)."""
        n = batch.size
        other = self.prefill + self.reserved + n * self.window_blocks
        room = (self.capacity - other + 1) * self.block_size - 1 - n * (self.block_size - 1)
        return (room - batch.context) // n if n else math.inf
