"""Regenerate the shipped calibration rows (simulator/catalog/measurements/mlperf.csv) from MLCommons'
published MLPerf Inference v4.1 and v5.1 LLM results.

    python scripts/import_mlperf_rows.py [DATA_DIR]     # default: ../shared/data/mlperf-inference

The same as `infersim import-runs --format mlperf DATA_DIR --out ...`, plus a header saying where the
rows come from and what was left out. MLPerf v6.0 and later rounds are the project's held-out validation
set: they are never imported here.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from simulator.errors import ConfigError
from simulator.measurements import measurements_csv
from simulator.mlperf_results import import_mlperf
from simulator.output import write_atomic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mlperf-inference"
OUT = ROOT / "simulator" / "catalog" / "measurements" / "mlperf.csv"
ROUNDS = ("v4.1", "v5.1")
UPSTREAM = "https://github.com/mlcommons/inference_results_{round}/blob/main/{path}"


def public_source(source: str) -> str:
    """A result file named where anyone can open it: the path under the data folder ("v4.1/closed/...")
    becomes that file in MLCommons' public repository of the round (the data folder holds unchanged
    copies of those files, so the path inside the repository is the same)."""
    match = re.match(r"(v\d+\.\d+)/(.*)", source)
    return UPSTREAM.format(round=match.group(1), path=match.group(2)) if match else source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA,
                        help="the folder of MLCommons' result copies (default: ../shared/data/mlperf-inference)")
    data = parser.parse_args(argv).data
    try:
        report = import_mlperf([data])
    except ConfigError as exc:
        parser.exit(2, f"import_mlperf_rows: error: {exc}\n")
    rows = [replace(r, source=public_source(r.source)) for r in report.rows if r.round in ROUNDS]
    held_out = len(report.rows) - len(rows)
    if not rows:
        parser.exit(2, f"import_mlperf_rows: error: no {' or '.join(ROUNDS)} rows in {data} ({held_out} rows of "
                       f"held-out rounds left out); {OUT.name} left as it is\n")
    header = [
        "Published MLPerf Inference (datacenter) LLM results, imported by scripts/import_mlperf_rows.py from",
        "MLCommons' result repositories (github.com/mlcommons/inference_results_v4.1 and _v5.1, Apache 2.0).",
        "`source` is the LoadGen summary of the scored run in that repository. GENERATED: rerun the script",
        "(on a copy of those repositories) rather than editing. Rounds v6.0 and later are held out.",
        f"Not imported: {report.summary_line().split('; not imported: ')[-1] if report.skipped else 'nothing'}",
    ] + ([f"Held out: {held_out} rows of rounds after {ROUNDS[-1]}"] if held_out else [])
    text = "".join(f"# {line}\n" for line in header) + measurements_csv(rows)
    write_atomic(OUT, text)
    print(f"{len(rows)} rows -> {OUT.relative_to(ROOT)}")
    print(report.summary_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
