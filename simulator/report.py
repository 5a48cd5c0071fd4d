"""The report page (`infersim report`): one self-contained HTML file from results of simulate, mlperf,
size, sweep and pareto, with the scaling curve, the Pareto front, the cost table, the intervals and each
run's configuration. Charts are inline SVG (simulator.svg); nothing is loaded from anywhere, so the page
works offline, and the same inputs always give the same bytes."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace
from html import escape
from pathlib import Path

from simulator.report_inputs import Prediction, ResultFile, read_result
from simulator.svg import MARKERS, PALETTE, Axis, Mark, Series, chart, legend

SECTIONS = {"scaling": "Scaling curve", "pareto": "Pareto front", "cost": "Cost", "intervals": "Intervals",
            "configuration": "Run configuration"}
MISSING = "—"
NUMBER = re.compile(r"^(—|[-+]?[\d,.]+(e[-+]?\d+)?%?( – [-+]?[\d,.]+(e[-+]?\d+)?)?)$")   # cells set right-aligned


def build_report(paths: list[str]) -> str:
    """The page for these result files (each read and checked first: a bad one is a ConfigError)."""
    return render([read_result(path) for path in paths])


def render(results: list[ResultFile]) -> str:
    predictions = [p for result in results for p in result.predictions]
    colors = gpu_colors(predictions)
    body = [inputs_section(results), scaling_section(predictions, colors), pareto_section(predictions, colors),
            cost_section(predictions), intervals_section(predictions), configuration_section(results)]
    nav = " · ".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS.items())
    return PAGE.format(style=STYLE, nav=nav, body="\n".join(body))


def show(value) -> str:
    """Numbers as the terminal tables print them: 4 significant figures, whole numbers with separators
    from 10,000; missing values as a dash."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return MISSING
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def span(low, high) -> str:
    return MISSING if low is None or high is None else f"{show(low)} – {show(high)}"


def level(prediction: Prediction) -> str:
    return MISSING if prediction.interval is None else f"{100 * prediction.interval:g}%"


def inputs_section(results: list[ResultFile]) -> str:
    rows = [[r.path, r.kind, str(len(r.predictions)), versions_text(r)] for r in results]
    return ('<section id="inputs"><h2>Inputs</h2>'
            + table(["file", "kind", "predictions (count)", "infersim version"], rows) + "</section>")


def versions_text(result: ResultFile) -> str:
    known = list(dict.fromkeys(v for v in result.versions if v is not None))
    return ", ".join(known) if known else "not recorded"


def scaling_section(predictions: list[Prediction], colors: dict) -> str:
    points = [p for p in predictions if p.kind != "pareto" and p.tokens_per_s is not None and p.gpus]
    if not points:
        return section("scaling", "<p>No input predicts throughput at a GPU count (simulate, mlperf, size or sweep "
                                  "results do).</p>")
    intro = ("<p>Output tokens/s of the whole cluster, and per GPU, against the GPU count; shaded: the prediction "
             "interval (whiskers where a curve has one point). Hover a point for its values.</p>")
    figures = []
    for per_gpu, chart_id, y_label in ((False, "scaling-tokens", "output tokens/s"),
                                       (True, "scaling-per-gpu", "output tokens/s per GPU")):
        series = styled(scaling_marks(points, per_gpu, y_label), colors)
        svg = chart(chart_id, f"{y_label} against GPUs", series, Axis("GPUs (count)", log=True), Axis(y_label))
        figures.append(figure(svg, series, f"{y_label} against the GPU count"))
    return section("scaling", intro + '<div class="figures">' + "".join(figures) + "</div>")


def scaling_marks(points: list[Prediction], per_gpu: bool, unit: str) -> dict[str, tuple[str | None, list[Mark]]]:
    """Curve label -> (GPU, marks) for output tokens/s (or per GPU, interval scaled alike) against GPUs."""
    groups: dict[str, tuple[str | None, list[Mark]]] = {}
    for p in points:
        y = p.tokens_per_s_per_gpu if per_gpu else p.tokens_per_s
        low, high = (p.per_gpu(p.tokens_per_s_low), p.per_gpu(p.tokens_per_s_high)) if per_gpu else (
            p.tokens_per_s_low, p.tokens_per_s_high)
        interval = "" if low is None or high is None else f" ({level(p)} interval {span(low, high)})"
        title = f"{p.label} [{p.source}]: {p.gpus:g} GPUs, {show(y)} {unit}{interval}"
        data = identity(p) + (("x", repr(p.gpus)), ("y", repr(y)))
        data += (("low", repr(low)), ("high", repr(high))) if low is not None and high is not None else ()
        groups.setdefault(p.series, (p.gpu, []))[1].append(Mark(p.gpus, y, title, low, high, data))
    return groups


def pareto_section(predictions: list[Prediction], colors: dict) -> str:
    points = [p for p in predictions if p.kind == "pareto" and p.tokens_per_s_per_user is not None
              and p.tokens_per_s_per_gpu is not None]
    if not points:
        return section("pareto", "<p>No pareto result among the inputs (<code>infersim pareto --out x.json</code> "
                                 "writes one).</p>")
    intro = ("<p>InferenceX's axes: each point a plan and concurrency; the line joins a GPU's points on the front "
             "(no other point of that search is better on both axes), faded points are off it.</p>")
    x_axis = Axis("interactivity (output tokens/s per user)")
    figures = []
    for field, chart_id, y_label in (("tokens_per_s_per_gpu", "pareto-front", "output tokens/s per GPU"),
                                     ("total_tokens_per_s_per_gpu", "pareto-total", "total tokens/s per GPU")):
        shown = [p for p in points if getattr(p, field) is not None]
        if not shown:
            continue
        series = [replace(s, line=tuple(m for m in s.marks if not m.faded), band=False)
                  for s in styled(pareto_marks(shown, field, y_label), colors)]
        svg = chart(chart_id, f"Pareto front: {y_label} against interactivity", series, x_axis,
                    Axis(f"throughput ({y_label})"))
        figures.append(figure(svg, series, f"{y_label} against output tokens/s per user"))
    return section("pareto", intro + '<div class="figures">' + "".join(figures) + "</div>")


def pareto_marks(points: list[Prediction], field: str, unit: str) -> dict[str, tuple[str | None, list[Mark]]]:
    """GPU (and file, when several) -> (GPU, marks); points off the front faded."""
    several = len({p.source for p in points}) > 1
    groups: dict[str, tuple[str | None, list[Mark]]] = {}
    for p in points:
        y = getattr(p, field)
        title = (f"{p.label} [{p.source}]: {show(p.tokens_per_s_per_user)} output tokens/s per user, {show(y)} {unit}, "
                 f"{show(p.usd_per_million_tokens)} $ per million tokens, p99 TTFT {show(p.ttft_p99_s)} s, "
                 f"p99 TPOT {show(p.tpot_p99_s)} s" + ("" if p.on_front else " (not on the front)"))
        data = identity(p) + (("x", repr(p.tokens_per_s_per_user)), ("y", repr(y)),
                              ("on-front", "true" if p.on_front else "false"))
        label = f"{p.series} ({Path(p.source).name})" if several else p.series
        groups.setdefault(label, (p.gpu, []))[1].append(
            Mark(p.tokens_per_s_per_user, y, title, data=data, faded=not p.on_front))
    return groups


def styled(groups: dict[str, tuple[str | None, list[Mark]]], colors: dict) -> list[Series]:
    """Series in label order, coloured by GPU (the same GPU the same colour in every chart) with dash and
    marker telling apart a GPU's curves; by position instead when one GPU has more curves than markers."""
    per_gpu = Counter(gpu for gpu, _ in groups.values())
    by_gpu = max(per_gpu.values(), default=0) <= len(MARKERS)
    series, seen = [], Counter()
    for index, label in enumerate(sorted(groups)):
        gpu, marks = groups[label]
        if by_gpu:
            color, style = colors.get(gpu), seen[gpu]
            seen[gpu] += 1
        else:
            color, style = PALETTE[index % len(PALETTE)], index // len(PALETTE)
        series.append(Series(label, tuple(marks), color=color, style=style))
    return series


def gpu_colors(predictions: list[Prediction]) -> dict:
    names = sorted({p.gpu for p in predictions if p.gpu is not None})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def cost_section(predictions: list[Prediction]) -> str:
    if not predictions:
        return section("cost", "<p>No predictions.</p>")
    with_mw = any(p.tokens_per_s_per_provisioned_mw is not None for p in predictions)
    with_front = any(p.on_front is not None for p in predictions)
    headers = ["file", "prediction", "GPUs (count)", "output tokens/s", "$ per million tokens",
               "interval ($ per million tokens)", "$ per hour", "interval ($ per hour)"]
    headers += ["output tokens/s per provisioned MW"] if with_mw else []
    headers += ["on the Pareto front"] if with_front else []
    rows = []
    for p in predictions:
        row = [p.source, p.label, show(p.gpus), show(p.tokens_per_s), show(p.usd_per_million_tokens),
               span(p.usd_per_million_tokens_low, p.usd_per_million_tokens_high), show(p.usd_per_hour),
               span(p.usd_per_hour_low, p.usd_per_hour_high)]
        row += [show(p.tokens_per_s_per_provisioned_mw)] if with_mw else []
        row += [MISSING if p.on_front is None else "yes" if p.on_front else "no"] if with_front else []
        rows.append(row)
    note = ("<p>Dollars from the GPU's price range in the catalog (or the run's override); "
            "intervals at the level the Intervals table gives.</p>")
    return section("cost", note + table(headers, rows, [identity(p) for p in predictions]))


def intervals_section(predictions: list[Prediction]) -> str:
    if not predictions:
        return section("intervals", "<p>No predictions.</p>")
    headers = ["file", "prediction", "output tokens/s", "interval (output tokens/s)", "$ per million tokens",
               "interval ($ per million tokens)", "level (%)"]
    rows = [[p.source, p.label, show(p.tokens_per_s), span(p.tokens_per_s_low, p.tokens_per_s_high),
             show(p.usd_per_million_tokens), span(p.usd_per_million_tokens_low, p.usd_per_million_tokens_high),
             level(p)] for p in predictions]
    note = ("<p>Central prediction intervals from the calibration's uncertainty (a dash: the result carries "
            "none, e.g. a profile without a fit).</p>")
    return section("intervals", note + table(headers, rows, [identity(p) for p in predictions]))


def configuration_section(results: list[ResultFile]) -> str:
    articles = []
    for result in results:
        parts = [f'<article class="config" data-source="{escape(result.path)}">',
                 f"<h3>{escape(result.path)} <small>({result.kind})</small></h3>",
                 f"<p>infersim version: {escape(versions_text(result))}</p>", "<h4>Resolved configuration</h4>"]
        if all(config is None for config in result.configs):
            parts.append('<p class="missing">not recorded</p>')
        else:
            parts.append(key_table(result.columns, [c if c is not None else {} for c in result.configs],
                                   missing="not recorded"))
        parts.append("<h4>Recorded in the result</h4>" + key_table(result.columns, list(result.recorded)))
        if result.notes:
            parts.append("<ul class=\"notes\">" + "".join(f"<li>{escape(n)}</li>" for n in result.notes) + "</ul>")
        articles.append("".join(parts) + "</article>")
    return section("configuration", "".join(articles))


def key_table(columns, tables: list[dict], missing: str = MISSING) -> str:
    """Rows of keys (in first-seen order) against one value column per result."""
    keys = list(dict.fromkeys(k for t in tables for k in t))
    rows = [[key] + [show(t[key]) if key in t else missing for t in tables] for key in keys]
    return table(["key", *columns], rows)


def identity(p: Prediction) -> tuple[tuple[str, str], ...]:
    return (("source", p.source), ("index", str(p.index)), ("kind", p.kind))


def table(headers: list[str], rows: list[list[str]], data: list[tuple] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        attrs = "".join(f' data-{k}="{escape(v)}"' for k, v in (data[i] if data else ()))
        cells = "".join(f'<td class="num">{escape(c)}</td>' if NUMBER.match(c) else f"<td>{escape(c)}</td>" for c in row)
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(svg: str, series: list[Series], caption: str) -> str:
    return f"<figure>{svg}{legend(series)}<figcaption>{escape(caption)}</figcaption></figure>"


def section(key: str, content: str) -> str:
    return f'<section id="{key}"><h2>{SECTIONS[key]}</h2>{content}</section>'


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
       margin: 0 auto; max-width: 1500px; padding: 0 24px 48px; }
h1 { margin: 20px 0 4px; } h2 { border-bottom: 1px solid #ccc; margin-top: 32px; }
nav a { color: #0b5394; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; } .config td.num { text-align: left; }
#configuration { display: flex; flex-wrap: wrap; gap: 0 40px; } #configuration h2 { flex: 1 0 100%; }
.figures { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; flex: 1 1 600px; max-width: 760px; }
svg.chart { width: 100%; height: auto; font-size: 12px; }
svg .grid { stroke: #e6e6e6; } svg .frame { fill: none; stroke: #999; }
svg .tick { fill: #444; } svg .axis-label { fill: #1b1b1b; font-size: 13px; }
svg .band { fill: currentColor; fill-opacity: 0.15; stroke: none; }
svg .line { fill: none; stroke: currentColor; stroke-width: 2; }
svg .whisker { stroke: currentColor; stroke-width: 1.5; }
svg .point { fill: currentColor; stroke: #fff; stroke-width: 1; }
svg .point.faded { fill-opacity: 0.3; stroke: none; }
svg .point:hover { stroke: #000; stroke-width: 2; }
.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.legend .key { margin-right: 6px; vertical-align: -1px; }
.legend .line { stroke: currentColor; stroke-width: 2; } .legend .point { fill: currentColor; }
figcaption { color: #555; font-size: 12px; } .missing { color: #8a4b00; } small { color: #666; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infersim report</title>
<style>{style}</style>
</head>
<body>
<header><h1>infersim report</h1><nav>{nav}</nav></header>
{body}
</body>
</html>
"""
