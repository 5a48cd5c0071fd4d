"""Long-run memory: simulate hours of open-loop traffic and report peak memory and bytes per request.

    python scripts/long_run_memory.py [--hours 1] [--rate 300] [--gpus 8]

What stays flat: inter-token latency lives in a fixed-size log-binned histogram and decode stretches
are folded, so memory does not grow with tokens or steps. What grows: one row of typed per-request
columns (arrival, lengths, first token, finish, progress; ~100 bytes) per request, kept so per-request
CSVs and exact percentiles remain available.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

from simulator.api import serving_config
from simulator.engine import simulate
from workloads.scenarios import get_scenario


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--gpus", type=int, default=8)
    args = parser.parse_args(argv)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = serving_config(model="llama2-70b", gpu="mi355x", gpus=args.gpus, precision="fp4", max_batch_size=1024)
    count = int(args.rate * args.hours * 3600)
    requests = get_scenario("llama2-70b", "server").requests(count, args.rate, seed=0)
    start = time.perf_counter()
    result = simulate(config, requests)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{count:,} requests over {args.hours:g} h at {args.rate:g}/s on {args.gpus} MI355X: wall {wall:.1f} s, "
          f"{result.summary['output_tokens_per_s']:,.0f} tok/s, ttft_p99_s {result.summary['ttft_p99_s']:.3f}")
    print(f"peak_memory_gb={peak_kb / 1e6:.2f} (before the run {before_kb / 1e6:.2f}); "
          f"bytes_per_request={(peak_kb - before_kb) * 1e3 / count:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
