"""What a launch is made of: the plan as deployed (`Deployment`), the commands that start it (`Command`,
with any config files they read), and `Launch`, the whole answer with its engine version, sources and
notes. `EngineEmitter` is the interface each engine implements, plus the checks every engine shares.
"""
from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field

from simulator.errors import ConfigError
from simulator.launch.catalog import EngineArgs, PrecisionRow

BITS = {"bf16": 16, "fp8": 8, "fp6": 6, "fp4": 4}
NODE_GPUS_MAX = 8        # a launch's node: the GPU's server, at most 8 GPUs (as sizing counts nodes)
PLAN_KEYS = ("tp", "pp", "ep", "attention_dp", "gpus_per_replica", "max_batch_size", "max_tokens_per_step",
             "block_size", "precision", "batching", "replicas")


@dataclass(frozen=True)
class Deployment:
    """One result's plan with the model and GPU facts a launch needs (limits are per attention group)."""

    model_ref: str               # Hugging Face repo id, or the local folder of a config.json model
    checkpoint_dtype: str        # weights as model_ref publishes them
    is_moe: bool
    vendor: str
    gpus_per_node: int
    tp: int
    pp: int
    ep: int
    attention_dp: int
    gpus_per_replica: int
    max_batch_size: int
    max_tokens_per_step: int
    block_size: int
    weights: str
    activations: str
    kv_cache: str
    batching: str
    replicas: int
    prefill_replicas: int = 0    # disaggregated: replicas serving prefill; the rest decode
    memory_utilization: float | None = None

    @classmethod
    def from_plan(cls, plan: dict, model, gpu, memory_utilization: float | None = None) -> "Deployment":
        """From a result's `plan` section (`Plan.describe()` plus the run's fields), a ModelSpec and a GPUSpec."""
        missing = [key for key in PLAN_KEYS if key not in plan]
        if missing:
            raise ConfigError(f"`engine`: the plan has no {missing[0]!r} (a result's plan section carries "
                              f"{', '.join(PLAN_KEYS)})")
        if not model.hf_repo:
            raise ConfigError(f"`engine`: model {model.name} has no hf_repo in the model catalog to name in a command")
        prefill_gpus = plan.get("prefill_gpus", 0) if plan["batching"] == "disaggregated" else 0
        return cls(model_ref=model.hf_repo, checkpoint_dtype=model.checkpoint_dtype, is_moe=model.is_moe, vendor=gpu.vendor,
                   gpus_per_node=min(gpu.gpus_per_server, NODE_GPUS_MAX), tp=plan["tp"], pp=plan["pp"],
                   ep=plan["ep"], attention_dp=plan["attention_dp"], gpus_per_replica=plan["gpus_per_replica"],
                   max_batch_size=plan["max_batch_size"], max_tokens_per_step=plan["max_tokens_per_step"],
                   block_size=plan["block_size"], weights=plan["precision"]["weights"],
                   activations=plan["precision"]["activations"], kv_cache=plan["precision"]["kv_cache"],
                   batching=plan["batching"], replicas=plan["replicas"],
                   prefill_replicas=prefill_gpus // plan["gpus_per_replica"], memory_utilization=memory_utilization)

    @property
    def disaggregated(self) -> bool:
        return self.batching == "disaggregated"

    @property
    def decode_replicas(self) -> int:
        return self.replicas - self.prefill_replicas

    @property
    def nodes_per_replica(self) -> int:
        return math.ceil(self.gpus_per_replica / self.gpus_per_node)


@dataclass(frozen=True)
class ConfigFile:
    """A YAML file a command reads; `data` is nested mappings of scalars and lists of scalars."""

    path: str
    data: dict
    keys_from: str = "yaml_keys"     # the EngineArgs list its keys must come from

    def keys(self) -> list[str]:
        """Every leaf key, dotted from the top (`kv_cache_config.dtype`)."""
        def walk(prefix, table):
            for key, value in table.items():
                if isinstance(value, dict):
                    yield from walk(f"{prefix}{key}.", value)
                else:
                    yield f"{prefix}{key}"
        return list(walk("", self.data))

    def text(self) -> str:
        def render(table, indent):
            for key, value in table.items():
                if isinstance(value, dict):
                    yield f"{' ' * indent}{key}:"
                    yield from render(value, indent + 2)
                elif isinstance(value, list):
                    yield f"{' ' * indent}{key}:"
                    yield from (f"{' ' * (indent + 2)}- {json.dumps(item)}" for item in value)
                else:
                    yield f"{' ' * indent}{key}: {json.dumps(value)}"
        return "\n".join(render(self.data, 0)) + "\n"


@dataclass(frozen=True)
class Command:
    """One launch command: `launches` identical copies, each on `gpus_per_launch` GPUs serving
    `replicas_per_launch` of the plan's replicas (0 for an orchestrator that holds no GPU)."""

    role: str                        # "server", "prefill", "decode" or "router"
    argv: tuple
    launches: int
    gpus_per_launch: int
    replicas_per_launch: int
    files: tuple = ()
    json_values: dict = field(default_factory=dict)    # flag -> the JSON object given as its value

    def shell(self) -> str:
        return shlex.join(self.argv)

    def to_dict(self) -> dict:
        return {"role": self.role, "launches": self.launches, "gpus_per_launch": self.gpus_per_launch,
                "replicas_per_launch": self.replicas_per_launch, "command": self.shell(), "argv": list(self.argv),
                "files": [{"path": f.path, "text": f.text()} for f in self.files]}

    def text(self) -> str:
        files = "".join(f"cat > {shlex.quote(f.path)} <<'EOF'\n{f.text()}EOF\n" for f in self.files)
        count = f"{self.launches} launch{'es' if self.launches > 1 else ''}"
        plural = "s" if self.gpus_per_launch > 1 else ""
        gpus = f", {self.gpus_per_launch} GPU{plural}{' each' if self.launches > 1 else ''}" if self.gpus_per_launch else ""
        return f"# {self.role}: {count}{gpus}\n{files}{self.shell()}"


@dataclass(frozen=True)
class Launch:
    """An engine's launch commands for one plan, with the version whose argument names they follow."""

    engine: str
    display_name: str
    version: str
    sources: tuple
    commands: tuple
    notes: tuple

    def to_dict(self) -> dict:
        return {"engine": self.engine, "engine_name": self.display_name, "version": self.version,
                "commands": [c.to_dict() for c in self.commands], "notes": list(self.notes),
                "sources": list(self.sources)}

    def text(self) -> str:
        head = f"# launch: {self.display_name} {self.version} argument names (simulator/catalog/engine_args.toml)"
        notes = [f"# {note}" for note in self.notes]
        return "\n".join([head, *notes, *(c.text() for c in self.commands)])


def replica_groups(replicas: int, per_launch: int) -> list[tuple[int, int]]:
    """(launches, replicas each) covering `replicas` with launches of at most `per_launch` replicas.

    >>> replica_groups(5, 2)
    [(2, 2), (1, 1)]
    """
    full, rest = divmod(replicas, per_launch)
    return ([(full, per_launch)] if full else []) + ([(1, rest)] if rest else [])


class EngineEmitter:
    """Interface: `commands(deployment, args)` returns the engine's commands and notes for a plan.
    Shared here: the refusals every engine makes, precision and KV arguments, and the replica notes."""

    name = "base"

    def commands(self, deployment: Deployment, args: EngineArgs) -> tuple[list[Command], list[str]]:
        raise NotImplementedError  # pragma: no cover - interface

    def refuse(self, args: EngineArgs, why: str) -> ConfigError:
        return ConfigError(f"`engine` {args.name}: {why}")

    def check_shared(self, d: Deployment, args: EngineArgs) -> PrecisionRow:
        """Refusals common to every engine; returns the precision row the plan runs with."""
        if d.vendor not in args.vendors:
            raise self.refuse(args, f"{args.display_name} runs on {', '.join(args.vendors)} GPUs, not {d.vendor}")
        if d.batching == "static":
            raise self.refuse(args, f"static batching (a batch runs to its end, no request joins it) is not a "
                                    f"mode of {args.display_name}; emit a continuous, chunked or disaggregated plan")
        if args.block_sizes and d.block_size not in args.block_sizes:
            raise self.refuse(args, f"a KV block of {d.block_size} tokens is not one {args.display_name} takes "
                                    f"({', '.join(map(str, args.block_sizes))})")
        if d.kv_cache not in args.kv_cache_dtype:
            raise self.refuse(args, f"KV cache {d.kv_cache} is not one {args.title} stores "
                                    f"({', '.join(args.kv_cache_dtype)})")
        row = args.precision_row(d.weights, d.activations, d.vendor)
        if BITS[d.checkpoint_dtype] < BITS[d.weights]:
            raise self.refuse(args, f"{d.model_ref} is published with {d.checkpoint_dtype} weights; a "
                                    f"{d.weights} plan needs a wider copy of it, which the model catalog does not name")
        return row

    @staticmethod
    def precision_args(d: Deployment, row: PrecisionRow) -> list[str]:
        """The row's arguments, or none when the checkpoint is already in the plan's format (the engine
        reads the method from the checkpoint's config)."""
        if d.checkpoint_dtype == d.weights != "bf16":
            return []
        return [str(a) for pair in row.args for a in pair]

    def shared_notes(self, d: Deployment, args: EngineArgs, row: PrecisionRow, commands: list) -> list[str]:
        """How replicas map to launches, the checkpoint to load, multi-node replicas, the engine's notes."""
        if d.checkpoint_dtype == d.weights != "bf16":
            notes = [f"model: {d.model_ref} is published with {d.weights} weights, as the plan runs them; "
                     f"{args.display_name} reads the quantization from its config"]
        else:
            notes = [f"model: {d.model_ref}, {row.checkpoint}"]
        servers = sum(c.launches for c in commands if c.gpus_per_launch)
        plural = "s" if d.gpus_per_replica > 1 else ""
        balancer = "; a load balancer in front spreads requests over them" if servers > 1 else ""
        if d.disaggregated:
            notes.append(f"{d.prefill_replicas} prefill and {d.decode_replicas} decode replicas of "
                         f"{d.gpus_per_replica} GPU{plural}: one server per replica and role; a router sends each request "
                         f"to a prefill server, then to a decode server")
        elif any(c.replicas_per_launch > 1 for c in commands):
            notes.append(f"{d.replicas} replicas of {d.gpus_per_replica} GPU{plural}: a node's replicas run in one server "
                         f"as data-parallel ranks, which balances requests across them ({servers} "
                         f"server{'s' if servers > 1 else ''}){balancer}")
        else:
            notes.append(f"{d.replicas} replica{'s' if d.replicas > 1 else ''} of {d.gpus_per_replica} GPU{plural}: one "
                         f"server per replica{balancer}")
        if d.nodes_per_replica > 1:
            notes.append(f"a replica spans {d.nodes_per_replica} nodes of {d.gpus_per_node} GPUs: start each server "
                         f"with {args.display_name}'s multi-node launch")
        if d.batching == "continuous" and args.continuous_note:
            notes.append(args.continuous_note)
        return notes + list(args.notes)
