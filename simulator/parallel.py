"""One simulation on several cores: engines that never interact (`run.independent`) are split into
`jobs` groups, each group runs in a forked worker process over the arrivals round-robin routing gives
its engines, and the parent folds the workers' request columns, engine counters and inter-token-gap
histograms back in. Every engine runs exactly the steps it runs in one process, so the result is the
same as with one job (tests/simulator/test_parallel.py).

Workers are forked: they inherit the assembled cluster and request table instead of rebuilding them.
"""
from __future__ import annotations

import math
import multiprocessing

import numpy as np

from simulator.engine_loop import run_alone
from simulator.errors import ConfigError

MAX_JOBS = 1024
_COLUMNS = ("first_token_s", "finish_s", "generated", "preemptions", "engine")
_COUNTERS = ("busy_s", "steps", "kv_block_s", "preemptions", "peak_sequences")
_cluster = None      # the cluster a forked worker inherits
_per_engine = None


def check_jobs(jobs: int) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"`jobs`: {jobs!r} is not a whole number in [1, {MAX_JOBS}]")
    if jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise ConfigError("`jobs`: running one simulation on several cores needs the fork start method, "
                          "which this platform lacks; use `jobs` 1")


def engine_groups(request_counts: list[int], jobs: int) -> list[list[int]]:
    """Split engines into at most `jobs` contiguous groups of about equal request counts."""
    total, groups, current, load = sum(request_counts), [], [], 0
    target = total / jobs if total else 0
    for index, count in enumerate(request_counts):
        current.append(index)
        load += count
        if load >= target * (len(groups) + 1) and len(groups) < jobs - 1:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _run_group(args):
    engines, until = args
    cluster = _cluster
    cluster.itl.clear()      # this worker's copy: only the gaps of this group's engines go back
    end = max((run_alone(cluster.engines[i], _per_engine[i], until) for i in engines), default=0.0)
    rids = np.array([rid for i in engines for rid in _per_engine[i][1]], dtype=np.int64)
    table = cluster.table
    columns = {name: np.asarray(getattr(table, name))[rids] for name in _COLUMNS}
    counters = [[getattr(cluster.engines[i], name) for name in _COUNTERS] for i in engines]
    return end, rids, columns, counters, cluster.itl.weights


def run_engines_in_processes(cluster, arrival_s: np.ndarray, until: float | None, jobs: int) -> float:
    """Run the cluster's independent engines in `jobs` forked processes; returns the end time."""
    global _cluster, _per_engine
    limit = math.inf if until is None else until
    per_engine = cluster.engine_arrivals(arrival_s)
    groups = engine_groups([len(times) for times, _ in per_engine], jobs)
    if len(groups) < 2:
        return max((run_alone(e, a, limit) for e, a in zip(cluster.engines, per_engine)), default=0.0)
    _cluster, _per_engine = cluster, per_engine
    try:
        with multiprocessing.get_context("fork").Pool(len(groups)) as pool:
            outcomes = pool.map(_run_group, [(group, limit) for group in groups])
    finally:
        _cluster = _per_engine = None
    table, end = cluster.table, 0.0
    for group, (group_end, rids, columns, counters, itl_weights) in zip(groups, outcomes):
        end = max(end, group_end)
        for name, values in columns.items():
            column = getattr(table, name)
            for rid, value in zip(rids.tolist(), values.tolist()):
                column[rid] = value
        for i, values in zip(group, counters):
            for name, value in zip(_COUNTERS, values):
                setattr(cluster.engines[i], name, value)
        cluster.itl.merge(itl_weights)
    return end
