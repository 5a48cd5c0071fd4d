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
    "topology.nic_gbps" = [400, 800]    # topology.* and gpu.* keys become set_values what-ifs
    # or, instead of / besides [grid]:
    [[points]]
    gpu = "h200"
    gpus = 8

Every row holds the point's options, `point_id` (a hash of them), `status` (ok | error), `error`, and
the command's result row. A point that fails records its one-line error and the sweep goes on.
"""
from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import inspect
import io
import itertools
import json
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from simulator.api import CLUSTER_OPTIONS, WORKLOAD_OPTIONS, simulate as run_simulate
from simulator.catalog_io import read_toml
from simulator.errors import ConfigError, excerpt, first_repeat, reject_unknown_keys, require_choice, require_number
from simulator.hardware import get_gpu
from simulator.mlperf import mlperf as run_mlperf
from simulator.output import PendingOutput, read_csv_rows, rows_to_csv, write_atomic
from simulator.runfile import checked_value, version
from simulator.sizing import NOT_SIZE_OPTIONS, size as run_size

COMMANDS = ("simulate", "mlperf", "size")
META_COLUMNS = ("point_id", "inputs_id", "status", "error", "wall_s")
# The data a point's numbers come from besides its options: the shipped catalogs (GPUs, models, the
# efficiency profile a recalibration rewrites, topologies, scenarios and their datasets).
CATALOG_DIRS = tuple(Path(__file__).resolve().parent.parent / d
                     for d in ("simulator/catalog", "topologies/catalog", "workloads/catalog"))
CATALOG_SUFFIXES = (".toml", ".csv")       # data only: not the packages' code or its bytecode caches


def point_id(point: dict) -> str:
    return hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:12]


@functools.cache
def _shipped_digest() -> bytes:
    digest = hashlib.sha1(version().encode())
    for path in sorted(p for d in CATALOG_DIRS for p in d.rglob("*") if p.suffix in CATALOG_SUFFIXES and p.is_file()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.digest()


def inputs_id(point: dict) -> str:
    """A hash of what the point's numbers come from besides its options: infersim's version, the shipped
    catalogs and profile, and the contents of any file an option names (a user's profile or catalog).
    A resumed sweep keeps only rows computed from the same inputs (a point's id hashes its options alone,
    so after a recalibration it would mix the old profile's numbers with the new one's)."""
    digest = hashlib.sha1(_shipped_digest())
    for key in sorted(point):
        values = point[key] if isinstance(point[key], (list, tuple)) else [point[key]]
        for value in values:
            if isinstance(value, str) and value and os.path.isfile(value):
                stat = os.stat(value)
                digest.update(key.encode() + _file_digest(os.path.abspath(value), stat.st_mtime_ns, stat.st_size))
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:
    """A file's content hash, read once per version of the file (a sweep's points often share one trace
    or profile); an unreadable file hashes as its name (its run will report it)."""
    try:
        return hashlib.sha1(Path(path).read_bytes()).digest()
    except OSError:
        return path.encode()


MAX_POINTS = 1_000_000


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
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list, got {excerpt(values)}")
        twice = first_repeat(_identity(value) for value in values)
        if twice is not None:       # each combination with it would run twice, two rows of one point_id
            raise ConfigError(f"{where}: grid.{key} lists {excerpt(twice)} twice; give each value once")
    count = math.prod(len(values) for values in grid.values()) if grid else 0
    if count + len(listed) > MAX_POINTS:          # counted before a point is built: a grid can name billions
        raise ConfigError(f"{where}: {count + len(listed):,} points is more than {MAX_POINTS:,}")
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
    for point in points:
        _check_point(point, command, where)
    seen = set()
    for i, point in enumerate(points):
        key = _identity(point)
        if key in seen:             # a listed point equal to an earlier one: the same run, two rows of one point_id
            raise ConfigError(f"{where}: points[{i - count}] is a point given before (in [grid] or [[points]]); "
                              "give it once")
        seen.add(key)
    return command, points


def _identity(value) -> str:
    """A value's text for telling repeats apart (tables compare by content, whatever their key order)."""
    return json.dumps(value, sort_keys=True, default=str)


# Keys that set the same thing two ways: a point may give one of each pair, else which one ran is a guess.
SAME_SETTING = (("nodes", ("gpus",)), ("plan", ("tp", "pp", "ep")))


@functools.lru_cache(maxsize=None)
def command_options(command: str) -> frozenset[str]:
    """The keys a sweep point of `command` may set: the command's API options, and the sweep's own
    `plan` (tp/pp/ep as one value) and `nodes` (GPUs by the server); `gpu.*` and `topology.*` keys are
    what-ifs (`set_values`)."""
    function = {"simulate": run_simulate, "mlperf": run_mlperf}.get(command, run_size)
    named = set(inspect.signature(function).parameters) - {"options", "progress", "workload"}
    options = set(CLUSTER_OPTIONS) | named | (set(WORKLOAD_OPTIONS) if command == "simulate" else set())
    return frozenset((options - set(NOT_SIZE_OPTIONS) if command == "size" else options | {"nodes"}) | {"plan"})


def _check_point(point: dict, command: str, where: str) -> None:
    """Refuse a point whose keys its command does not take (a misspelt key in one [[points]] table failed
    that point alone, after the others ran), set one thing twice (base gpus and a grid's nodes), whose
    values are not of their option's type (gpu = 5, offline = "false"), or that lacks what its command
    needs, before any point runs."""
    known = command_options(command)
    for key in point:
        if command == "size" and key in ("gpus", "nodes"):
            raise ConfigError(f"{where}: {key} is what size finds; a size point gives target_tokens_per_s")
        if key not in known and not key.startswith(("gpu.", "topology.")):
            near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
            raise ConfigError(f"{where}: {excerpt(key, 40)} is no option of {command}"
                              + (f" (did you mean {near[0]}?)" if near else "")
                              + f"; its options: {', '.join(sorted(known))}")
    for key, value in point.items():
        if key != "fail":                   # checked below, with an example of its form
            checked_value(f"{where}: {excerpt(key, 40)[1:-1]}", key, value)
    for key, alternatives in SAME_SETTING:
        clash = [k for k in alternatives if k in point]
        if key in point and clash:
            raise ConfigError(f"{where}: a point sets both {key} and {', '.join(clash)} (from base, grid or "
                              f"points): give one, e.g. {key} = {point[key]!r} alone")
    if command == "size" and "target_tokens_per_s" not in point:
        raise ConfigError(f"{where}: command = \"size\" needs target_tokens_per_s (tokens/s, > 0) in base, "
                          "grid or points")
    fail = point.get("fail", ())
    failures = [fail] if isinstance(fail, str) else fail
    if not isinstance(failures, (list, tuple)) or not all(isinstance(f, str) for f in failures):
        raise ConfigError(f"{where}: fail must be a string like \"gpu:ID@T\" or a list of them, got {fail!r}")


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
        nodes = require_number("nodes", options.pop("nodes"), low=1, high=100_000, integer=True)
        gpu = get_gpu(options.get("gpu", "mi355x"), options.get("gpu_catalog", ()))
        options["gpus"] = nodes * min(gpu.gpus_per_server, 8)
    return options


def parse_plan(text) -> dict:
    """'tp16', 'pp2-tp8', 'tp8-ep8' -> {"tp": 16} etc.: a plan as one sweepable value."""
    options = {}
    for part in str(text).lower().replace("x", "-").split("-"):
        for key in ("tp", "pp", "ep"):
            if part.startswith(key) and part[len(key):].isdigit() and key not in options:
                options[key] = int(part[len(key):])
                break
        else:
            raise ConfigError(f"plan: {excerpt(text)} is not like tp16, pp2-tp8 or tp8-ep8 (each of tp, pp, ep "
                              "at most once)")
    return options


def run_point(command: str, point: dict) -> dict:
    """One point's row; never raises for bad input or infeasible plans (the row says why)."""
    start = time.perf_counter()
    row = {**{k: _cell(v) for k, v in point.items()}, "point_id": point_id(point), "status": "ok", "error": ""}
    try:
        options = api_options(point)
        result = {"simulate": run_simulate, "mlperf": run_mlperf}.get(command, run_size)(**options)
        for key, value in result.row().items():
            row.setdefault(key, value)
        # what the command would print beside the numbers (idle GPUs, drops, a run too short, ...; size: none)
        row["warnings"] = "; ".join(getattr(result, "warnings", ()))
    except Exception as exc:                       # noqa: BLE001 - a sweep records any failure and goes on
        row.update(status="error", error=f"{exc.__class__.__name__}: {exc}")
    row["wall_s"] = time.perf_counter() - start
    return row


def _cell(value):
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


class RowWriter:
    """Appends rows to a CSV, one flushed line per finished point, under a fixed header (written when the
    file is new); keys outside it go into the `extra` JSON column, so nothing a row holds is lost."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self.header = path, header
        self.handle = None

    def write(self, row: dict) -> None:
        if self.handle is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.handle = open(self.path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(self.handle).writerow(self.header)
        extra = {k: v for k, v in row.items() if k not in self.header}
        values = [row.get(k, "") for k in self.header]
        values[self.header.index("extra")] = json.dumps(extra, default=str) if extra else ""
        buffer = io.StringIO()
        csv.writer(buffer).writerow(values)
        self.handle.write(buffer.getvalue())       # one write per row: a kill leaves whole lines or a torn last one
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def expand_extra(row: dict) -> dict:
    """A row with its `extra` JSON cell spread into columns (cells already set win)."""
    text = row.get("extra")
    merged = {k: v for k, v in row.items() if k != "extra"}
    if not text:
        return merged
    try:
        values = json.loads(text)
    except (ValueError, RecursionError):
        return row
    if not isinstance(values, dict):
        return row
    for key, value in values.items():
        if merged.get(key) in (None, ""):      # as a CSV cell would hold it, so both forms compare equal
            merged[key] = "" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return merged


def read_rows(path) -> list[dict]:
    """Rows of a sweep CSV, `extra` spread into columns (a torn last line from a killed sweep is ignored)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    return [expand_extra(row) for row in read_csv_rows(path) if row.get("point_id")]


def columns_for(points: list[dict], rows: list[dict]) -> list[str]:
    """The results header: the points' keys in the order the sweep file gives them, the meta columns, then
    result columns in the order the points' rows have them. It depends on the sweep and its results,
    never on which point happened to finish first."""
    point_keys = list(dict.fromkeys(k for point in points for k in point))
    order = {point_id(p): i for i, p in enumerate(points)}
    ordered = sorted(rows, key=lambda r: order.get(r.get("point_id"), len(order)))
    taken = set(point_keys) | set(META_COLUMNS) | {"extra"}
    results = list(dict.fromkeys(k for r in ordered for k in r if k not in taken))
    return point_keys + list(META_COLUMNS) + results


def _rewrite(path: Path, points: list[dict], rows: list[dict], extra: bool) -> list[str]:
    """Rewrite a results file whole (write-then-rename) in the sweep's order under `columns_for`'s header
    (plus `extra` while more rows are to be appended); returns the header."""
    order = {point_id(p): i for i, p in enumerate(points)}
    rows = sorted(rows, key=lambda r: order.get(r.get("point_id"), len(order)))
    header = columns_for(points, rows) + (["extra"] if extra else [])
    write_atomic(path, rows_to_csv(rows, header))
    return header


def _open_results(path: Path, points: list[dict], resume: bool, inputs: dict) -> tuple[list[str], set]:
    """Make `path` ready to take rows before any point runs: its folder created and writable, an old file
    refused (without `resume`, or with rows from other `inputs`: `_done_with_same_inputs`) or checked and
    normalised. Returns the header to append under and the ids of the points the file already holds."""
    if path.is_dir():
        raise ConfigError(f"`out`: {path} is a folder")
    if path.exists() and path.stat().st_size > 0:
        if not resume:
            raise ConfigError(f"`out`: {path} exists; pass `resume` to continue it or choose a new file")
        try:
            rows = read_csv_rows(path)
        except ConfigError as exc:
            raise ConfigError(f"`out`: {exc}; choose a new file") from None
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
        if "point_id" not in next(csv.reader([first]), []):
            raise ConfigError(f"`out`: {path} is not a sweep's results file (no point_id column); choose a new file")
        held = [expand_extra(r) for r in rows if r.get("point_id")]
        done = _done_with_same_inputs(path, held, inputs)       # before the file is touched
        try:
            return _rewrite(path, points, held, extra=True), done
        except ConfigError as exc:
            raise ConfigError(f"`out`: {exc}") from None
    try:
        PendingOutput(path).discard()           # proves the folder takes files (and creates it)
    except ConfigError as exc:
        raise ConfigError(f"`out`: {exc}") from None
    return columns_for(points, []) + ["extra"], set()


def run_sweep(command: str, points: list[dict], out=None, *, jobs: int = 1, scheduler=None, resume: bool = False,
              progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """Run every point (skipping those already in `out` when `resume`); rows in completion order. `out`
    is checked before any point runs, takes each row as it finishes, and is rewritten at the end in the
    sweep's order under one header (see `columns_for`). A failed point's error names the field as the
    sweep file does (`gpus`)."""
    require_number("`jobs`", jobs, low=1, high=1024, integer=True)
    check_scheduler(scheduler)
    out_path = Path(out) if out else None
    done_ids: set = set()
    header = None
    inputs = {point_id(p): inputs_id(p) for p in points}      # here, where the sweep's files are
    if out_path is not None:
        header, done_ids = _open_results(out_path, points, resume, inputs)
    todo = [p for p in points if point_id(p) not in done_ids]
    writer = RowWriter(out_path, header) if out_path is not None else None
    rows, start = [], time.perf_counter()
    try:
        for row in _execute(command, todo, jobs, scheduler):
            row["inputs_id"] = inputs[row["point_id"]]
            rows.append(row)
            if writer is not None:
                writer.write(row)
            if progress is not None:
                progress(len(rows), len(todo), time.perf_counter() - start)
    finally:
        if writer is not None:
            writer.close()
    if out_path is not None and out_path.exists():
        _rewrite(out_path, points, read_rows(out_path), extra=False)
    return rows


def _done_with_same_inputs(path: Path, rows: list[dict], current: dict) -> set:
    """Ids of the points `path` already holds (its `rows`); refused when any of them was computed from
    other inputs than `current` (point id -> `inputs_id`). Rows written before inputs were recorded
    carry none and are kept."""
    stale = [r for r in rows if r.get("inputs_id") and r["point_id"] in current
             and r["inputs_id"] != current[r["point_id"]]]
    if stale:
        raise ConfigError(f"`out`: {len(stale)} of {len(rows)} rows in {path} were computed from other inputs "
                          f"(another infersim version, catalog or efficiency profile, e.g. after a "
                          f"recalibration; inputs_id {stale[0]['inputs_id']}, now {current[stale[0]['point_id']]}): "
                          f"resuming would mix their numbers with this run's; choose a new file")
    return {row["point_id"] for row in rows}


ADDRESS = re.compile(r"(?:tcp|tls|inproc|ucx|ws|wss)://\S+|[A-Za-z0-9_.\-]+:\d{1,5}")


def check_scheduler(scheduler) -> None:
    """A Dask scheduler address must look like one (tcp://host:8786, host:8786) before anything runs."""
    if scheduler is None or not isinstance(scheduler, str):
        return
    if not ADDRESS.fullmatch(scheduler.strip()):
        raise ConfigError(f"`scheduler`: {excerpt(scheduler, 40)} is not a Dask scheduler address "
                          f"(like tcp://host:8786)")


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
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start, initargs=(os.getpid(),))
        futures = []
        try:
            futures = [pool.submit(run_point, command, point) for point in points]
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            # Ctrl-C, an error, or the consumer gone: running points are abandoned, not waited for.
            for future in futures:
                future.cancel()
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_start(parent_pid: int) -> None:
    """Pool initializer: a local worker must not outlive the sweep that started it. Killed with SIGKILL,
    the sweep never shuts its pool down and idle workers would wait for work forever; so each worker asks
    the kernel for SIGTERM when its parent dies (Linux) and also watches its parent id (elsewhere, and
    when the parent is a fork server). Ctrl-C is the parent's to handle: it stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    if parent != parent_pid and parent == 1:
        os._exit(1)                                 # the sweep died before this worker started
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="infersim-parent-watch", daemon=True).start()


def _execute_dask(command: str, points: list[dict], scheduler) -> Iterable[dict]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError("`scheduler`: dask.distributed is not installed; pip install 'infersim[distributed]'") from None
    own = not isinstance(scheduler, Client)       # an address or a cluster object: our client, ours to close
    try:
        client = Client(scheduler, timeout="10s") if own else scheduler
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ConfigError(f"`scheduler`: cannot reach {excerpt(scheduler, 40)} ({exc.__class__.__name__})") from None
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
    if not isinstance(spec, (str, Path, dict)):
        raise ConfigError(f"sweep spec: expected a TOML path or a dict of its tables, got {excerpt(spec)}")
    command, points = load_sweep(spec) if isinstance(spec, (str, Path)) else expand(spec)
    return run_sweep(command, points, out, jobs=jobs, scheduler=scheduler, resume=resume, progress=progress)
