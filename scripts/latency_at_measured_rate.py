"""Latencies at the measured load: each shipped MLPerf Server / Interactive row's system run at the rate it
was measured at (its completed samples per second), on the plan the `mlperf` search picks at the shipped
profile, against the p99 TTFT and TPOT its LoadGen summary reports.

The fit uses measured throughput only; this checks the latency side of the same runs: a simulated p99
TPOT well below the measured one at the same rate means the simulated system sits further from
saturation there (its capacity is higher), or its steps are shorter at that batch. `mlperf` predicts at
each stack's newest release, so rows of older releases compare at faster efficiencies than they ran.

Shipped profile (docs/studies/latency_at_measured_rate.txt, 41 Server and 10 Interactive systems):
simulated p99 TPOT median 10% below measured on Server (13 of 41 more than 26% below: real Server runs
sit close to saturation, where TPOT climbs steeply), 3% below on Interactive; simulated p99 TTFT 0.30x
the measured on Server and 0.38x on Interactive (31 of 41 and 8 of 10 lower): the simulated
`continuous` policy prefills an arriving prompt in a step of its own at once, where the measured
engines take it into the running batch a step or two later.

    python scripts/latency_at_measured_rate.py                   # every model
    python scripts/latency_at_measured_rate.py llama2-70b b200   # rows whose label has all the words
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from simulator.measurements import load_measurement_files
from simulator.mlperf import PLAN_PINS, mlperf
from simulator.output import format_table

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = sorted((ROOT / "simulator" / "catalog" / "measurements").glob("mlperf*.csv"))


def systems(rows, words):
    """One row per system, model, scenario and stack (its first), with measured p99s and tokens per sample
    (its rate is tokens/s over them), on its own dataset."""
    seen = {}
    for row in rows:
        label = f"{row.model} {row.gpu} x{row.gpus} {row.scenario} {row.stack}"
        if (row.scenario in ("server", "interactive") and row.tpot_p99_s and row.ttft_p99_s and row.output_tokens
                and row.benchmark == row.model and all(w in label.split() for w in words)):
            seen.setdefault(label, row)
    return seen


def main(argv=None) -> int:
    words = sys.argv[1:] if argv is None else argv
    rows = load_measurement_files(MEASUREMENTS)
    table = []
    for label, row in systems(rows, words).items():
        options = dict(model=row.model, gpu=row.gpu, gpus=row.gpus, precision=row.precision, stack=row.stack,
                       scenario=row.scenario)
        best = mlperf(**options)
        pins = {k: best.run.plan[k] for k in PLAN_PINS}
        rate_per_s = row.output_tokens_per_s / row.output_tokens
        summary = mlperf(rate=rate_per_s, **options, **pins).run.summary
        table.append({"row": label, "plan": f"tp{pins['tp']}-mbs{pins['max_batch_size']}",
                      "predicted_vs_measured_tokens_pct": 100 * (best.tokens_per_s / row.output_tokens_per_s - 1),
                      "measured_rate_per_s": rate_per_s,
                      "tpot_p99_ms_simulated": 1e3 * summary["tpot_p99_s"], "tpot_p99_ms_measured": 1e3 * row.tpot_p99_s,
                      "ttft_p99_ms_simulated": 1e3 * summary["ttft_p99_s"], "ttft_p99_ms_measured": 1e3 * row.ttft_p99_s,
                      "tpot_p99_log_ratio": math.log(summary["tpot_p99_s"] / row.tpot_p99_s)})
        print(f"{label}: simulated p99 TPOT {table[-1]['tpot_p99_ms_simulated']:.1f} ms, measured "
              f"{table[-1]['tpot_p99_ms_measured']:.1f} ms", file=sys.stderr, flush=True)
    if table:
        print(format_table(table, list(table[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
