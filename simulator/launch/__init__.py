"""Deployable plans: a result's plan as a serving engine's launch commands (`--emit vllm|sglang|trtllm`).

    >>> from simulator.launch import EMITTERS
    >>> sorted(EMITTERS)
    ['sglang', 'trtllm', 'vllm']

Each engine is one small emitter class (`simulator/launch/<engine>.py`, registered in `EMITTERS`) and one
table in `simulator/catalog/engine_args.toml` listing the argument names it may use, the version they
follow and where they were read. A plan an engine cannot express (a format it does not run, a parallel
layout it has no arguments for) is refused with one line naming the engine, never emitted approximately.
"""
from __future__ import annotations

from simulator.errors import ConfigError
from simulator.launch import sglang, trtllm, vllm  # noqa: F401  (each registers its emitter)
from simulator.launch.catalog import EngineArgs, engine_args
from simulator.launch.core import Command, ConfigFile, Deployment, Launch
from simulator.launch.registry import EMITTERS

__all__ = ["EMITTERS", "Command", "ConfigFile", "Deployment", "EngineArgs", "Launch", "check_engine_runs",
           "check_for_options", "engine_args", "launch_for_options", "launch_for_plan", "launch_for_result",
           "with_launch"]


def launch_for_plan(engine: str, plan: dict, model, gpu, memory_utilization: float | None = None) -> Launch:
    """Launch commands of `engine` for `plan` (a result's plan section) of `model` (ModelSpec) on `gpu`
    (GPUSpec). Pure: the same plan gives the same commands. Raises ConfigError when the engine cannot
    express the plan."""
    args = engine_args(EMITTERS.get_class(engine, "`engine`").name)
    deployment = Deployment.from_plan(plan, model, gpu, memory_utilization)
    commands, notes = EMITTERS[engine]().commands(deployment, args)
    for command in commands:
        missing = args.undocumented(command)
        if missing:      # the catalog is the contract: an unlisted name is a bug here, not bad input
            raise RuntimeError(f"{engine} emitter used undocumented names {missing}")
    return Launch(engine=engine, display_name=args.display_name, version=args.version, sources=args.sources,
                  commands=tuple(commands), notes=tuple(notes))


def launch_for_result(engine: str, plan: dict, *, model, gpu_catalog=(), model_catalog=(),
                      memory_utilization: float | None = None) -> Launch:
    """`launch_for_plan` with the model given as the command line gives it (catalog name or config.json
    path) and the GPU named by the plan."""
    from simulator.hardware import get_gpu
    from simulator.models import get_model
    model_spec = get_model(model, model_catalog) if isinstance(model, str) else model
    return launch_for_plan(engine, plan, model_spec, get_gpu(plan["gpu"], gpu_catalog), memory_utilization)


def check_engine_runs(engine: str, gpu, precision) -> None:
    """Before a long search: refuse now if `engine` cannot run on `gpu` (GPUSpec) or run `precision`
    (a Precision, or text such as "fp8" or "auto" for the GPU's default) whatever plan is chosen."""
    from simulator.models import Precision
    from simulator.scenario_runs import default_precision
    args = engine_args(EMITTERS.get_class(engine, "`engine`").name)
    if gpu.vendor not in args.vendors:
        raise ConfigError(f"`engine` {engine}: {args.display_name} runs on {', '.join(args.vendors)} GPUs, "
                          f"not {gpu.vendor} ({gpu.name})")
    if isinstance(precision, str):
        precision = Precision.parse(default_precision(gpu) if precision == "auto" else precision)
    args.precision_row(precision.weights, precision.activations, gpu.vendor)


def check_for_options(engine: str | None, options: dict, gpus=None) -> None:
    """`check_engine_runs` for a command's options (its `gpu`, or each of `gpus`, and `precision`),
    so a plan the engine cannot run is refused before the search, not after it. No-op without an engine."""
    if not engine:
        return
    from simulator.hardware import get_gpu
    for name in gpus or [options.get("gpu", "mi355x")]:
        check_engine_runs(engine, get_gpu(name, options.get("gpu_catalog", ())), options.get("precision") or "auto")


def launch_for_options(engine: str | None, plan: dict, options: dict) -> Launch | None:
    """`launch_for_result` for a result's plan and the command's options; None without an engine."""
    if not engine:
        return None
    return launch_for_result(engine, plan, model=options.get("model", "llama2-70b"),
                             gpu_catalog=options.get("gpu_catalog", ()), model_catalog=options.get("model_catalog", ()),
                             memory_utilization=options.get("memory_utilization"))


def with_launch(document: dict, launch: Launch | None) -> dict:
    """A result document with its `launch` section (unchanged without one)."""
    return document if launch is None else {**document, "launch": launch.to_dict()}
