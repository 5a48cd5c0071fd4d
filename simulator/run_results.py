"""Result JSON files of serving benchmarks as calibration rows (`measurements.Measurement`): vLLM's
`benchmark_serving --save-result` (the caller names the hardware) and InferenceMAX's per-run results
(the file names it)."""
from __future__ import annotations

import math
import re
from pathlib import Path

from simulator.catalog_io import read_json
from simulator.errors import ConfigError, excerpt
from simulator.hardware import get_gpu
from simulator.measurements import Measurement, NameCheck, measurement_from_record
from simulator.models import get_model


def _read_json(path) -> dict:
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _field(path, data: dict, *names, required=True, what: str = "a finite non-negative number"):
    for name in names:
        if name in data and data[name] is not None:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{path}: {name} {value!r} must be {what}")
            return value
    if required:
        raise ConfigError(f"{path}: missing {' or '.join(names)}")
    return None


def _whole(path, data: dict, name: str, required: bool = True) -> int | None:
    """A count from a result JSON: a whole number (tp 1.7 is refused, not truncated to 1)."""
    value = _field(path, data, name, required=required, what="a whole number >= 1")
    if value is None:
        return None
    if value != int(value) or value < 1:
        raise ConfigError(f"{path}: {name} {value!r} must be a whole number >= 1")
    return int(value)


# A parameter count in a model name ("70B", "8x7B", "120b"; not the active count of "A3B")
SIZE_IN_NAME = re.compile(r"(?<![a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)b(?![a-z0-9])")
# How far a name's rounded size may sit from the model's own count (Mixtral-8x7B names 56B for 46.7B)
SIZE_IN_NAME_TOLERANCE = 1.35


def check_model_id(path, model_id: str, spec) -> None:
    """A result file whose `model_id` names a size far from the model given (Llama-3.1-70B-Instruct
    imported as llama3.1-8b, DeepSeek-R1-Distill-Llama-70B as deepseek-r1) is refused: the row would teach
    the fit one model's speed as another's. Names without a size, or another checkpoint of about the
    model's size (an FP8 one), pass."""
    sizes = [float(experts or 1) * float(each) for experts, each in SIZE_IN_NAME.findall(model_id.lower())]
    billions = spec.total_params / 1e9
    if sizes and not any(1 / SIZE_IN_NAME_TOLERANCE <= size / billions <= SIZE_IN_NAME_TOLERANCE for size in sizes):
        named = "/".join(f"{size:g}B" for size in sizes)
        raise ConfigError(f"`model`: {spec.name} has {billions:.3g}B parameters, but {path} ran model_id "
                          f"{excerpt(model_id, 80)} ({named}); give the model the run served")


def from_vllm_benchmark(path, *, model: str, gpu: str, gpus: int, tp: int | None = None, ep: int | None = None,
                        precision: str = "fp8", stack: str = "vllm") -> Measurement:
    """A vLLM `benchmarks/benchmark_serving.py --save-result` JSON file as a calibration row. The file
    does not say what hardware it ran on: the GPU, count and plan come from the caller. `request_rate`
    "inf" with `max_concurrency` is a closed loop of that many users; a finite rate is open loop, which
    needs `median_tpot_ms` (what calibration fits it on). Latencies in the file are milliseconds; the row
    stores seconds."""
    spec = get_model(model)    # the caller's names first: their errors name `model` / `gpu`
    get_gpu(gpu)
    data = _read_json(path)
    if isinstance(data.get("model_id"), str):
        check_model_id(path, data["model_id"], spec)
    completed = _field(path, data, "completed")
    if not completed:
        raise ConfigError(f"{path}: completed is 0; no requests finished")
    rate = data.get("request_rate")
    unbounded = rate is None or rate == "inf" or (isinstance(rate, float) and rate == math.inf)
    if not unbounded and not _field(path, data, "request_rate"):
        raise ConfigError(f"{path}: request_rate {rate!r} must be > 0 (requests per second) or \"inf\"")
    concurrency = _whole(path, data, "max_concurrency", required=False)
    per_request = {}
    for ours, theirs in (("input_tokens", "total_input_tokens"), ("output_tokens", "total_output_tokens")):
        per_request[ours] = round(_field(path, data, theirs) / completed)
        if per_request[ours] < 1:
            raise ConfigError(f"{path}: {theirs} {data[theirs]!r} over {completed} completed requests is under one "
                              "token a request")
    record = {"model": model, "gpu": gpu, "gpus": gpus, "precision": precision, "stack": stack,
              "tp": tp, "ep": ep, "source": f"vLLM benchmark_serving result {Path(path).name}",
              "output_tokens_per_s": _field(path, data, "output_throughput"), **per_request}
    if not isinstance(completed, int) and completed != int(completed):
        raise ConfigError(f"{path}: completed {completed!r} must be a whole number of requests")
    if concurrency and not unbounded:
        raise ConfigError(f"{path}: request_rate {rate!r} and max_concurrency {concurrency} both limit the load; a "
                          f"row is an open loop (a rate) or a closed loop (max_concurrency, request_rate inf)")
    if concurrency:
        record.update(scenario="closed", users=concurrency)
    elif not unbounded:
        record.update(scenario="open", rate_per_s=rate)
    else:
        given = "missing" if rate is None else "inf"
        raise ConfigError(f"{path}: request_rate is {given} and max_concurrency is missing: cannot tell the load")
    for ours, theirs in (("ttft_p50_s", "median_ttft_ms"), ("ttft_p99_s", "p99_ttft_ms"),
                         ("tpot_p50_s", "median_tpot_ms"), ("tpot_p99_s", "p99_tpot_ms")):
        value = _field(path, data, theirs, required=False)
        if value is not None:
            record[ours] = round(value / 1000.0, 9)
    if record["scenario"] == "open":        # what the row check would refuse, named as the file names it
        why = (f"a run at request_rate {rate:g} that keeps up serves its arrivals whatever the GPUs' speed, so "
               "calibration fits its median TPOT")
        if not record.get("tpot_p50_s"):
            raise ConfigError(f"{path}: median_tpot_ms is {'missing' if 'tpot_p50_s' not in record else '0'}: {why}")
        if record["output_tokens"] < 2:
            raise ConfigError(f"{path}: total_output_tokens / completed is {record['output_tokens']} token a request; "
                              f"a TPOT needs 2 or more: {why}")
    row = measurement_from_record(str(path), record)
    NameCheck().check(str(path), row)
    return row


INFERENCEMAX_MODELS = {"llama3.3-70b": "llama3.1-70b", "llama-3.3-70b": "llama3.1-70b", "llama70b": "llama3.1-70b",
                       "gptoss": "gpt-oss-120b", "gpt-oss": "gpt-oss-120b", "gpt-oss-120b": "gpt-oss-120b",
                       "dsr1": "deepseek-r1", "deepseek-r1": "deepseek-r1", "deepseek-r1-0528": "deepseek-r1"}


def from_inferencemax(path) -> Measurement:
    """An InferenceMAX per-run result JSON (`hw`, `model`, `precision`, `tp`, `ep`, `isl`, `osl`, `conc`,
    `tput_per_gpu`, `output_tput_per_gpu`, `median_ttft`, `p99_ttft`, `median_tpot`, `p99_tpot`; times
    in seconds) as a closed-loop row of `conc` users on max(tp, ep) GPUs."""
    data = _read_json(path)
    for key in ("hw", "model", "precision"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{path}: {key} must be a non-empty string")
    hw = data["hw"].lower().split("-")[0].split("_")[0]
    model_key = data["model"].lower().split("/")[-1]
    model = INFERENCEMAX_MODELS.get(model_key, model_key)
    tp = _whole(path, data, "tp")
    ep = _whole(path, data, "ep", required=False) or 1
    gpus = max(tp, ep, 1)
    record = {"model": model, "gpu": hw, "gpus": gpus, "scenario": "closed", "users": _whole(path, data, "conc"),
              "input_tokens": _whole(path, data, "isl"), "output_tokens": _whole(path, data, "osl"),
              "precision": data["precision"].lower(), "stack": str(data.get("framework", "") or ""), "tp": tp,
              "ep": ep, "output_tokens_per_s": _field(path, data, "output_tput_per_gpu") * gpus,
              "source": f"InferenceMAX result {Path(path).name}"}
    for ours, theirs in (("ttft_p50_s", "median_ttft"), ("ttft_p99_s", "p99_ttft"),
                         ("tpot_p50_s", "median_tpot"), ("tpot_p99_s", "p99_tpot")):
        value = _field(path, data, theirs, required=False)
        if value is not None:
            record[ours] = value
    row = measurement_from_record(str(path), record)
    names = NameCheck()
    for key, kind, value in (("hw", "gpu", hw), ("model", "model", model)):
        if names.resolve(kind, value)[1]:
            raise ConfigError(f"{path}: {key} {excerpt(data[key])} names no {NameCheck.LABELS[kind]} in the "
                              f"catalog (read as {excerpt(value)})")
    names.check(str(path), row)
    return row
