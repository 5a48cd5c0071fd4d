"""The `infersim` command line: a thin layer over `simulator.api` (and friends). Bad input exits 2 with
one line naming the field and the allowed range; `--debug` shows the traceback instead."""
from __future__ import annotations

import functools
import sys

import click

from simulator.errors import ConfigError, InfeasibleError
from simulator.output import (PendingOutput, discard_pending, format_summary, format_table, per_request_csv,
                              rows_to_csv, to_json)


def cluster_options(func=None, *, searched: bool = False, with_gpus: bool = True):
    """Options describing the cluster and deployment, shared by every command that simulates. With
    `searched`, plan options default to unset (the command searches them) and precision to "auto"."""
    if func is None:
        return functools.partial(cluster_options, searched=searched, with_gpus=with_gpus)
    plan_default = (lambda value: None) if searched else (lambda value: value)
    pin = " (default: searched)" if searched else ""
    options = [
        click.option("--model", default="llama2-70b", show_default=True,
                     help="Catalog model name or a Hugging Face config.json path."),
        click.option("--gpu", default="mi355x", show_default=True, help="Catalog GPU name."),
        *([click.option("--gpus", type=int, default=8, show_default=True, help="GPUs in the cluster.")]
          if with_gpus else []),
        click.option("--tp", type=int, default=plan_default(1), show_default=not searched,
                     help="Tensor-parallel degree." + pin),
        click.option("--pp", type=int, default=plan_default(1), show_default=not searched,
                     help="Pipeline-parallel stages." + pin),
        click.option("--ep", type=int, default=plan_default(1), show_default=not searched,
                     help="Expert-parallel degree (MoE)." + pin),
        click.option("--precision", default="auto" if searched else "fp8", show_default=True,
                     help="bf16|fp8|fp6|fp4, weights/activations/kv like fp4/fp8/fp8"
                          + (", or auto (fp4 where the GPU has an fp4 rate, else fp8)." if searched else ".")),
        click.option("--batching", default="continuous", show_default=True,
                     type=click.Choice(["static", "continuous", "chunked", "disaggregated"])),
        click.option("--router", default="round-robin", show_default=True,
                     type=click.Choice(["round-robin", "least-outstanding", "least-kv", "power-of-two"])),
        click.option("--prefill-gpus", type=int, default=0, help="Disaggregated: GPUs in the prefill pool."),
        click.option("--max-batch-size", type=int, default=plan_default(256), show_default=not searched,
                     help="Sequences per engine step." + pin),
        click.option("--max-tokens-per-step", type=int, default=plan_default(8192), show_default=not searched,
                     help="Token budget per step (prefill chunking)."),
        click.option("--block-size", type=int, default=16, show_default=True, help="KV-cache block in tokens."),
        click.option("--memory-utilization", type=float, default=0.92, show_default=True,
                     help="Fraction of HBM the engine may use."),
        click.option("--kv-transfer-gb-per-s", type=float, default=None,
                     help="Disaggregated: KV hand-off bandwidth (default: the replica's NICs)."),
        click.option("--usd-per-gpu-hour", type=float, default=None,
                     help="Price override (default: the catalog's range)."),
        click.option("--catalog", "gpu_catalog", multiple=True, type=click.Path(dir_okay=False),
                     help="Extra GPU catalog TOML (adds or overrides)."),
        click.option("--model-catalog", multiple=True, type=click.Path(dir_okay=False),
                     help="Extra model catalog TOML."),
        click.option("--profile", type=click.Path(dir_okay=False), default=None,
                     help="Efficiency profile TOML (default: the shipped fit)."),
        click.option("--stack", default=None, help="Software-stack section of the profile to apply."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--topology", default=None,
                     help="Topology: catalog name (infersim catalog topologies) or TOML file (default: the GPU's own)."),
        click.option("--scaleout-gbps", type=float, default=None, help="What-if: NIC speed per GPU in Gb/s."),
        click.option("--oversubscription", type=float, default=None, help="What-if: leaf uplink oversubscription."),
        click.option("--set", "set_values", multiple=True,
                     help="What-if: gpu.FIELD=V, gpu.peak_tflops.fp4=V or topology.PARAM=V (repeatable)."),
        click.option("--fail", multiple=True,
                     help="Take a GPU or link down at simulated time T: gpu:ID@T or link:A-B@T (repeatable)."),
        click.option("--interval", type=float, default=None,
                     help="Prediction interval level for tokens_per_s_low/high (default 0.8; needs a fitted profile)."),
        click.option("--sla-ttft", "sla_ttft_s", type=float, default=None,
                     help="Goodput: a request counts if its TTFT is at most this many seconds."),
        click.option("--sla-tpot", "sla_tpot_s", type=float, default=None,
                     help="Goodput: a request counts if its TPOT is at most this many seconds."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def workload_options(func):
    options = [
        click.option("--rate", type=float, default=None, help="Open loop: requests per second."),
        click.option("--arrival", default="poisson", show_default=True,
                     type=click.Choice(["poisson", "gamma", "constant"])),
        click.option("--cv", type=float, default=1.0, show_default=True, help="Gamma arrivals: gap CV."),
        click.option("--duration", "duration_s", type=float, default=None, help="Seconds of arrivals."),
        click.option("--requests", type=int, default=None, help="Number of requests."),
        click.option("--offline", is_flag=True, help="All requests queued at t=0."),
        click.option("--users", type=int, default=None, help="Closed loop: concurrent users."),
        click.option("--think-time", "think_time_s", type=float, default=0.0, show_default=True),
        click.option("--input-tokens", default=None,
                     help="N, uniform:LO,HI, lognormal:MEAN,CV[,LO,HI] or file:PATH (default: MLPerf dataset)."),
        click.option("--output-tokens", default=None, help="As --input-tokens."),
        click.option("--workload", type=click.Path(dir_okay=False), default=None, help="Workload TOML file."),
        click.option("--trace", type=click.Path(dir_okay=False), default=None, help="Trace CSV/JSONL to replay."),
        click.option("--stream-metrics/--keep-requests", "stream_metrics", default=None,
                     help="Stream metrics in bounded memory (histogram percentiles, no per-request CSV); "
                          "default: on above 2,000,000 open-loop requests."),
        click.option("--max-time", "max_time_s", type=float, default=None,
                     help="Stop the simulation at this time; unfinished requests count as dropped."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def claim_output(out: str | None, flag: str = "--out", suffixes: tuple = ()) -> PendingOutput | None:
    """Claim the output file before the work it records: its folder is created and proven writable now,
    not after the computation (see output.PendingOutput)."""
    if not out:
        return None
    if suffixes and not out.lower().endswith(suffixes):
        raise ConfigError(f"{flag}: {out!r} must end in {' or '.join(suffixes)}")
    try:
        return PendingOutput(out)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def warn(warnings) -> None:
    for text in warnings or ():
        click.echo(f"infersim: warning: {text}", err=True)


def emit(document: dict, as_json: bool, target: PendingOutput | None = None, arrays=None, dropped=None,
         warnings=None) -> None:
    """Print a result (JSON or key: value lines) and write --out (.json document or .csv per request);
    the document's warnings (or `warnings`) also go to stderr, one line each."""
    if target is not None:
        if target.path.suffix == ".csv":
            if arrays is None:
                raise ConfigError("--out: a .csv file needs per-request data; use .json here")
            target.write(per_request_csv(arrays, dropped))
        else:
            target.write(to_json(document) + "\n")
    click.echo(to_json(document) if as_json else format_summary(document))
    warn(document.get("warnings") if warnings is None else warnings)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx, debug):
    """infersim: predict LLM serving throughput, latency and cost on GPU clusters."""
    ctx.ensure_object(dict)["debug"] = debug


@cli.command()
@cluster_options
@workload_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the result: .json (document) or .csv (one row per request).")
def simulate(as_json, out, **options):
    """Simulate one cluster serving one workload.

    Requests that do not finish are counted by cause in requests_dropped_by_reason (and named per request
    in the drop_reason column of a .csv --out). Exit status: 0 when the run completed; 2 for bad input;
    3 when injected failures (--fail) took down every engine able to serve while requests remained: the
    result is still printed and written, with run_status "failed" and no throughput or cost per token."""
    target = claim_output(out)
    from simulator.api import simulate as api_simulate
    result = api_simulate(**{k: v for k, v in options.items()})
    if target is not None and target.path.suffix == ".csv" and result.engine_result.arrays is None:
        raise ConfigError("--out: a per-request .csv is not kept when metrics are streamed; add --keep-requests "
                          "or write .json")
    document = result.to_dict()
    failed = result.summary.get("run_status") == "failed"
    # a failed run's first warning is its failure: said once, as the last line, with exit 3
    emit(document, as_json, target, result.engine_result.arrays, result.engine_result.dropped,
         warnings=document["warnings"][1:] if failed else None)
    if failed:
        click.echo(f"infersim: run failed: {result.warnings[0]}", err=True)
        sys.exit(3)


def scenario_options(func):
    options = [
        click.option("--scenario", default="offline", show_default=True,
                     type=click.Choice(["offline", "server", "interactive"], case_sensitive=False)),
        click.option("--duration", "duration_s", type=float, default=None,
                     help="Server/Interactive: simulated seconds of arrivals per search point (default 120)."),
        click.option("--queries", type=int, default=None,
                     help="Offline: queries per run (default: the dataset, or 4 batches per engine). "
                          "Server/Interactive: at least this many, and never less than rate x --duration."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command()
@cluster_options(searched=True)
@scenario_options
@click.option("--rate", type=float, default=None,
              help="Server/Interactive: score this Poisson rate (requests/s) instead of searching for the highest.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON document here.")
def mlperf(as_json, out, **options):
    """Score a cluster in an MLPerf scenario (Offline throughput; Server/Interactive: the highest Poisson
    rate meeting the p99 TTFT/TPOT limits), choosing the best plan that fits unless --tp etc. pin it."""
    if out and out.lower().endswith(".csv"):
        raise ConfigError("--out: mlperf writes its JSON document; a .csv holds per-request rows (simulate --out)")
    target = claim_output(out)
    from simulator.mlperf import mlperf as run_mlperf
    result = run_mlperf(**options)
    emit(result.to_dict(), as_json, target)


@cli.command()
@cluster_options(searched=True, with_gpus=False)
@scenario_options
@click.option("--target-tokens-per-s", type=float, required=True, help="Output tokens/s the cluster must serve.")
@click.option("--compare", default=None, help="Comma-separated GPUs to size side by side (replaces --gpu).")
@click.option("--node-gpus", type=int, default=None, help="GPUs per node (default: the GPU's server size, at most 8).")
@click.option("--confidence", type=float, default=None,
              help="Size so the target is reached with this probability under calibration uncertainty (e.g. 0.9).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list with --compare).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write .json or .csv (one row per GPU).")
def size(as_json, out, compare, **options):
    """Fewest GPUs (and nodes) reaching a tokens/s target under a scenario's SLA, with cost."""
    target = claim_output(out)
    from simulator.sizing import compare as compare_gpus, size as run_size
    options["scenario"] = options["scenario"].lower()
    if compare:
        options.pop("gpu")
        results = compare_gpus([name.strip() for name in compare.split(",") if name.strip()], **options)
    else:
        results = [run_size(**options)]
    rows = [r.row() for r in results]
    if target is not None:
        as_csv = target.path.suffix == ".csv"
        target.write(rows_to_csv(rows) if as_csv else to_json([r.to_dict() for r in results]) + "\n")
    if as_json:
        click.echo(to_json(results[0].to_dict() if not compare else [r.to_dict() for r in results]))
    elif compare:
        click.echo(format_table(rows, SIZE_COLUMNS))
    else:
        click.echo(format_summary(results[0].to_dict()))


SIZE_COLUMNS = ["gpu", "gpus", "nodes", "tp", "max_batch_size", "precision", "tokens_per_s", "ttft_p99_s",
                "tpot_p99_s", "usd_per_hour", "usd_per_million_tokens", "usd_per_million_tokens_low",
                "usd_per_million_tokens_high", "energy_j_per_token_upper_bound"]


@cli.command("pareto")
@click.option("--model", default="llama3.1-70b", show_default=True,
              help="Catalog model name or a Hugging Face config.json path.")
@click.option("--gpu", default="mi355x", show_default=True, help="Catalog GPU names, comma-separated (b200,mi355x).")
@click.option("--gpus", type=int, default=8, show_default=True, help="GPUs of each kind.")
@click.option("--input-tokens", default="1024", show_default=True,
              help="Prompt tokens: N, uniform:LO,HI, lognormal:MEAN,CV[,LO,HI] or file:PATH.")
@click.option("--output-tokens", default="1024", show_default=True, help="Output tokens, as --input-tokens.")
@click.option("--concurrency", default=None,
              help="Users (closed loop) to try, comma-separated (default: 1, 2, 4, ... up to --max-concurrency "
                   "or what the KV cache holds).")
@click.option("--max-concurrency", type=int, default=1024, show_default=True, help="Most users tried.")
@click.option("--concurrency-ratio", type=float, default=2.0, show_default=True,
              help="Ratio between successive user counts (1.25 gives a denser front).")
@click.option("--requests-per-user", type=int, default=10, show_default=True,
              help="Requests each user sends (InferenceX: num_prompts = 10 x concurrency).")
@click.option("--batching", default="continuous,chunked,disaggregated", show_default=True,
              help="Serving modes searched: continuous, chunked (aggregated), disaggregated (every prefill/decode split).")
@click.option("--precision", default="auto", show_default=True,
              help="bf16|fp8|fp6|fp4 or weights/activations/kv, or auto (fp4 where the GPU has an fp4 rate, else fp8).")
@click.option("--max-tokens-per-step", type=int, default=8192, show_default=True,
              help="Token budget per step (InferenceX runs vLLM with max-num-batched-tokens 8192).")
@click.option("--usd-per-gpu-hour", type=float, default=None, help="Price override (default: the catalog's range).")
@click.option("--catalog", "gpu_catalog", multiple=True, type=click.Path(dir_okay=False),
              help="Extra GPU catalog TOML (adds or overrides).")
@click.option("--model-catalog", multiple=True, type=click.Path(dir_okay=False), help="Extra model catalog TOML.")
@click.option("--profile", type=click.Path(dir_okay=False), default=None,
              help="Efficiency profile TOML (default: the shipped fit).")
@click.option("--stack", default=None, help="Software-stack section of the profile to apply.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-prune", is_flag=True, help="Simulate every candidate (slower; the front is the same).")
@click.option("--all", "show_all", is_flag=True, help="Table of every point run, not only the front.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write .json (document) or .csv (one row per point; plot it with infersim plot).")
def pareto_command(no_prune, show_all, as_json, out, **options):
    """Front of throughput per GPU against tokens/s per user (InferenceX style) over plans (tp/pp/ep,
    attention-dp, aggregated or disaggregated with each prefill/decode split) and concurrency levels.

    Each point is a closed loop of CONCURRENCY users, each sending its next request when the last
    finishes. Per-user rate (interactivity, output_tokens_per_s_per_user) = 1 / median TPOT, TPOT =
    (latency - TTFT) / (output tokens - 1), InferenceX's median_intvty. Throughput per GPU counts every
    GPU of the cluster; $ per million output tokens from the catalog's price range; tokens per provisioned
    MW count GPU TDP plus the rest of the node's rated power per GPU (see power_counted). Plot the CSV:
    infersim plot F.csv --kind pareto --x output_tokens_per_s_per_user --y total_tokens_per_s_per_gpu
    --color gpu -o front.png"""
    target = claim_output(out, suffixes=(".json", ".csv"))
    from simulator.pareto import pareto
    result = pareto(prune=not no_prune, **options)
    document = result.to_dict()
    if target is not None:
        target.write(rows_to_csv(result.rows()) if target.path.suffix.lower() == ".csv" else to_json(document) + "\n")
    if as_json:
        click.echo(to_json(document))
    else:
        shown = [p.row() for p in result.points if show_all or p.on_front]
        shown.sort(key=lambda row: (row["gpu"], -row["output_tokens_per_s_per_user"]))
        click.echo(format_table(shown, PARETO_COLUMNS))
        click.echo(f"per-user rate: {document['per_user_rate']}")
        click.echo(f"power counted: {result.power_counted}")
        for name, info in result.search["per_gpu"].items():
            click.echo(f"search {name}: {info['candidates']} candidates over {info['modes']} serving modes, "
                       f"{info['simulated']} simulated, {info['pruned']} pruned by the closed-form bound, "
                       f"wall_s {info['wall_s']:.1f}")
        click.echo(f"wall_s: {result.search['wall_s']:.1f}")
    warn(result.warnings)


PARETO_COLUMNS = ["gpu", "plan_label", "concurrency", "output_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                  "output_tokens_per_s_per_user", "ttft_p99_s", "tpot_p99_s", "usd_per_million_tokens",
                  "output_tokens_per_s_per_provisioned_mw"]


@cli.command()
@click.argument("measurements", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the fitted profile TOML here.")
@click.option("--prior-profile", type=click.Path(dir_okay=False), default=None,
              help="Profile whose [default] is the prior (default: the built-in defaults).")
@click.option("--interval", type=float, default=None, help="Interval level stored in the profile (default 0.8).")
@click.option("--json", "as_json", is_flag=True, help="Print the per-row report as JSON.")
@click.option("--catalog", "gpu_catalog", multiple=True, type=click.Path(dir_okay=False),
              help="Extra GPU catalog TOML the rows may name.")
@click.option("--model-catalog", multiple=True, type=click.Path(dir_okay=False),
              help="Extra model catalog TOML the rows may name.")
def calibrate(measurements, out, prior_profile, interval, as_json, gpu_catalog, model_catalog):
    """Fit efficiency parameters to measured rows (CSV; see simulator/measurements.py for the columns):
    per-row prediction, error and 80% interval, and a profile any command takes with --profile. How well
    the fit predicts what it did not see: `infersim validate`."""
    target = claim_output(out)
    from simulator.calibrate import calibrate_files, stderr_progress
    from simulator.intervals import DEFAULT_INTERVAL, interval_z
    interval = DEFAULT_INTERVAL if interval is None else interval
    interval_z(interval)
    header = "Efficiency profile fitted by infersim calibrate from: " + ", ".join(measurements)
    result, text, rows = calibrate_files(list(measurements), prior_profile=prior_profile, header=header,
                                         interval=interval, progress=stderr_progress,
                                         gpu_catalog=gpu_catalog, model_catalog=model_catalog)
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
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the markdown report here (the shipped rows' report lives in docs/validation.md).")
@click.option("--json", "as_json", is_flag=True, help="Print summaries and held-out rows as JSON.")
def validate_command(measurements, splits, prior_profile, out, as_json):
    """How well calibration predicts rows it never saw: leave one GPU out, leave one round out (fit v4.1,
    predict v5.1), leave one model out. Default rows: the shipped MLPerf results."""
    target = claim_output(out)
    from simulator.calibrate import prior_from, stderr_progress
    from simulator.measurements import load_measurements
    from simulator.validate import SPLITS, markdown, validate
    from importlib import resources
    paths = list(measurements) or [str(resources.files("simulator.catalog") / "measurements" / "mlperf.csv")]
    rows = [row for path in paths for row in load_measurements(path)]
    results = validate(rows, prior_from(prior_profile), splits=splits or SPLITS, progress=stderr_progress)
    if target is not None:
        target.write(markdown(results, "infersim validate " + " ".join(measurements)) + "\n")
    summaries = {split: results[split]["summary"] for split in (splits or SPLITS)}
    if as_json:
        click.echo(to_json({"summaries": summaries, "node_ratios": results.get("gpu", {}).get("node_ratios", []),
                            "held_out": [{"split": h.split, "left_out": h.left_out, "row": h.spec.label,
                                          "round": h.row.round, "submitter": h.row.submitter,
                                          "measured_tokens_per_s": h.row.output_tokens_per_s,
                                          "predicted_tokens_per_s": h.predicted, "error_pct": 100 * h.error,
                                          "inside_interval": h.inside}
                                         for split in (splits or SPLITS) for h in results[split]["held_out"]]}))
    else:
        click.echo(format_table([{"split": k, **v} for k, v in summaries.items()],
                                ["split", "rows", "median_abs_error_pct", "p90_abs_error_pct", "interval_coverage_pct"]))
        if out:
            click.echo(f"report written to {out}")


@cli.command("import-runs")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "kind", required=True, type=click.Choice(["mlperf", "vllm", "inferencemax"]))
@click.option("--strict", is_flag=True, help="mlperf: results that do not map to the catalogs are an error.")
@click.option("--model", default=None, help="vllm: the model served (catalog name or config.json).")
@click.option("--gpu", default=None, help="vllm: the GPU the run used.")
@click.option("--gpus", type=int, default=None, help="vllm: GPUs the run used.")
@click.option("--tp", type=int, default=None, help="vllm: tensor-parallel degree.")
@click.option("--ep", type=int, default=None, help="vllm: expert-parallel degree.")
@click.option("--precision", default="fp8", show_default=True, help="vllm: deployment precision.")
@click.option("--stack", default="vllm", show_default=True, help="vllm: software stack label.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the rows as measurement CSV.")
def import_runs(files, kind, strict, model, gpu, gpus, tp, ep, precision, stack, out):
    """Turn measured runs into calibration rows: MLPerf results (submission trees with
    mlperf_log_summary.txt and systems/*.json, or summary_results.json, or folders of them), vLLM
    benchmark_serving result JSON, InferenceMAX result JSON."""
    target = claim_output(out)
    from simulator.measurements import from_inferencemax, from_vllm_benchmark, measurements_csv
    if kind == "mlperf":
        from simulator.mlperf_results import import_mlperf
        report = import_mlperf(files, strict=strict)
        rows = report.rows
        click.echo(f"infersim: {report.summary_line()}", err=True)
    elif kind == "vllm":
        for name, value in (("--model", model), ("--gpu", gpu), ("--gpus", gpus)):
            if value is None:
                raise ConfigError(f"{name}: required with --format vllm (the result file does not say)")
        rows = [from_vllm_benchmark(f, model=model, gpu=gpu, gpus=gpus, tp=tp, ep=ep, precision=precision, stack=stack)
                for f in files]
    else:
        rows = [from_inferencemax(f) for f in files]
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
@click.option("--resume", is_flag=True, help="Skip points already in --out (after an interrupted sweep).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep_command(spec, out, jobs, scheduler, resume, quiet):
    """Run a grid of points from a sweep TOML (see simulator/sweep.py) on local processes or Dask. Exit
    status 2 when every point failed (their rows in --out say why)."""
    from simulator.sweep import load_sweep, progress_bar, run_sweep
    command, points = load_sweep(spec)
    rows = run_sweep(command, points, out, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=None if quiet else progress_bar())
    failed = [r for r in rows if r["status"] != "ok"]
    if rows and len(failed) == len(rows):
        # nothing was computed: as much bad input as a typo on the command line (rows in --out say why)
        raise ConfigError(f"sweep: every point failed ({len(rows)} of {len(rows)}, rows in {out}); the first: "
                          f"{failed[0]['error'].partition(': ')[2] or failed[0]['error']}")
    click.echo(f"{len(rows)} points run ({len(failed)} failed, {len(points) - len(rows)} already in {out}); "
               f"rows in {out}")


@cli.command("plot")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--x", "x_column", required=True, help="Column for the x axis (e.g. nodes).")
@click.option("--y", "y_column", required=True, help="Column for the y axis (e.g. tokens_per_s).")
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
    rows = [expand_extra(row) for row in read_csv_rows(results)]
    if not rows:
        raise ConfigError(f"{results}: no rows (a header line and at least one row of values)")
    path = plot_rows(rows, x_column, y_column, target, color=color, kind=kind, title=title, logx=logx, logy=logy)
    click.echo(f"wrote {path}")


@cli.group()
def catalog():
    """List the built-in catalogs (GPUs, models, scenarios)."""


@catalog.command("gpus")
@click.option("--catalog", "gpu_catalog", multiple=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def catalog_gpus(gpu_catalog, as_json):
    """GPUs with their datasheet figures (dense peaks)."""
    from simulator.hardware import load_gpus
    rows = []
    for gpu in load_gpus(gpu_catalog).values():
        rows.append({"name": gpu.name, "vendor": gpu.vendor, "hbm_gb": gpu.hbm_gb, "hbm_tb_per_s": gpu.hbm_tb_per_s,
                     **{f"{d}_tflops": gpu.peak_tflops.get(d) for d in ("bf16", "fp8", "fp6", "fp4")},
                     "scaleup": gpu.scaleup, "scaleup_gb_per_s": gpu.scaleup_gb_per_s, "power_w": gpu.power_w,
                     "usd_per_gpu_hour_low": gpu.usd_per_gpu_hour[0], "usd_per_gpu_hour_high": gpu.usd_per_gpu_hour[1],
                     "source": gpu.source})
    show_rows(rows, as_json, exclude=("source",))


@catalog.command("models")
@click.option("--model-catalog", multiple=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def catalog_models(model_catalog, as_json):
    """Models with derived sizes (parameters, KV bytes per token)."""
    from simulator.models import load_models
    rows = [{"name": m.name, "params_b": m.total_params / 1e9, "active_params_b": m.active_params_per_token / 1e9,
             "layers": m.layers, "hidden": m.hidden, "experts": m.experts, "attention": m.attention,
             "kv_bytes_per_token_fp8": m.kv_bytes_per_token("fp8"), "source": m.source}
            for m in load_models(model_catalog).values()]
    show_rows(rows, as_json, exclude=("source",))


@catalog.command("topologies")
@click.option("--json", "as_json", is_flag=True)
def catalog_topologies(as_json):
    """Built-in topologies (parameters marked 'from GPU' come from the GPU's catalog entry)."""
    from topologies import describe_topologies
    show_rows(describe_topologies(), as_json, exclude=("description",))


@catalog.command("scenarios")
@click.option("--json", "as_json", is_flag=True)
def catalog_scenarios(as_json):
    """MLPerf scenarios with their latency limits and dataset lengths."""
    from workloads import list_scenarios
    show_rows([s.describe() for s in list_scenarios()], as_json, exclude=("dataset",))


def show_rows(rows, as_json, exclude=()):
    if as_json:
        click.echo(to_json(rows))
    else:
        columns = [c for c in rows[0] if c not in exclude] if rows else []
        click.echo(format_table(rows, columns))


def main(argv=None) -> None:
    """Entry point: one-line errors with exit code 2 for bad input; tracebacks only with --debug."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="infersim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("infersim: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.UsageError as exc:
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
        click.echo(f"infersim: cannot run: {exc}", err=True)
        sys.exit(2)
    except ConfigError as exc:
        if debug:
            raise
        click.echo(f"infersim: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("infersim: interrupted", err=True)
        sys.exit(130)
    finally:
        discard_pending()           # an --out claimed but never written (error, Ctrl-C) leaves nothing
