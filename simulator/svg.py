"""Charts as inline SVG for the report page: series of marks on linear or log axes, a shaded band or
whiskers for prediction intervals, and a line through chosen marks (a scaling curve, a Pareto front).
Pure string building, no dependency and no script: every mark is a <path class="point"> carrying data-* attributes
and a <title> the browser shows on hover."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito: tells colours apart under the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
# Series sharing a colour (one GPU from several sources) differ by dash and marker: style i uses entry i
DASHES = ("", "7 4", "2 3", "9 3 2 3")
MARKERS = ("circle", "square", "diamond", "triangle")
WIDTH, HEIGHT = 720, 400
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 20, 16, 54


@dataclass(frozen=True)
class Mark:
    """One data point: `low`/`high` its interval on y, `data` its data-* attributes (name, value)."""
    x: float
    y: float
    title: str
    low: float | None = None
    high: float | None = None
    data: tuple[tuple[str, str], ...] = ()
    faded: bool = False


@dataclass(frozen=True)
class Series:
    """Marks of one colour; `line` is the marks the line joins, in x order (all marks when None);
    `color` defaults to the palette by position, `style` picks dash and marker shape."""
    label: str
    marks: tuple[Mark, ...]
    line: tuple[Mark, ...] | None = None
    band: bool = True
    color: str | None = None
    style: int = 0


@dataclass(frozen=True)
class Axis:
    label: str                      # with its unit, e.g. "GPUs (count)"
    log: bool = False


@dataclass(frozen=True)
class Scale:
    """Value to pixel along one axis (log10 when `log`)."""
    low: float
    high: float
    pixel_low: float
    pixel_high: float
    log: bool = False
    ticks: tuple[float, ...] = field(default=())

    def __call__(self, value: float) -> float:
        transform = math.log10 if self.log else float
        span = transform(self.high) - transform(self.low)
        fraction = (transform(value) - transform(self.low)) / span
        return self.pixel_low + fraction * (self.pixel_high - self.pixel_low)


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `count` intervals."""
    raw = max(span / max(count, 1), 1e-12)      # a degenerate span (5e-324) still gets a step
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def linear_scale(values: list[float], pixel_low: float, pixel_high: float, count: int = 5) -> Scale:
    """A linear scale from zero (or the lowest negative value) to a round number above every value."""
    low, high = min([0.0, *values]), max([0.0, *values])
    if high == low:
        high = low + 1.0
    step = nice_step(high - low, count)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = tuple(low + i * step for i in range(round((high - low) / step) + 1))
    return Scale(low, high, pixel_low, pixel_high, ticks=ticks)


def log_scale(values: list[float], pixel_low: float, pixel_high: float) -> Scale:
    """A log scale a little wider than the values, ticks at powers of two (or 1-2-5 over wide ranges)."""
    low, high = min(values) / 1.25, max(values) * 1.25
    if high / low <= 2 ** 12:
        # end on a tick where one is near, so the outermost points have a labelled neighbour
        below, above = 2.0 ** math.floor(math.log2(low)), 2.0 ** math.ceil(math.log2(high))
        low, high = (below if below >= min(values) / 1.6 else low), (above if above <= max(values) * 1.6 else high)
        ticks = [2.0 ** k for k in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)]
    else:
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for m in (1, 2, 5)]
    return Scale(low, high, pixel_low, pixel_high, log=True, ticks=tuple(t for t in ticks if low <= t <= high))


def tick_label(value: float) -> str:
    """Short axis numbers: 0, 0.25, 8, 1.5k, 12M."""
    if value == 0:
        return "0"
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{value / divisor:.3g}{suffix}"
    return f"{value:.3g}"


def choose_scale(axis: Axis, values: list[float], pixel_low: float, pixel_high: float) -> Scale:
    if axis.log and values and min(values) > 0:
        return log_scale(values, pixel_low, pixel_high)
    return linear_scale(values, pixel_low, pixel_high)


def chart(chart_id: str, title: str, series: list[Series], x_axis: Axis, y_axis: Axis) -> str:
    """An <svg> element plotting `series` (colours in list order), with grid, ticks and axis labels."""
    marks = [m for s in series for m in s.marks]
    x = choose_scale(x_axis, [m.x for m in marks], MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    ys = [v for m in marks for v in (m.y, m.low, m.high) if v is not None]
    y = choose_scale(y_axis, ys, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>", _axes(x, y, x_axis, y_axis)]
    for index, one in enumerate(series):
        parts.append(_series(one, color_of(one, index), x, y))
    parts.append("</svg>")
    return "\n".join(parts)


def legend(series: list[Series]) -> str:
    """An HTML list naming each series beside its colour, dash and marker (as `chart` draws them)."""
    items = []
    for index, one in enumerate(series):
        dash = DASHES[one.style % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        key = (f'<svg class="key" viewBox="0 0 28 12" width="28" height="12" style="color:{color_of(one, index)}">'
               f'<line class="line" x1="1" y1="6" x2="27" y2="6"{dashed}/>'
               f'<path class="point" d="{marker_path(one.style, 14, 6)}"/></svg>')
        items.append(f"<li>{key}{escape(one.label)}</li>")
    return '<ul class="legend">' + "".join(items) + "</ul>"


def color_of(series: Series, index: int) -> str:
    return series.color or PALETTE[index % len(PALETTE)]


def marker_path(style: int, cx: float, cy: float, r: float = 4.0) -> str:
    """SVG path data of the marker for `style`, centred on (cx, cy), about 2r across."""
    shape = MARKERS[style % len(MARKERS)]
    if shape == "circle":
        return f"M{cx - r:.1f},{cy:.1f}a{r:g},{r:g} 0 1,0 {2 * r:g},0a{r:g},{r:g} 0 1,0 {-2 * r:g},0Z"
    if shape == "square":
        s = 0.85 * r
        return f"M{cx - s:.1f},{cy - s:.1f}h{2 * s:.1f}v{2 * s:.1f}h{-2 * s:.1f}Z"
    if shape == "diamond":
        s = 1.2 * r
        return f"M{cx:.1f},{cy - s:.1f}L{cx + s:.1f},{cy:.1f}L{cx:.1f},{cy + s:.1f}L{cx - s:.1f},{cy:.1f}Z"
    s = 1.15 * r
    return f"M{cx:.1f},{cy - s:.1f}L{cx + s:.1f},{cy + 0.8 * s:.1f}L{cx - s:.1f},{cy + 0.8 * s:.1f}Z"


def _axes(x: Scale, y: Scale, x_axis: Axis, y_axis: Axis) -> str:
    bottom, top = HEIGHT - MARGIN_BOTTOM, MARGIN_TOP
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    parts = ['<g class="axes">']
    for tick in x.ticks:
        px = _px(x(tick))
        parts.append(f'<line class="grid" x1="{px}" y1="{top}" x2="{px}" y2="{bottom}"/>'
                     f'<text class="tick" x="{px}" y="{bottom + 16}" text-anchor="middle">{tick_label(tick)}</text>')
    for tick in y.ticks:
        py = _px(y(tick))
        parts.append(f'<line class="grid" x1="{left}" y1="{py}" x2="{right}" y2="{py}"/>'
                     f'<text class="tick" x="{left - 6}" y="{py}" dy="0.32em" text-anchor="end">{tick_label(tick)}</text>')
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"/>')
    parts.append(f'<text class="axis-label" x="{(left + right) / 2:g}" y="{HEIGHT - 12}" '
                 f'text-anchor="middle">{escape(x_axis.label)}</text>')
    parts.append(f'<text class="axis-label" transform="translate(16 {(top + bottom) / 2:g}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_axis.label)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _series(one: Series, color: str, x: Scale, y: Scale) -> str:
    parts = [f'<g class="series" data-series="{escape(one.label)}" style="color:{color}">']
    line = sorted(one.marks if one.line is None else one.line, key=lambda m: (m.x, m.y))
    banded = one.band and len(line) > 1 and all(m.low is not None and m.high is not None for m in line)
    if banded:
        outline = [(x(m.x), y(m.high)) for m in line] + [(x(m.x), y(m.low)) for m in reversed(line)]
        parts.append(f'<polygon class="band" points="{_points(outline)}"/>')
    in_band = {id(m) for m in line} if banded else set()
    for mark in one.marks:
        if mark.low is not None and mark.high is not None and id(mark) not in in_band:
            px = _px(x(mark.x))
            parts.append(f'<line class="whisker" x1="{px}" y1="{_px(y(mark.low))}" x2="{px}" y2="{_px(y(mark.high))}"/>')
    if len(line) > 1:
        dash = DASHES[one.style % len(DASHES)]
        parts.append(f'<polyline class="line" points="{_points([(x(m.x), y(m.y)) for m in line])}"'
                     + (f' stroke-dasharray="{dash}"/>' if dash else "/>"))
    for mark in one.marks:
        data = "".join(f' data-{name}="{escape(value)}"' for name, value in mark.data)
        css = "point faded" if mark.faded else "point"
        parts.append(f'<path class="{css}" d="{marker_path(one.style, x(mark.x), y(mark.y))}"{data}>'
                     f"<title>{escape(mark.title)}</title></path>")
    parts.append("</g>")
    return "\n".join(parts)


def _px(value: float) -> str:
    return f"{value:.1f}"


def _points(pairs) -> str:
    return " ".join(f"{_px(a)},{_px(b)}" for a, b in pairs)
