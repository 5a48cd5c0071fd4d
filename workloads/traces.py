"""Trace replay: requests read from CSV (`arrival_s,input_tokens,output_tokens`; `timestamp` is accepted
for `arrival_s`) or JSONL (the same keys per line). Unsorted timestamps are sorted (stably); every bad
row, and an unknown or repeated column, is an error naming the file and line."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from simulator.catalog_io import parse_json, read_text
from simulator.errors import ConfigError, excerpt
from workloads.lengths import MAX_TOKENS
from workloads.requests import MAX_ARRIVAL_S, Requests

ALIASES = {"timestamp": "arrival_s", "arrival": "arrival_s", "input": "input_tokens", "output": "output_tokens"}
COLUMNS = ("arrival_s", "input_tokens", "output_tokens")


def accepted_columns() -> str:
    """The columns a trace takes, each with its aliases: 'arrival_s (or timestamp, arrival), ...'."""
    def with_aliases(column):
        aliases = [alias for alias, name in ALIASES.items() if name == column]
        return f"{column} (or {', '.join(aliases)})" if aliases else column
    return ", ".join(with_aliases(column) for column in COLUMNS)


def check_columns(where: str, names) -> None:
    """Refuse a column the trace does not read, and one given twice (also under an alias): either would
    be ignored, or one copy would silently win over the other."""
    given = {}
    for name in names:
        key = str(name).strip()
        column = ALIASES.get(key, key)
        if column not in COLUMNS:
            raise ConfigError(f"{where}: unknown column {excerpt(key)}; accepted: {accepted_columns()}")
        if column in given:
            twice = (f"column {excerpt(key)} appears twice" if given[column] == key else
                     f"columns {excerpt(given[column])} and {excerpt(key)} both give {column}")
            raise ConfigError(f"{where}: {twice}; keep one")
        given[column] = key


def _row(path, number, record, typed: bool = False) -> tuple[float, int, int]:
    """One request from a row; `typed` (JSONL) also refuses values that are not JSON numbers, since
    float(true) would read a boolean as 1."""
    record = {ALIASES.get(str(k).strip(), str(k).strip()): v for k, v in record.items()}
    missing = [c for c in COLUMNS if c not in record or record[c] in (None, "")]
    if missing:
        raise ConfigError(f"{path}: line {number}: missing {missing[0]}")
    if typed:
        for name in COLUMNS:
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{path}: line {number}: {name} must be a number, got "
                                  f"{json.dumps(value)[:24] if not isinstance(value, str) else excerpt(value)}")
    try:
        arrival = float(record["arrival_s"])
        inputs, outputs = float(record["input_tokens"]), float(record["output_tokens"])
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{path}: line {number}: values must be numbers, got "
                          f"{', '.join(excerpt(record[c], 16) for c in COLUMNS)}") from None
    if not math.isfinite(arrival) or arrival < 0 or arrival > MAX_ARRIVAL_S:
        raise ConfigError(f"{path}: line {number}: arrival_s {excerpt(record['arrival_s'])} must be finite and "
                          f"in [0, {MAX_ARRIVAL_S:,.0f}] seconds")
    for name, value in (("input_tokens", inputs), ("output_tokens", outputs)):
        if not math.isfinite(value) or value < 1 or value != int(value) or value > MAX_TOKENS:
            raise ConfigError(f"{path}: line {number}: {name} {excerpt(record[name])} must be a whole number in "
                              f"[1, {MAX_TOKENS}]")
    return arrival, int(inputs), int(outputs)


def load_trace(path: str | Path) -> Requests:
    path = Path(path)
    text = read_text(path)
    rows = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            record = parse_json(f"{path}: line {number}", line)
            if not isinstance(record, dict):
                raise ConfigError(f"{path}: line {number}: expected a JSON object")
            check_columns(f"{path}: line {number}", record)
            rows.append(_row(path, number, record, typed=True))
    else:
        try:
            lines = text.splitlines()
            if not lines or not lines[0].strip():
                raise ConfigError(f"{path}: file is empty")
            reader = csv.DictReader(lines)
            check_columns(f"{path}: line 1", reader.fieldnames or [])
            header = {ALIASES.get(h.strip(), h.strip()) for h in (reader.fieldnames or [])}
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ConfigError(f"{path}: line 1: header lacks column {missing[0]!r} (need {', '.join(COLUMNS)})")
            for number, record in enumerate(reader, start=2):
                if None in record:       # csv puts cells beyond the header under the key None
                    raise ConfigError(f"{path}: line {number}: more cells than the header's "
                                      f"{len(reader.fieldnames)} columns")
                if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                    continue
                rows.append(_row(path, number, record))
        except csv.Error as exc:
            raise ConfigError(f"{path}: not valid CSV ({exc})") from None
    if not rows:
        raise ConfigError(f"{path}: no requests in the trace")
    data = np.array(rows, dtype=float)
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    return Requests(data[:, 0], data[:, 1].astype(np.int64), data[:, 2].astype(np.int64))
