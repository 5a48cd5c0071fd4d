"""The report page: it holds every data point of its inputs (read here from the raw files, not through the
report's own reader), references nothing outside itself, parses as HTML with its sections, shows a run's
configuration and version or says they are not recorded, refuses files it cannot read in one line (exit 2),
and is the same bytes for the same inputs.

The inputs are real infersim outputs made by the CLI at the start of the module (small runs, ~2 s), plus
tests/data/pareto_llama31_70b.json: `infersim pareto --model llama3.1-70b --gpu b200,mi355x --gpus 8
--max-concurrency 256 --out tests/data/pareto_llama31_70b.json` (a minute to regenerate, so kept as a file)."""
from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simulator.report import SECTIONS, build_report
from simulator.report_inputs import json_kind, read_result
from simulator.svg import Axis, Mark, Series, chart, linear_scale, log_scale, nice_step, tick_label
from tests.fuzzing import run_cli

DATA = Path(__file__).resolve().parent.parent / "data"
PARETO = DATA / "pareto_llama31_70b.json"
SMALL = ["--model", "llama3.1-8b", "--queries", "64"]
SWEEP = """command = "mlperf"
[base]
model = "llama3.1-8b"
queries = 64
[grid]
gpu = ["b200", "h100"]
nodes = [1, 2]
[[points]]
gpu = "nosuchgpu"
nodes = 1
"""
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
SVG_LEAVES = {"line", "rect", "polygon", "polyline", "path", "circle"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Path]:
    """kind -> a results file written by the CLI (and the pareto fixture)."""
    folder = tmp_path_factory.mktemp("results")
    files = {"simulate": folder / "sim.json", "mlperf": folder / "mlperf.json", "size": folder / "size.json",
             "sweep": folder / "sweep.csv", "pareto": PARETO}
    commands = [
        ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "2", "--rate", "5", "--requests", "30",
         "--out", files["simulate"]],
        ["mlperf", *SMALL, "--gpu", "b200", "--gpus", "1", "--out", files["mlperf"]],
        ["size", *SMALL, "--compare", "b200,h100", "--target-tokens-per-s", "5000", "--out", files["size"]],
    ]
    (folder / "sweep.toml").write_text(SWEEP)
    commands.append(["sweep", folder / "sweep.toml", "--out", files["sweep"], "--quiet"])
    for argv in commands:
        outcome = run_cli(argv)
        assert outcome.code == 0, (argv, outcome.err, outcome.error)
    return files


@pytest.fixture(scope="module")
def page(results, tmp_path_factory) -> tuple[str, "Page"]:
    out = tmp_path_factory.mktemp("page") / "report.html"
    outcome = run_cli(["report", *results.values(), "-o", out])
    assert outcome.code == 0, outcome.err + outcome.error
    html = out.read_text(encoding="utf-8")
    return html, Page.parse(html)


class Page(HTMLParser):
    """What the tests look at: marks per chart, table rows per section, every attribute, and whether
    every element that must be closed is closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.section = self.svg = None
        self.sections, self.svgs, self.attributes, self.styles = [], [], [], []
        self.marks: dict[str, list[dict]] = {}
        self.rows: dict[str, list[dict]] = {}
        self.text: dict[str, list[str]] = {}
        self.tags = []

    @classmethod
    def parse(cls, html: str) -> "Page":
        page = cls()
        page.feed(html)
        page.close()
        assert not page.stack, f"unclosed: {page.stack}"
        return page

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(tag, k, v or "") for k, v in attrs.items()]
        if tag == "section":
            self.section = attrs.get("id")
            self.sections.append(self.section)
        if tag == "svg" and "chart" in attrs.get("class", ""):
            self.svg = attrs["id"]
            self.svgs.append(self.svg)
        if "point" in attrs.get("class", "").split() and self.svg:
            self.marks.setdefault(self.svg, []).append(attrs)
        if tag == "tr" and "data-source" in attrs:
            self.rows.setdefault(self.section, []).append(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.attributes += [(tag, k, v or "") for k, v in attrs]
        self.tags.append(tag)
        if tag not in VOID | SVG_LEAVES:
            self.errors.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            raise AssertionError(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        self.stack.pop()
        if tag == "svg":
            self.svg = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            self.styles.append(data)
        self.text.setdefault(self.section, []).append(data)


def expected_points(results: dict[str, Path]) -> list[tuple[str, float, float]]:
    """(source, GPUs, output tokens/s) of every prediction, read from the files as written."""
    points = []
    simulate = json.loads(results["simulate"].read_text())
    points.append((str(results["simulate"]), simulate["plan"]["gpus"], simulate["output_tokens_per_s"]))
    mlperf = json.loads(results["mlperf"].read_text())
    points.append((str(results["mlperf"]), mlperf["gpus"], mlperf["output_tokens_per_s"]))
    points += [(str(results["size"]), r["gpus"], r["output_tokens_per_s"]) for r in json.loads(results["size"].read_text())]
    with open(results["sweep"], newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "ok"]
    points += [(str(results["sweep"]), float(r["gpus"]), float(r["output_tokens_per_s"])) for r in rows]
    return points


def test_each_kind_is_told_from_content(results, tmp_path):
    for kind, path in results.items():
        renamed = tmp_path / f"{kind}.data"              # the suffix says nothing
        renamed.write_bytes(path.read_bytes())
        assert read_result(str(renamed)).kind == kind
    assert json_kind({"kind": "pareto", "points": []}) == "pareto"
    assert json_kind({"tokens_per_s": 1.0}) is None
    assert json_kind([]) is None


def test_page_holds_every_scaling_point_with_its_interval(results, page):
    _, parsed = page
    expected = expected_points(results)
    assert len(expected) == 1 + 1 + 2 + 4          # simulate, mlperf, size x2, sweep 4 of 5 (one failed)
    for chart_id in ("scaling-tokens", "scaling-per-gpu"):
        marks = parsed.marks[chart_id]
        assert len(marks) == len(expected)
        for source, gpus, tokens in expected:
            y = tokens / gpus if chart_id == "scaling-per-gpu" else tokens
            found = [m for m in marks if m["data-source"] == source and float(m["data-x"]) == gpus
                     and float(m["data-y"]) == pytest.approx(y, rel=1e-12)]
            assert len(found) == 1, (chart_id, source, gpus, tokens)
    mlperf = json.loads(results["mlperf"].read_text())
    mark = next(m for m in parsed.marks["scaling-tokens"] if m["data-source"] == str(results["mlperf"]))
    assert float(mark["data-low"]) == mlperf["output_tokens_per_s_low"]
    assert float(mark["data-high"]) == mlperf["output_tokens_per_s_high"]


def test_page_holds_every_pareto_point(page):
    html, parsed = page
    points = json.loads(PARETO.read_text())["points"]
    for chart_id, field in (("pareto-front", "output_tokens_per_s_per_gpu"),
                            ("pareto-total", "total_tokens_per_s_per_gpu")):
        marks = parsed.marks[chart_id]
        assert len(marks) == len(points)
        for point in points:
            xy = (point["output_tokens_per_s_per_user"], point[field])
            found = [m for m in marks if (float(m["data-x"]), float(m["data-y"])) == xy]
            same = [p for p in points if (p["output_tokens_per_s_per_user"], p[field]) == xy]   # ties: e.g.
            assert len(found) == len(same)          # continuous and chunked alike when prompts fit one step
            assert {m["data-on-front"] for m in found} == {"true" if p["on_front"] else "false" for p in same}
    # the front of each GPU is joined by one line through exactly its front points
    fronts = {gpu: sum(p["on_front"] and p["gpu"] == gpu for p in points) for gpu in ("b200", "mi355x")}
    assert all(count >= 2 for count in fronts.values())
    lines = re.findall(r'<g class="series" data-series="([^"]+)"[^>]*>\n<polyline class="line" points="([^"]+)"',
                       html.split('id="pareto-front"')[1].split("</svg>")[0])
    assert {label: len(points_text.split()) for label, points_text in lines} == fronts


def test_cost_and_interval_tables_hold_every_prediction(results, page):
    _, parsed = page
    pareto_points = len(json.loads(PARETO.read_text())["points"])
    count = len(expected_points(results)) + pareto_points
    for section in ("cost", "intervals"):
        rows = parsed.rows[section]
        assert len(rows) == count
        assert len({(r["data-source"], r["data-index"]) for r in rows}) == count
    cost_text = " ".join(parsed.text["cost"])
    size = json.loads(results["size"].read_text())
    for result in size:
        assert f"{result['usd_per_hour']:.4g}" in cost_text
    assert "output tokens/s per provisioned MW" in cost_text        # the pareto file carries it
    mlperf = json.loads(results["mlperf"].read_text())
    row = next(r for r in parsed.rows["intervals"] if r["data-source"] == str(results["mlperf"]))
    assert row["data-kind"] == "mlperf"
    interval_text = " ".join(parsed.text["intervals"])
    low, high = mlperf["output_tokens_per_s_low"], mlperf["output_tokens_per_s_high"]
    as_tables_print = [f"{v:,.0f}" if v >= 1e4 else f"{v:.4g}" for v in (low, high)]   # output.format_table's rule
    assert " – ".join(as_tables_print) in interval_text
    assert f"{100 * mlperf['interval']:g}%" in interval_text


def test_nothing_outside_the_file_is_referenced(page):
    html, parsed = page
    for tag, name, value in parsed.attributes:
        if name in ("src", "href", "xlink:href", "action", "poster", "srcset", "data"):
            assert value.startswith("#"), (tag, name, value)
        assert not re.match(r"\s*(https?:|//|ftp:|javascript:)", value, re.I), (tag, name, value)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    styles = " ".join(parsed.styles)
    assert "@import" not in styles and "url(" not in styles
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_page_parses_with_its_sections(page):
    html, parsed = page
    assert html.startswith("<!DOCTYPE html>")
    assert parsed.sections == ["inputs", *SECTIONS]
    assert parsed.svgs == ["scaling-tokens", "scaling-per-gpu", "pareto-front", "pareto-total"]
    assert not parsed.errors
    # axis labels carry units
    for label in ("GPUs (count)", "output tokens/s per GPU", "interactivity (output tokens/s per user)"):
        assert f">{label}</text>" in html


def test_configuration_and_version_shown_or_not_recorded(results, tmp_path):
    document = json.loads(results["simulate"].read_text())
    document["config"] = {"cluster": {"gpu": "b200", "gpus": 2}, "workload": {"rate": 5.0, "fail": ["gpu:0@1"]}}
    document["infersim_version"] = "9.8.7"
    recorded = tmp_path / "with_config.json"
    recorded.write_text(json.dumps(document))
    bare = {k: v for k, v in json.loads(results["mlperf"].read_text()).items()
            if k not in ("config", "infersim_version")}            # a result from before run files
    unrecorded = tmp_path / "mlperf_bare.json"
    unrecorded.write_text(json.dumps(bare))
    parsed = Page.parse(build_report([str(recorded), str(unrecorded)]))
    text = "".join(parsed.text["configuration"])
    assert "cluster.gpus" in text and "workload.fail" in text and "gpu:0@1" in text
    assert "infersim version: 9.8.7" in text
    mlperf_part = text.split(str(unrecorded))[1]
    assert "infersim version: not recorded" in mlperf_part
    assert mlperf_part.count("not recorded") == 2            # version and configuration
    inputs = "".join(parsed.text["inputs"])
    assert "9.8.7" in inputs and "not recorded" in inputs


def test_sweep_failures_are_named_and_not_plotted(results, page):
    _, parsed = page
    text = " ".join(parsed.text["configuration"])
    assert "failed" in text and "nosuchgpu" in text
    assert not [m for m in parsed.marks["scaling-tokens"] if "nosuchgpu" in m.get("data-source", "")]


def test_user_text_is_escaped(tmp_path):
    document = json.loads(PARETO.read_text())
    document["model"] = "<script>alert(1)</script>"
    document["points"][0]["gpu"] = '"><img src=x onerror=alert(1)>'
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document))
    parsed = Page.parse(build_report([str(path)]))
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert "<script>alert(1)</script>" in "".join(parsed.text["configuration"])


def test_same_inputs_same_bytes(results, tmp_path):
    paths = [str(p) for p in results.values()]
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    for out in (first, second):
        assert run_cli(["report", *paths, "-o", out]).code == 0
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("name, content, says", [
    ("other.json", '{"requests": 3}', "not an infersim result"),
    ("list.json", "[1, 2]", "not an infersim result"),
    ("broken.json", '{"tokens_per_s": ', "not valid JSON"),
    ("table.csv", "a,b\n1,2\n", "not an infersim result"),
    ("empty.csv", "", "not an infersim result"),
    ("binary.bin", b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
    ("latin1.csv", "gpu\n\xe9\n".encode("latin-1"), "not UTF-8"),
    ("pareto.json", '{"kind": "pareto", "points": {"a": 1}}', "points must be a non-empty list"),
    ("pareto2.json", '{"kind": "pareto", "points": [3]}', "points[0] must be an object"),
    ("missing.json", None, "file not found"),
    ("huge.json", json.dumps({"kind": "pareto", "points": [{"gpu": "b200", "gpus": 8,
                                                             "output_tokens_per_s_per_user": 1e308}]}),
     "points[0].output_tokens_per_s_per_user 1e+308 is out of range"),
    ("half.json", json.dumps([{"target_tokens_per_s": 1e6, "tokens_per_s": 1e6, "gpu": "b200", "gpus": 0.5}]),
     "[0].gpus 0.5 is out of range [1, 1e+07]"),
    # a sweep cell that is no number was dropped but counted; a header-only sweep gave an empty page
    ("sweep_text.csv", "gpu,gpus,point_id,inputs_id,status,error,wall_s,output_tokens_per_s\nb200,two,p1,i,ok,,0.1,9\n",
     "point p1: gpus 'two' is not a finite number"),
    ("sweep_negative.csv", "gpu,gpus,point_id,inputs_id,status,error,wall_s,output_tokens_per_s\n"
                           "b200,8,p1,i,ok,,0.1,-1e9\n", "output_tokens_per_s -1000000000.0 is out of range [0, 1e+15]"),
    ("sweep_header.csv", "gpu,gpus,point_id,inputs_id,status,error,wall_s,output_tokens_per_s\n",
     "a sweep's results with no rows"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, name, content, says):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "report.html"
    outcome = run_cli(["report", str(PARETO), str(path), "-o", str(out)])
    assert outcome.code == 2 and not outcome.error
    lines = outcome.err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and says in lines[0], outcome.err
    assert not out.exists() and not list(tmp_path.glob(".report.html.*"))


def test_output_must_be_html(tmp_path):
    outcome = run_cli(["report", str(PARETO), "-o", str(tmp_path / "report.png")])
    assert outcome.code == 2 and "-o" in outcome.err and ".html" in outcome.err


# --- charts ---------------------------------------------------------------------------------------------

def test_ticks_are_round_and_cover_the_values():
    """Span 0..1,015,717 in 5 intervals: raw step 203,143 -> 250,000; ticks 0..1,250,000."""
    assert nice_step(1_015_717, 5) == 250_000
    scale = linear_scale([3094.0, 1_015_717.0], 350, 20)
    assert scale.ticks == (0, 250_000, 500_000, 750_000, 1_000_000, 1_250_000)
    assert scale(0) == 350 and scale(1_250_000) == 20
    assert linear_scale([5.0], 0, 100).ticks[-1] >= 5            # one value: still a range
    assert linear_scale([0.0], 0, 100).high > 0
    assert linear_scale([5e-324], 0, 100).high > 0               # a subnormal span still gets a step


def test_log_axis_ends_on_powers_of_two_near_the_data():
    """GPUs 8..91: 6.4..113.75 widened to the neighbouring ticks within 1.6x, 128 (but not down to 4)."""
    scale = log_scale([8.0, 16.0, 91.0], 0, 100)
    assert scale.ticks == (8.0, 16.0, 32.0, 64.0, 128.0)
    assert scale.high == 128 and scale.low == pytest.approx(6.4)
    assert scale(scale.low) == 0 and scale(scale.high) == pytest.approx(100)


def test_tick_labels_are_short():
    assert [tick_label(v) for v in (0, 0.25, 8, 1500, 1_250_000, 2e9)] == ["0", "0.25", "8", "1.5k", "1.25M", "2G"]


def test_chart_draws_a_band_only_under_a_joined_curve():
    banded = Series("a", (Mark(8, 10, "p", 9, 11), Mark(16, 20, "q", 18, 22)))
    single = Series("b", (Mark(8, 5, "r", 4, 6),))
    svg = chart("c", "t", [banded, single], Axis("GPUs (count)", log=True), Axis("tokens/s"))
    assert svg.count('class="band"') == 1 and svg.count('class="whisker"') == 1
    assert svg.count('class="point"') == 3 and "<title>r</title>" in svg
