"""The `infersim` command line: a thin layer over `simulator.api` (and friends). Bad input exits 2 with
one line naming the field and the allowed range; `--debug` shows the traceback instead.

Options are run-file fields (`simulator.runfile.FIELDS`): each option's name is its field, `--help` lists
them under their table's heading, and a command decorated with `@run_file` also reads them from
`--config FILE`, embeds what it ran in its JSON ("config", "infersim_version") and writes it back with
`--print-config`. Choice lists (--router, --arrival, --batching, --format) are read from the registries
when used, so an entry registered anywhere is a choice."""
from __future__ import annotations

import functools
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import click
from click.core import ParameterSource

from simulator import runfile
from simulator.errors import ConfigError, InfeasibleError, excerpt
from simulator.output import (PendingOutput, discard_pending, format_number, format_summary, format_table, per_request_csv,
                              rows_to_csv, to_json)
from simulator.progress import Progress
from simulator.scheduling import DEFAULT_BATCHING
from workloads.arrivals import DEFAULT_CONCURRENCY_RATIO, DEFAULT_MAX_CONCURRENCY, MIN_CONCURRENCY_RATIO
from workloads.lengths import Empirical
from workloads.scenarios import DEFAULT_KIND, KINDS

HEADINGS = {"cluster": "Cluster", "plan": "Plan", "workload": "Workload", "sla": "SLA", "whatif": "What-if",
            "output": "Output"}
# presentation, or how the work runs (the result is the same): not inputs, never in a run file
OUTPUT_ONLY = ("as_json", "config", "print_config", "quiet", "jobs", "show_all", "no_prune")
RUN_KEY = "infersim.run"                                        # ctx.meta: the run-file form of this run


# ---- help grouped by table ----------------------------------------------------------------------------

def heading_of(param: click.Parameter) -> str:
    field = runfile.FIELDS.get(param.name)
    if field is not None:
        return HEADINGS[field.table]
    return "Output" if param.name in OUTPUT_ONLY else "Other"


class GroupedCommand(click.Command):
    """A command whose --help lists its options under headings: each run-file field under its table's
    (Cluster, Plan, Workload, SLA, What-if, Output), --json/--config/--quiet under Output, the rest
    (--help) under Other. A command with no field options keeps click's single list."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(heading_of(param), []).append(record)
        if set(sections) <= {"Other"}:
            return super().format_options(ctx, formatter)
        for heading in (*HEADINGS.values(), "Other"):
            if heading in sections:
                with formatter.section(f"{heading} options"):
                    formatter.write_dl(sections[heading])


class RegistryChoice(click.Choice):
    """A choice list read when it is used, from a registry (or a function returning names), so an entry
    registered after this module was imported (a plugin's router, a test's) is a choice too."""

    def __init__(self, source, case_sensitive: bool = True):   # noqa: the choices are a property
        self.source = source
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple:
        names = self.source() if callable(self.source) and not isinstance(self.source, Mapping) else self.source
        return tuple(names)


def router_names():
    from simulator.router import ROUTERS
    return ROUTERS


def arrival_names():
    from workloads.arrivals import rate_driven
    return rate_driven()


def batching_names():
    from simulator.scheduling import BATCHING
    return BATCHING


def import_format_names():
    from simulator.importers import IMPORT_FORMATS
    return IMPORT_FORMATS


def option(name: str, *flags: str, **attrs):
    """click.option for the run-file field `name` under `flags`, typed as the field is (unless `type` is
    given): whole numbers, numbers, text, file paths, on/off flags, repeatable lists."""
    field = runfile.FIELDS[name]
    if field.kind is bool:
        attrs.setdefault("is_flag", True)
    elif "type" not in attrs:
        attrs["type"] = (click.Path(dir_okay=False) if field.path == "file"
                         else {int: click.INT, float: click.FLOAT, str: click.STRING}[field.kind])
    if field.multiple:
        attrs["multiple"] = True
    return click.option(*flags, name, **attrs)


def apply(options, func):
    for decorator in reversed(options):
        func = decorator(func)
    return func


MODEL_HELP = "Catalog model name or a Hugging Face config.json path."


def catalog_options() -> list:
    """Price, extra catalogs, profile and stack: what every command that prices or calibrates a cluster takes."""
    return [
        option("usd_per_gpu_hour", "--usd-per-gpu-hour", default=None,
               help="Price override in $ per GPU-hour (default: the catalog's range)."),
        option("gpu_catalog", "--catalog", help="Extra GPU catalog TOML (adds or overrides)."),
        option("model_catalog", "--model-catalog", help="Extra model catalog TOML."),
        option("profile", "--profile", default=None, help="Efficiency profile TOML (default: the shipped fit)."),
        option("stack", "--stack", default=None,
               help="Software-stack section of the profile to apply (default: the vendor's reference stack, "
                    "the profile's [fit.reference_stack]; output names the one applied as plan.stack)."),
    ]


def cluster_options(func=None, *, searched: bool = False, with_gpus: bool = True):
    """Options describing the cluster and deployment, shared by every command that simulates. With
    `searched`, plan options default to unset (the command searches them) and precision to "auto"."""
    if func is None:
        return functools.partial(cluster_options, searched=searched, with_gpus=with_gpus)
    plan_default = (lambda value: None) if searched else (lambda value: value)
    pin = " (default: searched)" if searched else ""
    return apply([
        option("model", "--model", default="llama2-70b", show_default=True, help=MODEL_HELP),
        option("gpu", "--gpu", default="mi355x", show_default=True, help="Catalog GPU name."),
        *([option("gpus", "--gpus", default=8, show_default=True, help="GPUs in the cluster.")] if with_gpus else []),
        option("topology", "--topology", default=None,
               help="Topology: catalog name (infersim catalog topologies) or TOML file (default: the GPU's own); "
                    "its GPU and link names for --fail: infersim catalog topology NAME."),
        *catalog_options(),
        option("tp", "--tp", default=plan_default(1), show_default=not searched, help="Tensor-parallel degree." + pin),
        option("pp", "--pp", default=plan_default(1), show_default=not searched,
               help="Pipeline-parallel stages." + pin),
        option("ep", "--ep", default=plan_default(1), show_default=not searched,
               help="Expert-parallel degree (MoE)." + pin),
        option("precision", "--precision", default="auto" if searched else "fp8", show_default=True,
               help="bf16|fp8|fp6|fp4, weights/activations/kv like fp4/fp8/fp8"
                    + (", or auto (fp4 where the GPU has an fp4 rate, else fp8)." if searched else ".")),
        option("batching", "--batching", default=DEFAULT_BATCHING, show_default=True, type=RegistryChoice(batching_names),
               help="Batching policy (infersim catalog extensions)."),
        option("router", "--router", default="round-robin", show_default=True, type=RegistryChoice(router_names),
               help="Which engine a request goes to (infersim catalog extensions)."),
        option("prefill_gpus", "--prefill-gpus", default=0, help="Disaggregated: GPUs in the prefill pool."),
        option("max_batch_size", "--max-batch-size", default=plan_default(256), show_default=not searched,
               help="Sequences per engine step." + pin),
        option("max_tokens_per_step", "--max-tokens-per-step", default=plan_default(8192), show_default=not searched,
               help="Token budget per step (prefill chunking)." + (" (default: 8192 for every plan tried)"
                                                                     if searched else "")),
        option("block_size", "--block-size", default=16, show_default=True, help="KV-cache block in tokens."),
        option("memory_utilization", "--memory-utilization", default=0.92, show_default=True,
               help="Fraction of HBM the engine may use."),
        option("seed", "--seed", default=0, show_default=True, help="Random seed of the workload's draws."),
        option("sla_ttft_s", "--sla-ttft", default=None,
               help="Goodput: a request counts if its TTFT is at most this many seconds. mlperf/size: the p99 "
                    "TTFT limit of a Server/Interactive run (replaces the scenario's)."),
        option("sla_tpot_s", "--sla-tpot", default=None,
               help="Goodput: a request counts if its TPOT is at most this many seconds. mlperf/size: the p99 "
                    "TPOT limit (replaces the scenario's)."),
        option("scaleout_gbps", "--scaleout-gbps", default=None, help="NIC speed per GPU in Gb/s."),
        option("oversubscription", "--oversubscription", default=None, help="Leaf uplink oversubscription."),
        option("kv_transfer_gb_per_s", "--kv-transfer-gb-per-s", default=None,
               help="Disaggregated: each engine's KV hand-off link in GB/s, shared by the hand-offs it sends or "
                    "receives at once (default: flows on the topology, NVLink within a server, NICs across)."),
        option("set_values", "--set",
               help="gpu.FIELD=V, gpu.peak_tflops.fp4=V or topology.PARAM=V (repeatable)."),
        option("fail", "--fail",
               help="Take a GPU or link down at simulated time T: gpu:ID@T or link:A-B@T (repeatable; names: "
                    "infersim catalog topology)."),
        option("interval", "--interval", default=None,
               help="Prediction interval level for output_tokens_per_s_low/high (default 0.8; needs a fitted "
                    "profile)."),
    ], func)


DURATION_NOTE = "MLPerf Server and Interactive runs last at least 600 s"


def workload_options(func):
    return apply([
        option("rate", "--rate", default=None, help="Open loop: requests per second."),
        option("arrival", "--arrival", default="poisson", show_default=True, type=RegistryChoice(arrival_names),
               help="Arrival process of an open loop (infersim catalog extensions)."),
        option("cv", "--cv", default=1.0, show_default=True, help="Gamma arrivals: coefficient of variation of the gaps."),
        option("duration_s", "--duration", default=None,
               help=f"Seconds of arrivals ({DURATION_NOTE}: infersim mlperf)."),
        option("requests", "--requests", default=None, help="Number of requests."),
        option("offline", "--offline", help="All requests queued at t=0."),
        option("users", "--users", default=None, help="Closed loop: concurrent users."),
        option("think_time_s", "--think-time", default=0.0, show_default=True,
               help="Closed loop: seconds a user waits between a response and the next request."),
        option("input_tokens", "--input-tokens", default=None,
               help="N, uniform:LO,HI, lognormal:MEAN,CV[,LO,HI] or file:PATH (default: the model's MLPerf "
                    "dataset; a model without one: 1024 in, 256 out)."),
        option("output_tokens", "--output-tokens", default=None, help="As --input-tokens."),
        option("workload", "--workload", default=None, help="Workload TOML file."),
        option("trace", "--trace", default=None, help="Trace CSV/JSONL to replay."),
        option("stream_metrics", "--stream-metrics/--keep-requests", default=None, is_flag=True,
               help="Stream metrics in bounded memory (histogram percentiles, no per-request CSV; requests "
                    "drawn in chunks, another draw of the same workload than --keep-requests, each deterministic "
                    "for its --seed); default: on above 2,000,000 open-loop requests."),
        option("max_time_s", "--max-time", default=None,
               help="Stop the simulation at this simulated second; unfinished requests count as dropped."),
    ], func)


def output_options(func=None, *, out_help: str = "Write the result here: .json.", json_help="Print one JSON object.",
                   quiet: bool = True):
    """--json, --out and (for long work) --quiet."""
    if func is None:
        return functools.partial(output_options, out_help=out_help, json_help=json_help, quiet=quiet)
    return apply([
        click.option("--json", "as_json", is_flag=True, help=json_help),
        option("out", "--out", default=None, help=out_help),
        *([click.option("--quiet", is_flag=True, help="No progress line on stderr.")] if quiet else []),
    ], func)


# ---- fields to flags ----------------------------------------------------------------------------------
# The core names a field in its messages as the Python API spells it, in backticks ("`gpus`: 0 is out of
# range [1, 100000]"); this CLI names it by its flag ("--gpus: ..."). An option's name is its field, so the
# commands' options give the map; FIELD_FLAGS adds what they cannot tell.
FIELD_FLAGS = {"engine": "--emit",   # simulator.launch's `engine`
               "kind": "--kind"}     # plot_rows(kind=); import-runs' kind (--format) is named here, not in the core
FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


def _long_flag(param: click.Parameter) -> str:
    """An option's longest --flag (its first name when it has none; an argument's name)."""
    flags = [o for o in param.opts if o.startswith("--")]
    return max(flags, key=len) if flags else param.opts[0] if param.opts else param.name


def _commands(group: click.Group):
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from _commands(command)


def derived_flags() -> tuple[dict, set]:
    """Field -> --flag from every command's options, and the fields that name different flags in
    different commands (each must be settled in FIELD_FLAGS)."""
    flags, clashes = {}, set()
    for command in (cli, *_commands(cli)):
        for param in command.params:
            if isinstance(param, click.Option) and param.name:
                if flags.setdefault(param.name, _long_flag(param)) != _long_flag(param):
                    clashes.add(param.name)
    return flags, clashes


@functools.cache
def field_flags() -> dict:
    flags, clashes = derived_flags()
    return {**{name: flag for name, flag in flags.items() if name not in clashes}, **FIELD_FLAGS}


def flag_message(text: str) -> str:
    """A core message as the CLI says it: each backticked field becomes its flag ("`gpus`: 0 is out of
    range" -> "--gpus: 0 is out of range"), a field no option sets loses its backticks; nothing else changes."""
    flags = field_flags()
    return FIELD.sub(lambda match: flags.get(match[1], match[1]), text)


def flag_values(value):
    """`flag_message` on every text of a result document (dicts and lists walked, other values kept)."""
    if isinstance(value, str):
        return flag_message(value)
    if isinstance(value, dict):
        return {key: flag_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(flag_values(item) for item in value)
    return value


# ---- run files ----------------------------------------------------------------------------------------

def run_file(func):
    """Give a command run files: `--config FILE` (a run file, or a JSON result, read for the options not
    given on the command line), `--print-config [PATH]` (write the resolved run file and stop), and the
    resolved options embedded in its JSON results (`emit` / `stamp`). Every option of the command must be
    a run-file field (`simulator.runfile.FIELDS`) or an output-only option (--json, --quiet)."""
    for param in getattr(func, "__click_params__", []):
        if param.name not in runfile.FIELDS and param.name not in OUTPUT_ONLY:
            raise TypeError(f"{func.__name__}: option {param.name!r} is not a run-file field; add it to "
                            f"simulator.runfile.FIELDS")

    @functools.wraps(func)
    def wrapper(config, print_config, **options):
        ctx = click.get_current_context()
        command = ctx.command.name
        params = {p.name: p for p in ctx.command.params if p.name in runfile.FIELDS}
        from_file = {}
        if config:
            given = {name for name in params
                     if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
            replaced = runfile.replaced_by_flags(given)
            for name, value in runfile.read(config, command, params).items():
                if name in given or name in replaced:
                    continue                                  # the command line wins
                label = f"{config}: [{runfile.FIELDS[name].table}] {name}"
                try:
                    options[name] = params[name].type_cast_value(ctx, value)
                except click.BadParameter as exc:
                    raise ConfigError(f"{label}: {exc.message}") from None
                from_file[_long_flag(params[name])] = from_file[name] = label
        if "out" in from_file and options.get("out") and Path(options["out"]).resolve() == Path(config).resolve():
            # a result records where it was written: re-run, that is the file being read
            options["out"] = None
            warn([f"{from_file['out']}: not written over (it is the file --config reads); give --out to keep "
                  "the re-run"])
        resolved = runfile.resolve_paths({name: options[name] for name in params}, Path.cwd())
        document = runfile.tables(resolved, command)
        if print_config is not None:
            write_run_file(document, print_config)
            return None
        options.update(resolved)
        ctx.meta[RUN_KEY] = document
        try:
            return func(**options)
        except ConfigError as exc:
            # a value that came from the file is named as the file says it, not by the flag it replaces
            message = str(exc)
            named = message.partition(":")[0].split(" ", 1)[0]           # "`gpus`" (core) or "--gpus" (CLI)
            label = from_file.get(named.strip("`"))
            if label is not None and ":" in message:
                raise exc.__class__(label + message[len(named):]) from None
            raise

    wrapper = click.option("--print-config", "print_config", is_flag=False, flag_value="-", default=None,
                           metavar="[PATH]", help="Write the resolved run file (to PATH, or stdout) and stop; "
                                                  "--config PATH re-runs it.")(wrapper)
    wrapper = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                           help="Run file (TOML with [cluster] [plan] [workload] [sla] [whatif] [output], or a "
                                "JSON result); options given here override it.")(wrapper)
    return wrapper


def write_run_file(document: dict, where: str) -> None:
    command = document.get("command", "")
    header = (f"infersim {runfile.version()} run file: `infersim {command} --config THIS_FILE` re-runs it;\n"
              f"options given beside --config override its values.")
    if where == "-":
        click.echo(runfile.dumps(document, header), nl=False)
        return
    target = claim_output(where, "--print-config", suffixes=(".toml",))
    folder = target.path.parent
    relative = runfile.tables(runfile.relative_paths(runfile.flatten(document), folder), command)
    target.write(runfile.dumps(relative, header))
    click.echo(f"run file written to {where}", err=True)


def stamp(document: dict) -> dict:
    """A result document as the CLI writes it: its texts name flags (`flag_values`), and it carries the
    run it came from: "config" (run-file form) and "infersim_version"."""
    document = flag_values(document)
    ctx = click.get_current_context(silent=True)
    config = ctx.meta.get(RUN_KEY) if ctx is not None else None
    if config is None:
        return document
    return {**document, "config": config, "infersim_version": runfile.version()}


def _refuse_overwriting_inputs(out: str, flag: str) -> None:
    """An output may not replace a file the command reads: any of its arguments or options naming an
    existing file (measurement CSVs, a prior profile, a trace), or an existing file inside a folder given.
    A run file (`--config`) is the exception: it is read whole first, and re-running a JSON result
    rewrites that result, as its own [output] says."""
    written = Path(out)
    try:
        if not written.exists():
            return
        written = written.resolve()
        context = click.get_current_context(silent=True)
        if context is None:
            return
        own = {p.name for p in context.command.params if flag in getattr(p, "opts", ())} | {"config"}
        table_prefix = f"{Empirical.flag_prefix}:"        # a length flag's table: --input-tokens file:PATH
        for key, value in context.params.items():
            if key in own:
                continue
            for name in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(name, str) and name.startswith(table_prefix):
                    name = name[len(table_prefix):]
                if not isinstance(name, str) or not name or not Path(name).exists():
                    continue
                source = Path(name).resolve()
                if written == source or (source.is_dir() and source in written.parents):
                    raise ConfigError(f"{flag} {out}: would overwrite the input {name}; write elsewhere")
    except (OSError, RuntimeError):       # a path that cannot be resolved (a symlink loop) is not an input
        return


def claim_output(out: str | None, flag: str = "--out", suffixes: tuple = ()) -> PendingOutput | None:
    """Claim the output file before the work it records: its folder is created and proven writable now,
    not after the computation (see output.PendingOutput)."""
    if out is None:
        return None
    if not out.strip():
        raise ConfigError(f"{flag}: an empty path; give a file name")
    _refuse_overwriting_inputs(out, flag)
    if suffixes and not out.lower().endswith(suffixes):
        raise ConfigError(f"{flag}: {out!r} must end in {' or '.join(suffixes)}")
    try:
        return PendingOutput(out)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def warn(warnings) -> None:
    for text in warnings or ():
        click.echo(f"infersim: warning: {flag_message(text)}", err=True)


def warn_unfitted(result) -> None:
    """One warning per measured row a fit left out (marked invalid, or impossible to simulate). A field
    the reason names is the row's column, not a flag: its backticks are dropped, not made a flag."""
    from simulator.row_models import RowSpec
    for row, reason in result.skipped:
        click.echo(f"infersim: warning: row {RowSpec.of(row).label} ({row.submitter or 'no submitter'}) left out "
                   f"of the fit: {FIELD.sub(lambda match: match[1], reason)}", err=True)


def emit(document: dict, as_json: bool, target: PendingOutput | None = None, arrays=None, dropped=None,
         warnings=None, human: dict | None = None) -> None:
    """Print a result (JSON or key: value lines) and write --out (.json document or .csv per request);
    JSON carries the run it came from (`stamp`); `human`: the document the key: value lines show, when
    not the whole (a launch section prints as commands instead). The document's warnings (or `warnings`)
    also go to stderr, one line each."""
    stamped = stamp(document)
    if target is not None:
        if target.path.suffix == ".csv":
            if arrays is None:
                raise ConfigError("--out: a .csv file needs per-request data; use .json here")
            target.write(per_request_csv(arrays, dropped))
        else:
            target.write(to_json(stamped) + "\n")
    click.echo(to_json(stamped) if as_json else format_summary(flag_values(human or document)))
    warn(document.get("warnings") if warnings is None else warnings)


def emit_option(func):
    """--emit ENGINE: the chosen plan as that engine's launch commands (simulator/launch); choices from its registry."""
    from simulator.launch import EMITTERS
    return option("emit", "--emit", default=None, type=click.Choice(list(EMITTERS)),
                        help="Also print the chosen plan as this engine's launch command(s), with the argument names of "
                             "the engine version in simulator/catalog/engine_args.toml (JSON: a launch section).")(func)


def print_launch(launch, as_json: bool) -> None:
    """A launch's commands after a human-readable result (JSON carries them in its launch section)."""
    if launch is not None and not as_json:
        click.echo(launch.text())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx, debug):
    """infersim: predict LLM serving throughput, latency and cost on GPU clusters."""
    ctx.ensure_object(dict)["debug"] = debug


cli.command_class = GroupedCommand     # every command's --help groups its options by run-file table


@cli.command()
@run_file
@cluster_options
@workload_options
@output_options(out_help="Write the result: .json (document) or .csv (one row per request).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Processes for this one simulation: engines that never interact (round-robin routing, no "
                   "failures, no disaggregation) run in parallel groups; the result is the same as with 1.")
def simulate(as_json, out, quiet, jobs, **options):
    """Simulate one cluster serving one workload.

    Requests that do not finish are counted by cause in requests_dropped_by_reason (and named per request
    in the drop_reason column of a .csv --out). Exit status: 0 when the run completed; 2 for bad input;
    3 when injected failures (--fail) took down every engine able to serve while requests remained: the
    result is still printed and written, with run_status "failed" and no throughput or cost per token."""
    target = claim_output(out, suffixes=(".json", ".csv"))
    from simulator.api import simulate as api_simulate
    with Progress("simulate", quiet=quiet) as progress:
        result = api_simulate(jobs=jobs, **options, progress=progress)
    if target is not None and target.path.suffix == ".csv" and result.engine_result.arrays is None:
        raise ConfigError("--out: a per-request .csv is not kept when metrics are streamed; add --keep-requests "
                          "or write .json")
    document = result.to_dict()
    failed = result.summary.get("run_status") == "failed"
    # a failed run's first warning is its failure: said once, as the last line, with exit 3
    emit(document, as_json, target, result.engine_result.arrays, result.engine_result.dropped,
         warnings=document["warnings"][1:] if failed else None)
    if failed:
        exit_failed(result.warnings[0])


def exit_failed(failure: str) -> None:
    """A run whose injected failures took down every engine able to serve: said once, last, with exit 3."""
    click.echo(f"infersim: run failed: {failure}", err=True)
    sys.exit(3)


def scenario_options(func):
    return apply([
        option("scenario", "--scenario", default=DEFAULT_KIND, show_default=True,
               type=click.Choice(KINDS, case_sensitive=False)),
        option("duration_s", "--duration", default=None,
               help=f"Server/Interactive: seconds of Poisson arrivals per search run (default 600, as "
                    f"{DURATION_NOTE}; longer when 8 request lifetimes need it). Shorter runs are quicker "
                    f"but not valid MLPerf runs, and never shorter than 8 request lifetimes."),
        option("queries", "--queries", default=None,
               help="Offline: queries per run (default: enough for 600 s and 8 mean request lifetimes at "
                    "the estimated rate, at least the dataset once; fewer than the dataset, or a run under "
                    "600 s, is not a valid MLPerf run). "
                    "Server/Interactive: at least this many, and never less than rate x --duration."),
        option("input_tokens", "--input-tokens", default=None,
               help="Your workload's prompt tokens instead of the MLPerf dataset's: N, uniform:LO,HI, "
                    "lognormal:MEAN,CV[,LO,HI] or file:PATH (a model with no MLPerf scenario needs both lengths)."),
        option("output_tokens", "--output-tokens", default=None, help="Your workload's output tokens, as --input-tokens."),
    ], func)


@cli.command()
@run_file
@cluster_options(searched=True)
@scenario_options
@option("rate", "--rate", default=None,
        help="Server/Interactive: score this Poisson rate (requests/s) instead of searching for the highest.")
@output_options(out_help="Also write the JSON document here.")
@emit_option
def mlperf(as_json, out, quiet, **options):
    """Score a cluster in an MLPerf scenario (Offline throughput; Server/Interactive: the highest Poisson
    rate meeting the p99 TTFT/TPOT limits), choosing the best plan that fits unless --tp etc. pin it.

    Exit status as simulate's: 3 when injected failures (--fail) took down every engine able to serve in the
    scored run (the result is printed and written, with no throughput)."""
    if out and out.lower().endswith(".csv"):
        raise ConfigError("--out: mlperf writes its JSON document; a .csv holds per-request rows (simulate --out)")
    target = claim_output(out, suffixes=(".json",))
    from simulator.launch import check_for_options, launch_for_options, with_launch
    engine = options.pop("emit")
    check_for_options(engine, options)
    from simulator.mlperf import mlperf as run_mlperf
    with Progress("mlperf", quiet=quiet) as progress:
        result = run_mlperf(**options, progress=progress)
    document = result.to_dict()
    launch = launch_for_options(engine, document["plan"], options)
    failed = result.run.summary.get("run_status") == "failed"
    # as simulate's: the failure, the scored run's first warning, is said once, as the last line, with exit 3
    emit(with_launch(document, launch), as_json, target, human=document,
         warnings=[w for w in document["warnings"] if w != result.run.warnings[0]] if failed else None)
    print_launch(launch, as_json)
    if failed:
        exit_failed(result.run.warnings[0])


@cli.command()
@run_file
@cluster_options(searched=True, with_gpus=False)
@scenario_options
@option("target_tokens_per_s", "--target-tokens-per-s", default=None,
        help="Output tokens/s the cluster must serve (required, here or in the run file's [sla]).")
@option("compare", "--compare", default=None, help="Comma-separated GPUs to size side by side (replaces --gpu).")
@option("node_gpus", "--node-gpus", default=None, help="GPUs per node (default: the GPU's server size, at most 8).")
@option("confidence", "--confidence", default=None,
        help="Size so the target is reached with this probability under calibration uncertainty (e.g. 0.9).")
@output_options(out_help="Write .json or .csv (one row per GPU).", json_help="Print JSON (a list with --compare).")
@emit_option
def size(as_json, out, quiet, compare, **options):
    """Fewest GPUs (and nodes) reaching an output tokens/s target under a scenario's SLA, with cost."""
    if options.get("target_tokens_per_s") is None:
        raise ConfigError("--target-tokens-per-s: required (the output tokens/s the cluster must serve)")
    target = claim_output(out, suffixes=(".json", ".csv"))
    from simulator.launch import check_for_options, launch_for_options, with_launch
    from simulator.sizing import compare as compare_gpus, size as run_size
    options["scenario"] = options["scenario"].lower()
    names = [name.strip() for name in compare.split(",") if name.strip()] if compare is not None else None
    if compare is not None:
        if not names:
            raise ConfigError("--compare: give GPU names, comma-separated (e.g. b200,mi355x)")
        if click.get_current_context().get_parameter_source("gpu") == ParameterSource.COMMANDLINE:
            raise ConfigError("--gpu: not with --compare, which names the GPUs (add it to the list)")
    engine = options.pop("emit")
    check_for_options(engine, options, names)
    with Progress("size", quiet=quiet) as progress:
        if names is not None:
            options.pop("gpu")
            results = compare_gpus(names, **options, progress=progress)
        else:
            results = [run_size(**options, progress=progress)]
    launches = [launch_for_options(engine, r.run.plan, options) for r in results]
    rows = [r.row() for r in results]
    documents = [stamp(with_launch(r.to_dict(), launch)) for r, launch in zip(results, launches)]
    if target is not None:
        as_csv = target.path.suffix == ".csv"
        target.write(rows_to_csv(rows) if as_csv else to_json(documents) + "\n")
    if as_json:
        click.echo(to_json(documents[0] if not compare else documents))
    elif compare:
        click.echo(format_table(rows, SIZE_COLUMNS))
    else:
        click.echo(format_summary(flag_values(results[0].to_dict())))
    for result, launch in zip(results, launches):
        if compare and launch is not None and not as_json:
            click.echo(f"# gpu: {result.gpu}")
        print_launch(launch, as_json)
    for result in results:
        warn([f"{result.gpu}: {text}" for text in result.warnings] if compare else result.warnings)


SIZE_COLUMNS = ["gpu", "gpus", "nodes", "priced_gpus", "tp", "max_batch_size", "precision", "output_tokens_per_s",
                "ttft_p99_s", "tpot_p99_s", "usd_per_hour", "usd_per_million_tokens", "usd_per_million_tokens_low",
                "usd_per_million_tokens_high", "gpu_energy_j_per_token_upper_bound"]


@cli.command("pareto")
@run_file
@emit_option
@output_options(out_help="Write .json (document) or .csv (one row per point; plot it with infersim plot).")
@click.option("--all", "show_all", is_flag=True, help="Table of every point run, not only the front.")
@option("model", "--model", default="llama3.1-70b", show_default=True, help=MODEL_HELP)
@option("gpu", "--gpu", default="b200,mi355x", show_default=True, help="Catalog GPU names, comma-separated.")
@option("gpus", "--gpus", default=8, show_default=True, help="GPUs of each kind.")
@functools.partial(apply, catalog_options())
@option("input_tokens", "--input-tokens", default="1024", show_default=True,
        help="Prompt tokens: N, uniform:LO,HI, lognormal:MEAN,CV[,LO,HI] or file:PATH.")
@option("output_tokens", "--output-tokens", default="1024", show_default=True, help="Output tokens, as --input-tokens.")
@option("concurrency", "--concurrency", default=None,
        help="Users (closed loop) to try, comma-separated (default: 1, 2, 4, ... up to --max-concurrency "
             "or what the KV cache holds).")
@option("max_concurrency", "--max-concurrency", default=None,
        help=f"Most users tried (default {DEFAULT_MAX_CONCURRENCY}; levels also stop at the users the KV cache "
             "holds at once). Not with --concurrency.")
@option("concurrency_ratio", "--concurrency-ratio", default=None,
        help=f"Ratio between successive user counts (default {DEFAULT_CONCURRENCY_RATIO:g}; 1.25 gives a denser "
             f"front; at least {MIN_CONCURRENCY_RATIO:g}). Not with --concurrency.")
@option("requests_per_user", "--requests-per-user", default=10, show_default=True,
        help="Requests each user sends (InferenceX: num_prompts = 10 x concurrency).")
@option("seed", "--seed", default=0, show_default=True, help="Random seed of the workload's draws.")
@option("batching", "--batching", default="continuous,chunked,disaggregated", show_default=True,
        help="Serving modes searched: continuous, chunked (aggregated), disaggregated (every prefill/decode split; "
             "beyond 16 replicas, 15 spread evenly).")
@option("precision", "--precision", default="auto", show_default=True,
        help="bf16|fp8|fp6|fp4 or weights/activations/kv, or auto (fp4 where the GPU has an fp4 rate, else fp8).")
@option("max_tokens_per_step", "--max-tokens-per-step", default=8192, show_default=True,
        help="Token budget per step (InferenceX runs vLLM with max-num-batched-tokens 8192).")
@option("sla_ttft_s", "--sla-ttft", default=None, help="p99 TTFT limit in seconds (as --sla-tpot).")
@option("sla_tpot_s", "--sla-tpot", default=None,
        help="p99 TPOT limit in seconds: points within the limits are marked meets_sla, and --emit takes the best.")
@click.option("--no-prune", is_flag=True, help="Simulate every candidate (slower; the front is the same).")
def pareto_command(no_prune, show_all, as_json, out, quiet, sla_ttft_s, sla_tpot_s, emit, **options):
    """Front of output tokens/s per GPU against tokens/s per user (InferenceX style) over plans (tp/pp/ep,
    attention-dp, aggregated or disaggregated with each prefill/decode split, 15 of them spread evenly beyond 16
    replicas) and concurrency levels.

    Each point is a closed loop of CONCURRENCY users, each sending its next request when the last
    finishes. Its p99 TTFT and TPOT (and so meets_sla) are over each user's requests after its first: the
    first wave, every user at once at t=0, is a cold start a serving deployment does not see (simulate
    --users counts it, and its p99 TTFT at 1,024 users can be several times larger). Per-user rate (interactivity, output_tokens_per_s_per_user) = 1 / median TPOT, TPOT =
    (latency - TTFT) / (output tokens - 1), InferenceX's median_intvty. Throughput per GPU counts every
    GPU of the cluster; $ per million output tokens from the catalog's price range; tokens per provisioned
    MW count GPU TDP plus the rest of the node's rated power per GPU (see power_counted). Plot the CSV:
    infersim plot F.csv --kind pareto --x output_tokens_per_s_per_user --y output_tokens_per_s_per_gpu
    --color gpu -o front.png"""
    target = claim_output(out, suffixes=(".json", ".csv"))
    from simulator.launch import check_for_options, launch_for_options
    from simulator.pareto import gpu_names, pareto
    names = gpu_names(options["gpu"])
    check_for_options(emit, options, names)
    with Progress("pareto", quiet=quiet) as progress:
        result = pareto(prune=not no_prune, sla_ttft_s=sla_ttft_s, sla_tpot_s=sla_tpot_s, progress=progress,
                        **options)
    chosen = {name: result.best(name) for name in names} if emit else {}
    launches = {name: launch_for_options(emit, point.plan, options) for name, point in chosen.items() if point}
    document = result.to_dict()
    if launches:
        document["launch"] = {name: {"point": chosen[name].plan_label, "concurrency": chosen[name].concurrency,
                                     **launch.to_dict()} for name, launch in launches.items()}
    stamped = stamp(document)
    if target is not None:
        target.write(rows_to_csv(result.rows()) if target.path.suffix.lower() == ".csv" else to_json(stamped) + "\n")
    if as_json:
        click.echo(to_json(stamped))
    else:
        shown = [p.row() for p in result.points if show_all or p.on_front]
        shown.sort(key=lambda row: (row["gpu"], -row["output_tokens_per_s_per_user"]))
        click.echo(format_table(shown, PARETO_COLUMNS + (["meets_sla"] if result.sla else [])))
        click.echo(format_summary({k: stamped[k] for k in ("per_user_rate", "power_counted")}))
        for name, info in result.search["per_gpu"].items():
            click.echo(f"search {name}: {info['candidates']} candidates over {info['modes']} serving modes, "
                       f"{info['simulated']} simulated, {info['pruned']} pruned by the closed-form bound, "
                       f"wall_s {format_number(info['wall_s'])}")
        for name, launch in launches.items():
            click.echo(f"# gpu: {name}, point: {chosen[name].plan_label} at {chosen[name].concurrency} users"
                       + (" (the most output tokens/s per GPU within the SLA)" if result.sla else
                          " (the most output tokens/s per GPU: give --sla-ttft/--sla-tpot to choose for latency)"))
            print_launch(launch, as_json)
    for name in names:
        if emit and chosen.get(name) is None and name in result.search["per_gpu"]:
            warn([f"--emit: no {name} point meets the SLA ({result.sla}); nothing emitted for it"])
    warn(result.warnings)


PARETO_COLUMNS = ["gpu", "plan_label", "concurrency", "output_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                  "output_tokens_per_s_per_user", "ttft_p99_s", "tpot_p99_s", "usd_per_million_tokens",
                  "output_tokens_per_s_per_provisioned_mw"]


FIT_SEED_HELP = ("Random seed of the requests the rows' simulated runs draw (the shipped profile: 0); another "
                 "seed shows how far the fit moves with that sampling.")


@cli.command()
@click.argument("measurements", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--prior-profile", type=click.Path(dir_okay=False), default=None,
              help="Profile whose [default] is the prior (default: the built-in defaults).")
@option("gpu_catalog", "--catalog", help="Extra GPU catalog TOML the rows may name.")
@option("model_catalog", "--model-catalog", help="Extra model catalog TOML the rows may name.")
@option("interval", "--interval", default=None, help="Interval level stored in the profile (default 0.8).")
@option("seed", "--seed", default=0, show_default=True, help=FIT_SEED_HELP)
@output_options(out_help="Write the fitted profile TOML here.", json_help="Print the per-row report as JSON.")
def calibrate(measurements, out, prior_profile, interval, seed, as_json, gpu_catalog, model_catalog, quiet):
    """Fit efficiency parameters to measured rows (CSV; see simulator/measurements.py for the columns):
    per-row prediction, error and 80% interval, and a profile any command takes with --profile. How well
    the fit predicts what it did not see: `infersim validate`."""
    target = claim_output(out, suffixes=(".toml",))
    from simulator.calibrate import calibrate_files, fitted_alone, stack_note
    from simulator.intervals import DEFAULT_INTERVAL, interval_z
    interval = DEFAULT_INTERVAL if interval is None else interval
    interval_z(interval)
    header = ("Efficiency profile fitted by infersim calibrate from: " + ", ".join(measurements)
              + (f" (--seed {seed})" if seed else ""))
    with Progress("calibrate", quiet=quiet) as progress:
        result, text, rows = calibrate_files(list(measurements), prior_profile=prior_profile, header=header,
                                             interval=interval, progress=progress,
                                             gpu_catalog=gpu_catalog, model_catalog=model_catalog, seed=seed)
    warn_unfitted(result)
    notes = [fitted_alone(list(measurements)), stack_note(list(measurements), gpu_catalog)]
    warn([note for note in notes if note] or None)
    if target is not None:
        target.write(text)
    if as_json:
        click.echo(to_json({"rows": rows, "residual_log_rms": result.residual_log_rms,
                            "model_log_sigma": result.model_log_sigma, "wall_s": result.wall_s}))
    else:
        click.echo(format_table(rows, [c for c in rows[0] if c not in ("source", "submitter")]))
        click.echo(f"residual_log_rms: {result.residual_log_rms:.4f}; fitted in {result.wall_s:.0f} s"
                   + (f"; profile written to {out}" if out else ""))


@cli.command("validate")
@click.argument("measurements", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--split", "splits", multiple=True, type=click.Choice(["gpu", "round", "model"]),
              help="Only these splits (repeatable; default: all three).")
@click.option("--prior-profile", type=click.Path(dir_okay=False), default=None,
              help="Profile whose [default] is the prior (default: the built-in defaults).")
@option("gpu_catalog", "--catalog", help="Extra GPU catalog TOML the rows may name.")
@option("model_catalog", "--model-catalog", help="Extra model catalog TOML the rows may name.")
@option("seed", "--seed", default=0, show_default=True, help=FIT_SEED_HELP)
@output_options(out_help="Write the markdown report here (the shipped rows' report lives in docs/validation.md).",
                json_help="Print summaries, held-out rows and what they pin as JSON.")
def validate_command(measurements, splits, prior_profile, seed, out, as_json, quiet, gpu_catalog, model_catalog):
    """How well calibration predicts rows it never saw: leave one GPU out, leave one round out (fit v4.1,
    predict v5.1), leave one model out. Default rows: the shipped MLPerf results."""
    target = claim_output(out, suffixes=(".md",))
    from simulator.measurements import SHIPPED_MEASUREMENTS, load_measurement_files
    from simulator.calibrate import prior_from
    from simulator.validate import SHIPPED_ROWS, SPLITS, breakdown, markdown, pinned_records, validate
    paths = list(measurements) or [str(SHIPPED_MEASUREMENTS)]
    rows = load_measurement_files(paths, gpu_catalog=gpu_catalog, model_catalog=model_catalog)
    with Progress("validate", quiet=quiet) as progress:
        results = validate(rows, prior_from(prior_profile), splits=splits or SPLITS, progress=progress, seed=seed,
                           gpu_catalog=gpu_catalog, model_catalog=model_catalog)
    warn_unfitted(results["fit"])
    if target is not None:
        command = " ".join(["infersim validate", *measurements] + ([f"--seed {seed}"] if seed else []))
        target.write(markdown(results, command, ("rows of " + ", ".join(measurements)) if measurements
                              else SHIPPED_ROWS) + "\n")
    summaries = {split: results[split]["summary"] for split in (splits or SPLITS)}
    if as_json:
        click.echo(to_json({"summaries": summaries, "node_ratios": results.get("gpu", {}).get("node_ratios", []),
                            "held_out": [{"split": h.split, "left_out": h.left_out, "row": h.spec.label,
                                          "round": h.row.round, "submitter": h.row.submitter,
                                          f"measured_{h.row.fitted_on}": h.row.fitted_tokens_per_s,
                                          f"predicted_{h.row.fitted_on}": h.predicted, "error_pct": 100 * h.error,
                                          "inside_interval": h.inside}
                                         for split in (splits or SPLITS) for h in results[split]["held_out"]],
                            "breakdown": breakdown(results), "pinned": pinned_records(results)}))
    else:
        click.echo(format_table([{"split": k, **v} for k, v in summaries.items()],
                                ["split", "rows", "median_error_pct", "median_abs_error_pct", "p90_abs_error_pct",
                                 "interval_coverage_pct"]))
        if out:
            click.echo(f"report written to {out}")


@cli.command("import-runs")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "kind", required=True, type=RegistryChoice(import_format_names),
              help="What the files are (infersim catalog extensions).")
@click.option("--strict", is_flag=True, help="mlperf: results that do not map to the catalogs are an error.")
@option("model", "--model", default=None, help="vllm: the model served (catalog name or config.json).")
@option("gpu", "--gpu", default=None, help="vllm: the GPU the run used.")
@option("gpus", "--gpus", default=None, help="vllm: GPUs the run used.")
@option("tp", "--tp", default=None, help="vllm: tensor-parallel degree.")
@option("ep", "--ep", default=None, help="vllm: expert-parallel degree.")
@option("precision", "--precision", default="fp8", show_default=True, help="vllm: deployment precision.")
@option("stack", "--stack", default="vllm", show_default=True, help="vllm: software stack label.")
@option("out", "--out", default=None, help="Write the rows as measurement CSV.")
def import_runs(files, kind, out, **options):
    """Turn measured runs into calibration rows: MLPerf results (submission trees with
    mlperf_log_summary.txt and systems/*.json, or summary_results.json, or folders of them), vLLM
    benchmark_serving result JSON, InferenceMAX result JSON (formats: infersim catalog extensions)."""
    from simulator.importers import IMPORT_FORMATS
    ctx = click.get_current_context()
    flags = {p.name: _long_flag(p) for p in ctx.command.params}
    reader = IMPORT_FORMATS[kind]()
    for name in options:
        if name not in reader.options and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            reads = ", ".join(flags[n] for n in reader.options) or "no options"
            raise ConfigError(f"{flags[name]}: --format {kind} does not read it (it reads {reads})")
    for name in reader.required:
        if options.get(name) is None:
            raise ConfigError(f"{flags[name]}: required with --format {kind} (the result file does not say)")
    target = claim_output(out, suffixes=(".csv",))
    from simulator.measurements import measurements_csv
    rows, note = reader.read(list(files), **{k: v for k, v in options.items() if k in reader.options})
    if note:
        click.echo(f"infersim: {flag_message(note)}", err=True)
    text = measurements_csv(rows)
    if target is not None:
        target.write(text)
    click.echo(text, nl=False)


@cli.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Results CSV (rows appended as points finish).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Local worker processes.")
@click.option("--scheduler", default=None,
              help="Dask scheduler address (tcp://host:8786) instead of local processes. Use only a cluster you "
                   "trust: Dask pickles the points sent and the results returned.")
@click.option("--resume", is_flag=True,
              help="Skip points already in --out (after an interrupted sweep); refused if they were computed "
                   "from another version, catalog or profile.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep_command(spec, out, jobs, scheduler, resume, quiet):
    """Run a grid of points from a sweep TOML (see simulator/sweep.py) on local processes or Dask. Exit
    status 2 when every point failed (their rows in --out say why)."""
    from simulator.sweep import load_sweep, progress_bar, run_sweep
    if not out.lower().endswith(".csv"):
        raise ConfigError(f"--out: {excerpt(out, 60)} must end in .csv (a sweep appends CSV rows as points finish)")
    command, points = load_sweep(spec)
    rows = run_sweep(command, points, out, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=None if quiet else progress_bar())
    failed = [r for r in rows if r["status"] != "ok"]
    if rows and len(failed) == len(rows):
        # nothing was computed: as much bad input as a typo on the command line (rows in --out say why);
        # the first row's error is quoted in the sweep file's names, as the rows hold it, not as flags
        first = failed[0]["error"].partition(": ")[2] or failed[0]["error"]
        raise ConfigError(f"sweep: every point failed ({len(rows)} of {len(rows)}, rows in {out}); the first: "
                          f"{first.replace('`', '')}")
    click.echo(f"{len(rows)} points run ({len(failed)} failed, {len(points) - len(rows)} already in {out}); "
               f"rows in {out}")
    if failed:      # said here, not only in the rows: the first failure, in the sweep file's names
        first = failed[0]["error"].partition(": ")[2] or failed[0]["error"]
        warn([f"{len(failed)} of {len(rows)} points failed; the first (point_id {failed[0]['point_id']}): "
              f"{first.replace('`', '')}"])


@cli.command("plot")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--x", "x_column", required=True, help="Column for the x axis (e.g. nodes).")
@click.option("--y", "y_column", required=True, help="Column for the y axis (e.g. output_tokens_per_s).")
@click.option("--color", default=None, help="Column whose values become separate curves (e.g. gpu).")
@click.option("--kind", default="line", show_default=True, type=click.Choice(["line", "scatter", "pareto"]))
@click.option("--logx", is_flag=True)
@click.option("--logy", is_flag=True)
@click.option("--title", default=None)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output .png or .svg.")
def plot_command(results, x_column, y_column, color, kind, logx, logy, title, out):
    """Plot a results CSV (a sweep's, or any CSV with the columns named): scaling curves, Pareto fronts,
    cost per million tokens."""
    target = claim_output(out, "-o", suffixes=(".png", ".svg"))
    from simulator.output import read_csv_rows
    from simulator.plot import plot_rows
    from simulator.sweep import expand_extra
    if results.lower().endswith(".json"):
        raise ConfigError(f"{results}: plot reads a results CSV (sweep --out, size or pareto --out F.csv), not JSON")
    rows = [expand_extra(row) for row in read_csv_rows(results)]
    if not rows:
        raise ConfigError(f"{results}: no rows (a header line and at least one row of values)")
    path, left_out = plot_rows(rows, x_column, y_column, target, color=color, kind=kind, title=title, logx=logx,
                               logy=logy)
    if left_out:
        warn([f"{results}: {left_out} row(s) left out: {x_column} or {y_column} is not a finite number"])
    click.echo(f"wrote {path}")


@cli.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output .html file.")
def report_command(results, out):
    """One self-contained HTML page (works offline) from results: simulate/mlperf/size/pareto JSON and sweep
    or size CSVs, each file's kind told from its content. Scaling curve, Pareto front, cost table,
    intervals and each run's configuration."""
    target = claim_output(out, "-o", suffixes=(".html", ".htm"))
    from simulator.report import build_report
    target.write(build_report(list(results)))
    click.echo(f"wrote {out}")


@cli.group()
def catalog():
    """What infersim knows: GPUs, models, scenarios, topologies (and one topology's element names), and
    the entries of every extension point."""


@catalog.command("gpus")
@option("gpu_catalog", "--catalog", help="Extra GPU catalog TOML (adds or overrides).")
@click.option("--json", "as_json", is_flag=True)
def catalog_gpus(gpu_catalog, as_json):
    """GPUs with their datasheet figures (dense peaks), prices and sources."""
    from simulator.hardware import load_gpus
    rows = []
    for gpu in load_gpus(gpu_catalog).values():
        rows.append({"name": gpu.name, "vendor": gpu.vendor, "hbm_gb": gpu.hbm_gb, "hbm_tb_per_s": gpu.hbm_tb_per_s,
                     **{f"{d}_tflops": gpu.peak_tflops.get(d) for d in ("bf16", "fp8", "fp6", "fp4")},
                     "scaleup": gpu.scaleup, "scaleup_gb_per_s": gpu.scaleup_gb_per_s, "power_w": gpu.power_w,
                     "usd_per_gpu_hour_low": gpu.usd_per_gpu_hour[0], "usd_per_gpu_hour_high": gpu.usd_per_gpu_hour[1],
                     "source": gpu.source})
    show_rows(rows, as_json, notes="source")


@catalog.command("models")
@option("model_catalog", "--model-catalog", help="Extra model catalog TOML.")
@option("model", "--model", default=None,
        help="One model, a catalog name or a config.json: what infersim reads from it.")
@click.option("--json", "as_json", is_flag=True)
def catalog_models(model_catalog, model, as_json):
    """Models with derived sizes (parameters, KV bytes per token, MoE layout) and sources."""
    from simulator.models import get_model, load_models
    models = [get_model(model, model_catalog)] if model is not None else load_models(model_catalog).values()
    rows = [{"name": m.name, "params_b": m.total_params / 1e9, "active_params_b": m.active_params_per_token / 1e9,
             "layers": m.layers, "hidden": m.hidden, "experts": m.experts, "active_experts": m.active_experts,
             "shared_experts": m.shared_experts, "moe_layers": m.moe_layers, "attention": m.attention,
             "sliding_window": m.sliding_window, "kv_bytes_per_token_fp8": m.kv_bytes_per_token("fp8"),
             "source": m.source}
            for m in models]
    show_rows(rows, as_json, notes="source")


@catalog.command("topologies")
@click.option("--json", "as_json", is_flag=True)
def catalog_topologies(as_json):
    """Built-in topologies (parameters marked 'from GPU' come from the GPU's catalog entry); one
    topology's GPU and link names: infersim catalog topology NAME."""
    from topologies import describe_topologies
    show_rows(describe_topologies(), as_json, exclude=("description",))


@catalog.command("topology")
@click.argument("name", default="auto")
@option("gpu", "--gpu", default="mi355x", show_default=True, help="Catalog GPU (its servers and NICs fill the gaps).")
@option("gpus", "--gpus", default=8, show_default=True, help="GPUs in the cluster.")
@option("gpu_catalog", "--catalog", help="Extra GPU catalog TOML.")
@click.option("--json", "as_json", is_flag=True)
def catalog_topology(name, gpu, gpus, gpu_catalog, as_json):
    """The GPUs, NICs, switches and links of topology NAME (catalog name or TOML file; default: the GPU's
    own) for --gpus GPUs, with what --fail calls each GPU and link."""
    from simulator.hardware import get_gpu
    from simulator.plan import MAX_GPUS
    from simulator.errors import require_number
    from topologies import load_topology
    from topologies.registry import describe_graph
    require_number("--gpus", gpus, low=1, high=MAX_GPUS, integer=True)
    nodes, links = describe_graph(load_topology(name, get_gpu(gpu, gpu_catalog), gpus), gpus)
    if as_json:
        click.echo(to_json({"topology": name, "gpu": gpu, "gpus": gpus, "nodes": nodes, "links": links}))
        return
    click.echo(f"{name} for {gpus} x {gpu}: {len(nodes)} nodes, {len(links)} links")
    click.echo(format_table(nodes))
    click.echo("")
    click.echo(format_table(links))


@catalog.command("scenarios")
@click.option("--json", "as_json", is_flag=True)
def catalog_scenarios(as_json):
    """MLPerf scenarios with their latency limits and dataset lengths."""
    from workloads import list_scenarios
    show_rows([s.describe() for s in list_scenarios()], as_json, exclude=("dataset",))


@catalog.command("extensions")
@click.option("--json", "as_json", is_flag=True)
def catalog_extensions(as_json):
    """Every extension point (batching policies, routers, arrival processes, length distributions,
    topology builders, import formats) and what is registered at each."""
    from simulator.extensions import extension_points
    show_rows(extension_points(), as_json, exclude=("registry",))


def show_rows(rows, as_json, exclude=(), notes: str | None = None):
    """A catalog as JSON or a table; a long text column (`notes`, e.g. source) becomes numbered notes
    printed under the table, each text once."""
    if as_json:
        click.echo(to_json(rows))
        return
    columns = [c for c in rows[0] if c not in exclude] if rows else []
    texts = {}
    if notes is not None:
        for row in rows:
            texts.setdefault(row.get(notes) or "", len(texts) + 1)
        rows = [{**row, notes: f"[{texts[row.get(notes) or '']}]"} for row in rows]
    click.echo(format_table(rows, columns))
    if texts:
        click.echo(f"\n{notes}s:")
        for text, number in texts.items():
            click.echo(f"  [{number}] {text}")


# click 8.2+ raises this for a group given no command (8.1 printed the help and exited 0 itself)
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning (matplotlib's missing glyph, ...) as one line like infersim's own, not the file,
    line and source the default format prints."""
    text = " ".join(str(message).split())
    click.echo(f"infersim: warning: {category.__name__}: {text[:300]}", err=True)


def main(argv=None) -> None:
    """Entry point: one-line errors with exit code 2 for bad input; tracebacks only with --debug."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    shown_as = warnings.showwarning
    if not debug:
        warnings.showwarning = _one_line_warning
    try:
        cli.main(args=argv, prog_name="infersim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("infersim: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.UsageError as exc:
        if isinstance(exc, NO_ARGS_IS_HELP) and exc.ctx is not None:
            click.echo(exc.ctx.get_help())          # `infersim` or `infersim catalog` alone asks for its help
            sys.exit(0)
        # click's own usage block is four lines; bad input gets one, like every other refusal
        message = " ".join(exc.format_message().split())
        command = exc.ctx.command_path if exc.ctx is not None else "infersim"
        click.echo(f"infersim: error: {message} (see {command} --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InfeasibleError as exc:
        if debug:
            raise
        click.echo(f"infersim: cannot run: {flag_message(str(exc))}", err=True)
        sys.exit(2)
    except ConfigError as exc:
        if debug:
            raise
        click.echo(f"infersim: error: {flag_message(str(exc))}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("infersim: interrupted", err=True)
        sys.exit(130)
    finally:
        warnings.showwarning = shown_as
        discard_pending()           # an --out claimed but never written (error, Ctrl-C) leaves nothing
