"""Import published MLPerf Inference results (MLCommons' own files) as calibration rows.

Reads either kind of file MLCommons publishes, or a folder holding them:
- submission trees: `[ROUND/]DIVISION/SUBMITTER/results/SYSTEM/BENCHMARK/SCENARIO/performance/run_1/
  mlperf_log_summary.txt` (LoadGen's summary: scenario, tokens/s, samples/s, VALID, latency percentiles
  and limits in ns) with `DIVISION/SUBMITTER/systems/SYSTEM.json` (accelerator name, accelerators per
  node, nodes, framework, hardware notes);
- `summary_results.json` (one object per result: Accelerator, "a#", Nodes, Model, UsedModel, Scenario,
  Performance_Result, weight_data_types, Software, Accuracy with TOKENS_PER_SAMPLE, Category).
A result found in both is one row (the log's latencies, the summary's data types and tokens/sample).

Mapping: accelerator name -> catalog GPU through the catalog's `aliases`; accelerators per node x nodes
-> GPUs; weight data type -> precision (mxfp4/nvfp4 -> fp4; unset -> what the model's name says, else what that
GPU's submitters run);
benchmark -> model and dataset (an open-division `UsedModel` that is another catalog model keeps the
benchmark's dataset); framework -> stack. Names that do not map are counted per name and reported in one
line (`strict` makes them an error), never dropped silently. So is a result whose files lack a figure its
row is computed from, or give it as 0 (`log_problem`: validity, tokens/s, samples/s, and how long the run
lasted; TOKENS_PER_SAMPLE when given): the reason names the file and the line. Latency percentiles and
limits are copied when a summary gives them.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from simulator.catalog_io import read_json, read_text
from simulator.errors import ConfigError, excerpt
from simulator.hardware import alias_key, gpu_by_alias, load_gpus
from simulator.measurements import Measurement, measurement_from_record

BENCHMARK_MODELS = {"llama2-70b-99": "llama2-70b", "llama2-70b-99.9": "llama2-70b", "llama2-70b": "llama2-70b",
                    "mixtral-8x7b": "mixtral-8x7b", "llama3.1-405b": "llama3.1-405b", "llama3_1-405b": "llama3.1-405b",
                    "llama3.1-8b": "llama3.1-8b", "llama3_1-8b": "llama3.1-8b", "llama3.1-8b-edge": "llama3.1-8b",
                    "deepseek-r1": "deepseek-r1"}
# Open-division submissions may serve another model on a benchmark's dataset ("UsedModel").
USED_MODELS = (("llama3_1-70b", "llama3.1-70b"), ("llama3.1-70b", "llama3.1-70b"), ("llama2-70b", "llama2-70b"),
               ("llama3_1-405b", "llama3.1-405b"), ("llama3.1-405b", "llama3.1-405b"))
MODIFIED_MODEL = re.compile(r"prun|finetun|sparse|distill|depth", re.IGNORECASE)
SCENARIOS = {"offline": "offline", "server": "server", "interactive": "interactive"}
PRECISIONS = {"fp4": "fp4", "mxfp4": "fp4", "nvfp4": "fp4", "fp6": "fp6", "mxfp6": "fp6", "fp8": "fp8",
              "bf16": "bf16", "fp16": "bf16"}
STACKS = (("tensorrt", "tensorrt-llm"), ("trt", "tensorrt-llm"), ("llmboost", "llmboost"), ("sglang", "sglang"),
          ("vllm", "vllm"), ("aiter", "pytorch-aiter"), ("pytorch", "pytorch"))
NS = 1e-9
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")     # as LoadGen writes them: 22020.9, 2.2e+04
LOG_SCENARIOS = {"interactive": ("interactive", "server")}      # what a log in a scenario's folder may say


@dataclass
class ImportReport:
    """What an import found: the rows, and per reason a count of what it could not use."""

    rows: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def summary_line(self) -> str:
        if not self.skipped:
            return f"{len(self.rows)} rows imported"
        parts = "; ".join(f"{reason} x{count}" for reason, count in sorted(self.skipped.items(), key=lambda i: -i[1]))
        return f"{len(self.rows)} rows imported; not imported: {parts}"


VERSIONS = {"tensorrt-llm": r"tensorrt\s*(\d+\.\d+)", "vllm": r"vllm[\s-]*v?(\d+\.\d+)",
            "llmboost": r"vllm[\s-]*v?(\d+\.\d+)", "sglang": r"sglang\s*v?(\d+\.\d+)",
            "pytorch-aiter": r"aiter\s*(\d+\.\d+)"}


def stack_version(stack: str, framework: str) -> str:
    """The stack's major.minor release as the framework string names it ('TensorRT 10.2.0' -> '10.2'),
    or '' when it does not say."""
    match = re.search(VERSIONS.get(stack, r"(\d+\.\d+)"), framework or "", re.IGNORECASE)
    return match.group(1) if match else ""


def stack_of(framework: str) -> str:
    """The serving stack a system's framework string names: a known one, else its first word when that is
    a name ('MAX 25.4' -> 'max'); 'unknown' when it names none ('', '8', '-')."""
    text = (framework or "").lower()
    for needle, stack in STACKS:
        if needle in text:
            return stack
    word = re.split(r"[\s,]+", text.strip())[0] if text.strip() else ""
    return word if re.match(r"[a-z]", word) else "unknown"


def _number(where: str, label: str, text: str) -> float | None:
    """The number on the summary line that starts with `label` (a regex), None when no line does;
    a line whose value is not a plain number is an error naming it (LoadGen writes 22020.9, 2.2e+04)."""
    matches = list(re.finditer(rf"^(?:{label})[ \t]*:[ \t]*(\S*)", text, re.IGNORECASE | re.MULTILINE))
    if not matches:
        return None
    values = set()
    for match in matches:
        value = float(match.group(1)) if PLAIN_NUMBER.fullmatch(match.group(1)) else float("nan")
        if not (value >= 0 and value != float("inf")):
            raise ConfigError(f"{where}: the line {excerpt(match.group(0).strip(), 60)} needs a number >= 0")
        values.add(value)
    if len(values) > 1:
        raise ConfigError(f"{where}: {len(matches)} lines give {excerpt(matches[0].group(0).split(':')[0], 40)}, "
                          f"with different values; which one was scored?")
    return values.pop()


# The figures of a LoadGen summary: key -> (the line's name, as reasons quote it; its label, a regex; unit)
LOG_FIGURES = {"tokens_per_s": ("Tokens per second", r"Completed tokens per second|Tokens per second", ""),
               "samples_per_s": ("Samples per second", r"Completed samples per second|Samples per second", ""),
               "scheduled_samples_per_s": ("Scheduled samples per second", r"Scheduled samples per second", ""),
               "min_query_count": ("min_query_count", r"min_query_count", ""),
               "ttft_p99_s": ("99.00 percentile first token latency (ns)",
                              r"99\.00 percentile first token latency \(ns\)", "ns"),
               "tpot_p99_s": ("99.00 percentile time to output token (ns)",
                              r"99\.00 percentile time to output token \(ns\)", "ns"),
               "ttft_limit_s": ("ttft_latency (ns)", r"ttft_latency \(ns\)", "ns"),
               "tpot_limit_s": ("tpot_latency (ns)", r"tpot_latency \(ns\)", "ns"),
               "max_latency_s": ("Max latency (ns)", r"Max latency \(ns\)", "ns"),
               "min_duration_s": ("min_duration (ms)", r"min_duration \(ms\)", "ms")}
# What a row of each kind of run is computed from: its throughput, output tokens per sample (tokens/s over
# samples/s), and how long it ran (an Offline run: its longest latency; a Server run: its schedule).
REQUIRED_FIGURES = {"offline": ("tokens_per_s", "samples_per_s", "max_latency_s"),
                    "server": ("tokens_per_s", "samples_per_s", "scheduled_samples_per_s", "min_duration_s")}
# Copied to a Server/Interactive row when the summary gives them (a summary without them still makes a row)
SERVER_LATENCIES = ("ttft_p99_s", "tpot_p99_s", "ttft_limit_s", "tpot_limit_s")


def _in_seconds(value: float | None, unit: str) -> float | None:
    if value is None or not unit:
        return value
    return round(value * NS, 9) if unit == "ns" else value / 1000


def parse_log_summary(text: str, where: str = "mlperf_log_summary.txt") -> dict:
    """The figures of one `mlperf_log_summary.txt` (LOG_FIGURES, None where it has no such line): scenario,
    tokens/s, samples/s, validity (None unless 'Result is' says VALID or INVALID; `result` is what it
    says), p99 TTFT and TPOT and their limits (seconds), the longest latency (an Offline run's duration),
    and what sets how long a Server run issues queries (its scheduled rate, min_duration and min_query_count)."""
    scenario = re.search(r"^Scenario[ \t]*:[ \t]*(\w+)", text, re.MULTILINE)     # not across a line break
    result = re.search(r"^Result is[ \t]*:[ \t]*(\S+)", text, re.MULTILINE)
    out = {"scenario": scenario.group(1) if scenario else None, "result": result.group(1) if result else None,
           "valid": {"VALID": True, "INVALID": False}.get(result.group(1).upper()) if result else None}
    for key, (_, label, unit) in LOG_FIGURES.items():
        out[key] = _in_seconds(_number(where, label, text), unit)
    return out


def log_problem(figures: dict, kind: str) -> str | None:
    """Why a summary's figures cannot make a row of scenario `kind`, naming the line; None when they can.
    The figures a row is computed from (REQUIRED_FIGURES, and a Server run's min_query_count) must be there
    and not 0; a latency a Server summary gives may not be 0 (no run answers in 0 ns)."""
    if figures["valid"] is None:
        return (f"'Result is' is {excerpt(figures['result'], 20)}, not VALID or INVALID" if figures["result"]
                else "'Result is' missing (validity unknown)")
    timed = "offline" if kind == "offline" else "server"
    for key in REQUIRED_FIGURES[timed]:
        if not figures.get(key):
            return f"{LOG_FIGURES[key][0]!r} missing or 0"
    if timed == "server" and figures.get("min_query_count") is None:
        return "'min_query_count' missing"
    for key in SERVER_LATENCIES if timed == "server" else ():
        if figures.get(key) == 0:
            return f"{LOG_FIGURES[key][0]!r} is 0"
    return None


def issuing_duration_s(figures: dict) -> float | None:
    """Seconds over which a Server run issued its queries: LoadGen schedules them until both its
    min_duration and its min_query_count are reached (at the scheduled rate); None when the summary
    does not say."""
    duration, count, rate = (figures.get(k) for k in ("min_duration_s", "min_query_count", "scheduled_samples_per_s"))
    if not duration or not rate:
        return None
    return round(max(duration, (count or 0) / rate), 1)


class _Mapper:
    """Catalog lookups shared by every result of one import."""

    def __init__(self, gpu_catalog=()):
        self.gpus = load_gpus(gpu_catalog)
        self.aliases = gpu_by_alias(self.gpus)

    def gpu(self, accelerator: str) -> str | None:
        return self.aliases.get(alias_key(accelerator))

    def default_precision(self, gpu: str) -> str:
        return "fp4" if "fp4" in self.gpus[gpu].peak_tflops else "fp8"


def _precision_named(name: str | None) -> str | None:
    """A data type an open-division model name spells out ('llama3_1-70b-fp8_dyn' -> fp8)."""
    for part in re.split(r"[-_]", str(name or "").lower()):
        if part in PRECISIONS:
            return PRECISIONS[part]
    return None


def _round_of(path: Path) -> str | None:
    """The round a path is filed under: its last folder named like one ('v5.1'), None when none is."""
    rounds = [part for part in path.parts if re.fullmatch(r"v\d+\.\d+", part)]
    return rounds[-1] if rounds else None


def _results_folder(parts: tuple) -> int | None:
    """Where in a log's path the submission's `results` folder is: the one followed by
    SYSTEM/BENCHMARK/SCENARIO/performance/run_1, else the last one (a tree may sit under a folder of
    that name); None when there is none."""
    found = [at for at, part in enumerate(parts) if part == "results"]
    laid_out = [at for at in found if parts[at + 4:at + 6] == ("performance", "run_1")]
    return (laid_out or found or [None])[-1]


def _model_for(benchmark: str, used_model: str | None) -> tuple[str | None, str | None, str]:
    """(model served, benchmark dataset, reason when unmapped) for a benchmark and an open division's
    UsedModel (another model run on the benchmark's dataset)."""
    dataset = BENCHMARK_MODELS.get(benchmark.lower())
    if dataset is None:
        return None, None, f"unknown benchmark {benchmark!r}"
    used = (used_model or benchmark).lower()
    if BENCHMARK_MODELS.get(used) == dataset:
        return dataset, dataset, ""
    if MODIFIED_MODEL.search(used):
        return None, None, f"modified model {used_model!r} (open division)"
    for prefix, model in USED_MODELS:
        if used.startswith(prefix):
            return model, dataset, ""
    return None, None, f"unknown model {used_model!r}"


def _record(mapper: _Mapper, report: ImportReport, *, round_: str, division: str, submitter: str, system: str,
            benchmark: str, scenario: str, accelerator: str, per_node, nodes, framework: str, source: str,
            figures: dict, weight_type: str | None = None, tokens_per_sample: float | None = None,
            used_model: str | None = None, hw_notes: str = "", system_name: str = "") -> None:
    kind = SCENARIOS.get(str(scenario).lower())
    if kind is None:
        report.skipped[f"unknown scenario {scenario!r}"] += 1
        return
    model, dataset, reason = _model_for(benchmark, used_model)
    if model is None:
        report.skipped[reason] += 1
        return
    gpu = mapper.gpu(accelerator or "")
    if gpu is None:
        report.skipped[f"unknown accelerator {accelerator or 'N/A'!r}"] += 1
        return
    if division == "open" and MODIFIED_MODEL.search(system):
        report.skipped["modified model (open division system named so)"] += 1
        return
    if re.search(r"maxq", f"{system} {system_name}", re.IGNORECASE):
        report.skipped["power-capped MaxQ system (its power limit is not published)"] += 1
        return
    counts = _whole(per_node), _whole(nodes)
    if None in counts:
        report.skipped[f"accelerators per node {per_node!r} x nodes {nodes!r}: not whole numbers >= 1"] += 1
        return
    gpus = counts[0] * counts[1]
    nodes = counts[1]
    named_type = str(weight_type or "").lower()
    if named_type not in PRECISIONS and named_type not in ("", "unset"):
        report.skipped[f"unknown weight data type {weight_type!r} (known: {', '.join(PRECISIONS)})"] += 1
        return
    tokens = figures.get("tokens_per_s")
    if not tokens:
        report.skipped["no tokens/s in the result"] += 1
        return
    precision = PRECISIONS.get(named_type) or _precision_named(used_model) \
        or mapper.default_precision(gpu)
    samples = figures.get("samples_per_s")
    per_sample = tokens_per_sample or (tokens / samples if samples else None)
    power = re.search(r"TGP\s*(\d+)\s*W", hw_notes or "", re.IGNORECASE)
    record = {"model": model, "gpu": gpu, "gpus": gpus, "nodes": int(nodes), "scenario": kind,
              "output_tokens_per_s": tokens, "source": source, "precision": precision,
              "stack": stack_of(framework), "stack_version": stack_version(stack_of(framework), framework),
              "round": round_, "division": division, "submitter": submitter,
              "system": system, "benchmark": dataset, "valid": figures.get("valid", True),
              "output_tokens": round(per_sample, 1) if per_sample else None,
              "gpu_power_w": int(power.group(1)) if power else None}
    if kind == "offline" and samples and figures.get("max_latency_s"):
        # every sample of an Offline run is issued at t = 0, so the run lasts its longest latency; the
        # count it issued is not samples_per_query, which LoadGen rounds up to whole datasets
        queries = samples * figures["max_latency_s"]
        record["queries"] = round(queries) if math.isfinite(queries) else queries   # inf: refused by its range
    if kind != "offline":
        for key in ("ttft_p99_s", "tpot_p99_s", "ttft_limit_s", "tpot_limit_s"):
            record[key] = figures.get(key)
        record["duration_s"] = issuing_duration_s(figures)
    report.rows.append(measurement_from_record(source, record))


def _whole(value) -> int | None:
    """A count as MLCommons' files write it (8, "8", 8.0), None unless a whole number >= 1."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number >= 1 and number == int(number) else None


def _tree_results(root: Path) -> list[Path]:
    return sorted(log for log in root.rglob("mlperf_log_summary.txt") if log.is_file())   # not a FIFO or a loop


def _from_log(mapper: _Mapper, report: ImportReport, log: Path, base: Path, summary_index: dict) -> tuple | None:
    """One submission-tree result; returns its identity key (for merging with summary_results.json)."""
    parts = log.parts
    at = _results_folder(parts)
    if at is None:
        report.skipped["log outside a results/ folder"] += 1
        return None
    if len(parts) < at + 5 or at < 2:       # DIVISION/SUBMITTER/results/SYSTEM/BENCHMARK/SCENARIO/.../log
        report.skipped["log outside a results/SYSTEM/BENCHMARK/SCENARIO tree"] += 1
        return None
    division, submitter = parts[at - 2], parts[at - 1]
    system, benchmark, scenario = parts[at + 1], parts[at + 2], parts[at + 3]
    round_ = _round_of(Path(*parts[:at - 1])) or "unknown"      # not a SYSTEM named like a round
    key = (round_, division, submitter, system, benchmark, scenario.lower())
    system_file = Path(*parts[:at]) / "systems" / f"{system}.json"
    if not system_file.is_file():
        report.skipped["missing systems/SYSTEM.json"] += 1
        return key
    description = read_json(system_file)
    if not isinstance(description, dict):
        raise ConfigError(f"{system_file}: expected a JSON object")
    for name in ("accelerator_model_name", "framework", "hw_notes", "system_name"):
        if not isinstance(description.get(name, ""), str):
            raise ConfigError(f"{system_file}: {name} must be a string, not {description[name]!r}")
    figures = parse_log_summary(read_text(log), str(log))
    # LoadGen runs Interactive as its Server scenario with tighter limits: its log says Server
    if figures["scenario"] and figures["scenario"].lower() not in LOG_SCENARIOS.get(scenario.lower(), (scenario.lower(),)):
        report.skipped[f"log's scenario {figures['scenario']!r} differs from its folder's ({scenario!r})"] += 1
        return key
    kind = SCENARIOS.get(scenario.lower())        # an unknown one is counted by _record
    problem = log_problem(figures, kind) if kind else None
    if problem:
        report.skipped[f"{log.name}: {problem}"] += 1
        return key
    extra = summary_index.get(key, {})
    if extra.get("problem"):
        report.skipped[extra["problem"]] += 1
        return key
    benchmark = extra.get("benchmark") or benchmark
    try:
        source = str(log.relative_to(base))
    except ValueError:
        source = str(log)
    _record(mapper, report, round_=round_, division=division, submitter=submitter, system=system,
            benchmark=benchmark, scenario=scenario,
            accelerator=description.get("accelerator_model_name", ""),
            per_node=description.get("accelerators_per_node"), nodes=description.get("number_of_nodes"),
            framework=description.get("framework", ""), source=source, figures=figures,
            weight_type=extra.get("weight_data_types"), tokens_per_sample=extra.get("tokens_per_sample"),
            used_model=extra.get("used_model"), hw_notes=description.get("hw_notes", ""),
            system_name=description.get("system_name", ""))
    return key


def _summary_entries(path: Path) -> list[dict]:
    data = read_json(path)
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of results (MLCommons summary_results.json)")
    bad = [entry for entry in data if not isinstance(entry, dict)]
    if bad:
        raise ConfigError(f"{path}: every entry must be a JSON object (one result); found {bad[0]!r}")
    return data


def _text(where: str, entry: dict, key: str) -> str | None:
    """A text field of a summary entry, None when absent; another JSON type is an error naming it."""
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not the {type(value).__name__} "
                          f"{excerpt(json.dumps(value), 40)}")
    return value


def _summary_key(round_: str, entry: dict) -> tuple | None:
    parts = str(entry.get("Location", "")).split("/")
    if len(parts) < 6:
        return None
    return (round_, parts[0], parts[1], parts[3], parts[4], parts[5].lower())


def _tokens_per_sample(entry: dict, where: str) -> float | None:
    return _number(f"{where} (result {entry.get('ID', '?')}, Accuracy)", r".*TOKENS_PER_SAMPLE",
                   str(entry.get("Accuracy", "")))


def import_mlperf(paths, *, strict: bool = False, gpu_catalog=()) -> ImportReport:
    """Rows from MLPerf result trees and/or summary_results.json files (see the module docstring)."""
    mapper, report = _Mapper(gpu_catalog), ImportReport()
    logs, summaries = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            logs += [(log, path) for log in _tree_results(path)]
            summaries += [(s, path) for s in sorted(path.rglob("summary_results.json")) if s.is_file()]
        elif not path.exists():
            raise ConfigError(f"{path}: file not found")
        elif not path.is_file():
            raise ConfigError(f"{path}: not a regular file")
        elif path.name == "mlperf_log_summary.txt":
            logs.append((path, path.parent))
        elif path.suffix == ".json":
            summaries.append((path, path.parent))
        else:
            raise ConfigError(f"{path}: not an mlperf_log_summary.txt, a summary_results.json or a folder of them")
    logs, summaries = _first_of_each(logs), _first_of_each(summaries)     # a folder or file given twice
    index, entries, given = {}, [], set()
    for summary, base in summaries:
        round_ = _round_of(summary.resolve()) or "unknown"
        for entry in _summary_entries(summary):
            whole = json.dumps(entry, sort_keys=True)      # entries are compared whole: IDs repeat
            if whole in given:
                report.skipped[f"{summary.name}: duplicate entry (the same result given twice)"] += 1
                continue
            given.add(whole)
            key = _summary_key(round_, entry)
            where = f"{summary}: result {excerpt(str(entry.get('ID', '?')), 40)}"
            info = {"weight_data_types": _text(where, entry, "weight_data_types"),
                    "tokens_per_sample": _tokens_per_sample(entry, str(summary)),
                    "used_model": _text(where, entry, "UsedModel"), "benchmark": _text(where, entry, "Model")}
            info["problem"] = f"{summary.name}: 'TOKENS_PER_SAMPLE' is 0" if info["tokens_per_sample"] == 0 else None
            if key is not None:
                index[key] = info
            entries.append((round_, summary, base, key, entry, info))
    seen = set()
    for log, base in logs:
        key = _from_log(mapper, report, log, base, index)
        seen.add(key)
    for round_, summary, base, key, entry, info in entries:
        if key in seen:
            continue        # the tree's log already gave this result (or counted why not)
        if info["problem"]:
            report.skipped[info["problem"]] += 1
            continue
        try:
            source = f"{summary.relative_to(base)}#{entry.get('ID', '?')}"
        except ValueError:
            source = f"{summary}#{entry.get('ID', '?')}"
        location = key or (None, entry.get("Category"), entry.get("Submitter"), entry.get("Platform"), "", "")
        figures = {"tokens_per_s": entry.get("Performance_Result")
                   if entry.get("Performance_Units") in (None, "Tokens/s") else None, "valid": True}
        _record(mapper, report, round_=round_, division=str(entry.get("Category", location[1])),
                submitter=str(entry.get("Submitter", location[2])), system=str(entry.get("Platform", location[3])),
                benchmark=str(entry.get("Model", "")), scenario=str(entry.get("Scenario", "")),
                accelerator=str(entry.get("Accelerator", "")), per_node=entry.get("a#"), nodes=entry.get("Nodes"),
                framework=str(entry.get("Software", "")), source=source, figures=figures,
                weight_type=info["weight_data_types"], tokens_per_sample=info["tokens_per_sample"],
                used_model=info["used_model"], system_name=str(entry.get("System", "")))
    if not logs and not entries:
        raise ConfigError(f"{', '.join(map(str, paths))}: no MLPerf results found (no mlperf_log_summary.txt "
                          "under a results/ folder, and no summary_results.json entries)")
    report.rows = _drop_resubmissions(report)
    if strict and report.skipped:
        raise ConfigError(f"`strict`: {report.summary_line()}")
    return report


def _first_of_each(found: list) -> list:
    """(file, base) pairs with each file once (by its resolved path), in the order first found."""
    kept = {}
    for path, base in found:
        kept.setdefault(path.resolve(), (path, base))
    return list(kept.values())


def _drop_resubmissions(report: ImportReport) -> list:
    """One row per run: a Llama 2 70B result filed under both accuracy targets (-99 and -99.9) with the
    identical score is the same run submitted twice."""
    kept, seen = [], set()
    for row in report.rows:
        key = (row.round, row.division, row.submitter, row.system, row.scenario, row.model, row.output_tokens_per_s)
        if key in seen:
            report.skipped["the same run filed under a second accuracy target"] += 1
            continue
        seen.add(key)
        kept.append(row)
    return kept
