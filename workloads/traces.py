"""Trace replay: requests read from CSV (`arrival_s,input_tokens,output_tokens`; `timestamp` is accepted
for `arrival_s`) or JSONL (the same keys per line). Unsorted timestamps are sorted (stably); every bad
row is an error naming the file and line."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from simulator.catalog_io import read_text
from simulator.errors import ConfigError
from workloads.requests import Requests

ALIASES = {"timestamp": "arrival_s", "arrival": "arrival_s", "input": "input_tokens", "output": "output_tokens"}
COLUMNS = ("arrival_s", "input_tokens", "output_tokens")


def _row(path, number, record) -> tuple[float, int, int]:
    record = {ALIASES.get(str(k).strip(), str(k).strip()): v for k, v in record.items()}
    missing = [c for c in COLUMNS if c not in record or record[c] in (None, "")]
    if missing:
        raise ConfigError(f"{path}: line {number}: missing {missing[0]}")
    try:
        arrival = float(record["arrival_s"])
        inputs, outputs = float(record["input_tokens"]), float(record["output_tokens"])
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: line {number}: values must be numbers, got "
                          f"{[record[c] for c in COLUMNS]!r}") from None
    if not math.isfinite(arrival) or arrival < 0:
        raise ConfigError(f"{path}: line {number}: arrival_s {record['arrival_s']!r} must be finite and >= 0")
    for name, value in (("input_tokens", inputs), ("output_tokens", outputs)):
        if not math.isfinite(value) or value < 1 or value != int(value) or value > 10_000_000:
            raise ConfigError(f"{path}: line {number}: {name} {record[name]!r} must be a whole number in [1, 10000000]")
    return arrival, int(inputs), int(outputs)


def load_trace(path: str | Path) -> Requests:
    path = Path(path)
    text = read_text(path)
    rows = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise ConfigError(f"{path}: line {number}: not valid JSON") from None
            if not isinstance(record, dict):
                raise ConfigError(f"{path}: line {number}: expected a JSON object")
            rows.append(_row(path, number, record))
    else:
        lines = text.splitlines()
        if not lines or not lines[0].strip():
            raise ConfigError(f"{path}: file is empty")
        reader = csv.DictReader(lines)
        header = {ALIASES.get(h.strip(), h.strip()) for h in (reader.fieldnames or [])}
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ConfigError(f"{path}: line 1: header lacks column {missing[0]!r} (need {', '.join(COLUMNS)})")
        for number, record in enumerate(reader, start=2):
            if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                continue
            rows.append(_row(path, number, record))
    if not rows:
        raise ConfigError(f"{path}: no requests in the trace")
    data = np.array(rows, dtype=float)
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    return Requests(data[:, 0], data[:, 1].astype(np.int64), data[:, 2].astype(np.int64))
