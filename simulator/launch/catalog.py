"""Each serving engine's documented launch arguments (`catalog/engine_args.toml`) as frozen specs.

An emitter may use only names listed here; `EngineArgs.undocumented` finds any it did not.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from simulator.catalog_io import packaged_toml
from simulator.errors import ConfigError


@dataclass(frozen=True)
class PrecisionRow:
    """One weights/activations format an engine runs: the arguments it needs and the checkpoint it loads."""

    weights: str
    activations: str
    vendor: str              # "" = every vendor the engine runs on
    args: tuple              # ((flag, value), ...)
    checkpoint: str

    def matches(self, weights: str, activations: str, vendor: str) -> bool:
        return (self.weights, self.activations) == (weights, activations) and self.vendor in ("", vendor)

    def label(self) -> str:
        return f"{self.weights}/{self.activations}" + (f" on {self.vendor}" if self.vendor else "")


@dataclass(frozen=True)
class EngineArgs:
    """The argument names one engine version documents, and where they were read."""

    name: str
    display_name: str
    version: str
    program: str
    model_flag: str
    vendors: tuple
    sources: tuple
    flags: frozenset
    json_keys: dict                  # flag -> frozenset of keys of its JSON value
    yaml_keys: frozenset
    config_file_flag: str
    disaggregated_program: str
    disaggregated_yaml_keys: frozenset
    kv_cache_dtype: dict             # infersim KV format -> the engine's value
    block_sizes: tuple
    precisions: tuple
    notes: tuple
    continuous_note: str = ""

    @property
    def title(self) -> str:
        return f"{self.display_name} {self.version}"

    def precision_row(self, weights: str, activations: str, vendor: str) -> PrecisionRow:
        """The catalogued way this engine runs a weights/activations format on `vendor`, or a one-line
        refusal naming `engine` and the formats it does run."""
        for row in self.precisions:
            if row.matches(weights, activations, vendor):
                return row
        runs = ", ".join(row.label() for row in self.precisions)
        raise ConfigError(f"`engine` {self.name}: {self.title} has no documented way to run weights/activations "
                          f"{weights}/{activations} on {vendor} GPUs (it runs {runs}); choose another `precision`")

    def undocumented(self, command) -> list[str]:
        """Names in an emitted command (flags after the program, keys of JSON values, keys of its files)
        that this catalog entry does not list: an emitter bug if any."""
        programs = [p.split() for p in (self.disaggregated_program, self.program) if p]
        program = next((p for p in programs if list(command.argv[:len(p)]) == p), None)
        if program is None:
            return [f"program {' '.join(command.argv[:3])}"]
        rest = command.argv[len(program):]
        missing = [a for a in rest if a.startswith("-") and a not in self.flags and not _is_number(a)]
        for flag, value in command.json_values.items():
            missing += [f"{flag} {key}" for key in value if key not in self.json_keys.get(flag, ())]
        for config in command.files:
            missing += [f"{config.path}: {key}" for key in config.keys() if key not in getattr(self, config.keys_from)]
        return missing


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _engine_from_table(name: str, table: dict) -> EngineArgs:
    try:
        precisions = tuple(PrecisionRow(weights=row["weights"], activations=row["activations"],
                                        vendor=row.get("vendor", ""), args=tuple(row.get("args", {}).items()),
                                        checkpoint=row["checkpoint"])
                           for row in table.get("precision", ()))
        return EngineArgs(
            name=name, display_name=table["display_name"], version=str(table["version"]), program=table["program"],
            model_flag=table.get("model_flag", ""), vendors=tuple(table["vendors"]), sources=tuple(table["sources"]),
            flags=frozenset(table["flags"]),
            json_keys={flag: frozenset(keys) for flag, keys in table.get("json_keys", {}).items()},
            yaml_keys=frozenset(table.get("yaml_keys", ())), config_file_flag=table.get("config_file_flag", ""),
            disaggregated_program=table.get("disaggregated_program", ""),
            disaggregated_yaml_keys=frozenset(table.get("disaggregated_yaml_keys", ())),
            kv_cache_dtype=dict(table["kv_cache_dtype"]), block_sizes=tuple(table.get("block_sizes", ())),
            precisions=precisions, notes=tuple(table.get("notes", ())),
            continuous_note=table.get("continuous_note", ""))
    except KeyError as exc:
        raise ConfigError(f"engine_args.toml: [{name}] is missing {exc.args[0]!r}") from None


@cache
def engine_args(name: str) -> EngineArgs:
    """The packaged catalog entry of engine `name`."""
    tables = packaged_toml("simulator.catalog", "engine_args.toml")
    if name not in tables:
        raise ConfigError(f"`engine`: {name!r} has no table in engine_args.toml (known: {', '.join(tables)})")
    return _engine_from_table(name, tables[name])
