"""Writing results: JSON documents and CSV tables, always write-then-rename so an interrupted run
never leaves a half-written file; and a compact human-readable table for the terminal."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(document: dict) -> str:
    return json.dumps(_clean(document), indent=2, sort_keys=False)


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rows_to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in _clean(row).items()})
    return buffer.getvalue()


def per_request_csv(arrays: dict) -> str:
    """One row per request: times in seconds, lengths in tokens."""
    from simulator.metrics import request_metrics
    derived = request_metrics(arrays)
    columns = {"request": np.arange(len(arrays["arrival_s"])), **arrays, **derived}
    buffer = io.StringIO()
    names = list(columns)
    buffer.write(",".join(names) + "\n")
    matrix = [columns[n].tolist() for n in names]
    for row in zip(*matrix):
        buffer.write(",".join("" if isinstance(v, float) and not math.isfinite(v) else repr(v) if isinstance(v, float)
                              else str(v) for v in row) + "\n")
    return buffer.getvalue()


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Aligned text table; floats get 4 significant figures, or whole numbers with separators from 10,000."""
    def show(value):
        if isinstance(value, float):
            if not math.isfinite(value):
                return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
            return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
        return str(value)
    cells = [[show(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def format_summary(document: dict) -> str:
    """Key: value lines for a single result (nested tables flattened with dots)."""
    lines = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            if isinstance(value, float):
                value = "nan" if not math.isfinite(value) else f"{value:.6g}"
            lines.append(f"{prefix:<34} {value}")
    walk("", document)
    return "\n".join(lines)
