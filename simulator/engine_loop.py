"""What advances an engine's clock: a SimPy process when engines interact (load-aware routing, KV
hand-offs, failures, network flows), or a plain loop over its own arrivals when nothing else touches
it. Both run the same steps (`Engine.begin_*` / `end_*`) and cut a decode stretch at the same step
boundary when a newcomer could join, so their results are identical (tests/test_properties.py).
"""
from __future__ import annotations

import math

import numpy as np
import simpy

from simulator.admission import slots_free


def stretch_time_s(first: float, growth: float, steps: int) -> float:
    """Duration of `steps` decode steps when step j lasts first + growth x j (an arithmetic series)."""
    return steps * first + growth * steps * (steps - 1) / 2


def steps_completed(first: float, growth: float, elapsed: float) -> int:
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


def steps_before_newcomer(engine, k: int, first: float, growth: float, elapsed: float) -> int:
    """Steps of a k-step stretch to run when a request arrives `elapsed` into it: through the step in
    progress, if the policy lets newcomers join mid-decode and the batch has a free slot."""
    if k > 1 and engine.policy.admits_mid_decode and slots_free(engine) > 0 \
            and elapsed < stretch_time_s(first, growth, k):
        return min(k, steps_completed(first, growth, elapsed) + 1)
    return k


def watch_process(env, watch, table, horizon_s: float | None = None):
    """Checks `watch` every `check_every_s` simulated seconds (past `horizon_s`, the arrivals' span, less
    often: `past_horizon_interval_s`); stops the SimPy run once the SLA must be missed, and ends by itself
    when every request has finished or been dropped."""
    stop = env.event()
    stop.callbacks.append(simpy.core.StopSimulation.callback)
    finish = np.frombuffer(table.finish_s, dtype=float)
    every_s = watch.check_every_s
    while np.count_nonzero(np.isnan(finish)) > len(table.dropped):
        yield env.timeout(every_s)
        every_s = past_horizon_interval_s(env.now, horizon_s, every_s)
        if env.peek() == math.inf:       # nothing else will happen: the run is over
            return
        if watch.missed(env.now):
            stop.succeed()
            return


class RunEnd:
    """When a SimPy run is over: every request finished or dropped, and no streamed feed still drawing
    requests (`event` then succeeds), whatever else is scheduled later (a failure, a progress tick)."""

    def __init__(self, env: simpy.Environment, requests: int):
        self.event = env.event()
        self.unsettled = requests          # requests neither finished nor dropped yet
        self.arriving = False              # a streamed feed (its table grows as requests arrive) is drawing

    def settled(self) -> None:
        self.unsettled -= 1
        self._check()

    def expect_arrivals(self) -> None:
        self.arriving = True

    def arrived(self) -> None:
        self.unsettled += 1

    def arrivals_over(self) -> None:
        self.arriving = False
        self._check()

    def _check(self) -> None:
        if not self.unsettled and not self.arriving and not self.event.triggered:
            self.event.succeed()


PROGRESS_TICKS = 200     # progress reports over a run of known horizon (else one per simulated second)


def progress_process(env, progress, horizon_s: float | None):
    """Tells `progress(simulated_s, horizon_s, "simulated s")` how far the run is, `PROGRESS_TICKS` times
    over the horizon (held at the horizon while the last requests drain); ends by itself when nothing
    else will happen."""
    every_s = horizon_s / PROGRESS_TICKS if horizon_s else 1.0
    while True:
        yield env.timeout(every_s)
        if env.peek() == math.inf:
            return
        progress(env.now if horizon_s is None else min(env.now, horizon_s), horizon_s, "simulated s")
        every_s = past_horizon_interval_s(env.now, horizon_s, every_s)


# Past its horizon (a drain, or a run far slower than its arrivals), a periodic process ticks at this
# share of the time simulated so far: a logarithmic count of ticks, not one per horizon / 200 (a run on
# --set gpu.hbm_tb_per_s=1e-6 simulated years of drain at 0.15 s a tick and never returned).
LATE_TICK_SHARE = 0.05


def past_horizon_interval_s(now_s: float, horizon_s: float | None, every_s: float) -> float:
    """A periodic process's next interval: `every_s` up to `horizon_s` (none: from the start), then
    growing with the time simulated."""
    return every_s if horizon_s is not None and now_s <= horizon_s else max(every_s, LATE_TICK_SHARE * now_s)


class SimPyDriver:
    """Runs one engine as a SimPy process: wait for work, run prompt steps, fold decode stretches (cut
    short at the next step boundary when a newcomer could join)."""

    def __init__(self, env: simpy.Environment, engine):
        self.env, self.engine = env, engine
        self._wake: simpy.Event | None = None
        self._interruptible = False
        engine.wake = self.poke
        self.process = env.process(self._run())

    def poke(self) -> None:
        """Wake the engine if it sleeps, or cut a decode stretch short: new work or a failure."""
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        elif self._interruptible:
            self._interruptible = False
            self.process.interrupt()

    def _run(self):
        env, engine = self.env, self.engine
        while engine.alive:
            plan = engine.policy.next_step(engine)
            if plan is None:
                self._wake = env.event()
                yield self._wake
                self._wake = None
            elif plan.chunks:
                yield env.timeout(engine.begin_prompt_step(plan.chunks, plan.with_decode, env.now))
                if engine.alive:
                    engine.end_prompt_step(env.now)
            else:
                stretch = engine.begin_stretch(env.now)
                if stretch is None:
                    continue
                k, first, growth = stretch
                start, done = env.now, k
                self._interruptible = k > 1 and engine.policy.admits_mid_decode and slots_free(engine) > 0
                try:
                    yield env.timeout(stretch_time_s(first, growth, k))
                except simpy.Interrupt:
                    if not engine.alive:
                        return
                    done = steps_before_newcomer(engine, k, first, growth, env.now - start)
                    yield env.timeout(max(stretch_time_s(first, growth, done) - (env.now - start), 0.0))
                self._interruptible = False
                if engine.alive:
                    engine.end_stretch(done, env.now)


def stopped_in_step(engine, now: float, until: float) -> float:
    """The run stops at `until` inside a step begun at `now`: the step does not end (no token, no finish),
    but the engine was busy and its KV held up to the stop. Returns `until`."""
    engine.busy_s += until - now
    engine.kv_block_s += engine.kv.used(engine.batch) * (until - now)
    return until


def run_alone(engine, arrivals, until: float = math.inf, watch=None) -> float:
    """The same steps without SimPy, for an engine nothing else interacts with: `arrivals` are its
    arrival times and request ids (`Cluster.engine_arrivals`), in time order. Returns the time the engine
    fell idle with nothing left to arrive (or `until`). A step that would end after `until` does not
    happen, as on SimPy's clock (before, it ran on and its finishes counted past the stop). With `watch`
    (early_stop.SLAMissWatch) it also returns, at a check, once the run must miss its SLA
    (`watch.stopped_at_s` is then set)."""
    times, ids = arrivals
    now, i, count = 0.0, 0, len(times)
    policy = engine.policy
    rids = np.asarray(ids, dtype=np.int64) if watch is not None else None
    while now < until:
        while i < count and times[i] <= now:
            engine.submit(ids[i])
            i += 1
        if watch is not None and now >= watch.next_check_s and \
                watch.missed(now, rids[:i]):
            return now
        plan = policy.next_step(engine)
        if plan is None:
            if i >= count:
                break
            now = times[i]
            continue
        if plan.chunks:
            duration = engine.begin_prompt_step(plan.chunks, plan.with_decode, now)
            if now + duration > until:
                return stopped_in_step(engine, now, until)
            now += duration
            engine.end_prompt_step(now)
            continue
        stretch = engine.begin_stretch(now)
        if stretch is None:
            continue
        k, first, growth = stretch
        done = steps_before_newcomer(engine, k, first, growth, times[i] - now) if i < count else k
        if now + stretch_time_s(first, growth, done) > until:
            done = steps_completed(first, growth, until - now)
            if done == 0:
                return stopped_in_step(engine, now, until)
        now += stretch_time_s(first, growth, done)
        engine.end_stretch(done, now)
    return min(now, until)
