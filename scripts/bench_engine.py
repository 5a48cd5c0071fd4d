"""Engine speed benchmark: 600 simulated seconds of 87 MI355X (tp 1, fp4) serving Llama 2 70B near
saturation, then the same request count with outputs twice as long.

Targets (issue 14): the base run under 20 s wall in one process (~10 us per simulated request) and
under 1 GB peak memory; doubling output length at an equal request count costs less than 1.3x wall
time (decode stretches are folded in closed form); `--jobs N` runs the same simulation on N cores with
an identical summary. Each figure is the median of `--repeat` runs.

    python scripts/bench_engine.py [--duration 600] [--rate 3000] [--gpus 87] [--jobs 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

from simulator.api import serving_config
from simulator.run import simulate
from workloads import LogNormal, Poisson, Requests


def run(config, requests, repeat: int, jobs: int = 1):
    """Median wall time of `repeat` runs, and the (deterministic) summary."""
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = simulate(config, requests, jobs=jobs)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result.summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds of arrivals")
    parser.add_argument("--rate", type=float, default=3000.0, help="requests per second")
    parser.add_argument("--gpus", type=int, default=87)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="processes for the parallel run of the base case")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median wall time is printed")
    args = parser.parse_args()
    config = serving_config(model="llama2-70b", gpu="mi355x", gpus=args.gpus, tp=1, precision="fp4",
                            max_batch_size=512, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    count = int(args.rate * args.duration)
    arrival = Poisson(args.rate).times(count, rng)
    inputs = LogNormal(300, 0.9, 3, 1024).sample(count, rng)
    outputs = LogNormal(290, 0.85, 1, 1024).sample(count, rng)
    print(f"{count:,} requests, {args.gpus} x mi355x, llama2-70b fp4, {args.rate:g} req/s for {args.duration:g} s")
    rows = []
    cases = (("base", outputs, 1), ("2x output", outputs * 2, 1), (f"base jobs={args.jobs}", outputs, args.jobs))
    for label, out, jobs in cases:
        wall, summary = run(config, Requests(arrival, inputs, out), args.repeat, jobs)
        rows.append((label, wall, summary))
        print(f"{label:12s} wall_s={wall:7.1f}  simulated_requests_per_wall_s={count / wall:9,.0f}  "
              f"output_tokens_per_s={summary['output_tokens_per_s']:12,.0f}  ttft_p99_s={summary['ttft_p99_s']:.3f}  "
              f"tpot_p99_s={summary['tpot_p99_s']:.4f}  steps={summary['engine_steps']:,}  "
              f"simulated_s={summary['simulated_s']:.0f}")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    same = rows[2][2] == rows[0][2]
    print(f"peak_memory_gb={peak_gb:.2f}  wall_ratio_2x_output={rows[1][1] / rows[0][1]:.2f}  "
          f"jobs_speedup={rows[0][1] / rows[2][1]:.2f}  jobs_summary_identical={same}")


if __name__ == "__main__":
    main()
