"""Plots of sweep results (matplotlib, the optional `plot` extra): lines of y against x per colour group
(scaling curves, cost per million tokens), and Pareto fronts (the points no other point beats on both
axes, e.g. tokens/s per GPU against tokens/s per user). PNG or SVG by the output's suffix."""
from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from pathlib import Path

from simulator.errors import ConfigError
from simulator.output import PendingOutput

KINDS = ("line", "scatter", "pareto")
# Axis titles for known columns: InferenceX's names and units for the `pareto` command's columns.
AXIS_LABELS = {
    "output_tokens_per_s_per_user": "Interactivity (tok/s/user)",
    "total_tokens_per_s_per_gpu": "Token Throughput per GPU (tok/s/gpu)",
    "output_tokens_per_s_per_gpu": "Output Token Throughput per GPU (tok/s/gpu)",
    "output_tokens_per_s_per_provisioned_mw": "Output Tokens per Provisioned Megawatt (tok/s/MW)",
    "usd_per_million_tokens": "Cost per Million Output Tokens ($)",
}


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated when both coordinates are better larger, sorted by x."""
    front, best_y = [], -math.inf
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return sorted(front)


def plot_rows(rows: list[dict], x: str, y: str, out, color: str | None = None, kind: str = "line",
              title: str | None = None, logx: bool = False, logy: bool = False) -> tuple[Path, int]:
    """Plot `rows` (dicts of strings or numbers) into `out`: a path, or an output already claimed by the
    CLI (output.PendingOutput), written whole under a temporary name and renamed. Returns the path and
    how many rows were left out for an x or y that is not a finite number (failed points are not counted)."""
    if kind not in KINDS:
        raise ConfigError(f"`kind`: {kind!r} is not one of {', '.join(KINDS)}")
    path = out.path if isinstance(out, PendingOutput) else Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ConfigError(f"`out`: {path.name!r} must end in .png or .svg")
    if not rows:
        raise ConfigError("plot: the results file has no rows")
    for column in (x, y) + ((color,) if color else ()):
        if column not in rows[0]:
            raise ConfigError(f"plot: no column {column!r}; columns: {', '.join(rows[0])}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plot: matplotlib is not installed; pip install 'infersim[plot]'") from None
    groups: dict = defaultdict(list)
    left_out = 0
    for row in rows:
        if row.get("status", "ok") not in ("ok", None):
            continue
        xv, yv = _number(row.get(x)), _number(row.get(y))
        if xv is None or yv is None:
            left_out += 1
            continue
        groups[row.get(color, "") if color else ""].append((xv, yv))
    if not groups:
        raise ConfigError(f"plot: no rows with numeric {x} and {y}")
    for on, column, index in ((logx, x, 0), (logy, y, 1)):
        if not on:
            continue
        lowest = min(point[index] for points in groups.values() for point in points)
        if lowest <= 0:
            raise ConfigError(f"plot: {column} reaches {lowest:g}; a log axis shows values > 0 only")
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(groups.items(), key=lambda item: str(item[0])):
        points.sort()
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if kind == "line":
            axes.plot(xs, ys, marker="o", label=str(label) or None)
        elif kind == "scatter":
            axes.scatter(xs, ys, label=str(label) or None, s=18)
        else:
            axes.scatter(xs, ys, alpha=0.3, s=14)
            front = pareto_front(points)
            axes.plot([p[0] for p in front], [p[1] for p in front], marker="o", label=str(label) or None)
    axes.set_xlabel(AXIS_LABELS.get(x, x))
    axes.set_ylabel(AXIS_LABELS.get(y, y))
    if logx:
        axes.set_xscale("log")
    if logy:
        axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    if color and any(str(label) for label in groups):
        axes.legend(title=color)
    # wrapped to the figure's width: the default title of InferenceX's axes is longer than one line
    axes.set_title(textwrap.fill(title or f"{AXIS_LABELS.get(y, y)} vs {AXIS_LABELS.get(x, x)}"
                                 + (f" by {color}" if color else ""), 70))
    figure.tight_layout()
    target = out if isinstance(out, PendingOutput) else PendingOutput(out)
    try:
        return target.write(lambda handle: figure.savefig(handle, format=suffix[1:])), left_out
    finally:
        plt.close(figure)
