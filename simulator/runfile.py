"""Run files: a command's inputs as TOML tables, read with typos refused and written back, so that any
result can be re-run exactly.

    command = "simulate"          # optional; when present it must be the command reading the file

    [cluster]                     # what is deployed: model, GPU, count, topology, catalogs, price
    model = "llama2-70b"
    gpu = "mi355x"
    gpus = 8

    [plan]                        # how: parallelism, precision, batching, routing, limits
    tp = 1
    precision = "fp8"

    [workload]                    # what it serves: rate, duration_s, requests, lengths, a workload file
    rate = 40.0
    duration_s = 120.0

    [sla]                         # what it must meet: goodput limits, a sizing target
    [whatif]                      # changed hardware: NIC speed, oversubscription, set_values, failures
    [output]                      # where results go and how they are reported: out, interval

Keys are the Python API's option names (the names a sweep file's `[base]` takes), listed in `FIELDS` with
their table and type. `read` checks a file against the fields a command takes (unknown tables and keys,
wrong types: one line naming file, table and key) and makes its relative paths relative to the file's
folder; `tables` is the run-file form of a command's resolved options (every option, defaults included,
paths absolute), which JSON results embed as "config"; `dumps` writes that form as TOML. A JSON result
is itself a run file: `read` takes its "config".

This module speaks of fields only; `simulator.cli` maps them to and from --flags.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from simulator.catalog_io import parse_json, read_text, read_toml, toml_string
from simulator.errors import ConfigError, excerpt

TABLES = ("cluster", "plan", "workload", "sla", "whatif", "output")


@dataclass(frozen=True)
class Field:
    """One run-file key: its table, its type (int, float, str or bool; `multiple`: a list of them) and
    whether it names a file (`path`: "file"; "name-or-file" for a catalog name or a path; "lengths" for
    a length form whose `file:PATH` names one)."""

    name: str
    table: str
    kind: type
    multiple: bool = False
    path: str | None = None


FIELDS = {field.name: field for field in (
    # [cluster]
    Field("model", "cluster", str, path="name-or-file"),
    Field("gpu", "cluster", str),
    Field("compare", "cluster", str),
    Field("gpus", "cluster", int),
    Field("node_gpus", "cluster", int),
    Field("topology", "cluster", str, path="name-or-file"),
    Field("usd_per_gpu_hour", "cluster", float),
    Field("gpu_catalog", "cluster", str, multiple=True, path="file"),
    Field("model_catalog", "cluster", str, multiple=True, path="file"),
    Field("profile", "cluster", str, path="file"),
    Field("stack", "cluster", str),
    # [plan]
    Field("tp", "plan", int),
    Field("pp", "plan", int),
    Field("ep", "plan", int),
    Field("precision", "plan", str),
    Field("batching", "plan", str),
    Field("router", "plan", str),
    Field("prefill_gpus", "plan", int),
    Field("max_batch_size", "plan", int),
    Field("max_tokens_per_step", "plan", int),
    Field("block_size", "plan", int),
    Field("memory_utilization", "plan", float),
    # [workload]
    Field("scenario", "workload", str),
    Field("rate", "workload", float),
    Field("arrival", "workload", str),
    Field("cv", "workload", float),
    Field("duration_s", "workload", float),
    Field("requests", "workload", int),
    Field("queries", "workload", int),
    Field("offline", "workload", bool),
    Field("users", "workload", int),
    Field("think_time_s", "workload", float),
    Field("input_tokens", "workload", str, path="lengths"),
    Field("output_tokens", "workload", str, path="lengths"),
    Field("workload", "workload", str, path="file"),
    Field("trace", "workload", str, path="file"),
    Field("seed", "workload", int),
    Field("concurrency", "workload", str),
    Field("max_concurrency", "workload", int),
    Field("concurrency_ratio", "workload", float),
    Field("requests_per_user", "workload", int),
    Field("stream_metrics", "workload", bool),
    Field("max_time_s", "workload", float),
    # [sla]
    Field("sla_ttft_s", "sla", float),
    Field("sla_tpot_s", "sla", float),
    Field("target_tokens_per_s", "sla", float),
    Field("confidence", "sla", float),
    # [whatif]
    Field("scaleout_gbps", "whatif", float),
    Field("oversubscription", "whatif", float),
    Field("kv_transfer_gb_per_s", "whatif", float),
    Field("set_values", "whatif", str, multiple=True),
    Field("fail", "whatif", str, multiple=True),
    # [output]
    Field("out", "output", str, path="file"),
    Field("interval", "output", float),
    Field("emit", "output", str),
)}
assert all(f.table in TABLES for f in FIELDS.values())

# The ways one workload is given, each with the options that way alone takes: a way chosen on the command
# line replaces the run file's (flags beside --config win), instead of the two clashing.
WORKLOAD_WAYS = {"rate": ("arrival", "cv", "duration_s"), "offline": (), "users": ("think_time_s",), "trace": (),
                 "workload": ()}


def replaced_by_flags(given) -> set[str]:
    """The run-file fields a command line's options `given` replace: the other workload ways, when it
    chooses one."""
    if not set(given) & set(WORKLOAD_WAYS):
        return set()
    return {name for way, own in WORKLOAD_WAYS.items() if way not in given for name in (way, *own)}


_KIND_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


def version() -> str:
    """The installed infersim's version ('unknown' when run from a source tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version as package_version
    try:
        return package_version("infersim")
    except PackageNotFoundError:
        return "unknown"


# ---- reading --------------------------------------------------------------------------------------

def read(path: str | Path, command: str, fields) -> dict:
    """The options a run file (TOML, or a JSON result's "config") gives `command`, which takes `fields`:
    {field name: value}, checked and with relative paths made relative to the file's folder."""
    path = Path(path)
    document = _load(path)
    where = str(path)
    given = document.pop("command", None)
    if given is not None and given != command:
        raise ConfigError(f"{where}: command = {excerpt(given)} is a run file of another command; "
                          f"this is {command}")
    values = {}
    for table, content in document.items():
        if table not in TABLES:
            raise ConfigError(f"{where}: [{excerpt(table, 40)[1:-1]}]: unknown table; allowed: command, "
                              + ", ".join(f"[{t}]" for t in TABLES))
        if not isinstance(content, dict):
            raise ConfigError(f"{where}: {table} must be a table like [{table}]")
        for key, value in content.items():
            field = FIELDS.get(key)
            label = f"{where}: [{table}] {excerpt(key, 40)[1:-1]}"
            if field is None or key not in fields:
                allowed = [name for name, f in FIELDS.items() if f.table == table and name in fields]
                raise ConfigError(f"{label}: unknown key for {command}; [{table}] takes "
                                  + (", ".join(allowed) or "nothing here"))
            if field.table != table:
                raise ConfigError(f"{label}: belongs in [{field.table}]")
            values[key] = checked_value(label, key, value)
    return resolve_paths(values, path.parent)


def _load(path: Path) -> dict:
    if path.suffix.lower() == ".json":
        data = parse_json(str(path), read_text(path))
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]                 # size --compare: every element carries the same config
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: a JSON result with a \"config\" table (written by infersim `as_json` or "
                              f"`out` .json) or a TOML run file is needed")
        return dict(config)
    return dict(read_toml(path))


def checked_value(label: str, key: str, value):
    """`value` for the option `key`, checked for its field's type as a run file's is (a sweep point's
    values are the same options); a key no field has (a sweep's `plan`, `nodes`) passes unchanged, and so
    does a number for a length form (a fixed length, as the API takes it)."""
    field = FIELDS.get(key)
    if field is None or (field.path == "lengths" and isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return _checked(label, field, value)


def _checked(label: str, field: Field, value):
    if field.multiple:
        items = [value] if isinstance(value, field.kind) and not isinstance(value, (list, dict)) else value
        if not isinstance(items, list):
            raise ConfigError(f"{label}: expected {_KIND_WORDS[field.kind]} or a list of them, got {_show(value)}")
        return [_scalar(label, field.kind, item) for item in items]
    return _scalar(label, field.kind, value)


def _scalar(label: str, kind: type, value):
    ok = (isinstance(value, bool) if kind is bool
          else isinstance(value, int) and not isinstance(value, bool) if kind is int
          else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, str))
    if not ok:
        raise ConfigError(f"{label}: expected {_KIND_WORDS[kind]}, got {_show(value)}")
    return float(value) if kind is float else value


def _show(value) -> str:
    """A value as the file wrote it (numbers and booleans bare, text quoted and cut short)."""
    if isinstance(value, (bool, int, float)):
        return _toml(value)
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a table"
    return excerpt(value)


# ---- paths ----------------------------------------------------------------------------------------

def _is_path(field: Field, value: str) -> bool:
    if field.path == "file":
        return True
    if field.path == "name-or-file":
        return value.lower().endswith((".json", ".toml")) or os.sep in value or "/" in value
    return False


def _map_paths(values: dict, change) -> dict:
    out = dict(values)
    for name, value in values.items():
        field = FIELDS.get(name)
        if field is None or field.path is None or value is None:
            continue
        if field.path == "lengths":
            if isinstance(value, str) and value.startswith("file:"):
                out[name] = "file:" + change(value[5:])
        elif field.multiple:
            out[name] = [change(v) for v in value]
        elif _is_path(field, value):
            out[name] = change(value)
    return out


def resolve_paths(values: dict, base: str | Path) -> dict:
    """Paths made absolute, relative ones read from `base` (a run file's folder, or the working folder)."""
    base = Path(base)
    return _map_paths(values, lambda p: os.path.abspath(os.path.join(base, os.path.expanduser(p))))


def relative_paths(values: dict, folder: str | Path) -> dict:
    """Paths written relative to `folder` (where a run file goes), so the file travels with its data."""
    folder = os.path.abspath(folder)
    return _map_paths(values, lambda p: os.path.relpath(os.path.abspath(p), folder))


# ---- writing --------------------------------------------------------------------------------------

def tables(values: dict, command: str) -> dict:
    """Run-file form of a command's options: {"command": ..., table: {field: value}} in FIELDS order;
    unset options (None, empty lists) are left out, as a file that does not give them."""
    document = {"command": command}
    for name, field in FIELDS.items():
        value = values.get(name)
        if value is None or (field.multiple and not value):
            continue
        document.setdefault(field.table, {})[name] = list(value) if field.multiple else value
    order = ["command", *TABLES]
    return {key: document[key] for key in order if key in document}


def flatten(document: dict) -> dict:
    """{field: value} of a run-file form (the inverse of `tables`, without the command)."""
    return {key: value for table, content in document.items() if isinstance(content, dict)
            for key, value in content.items()}


def dumps(document: dict, header: str = "") -> str:
    """TOML text of a run-file form (scalars and lists of scalars in tables)."""
    lines = [f"# {line}" for line in header.splitlines()]
    if "command" in document:
        lines.append(f"command = {_toml(document['command'])}")
    for table in TABLES:
        if table in document:
            lines += ["", f"[{table}]"]
            lines += [f"{key} = {_toml(value)}" for key, value in document[table].items()]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return toml_string(str(value))
