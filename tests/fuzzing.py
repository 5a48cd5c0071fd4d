"""The oracle and the input generators the structure-aware fuzz tests share (and `scripts/fuzz_census.py`,
which counts what they find without stopping at the first defect).

A case is an argv for `infersim`, the files it names, and whether the generator made it hostile (a value
outside the field's documented range, a wrong type, an unknown key, a conflict). The oracle runs the CLI
in this process and classifies what happened:

  refused     exit 2 with one line on stderr naming the field or file (right for hostile input)
  ok          exit 0 with a result that passes the invariants (right for well-formed input)
  traceback   any exception escaping `main`
  multiline   exit 2 but not one line starting "infersim: " (click's usage block, a traceback printed)
  unnamed     refused in one line that names neither the field nor the file
  silent      hostile input accepted with exit 0, or an exit-0 result that breaks an invariant
  refused-valid  well-formed input refused
"""
from __future__ import annotations

import io
import json
import math
import tempfile
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

INF, NAN = float("inf"), float("nan")
BASE = ["--model", "llama3.1-8b", "--gpu", "b200"]


@dataclass
class Case:
    argv: list
    files: dict = field(default_factory=dict)      # name -> str or bytes, written into a fresh folder
    hostile: bool = False
    names: tuple = ()                              # substrings one of which a refusal must mention
    arrivals: tuple = ()                           # a trace's arrival times, for the makespan invariant

    def describe(self) -> str:
        return " ".join(map(str, self.argv)) + "".join(f"\n--- {n}\n{c!r:.600}" for n, c in self.files.items())


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    error: str = ""


def run_cli(argv: list) -> Outcome:
    """`infersim argv` in this process, stdout and stderr captured."""
    from simulator.cli import main
    out, err = io.StringIO(), io.StringIO()
    code, error = 0, ""
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:                     # noqa: BLE001 - the oracle's whole point
            code, error = None, traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), error)


def materialise(case: Case, folder: Path) -> list:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return [str(a).replace("{tmp}", str(folder)) for a in case.argv]


def compute_bound(argv: list) -> float | None:
    """The roofline bound on tokens/s for the cluster an argv describes (None when it cannot tell)."""
    from simulator.api import apply_gpu_overrides, parse_set_values
    from simulator.hardware import get_gpu
    from simulator.metrics import compute_bound_tokens_per_s
    from simulator.models import get_model

    def values(flag):
        return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]
    try:
        model = get_model((values("--model") or ["llama2-70b"])[-1], values("--model-catalog"))
        gpu = get_gpu((values("--gpu") or ["mi355x"])[-1], values("--catalog"))
        gpu = apply_gpu_overrides(gpu, parse_set_values(values("--set"))[0])
        gpus = int((values("--gpus") or ["8"])[-1])
    except Exception:                             # noqa: BLE001 - then the invariant is not checked
        return None
    return compute_bound_tokens_per_s(model, gpu, gpus)


def invariant_violations(document: dict, case: Case, argv: list) -> list[str]:
    """What an exit-0 simulate result must satisfy: finite numbers, conservation, a reason count per
    drop, TTFT within latency, throughput under the roofline, makespan covering the arrivals."""
    problems = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{prefix} = {value}")
    walk("", document)
    total, done, dropped = (document.get(k) for k in ("requests_total", "requests_completed", "requests_dropped"))
    if None in (total, done, dropped) or done + dropped != total:
        problems.append(f"conservation: {done} completed + {dropped} dropped != {total}")
    reasons = document.get("requests_dropped_by_reason")
    if reasons is not None and sum(reasons.values()) != dropped:
        problems.append(f"per-reason drop counts {reasons} do not add up to {dropped}")
    if done:
        for key in ("output_tokens_per_s", "makespan_s", "ttft_p50_s", "latency_p50_s"):
            value = document.get(key)
            if not isinstance(value, (int, float)) or value < 0:
                problems.append(f"{key} = {value!r} with {done} completed requests")
        for q in (50, 90, 99):
            ttft, latency = document.get(f"ttft_p{q}_s"), document.get(f"latency_p{q}_s")
            if isinstance(ttft, float) and isinstance(latency, float) and ttft > latency * (1 + 1e-9) + 1e-12:
                problems.append(f"ttft_p{q}_s {ttft} > latency_p{q}_s {latency}")
        bound = compute_bound(argv)
        rate = document.get("total_tokens_per_s")
        if bound is not None and isinstance(rate, (int, float)) and rate > bound * 1.0001:
            problems.append(f"total_tokens_per_s {rate:.4g} beats the roofline bound {bound:.4g}")
        if case.arrivals and not dropped:
            span = max(case.arrivals) - min(case.arrivals)
            if document["makespan_s"] < span - 1e-9:
                problems.append(f"makespan_s {document['makespan_s']} < arrival span {span}")
    return problems


def classify(case: Case) -> tuple[str, str]:
    """(verdict, detail) for one case; see the module docstring for the verdicts."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = materialise(case, Path(tmp))
        outcome = run_cli(argv)
        if outcome.code is None:
            return "traceback", outcome.error.strip().splitlines()[-1]
        err = outcome.err.strip()
        if outcome.code == 2:
            lines = err.splitlines()
            if len(lines) != 1 or not lines[0].startswith("infersim: ") or "Traceback" in err:
                return "multiline", f"exit 2 but stderr is not one prefixed line: {err[:300]!r}"
            if not case.hostile:
                return "refused-valid", lines[0]
            message = lines[0].replace(tmp + "/", "")
            if case.names and not any(name in message for name in case.names):
                return "unnamed", f"{lines[0]} (expected one of {case.names})"
            return "refused", lines[0]
        if outcome.code != 0:
            return ("refused-valid" if not case.hostile else "refused"), f"exit {outcome.code}: {err[-300:]}"
        if case.hostile:
            return "silent", "hostile input accepted with exit 0"
        if argv and argv[0] == "simulate" and "--json" in argv:
            try:
                document = json.loads(outcome.out)
            except ValueError:
                return "silent", f"--json printed no JSON: {outcome.out[:200]!r}"
            problems = invariant_violations(document, case, argv)
            if problems:
                return "silent", "; ".join(problems)
        return "ok", ""


# ---- value pools ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """A field's documented domain: numbers in [low, high] (whole when `integer`), or one of `choices`."""
    name: str
    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    choices: tuple = ()

    def hostile(self) -> list:
        if self.choices:
            return ["no-such-" + self.name.replace("_", "-"), 3, True]
        values = [INF, -INF, NAN, "abc", True, [1]]
        if self.low is not None:
            values.append(self.low if self.low_open else (self.low - 1 if self.integer else -1e-3 + self.low))
            values.append(-1e308)
        if self.high is not None:
            values.append(1e308)
            values.append(10 ** 30 if self.integer else self.high * 10)
        if self.integer:
            values.append((self.low or 0) + 1.5)
        return values


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def toml_text(table: dict, prefix: str = "") -> str:
    """A small TOML writer: scalars first, then sub-tables as [a.b] sections, lists of tables as [[x]]."""
    lines, nested = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            nested.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append((key, value))
        else:
            lines.append(f"{json.dumps(key) if '.' in key or ' ' in key else key} = {toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in nested:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, list):
            for item in value:
                text += f"\n[[{name}]]\n" + toml_text(item, name)
        else:
            text += f"\n[{name}]\n" + toml_text(value, name)
    return text


@st.composite
def mutated(draw, valid: dict, fields: dict[str, Field], unknown_ok: bool = False):
    """`valid` (a flat dict of dotted keys) with 0-2 fields replaced by hostile values, or an unknown key
    added; returns (values, hostile, names a refusal should mention)."""
    values = dict(valid)
    # mostly one bad field: a refusal can then be checked for naming it
    kinds = ["none"] * 3 + ["one"] * 5 + ["two"] + ([] if unknown_ok else ["unknown"])
    how = draw(st.sampled_from(kinds))
    if how == "none":
        return values, False, ()
    if how == "unknown":
        key = draw(st.sampled_from(sorted(valid)))
        *head, last = key.split(".")
        typo = ".".join(head + [last[:-1] + last[-1] * 2 + "x"])
        values[typo] = values[key]
        return values, True, (typo.split(".")[-1],)
    keys = draw(st.lists(st.sampled_from(sorted(k for k in fields if k in valid)),
                         min_size=1, max_size=1 if how == "one" else 2, unique=True))
    for key in keys:
        values[key] = draw(st.sampled_from(fields[key].hostile()))
    return values, True, tuple(k.split(".")[-1] for k in keys) + tuple(fields[k].name for k in keys)


def nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *head, last = key.split(".")
        table = out
        for part in head:
            table = table.setdefault(part, {})
        table[last] = value
    return out
