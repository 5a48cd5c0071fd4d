"""Per-request state of one simulation, kept in typed flat arrays (`array.array`: Python-speed indexing,
8 bytes per value instead of a list slot plus a boxed float) and viewed as numpy arrays for metrics at the
end without a copy. One row per request; the engine and every replica share it."""
from __future__ import annotations

import math
from array import array

import numpy as np

from simulator.metrics import PERCENTILES, LatencyHistogram


class RequestTable:
    """Arrival, lengths and what happened to each request (first token, finish, preemptions, drops)."""

    streaming = False

    def __init__(self, arrival_s, input_tokens, output_tokens):
        self.arrival_s = array("d", np.asarray(arrival_s, dtype=float).tobytes())
        self.input_tokens = array("q", np.asarray(input_tokens, dtype=np.int64).tobytes())
        self.output_tokens = array("q", np.asarray(output_tokens, dtype=np.int64).tobytes())
        count = len(self.input_tokens)
        self.first_token_s = array("d", [math.nan]) * count
        self.finish_s = array("d", [math.nan]) * count
        self.generated = array("q", [0]) * count        # tokens produced so far (kept across preemption)
        self.preemptions = array("q", [0]) * count
        self.engine = array("q", [-1]) * count
        self.epoch = array("q", [0]) * count            # bumped when a request leaves an engine early (lazy heap deletion)
        self.dropped: dict[int, str] = {}   # request id -> reason

    def __len__(self) -> int:
        return len(self.input_tokens)

    def append(self, arrival_s: float, input_tokens: int, output_tokens: int) -> int:
        """Add one request (closed-loop users create theirs as they go); returns its id."""
        self.arrival_s.append(arrival_s)
        self.input_tokens.append(input_tokens)
        self.output_tokens.append(output_tokens)
        for column, value in ((self.first_token_s, math.nan), (self.finish_s, math.nan), (self.generated, 0),
                              (self.preemptions, 0), (self.engine, -1), (self.epoch, 0)):
            column.append(value)
        return len(self.input_tokens) - 1

    def drop(self, rid: int, reason: str) -> None:
        self.dropped[rid] = reason

    def retire(self, rid: int) -> None:
        """A finished request: kept in full here (StreamingTable folds it into histograms)."""

    def arrays(self) -> dict[str, np.ndarray]:
        """Numpy copies of the columns (copies: the table may grow again in a closed loop)."""
        return {"arrival_s": np.array(self.arrival_s, dtype=float),
                "input_tokens": np.array(self.input_tokens, dtype=np.int64),
                "output_tokens": np.array(self.output_tokens, dtype=np.int64),
                "first_token_s": np.array(self.first_token_s, dtype=float),
                "finish_s": np.array(self.finish_s, dtype=float),
                "preemptions": np.array(self.preemptions, dtype=np.int64),
                "engine": np.array(self.engine, dtype=np.int64)}


class StreamingTable(RequestTable):
    """Bounded-memory table for long runs: a request occupies a slot from arrival to finish (or drop);
    its metrics then go into fixed-size histograms and running sums and the slot is reused. Memory is
    O(requests in the system), not O(requests simulated). Percentiles come from log-binned histograms
    (about 0.5% resolution) instead of exact order statistics; per-request arrays are not kept."""

    streaming = True

    def __init__(self, sla=None):
        super().__init__(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.free: list[int] = []
        self.sla = sla
        self.histograms = {name: LatencyHistogram() for name in ("ttft", "tpot", "latency")}
        self.sums = {name: 0.0 for name in ("ttft", "tpot", "latency")}
        self.counts = {"total": 0, "completed": 0, "dropped": 0, "tpot": 0, "good": 0}
        self.tokens = {"output": 0, "input": 0, "good_output": 0}
        self.preemption_total = 0
        self.first_arrival_s = math.inf
        self.last_finish_s = -math.inf
        self.drop_reasons: dict[str, int] = {}
        self.live = 0

    def __len__(self) -> int:
        return self.counts["total"]

    def admit(self, arrival_s: float, input_tokens: int, output_tokens: int) -> int:
        """A slot for a new request (reusing a retired one when there is one)."""
        self.counts["total"] += 1
        self.live += 1
        self.first_arrival_s = min(self.first_arrival_s, arrival_s)
        if not self.free:
            return self.append(arrival_s, input_tokens, output_tokens)
        rid = self.free.pop()
        self.arrival_s[rid], self.input_tokens[rid], self.output_tokens[rid] = arrival_s, input_tokens, output_tokens
        self.first_token_s[rid] = math.nan
        self.finish_s[rid] = math.nan
        self.generated[rid] = 0
        self.preemptions[rid] = 0
        self.engine[rid] = -1
        return rid

    def _release(self, rid: int) -> None:
        self.epoch[rid] += 1          # stale heap entries of this slot are ignored from here on
        self.free.append(rid)
        self.live -= 1

    def retire(self, rid: int) -> None:
        """The request finished: fold its metrics into the histograms and sums and free its slot."""
        arrival, first, finish = self.arrival_s[rid], self.first_token_s[rid], self.finish_s[rid]
        output = self.output_tokens[rid]
        ttft, latency = first - arrival, finish - arrival
        self.histograms["ttft"].add(ttft, 1.0)
        self.histograms["latency"].add(latency, 1.0)
        self.sums["ttft"] += ttft
        self.sums["latency"] += latency
        tpot = (finish - first) / (output - 1) if output > 1 else math.nan
        if output > 1:
            self.histograms["tpot"].add(tpot, 1.0)
            self.sums["tpot"] += tpot
            self.counts["tpot"] += 1
        self.counts["completed"] += 1
        self.tokens["output"] += output
        self.tokens["input"] += self.input_tokens[rid]
        self.preemption_total += self.preemptions[rid]
        self.last_finish_s = max(self.last_finish_s, finish)
        if self.sla is not None:
            ok = (self.sla.ttft_p99_s is None or ttft <= self.sla.ttft_p99_s) and \
                 (self.sla.tpot_p99_s is None or not (tpot > self.sla.tpot_p99_s))
            if ok:
                self.counts["good"] += 1
                self.tokens["good_output"] += output
        self._release(rid)

    def drop(self, rid: int, reason: str) -> None:
        self.counts["dropped"] += 1
        self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + 1
        self._release(rid)

    def summary(self) -> dict:
        """The keys `metrics.summarize` gives, from the streamed histograms and sums."""
        completed = self.counts["completed"]
        unfinished = self.live
        makespan = max(self.last_finish_s - self.first_arrival_s, 1e-12) if completed else math.nan
        out = {"requests_total": self.counts["total"], "requests_completed": completed,
               "requests_dropped": self.counts["dropped"] + unfinished,
               "output_tokens_completed": self.tokens["output"], "input_tokens_completed": self.tokens["input"],
               "makespan_s": makespan,
               "output_tokens_per_s": self.tokens["output"] / makespan if completed else 0.0,
               "total_tokens_per_s": (self.tokens["output"] + self.tokens["input"]) / makespan if completed else 0.0,
               "requests_per_s": completed / makespan if completed else 0.0}
        for name in ("ttft", "tpot", "latency"):
            count = self.counts["tpot"] if name == "tpot" else completed
            for q in PERCENTILES:
                out[f"{name}_p{q}_s"] = self.histograms[name].percentile(q) if count else math.nan
            out[f"{name}_mean_s"] = self.sums[name] / count if count else math.nan
        if self.sla is not None and completed:
            out["goodput_requests_per_s"] = self.counts["good"] / makespan
            out["goodput_output_tokens_per_s"] = self.tokens["good_output"] / makespan
        return out
