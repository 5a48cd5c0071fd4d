from dataclasses import replace

import numpy as np
import pytest

from simulator.costmodel import (AlphaBeta, BatchShape, Communication, StepCost, causal_pairs,
                                 expected_distinct_experts, shape_arrays)
from simulator.hardware import Efficiency, get_gpu
from simulator.models import Precision, get_model
from simulator.plan import Plan
from simulator.run import simulate
from tests.simulator.conftest import Stream

EFF = Efficiency(compute_efficiency=0.5, memory_efficiency=0.8, gemm_half_tokens=0.0, gemm_ridge_excess=0.0,
                 attention_efficiency=0.5, step_overhead_s=0.001, sequence_overhead_s=2e-6, collective_efficiency=1.0)
# Outside GEMMs and attention, per token: 80 layers x (10 x 8192 + rotary 2 x (64 + 8) x 128) + 80 x 3 x 28672
# = 14,909,440 bf16 values = 29,818,880 bytes; per sampled token 32,000 fp32 logits written and read = 256,000 B.
ELEMENTWISE_BYTES, LOGIT_BYTES = 29_818_880, 256_000


def llama_on_mi355x(tp=1, communication=Communication()):
    return StepCost(get_model("llama2-70b"), get_gpu("mi355x"), Precision("fp8", "fp8", "fp8"), Plan(tp=tp),
                    EFF, communication)


def test_decode_step_by_hand():
    """Llama 2 70B, fp8, one MI355X (8 TB/s x 0.8 = 6.4e12 B/s; 5,000 fp8 TFLOPS x 0.5 = 2.5e15 FLOP/s).
    One sequence attending 1,000 tokens:
    - layer GEMMs: 80 x (150,994,944 + 704,643,072) = 68,451,041,280 fp8 bytes / 6.4e12 = 10.69548 ms
      (compute 2 x 68.45e9 / 2.5e15 = 0.055 ms, memory-bound);
    - output head: 32000 x 8192 bf16 = 524,288,000 B / 6.4e12 = 0.08192 ms;
    - attention: 80 layers x 2,048 B x 1,000 tokens = 163.84 MB / 6.4e12 = 0.0256 ms;
    - norms/activations 29,818,880 B and logits 256,000 B / 6.4e12 = 0.004699 ms;
    - overhead 1 ms and 2 us for the sequence. Total 11.80970 ms."""
    cost = llama_on_mi355x()
    expected = (68_451_041_280 + 524_288_000 + 163_840_000 + ELEMENTWISE_BYTES + LOGIT_BYTES) / 6.4e12 + 0.001 + 2e-6
    assert cost.step_time_s(BatchShape(decode_seqs=1, decode_context=1000)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.0118097, rel=1e-5)


def test_prefill_step_by_hand():
    """A fresh 1,000-token prompt on the same GPU:
    - GEMMs: 2 x 68,451,041,280 x 1,000 FLOPs / 2.5e15 = 54.76083 ms (memory 10.7 ms: compute-bound);
    - head: one logit row, memory-bound: 0.08192 ms;
    - attention: 1000 x 1001 / 2 = 500,500 pairs x 4 x 64 x 128 x 80 = 1.31204e12 FLOPs / 2.5e15 = 0.52482 ms;
    - norms/activations: 1,000 x 29,818,880 B / 6.4e12 = 4.65920 ms; one logit row 0.00004 ms;
    - overhead 1 ms and 2 us for the sequence. Total 61.02881 ms."""
    cost = llama_on_mi355x()
    gemm = 2 * 68_451_041_280 * 1000 / 2.5e15
    attention = 500_500 * 4 * 64 * 128 * 80 / 2.5e15
    expected = (gemm + (524_288_000 + 1000 * ELEMENTWISE_BYTES + LOGIT_BYTES) / 6.4e12 + attention + 0.001 + 2e-6)
    prompt = BatchShape(prefill_tokens=1000, prefill_pairs=causal_pairs(0, 1000), prefill_seqs=1)
    assert cost.step_time_s(prompt) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.0610288, rel=1e-5)


def test_tensor_parallel_adds_two_all_reduces_per_layer():
    """tp=8 splits weights 8 ways; each of 80 layers all-reduces twice: 160 x (alpha + beta x bytes),
    bytes = tokens x 8192 x 2 (bf16). One decode token: 160 x (10 us + 16,384 B x 1e-11 s/B)."""
    comm = Communication(tp_all_reduce=AlphaBeta(alpha_s=10e-6, beta_s_per_byte=1e-11))
    with_comm = llama_on_mi355x(tp=8, communication=comm)
    without = llama_on_mi355x(tp=8)
    shape = BatchShape(decode_seqs=1, decode_context=1000)
    extra = with_comm.step_time_s(shape) - without.step_time_s(shape)
    assert extra == pytest.approx(160 * (10e-6 + 16_384 * 1e-11), rel=1e-9)


def test_all_to_all_latency_moves_each_dispatch_and_combine_only():
    """DeepSeek-R1 with 8-way expert parallelism: each of its 58 MoE layers dispatches and combines (two
    all-to-alls), and with tp=1 nothing all-reduces. Raising the all-to-all's fixed latency by 40 us adds
    58 x 2 x 40 us = 4.64 ms to a step; raising the other collectives' latency changes nothing."""
    comm = Communication(ep_all_to_all=AlphaBeta(alpha_s=20e-6, beta_s_per_byte=1e-12))
    cost = StepCost(get_model("deepseek-r1"), get_gpu("b200"), Precision.parse("fp4"), Plan(tp=1, ep=8), EFF, comm)
    shape = BatchShape(decode_seqs=64, decode_context=64 * 2000)
    slower = cost.with_efficiency(replace(EFF, all_to_all_latency_s=EFF.all_to_all_latency_s + 40e-6))
    assert slower.step_time_s(shape) - cost.step_time_s(shape) == pytest.approx(58 * 2 * 40e-6, rel=1e-9)
    other = cost.with_efficiency(replace(EFF, collective_latency_s=EFF.collective_latency_s + 40e-6))
    assert other.step_time_s(shape) == pytest.approx(cost.step_time_s(shape), rel=1e-12)


def test_decode_coefficients_match_step_time():
    cost = StepCost(get_model("gpt-oss-120b"), get_gpu("b200"), Precision.parse("fp4"), Plan(tp=2), EFF)
    for n in (1, 7, 64, 300):
        a, b = cost.decode_coefficients(n)
        for context in (n * 200, n * 5000):
            direct = cost.step_time_s(BatchShape(decode_seqs=n, decode_context=context))
            assert a + b * context == pytest.approx(direct, rel=1e-12)


def test_decode_coefficients_memoised_per_count_equal_the_array_form():
    """The engine asks for one count at a time (memoised on the StepCost); re-pricing asks for an array
    of counts at once: the two agree to the last bit, and a second ask returns the memoised pair."""
    cost = StepCost(get_model("llama2-70b"), get_gpu("mi355x"), Precision.parse("fp8"), Plan(tp=2), EFF)
    sizes = np.array([1, 7, 64, 300])
    a_array, b_array = cost.decode_coefficients(sizes)
    for n, a in zip(sizes.tolist(), a_array):
        first = cost.decode_coefficients(n)
        assert first == (a, b_array)
        assert cost.decode_coefficients(n) is first


def test_runs_of_one_deployment_share_its_step_cost(small_config):
    """Two runs of one config (a rate search's) price steps with one StepCost, so its per-count memos
    carry over; another efficiency is another deployment."""
    config = small_config(efficiency=EFF)
    first = simulate(config, Stream([0.0, 0.5], [100, 200], [5, 5])).step_costs[0]
    again = simulate(config, Stream([0.0, 0.2], [300, 50], [3, 9])).step_costs[0]
    other = simulate(replace(config, efficiency=replace(EFF, memory_efficiency=0.7)),
                     Stream([0.0], [100], [5])).step_costs[0]
    assert again is first
    assert other is not first and other.efficiency.memory_efficiency == 0.7


def test_recorded_steps_price_each_count_once_and_exactly_as_steps_one_by_one():
    """Recorded steps (`shape_arrays`) price their token- and sequence-count terms once per distinct
    count: the times equal, to the last bit, the same steps priced as plain arrays, and each step priced
    alone. Five steps with token counts 511, 511, 511, 512, 1 (three distinct) and sequence counts 4, 4, 5,
    1, 1 (three distinct)."""
    rows = [(508, 60_000.0, 0.0, 1, 3, 3_000.0), (508, 70_000.0, 0.0, 1, 3, 2_000.0),
            (508, 60_000.0, 0.0, 2, 3, 3_000.0), (512, 131_328.0, 0.0, 1, 0, 0.0), (0, 0.0, 0.0, 0, 1, 900.0)]
    recorded = shape_arrays(rows)
    assert list(recorded.token_counts.values) == [1, 511, 512] and list(recorded.sequence_counts.values) == [1, 4, 5]
    cost = StepCost(get_model("mixtral-8x7b"), get_gpu("h200"), Precision("fp8", "fp8", "fp8"), Plan(tp=2), EFF)
    plain = BatchShape(*(np.asarray(column, dtype=float) for column in zip(*rows)))
    times = cost.step_time_s(recorded)
    assert np.array_equal(times, cost.step_time_s(plain))
    assert times == pytest.approx([cost.row_time_s(*row) for row in rows], rel=1e-12)


def test_expected_distinct_experts():
    """E(1 - (1 - k/E)^B): 1 token touches exactly k; 128 experts top-4 with 32 tokens: 128 x (1 - (124/128)^32)."""
    assert expected_distinct_experts(128, 4, 1) == pytest.approx(4)
    assert expected_distinct_experts(128, 4, 32) == pytest.approx(128 * (1 - (124 / 128) ** 32))
    assert expected_distinct_experts(8, 2, 10_000) == pytest.approx(8)


def test_expected_distinct_experts_of_arrays_and_of_every_expert():
    """Arrays give the numbers' values element-wise (0 tokens touch none); a model whose tokens pick all
    E experts touches all E from the first token: 8 of 8 with 0, 1 and 5 tokens is 0, 8, 8."""
    tokens = np.array([0.0, 1.0, 32.0, 4096.0])
    numbers = [expected_distinct_experts(128, 4, t) for t in tokens]
    assert expected_distinct_experts(128, 4, tokens) == pytest.approx(numbers, rel=1e-12)
    assert numbers[0] == 0.0
    assert list(expected_distinct_experts(8, 8, np.array([0.0, 1.0, 5.0]))) == [0.0, 8.0, 8.0]
    assert expected_distinct_experts(8, 8, 1) == 8


def test_moe_decode_reads_fewer_expert_bytes_at_small_batches():
    cost = StepCost(get_model("deepseek-r1"), get_gpu("mi355x"), Precision.parse("fp4"), Plan(tp=8), EFF)
    one = cost.step_time_s(BatchShape(decode_seqs=1, decode_context=1000))
    many = cost.step_time_s(BatchShape(decode_seqs=256, decode_context=256_000))
    assert one < many


def test_pipeline_stages_count_every_layers_norms_and_activations():
    """A pipeline plan's step is one micro-batch through every stage: its norms and activations are every
    layer's, as its GEMMs are. Llama 2 70B, tp 1, one sequence: 29,818,880 B / 6.4e12 B/s = 4.659 us at
    pp 1 and at pp 4 (before, pp 4 counted a quarter)."""
    from simulator.costmodel import TokenCost
    for pp in (1, 4):
        cost = TokenCost(get_model("llama2-70b"), get_gpu("mi355x"), Precision("fp8", "fp8", "fp8"), Plan(pp=pp), EFF)
        assert cost._elementwise_s(1) == pytest.approx(ELEMENTWISE_BYTES / 6.4e12, rel=1e-9)


def test_causal_pairs():
    """Token i of a 4-token chunk after 10 cached tokens sees 10 + i: 11 + 12 + 13 + 14 = 50. With a
    12-token window: 11 + 12 + 12 + 12 = 47."""
    assert causal_pairs(10, 4) == 50
    assert causal_pairs(10, 4, window=12) == 47
    assert causal_pairs(0, 1000) == 500_500
    assert causal_pairs(100, 5, window=50) == 250


def test_gpu_without_fp4_refuses_fp4():
    from simulator.errors import ConfigError
    with pytest.raises(ConfigError, match="h200 has no fp4"):
        StepCost(get_model("llama2-70b"), get_gpu("h200"), Precision.parse("fp4"), Plan(), EFF)


def test_gemm_near_its_ridge_point_falls_short_of_the_roofline_by_the_ridge_excess():
    """overlapped_s(c, m, q) = (c^p + m^p)^(1/p) with p = ln 2 / ln(1 + q). By hand, q = 0.26:
    p = 0.693147 / 0.231112 = 2.999196. At the ridge (c = m = 10 ms): 2^(1/p) x 10 = 12.6 ms, the
    roofline's 10 ms plus 26%. Off it (c = 1 ms, m = 10 ms): 10 x (1 + 0.1^p)^(1/p) = 10 x 1.000334 =
    10.00334 ms. q = 1 is the sum (p = 1); q = 0 the roofline's max. Arrays take the same formula, and two
    zeros (an MoE layer with no tokens) cost nothing."""
    from simulator.costmodel import gemm_time_s, overlapped_s
    assert overlapped_s(0.010, 0.010, 0.26) == pytest.approx(0.0126, rel=1e-9)
    assert overlapped_s(0.001, 0.010, 0.26) == pytest.approx(0.01000334, rel=1e-5)
    assert overlapped_s(0.003, 0.010, 1.0) == pytest.approx(0.013)
    assert overlapped_s(0.003, 0.010, 0.0) == 0.010
    both = overlapped_s(np.array([0.010, 0.001, 0.0]), np.array([0.010, 0.010, 0.0]), 0.26)
    assert both == pytest.approx([0.0126, 0.01000334, 0.0], rel=1e-5)
    # a GEMM whose math equals its weight read: P = 1e9 fp8 weights at 1e12 B/s read in 1 ms, and 500 rows
    # at 1e15 FLOP/s compute 2 x 1e9 x 500 / 1e15 = 1 ms: 1.26 ms with q = 0.26
    assert gemm_time_s(1e9, 500, 1e15, 1.0, 1e12, 0.0, 0.26) == pytest.approx(0.00126, rel=1e-9)
    assert gemm_time_s(1e9, 0, 1e15, 1.0, 1e12, 0.0, 0.26) == 0.0


def test_attention_at_its_ridge_takes_the_ridge_excess_too():
    """Llama 2 70B on one MI355X: a context token costs each layer 4 x 64 x 128 = 32,768 FLOPs and a
    2,048 B KV read (6.4e12 B/s: 3.2e-10 s). At attention efficiency 0.02048 of 5e15 the math takes
    32,768 / 1.024e14 = 3.2e-10 s too: the kernel sits at its ridge, and with an excess of 0.25 a decode
    step's attention costs 80 x 3.2e-10 x 1.25 = 3.2e-8 s per context token (the roofline's max said
    2.56e-8). A prompt step whose pairs are as many as its tokens sits there as well: the engine's
    one-step path and the array path price it alike."""
    at_ridge = replace(EFF, attention_efficiency=0.02048, gemm_ridge_excess=0.25)
    cost = StepCost(get_model("llama2-70b"), get_gpu("mi355x"), Precision("fp8", "fp8", "fp8"), Plan(), at_ridge)
    assert cost.decode_s_per_context_token == pytest.approx(3.2e-8, rel=1e-9)
    flat = replace(at_ridge, gemm_ridge_excess=0.0)
    flat_cost = StepCost(get_model("llama2-70b"), get_gpu("mi355x"), Precision("fp8", "fp8", "fp8"), Plan(), flat)
    assert flat_cost.decode_s_per_context_token == pytest.approx(2.56e-8, rel=1e-9)
    prompt = BatchShape(prefill_tokens=2000, prefill_pairs=2000.0, prefill_seqs=1)
    extra = cost.step_time_s(prompt) - flat_cost.step_time_s(prompt)
    gemm_extra = (cost.step_time_s(BatchShape(prefill_tokens=2000, prefill_seqs=1))
                  - flat_cost.step_time_s(BatchShape(prefill_tokens=2000, prefill_seqs=1)))
    assert extra - gemm_extra == pytest.approx(0.25 * 80 * 2000 * 3.2e-10, rel=1e-6)
    arrays = shape_arrays([prompt.as_row()])
    assert cost.step_time_s(arrays)[0] == pytest.approx(cost.step_time_s(prompt), rel=1e-12)


def test_ridge_excess_slows_interactive_batches_more_than_offline_ones():
    """Llama 2 70B fp8 on one MI355X (2.5e15 FLOP/s, 6.4e12 B/s at EFF): its GEMMs reach the ridge at
    2.5e15 / 6.4e12 / 2 = 195 rows. A decode step of 192 sequences sits there and gets longer by close to
    the excess; one of 4,096 sequences is compute-bound and hardly moves; one sequence is memory-bound
    and hardly moves either."""
    plain, ridged = llama_on_mi355x(), StepCost(get_model("llama2-70b"), get_gpu("mi355x"),
                                                Precision("fp8", "fp8", "fp8"), Plan(),
                                                replace(EFF, gemm_ridge_excess=0.25))
    def ratio(n):
        shape = BatchShape(decode_seqs=n, decode_context=n * 500)
        return ridged.step_time_s(shape) / plain.step_time_s(shape)
    assert 1.15 < ratio(192) < 1.25
    assert ratio(4096) < 1.01 and ratio(1) < 1.001
