"""Regenerate the shipped efficiency profile (simulator/catalog/profile.toml) from the shipped
measurements (simulator/catalog/measurements/*.csv). The profile is this script's output; never edit it
by hand.

    python scripts/fit_default_profile.py            # fit and write the profile
    python scripts/fit_default_profile.py --dry-run  # print the table only
How well the result predicts what it did not see: `infersim validate` (docs/validation.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.calibrate import calibrate_files, stderr_progress
from simulator.output import format_table, write_atomic

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = sorted((ROOT / "simulator" / "catalog" / "measurements").glob("*.csv"))
PROFILE = ROOT / "simulator" / "catalog" / "profile.toml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="do not write the profile")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    header = ("Efficiency profile: the fraction of datasheet peaks software reaches, fitted to the shipped\n"
              "measurements by scripts/fit_default_profile.py. GENERATED: do not edit by hand; add rows to\n"
              "simulator/catalog/measurements/ and rerun the script.\n"
              "Sources: " + ", ".join(p.name for p in MEASUREMENTS))
    result, text, rows = calibrate_files([str(p) for p in MEASUREMENTS], header=header, progress=stderr_progress)
    print(format_table(rows, [c for c in rows[0] if c not in ("source", "submitter")]))
    print(f"residual log-RMS {result.residual_log_rms:.4f}; wall {time.perf_counter() - start:.0f} s")
    if not args.dry_run:
        write_atomic(PROFILE, text)
        print(f"wrote {PROFILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
