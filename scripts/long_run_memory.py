"""Long-run memory: simulate hours of open-loop traffic and report peak memory and bytes per request.

    python scripts/long_run_memory.py [--hours 1] [--rate 300] [--gpus 8] [--keep-requests]

By default the run streams its metrics (what `infersim simulate` does above 2M open-loop requests):
arrivals are drawn in chunks, each request holds a table slot only while in the system, and finished
requests fold into fixed-size histograms, so memory is flat in the run's length. `--keep-requests`
keeps the full per-request table instead (~200 bytes per request) for comparison.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

from simulator.api import serving_config
from simulator.run import ChunkedWorkload, simulate
from workloads.arrivals import Poisson
from workloads.scenarios import get_scenario
from workloads.spec import WorkloadSpec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--keep-requests", action="store_true", help="full per-request table, not streamed")
    args = parser.parse_args(argv)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = serving_config(model="llama2-70b", gpu="mi355x", gpus=args.gpus, precision="fp4", max_batch_size=1024)
    count = int(args.rate * args.hours * 3600)
    scenario = get_scenario("llama2-70b", "server")
    if args.keep_requests:
        workload = scenario.requests(count, args.rate, seed=0)
    else:
        spec = WorkloadSpec(arrival=Poisson(args.rate), input_lengths=scenario.input_lengths,
                            output_lengths=scenario.output_lengths, requests=count)
        workload = ChunkedWorkload(lambda: spec.chunks(seed=0))
    start = time.perf_counter()
    result = simulate(config, workload)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(("full table" if args.keep_requests else "streamed metrics") + f": {count:,} requests over {args.hours:g} h at {args.rate:g}/s on {args.gpus} MI355X: wall {wall:.1f} s, "
          f"{result.summary['output_tokens_per_s']:,.0f} tok/s, ttft_p99_s {result.summary['ttft_p99_s']:.3f}")
    print(f"peak_memory_gb={peak_kb / 1e6:.2f} (before the run {before_kb / 1e6:.2f}); "
          f"bytes_per_request={(peak_kb - before_kb) * 1e3 / count:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
