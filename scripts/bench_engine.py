"""Engine speed benchmark: 600 simulated seconds of 87 MI355X (tp 1, fp4) serving Llama 2 70B near
saturation, then the same request count with outputs twice as long.

Targets on a 2-core machine: under 120 s wall and under 2 GB peak memory; doubling output length at an
equal request count costs less than 1.3x wall time (decode stretches are folded in closed form).

    python scripts/bench_engine.py [--duration 600] [--rate 3000] [--gpus 87]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from simulator.api import serving_config
from simulator.run import simulate
from workloads import LogNormal, Poisson, Requests


def run(config, requests):
    start = time.perf_counter()
    result = simulate(config, requests)
    wall = time.perf_counter() - start
    return wall, result.summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds of arrivals")
    parser.add_argument("--rate", type=float, default=3000.0, help="requests per second")
    parser.add_argument("--gpus", type=int, default=87)
    parser.add_argument("--seed", type=int, default=0)
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
    for label, out in (("base", outputs), ("2x output", outputs * 2)):
        wall, summary = run(config, Requests(arrival, inputs, out))
        rows.append((label, wall, summary))
        print(f"{label:10s} wall_s={wall:7.1f}  simulated_requests_per_wall_s={count / wall:9,.0f}  "
              f"output_tokens_per_s={summary['output_tokens_per_s']:12,.0f}  ttft_p99_s={summary['ttft_p99_s']:.3f}  "
              f"tpot_p99_s={summary['tpot_p99_s']:.4f}  steps={summary['engine_steps']:,}  "
              f"simulated_s={summary['simulated_s']:.0f}")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak_memory_gb={peak_gb:.2f}  wall_ratio_2x_output={rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
