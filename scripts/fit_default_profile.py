"""Regenerate the shipped efficiency profile (simulator/catalog/profile.toml) from the shipped
measurements (simulator/catalog/measurements/*.csv), and with --validate the validation report
(docs/validation.md) from the same fit. The profile is this script's output; never edit it by hand.

    python scripts/fit_default_profile.py                      # fit and write the profile
    python scripts/fit_default_profile.py --validate           # ... and docs/validation.md (three splits);
                                                               # the profile then also carries what
                                                               # would have put 80% of held-out models'
                                                               # rows inside their intervals
                                                               # (unseen_model_log_sigma), and per model
                                                               # and scenario the same for rows held out
                                                               # with their GPU (unseen_run_log_sigma)
    python scripts/fit_default_profile.py --dry-run            # print the per-row table only

`infersim validate --out docs/validation.md` writes the same report from a fit of its own.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.calibrate import fit, profile_toml, report_rows
from simulator.measurements import load_measurement_files
from simulator.output import format_table, write_atomic
from simulator.progress import Progress
from simulator.validate import SPLITS, markdown, unseen_model_log_sigma, unseen_run_log_sigmas, validate, worst_rows

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = sorted((ROOT / "simulator" / "catalog" / "measurements").glob("*.csv"))
PROFILE = ROOT / "simulator" / "catalog" / "profile.toml"
REPORT = ROOT / "docs" / "validation.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="do not write the profile")
    parser.add_argument("--validate", action="store_true", help="also run the validation splits and write the report")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    header = ("Efficiency profile: the fraction of datasheet peaks software reaches, fitted to the shipped\n"
              "measurements by scripts/fit_default_profile.py. GENERATED: do not edit by hand; add rows to\n"
              "simulator/catalog/measurements/ and rerun the script.\n"
              "Sources: " + ", ".join(p.name for p in MEASUREMENTS))
    rows = load_measurement_files(MEASUREMENTS)
    with Progress("fit") as progress:
        result = fit(rows, progress=progress)
    table = report_rows(result)
    print(format_table(table, [c for c in table[0] if c not in ("source", "submitter")]))
    print(f"residual log-RMS {result.residual_log_rms:.4f}, scatter beyond the parameters "
          f"{result.model_log_sigma:.4f}; fit {result.wall_s:.0f} s")
    if not args.dry_run:
        write_atomic(PROFILE, profile_toml(result, header))
        print(f"wrote {PROFILE.relative_to(ROOT)}")
    if args.validate:
        with Progress("validate") as progress:
            results = validate(rows, base=result, progress=progress)
        write_atomic(REPORT, markdown(results, "python scripts/fit_default_profile.py --validate") + "\n")
        unseen = unseen_model_log_sigma(results["model"]["held_out"])
        unseen_runs = unseen_run_log_sigmas(results["gpu"]["held_out"])
        if not args.dry_run:
            write_atomic(PROFILE, profile_toml(result, header, unseen_model_log_sigma=unseen,
                                               unseen_run_log_sigma=unseen_runs))
            print(f"unseen_model_log_sigma {unseen:.4f}, unseen_run_log_sigma for {len(unseen_runs)} model and "
                  f"scenario pairs -> {PROFILE.relative_to(ROOT)}")
        for split in SPLITS:
            print(split, results[split]["summary"])
        for held in worst_rows(results):
            print(f"worst: {held.split} without {held.left_out}: {held.spec.label} {held.row.submitter} "
                  f"measured {held.row.output_tokens_per_s:,.0f} predicted {held.predicted:,.0f} ({100 * held.error:+.1f}%)")
        print(f"wrote {REPORT.relative_to(ROOT)}; total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
