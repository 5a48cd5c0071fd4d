"""The two sweep studies, each a sweep file in scripts/sweeps/ run with `simulator.sweep` and plotted:

  scaling       Llama 2 70B Offline on 1..16 nodes of MI355X vs B200: output tokens/s and $ per million tokens
  interconnect  Llama 3.1 405B across H100 nodes: 400G vs 800G NICs, 1:1 vs 2:1 oversubscription,
                tp 16 vs pp 2 x tp 8

    python scripts/sweep_studies.py [scaling|interconnect ...] [--jobs 2] [--outdir docs/studies] [--resume]

Without --resume every point is run afresh. --resume keeps the rows already in the CSV, and stops
(one line, exit 2) if any of them was computed from other inputs (another infersim version, catalog
or profile: a row's `inputs_id`), so a recalibration cannot leave old rows beside new ones.

The CLI equivalent of one study:
    infersim sweep scripts/sweeps/scaling.toml --out scaling.csv --jobs 2
    infersim plot scaling.csv --x nodes --y output_tokens_per_s --color gpu -o scaling.png
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.errors import ConfigError
from simulator.output import format_table
from simulator.plot import plot_rows
from simulator.sweep import read_rows, sweep

HERE = Path(__file__).resolve().parent
STUDIES = {
    "scaling": [("nodes", "output_tokens_per_s", "gpu", "line"), ("nodes", "usd_per_million_tokens", "gpu", "line")],
    "interconnect": [("nodes", "output_tokens_per_s", "variant", "line")],
}


def run(name: str, outdir: Path, jobs: int, resume: bool = False) -> None:
    """One study, afresh: a CSV left by an earlier run holds the figures of the profile it ran at (a point's
    id hashes its options, not the efficiencies), so it is replaced unless `resume` continues it."""
    out = outdir / f"{name}.csv"
    start = time.perf_counter()
    if out.exists() and not resume:
        out.unlink()
    sweep(HERE / "sweeps" / f"{name}.toml", out, jobs=jobs, resume=resume and out.exists())
    rows = read_rows(out)
    wall = time.perf_counter() - start
    if name == "interconnect":
        for row in rows:
            row["variant"] = (f"{row['plan']} {float(row['topology.nic_gbps']):.0f}G "
                              f"{float(row['topology.oversubscription']):g}:1")
        columns = ["nodes", "plan", "topology.nic_gbps", "topology.oversubscription", "output_tokens_per_s",
                   "tpot_p50_s", "ttft_p50_s", "status"]
    else:
        columns = ["gpu", "nodes", "gpus", "output_tokens_per_s", "output_tokens_per_s_per_gpu", "usd_per_million_tokens",
                   "status"]
    for row in rows:
        for key in columns:
            try:
                row[key] = float(row[key]) if key not in ("gpu", "plan", "status") else row[key]
            except (KeyError, ValueError):
                pass
    rows.sort(key=lambda r: (str(r.get(columns[0])) if name == "scaling" else float(r["nodes"]),
                             float(r["nodes"]) if name == "scaling" else str(r.get("plan"))))
    print(f"\n{name}: {len(rows)} points, {wall:.0f} s wall with --jobs {jobs}")
    print(format_table(rows, columns))
    for x, y, color, kind in STUDIES[name]:
        path, _ = plot_rows(rows, x, y, outdir / f"{name}_{y}.png", color=color, kind=kind)
        print(f"plot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", help=f"which studies (default: all of {', '.join(STUDIES)})")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--outdir", type=Path, default=Path("docs/studies"))
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (points already in the CSV are not run again)")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    unknown = [name for name in args.studies if name not in STUDIES]
    if unknown:
        parser.error(f"unknown study {unknown[0]!r}; choose from {', '.join(STUDIES)}")
    for name in args.studies or list(STUDIES):
        try:
            run(name, args.outdir, args.jobs, args.resume)
        except ConfigError as exc:
            print(f"sweep_studies.py: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
