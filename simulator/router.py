"""Routers: which engine a new request goes to. One small class per policy, registered by name.

`choose(engines, rid)` gets the request it routes (its id in the run's request table, which a router
may read through `self.table`) and returns the index of a live engine, or None when
every engine is down (failures):
the caller then drops the request with that reason. A router never picks a dead engine and never
raises because some are dead."""
from __future__ import annotations

import numpy as np

from simulator.registry import Registry

ROUTERS = Registry("router")


class Router:
    """Interface: `choose(engines, rid)`; subclasses register with `@ROUTERS.register`."""

    name = "base"

    def __init__(self, rng: np.random.Generator, table=None):
        self.rng, self.table = rng, table

    def choose(self, engines: list, rid: int) -> int | None:  # pragma: no cover - interface
        raise NotImplementedError


@ROUTERS.register
class RoundRobin(Router):
    """Each engine in turn (oblivious: the only router that lets engines run independently)."""

    name = "round-robin"

    def __init__(self, rng, table=None):
        super().__init__(rng, table)
        self.next = 0

    def choose(self, engines, rid):
        for _ in range(len(engines)):
            index = self.next % len(engines)
            self.next += 1
            if engines[index].alive:
                return index
        return None


@ROUTERS.register
class LeastOutstanding(Router):
    """The engine with the fewest requests queued or in flight (ties: lowest index)."""

    name = "least-outstanding"

    def choose(self, engines, rid):
        best, best_load = None, None
        for index, engine in enumerate(engines):
            if engine.alive and (best_load is None or engine.outstanding < best_load):
                best, best_load = index, engine.outstanding
        return best


@ROUTERS.register
class LeastKVLoad(Router):
    """The engine whose KV cache is least full, counting queued prompts as load to come."""

    name = "least-kv"

    def choose(self, engines, rid):
        best, best_load = None, None
        for index, engine in enumerate(engines):
            if not engine.alive:
                continue
            load = engine.kv_load + len(engine.waiting) / engine.max_batch_size
            if best_load is None or load < best_load:
                best, best_load = index, load
        return best


@ROUTERS.register
class PowerOfTwo(Router):
    """Two engines drawn at random; the one with fewer outstanding requests wins."""

    name = "power-of-two"

    def choose(self, engines, rid):
        alive = [i for i, e in enumerate(engines) if e.alive] if not all(e.alive for e in engines) else None
        count = len(alive) if alive is not None else len(engines)
        if count == 0:
            return None
        if count == 1:
            return alive[0] if alive is not None else 0
        a, b = self.rng.choice(count, size=2, replace=False)
        if alive is not None:
            a, b = alive[a], alive[b]
        return int(a if engines[a].outstanding <= engines[b].outstanding else b)

