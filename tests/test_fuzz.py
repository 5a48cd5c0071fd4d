"""Fuzz the file loaders (traces CSV/JSONL, measurements CSV, workload/topology/GPU/profile TOML, vLLM
and InferenceMAX JSON) with random and truncated inputs: the only failure allowed is ConfigError, whose
message is one line naming the file."""
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st

from simulator.errors import ConfigError
from simulator.hardware import get_gpu, load_gpus, load_profile, efficiency_for
from simulator.measurements import load_measurements
from simulator.run_results import from_inferencemax, from_vllm_benchmark
from topologies import load_topology
from workloads.spec_inputs import workload_from_toml
from workloads.traces import load_trace

DATA = Path(__file__).parent / "data"
SEEDS = {
    "trace.csv": (DATA / "trace_ok.csv").read_text(),
    "trace.jsonl": (DATA / "trace_ok.jsonl").read_text(),
    "rows.csv": (DATA / "measurements_small.csv").read_text(),
    "vllm.json": (DATA / "vllm_bench_rate.json").read_text(),
    "imx.json": (DATA / "inferencemax_gptoss_mi355x.json").read_text(),
    "workload.toml": 'requests = 20\n[arrival]\nkind = "poisson"\nrate_per_s = 4.0\n[input]\nkind = "fixed"\n'
                     'tokens = 100\n[output]\nkind = "uniform"\nlow = 1\nhigh = 50\n',
    "topology.toml": 'builder = "cluster"\nservers = 2\nnic_gbps = 400.0\nfabric = "rail"\n',
    "gpus.toml": '[mygpu]\ndisplay_name = "X"\nvendor = "nvidia"\nfamily = "f"\nhbm_gb = 80\nhbm_tb_per_s = 3.0\n'
                 'peak_tflops = { bf16 = 900, fp8 = 1800 }\nscaleup = "nvswitch"\nscaleup_gb_per_s = 900\n'
                 'gpus_per_server = 8\nnic_gbps = 400\npower_w = 700\nusd_per_gpu_hour = [2.0, 3.0]\nsource = "s"\n',
    "profile.toml": '[default]\ncompute_efficiency = 0.5\n[gpu.b200]\nmemory_efficiency = 0.7\n',
}


def load(name: str, path: Path):
    if name.startswith("trace"):
        return load_trace(path)
    if name == "rows.csv":
        return load_measurements(path)
    if name == "vllm.json":
        return from_vllm_benchmark(path, model="llama3.1-8b", gpu="h100", gpus=1)
    if name == "imx.json":
        return from_inferencemax(path)
    if name == "workload.toml":
        return workload_from_toml(path).build(0)
    if name == "topology.toml":
        return load_topology(str(path), get_gpu("h100"), 16)
    if name == "gpus.toml":
        return load_gpus([str(path)])
    return efficiency_for(get_gpu("b200"), load_profile(str(path)), profile_path=str(path))


def test_seed_files_load():
    """The fuzz starts from valid files, so it exercises the parsers past their first check."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in SEEDS.items():
            path = Path(tmp) / name
            path.write_text(text)
            assert load(name, path) is not None


def check(name: str, content: bytes, tmp_path: Path):
    path = tmp_path / name
    path.write_bytes(content)
    try:
        load(name, path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        assert str(path) in message or path.name in message or message.startswith(("--", "workload", "gpu ")), message


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), cut=st.floats(0, 1))
def test_truncated_files_fail_cleanly(tmp_path, name, cut):
    text = SEEDS[name].encode()
    check(name, text[: int(len(text) * cut)], tmp_path)


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), position=st.floats(0, 1), junk=st.binary(min_size=1, max_size=12))
@example(name="trace.csv", position=0.5, junk=b"\xff\xfe")
@example(name="rows.csv", position=0.99, junk=b",,,,,,,,,")
@example(name="workload.toml", position=0.3, junk=b"nan")
def test_corrupted_files_fail_cleanly(tmp_path, name, position, junk):
    text = SEEDS[name].encode()
    at = int(len(text) * position)
    check(name, text[:at] + junk + text[at:], tmp_path)


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), content=st.text(max_size=200))
def test_random_text_fails_cleanly(tmp_path, name, content):
    check(name, content.encode("utf-8", "surrogatepass"), tmp_path)
