"""Benchmark: wall time of a 100-point sweep with --jobs 1 vs --jobs 2 (through the CLI, as users run it).

    python scripts/bench_sweep.py

Points: Llama 3.1 8B on 1-4 B200/MI355X, Poisson 5-50 requests/s, 4,000 requests each (10 rates x 5
GPU counts x 2 GPUs = 100 points).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """command = "simulate"
[base]
model = "llama3.1-8b"
requests = 4000
input_tokens = "lognormal:800,0.5,32,4096"
output_tokens = "lognormal:200,0.5,1,1024"
[grid]
gpu = ["b200", "mi355x"]
gpus = [1, 2, 3, 4, 5]
rate = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0]
"""


def timed(jobs: int, workdir: Path) -> float:
    spec, out = workdir / "bench.toml", workdir / f"bench_jobs{jobs}.csv"
    spec.write_text(SPEC)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out), "--jobs", str(jobs),
                    "--quiet"], check=True)
    wall = time.perf_counter() - start
    rows = out.read_text().count("\n") - 1
    print(f"--jobs {jobs}: {rows} points in {wall:.1f} s ({rows / wall:.2f} points/s)")
    return wall


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        one = timed(1, Path(tmp))
        two = timed(2, Path(tmp))
    print(f"speed-up with 2 jobs: {one / two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
