"""Measured benchmark rows for calibration: the row (`Measurement`), its checks, and its CSV format.
Rows also come from result files: `run_results` (vLLM, InferenceMAX), `mlperf_results` (MLPerf).

CSV columns (header required; blank cells mean "not measured" / "default"):
  model, gpu, gpus, scenario         required; scenario is offline | server | interactive (an MLPerf
                                     scenario of the model's dataset), open (Poisson at rate_per_s) or
                                     closed (`users` concurrent users, no think time)
  output_tokens_per_s, source        required: the measured output tokens/s of the whole system, and
                                     where the figure comes from
  rate_per_s, users                  open / closed workloads only (an open loop's output_tokens_per_s is at
                                     most rate_per_s x output_tokens, within OPEN_LOOP_TOLERANCE)
  input_tokens, output_tokens        open / closed: fixed lengths per request (means of the run); on an
                                     MLPerf row, the measured means: output_tokens sets the simulated
                                     outputs' mean, input_tokens is recorded only (prompts are the
                                     benchmark dataset's); neither may exceed the model's context
  precision, stack, stack_version    e.g. fp4, fp8 or fp4/fp8/fp8; software stack name (free text) and its
                                     major.minor release (a suffix such as rc1 or post1 allowed)
  tp, pp, ep, max_batch_size         the plan measured (blank: tp = smallest that fits, pp = ep = 1)
  queries                            offline: how many samples the run issued (an MLPerf summary's samples
                                     per second x its max latency; blank: as `infersim mlperf` sizes a run)
  duration_s                         server / interactive: seconds over which the run issued its queries
                                     (LoadGen's min_duration, longer where min_query_count needs it; blank:
                                     as long as `infersim mlperf` runs)
  ttft_p50_s, ttft_p99_s, tpot_p50_s, tpot_p99_s   latency figures (a p99 at least its p50); recorded
                                     (scripts/latency_at_measured_rate.py reads them), except an open
                                     loop's tpot_p50_s: required, and what calibration fits it on
                                     (`Measurement.fitted_tokens_per_s`)
  ttft_limit_s, tpot_limit_s         the limits a Server/Interactive run was held to: must be the
                                     benchmark's own (the prediction runs those), within 1%
  nodes, gpu_power_w                 the system's node count and GPU power limit (TGP) where published;
                                     recorded only (the GPU catalog's power_w and server size are used)
  benchmark                          the MLPerf benchmark whose dataset was served (default: the model's)
  round, division, submitter, system, valid   provenance of a published result (calibration leaves
                                     out a row whose valid is false, with a warning)
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from simulator.catalog_io import read_text
from simulator.errors import ConfigError, excerpt
from simulator.hardware import get_gpu, load_gpus
from simulator.metrics import compute_bound_tokens_per_s, weight_read_bound_tpot_s
from simulator.models import Precision, get_model, load_models
from simulator.plan import MAX_GPUS, PLAN_LIMITS, check_model_split
from workloads.arrivals import MAX_USERS
from workloads.lengths import MAX_TOKENS
from workloads.scenarios import MAX_QUERIES, get_scenario

# The published MLPerf rows the shipped profile is fitted to (scripts/import_mlperf_rows.py writes them)
SHIPPED_MEASUREMENTS = Path(__file__).parent / "catalog" / "measurements" / "mlperf.csv"

MLPERF_SCENARIOS = ("offline", "server", "interactive")
SCENARIOS = MLPERF_SCENARIOS + ("open", "closed")
# (low, high, whole number) per numeric column. Where the simulator limits a column (cluster size, plan,
# users, lengths, Offline queries) the range is its own limit: a row it could not run is refused here,
# naming the row and column, not later under the name of a command-line flag.
NUMBERS = {"gpus": (1, MAX_GPUS, True), "rate_per_s": (0, 1e7, False), "users": (1, MAX_USERS, True),
           "input_tokens": (1, MAX_TOKENS, False), "output_tokens": (1, MAX_TOKENS, False),
           **{name: (1, high, True) for name, high in PLAN_LIMITS.items()},
           "output_tokens_per_s": (0, 1e12, False), "ttft_p50_s": (0, 1e6, False), "ttft_p99_s": (0, 1e6, False),
           "tpot_p50_s": (0, 1e6, False), "tpot_p99_s": (0, 1e6, False), "ttft_limit_s": (0, 1e6, False),
           "tpot_limit_s": (0, 1e6, False), "nodes": (1, 1_000_000, True), "gpu_power_w": (1, 100_000, True),
           "queries": (1, MAX_QUERIES, True), "duration_s": (1, 1e6, False)}
# An open loop's output can be no more than its arrivals bring: rate_per_s x output_tokens. A measured run
# of n Poisson arrivals realises its nominal rate only to within about 1/sqrt(n) (3.2% at 1,000 requests,
# vLLM benchmark_serving's default), so the bound is 10% above (three sigma at 1,000 requests); the slips
# it is there to catch (total for output tokens/s, a per-node figure, requests for tokens) are 2x or more.
OPEN_LOOP_TOLERANCE = 0.10
# A stack release as the importers write it (major.minor: '0.9', '10.11') or as a stack names its own
# ('0.6.3.post1', '1.0.0rc2', '0.10.1.dev0'); the fit groups rows by it, so a typo must not become a release.
RELEASE = re.compile(r"\d+(?:\.\d+)+(?:[.-]?(?:a|b|rc|post|dev)\d+)?", re.IGNORECASE)
BOOLEANS = {"true": True, "yes": True, "1": True, "valid": True, "false": False, "no": False, "0": False,
            "invalid": False}
REQUIRED = ("model", "gpu", "gpus", "scenario", "output_tokens_per_s", "source")


@dataclass(frozen=True)
class Measurement:
    model: str
    gpu: str
    gpus: int
    scenario: str
    output_tokens_per_s: float
    source: str
    rate_per_s: float | None = None
    users: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    precision: str = "fp8"
    stack: str = ""
    stack_version: str = ""
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    max_batch_size: int | None = None
    queries: int | None = None
    duration_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    tpot_p50_s: float | None = None
    tpot_p99_s: float | None = None
    ttft_limit_s: float | None = None
    tpot_limit_s: float | None = None
    nodes: int | None = None
    gpu_power_w: int | None = None
    benchmark: str = ""
    round: str = ""
    division: str = ""
    submitter: str = ""
    system: str = ""
    valid: bool = True

    @property
    def fitted_on(self) -> str:
        """What calibration compares for this row (see `fitted_tokens_per_s`)."""
        return "output_tokens_per_s_per_user" if self.scenario == "open" else "output_tokens_per_s"

    @property
    def fitted_tokens_per_s(self) -> float:
        """What calibration compares (`fitted_tokens_per_s`)."""
        return fitted_tokens_per_s(self.scenario, self.output_tokens_per_s, self.tpot_p50_s)

    @property
    def label(self) -> str:
        extra = f" @{self.rate_per_s:g}/s" if self.rate_per_s else f" x{self.users}u" if self.users else ""
        return f"{self.model} {self.gpu} x{self.gpus} {self.precision} {self.scenario}{extra}"


def fitted_tokens_per_s(scenario: str, output_tokens_per_s: float, tpot_p50_s: float | None) -> float:
    """What calibration compares of a row, measured or simulated, as a rate (higher is faster): the
    system's output tokens/s, except for an open loop. One that keeps up with its arrivals serves
    rate_per_s x output_tokens whatever the GPUs' speed; its median TPOT says how fast they ran, as one
    user's tokens/s (1 / tpot_p50_s)."""
    return 1.0 / tpot_p50_s if scenario == "open" else output_tokens_per_s


COLUMNS = tuple(f.name for f in fields(Measurement))


def round_order(name: str) -> tuple[int, int] | None:
    """Where an MLPerf round sorts ('v5.1' -> (5, 1), so v10.0 comes after v5.1); None when the name is
    not of the form vX.Y (a user's own rows name no round)."""
    match = re.fullmatch(r"v(\d+)\.(\d+)", name or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE | re.ASCII)


def _number(where: str, name: str, text: str):
    low, high, integer = NUMBERS[name]
    # a CSV number is written in ASCII: Python's float() also reads '1_0' as 10 and other scripts' digits
    if not PLAIN_NUMBER.fullmatch(text.strip()):
        raise ConfigError(f"{where}: {name} {excerpt(text)} is not a number")
    value = float(text)
    if not math.isfinite(value) or value < low or value > high or (name == "output_tokens_per_s" and value <= 0):
        raise ConfigError(f"{where}: {name} {excerpt(text)} is out of range [{low:g}, {high:g}]"
                          + (" and must be > 0" if name == "output_tokens_per_s" else ""))
    if integer:
        if value != int(value):
            raise ConfigError(f"{where}: {name} {excerpt(text)} must be a whole number")
        return int(value)
    return value


def measurement_from_record(where: str, record: dict) -> Measurement:
    """Validate one row (strings or numbers) into a Measurement; errors name `where` and the column."""
    unknown = sorted(set(record) - set(COLUMNS))
    if unknown:
        raise ConfigError(f"{where}: unknown column {excerpt(unknown[0])}; allowed: {', '.join(COLUMNS)}")
    values = {}
    for name in COLUMNS:
        raw = record.get(name)
        text = "" if raw is None else str(raw).strip()
        if not text:
            if name in REQUIRED:
                raise ConfigError(f"{where}: {name} is required")
            continue
        if name == "valid":
            if text.lower() not in BOOLEANS:
                raise ConfigError(f"{where}: valid {excerpt(text)} is not true or false")
            values[name] = BOOLEANS[text.lower()]
        else:
            values[name] = _number(where, name, text) if name in NUMBERS else text
    values["model"], values["gpu"] = values["model"].lower(), values["gpu"].lower()
    values["scenario"] = values["scenario"].lower()
    if "stack_version" in values and not RELEASE.fullmatch(values["stack_version"]):
        raise ConfigError(f"{where}: stack_version {excerpt(values['stack_version'])} is not a release number: "
                          f"expected digits separated by dots (major.minor such as 0.9 or 10.11), optionally "
                          f"with a suffix such as rc1 or post1")
    if "precision" in values:
        try:
            Precision.parse(values["precision"], "precision")
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    _check_workload(where, values)
    for name, used in (("tp x pp", (values.get("tp") or 1) * (values.get("pp") or 1)), ("ep", values.get("ep") or 1)):
        if used > values["gpus"]:
            raise ConfigError(f"{where}: {name} = {used} needs more GPUs than the row's gpus {values['gpus']}")
    if values.get("nodes") and values["nodes"] > values["gpus"]:
        raise ConfigError(f"{where}: nodes {values['nodes']} is more than gpus {values['gpus']}; each node holds "
                          f"at least one of the row's GPUs")
    for name in ("ttft_limit_s", "tpot_limit_s"):
        if values.get(name) is not None and values["scenario"] not in ("server", "interactive"):
            raise ConfigError(f"{where}: {name} applies to scenarios server and interactive only, not "
                              f"{values['scenario']}; leave it blank")
        if values.get(name) == 0:
            raise ConfigError(f"{where}: {name} must be > 0 (a latency limit), or blank")
    for metric in ("ttft", "tpot"):
        median, p99 = values.get(f"{metric}_p50_s"), values.get(f"{metric}_p99_s")
        if median is not None and p99 is not None and p99 < median:
            raise ConfigError(f"{where}: {metric}_p99_s {p99:g} is below {metric}_p50_s {median:g}; a 99th "
                              f"percentile is at least the median (columns swapped?)")
    return Measurement(**values)


# The load columns and the scenarios that take them: a value on any other scenario's row means the row is not
# what it says (a Server run's query count follows from its rate and duration; only an Offline count is an
# input, and only a Server/Interactive run's duration).
LOAD_COLUMNS = {"rate_per_s": ("open",), "users": ("closed",), "queries": ("offline",),
                "duration_s": ("server", "interactive")}


def _check_workload(where: str, values: dict) -> None:
    """The scenario is known, and its load and lengths are given: an open loop's rate (which bounds its
    output), a closed loop's users; no load column (those two, Offline's queries, a Server run's duration)
    on a row of another scenario."""
    scenario = values["scenario"]
    if scenario not in SCENARIOS:
        raise ConfigError(f"{where}: scenario {excerpt(scenario)} is not one of {', '.join(SCENARIOS)}")
    for column, owners in LOAD_COLUMNS.items():
        if column in values and scenario not in owners:
            raise ConfigError(f"{where}: {column} applies to scenario{'s' * (len(owners) > 1)} "
                              f"{' and '.join(owners)} only, not {scenario}; leave it blank")
    if scenario == "open" and not values.get("rate_per_s"):
        raise ConfigError(f"{where}: an open workload needs rate_per_s > 0")
    if scenario == "closed" and not values.get("users"):
        raise ConfigError(f"{where}: a closed workload needs users")
    if scenario in ("open", "closed") and not (values.get("input_tokens") and values.get("output_tokens")):
        raise ConfigError(f"{where}: an {scenario} workload needs input_tokens and output_tokens")
    if scenario == "open":
        _check_arrivals_bound(where, values)
        if not values.get("tpot_p50_s") or values["output_tokens"] < 2:
            raise ConfigError(f"{where}: an open workload needs tpot_p50_s and output_tokens >= 2: a run that keeps "
                              "up with its arrivals serves rate_per_s x output_tokens whatever the GPUs' speed, so "
                              "calibration fits its median TPOT")


def _check_arrivals_bound(where: str, values: dict) -> None:
    arriving = values["rate_per_s"] * values["output_tokens"]
    if values["output_tokens_per_s"] > arriving * (1 + OPEN_LOOP_TOLERANCE):
        raise ConfigError(f"{where}: output_tokens_per_s {values['output_tokens_per_s']:.4g} is more than an open "
                          f"loop brings: rate_per_s {values['rate_per_s']:g} x output_tokens "
                          f"{values['output_tokens']:g} = {arriving:.4g} tokens/s (+{OPEN_LOOP_TOLERANCE:.0%} for "
                          f"the random arrivals); check the figure, its units and the rate")


class NameCheck:
    """Resolves a row's model and GPU against the catalogs (each distinct name once) and refuses a row
    naming a model or GPU the simulator does not know, or claiming more tokens per second than its GPUs
    can compute (a unit slip, a per-node figure under a per-GPU count)."""

    LABELS = {"gpu": "GPU", "model": "model"}

    def __init__(self, gpu_catalog=(), model_catalog=()):
        self.gpu_catalog, self.model_catalog = tuple(gpu_catalog), tuple(model_catalog)
        # the user's catalog files load here, so that a missing or broken one is reported as such, not as
        # every row's GPU or model missing from the catalog
        load_gpus(self.gpu_catalog)
        load_models(self.model_catalog)
        self.cache: dict = {}

    def resolve(self, kind: str, name: str):
        """(spec, None) for a known name, (None, why not) otherwise."""
        key = (kind, name)
        if key not in self.cache:
            try:
                spec = get_gpu(name, self.gpu_catalog) if kind == "gpu" else get_model(name, self.model_catalog)
                self.cache[key] = spec, None
            except ConfigError as exc:
                known = str(exc).partition("; known: ")[2]
                if kind == "model" and name.lower().endswith(".json"):    # a config.json: what is wrong with it
                    self.cache[key] = None, f"model: {exc}"
                else:
                    self.cache[key] = None, (f"{kind} {excerpt(name)} is not in the {self.LABELS[kind]} catalog"
                                             + (f" (known: {known})" if known else ""))
        return self.cache[key]

    def check(self, where: str, row: Measurement) -> None:
        model, problem = self.resolve("model", row.model)
        gpu, gpu_problem = self.resolve("gpu", row.gpu)
        if problem or gpu_problem:
            raise ConfigError(f"{where}: {problem or gpu_problem}")
        precision = Precision.parse(row.precision, "precision")
        try:      # the GPU must have tensor rates for the row's number formats, as a run's config requires
            gpu.peak_flops(precision.gemm_dtype)
            gpu.peak_flops(precision.attention_dtype)
        except ConfigError as exc:
            raise ConfigError(f"{where}: precision {row.precision}: {exc}") from None
        for column in ("input_tokens", "output_tokens"):
            tokens = getattr(row, column)
            if tokens and tokens > model.max_context:
                raise ConfigError(f"{where}: {column} {tokens:g} is more than {model.name}'s context of "
                                  f"{model.max_context} tokens (a mean per request)")
        if row.scenario in MLPERF_SCENARIOS:
            self._check_benchmark(where, row)
        check_model_split(model, row.tp or 1, row.pp or 1, row.ep or 1, where)
        fastest_tpot_s = weight_read_bound_tpot_s(model, gpu, row.gpus)
        if row.scenario == "open" and row.tpot_p50_s < fastest_tpot_s:
            raise ConfigError(f"{where}: tpot_p50_s {row.tpot_p50_s:.4g} is less than the {fastest_tpot_s:.3g} s "
                              f"{row.gpus} {gpu.name} need to read {model.name}'s active weights once (at 4 bits and "
                              "the datasheet bandwidth); check the figure and its units (seconds), or whether the run "
                              "decoded several tokens a step (speculative decoding, which infersim does not model)")
        bound = compute_bound_tokens_per_s(model, gpu, row.gpus)
        if row.output_tokens_per_s > bound:
            raise ConfigError(f"{where}: output_tokens_per_s {row.output_tokens_per_s:.4g} is more than {row.gpus} "
                              f"{gpu.name} can compute for {model.name} ({bound:.4g} tokens/s at the GPU's fastest "
                              f"dense rate, 2 FLOPs per active parameter); check the figure, its units and gpus")

    def _check_benchmark(self, where: str, row: Measurement) -> None:
        """An MLPerf row's benchmark has its scenario, and the limits the row records are that scenario's:
        the prediction runs the benchmark's own dataset and limits, so a row held to others is not the
        run it says."""
        benchmark = row.benchmark or row.model
        key = ("benchmark", benchmark, row.scenario)
        if key not in self.cache:
            try:
                self.cache[key] = get_scenario(benchmark, row.scenario), None
            except ConfigError as exc:
                self.cache[key] = None, str(exc).partition(": ")[2]
        scenario, problem = self.cache[key]
        if problem:
            raise ConfigError(f"{where}: benchmark {benchmark}: {problem}")
        for column, limit in (("ttft_limit_s", scenario.ttft_p99_s), ("tpot_limit_s", scenario.tpot_p99_s)):
            value = getattr(row, column)
            if value is not None and limit and abs(value / limit - 1) > 0.01:
                raise ConfigError(f"{where}: {column} {value:g} is not {benchmark} {row.scenario}'s limit of {limit:g} "
                                  f"s, which the prediction runs; leave it blank or correct it")


def load_measurements(path: str | Path, *, gpu_catalog=(), model_catalog=()) -> list[Measurement]:
    """The rows of a measurement CSV, each checked: columns and ranges, model and GPU names known to the
    catalogs (plus the user files given), throughput within the compute bound of the GPUs it names."""
    return [row for _, row in _numbered_rows(path, gpu_catalog, model_catalog)]


def _numbered_rows(path: str | Path, gpu_catalog, model_catalog) -> list[tuple[int, Measurement]]:
    """`load_measurements` with each row's number as its errors name it (the header's next record is row 1;
    a record of empty cells keeps its number)."""
    path = Path(path)
    names = NameCheck(gpu_catalog, model_catalog)
    text = read_text(path)
    # (file line number, line with its line break): the break stays, so a cell a quote ran over shows one.
    # Lines end at \n, \r or \r\n only, as the csv module reads them (str.splitlines would also split a
    # cell at a form feed or U+2028); comments and blank lines are not rows.
    numbered = [(number, line) for number, line in enumerate(io.StringIO(text, newline="").readlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    lines = [line for _, line in numbered]
    if not lines:
        raise ConfigError(f"{path}: file is empty (expected a header: {', '.join(REQUIRED)}, ...)")
    try:
        reader = csv.DictReader(lines)
        _check_quotes(path, numbered, 0, reader.fieldnames or [], reader.line_num)
        header = [h.strip() for h in reader.fieldnames or []]
        twice = next((h for h in header if h and header.count(h) > 1), None)
        if twice:
            raise ConfigError(f"{path}: line {numbered[0][0]}: column {excerpt(twice)} appears twice in the header")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ConfigError(f"{path}: line {numbered[0][0]}: header lacks column {missing[0]!r}")
        rows, first = [], reader.line_num
        for number, record in enumerate(reader, start=2):
            _check_quotes(path, numbered, first, record.values(), reader.line_num)
            first = reader.line_num
            if None in record:
                raise ConfigError(f"{path}: row {number - 1}: more cells than header columns")
            if None in record.values():     # csv fills a short row's last columns with None: blank is not meant
                cells = sum(v is not None for v in record.values())
                raise ConfigError(f"{path}: row {number - 1}: {cells} cells, the header has {len(header)} columns "
                                  f"(leave a cell empty between commas)")
            record = {k.strip(): v for k, v in record.items()}
            if not any((v or "").strip() for v in record.values()):
                continue
            row = measurement_from_record(f"{path}: row {number - 1}", record)
            names.check(f"{path}: row {number - 1}", row)
            rows.append((number - 1, row))
    except csv.Error as exc:
        raise ConfigError(f"{path}: not valid CSV ({exc})") from None
    if not rows:
        raise ConfigError(f"{path}: no measurement rows")
    return rows


def load_measurement_files(paths, *, gpu_catalog=(), model_catalog=()) -> list[Measurement]:
    """The rows of several measurement CSVs (`load_measurements` each); a row given twice (the same file
    passed twice, a line copied) is refused: a fit would weigh that run double without saying so."""
    rows, first_seen = [], {}
    for path in paths:
        for number, row in _numbered_rows(path, gpu_catalog, model_catalog):
            if row in first_seen:
                raise ConfigError(f"{path}: row {number} repeats {first_seen[row]} (every column the same); "
                                  f"give each measured run once")
            first_seen[row] = f"{path}: row {number}"
            rows.append(row)
    return rows


def _check_quotes(path, numbered: list, first: int, cells, last: int) -> None:
    """No cell of the record read from `numbered[first:last]` holds a line break: no column takes one, so
    it is a quote left open, and the csv module reads on to the next quote or the end of the file (the
    row then fails on whatever column came up short). Named at the line where the record, and so the
    quoted cell, starts."""
    for cell in cells:
        for text in cell if isinstance(cell, list) else [cell]:      # a list: cells beyond the header
            if text and ("\n" in text or "\r" in text):
                while not numbered[first][1].strip("\r\n"):        # empty lines the reader skipped
                    first += 1
                unclosed = "".join(line for _, line in numbered[first:last]).count('"') % 2
                end = "the end of the file" if unclosed else f"line {numbered[last - 1][0]}"
                raise ConfigError(f"{path}: line {numbered[first][0]}: unterminated quote: the quoted cell "
                                  f"starting on this line runs on to {end}")


def measurements_csv(rows: list[Measurement]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return buffer.getvalue()
