"""Stop a Server run as soon as it must miss its p99 limits, whatever the requests still in flight do.

A rate search only needs a probe's verdict, and an overloaded probe decides early: its queue grows, so
TTFTs pass the limit long before the run drains. The rule is exact, not a heuristic:

numpy's p99 of N values interpolates between the sorted values at floor(h) and ceil(h), h = 0.99 (N - 1);
so once N - floor(h) requests are known to exceed the limit, the p99 exceeds it too. A request is known
to exceed the TTFT limit when its first token came too late, or when it has waited longer than the
limit without one (its TTFT can only grow); the TPOT limit when it finished too slowly, or when even
finishing now would be too slow. Any dropped request fails the run outright (`search.meets_sla`).
A stopped run is never a score: its unfinished requests make it invalid, as the full run would be.
"""
from __future__ import annotations

import math

import numpy as np


def violations_needed(count: int) -> int:
    """Values above the limit that force numpy's p99 of `count` values above it."""
    return count - math.floor(0.99 * (count - 1)) if count else 1


class SLAMissWatch:
    """Decides, from the request table at a time `now`, whether the run's p99 must miss the SLA."""

    def __init__(self, table, sla, check_every_s: float):
        self.table, self.sla, self.check_every_s = table, sla, check_every_s
        outputs = np.frombuffer(table.output_tokens, dtype=np.int64)
        self.ttft_needed = violations_needed(len(outputs))
        self.tpot_needed = violations_needed(int(np.count_nonzero(outputs > 1)))
        self.next_check_s = check_every_s
        self.stopped_at_s: float | None = None
        self.missed_limit: str | None = None      # what forced the stop: "ttft", "tpot" or "dropped"

    def due(self, now: float) -> bool:
        return now >= self.next_check_s

    def missed(self, now: float, waiting_rids: np.ndarray | None = None) -> bool:
        """Whether the SLA is missed for sure at `now`. Requests without a first token count as late
        only among `waiting_rids` (default: every request that has arrived): the requests whose clock is
        `now` (engines run one after another on the fast path)."""
        self.next_check_s = now + self.check_every_s
        table, sla = self.table, self.sla
        if table.dropped:
            return self._stop(now, "dropped")
        arrival = np.frombuffer(table.arrival_s, dtype=float)
        first = np.frombuffer(table.first_token_s, dtype=float)
        if sla.ttft_p99_s is not None:
            late = np.count_nonzero(first - arrival > sla.ttft_p99_s)
            if waiting_rids is None:
                waiting = np.isnan(first) & (arrival < now - sla.ttft_p99_s)
                late += np.count_nonzero(waiting)
            elif waiting_rids.size:
                late += np.count_nonzero(np.isnan(first[waiting_rids]) & (arrival[waiting_rids] < now - sla.ttft_p99_s))
            if late >= self.ttft_needed:
                return self._stop(now, "ttft")
        if sla.tpot_p99_s is not None:
            outputs = np.frombuffer(table.output_tokens, dtype=np.int64)
            finish = np.frombuffer(table.finish_s, dtype=float)
            gaps = np.maximum(outputs - 1, 1)
            started = ~np.isnan(first) & (outputs > 1)
            # finished: the TPOT it had; in flight: the TPOT it would have if it finished now (a lower bound)
            end = np.where(np.isnan(finish), now, finish)
            slow = np.count_nonzero(started & ((end - first) / gaps > sla.tpot_p99_s))
            if slow >= self.tpot_needed:
                return self._stop(now, "tpot")
        return False

    def _stop(self, now: float, limit: str) -> bool:
        self.stopped_at_s, self.missed_limit = now, limit
        return True
