"""Does a deployment fit in HBM, and how many KV-cache tokens (and blocks) remain per replica.

Per GPU: weights of its shard + activation workspace + runtime reserve must leave room for at least
one typical request's KV cache; what remains, within `memory_utilization` of HBM, is KV cache.
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import ConfigError, InfeasibleError
from simulator.hardware import GPUSpec
from simulator.models import BYTES_PER_VALUE, ModelSpec, Precision
from simulator.plan import Plan, check_model_split

RUNTIME_RESERVE_GB = 2.0          # CUDA/HIP context, communicator buffers, allocator slack
ACTIVATION_VALUES_PER_TOKEN = 16  # live activation values per token per hidden unit in the widest layer


@dataclass(frozen=True)
class MemoryPlan:
    weights_gb_per_gpu: float
    activations_gb_per_gpu: float
    reserve_gb_per_gpu: float
    kv_gb_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_tokens_per_replica: int
    kv_blocks_per_replica: int
    window_bytes_per_sequence_per_gpu: float

    def describe(self) -> dict:
        return {"weights_gb_per_gpu": round(self.weights_gb_per_gpu, 3),
                "activations_gb_per_gpu": round(self.activations_gb_per_gpu, 3),
                "kv_cache_gb_per_gpu": round(self.kv_gb_per_gpu, 3),
                "kv_tokens_per_replica": self.kv_tokens_per_replica,
                "kv_blocks_per_replica": self.kv_blocks_per_replica}


def weights_bytes_per_gpu(model: ModelSpec, precision: Precision, plan: Plan) -> float:
    """Weights one GPU holds: dense parts split over tp x pp; routed experts over a stage's expert GPUs
    (`Plan.expert_gpus`) x pp."""
    total = model.weight_bytes(precision.weights)
    if not model.is_moe:
        return total / (plan.tp * plan.pp)
    routed = model.moe_layers * model.experts * model.expert_params * BYTES_PER_VALUE[precision.weights]
    return (total - routed) / (plan.tp * plan.pp) + routed / (plan.expert_gpus * plan.pp)


def plan_memory(model: ModelSpec, gpu: GPUSpec, precision: Precision, plan: Plan,
                request_tokens: int = 2048) -> MemoryPlan:
    """Lay the deployment into HBM or raise InfeasibleError saying what does not fit and why (and
    ConfigError for a tensor-parallel degree the model's heads do not split into)."""
    check_model_split(model, plan.tp, plan.pp, plan.ep)
    if model.full_attention_layers == 0:
        # KV blocks count tokens of the full-attention layers, plus a window's worth for sliding ones
        raise ConfigError(f"`model`: every layer of {model.name} uses sliding-window attention "
                          f"({model.sliding_window} tokens); infersim prices a window beside full-attention layers "
                          "only: give sliding_layers_fraction below 1, or no sliding_window (every layer's full KV)")
    gb = 1e9
    weights = weights_bytes_per_gpu(model, precision, plan)
    activations = plan.max_tokens_per_step / plan.attention_dp * model.hidden * ACTIVATION_VALUES_PER_TOKEN * 2
    activations += plan.max_tokens_per_step * max(model.ffn, model.expert_ffn) / plan.tp * 2 * 2
    reserve = RUNTIME_RESERVE_GB * gb
    budget = gpu.hbm_gb * gb * plan.memory_utilization
    kv_room = budget - weights - activations - reserve
    describe = (f"{model.name} in {precision.weights} needs {weights / gb:.1f} GB of weights per GPU with "
                f"tp={plan.tp} pp={plan.pp} ep={plan.ep}, {activations / gb:.1f} GB of activations (steps of "
                f"{plan.max_tokens_per_step} tokens) and a {RUNTIME_RESERVE_GB:g} GB runtime reserve; "
                f"{gpu.name} has {gpu.hbm_gb:g} GB ({budget / gb:.1f} GB usable at memory_utilization "
                f"{plan.memory_utilization:g})")
    if kv_room <= 0:
        raise InfeasibleError(f"does not fit: {describe}; raise `tp`/`pp`, use narrower weights or lower "
                              "`max_tokens_per_step`")
    per_token = model.kv_bytes_per_token(precision.kv_cache, plan.tp, plan.pp)
    window = model.kv_bytes_per_sequence_window(precision.kv_cache, plan.tp, plan.pp)
    # A sequence costs per_token x context + window bytes; express capacity in full-layer tokens,
    # charging each sequence's window as that many tokens' worth when admitting (see kv_cache).
    tokens_per_group = int(kv_room // per_token)
    tokens = tokens_per_group * plan.attention_dp
    window_tokens = window / per_token
    if tokens_per_group < request_tokens + window_tokens:
        raise InfeasibleError(f"does not fit: {describe}; {kv_room / gb:.2f} GB left for KV cache holds "
                              f"{tokens_per_group} tokens, fewer than one {request_tokens}-token request")
    return MemoryPlan(weights_gb_per_gpu=weights / gb, activations_gb_per_gpu=activations / gb,
                      reserve_gb_per_gpu=reserve / gb, kv_gb_per_gpu=kv_room / gb,
                      kv_bytes_per_token_per_gpu=per_token, kv_tokens_per_replica=tokens,
                      kv_blocks_per_replica=tokens // plan.block_size,
                      window_bytes_per_sequence_per_gpu=window)
