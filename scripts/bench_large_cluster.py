"""Benchmark: wall time and peak memory of planner-sized runs (through the CLI, as users run them).

    python scripts/bench_large_cluster.py

Runs: Llama 2 70B MLPerf Offline on 1,000 and 10,000 MI355X, Server on 1,000 B200, and `size` for 10M
output tokens/s of Server on B200 (about 800 GPUs). Each simulates one interchangeable replica, but the
run issues the cluster's queries (23M for 1,000 GPUs Offline), drawn a chunk at a time with only the
replica's share kept (`workloads.requests.Share`). Peak memory is the child's maximum resident set.
On the 2-core development machine (2026-11-28), before / after drawing shares (MB = MiB): 15.7 / 6.3 s
and 1,175 / 89 MB; 70.8 / 19.2 s and 2,446 / 112 MB; 39.8 / 15.7 s and 1,533 / 106 MB; 41.9 / 19.6 s
and 1,215 / 116 MB. Then with the auto topology built once per scenario and shared by runs without
failures: 4.7 s, 75 MB; 7.2 s, 93 MB; 10.6 s, 93 MB; 14.8 s, 111 MB. Then (2026-11-29, nothing else
running) with `size` meeting the limits in three draws of the queries (`sizing.SLA_DRAWS`): 1.7 s, 75 MB;
2.5 s, 95 MB; 4.0 s, 90 MB; 8.8 s, 104 MB.
"""
from __future__ import annotations

import subprocess
import sys
import time

RUNS = {
    "mlperf offline, 1,000 mi355x": ["mlperf", "--gpu", "mi355x", "--gpus", "1000", "--scenario", "offline"],
    "mlperf offline, 10,000 mi355x": ["mlperf", "--gpu", "mi355x", "--gpus", "10000", "--scenario", "offline"],
    "mlperf server, 1,000 b200": ["mlperf", "--gpu", "b200", "--gpus", "1000", "--scenario", "server"],
    "size 10M tok/s server, b200": ["size", "--gpu", "b200", "--target-tokens-per-s", "1e7", "--scenario", "server"],
}


# the child reports its own peak resident set as its last stderr line (KiB on Linux, bytes on macOS)
CHILD = ("import atexit, resource, sys; atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF)"
         ".ru_maxrss, file=sys.stderr)); from simulator.cli import main; main()")


def main() -> int:
    for label, args in RUNS.items():
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, *args, "--model", "llama2-70b", "--quiet", "--json"],
                              check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall_s = time.perf_counter() - start
        peak = int(done.stderr.strip().splitlines()[-1])
        peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 2**10
        print(f"{label:32s} wall_s={wall_s:6.1f}  peak_rss_mb={peak_mb:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
