"""Speed on Vidur's own benchmark workload, the comparison issue 14 names: Llama 2 70B on H100, TP 4,
bf16, batch cap 128, 512 prompt / 256 output tokens, Poisson arrivals at 8.4 requests/s per replica
(about 80% of one replica's capacity), round-robin routing.

Prints simulated requests per wall-second for 5,000 and 50,000 requests on one replica and 40,000 on
eight, both for the simulation alone (median of --repeat runs in this process) and for the whole
`infersim simulate` process (start-up included, as a user or a sweep worker pays it). Vidur 0.0.26
does about 1,100 simulated requests per wall-second on this machine when it is quiet; the target is
at least 60x that (66,000) on the 50,000-request case.

    python scripts/bench_vidur_workload.py [--repeat 3] [--vidur-requests-per-s 1100]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from simulator.api import serving_config
from simulator.run import simulate
from workloads import Poisson, Requests

RATE_PER_REPLICA = 8.4
CASES = ((5_000, 1), (50_000, 1), (40_000, 8))


def workload(count: int, replicas: int, seed: int = 0) -> Requests:
    rng = np.random.default_rng(seed)
    arrival = Poisson(RATE_PER_REPLICA * replicas).times(count, rng)
    return Requests(arrival, np.full(count, 512), np.full(count, 256))


def in_process(count: int, replicas: int, repeat: int) -> tuple[float, dict]:
    config = serving_config(model="llama2-70b", gpu="h100", gpus=4 * replicas, tp=4, precision="bf16",
                            max_batch_size=128, router="round-robin", seed=0)
    requests = workload(count, replicas)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = simulate(config, requests)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result.summary


def whole_process(count: int, replicas: int) -> float:
    command = [sys.executable, "-m", "simulator", "simulate", "--model", "llama2-70b", "--gpu", "h100",
               "--gpus", str(4 * replicas), "--tp", "4", "--precision", "bf16", "--max-batch-size", "128",
               "--rate", str(RATE_PER_REPLICA * replicas), "--requests", str(count),
               "--input-tokens", "fixed:512", "--output-tokens", "fixed:256", "--json"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--vidur-requests-per-s", type=float, default=1100.0,
                        help="Vidur's simulated requests per wall-second on this machine (measured separately)")
    args = parser.parse_args()
    print(f"Vidur's workload: llama2-70b, h100, tp4, bf16, batch cap 128, 512/256 tokens, "
          f"{RATE_PER_REPLICA} req/s per replica, round-robin; Vidur at {args.vidur_requests_per_s:,.0f} req/s")
    for count, replicas in CASES:
        wall, summary = in_process(count, replicas, args.repeat)
        process_wall = whole_process(count, replicas)
        rate, process_rate = count / wall, count / process_wall
        print(f"requests={count:>6,} replicas={replicas}  simulate_wall_s={wall:6.2f}  "
              f"simulated_requests_per_wall_s={rate:8,.0f} ({rate / args.vidur_requests_per_s:5.1f}x Vidur)  "
              f"process_wall_s={process_wall:6.2f}  process_requests_per_wall_s={process_rate:8,.0f} "
              f"({process_rate / args.vidur_requests_per_s:5.1f}x)  "
              f"ttft_p99_s={summary['ttft_p99_s']:.3f}  output_tokens_per_s={summary['output_tokens_per_s']:,.0f}")


if __name__ == "__main__":
    main()
