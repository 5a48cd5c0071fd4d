"""Arrival processes that hand requests to a cluster as SimPy processes: pre-drawn open-loop times,
open-loop chunks drawn as the run goes (bounded memory), and closed-loop users."""
from __future__ import annotations

import numpy as np


def open_loop(cluster, arrival_s: np.ndarray):
    env = cluster.env
    for rid, when in enumerate(arrival_s.tolist()):
        if when > env.now:
            yield env.timeout(when - env.now)
        cluster.route(rid)


def open_loop_chunks(cluster, chunks):
    """Open loop from an iterator of request chunks: each request takes a table slot when it arrives."""
    env, table = cluster.env, cluster.table
    cluster.run_end.expect_arrivals()
    for chunk in chunks:
        for when, inputs, outputs in zip(chunk.arrival_s.tolist(), chunk.input_tokens.tolist(),
                                         chunk.output_tokens.tolist()):
            if when > env.now:
                yield env.timeout(when - env.now)
            cluster.run_end.arrived()
            cluster.route(table.admit(when, inputs, outputs))
    cluster.run_end.arrivals_over()


class ClosedLoopUsers:
    """`users` (workloads.arrivals.ClosedLoop) each send their next request `think_time_s` after the
    previous one finishes, until the table's `total` requests are sent; a dropped request counts as
    finished for its user."""

    def __init__(self, cluster, users, total: int):
        self.cluster, self.users, self.total, self.issued = cluster, users, total, 0
        cluster.on_user_finish = self._on_finish

    def start(self):
        for _ in range(min(self.users.users, self.total)):
            self._issue()
        yield self.cluster.env.timeout(0)

    def _issue(self) -> None:
        if self.issued >= self.total:
            return
        cluster, rid = self.cluster, self.issued
        self.issued += 1
        cluster.table.arrival_s[rid] = cluster.env.now
        cluster.route(rid)
        if rid in cluster.table.dropped:
            cluster.env.process(self._later(0.0))

    def _later(self, delay: float):
        if delay > 0:
            yield self.cluster.env.timeout(delay)
        self._issue()

    def _on_finish(self, rid: int) -> None:
        self.cluster.env.process(self._later(self.users.think_time_s))
