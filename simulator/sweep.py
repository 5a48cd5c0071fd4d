"""Sweeps: a grid (or list) of points over any option, run on local processes or a Dask cluster, rows
appended to a CSV as each point finishes, `resume` skipping points already written.

A sweep file (TOML):

    command = "simulate"            # simulate | mlperf | size
    [base]                          # options every point shares (the Python API's names)
    model = "llama2-70b"
    offline = true
    requests = 20000
    [grid]                          # the cartesian product of these lists
    nodes = [1, 2, 4]               # nodes x GPUs per node (the GPU's server size, at most 8) = gpus
    gpu = ["mi355x", "b200"]
    "topology.nic_gbps" = [400, 800]    # topology.* and gpu.* keys become --set what-ifs
    # or, instead of / besides [grid]:
    [[points]]
    gpu = "h200"
    gpus = 8

Every row holds the point's options, `point_id` (a hash of them), `status` (ok | error), `error`, and
the command's result row. A point that fails records its one-line error and the sweep goes on.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from simulator.catalog_io import read_toml
from simulator.errors import ConfigError, reject_unknown_keys, require_choice, require_number

COMMANDS = ("simulate", "mlperf", "size")
META_COLUMNS = ("point_id", "status", "error", "wall_s")


def point_id(point: dict) -> str:
    return hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:12]


def expand(spec: dict, where: str = "sweep") -> tuple[str, list[dict]]:
    """(command, points) from a sweep table: base merged into each grid combination and each listed point."""
    reject_unknown_keys(where, spec, ("command", "base", "grid", "points"))
    command = require_choice(f"{where}: command", spec.get("command", "simulate"), COMMANDS)
    base = spec.get("base", {})
    grid = spec.get("grid", {})
    listed = spec.get("points", [])
    if not isinstance(base, dict) or not isinstance(grid, dict) or not isinstance(listed, list):
        raise ConfigError(f"{where}: base and grid must be tables, points a list of tables")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list, got {values!r}")
    points = []
    if grid:
        keys = list(grid)
        for combination in itertools.product(*(grid[k] for k in keys)):
            points.append({**base, **dict(zip(keys, combination))})
    for i, extra in enumerate(listed):
        if not isinstance(extra, dict):
            raise ConfigError(f"{where}: points[{i}] must be a table")
        points.append({**base, **extra})
    if not points:
        points = [dict(base)] if base else []
    if not points:
        raise ConfigError(f"{where}: no points (give [grid] lists or [[points]] tables)")
    if len(points) > 1_000_000:
        raise ConfigError(f"{where}: {len(points)} points is more than 1,000,000")
    return command, points


def load_sweep(path) -> tuple[str, list[dict]]:
    return expand(read_toml(path), str(path))


def api_options(point: dict) -> dict:
    """A point's keys as API options: `nodes` becomes `gpus`, topology.*/gpu.* keys become set_values."""
    options, set_values = {}, list(point.get("set_values", []))
    for key, value in point.items():
        if key == "set_values":
            continue
        if key.startswith(("topology.", "gpu.")):
            set_values.append(f"{key}={value}")
        else:
            options[key] = value
    if set_values:
        options["set_values"] = tuple(set_values)
    if "fail" in options and isinstance(options["fail"], str):
        options["fail"] = (options["fail"],)
    if "plan" in options:
        options.update(parse_plan(options.pop("plan")))
    if "nodes" in options:
        from simulator.hardware import get_gpu
        nodes = require_number("nodes", options.pop("nodes"), low=1, high=100_000, integer=True)
        gpu = get_gpu(options.get("gpu", "mi355x"), options.get("gpu_catalog", ()))
        options["gpus"] = nodes * min(gpu.gpus_per_server, 8)
    return options


def parse_plan(text) -> dict:
    """'tp16', 'pp2-tp8', 'tp8-ep8' -> {"tp": 16} etc.: a plan as one sweepable value."""
    options = {}
    for part in str(text).lower().replace("x", "-").split("-"):
        for key in ("tp", "pp", "ep"):
            if part.startswith(key) and part[len(key):].isdigit():
                options[key] = int(part[len(key):])
                break
        else:
            raise ConfigError(f"plan: {text!r} is not like tp16, pp2-tp8 or tp8-ep8")
    return options


def run_point(command: str, point: dict) -> dict:
    """One point's row; never raises for bad input or infeasible plans (the row says why)."""
    start = time.perf_counter()
    row = {**{k: _cell(v) for k, v in point.items()}, "point_id": point_id(point), "status": "ok", "error": ""}
    try:
        options = api_options(point)
        if command == "simulate":
            from simulator.api import simulate
            result_row = simulate(**options).row()
        elif command == "mlperf":
            from simulator.mlperf import mlperf
            result_row = mlperf(**options).row()
        else:
            from simulator.sizing import size
            result_row = size(**options).row()
        for key, value in result_row.items():
            row.setdefault(key, value)
    except Exception as exc:                       # noqa: BLE001 - a sweep records any failure and goes on
        row.update(status="error", error=f"{exc.__class__.__name__}: {exc}")
    row["wall_s"] = time.perf_counter() - start
    return row


def _cell(value):
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


class RowWriter:
    """Appends rows to a CSV, one flushed line per finished point. The header is fixed by the first row
    (point keys + meta + its result columns); keys a later row adds go into an `extra` JSON column."""

    def __init__(self, path: Path, header: list[str] | None):
        self.path, self.header = path, header
        self.handle = None

    def write(self, row: dict) -> None:
        if self.header is None:
            self.header = list(row) + ["extra"]
        if self.handle is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.handle = open(self.path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(self.handle).writerow(self.header)
        extra = {k: v for k, v in row.items() if k not in self.header}
        values = [row.get(k, "") for k in self.header]
        if "extra" in self.header:
            values[self.header.index("extra")] = json.dumps(extra, default=str) if extra else ""
        buffer = io.StringIO()
        csv.writer(buffer).writerow(values)
        self.handle.write(buffer.getvalue())       # one write per row: a kill leaves whole lines or a torn last one
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def read_rows(path) -> list[dict]:
    """Rows of a sweep CSV (a torn last line from a killed sweep is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return []
    lines = text.splitlines(keepends=True)
    if not text.endswith("\n"):
        lines = lines[:-1]                           # torn last line
    reader = csv.DictReader(lines)
    rows = [r for r in reader if r.get("point_id") and None not in r]
    return rows


def _repair(path: Path) -> list[str] | None:
    """Drop a torn last line (write-then-rename) and return the existing header."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    first = text.splitlines()[0] if text else ""
    return next(csv.reader([first])) if first else None


def run_sweep(command: str, points: list[dict], out=None, *, jobs: int = 1, scheduler=None, resume: bool = False,
              progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """Run every point (skipping those already in `out` when `resume`); rows in completion order."""
    require_number("--jobs", jobs, low=1, high=1024, integer=True)
    out_path = Path(out) if out else None
    done_ids: set = set()
    header = None
    if out_path is not None:
        if out_path.exists() and not resume and out_path.stat().st_size > 0:
            raise ConfigError(f"--out: {out_path} exists; pass --resume to continue it or choose a new file")
        header = _repair(out_path)
        done_ids = {row["point_id"] for row in read_rows(out_path)} if resume else set()
    todo = [p for p in points if point_id(p) not in done_ids]
    writer = RowWriter(out_path, header) if out_path is not None else None
    rows, start = [], time.perf_counter()
    try:
        for row in _execute(command, todo, jobs, scheduler):
            rows.append(row)
            if writer is not None:
                writer.write(row)
            if progress is not None:
                progress(len(rows), len(todo), time.perf_counter() - start)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _execute(command: str, points: list[dict], jobs: int, scheduler) -> Iterable[dict]:
    if not points:
        return
    if scheduler is not None:
        yield from _execute_dask(command, points, scheduler)
    elif jobs == 1:
        for point in points:
            yield run_point(command, point)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_point, command, point) for point in points]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _execute_dask(command: str, points: list[dict], scheduler) -> Iterable[dict]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler: dask.distributed is not installed; pip install 'infersim[distributed]'") from None
    own = not isinstance(scheduler, Client)       # an address or a cluster object: our client, ours to close
    try:
        client = Client(scheduler, timeout="10s") if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--scheduler: cannot reach {scheduler!r} ({exc.__class__.__name__})") from None
    try:
        futures = [client.submit(run_point, command, point, pure=False) for point in points]
        for future in as_completed(futures):
            yield future.result()
    finally:
        if own:
            client.close()


def progress_bar(stream=sys.stderr):
    """A one-line progress bar for the CLI: done/total, elapsed, estimated time left."""
    def show(done: int, total: int, elapsed_s: float) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        eta = elapsed_s / done * (total - done) if done else 0.0
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {elapsed_s:.0f} s, "
                     f"~{eta:.0f} s left")
        if done == total:
            stream.write("\n")
        stream.flush()
    return show


def sweep(spec, out=None, *, jobs: int = 1, scheduler=None, resume: bool = False, progress=None) -> list[dict]:
    """Python API: `spec` is a sweep TOML path or a dict of the same shape."""
    command, points = load_sweep(spec) if isinstance(spec, (str, Path)) else expand(spec)
    return run_sweep(command, points, out, jobs=jobs, scheduler=scheduler, resume=resume, progress=progress)
