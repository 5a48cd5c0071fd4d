"""Workload specs from what users write: a workload TOML file (or its table) and the CLI's flags. Each
option the chosen workload would ignore is an error naming it, not a silent default."""
from __future__ import annotations

from pathlib import Path

from simulator.catalog_io import read_toml
from simulator.errors import ConfigError, reject_unknown_keys, require_choice, require_number
from workloads.arrivals import ARRIVALS, ClosedLoop, Offline, rate_driven
from workloads.lengths import lengths_from_dict, parse_length_flag
from workloads.spec import WorkloadSpec


def workload_from_dict(data: dict, where: str = "workload", base_dir: Path | None = None) -> WorkloadSpec:
    """A workload table (a TOML file's contents; `where` names it in errors, relative paths are read from
    `base_dir`) to a spec."""
    reject_unknown_keys(where, data, ("arrival", "input", "output", "requests", "duration_s", "trace"))
    if "trace" in data and len(data) > 1:
        other = sorted(k for k in data if k != "trace")[0]
        raise ConfigError(f"{where}: trace replays a recorded workload; {other!r} beside it would be ignored")
    if "trace" in data:
        trace = Path(str(data["trace"]))
        return WorkloadSpec(trace=str(trace if trace.is_absolute() or base_dir is None else base_dir / trace))
    arrival_table = data.get("arrival", {"kind": "offline"})
    if not isinstance(arrival_table, dict):
        raise ConfigError(f"{where}: [arrival] must be a table")
    kind = require_choice(f"{where}: arrival.kind", arrival_table.get("kind"), ARRIVALS)
    params = {k: v for k, v in arrival_table.items() if k != "kind"}
    allowed = ARRIVALS[kind].parameters
    reject_unknown_keys(f"{where}: [arrival]", params, allowed)
    try:
        arrival = ARRIVALS[kind](**params)
    except TypeError:
        raise ConfigError(f"{where}: [arrival] kind {kind!r} needs {', '.join(allowed)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: [arrival] {exc}") from None
    for key in ("input", "output"):
        if key not in data:
            raise ConfigError(f"{where}: missing [{key}] length table")
    return WorkloadSpec(arrival=arrival,
                        input_lengths=lengths_from_dict(f"{where}: [input]", data["input"], base_dir),
                        output_lengths=lengths_from_dict(f"{where}: [output]", data["output"], base_dir),
                        requests=data.get("requests"), duration_s=data.get("duration_s"))


def workload_from_toml(path: str | Path) -> WorkloadSpec:
    path = Path(path)
    return workload_from_dict(read_toml(path), where=str(path), base_dir=path.parent)


def workload_from_flags(*, rate=None, arrival="poisson", cv=1.0, duration_s=None, requests=None, offline=False,
                        users=None, think_time_s=0.0, input_tokens="1024", output_tokens="256",
                        input_lengths=None, output_lengths=None) -> WorkloadSpec:
    """Keyword options (the CLI's flags) to a spec; `input_lengths`/`output_lengths` (distribution objects)
    win over the text. An option the chosen workload would ignore is an error, not a silent default."""
    modes = sum(x for x in (rate is not None, bool(offline), users is not None))
    if modes > 1:
        raise ConfigError("workload: give one of `rate`, `offline` or `users`")
    if rate is not None and requests is not None and duration_s is not None:
        raise ConfigError("`duration_s`: give `requests` or `duration_s` with `rate`, not both")
    if duration_s is not None and rate is None:
        raise ConfigError("`duration_s`: only with `rate` (open loop); `offline` and `users` take `requests`")
    if think_time_s and users is None:
        raise ConfigError("`think_time_s`: only with `users` (a closed loop)")
    if arrival != "poisson" and rate is None:
        raise ConfigError(f"`arrival`: {arrival} arrivals need `rate`")
    with_cv = [name for name in rate_driven() if "cv" in ARRIVALS[name].parameters]
    if cv != 1.0 and arrival not in with_cv:
        raise ConfigError(f"`cv`: only with `arrival` {' or '.join(with_cv)}")
    if modes == 0:
        raise ConfigError("workload: give `rate` R (open loop), `offline` or `users` N (closed loop)")
    if offline:
        process = Offline()
    elif users is not None:
        process = ClosedLoop(users=users, think_time_s=think_time_s)
    else:
        require_choice("`arrival`", arrival, rate_driven())
        require_number("`rate`", rate, low=0, low_inclusive=False, high=1e9)
        kind = ARRIVALS[arrival]
        process = kind(rate_per_s=rate, **({"cv": cv} if "cv" in kind.parameters else {}))
    if (offline or users is not None) and requests is None:
        raise ConfigError("`requests`: needed with `offline` or `users`")
    if rate is not None and requests is None and duration_s is None:
        raise ConfigError("`duration_s`: needed with `rate` (or give `requests`)")
    return WorkloadSpec(arrival=process,
               input_lengths=input_lengths or parse_length_flag("`input_tokens`", input_tokens),
               output_lengths=output_lengths or parse_length_flag("`output_tokens`", output_tokens),
               requests=requests, duration_s=duration_s if requests is None else None)
