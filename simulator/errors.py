"""The one exception type for bad input, and helpers that build its messages.

Every boundary (CLI, TOML catalogs, traces, measurement files, Python API) raises `ConfigError` with
a one-line message naming the field, the value and the allowed range; the CLI turns it into exit 2.
"""
from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """Bad input: the message is one line naming where, what and the allowed range."""


class InfeasibleError(ConfigError):
    """The input is well-formed but cannot run: a model larger than HBM, an SLA no rate meets."""


def require_number(where: str, value: Any, *, low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True, integer: bool = False) -> float:
    """Return `value` as a number, or raise ConfigError naming `where`, the value and the range.

    >>> require_number("rate_per_s", 3, low=0, low_inclusive=False)
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value)
        raise ConfigError(f"{where}: expected a number, got "
                          + (excerpt(value) if isinstance(value, str) or len(shown) > 40 else shown))
    if not math.isfinite(value):
        within = f" in {_range(low, high, low_inclusive)}" if low is not None or high is not None else ""
        raise ConfigError(f"{where}: must be a finite number{within}, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{where}: must be a whole number, got {value!r}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and value > high
    if too_low or too_high:
        shown = f"{value:g}" if abs(value) >= 1e15 else repr(value)     # 1e30 read as a whole number: not 31 digits
        raise ConfigError(f"{where}: {shown} is out of range {_range(low, high, low_inclusive)}")
    return int(value) if integer else value


def _range(low: float | None, high: float | None, low_inclusive: bool) -> str:
    """The allowed range as a refusal writes it, e.g. (0, 1e+09]; formatted only when a value is refused,
    as require_number runs on every Efficiency and config built."""
    return (f"{'[' if low_inclusive else '('}{'-inf' if low is None else f'{low:g}'}, "
            f"{'inf' if high is None else f'{high:g}'}]")


def first_repeat(items) -> Any:
    """The first item of `items` that appeared before it (None when each appears once): what a refusal
    of a thing given twice names."""
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def refuse_repeats(where: str, items) -> None:
    """A one-line ConfigError naming the first of `items` given twice (`first_repeat`), if any: a list
    option asks for each entry once, and a repeat is a typo for another entry or a second run that adds
    nothing."""
    twice = first_repeat(items)
    if twice is not None:
        raise ConfigError(f"{where}: {excerpt(twice)[1:-1]} is named twice")


def excerpt(text: Any, limit: int = 24) -> str:
    """A short, printable quote of user data for an error message: control characters and anything
    outside printable ASCII become '?', and more than `limit` characters are cut (a message must never
    carry a whole line of a file it was pointed at by mistake, such as a password database).

    >>> excerpt("12\x1b[2J,\u00e9" + "9" * 40)
    "'12?[2J,?9999999999999...'"
    """
    text = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def require_choice(where: str, value: Any, choices) -> str:
    """Return `value` if it is one of `choices`, else raise naming the allowed values."""
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(sorted(map(str, choices)))}")
    return value


def reject_unknown_keys(where: str, table: dict, allowed) -> None:
    """Raise if `table` has keys outside `allowed` (a typo in a TOML file must not pass silently)."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
