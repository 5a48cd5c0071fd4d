"""Results the report page reads: each file's kind told from its content (simulate, mlperf, size or pareto
JSON, a sweep's or size's CSV), its predictions in one shape, and what it records of how it was run (the
resolved `config` and `infersim_version` where the result carries them)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from simulator.catalog_io import parse_json, read_text
from simulator.errors import ConfigError, excerpt
from simulator.output import csv_rows
from simulator.sweep import expand_extra

MAX_FIGURE = 1e15          # beyond any cluster's tokens/s or dollars
UNKNOWN = "not an infersim result (simulate, mlperf, size or pareto JSON, or a sweep or size CSV)"
# Top-level fields that say how a result was run (the rest are what it predicts)
RUN_FIELDS = ("model", "scenario", "gpu", "gpus", "nodes", "gpus_per_node", "input_tokens", "output_tokens",
              "target_tokens_per_s", "confidence", "ttft_limit_s", "tpot_limit_s", "usd_per_gpu_hour", "interval",
              "prediction_log_sigma", "power_counted", "run_status")


@dataclass(frozen=True)
class Prediction:
    """One predicted operating point. Throughput is output tokens/s of the whole cluster; `series` names
    the curve it belongs to on the scaling chart (pareto points go on the Pareto chart instead)."""
    source: str
    index: int
    kind: str
    label: str
    series: str
    gpu: str | None = None
    gpus: float | None = None
    tokens_per_s: float | None = None
    tokens_per_s_low: float | None = None
    tokens_per_s_high: float | None = None
    tokens_per_s_per_gpu: float | None = None
    interval: float | None = None
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    usd_per_million_tokens: float | None = None
    usd_per_million_tokens_low: float | None = None
    usd_per_million_tokens_high: float | None = None
    usd_per_hour: float | None = None
    usd_per_hour_low: float | None = None
    usd_per_hour_high: float | None = None
    tokens_per_s_per_provisioned_mw: float | None = None
    tokens_per_s_per_user: float | None = None
    total_tokens_per_s_per_gpu: float | None = None
    on_front: bool | None = None

    def per_gpu(self, value: float | None) -> float | None:
        return None if value is None or not self.gpus else value / self.gpus


@dataclass(frozen=True)
class ResultFile:
    """One input: its predictions, and per result in it (one, or one per GPU of `size --compare`) a
    column label, what the result records of its run, and its resolved configuration (None: not recorded)."""
    path: str
    kind: str
    predictions: tuple[Prediction, ...]
    columns: tuple[str, ...]
    recorded: tuple[dict, ...]
    configs: tuple[dict | None, ...]
    versions: tuple[str | None, ...]
    notes: tuple[str, ...] = ()


def read_result(path: str) -> ResultFile:
    """Read one results file, its kind told from its content; anything else is a one-line ConfigError."""
    text = read_text(path)
    if text.lstrip()[:1] in ("{", "["):
        try:
            document = parse_json(str(path), text)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; {UNKNOWN}") from None
        kind = json_kind(document)
        if kind is None:
            raise ConfigError(f"{path}: {UNKNOWN}")
        return READERS[kind](path, document)
    header, rows = csv_rows(str(path), text)
    rows = [expand_extra(row) for row in rows]
    if {"point_id", "status"} <= set(header):
        return read_sweep(path, header, rows)
    if {"target_tokens_per_s", "gpu", "gpus", "output_tokens_per_s"} <= set(header):
        return read_size(path, rows)
    raise ConfigError(f"{path}: {UNKNOWN}")


def json_kind(document) -> str | None:
    """'simulate', 'mlperf', 'size' or 'pareto' from the fields a document holds; None for anything else."""
    if isinstance(document, list):
        sized = document and all(isinstance(d, dict) and "target_tokens_per_s" in d for d in document)
        return "size" if sized else None
    if not isinstance(document, dict):
        return None
    if document.get("kind") == "pareto":
        return "pareto"
    if "target_tokens_per_s" in document and "output_tokens_per_s" in document:
        return "size"
    if {"scenario", "output_tokens_per_s", "valid"} <= set(document):
        return "mlperf"
    if {"requests_total", "output_tokens_per_s"} <= set(document):
        return "simulate"
    return None


def number(value) -> float | None:
    """A finite number from a JSON value or CSV cell; None for anything else (empty, text, NaN, booleans)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def flatten(value, prefix: str = "") -> dict:
    """Nested tables as dotted keys; lists of plain values joined with ', ', other lists as JSON text."""
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        plain = all(not isinstance(v, (dict, list)) for v in value)
        return {prefix: ", ".join(map(str, value)) if plain else json.dumps(value, sort_keys=True)}
    return {prefix: value}


def gpus_text(gpus: float | None) -> str:
    return "?" if gpus is None else f"{gpus:g}"


def read_simulate(path: str, document: dict) -> ResultFile:
    plan = document.get("plan") if isinstance(document.get("plan"), dict) else {}
    gpu, gpus = _text(plan.get("gpu")), number(plan.get("gpus"))
    parallel = "-".join(f"{k}{plan[k]}" for k in ("tp", "pp", "ep") if number(plan.get(k)) not in (None, 1.0))
    label = f"{gpu} x{gpus_text(gpus)}" + (f" {parallel}" if parallel else "")
    series = f"{gpu}, {_text(plan.get('model'))}, simulate"
    _check_range(path, "plan.", plan)
    prediction = _prediction(path, 0, "simulate", label, series, document, gpu, gpus)
    # a run's input_tokens/output_tokens are the tokens it processed, not lengths it was given
    run = {k: v for k, v in _recorded(document).items() if k not in ("input_tokens", "output_tokens")}
    recorded = run | flatten({"plan": plan}) | flatten({"workload": document.get("workload", {})})
    return _single(path, "simulate", document, prediction, recorded)


def read_mlperf(path: str, document: dict) -> ResultFile:
    gpu, gpus, scenario = _text(document.get("gpu")), number(document.get("gpus")), _text(document.get("scenario"))
    series = f"{gpu}, {_text(document.get('model'))}, mlperf {scenario}"
    label = f"{gpu} x{gpus_text(gpus)} mlperf {scenario}"
    prediction = _prediction(path, 0, "mlperf", label, series, document, gpu, gpus)
    recorded = _recorded(document) | flatten({"plan": document.get("plan", {})})
    return _single(path, "mlperf", document, prediction, recorded)


def read_size(path: str, document) -> ResultFile:
    """A `size` JSON result, a `size --compare` list, or `size --out x.csv` rows."""
    results = document if isinstance(document, list) else [document]
    predictions, columns, recorded = [], [], []
    for index, result in enumerate(results):
        gpu, gpus, scenario = _text(result.get("gpu")), number(result.get("gpus")), _text(result.get("scenario"))
        series = f"{gpu}, {_text(result.get('model'))}, size {scenario}"
        where = f"[{index}]." if isinstance(document, list) else ""
        predictions.append(_prediction(path, index, "size", f"{gpu} x{gpus_text(gpus)} size {scenario}", series,
                                       result, gpu, gpus, where))
        columns.append(gpu)
        plan = result.get("plan") if isinstance(result.get("plan"), dict) else {
            k: result[k] for k in ("tp", "pp", "ep", "max_batch_size", "precision") if k in result}
        recorded.append(_recorded(result) | flatten({"plan": plan}))
    return ResultFile(path, "size", tuple(predictions), tuple(columns), tuple(recorded),
                      tuple(_config(r) for r in results), tuple(_version(r) for r in results))


def read_pareto(path: str, document: dict) -> ResultFile:
    points = document.get("points")
    if not isinstance(points, list) or not points:
        raise ConfigError(f"{path}: points must be a non-empty list of pareto points")
    predictions = []
    for index, point in enumerate(points):
        if not isinstance(point, dict):
            raise ConfigError(f"{path}: points[{index}] must be an object, got {type(point).__name__}")
        gpu, gpus = _text(point.get("gpu")), number(point.get("gpus"))
        label = (f"{gpu} x{gpus_text(gpus)} {_text(point.get('plan_label'))} "
                 f"at concurrency {_text(point.get('concurrency'))}")
        fields = dict(point, interval=point.get("interval", document.get("interval")))
        prediction = _prediction(path, index, "pareto", label, gpu, fields, gpu, gpus, f"points[{index}].")
        predictions.append(replace(prediction, on_front=point.get("on_front") is True))
    front = sum(1 for p in predictions if p.on_front)
    recorded = _recorded(document) | {"points": len(points), "points_on_front": front}
    return ResultFile(path, "pareto", tuple(predictions), ("result",), (recorded,), (_config(document),),
                      (_version(document),))


def read_sweep(path: str, header: list[str], rows: list[dict]) -> ResultFile:
    """A sweep's results CSV: the option columns are those before `point_id`; the ones that vary between
    points name each point and its curve (less nodes/gpus, the scaling chart's x)."""
    if not rows:
        raise ConfigError(f"{path}: a sweep's results with no rows (the header alone)")
    options = header[:header.index("point_id")]
    ok = [row for row in rows if row.get("status") == "ok"]
    varying = [c for c in options if len({row.get(c, "") for row in ok}) > 1]
    curve_keys = [c for c in varying if c not in ("nodes", "gpus")]
    name = Path(path).name
    predictions = []
    for index, row in enumerate(ok):
        gpus = number(row.get("gpus"))
        label = _values(row, varying) or f"{_text(row.get('gpu'))} x{gpus_text(gpus)}"
        series = _values(row, curve_keys) or _text(row.get("gpu"))
        predictions.append(_prediction(path, index, "sweep", label, f"{series} ({name})", row,
                                       _text(row.get("gpu")), gpus, f"point {row.get('point_id')}: "))
    base = {c: ok[0].get(c, "") for c in options if c not in varying} if ok else {}
    grid = {c: ", ".join(dict.fromkeys(row.get(c, "") for row in ok)) for c in varying}
    recorded = flatten({"base": base, "grid": grid}) | {"points_ok": len(ok), "points_failed": len(rows) - len(ok)}
    notes = tuple(f"point {row.get('point_id')} failed: {row.get('error', '')}" for row in rows
                  if row.get("status") != "ok")
    return ResultFile(path, "sweep", tuple(predictions), ("sweep",), (recorded,), (None,), (None,), notes)


def _values(row: dict, columns: list[str]) -> str:
    """'b200, nodes=2': a sweep point by the columns that vary (the GPU by its name alone, first)."""
    ordered = sorted(columns, key=lambda c: c != "gpu")
    return ", ".join(str(row.get(c)) if c == "gpu" else f"{c}={row.get(c)}" for c in ordered)


READERS = {"simulate": read_simulate, "mlperf": read_mlperf, "size": read_size, "pareto": read_pareto}


def _prediction(path, index, kind, label, series, fields: dict, gpu: str, gpus: float | None,
                where: str = "") -> Prediction:
    _check_range(path, where, fields)
    values = {name: number(fields.get(OUTPUT_NAMES.get(name, name))) for name in NUMERIC_FIELDS}
    if values["tokens_per_s_per_gpu"] is None and values["tokens_per_s"] is not None and gpus:
        values["tokens_per_s_per_gpu"] = values["tokens_per_s"] / gpus
    return Prediction(source=path, index=index, kind=kind, label=label, series=series, gpu=gpu, gpus=gpus,
                      **values)


# a Prediction's throughput fields and the names results give them (every command says output_tokens_per_s...)
OUTPUT_NAMES = {name: f"output_{name}" for name in ("tokens_per_s", "tokens_per_s_low", "tokens_per_s_high",
                                                    "tokens_per_s_per_gpu", "tokens_per_s_per_provisioned_mw",
                                                    "tokens_per_s_per_user")}
NUMERIC_FIELDS = ("tokens_per_s", "tokens_per_s_low", "tokens_per_s_high", "tokens_per_s_per_gpu", "interval",
                  "ttft_p99_s", "tpot_p99_s", "usd_per_million_tokens", "usd_per_million_tokens_low",
                  "usd_per_million_tokens_high", "usd_per_hour", "usd_per_hour_low", "usd_per_hour_high",
                  "tokens_per_s_per_provisioned_mw", "tokens_per_s_per_user", "total_tokens_per_s_per_gpu")
CHECKED_FIELDS = ("gpus", *(OUTPUT_NAMES.get(name, name) for name in NUMERIC_FIELDS))


def _check_range(path: str, where: str, fields: dict) -> None:
    """Refuse figures no run gives (1e308 tokens/s, 0.5 GPUs): they would only make a chart of nonsense."""
    for name in CHECKED_FIELDS:
        raw = fields.get(name)
        if raw is None or str(raw).strip().lower() in ("", "nan"):     # not measured, or no rate (a failed run)
            continue
        value = number(raw)
        if value is None:
            raise ConfigError(f"{path}: {where}{name} {excerpt(str(raw))} is not a finite number")
        low, high = (1, 1e7) if name == "gpus" else (0, MAX_FIGURE)     # no figure here is negative
        if not low <= value <= high:
            raise ConfigError(f"{path}: {where}{name} {value!r} is out of range [{low:g}, {high:g}]")


def _single(path, kind, document, prediction, recorded) -> ResultFile:
    return ResultFile(path, kind, (prediction,), ("result",), (recorded,), (_config(document),),
                      (_version(document),))


def _recorded(document: dict) -> dict:
    return {key: document[key] for key in RUN_FIELDS if key in document and not isinstance(document[key], (dict, list))}


def _config(document: dict) -> dict | None:
    config = document.get("config")
    if config is None:
        return None
    return flatten(config) if isinstance(config, dict) else {"config": config}


def _version(document: dict) -> str | None:
    version = document.get("infersim_version")
    return None if version is None else _text(version)


def _text(value) -> str:
    return "?" if value is None else str(value)


