from dataclasses import replace

import pytest

from simulator.errors import ConfigError, InfeasibleError
from simulator.hardware import get_gpu
from simulator.memory import plan_memory
from simulator.models import Precision, get_model
from simulator.plan import Plan


def test_llama2_70b_fits_one_mi355x_and_kv_tokens_by_hand():
    """288 GB x 0.92 = 264.96 GB; weights 68.45e9 + 1.048e9 = 69.50 GB; activations 8192 x 8192 x 16 x 2 +
    8192 x 28672 x 4 = 3.087 GB; reserve 2 GB -> KV room 190.37 GB / 163,840 B per token = 1,161,946."""
    memory = plan_memory(get_model("llama2-70b"), get_gpu("mi355x"), Precision.parse("fp8"), Plan(tp=1))
    weights = 68_451_041_280 + 524_288_000 * 2
    activations = 8192 * 8192 * 16 * 2 + 8192 * 28672 * 4
    room = 288e9 * 0.92 - weights - activations - 2e9
    assert memory.kv_tokens_per_replica == int(room // 163_840)
    assert memory.kv_blocks_per_replica == memory.kv_tokens_per_replica // 16


def test_405b_does_not_fit_one_gpu_and_says_why():
    with pytest.raises(InfeasibleError, match="does not fit: llama3.1-405b in fp8 needs .* GB of weights per GPU"):
        plan_memory(get_model("llama3.1-405b"), get_gpu("mi355x"), Precision.parse("fp8"), Plan(tp=1))


def test_tp_splits_weights_and_kv():
    one = plan_memory(get_model("llama3.1-405b"), get_gpu("mi355x"), Precision.parse("fp8"), Plan(tp=8))
    assert one.weights_gb_per_gpu == pytest.approx(get_model("llama3.1-405b").weight_bytes("fp8") / 8 / 1e9)
    assert one.kv_tokens_per_replica > 100_000


def test_expert_parallel_spreads_experts():
    model = get_model("deepseek-r1")
    tp8 = plan_memory(model, get_gpu("mi355x"), Precision.parse("fp4"), Plan(tp=8))
    ep16 = plan_memory(model, get_gpu("mi355x"), Precision.parse("fp4"), Plan(tp=8, ep=16))
    assert ep16.weights_gb_per_gpu < tp8.weights_gb_per_gpu
    assert ep16.kv_tokens_per_replica > tp8.kv_tokens_per_replica


def test_expert_ranks_narrower_than_tp_split_each_rank_over_tp_over_ep():
    """Mixtral 8x7B fp8 on 8 GPUs, tp 8 ep 2: 2 expert ranks of 4 experts, each tensor-split over 4 GPUs
    (TensorRT-LLM's moe_tp 4 x moe_ep 2), so a GPU holds 1/8 of the routed experts, as at tp 8 ep 1.
    Before, the experts were split over ep alone: 22.8 GB a GPU against 5.9 GB."""
    model = get_model("mixtral-8x7b")
    tp8 = plan_memory(model, get_gpu("h100"), Precision.parse("fp8"), Plan(tp=8))
    tp8_ep2 = plan_memory(model, get_gpu("h100"), Precision.parse("fp8"), Plan(tp=8, ep=2))
    assert tp8_ep2.weights_gb_per_gpu == pytest.approx(tp8.weights_gb_per_gpu)
    assert tp8.weights_gb_per_gpu == pytest.approx(model.weight_bytes("fp8") / 8 / 1e9)


def test_more_expert_ranks_than_experts_is_refused():
    with pytest.raises(ConfigError, match="`ep`: 16 exceeds mixtral-8x7b's 8 routed experts; ep can be 1 to 8"):
        plan_memory(get_model("mixtral-8x7b"), get_gpu("h100"), Precision.parse("fp8"), Plan(tp=1, ep=16))


def test_request_longer_than_kv_is_infeasible():
    with pytest.raises(InfeasibleError, match="fewer than one"):
        plan_memory(get_model("llama2-70b"), get_gpu("b200"), Precision.parse("fp8"), Plan(tp=1),
                    request_tokens=10_000_000)


def test_a_plan_that_does_not_fit_names_what_takes_the_memory():
    """9.1 GB of weights fit in 10 GB x 0.92 = 9.2 GB; the 1.5 GB of activations of an 8,192-token step
    (and the 2 GB reserve) do not. Before, the message named the weights alone, which looked like they fit."""
    gpu = replace(get_gpu("h200"), hbm_gb=10)
    with pytest.raises(InfeasibleError, match=r"9\.1 GB of weights .* 1\.5 GB of activations \(steps of 8192 tokens\) "
                                              r"and a 2 GB runtime reserve; h200 has 10 GB"):
        plan_memory(get_model("llama3.1-8b"), gpu, Precision.parse("fp8"), Plan())
