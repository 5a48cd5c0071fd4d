"""Interconnect what-ifs and failures through the whole engine."""
import pytest

from simulator.api import parse_failure, parse_set_values, serving_config, simulate
from simulator.errors import ConfigError


def tokens(**options):
    return simulate(**options).summary


def test_cross_server_tensor_parallel_feels_the_scaleout_network():
    """Llama 3.1 405B with tp 16 on two H200 servers all-reduces across NICs every layer: 200G is slower
    than 800G. Llama 2 70B with tp 1 replicas sends nothing over the network: identical."""
    common = dict(model="llama3.1-405b", gpu="h200", gpus=16, tp=16, offline=True, requests=64,
                  input_tokens="1000", output_tokens="100")
    fast, slow = tokens(**common, scaleout_gbps=800), tokens(**common, scaleout_gbps=200)
    assert slow["output_tokens_per_s"] < 0.85 * fast["output_tokens_per_s"]
    common = dict(model="llama2-70b", gpu="mi355x", gpus=16, tp=1, rate=20.0, duration_s=20)
    assert tokens(**common, scaleout_gbps=800) == tokens(**common, scaleout_gbps=200)


def test_disaggregated_ttft_grows_when_the_network_shrinks():
    common = dict(model="llama3.1-70b", gpu="b200", gpus=16, tp=2, batching="disaggregated", prefill_gpus=4,
                  rate=20.0, duration_s=20)
    assert tokens(**common, scaleout_gbps=25)["ttft_p50_s"] > tokens(**common, scaleout_gbps=800)["ttft_p50_s"]


def test_gpu_failure_loses_no_request():
    """GPU 3 dies at t = 5 s: its replica's requests are retried on the other seven."""
    summary = tokens(model="llama2-70b", gpu="mi355x", gpus=8, rate=30.0, duration_s=15, fail=("gpu:3@5",))
    assert summary["engines_failed"] == 1
    assert summary["requests_dropped"] == 0 and summary["requests_completed"] == summary["requests_total"]


def test_link_failure_inside_a_mesh_reroutes_tensor_parallel_traffic():
    """Cutting gpu0-gpu1 in an MI355X mesh leaves a two-hop route: slower all-reduces, nothing lost."""
    common = dict(model="llama3.1-70b", gpu="mi355x", gpus=8, tp=8, rate=5.0, duration_s=10)
    healthy = tokens(**common)
    cut = tokens(**common, fail=("link:gpu0-gpu1@0",))
    assert cut["requests_completed"] == healthy["requests_completed"]
    assert cut["tpot_p50_s"] >= healthy["tpot_p50_s"]


def test_every_gpu_failing_drops_with_a_reason():
    result = simulate(model="llama2-70b", gpu="mi355x", gpus=1, rate=10.0, duration_s=5, fail=("gpu:0@1",))
    assert result.summary["requests_dropped"] > 0
    assert "no engine left alive" in next(iter(result.engine_result.dropped.values()))


def test_set_values_and_failure_parsing():
    gpu, topology = parse_set_values(["gpu.hbm_tb_per_s=10", "topology.nic_gbps=200", "topology.fabric=fat-tree"])
    assert gpu == {"hbm_tb_per_s": "10"} and topology == {"nic_gbps": 200.0, "fabric": "fat-tree"}
    config = serving_config(gpu="mi355x", set_values=["gpu.hbm_tb_per_s=10", "gpu.peak_tflops.fp4=12000"])
    assert config.gpu.hbm_tb_per_s == 10.0 and config.gpu.peak_tflops["fp4"] == 12000.0
    assert parse_failure("link:nic0-leaf0@2.5") == ("link", "nic0", "leaf0", 2.5)
    for bad, message in (("gpu.hbm=3", "unknown GPU field"), ("nic_gbps=3", "must start with gpu."),
                         ("gpu.hbm_tb_per_s=fast", "not a number"), ("gpu.hbm_tb_per_s=-1", "out of range")):
        with pytest.raises(ConfigError, match=message):
            serving_config(set_values=[bad])
    with pytest.raises(ConfigError, match="gpu:ID@T"):
        parse_failure("node:3@2")
