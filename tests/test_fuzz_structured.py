"""Structure-aware fuzzing of every loader and CLI option: hypothesis builds well-formed TOML, CSV, JSONL
and JSON files and command lines whose values are ordinary or extreme (0, negative, inf, nan, 1e308, huge
integers, wrong types, unknown keys, conflicting options). The oracle (tests/fuzzing.py): hostile input
exits 2 with one line naming the field or file; well-formed input exits 0 with a result that passes the
invariants (finite numbers, conservation, a reason count per drop, throughput under the roofline bound,
makespan covering the arrivals). `scripts/fuzz_census.py` runs the same generators without stopping.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.fuzzing import BASE, INF, NAN, Case, Field, classify, mutated, nest, toml_text

SIM = ["simulate", *BASE, "--json"]


def small(low, high):
    return st.integers(low, high)


# ---- simulate's command-line options -------------------------------------------------------------
OPTIONS = {   # flag: (domain, valid values)
    "--max-batch-size": (Field("max_batch_size", 1, 65536, integer=True), small(1, 64)),
    "--max-tokens-per-step": (Field("max_tokens_per_step", 16, 10_000_000, integer=True), small(16, 8192)),
    "--block-size": (Field("block_size", 1, 4096, integer=True), small(1, 32)),
    "--memory-utilization": (Field("memory_utilization", 0.05, 1.0), st.floats(0.5, 0.95)),
    "--seed": (Field("seed", 0, 2 ** 63 - 1, integer=True), small(0, 100)),
    "--usd-per-gpu-hour": (Field("usd_per_gpu_hour", 0, 1e4), st.floats(0, 10)),
    "--interval": (Field("interval", 0, 0.999, low_open=True), st.floats(0.5, 0.95)),
    "--sla-ttft": (Field("sla_ttft", 0, 1e6, low_open=True), st.floats(0.1, 10)),
    "--sla-tpot": (Field("sla_tpot", 0, 1e6, low_open=True), st.floats(0.01, 1)),
    "--max-time": (Field("max_time", 0, 1e9, low_open=True), st.floats(1, 1000)),
    "--scaleout-gbps": (Field("nic_gbps", 0, 1e6, low_open=True), st.floats(100, 800)),
    "--oversubscription": (Field("oversubscription", 1, 1000), st.floats(1, 4)),
    "--gpus": (Field("gpus", 1, 100_000, integer=True), small(1, 2)),
}
LENGTHS_VALID = st.one_of(small(1, 2048).map(str), st.tuples(small(1, 100), small(100, 2048)).map(
    lambda t: f"uniform:{t[0]},{t[1]}"), st.tuples(small(10, 1000), st.floats(0.1, 2)).map(
    lambda t: f"lognormal:{t[0]},{t[1]:.3f}"), st.just("lognormal:200,1,1,2000"))
LENGTHS_HOSTILE = ["fixed:inf", "uniform:1,inf", "lognormal:100,1,1,inf", "0", "-5", "uniform:9,3", "lognormal:abc",
                   "1e400", "nan", "uniform:1", "10000001", "fixed:1.5", "lognormal:100,-1", "lognormal:100,1,5,2",
                   "uniform:-3,4", "file:/nonexistent/lengths.csv", "inf", "lognormal:inf,1", "lognormal:100,nan"]
FAIL_HOSTILE = ["gpu:99@1", "gpu:0@-1", "gpu:0@inf", "gpu:0@nan", "link:x-y@1", "gpu:x@1", "gpu:0@1e308", "oops",
                "gpu:-1@1", "gpu:0@", "gpu:1.5@1"]
SET_HOSTILE = ["gpu.hbm_tb_per_s=-1", "gpu.hbm_tb_per_s=inf", "topology.nic_gbps=nan", "gpu.peak_tflops.fp8=0",
               "topology.servers=abc", "topology.gpus_per_server=0", "x=1", "gpu.hbm_gb=1e308",
               "topology.servers=-2", "topology.spines=abc", "topology.oversubscription=inf"]
WORKLOAD_HOSTILE = [   # (flag values, names) outside their domain, or in conflict
    (["--rate", "0", "--duration", "5"], ("--rate", "rate")), (["--rate", "-1", "--duration", "5"], ("--rate",)),
    (["--rate", "inf", "--duration", "5"], ("--rate",)), (["--rate", "nan", "--duration", "5"], ("--rate",)),
    (["--rate", "1e308", "--duration", "5"], ("--rate", "rate")), (["--rate", "5", "--duration", "0"], ("duration",)),
    (["--rate", "5", "--duration", "1e308"], ("duration",)), (["--rate", "5", "--duration", "-1"], ("duration",)),
    (["--rate", "5", "--duration", "inf"], ("duration",)), (["--offline", "--requests", "0"], ("requests",)),
    (["--offline", "--requests", "-1"], ("requests",)), (["--offline", "--requests", "10" * 15], ("requests",)),
    (["--offline", "--requests", "1.5"], ("--requests",)), (["--users", "0", "--requests", "5"], ("users",)),
    (["--users", "4", "--requests", "5", "--think-time", "-1"], ("think",)),
    (["--users", "4", "--requests", "5", "--think-time", "inf"], ("think",)),
    (["--rate", "5", "--requests", "10", "--duration", "1000"], ("--duration", "--requests")),
    (["--offline", "--requests", "5", "--duration", "10"], ("--duration",)),
    (["--rate", "5", "--requests", "5", "--think-time", "2"], ("--think-time",)),
    (["--rate", "5", "--requests", "5", "--cv", "3"], ("--cv",)),
    (["--rate", "5", "--requests", "5", "--arrival", "gamma", "--cv", "0"], ("cv",)),
    (["--offline", "--requests", "5", "--arrival", "gamma"], ("--arrival",)),
    (["--offline", "--rate", "5", "--requests", "5"], ("--rate", "--offline")),
    (["--requests", "5"], ("--rate", "--offline", "--users")),
]


@st.composite
def workload_flags(draw):
    kind = draw(st.sampled_from(["offline", "rate-requests", "rate-duration", "users", "gamma"]))
    n = str(draw(small(1, 20)))
    if kind == "offline":
        return ["--offline", "--requests", n]
    if kind == "rate-requests":
        return ["--rate", f"{draw(st.floats(0.5, 50)):.3f}", "--requests", n]
    if kind == "rate-duration":
        rate = round(draw(st.floats(0.5, 5)), 3)      # a duration holds one request at least: rate x duration >= 1
        return ["--rate", f"{rate:.3f}", "--duration", f"{draw(st.floats(max(0.5, 1.001 / rate), 4)):.3f}"]
    if kind == "gamma":
        return ["--rate", "4", "--arrival", "gamma", "--cv", f"{draw(st.floats(0.3, 4)):.3f}", "--requests", n]
    return ["--users", str(draw(small(1, 8))), "--requests", n, "--think-time", f"{draw(st.floats(0, 1)):.3f}"]


@st.composite
def simulate_options(draw):
    argv = list(SIM)
    hostile, names = False, ()
    which = draw(st.sampled_from(["workload", "option", "lengths", "fail", "set", "none", "none"]))
    if which == "workload":
        flags, names = draw(st.sampled_from(WORKLOAD_HOSTILE))
        return Case(argv + ["--gpus", "1"] + flags, hostile=True, names=names)
    argv += draw(workload_flags())
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=3, unique=True))
    for flag in chosen:
        argv += [flag, str(draw(OPTIONS[flag][1]))]
    if "--gpus" not in chosen:
        argv += ["--gpus", "1"]
    for key in ("--input-tokens", "--output-tokens"):
        if draw(st.booleans()):
            argv += [key, draw(LENGTHS_VALID)]
    if which == "option":
        flag = draw(st.sampled_from(sorted(OPTIONS)))
        domain = OPTIONS[flag][0]
        value = draw(st.sampled_from([v for v in domain.hostile() if not isinstance(v, list)]))
        argv += [flag, json.dumps(value) if isinstance(value, bool) else str(value)]
        hostile, names = True, (flag, domain.name)
    elif which == "lengths":
        flag = draw(st.sampled_from(["--input-tokens", "--output-tokens"]))
        argv += [flag, draw(st.sampled_from(LENGTHS_HOSTILE))]
        hostile, names = True, (flag,)
    elif which == "fail":
        argv += ["--fail", draw(st.sampled_from(FAIL_HOSTILE))]
        hostile, names = True, ("--fail",)
    elif which == "set":
        argv += ["--set", draw(st.sampled_from(SET_HOSTILE))]
        hostile, names = True, ("--set", "topology", "gpu", "servers", "spines", "nic_gbps", "oversubscription")
    return Case(argv, hostile=hostile, names=names)


# ---- workload TOML ---------------------------------------------------------------------------------
WORKLOAD_FIELDS = {
    "requests": Field("requests", 1, 50_000_000, integer=True),
    "duration_s": Field("duration_s", 0, 1e8, low_open=True),
    "arrival.kind": Field("kind", choices=("poisson", "gamma", "constant", "offline", "closed-loop")),
    "arrival.rate_per_s": Field("rate_per_s", 0, 1e9, low_open=True),
    "arrival.cv": Field("cv", 0, 100, low_open=True),
    "arrival.users": Field("users", 1, 10_000_000, integer=True),
    "arrival.think_time_s": Field("think_time_s", 0, 1e6),
    "input.tokens": Field("tokens", 1, 10_000_000, integer=True),
    "output.low": Field("low", 1, 10_000_000, integer=True),
    "output.high": Field("high", 1, 10_000_000, integer=True),
    "output.mean": Field("mean", 1, 10_000_000),
    "output.cv": Field("cv", 0, 100, low_open=True),
}


@st.composite
def workload_toml(draw):
    kind = draw(st.sampled_from(["poisson", "gamma", "constant", "offline", "closed-loop"]))
    valid = {"arrival.kind": kind}
    if kind in ("poisson", "gamma", "constant"):
        valid["arrival.rate_per_s"] = draw(st.floats(0.5, 5))
    if kind in ("offline", "closed-loop") or draw(st.booleans()):
        valid["requests"] = draw(small(1, 20))
    else:       # a duration holds one request at least: rate x duration >= 1
        valid["duration_s"] = draw(st.floats(max(0.5, 1.001 / valid["arrival.rate_per_s"]), 4))
    if kind == "gamma":
        valid["arrival.cv"] = draw(st.floats(0.3, 3))
    if kind == "closed-loop":
        valid["arrival.users"] = draw(small(1, 6))
        valid["arrival.think_time_s"] = draw(st.floats(0, 1))
    valid.update({"input.kind": "fixed", "input.tokens": draw(small(1, 2048))})
    if draw(st.booleans()):
        low = draw(small(1, 200))
        valid.update({"output.kind": "uniform", "output.low": low, "output.high": low + draw(small(0, 500))})
    else:
        valid.update({"output.kind": "lognormal", "output.mean": draw(small(10, 500)),
                      "output.cv": draw(st.floats(0.2, 2))})
    fields = {k: v for k, v in WORKLOAD_FIELDS.items() if k in valid}
    values, hostile, names = draw(mutated(valid, fields))
    conflict = draw(st.sampled_from([None, None, None, "both", "trace"]))
    if conflict == "both" and kind not in ("offline", "closed-loop"):
        values.update({"requests": 5, "duration_s": 2.0})
        hostile, names = True, ("requests", "duration_s")
    elif conflict == "trace":
        values["trace"] = "t.csv"
        hostile, names = True, ("trace",)
    return Case(SIM + ["--gpus", "1", "--workload", "{tmp}/w.toml"], {"w.toml": toml_text(nest(values))},
                hostile, names + ("w.toml",))


# ---- traces ----------------------------------------------------------------------------------------
CELL_HOSTILE = {"arrival_s": [-1, "inf", "nan", "1e308", "abc", "-inf", "1e20"],
                "input_tokens": [0, -5, 1.5, "1e308", "100000000000000000000", "x", "inf", "nan", 10_000_001],
                "output_tokens": [0, -5, 1.5, "1e308", "x", "inf", "nan", 10_000_001]}
JSON_HOSTILE = [True, False, None, [1], {"a": 1}, "12x"]


@st.composite
def trace_rows(draw):
    count = draw(small(1, 12))
    arrivals = sorted(round(draw(st.floats(0, 60)), 4) for _ in range(count))
    return [[a, draw(small(1, 2048)), draw(small(1, 512))] for a in arrivals]


@st.composite
def trace_csv(draw):
    rows = draw(trace_rows())
    cells = [[str(v) for v in row] for row in rows]
    header = "arrival_s,input_tokens,output_tokens"
    hostile, names = False, ("t.csv",)
    how = draw(st.sampled_from(["none", "none", "cell", "extra", "missing", "header"]))
    i = draw(small(0, len(rows) - 1))
    if how == "cell":
        column = draw(small(0, 2))
        name = ("arrival_s", "input_tokens", "output_tokens")[column]
        cells[i][column] = str(draw(st.sampled_from(CELL_HOSTILE[name])))
        hostile = True
    elif how == "extra":
        cells[i].append("99")
        hostile = True
    elif how == "missing":
        cells[i].pop()
        hostile = True
    elif how == "header":
        header = "arrival_s,input_tokns,output_tokens"
        hostile = True
    text = header + "\n" + "".join(",".join(row) + "\n" for row in cells)
    return Case(SIM + ["--gpus", "1", "--trace", "{tmp}/t.csv"], {"t.csv": text}, hostile, names,
                arrivals=tuple(r[0] for r in rows) if not hostile else ())


@st.composite
def trace_jsonl(draw):
    rows = draw(trace_rows())
    records = [{"arrival_s": a, "input_tokens": i, "output_tokens": o} for a, i, o in rows]
    hostile = False
    how = draw(st.sampled_from(["none", "none", "cell", "type", "not-object"]))
    k = draw(small(0, len(rows) - 1))
    key = draw(st.sampled_from(["arrival_s", "input_tokens", "output_tokens"]))
    if how == "cell":
        value = draw(st.sampled_from(CELL_HOSTILE[key]))
        records[k][key] = float(value) if isinstance(value, str) and value not in ("abc", "x") else value
        hostile = True
    elif how == "type":
        records[k][key] = draw(st.sampled_from(JSON_HOSTILE))
        hostile = True
    lines = [json.dumps(r, allow_nan=True) for r in records]
    if how == "not-object":
        lines[k] = "[1, 2, 3]"
        hostile = True
    return Case(SIM + ["--gpus", "1", "--trace", "{tmp}/t.jsonl"], {"t.jsonl": "\n".join(lines) + "\n"}, hostile,
                ("t.jsonl",), arrivals=tuple(r[0] for r in rows) if not hostile else ())


# ---- topology TOML -----------------------------------------------------------------------------------
TOPOLOGY_FIELDS = {
    "servers": Field("servers", 1, 100_000, integer=True),
    "gpus_per_server": Field("gpus_per_server", 1, 4096, integer=True),
    "nic_gbps": Field("nic_gbps", 0, 1e6, low_open=True),
    "oversubscription": Field("oversubscription", 1, 1000),
    "fabric": Field("fabric", choices=("rail", "fat-tree")),
    "servers_per_leaf": Field("servers_per_leaf", 1, 100_000, integer=True),
    "spines": Field("spines", 1, 100_000, integer=True),
    "scaleup_gb_per_s": Field("scaleup_gb_per_s", 0, 1e6, low_open=True),
    "server_kind": Field("server_kind", choices=("nvswitch", "mesh", "nvl72")),
    "nic_latency_us": Field("nic_latency_us", 0, 1e6),
}


@st.composite
def topology_toml(draw):
    gpus = draw(small(1, 4))
    per_server = draw(small(1, 4))
    valid = {"builder": "cluster", "gpus_per_server": per_server,
             "servers": -(-gpus // per_server) + draw(small(0, 2)), "nic_gbps": draw(st.floats(100, 800)),
             "oversubscription": draw(st.floats(1, 4)), "fabric": draw(st.sampled_from(["rail", "fat-tree"])),
             "servers_per_leaf": draw(small(1, 4)), "spines": draw(small(1, 4)),
             "scaleup_gb_per_s": draw(st.floats(100, 1800)), "server_kind": "nvswitch",
             "nic_latency_us": draw(st.floats(0, 5))}
    fields = {k: v for k, v in TOPOLOGY_FIELDS.items() if k in valid}
    values, hostile, names = draw(mutated(valid, fields))
    return Case(SIM + ["--offline", "--requests", "4", "--gpus", str(gpus), "--topology", "{tmp}/topo.toml"],
                {"topo.toml": toml_text(values)}, hostile, names + ("topo.toml",))


# ---- GPU, model and profile catalogs ------------------------------------------------------------------
GPU_FIELDS = {
    "fuzzgpu.hbm_gb": Field("hbm_gb", 0, 1e7, low_open=True),
    "fuzzgpu.hbm_tb_per_s": Field("hbm_tb_per_s", 0, 1e7, low_open=True),
    "fuzzgpu.peak_tflops.bf16": Field("peak_tflops.bf16", 0, 1e7, low_open=True),
    "fuzzgpu.peak_tflops.fp8": Field("peak_tflops.fp8", 0, 1e7, low_open=True),
    "fuzzgpu.scaleup": Field("scaleup", choices=("nvswitch", "mesh", "nvl72")),
    "fuzzgpu.scaleup_gb_per_s": Field("scaleup_gb_per_s", 0, 1e7, low_open=True),
    "fuzzgpu.gpus_per_server": Field("gpus_per_server", 1, 4096, integer=True),
    "fuzzgpu.nic_gbps": Field("nic_gbps", 0, 1e7, low_open=True),
    "fuzzgpu.power_w": Field("power_w", 0, 1e7, low_open=True),
}


@st.composite
def gpu_catalog(draw):
    valid = {"fuzzgpu.display_name": "Fuzz GPU", "fuzzgpu.vendor": "nvidia", "fuzzgpu.family": "fuzz",
             "fuzzgpu.hbm_gb": draw(st.floats(80, 300)), "fuzzgpu.hbm_tb_per_s": draw(st.floats(2, 10)),
             "fuzzgpu.peak_tflops.bf16": draw(st.floats(500, 3000)),
             "fuzzgpu.peak_tflops.fp8": draw(st.floats(1000, 6000)),
             "fuzzgpu.scaleup": "nvswitch", "fuzzgpu.scaleup_gb_per_s": draw(st.floats(400, 1800)),
             "fuzzgpu.gpus_per_server": draw(small(1, 8)), "fuzzgpu.nic_gbps": draw(st.floats(100, 800)),
             "fuzzgpu.power_w": draw(st.floats(300, 1500)), "fuzzgpu.usd_per_gpu_hour": [1.0, 3.0],
             "fuzzgpu.source": "fuzz"}
    values, hostile, names = draw(mutated(valid, GPU_FIELDS))
    return Case(["simulate", "--model", "llama3.1-8b", "--gpu", "fuzzgpu", "--catalog", "{tmp}/gpus.toml", "--json",
                 "--gpus", "1", "--offline", "--requests", "4", "--input-tokens", "128", "--output-tokens", "16"],
                {"gpus.toml": toml_text(nest(values))}, hostile, names + ("gpus.toml",))


MODEL_FIELDS = {f"fuzzmodel.{k}": Field(k, 1, 10_000_000, integer=True)
                for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab")}
MODEL_FIELDS["fuzzmodel.max_context"] = Field("max_context", 1, 100_000_000, integer=True)


@st.composite
def model_catalog(draw):
    heads = draw(st.sampled_from([8, 16, 32]))
    valid = {"fuzzmodel.layers": draw(small(1, 16)), "fuzzmodel.hidden": 1024, "fuzzmodel.heads": heads,
             "fuzzmodel.kv_heads": draw(st.sampled_from([1, 2, 4, 8])), "fuzzmodel.head_dim": 64,
             "fuzzmodel.ffn": draw(small(512, 4096)), "fuzzmodel.vocab": draw(small(1000, 50000)),
             "fuzzmodel.max_context": draw(small(4096, 131072))}
    values, hostile, names = draw(mutated(valid, MODEL_FIELDS))
    return Case(["simulate", "--model", "fuzzmodel", "--model-catalog", "{tmp}/models.toml", "--gpu", "b200",
                 "--json", "--gpus", "1", "--offline", "--requests", "4", "--input-tokens", "128",
                 "--output-tokens", "16"], {"models.toml": toml_text(nest(values))}, hostile, names + ("models.toml",))


PROFILE_FIELDS = {f"default.{k}": Field(k, 0, 1.0, low_open=True)
                  for k in ("compute_efficiency", "memory_efficiency", "attention_efficiency", "collective_efficiency")}
PROFILE_FIELDS["default.step_overhead_s"] = Field("step_overhead_s", 0, 10.0)
PROFILE_FIELDS["default.gemm_half_tokens"] = Field("gemm_half_tokens", 0, 1e6)
PROFILE_FIELDS["default.gemm_ridge_excess"] = Field("gemm_ridge_excess", 0, 1.0)


@st.composite
def profile_toml(draw):
    valid = {"default.compute_efficiency": draw(st.floats(0.3, 0.9)),
             "default.memory_efficiency": draw(st.floats(0.3, 0.95)),
             "default.attention_efficiency": draw(st.floats(0.2, 0.9)),
             "default.collective_efficiency": draw(st.floats(0.3, 1.0)),
             "default.step_overhead_s": draw(st.floats(0, 0.01)), "default.gemm_half_tokens": draw(st.floats(1, 256)),
             "default.gemm_ridge_excess": draw(st.floats(0, 1))}
    values, hostile, names = draw(mutated(valid, PROFILE_FIELDS))
    return Case(SIM + ["--gpus", "1", "--offline", "--requests", "4", "--profile", "{tmp}/profile.toml"],
                {"profile.toml": toml_text(nest(values))}, hostile, names + ("profile.toml",))


# ---- sweeps ----------------------------------------------------------------------------------------
@st.composite
def sweep_toml(draw):
    base = {"model": "llama3.1-8b", "gpu": "b200", "requests": 4, "offline": True, "input_tokens": 128,
            "output_tokens": 16}
    grid = {"gpus": [1, 2]}
    hostile, names = False, ("sweep.toml",)
    how = draw(st.sampled_from(["none", "none", "grid", "typo", "empty", "scalar", "top", "nodes"]))
    if how == "grid":
        key, field = draw(st.sampled_from([("gpus", Field("gpus", 1, 100_000, integer=True)),
                                           ("requests", Field("requests", 1, 50_000_000, integer=True)),
                                           ("max_batch_size", Field("max_batch_size", 1, 65536, integer=True))]))
        grid = {key: draw(st.lists(st.sampled_from([v for v in field.hostile() if not isinstance(v, list)]),
                                   min_size=1, max_size=3))}
        hostile, names = True, (key, "--" + key.replace("_", "-"), "every point")
    elif how == "typo":
        base["reqeusts"] = base.pop("requests")
        hostile, names = True, ("reqeusts", "no option of simulate")
    elif how == "empty":
        grid = {"gpus": []}
        hostile, names = True, ("gpus", "grid")
    elif how == "scalar":
        grid = {"gpus": 2}
        hostile, names = True, ("gpus", "grid")
    elif how == "top":
        grid["bogus"] = None
        hostile, names = True, ("bogus",)
    elif how == "nodes":
        grid = {"nodes": [0, -1, "x"]}
        hostile, names = True, ("nodes", "every point")
    spec = {"command": "simulate", "base": base, "grid": {k: v for k, v in grid.items() if v is not None}}
    text = toml_text(spec) + ("\n[bogus]\nx = 1\n" if how == "top" else "")
    return Case(["sweep", "{tmp}/sweep.toml", "--out", "{tmp}/out.csv", "--quiet"], {"sweep.toml": text}, hostile,
                names)


# ---- measurement rows and importers -----------------------------------------------------------------
ROW_HOSTILE = {"gpus": ["0", "-1", "inf", "nan", "1.5", "1e308", "abc"],
               "output_tokens_per_s": ["0", "-1", "inf", "nan", "1e308", "1e11", "abc"],
               "tp": ["0", "1.7", "inf", "abc"], "gpu": ["b9000", ""], "model": ["llama9", ""],
               "scenario": ["sever", ""], "rate_per_s": ["-1", "inf"], "users": ["0", "1.5"]}


@st.composite
def measurement_csv(draw):
    """Only hostile rows: a valid one would start a calibration fit, which takes seconds."""
    row = {"model": "llama2-70b", "gpu": "b200", "gpus": "8", "scenario": "offline", "output_tokens_per_s": "30000",
           "source": "fuzz", "tp": "1"}
    column = draw(st.sampled_from(sorted(ROW_HOSTILE)))
    row[column] = draw(st.sampled_from(ROW_HOSTILE[column]))
    text = ",".join(row) + "\n" + ",".join(row.values()) + "\n"
    return Case(["calibrate", "{tmp}/rows.csv"], {"rows.csv": text}, True, ("rows.csv",))


@st.composite
def vllm_json(draw):
    # at least 2 output tokens a request: an open loop is fitted on its median TPOT, which is at least the
    # 1.04 ms one H100 takes to read Llama 3.1 8B's weights once
    completed, outputs, rate = draw(small(1, 250)), draw(small(500, 100000)), draw(st.floats(0.5, 20))
    arriving = rate * max(1, round(outputs / completed))      # an open loop brings no more output than this
    valid = {"completed": completed, "output_throughput": draw(st.floats(0.01, 1)) * min(arriving, 5000),
             "total_input_tokens": draw(small(500, 100000)), "total_output_tokens": outputs,
             "request_rate": rate, "median_ttft_ms": draw(st.floats(1, 500)), "median_tpot_ms": draw(st.floats(2, 200))}
    fields = {k: Field(k, 0, None) for k in valid}
    values, hostile, names = draw(mutated(valid, fields, unknown_ok=True))
    text = json.dumps(values, allow_nan=True)
    return Case(["import-runs", "--format", "vllm", "{tmp}/run.json", "--model", "llama3.1-8b", "--gpu", "h100",
                 "--gpus", "1"], {"run.json": text}, hostile, names + ("run.json",))


@st.composite
def inferencemax_json(draw):
    valid = {"hw": "b200", "model": "llama3.3-70b", "precision": "fp8", "tp": draw(st.sampled_from([1, 2, 4, 8])),
             "ep": 1, "isl": 1024, "osl": 1024, "conc": draw(small(1, 64)),
             "output_tput_per_gpu": draw(st.floats(10, 3000)), "median_ttft": draw(st.floats(0.01, 2))}
    fields = {"tp": Field("tp", 1, 1024, integer=True), "conc": Field("conc", 1, 10_000_000, integer=True),
              "output_tput_per_gpu": Field("output_tput_per_gpu", 0, 1e7, low_open=True),
              "isl": Field("isl", 1, 10_000_000, integer=True),
              "hw": Field("hw", choices=("b200",)), "model": Field("model", choices=("llama3.3-70b",))}
    values, hostile, names = draw(mutated(valid, fields, unknown_ok=True))
    return Case(["import-runs", "--format", "inferencemax", "{tmp}/imx.json"],
                {"imx.json": json.dumps(values, allow_nan=True)}, hostile, names + ("imx.json",))


# ---- the other commands' options (hostile only: the valid runs take seconds) ------------------------
OTHER = [
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--queries"], Field("queries", 1, 10_000_000, integer=True)),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--scenario", "server", "--duration"],
     Field("duration", 0, 1e6, low_open=True)),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--scenario", "server", "--rate"],
     Field("rate", 0, 1e7, low_open=True)),
    (["mlperf", "--model", "llama3.1-8b", "--gpus"], Field("gpus", 1, 100_000, integer=True)),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--tp"], Field("tp", 1, 1, integer=True)),
    (["size", "--model", "llama3.1-8b", "--target-tokens-per-s"], Field("target-tokens-per-s", 0, 1e12, low_open=True)),
    (["size", "--model", "llama3.1-8b", "--target-tokens-per-s", "1000", "--node-gpus"],
     Field("node-gpus", 1, 1024, integer=True)),
    (["size", "--model", "llama3.1-8b", "--target-tokens-per-s", "1000", "--confidence"],
     Field("confidence", 0.5, 0.999)),
    (["calibrate", "tests/data/measurements_small.csv", "--interval"], Field("interval", 0, 0.999, low_open=True)),
]


@st.composite
def other_options(draw):
    prefix, field = draw(st.sampled_from(OTHER))
    value = draw(st.sampled_from([v for v in field.hostile() if not isinstance(v, (list, bool))]))
    return Case(prefix + [str(value)], hostile=True, names=(prefix[-1], field.name))


@st.composite
def plot_csv(draw):
    rows = [(x, draw(st.floats(0, 1e4))) for x in range(1, draw(small(2, 6)))]
    text = "point_id,status,nodes,tokens_per_s\n" + "".join(f"p{x},ok,{x},{y}\n" for x, y in rows)
    hostile = False
    how = draw(st.sampled_from(["none", "binary", "latin1", "noheader", "column", "nodir"]))
    out = "{tmp}/p.png"
    content: str | bytes = text
    if how == "binary":
        content, hostile = bytes(draw(st.lists(small(0, 255), min_size=1, max_size=200))) + b"\xff\xfe", True
    elif how == "latin1":
        content, hostile = text.encode() + "caf\xe9,ok,9,1\n".encode("latin-1"), True
    elif how == "noheader":
        content, hostile = "", True
    elif how == "column":
        content, hostile = text.replace("tokens_per_s", "tps"), True
    elif how == "nodir":
        out = "{tmp}/new/folder/p.png"
    return Case(["plot", "{tmp}/r.csv", "--x", "nodes", "--y", "tokens_per_s", "-o", out], {"r.csv": content},
                hostile, ("r.csv", "tokens_per_s"))


GENERATORS = {
    "simulate options": simulate_options(), "workload toml": workload_toml(), "trace csv": trace_csv(),
    "trace jsonl": trace_jsonl(), "topology toml": topology_toml(), "gpu catalog": gpu_catalog(),
    "model catalog": model_catalog(), "profile toml": profile_toml(), "sweep toml": sweep_toml(),
    "measurement csv": measurement_csv(), "vllm json": vllm_json(), "inferencemax json": inferencemax_json(),
    "other commands": other_options(), "plot csv": plot_csv(),
}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def check(case: Case) -> None:
    verdict, detail = classify(case)
    assert verdict in ("ok", "refused"), f"{verdict}: {detail}\n{case.describe()}"


def _test(name):
    @FUZZ
    @given(GENERATORS[name])
    def test(case):
        check(case)
    test.__name__ = "test_" + name.replace(" ", "_")
    test.__doc__ = f"Fuzz {name}: hostile values refused in one line naming the field, the rest valid results."
    return test


for _name in GENERATORS:
    globals()["test_" + _name.replace(" ", "_")] = _test(_name)
