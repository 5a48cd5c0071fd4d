"""Time of one engine step from aggregates of its batch: a per-operator roofline plus collectives.

Pure functions and one frozen, precomputed `StepCost` per deployment. A step's batch is described by
aggregates only (prefill tokens, attention pairs, decode sequences, their summed context), so a step
costs O(1) however many sequences it holds. A decode-only step is exactly `a(n) + b * context_sum`
(`decode_coefficients`), which lets the engine advance many steps in closed form.

Every formula is written once and works on numbers or on numpy arrays of aggregates alike: the engine
prices one step at a time, calibration re-prices a recorded run's steps all at once (`BatchShape`
fields as arrays) under other efficiencies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from simulator.hardware import Efficiency, GPUSpec
from simulator.models import BYTES_PER_VALUE, ModelSpec, Precision
from simulator.plan import Plan
from topologies.collectives import AlphaBeta  # noqa: F401 - re-exported: the simplest collective cost

ACTIVATION_WIRE_BYTES = 2.0   # activations cross the network in bf16


@dataclass(frozen=True)
class Communication:
    """The collectives one replica's step uses; `None` where the plan does not need one. Each is any
    object with `time_s(message_bytes)`: an AlphaBeta or a topology's CollectiveCost."""

    tp_all_reduce: AlphaBeta | None = None
    ep_all_to_all: AlphaBeta | None = None
    pp_send_recv: AlphaBeta | None = None

    def scaled(self, bandwidth_factor: float, latency_shift_s: float = 0.0,
               all_to_all_shift_s: float = 0.0) -> "Communication":
        """The same collectives when links deliver `bandwidth_factor` times the bandwidth and each call's
        fixed cost (launch and synchronisation) moves by `latency_shift_s`, an expert-parallel
        all-to-all's by `all_to_all_shift_s`."""
        calls = ((self.tp_all_reduce, latency_shift_s), (self.ep_all_to_all, all_to_all_shift_s),
                 (self.pp_send_recv, latency_shift_s))
        return Communication(*(None if c is None else c.scaled(bandwidth_factor, shift) for c, shift in calls))


@dataclass(frozen=True)
class BatchShape:
    """Aggregates of one step's batch (numbers, or numpy arrays with one entry per step).

    prefill_tokens: prompt tokens processed this step (whole prompts or chunks).
    prefill_pairs: sum over those tokens of the context each attends (causal), full-attention layers.
    prefill_window_pairs: the same with each span capped at the sliding window (sliding layers).
    prefill_seqs: sequences whose prompt completes this step (they produce a logit).
    decode_seqs: sequences generating one token this step.
    decode_context: sum of the contexts those sequences attend.
    """

    prefill_tokens: int = 0
    prefill_pairs: float = 0.0
    prefill_window_pairs: float = 0.0
    prefill_seqs: int = 0
    decode_seqs: int = 0
    decode_context: float = 0.0

    def as_row(self) -> tuple:
        """The fields in SHAPE_FIELDS order, as `StepCost.row_time_s` takes them and a step trace records
        them (dataclasses.astuple deep-copies and cost a quarter of a calibration's simulation time)."""
        return (self.prefill_tokens, self.prefill_pairs, self.prefill_window_pairs, self.prefill_seqs,
                self.decode_seqs, self.decode_context)


SHAPE_FIELDS = tuple(f.name for f in fields(BatchShape))


@dataclass(frozen=True)
class Distinct:
    """An array's distinct values and, per entry, the index of its value: a function of the value alone
    is computed once per distinct value (`apply`)."""

    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, array: np.ndarray) -> "Distinct":
        values, index = np.unique(array, return_inverse=True)
        return cls(values, index)

    def apply(self, function) -> np.ndarray:
        return np.broadcast_to(function(self.values), self.values.shape)[self.index]


@dataclass(frozen=True)
class RecordedSteps(BatchShape):
    """Recorded steps as a BatchShape of arrays, with their distinct token and sequence counts: the terms
    of a step's time that depend on those counts alone are priced once per count (a calibration's traces
    hold about 60% as many distinct token counts as steps and 1% as many sequence counts, and re-price
    thousands of times). Built by `shape_arrays`."""

    token_counts: Distinct | None = None
    sequence_counts: Distinct | None = None


def _maximum(a, b):
    """Element-wise max of numbers or arrays (plain `max` for numbers: the engine's hot path)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.maximum(a, b)
    return a if a > b else b


def expected_distinct_experts(experts: int, top_k: int, tokens):
    """Expected experts touched when `tokens` tokens each pick `top_k` of `experts` uniformly:
    E x (1 - (1 - k/E)^B), the power taken as exp(B log(1 - k/E)): numpy's power of an array exponent
    took 300 us of a calibration's 500 us re-pricing of a MoE run's 3,400 prompt steps, exp 60 us."""
    if top_k >= experts:                   # every token picks every expert
        return experts * (_maximum(tokens, 0) > 0)
    return experts * (1.0 - np.exp(math.log1p(-top_k / experts) * _maximum(tokens, 0)))


def busiest_share(ranks: int, routed):
    """Load of the busiest of `ranks` expert-parallel ranks relative to the mean, when `routed` token
    copies pick ranks uniformly: binomial counts, the maximum of `ranks` of them ~ mean + z_G x sd with
    z_G the expected maximum of G standard normals (Blom's approximation). 1 with one rank."""
    if ranks <= 1:
        return 1.0
    z = NormalDist().inv_cdf((ranks - 0.375) / (ranks + 0.25))
    return 1.0 + z * ((ranks - 1) / _maximum(routed, 1e-9)) ** 0.5


def causal_pairs(start_context: float, chunk_tokens: float, window: float = 0.0) -> float:
    """Sum over a chunk's tokens of the context each attends: token i (1-based) of a chunk starting after
    `start_context` cached tokens sees start_context + i tokens, capped at `window` when given."""
    if chunk_tokens <= 0:
        return 0.0
    first, last = start_context + 1, start_context + chunk_tokens
    if not window or last <= window:
        return (first + last) * chunk_tokens / 2
    if first > window:
        return window * chunk_tokens
    below = window - first + 1             # tokens that still see less than the window
    return (first + window) * below / 2 + window * (chunk_tokens - below)


@lru_cache(maxsize=64)
def _ridge_power(ridge_excess: float) -> float:
    """The smooth maximum's exponent p with 2^(1/p) = 1 + ridge_excess (`overlapped_s`)."""
    return math.log(2.0) / math.log1p(ridge_excess)


def overlapped_s(compute_s, memory_s, ridge_excess: float):
    """Time of a kernel that streams its operands while it computes: the roofline's max(compute, memory)
    far from the ridge point, (1 + ridge_excess) x either at it (where a pipelined kernel's loads and
    math are equally long it stalls on both). A smooth maximum, (c^p + m^p)^(1/p) with
    p = ln 2 / ln(1 + ridge_excess): p -> infinity is the max (excess 0), p = 1 the sum (excess 1)."""
    if isinstance(compute_s, np.ndarray) or isinstance(memory_s, np.ndarray):
        high, low = np.maximum(compute_s, memory_s), np.minimum(compute_s, memory_s)
        ratio = low / np.maximum(high, 1e-300)      # both are >= 0: low is 0 where high is
    else:                                           # the engine's hot path: plain numbers
        high, low = (compute_s, memory_s) if compute_s > memory_s else (memory_s, compute_s)
        ratio = low / high if high > 0 else 0.0
    if ridge_excess <= 0:
        return high
    power = _ridge_power(ridge_excess)
    return high * (1.0 + ratio ** power) ** (1.0 / power)


def gemm_time_s(params_gpu: float, tokens, flops_per_s: float, weight_bytes: float, bytes_per_s: float,
                half_tokens: float, ridge_excess: float):
    """One GEMM of `params_gpu` weights over `tokens` rows: compute at a rate that falls off as
    tokens / (tokens + half_tokens), 2 P t (t + half) / t / F = 2 P (t + half) / F, and reading the
    weights (P x weight_bytes / bytes_per_s), overlapped as `overlapped_s` says (with `ridge_excess`
    0: whichever is longer); 0 for no rows."""
    if params_gpu <= 0:
        return 0.0
    compute = 2 * params_gpu * (tokens + half_tokens) / flops_per_s
    memory = params_gpu * weight_bytes / bytes_per_s
    return (tokens > 0) * overlapped_s(compute, memory, ridge_excess)


@dataclass(frozen=True)
class Deployment:
    """What a step's cost depends on: one replica of `model` on `gpu` under `plan`, at `efficiency`, with
    the collectives of `communication`. The cost models below precompute constants from it."""

    model: ModelSpec
    gpu: GPUSpec
    precision: Precision
    plan: Plan
    efficiency: Efficiency
    communication: Communication = Communication()

    def __post_init__(self):
        """Each cost model precomputes its constants here (the generated __init__ calls it)."""

    def _cache(self, name: str, value) -> None:
        """Set a derived constant on the frozen instance (in `__post_init__` only)."""
        object.__setattr__(self, name, value)


class TokenCost(Deployment):
    """The part of a step that depends on its token count alone: every layer's GEMMs (dense and routed
    experts), norms and activations, and the collectives; `cost(tokens)` in seconds."""

    def __post_init__(self):
        m, p, eff, prec = self.model, self.plan, self.efficiency, self.precision
        set_ = self._cache
        gemm_dtype = prec.gemm_dtype
        set_("gemm_flops_per_s", self.gpu.peak_flops(gemm_dtype) * eff.gemm_efficiency(gemm_dtype))
        set_("bytes_per_s", self.gpu.hbm_bytes_per_s * eff.memory_efficiency)
        set_("_wbytes", BYTES_PER_VALUE[prec.weights])
        # Dense per-layer parameters on one GPU (attention projections split by tp).
        set_("_attn_params_gpu", m.attention_params_per_layer / p.tp)
        set_("_ffn_params_gpu", m.dense_ffn_params / p.tp)
        set_("_shared_params_gpu",
             (m.shared_experts * m.expert_params + m.router_params) / p.tp if m.is_moe else 0.0)
        # Routed experts: spread over the stage's expert GPUs (ep ranks, each tensor-split over tp / ep
        # GPUs when ep < tp).
        set_("_expert_split", p.expert_gpus)
        set_("_expert_ranks", p.ep)
        set_("_moe_flops_per_s", self.gemm_flops_per_s * eff.moe_efficiency)
        # outside GEMMs and attention: activations in bf16
        # (every layer's: a step is one micro-batch through every stage, as the GEMMs count)
        set_("_elementwise_bytes_per_token", m.elementwise_values_per_token(p.tp) * BYTES_PER_VALUE["bf16"])

    def __call__(self, tokens):
        return self._linear_layers_s(tokens) + self._elementwise_s(tokens) + self._communication_s(tokens)

    def _gemm_s(self, params_gpu: float, tokens):
        return gemm_time_s(params_gpu, tokens, self.gemm_flops_per_s, self._wbytes, self.bytes_per_s,
                           self.efficiency.gemm_half_tokens, self.efficiency.gemm_ridge_excess)

    def _moe_s(self, tokens):
        """Routed experts of one MoE layer on the busiest GPU: weights of the distinct experts the batch
        touches, FLOPs of top-k experts per token at grouped-GEMM efficiency, rows per expert setting
        the small-GEMM falloff; with expert parallelism the most loaded rank (binomial routing) sets the
        pace of the math; the weight read is the mean rank's.

        Tried and left out: the busiest rank's own distinct experts setting the weight read (at batch 1,
        DeepSeek-R1 on 8 ranks, 2.3 of its 32 experts against the mean rank's 1; a Monte Carlo gives 2.55).
        It is the physics of small expert-parallel batches, but no shipped row runs one: it moved the
        DeepSeek-R1 Offline rows by 0.08%, and the refit's end point with them (log-RMS 0.0767 against
        0.0753; leave one GPU out p90 21.0 / 25.0 / 23.0% at seeds 0 / 1 / 2 against 21.1 / 22.5 / 21.5%;
        leave one model out p90 22.4 / 45.5 / 25.5% against 22.6 / 24.9 / 21.7%, Mixtral held out at seed 1
        -44%, its slowdown put on the MoE efficiency as DeepSeek-R1's rows alone pin it; infersim validate,
        2026-11-30)."""
        m = self.model
        if not m.is_moe:
            return 0.0
        routed = tokens * m.active_experts
        distinct = expected_distinct_experts(m.experts, m.active_experts, tokens)
        # rows per expert r = routed / distinct: 2 routed P (r + half) / r / F = 2 P (routed + half x distinct) / F
        half = self.efficiency.gemm_half_tokens
        compute = 2 * m.expert_params / self._expert_split * (routed + half * distinct) / self._moe_flops_per_s
        if self._expert_ranks > 1:
            compute = compute * busiest_share(self._expert_ranks, routed) / self.efficiency.expert_balance
        memory = distinct * m.expert_params * self._wbytes / self._expert_split / self.bytes_per_s
        return (tokens > 0) * overlapped_s(compute, memory, self.efficiency.gemm_ridge_excess)

    def _linear_layers_s(self, tokens):
        """All GEMMs of all layers (per attention group of the replica) for `tokens` tokens."""
        m = self.model
        group_tokens = tokens / self.plan.attention_dp
        attn = self._gemm_s(self._attn_params_gpu, group_tokens)
        dense = self._gemm_s(self._ffn_params_gpu, group_tokens)
        shared = self._gemm_s(self._shared_params_gpu, group_tokens)
        # With wide EP every GPU serves its experts for the tokens of all attention groups.
        moe = self._moe_s(tokens)
        return m.layers * attn + m.ffn_dense_layers * dense + m.moe_layers * (shared + moe)

    def _elementwise_s(self, tokens):
        """Norms, residual adds, activation and rotary: memory-bound, a fixed number of bytes per token."""
        return tokens / self.plan.attention_dp * self._elementwise_bytes_per_token / self.bytes_per_s

    def _communication_s(self, tokens):
        """TP all-reduces, EP dispatch + combine and pipeline hand-offs of one step.

        Without EP every layer all-reduces twice (after attention, after the FFN or MoE). With EP a MoE
        layer dispatches and combines its tokens with two all-to-alls instead of its second all-reduce.
        """
        m, p, comm = self.model, self.plan, self.communication
        wire = tokens / p.attention_dp * m.hidden * ACTIVATION_WIRE_BYTES
        total = 0.0
        expert_parallel = p.ep > 1 and m.is_moe
        if p.tp > 1 and comm.tp_all_reduce is not None:
            reduces = m.layers + (m.ffn_dense_layers if expert_parallel else m.layers)
            total = total + reduces * comm.tp_all_reduce.time_s(wire)
        if expert_parallel and comm.ep_all_to_all is not None:
            # Each GPU sends its share of the top-k copies of its group's tokens.
            dispatched = wire * m.active_experts / p.tp
            total = total + m.moe_layers * 2 * comm.ep_all_to_all.time_s(dispatched)
        if p.pp > 1 and comm.pp_send_recv is not None:
            total = total + (p.pp - 1) * comm.pp_send_recv.time_s(wire / p.tp)
        return total


class StepCost(Deployment):
    """Step-time model of one replica of `model` on `gpu` under `plan`, precomputed for speed: the
    token-count terms (`TokenCost`), attention, and the per-step and per-sequence overheads."""

    def __post_init__(self):
        m, p, eff, prec = self.model, self.plan, self.efficiency, self.precision
        set_ = self._cache
        token_cost = TokenCost(m, self.gpu, prec, p, eff, self.communication)
        set_("_token_cost", token_cost)
        set_("_head_flops_per_s", self.gpu.peak_flops("bf16") * eff.compute_efficiency)
        set_("_head_params_gpu", m.vocab * m.hidden / p.tp)
        # each sampled token's fp32 logits are written and read back for sampling
        set_("_logit_bytes", m.vocab / p.tp * 4 * 2)
        # attention's two roofline terms per layer, in seconds: FLOPs of one query-key pair, bytes of one
        # cached token read (an attention-data-parallel replica splits both over its groups)
        set_("_kv_bytes_per_token_layer_gpu", m.kv_values_per_token_layer(p.tp) * BYTES_PER_VALUE[prec.kv_cache])
        attention_flops_per_s = self.gpu.peak_flops(prec.attention_dtype) * eff.attention_efficiency
        per_pair = m.attention_flops_per_context_token() / p.tp / p.attention_dp / attention_flops_per_s
        per_kv_token = self._kv_bytes_per_token_layer_gpu / p.attention_dp / token_cost.bytes_per_s
        set_("_attention_per_pair_s", per_pair)
        set_("_attention_per_kv_token_s", per_kv_token)
        # a decoding sequence's full layers per token of its context (one query: as many pairs as tokens read)
        decode_per_context = overlapped_s(per_pair, per_kv_token, eff.gemm_ridge_excess)
        set_("_decode_attention_per_context_s", m.full_attention_layers * decode_per_context)
        # the engine prices steps one at a time: the same terms for full and sliding layers
        set_("_one_step_attention", (m.full_attention_layers * per_pair, m.full_attention_layers * per_kv_token,
                                     m.sliding_layers * per_pair, m.sliding_layers * per_kv_token,
                                     self._decode_attention_per_context_s,
                                     m.sliding_layers * m.sliding_window * decode_per_context))
        set_("_token_memo", {})
        set_("_sequence_memo", {})
        set_("_decode_memo", {})

    def _output_head_s(self, logit_tokens):
        group = logit_tokens / self.plan.attention_dp
        bytes_per_s = self._token_cost.bytes_per_s
        return (gemm_time_s(self._head_params_gpu, group, self._head_flops_per_s, BYTES_PER_VALUE["bf16"],
                            bytes_per_s, self.efficiency.gemm_half_tokens, self.efficiency.gemm_ridge_excess)
                + group * self._logit_bytes / bytes_per_s)

    def _attention_s(self, layers: int, pairs, kv_tokens_read):
        """Attention of `layers` layers: FLOPs of the query-key pairs and bytes of the KV read, overlapped
        as a GEMM's math and weight read are (`overlapped_s`): a flash-attention kernel streams its KV
        tiles while it computes, and stalls on both near its ridge. The roofline's hard max also put a
        kink in the fit: DeepSeek-R1's latent attention sits at its ridge at the fitted efficiencies, where
        the solver's linear model stopped matching any step it tried."""
        if layers == 0:
            return 0.0
        return overlapped_s(self._attention_per_pair_s * layers * pairs,
                            self._attention_per_kv_token_s * layers * kv_tokens_read, self.efficiency.gemm_ridge_excess)

    def _per_sequence_s(self, sequences):
        """Everything that depends on how many sequences produce a token: per-sequence overhead (each
        attention-data-parallel rank schedules its own sequences, in parallel with the others) and the
        output head with its logits."""
        return self.efficiency.sequence_overhead_s * sequences / self.plan.attention_dp + self._output_head_s(sequences)

    @staticmethod
    def _remember(cache: dict, function, count) -> float:
        """`function(count)` stored under `count` (the engine's hot path looks the cache up itself)."""
        value = cache[count] = float(function(count))
        return value

    # ---- public ------------------------------------------------------------------------------
    def step_time_s(self, batch: BatchShape):
        """Time of one engine step (for pipeline plans: one micro-batch through every stage); a number,
        or an array when the shape's fields are arrays.

        Prefill and decode attention, and full and sliding-window layers, are separate kernels with
        rooflines of their own. A decoding sequence in a sliding layer reads a full window (exact once
        its context reaches the window, an upper bound before). Outside the tensor cores: a fixed step
        overhead, a per-sequence overhead, and the norms/activations' memory traffic per token.
        """
        tokens = batch.prefill_tokens + batch.decode_seqs
        sequences = batch.prefill_seqs + batch.decode_seqs
        if isinstance(tokens, int) and isinstance(sequences, int):
            return self.row_time_s(*batch.as_row())
        m = self.model
        window_context = batch.decode_seqs * m.sliding_window
        attention = (self._attention_s(m.full_attention_layers, batch.prefill_pairs, batch.prefill_tokens)
                     + self._attention_s(m.sliding_layers, batch.prefill_window_pairs, batch.prefill_tokens)
                     + self._attention_s(m.full_attention_layers, batch.decode_context, batch.decode_context)
                     + self._attention_s(m.sliding_layers, window_context, window_context))
        if isinstance(batch, RecordedSteps):
            token_s = batch.token_counts.apply(self._token_cost)
            sequence_s = batch.sequence_counts.apply(self._per_sequence_s)
        else:
            token_s, sequence_s = self._token_cost(tokens), self._per_sequence_s(sequences)
        busy = (tokens > 0) * self.efficiency.step_overhead_s + attention + token_s + sequence_s
        return busy if isinstance(busy, np.ndarray) else float(busy)

    def row_time_s(self, prefill_tokens: int, prefill_pairs: float, prefill_window_pairs: float, prefill_seqs: int,
                   decode_seqs: int, decode_context: float) -> float:
        """`step_time_s` of one step given by its aggregates (SHAPE_FIELDS order, numbers): the engine's
        hot path, which builds no BatchShape. The same terms, attention's from per-pair and per-token
        constants, the rest memoised by token and sequence count."""
        full_pair, full_token, sliding_pair, sliding_token, full_decode, sliding_decode = self._one_step_attention
        tokens = prefill_tokens + decode_seqs
        attention = 0.0
        if prefill_tokens:
            excess = self.efficiency.gemm_ridge_excess
            attention += overlapped_s(full_pair * prefill_pairs, full_token * prefill_tokens, excess)
            if sliding_pair:
                attention += overlapped_s(sliding_pair * prefill_window_pairs, sliding_token * prefill_tokens, excess)
        if decode_seqs:
            attention += full_decode * decode_context + sliding_decode * decode_seqs
        sequences = prefill_seqs + decode_seqs
        token_s = self._token_memo.get(tokens)      # memoised by count, looked up inline (a call per step
        if token_s is None:                         # cost 3% of a calibration)
            token_s = self._remember(self._token_memo, self._token_cost, tokens)
        sequence_s = self._sequence_memo.get(sequences)
        if sequence_s is None:
            sequence_s = self._remember(self._sequence_memo, self._per_sequence_s, sequences)
        return (tokens > 0) * self.efficiency.step_overhead_s + attention + token_s + sequence_s

    def decode_coefficients(self, decode_seqs):
        """(a, b) with decode step time = a + b x context_sum for `decode_seqs` sequences (a number or an
        array of sequence counts).

        Exact: every term but full-layer decode attention depends on the sequence count only, and that
        kernel's time, `overlapped_s` of its flops and bytes (two quantities linear in the context), is
        linear in it. Memoised per whole-number count (the engine asks at every decode stretch).
        """
        if isinstance(decode_seqs, int):
            known = self._decode_memo.get(decode_seqs)
            if known is None:
                known = self._decode_memo[decode_seqs] = self._decode_coefficients(decode_seqs)
            return known
        return self._decode_coefficients(decode_seqs)

    def _decode_coefficients(self, decode_seqs):
        return self.step_time_s(BatchShape(decode_seqs=decode_seqs)), self.decode_s_per_context_token

    @property
    def decode_s_per_context_token(self) -> float:
        """b of `decode_coefficients`: a decode step's time per token of context its sequences attend."""
        return self._decode_attention_per_context_s

    def with_efficiency(self, efficiency: Efficiency) -> "StepCost":
        """This deployment under other efficiencies (collectives rescaled by the collective efficiency and
        shifted by the change in per-call latencies)."""
        factor = efficiency.collective_efficiency / self.efficiency.collective_efficiency
        shift = efficiency.collective_latency_s - self.efficiency.collective_latency_s
        all_to_all_shift = efficiency.all_to_all_latency_s - self.efficiency.all_to_all_latency_s
        return StepCost(self.model, self.gpu, self.precision, self.plan, efficiency,
                        self.communication.scaled(factor, shift, all_to_all_shift))



def shape_arrays(rows) -> RecordedSteps:
    """Recorded steps (tuples in SHAPE_FIELDS order) as one BatchShape of numpy arrays, with their
    distinct token and sequence counts."""
    table = np.asarray(rows, dtype=float).reshape(-1, len(SHAPE_FIELDS))
    shape = BatchShape(*(table[:, i] for i in range(len(SHAPE_FIELDS))))
    return RecordedSteps(*shape.as_row(), Distinct.of(shape.prefill_tokens + shape.decode_seqs),
                         Distinct.of(shape.prefill_seqs + shape.decode_seqs))

