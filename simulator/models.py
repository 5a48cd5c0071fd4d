"""What a model is (`ModelSpec`) and what it costs per token: parameters, weight bytes, KV bytes, FLOPs.

Specs come from `simulator/catalog/models.toml` or any Hugging Face `config.json`. Everything here is
arithmetic on the architecture; the time those bytes and FLOPs take is `costmodel`'s job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from simulator.catalog_io import merged_catalog, names_a_file, read_json, require_text
from simulator.errors import ConfigError, excerpt, reject_unknown_keys, require_choice, require_number

# Bytes per stored value. Sub-byte formats carry one 8-bit block scale per 32 values (MX formats;
# NVFP4's one per 16 is 0.5625 bytes, within 6%).
BYTES_PER_VALUE = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp6": 0.75 + 1 / 32, "fp4": 0.5 + 1 / 32}
WEIGHT_DTYPES = ("bf16", "fp8", "fp6", "fp4")
KV_DTYPES = ("bf16", "fp8")
ACTIVATION_DTYPES = ("bf16", "fp8", "fp6", "fp4")
_BITS = {"bf16": 16, "fp16": 16, "fp8": 8, "fp6": 6, "fp4": 4}
# A model's free-text fields (`attention` and `checkpoint_dtype` are choices).
MODEL_TEXT_FIELDS = ("display_name", "source", "hf_repo")


def require_bool(where: str, value) -> bool:
    """Return `value` if it is true or false; a string ("false", "no") or a number is refused, not read
    as whatever Python's truth makes of it ("false" is true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {excerpt(value)}")
    return value


@dataclass(frozen=True)
class Precision:
    """Number formats of one deployment: weights, activations (GEMM inputs) and KV cache."""

    weights: str = "fp8"
    activations: str = "fp8"
    kv_cache: str = "fp8"

    def __post_init__(self):
        require_choice("precision.weights", self.weights, WEIGHT_DTYPES)
        require_choice("precision.activations", self.activations, ACTIVATION_DTYPES)
        require_choice("precision.kv_cache", self.kv_cache, KV_DTYPES)

    @property
    def gemm_dtype(self) -> str:
        """GEMMs run at the rate of the wider of weights and activations (W4A8 runs at the fp8 rate)."""
        return max(self.weights, self.activations, key=_BITS.__getitem__)

    @property
    def attention_dtype(self) -> str:
        """Attention math runs in fp8 when both KV and activations are 8-bit or narrower, else bf16."""
        narrow = _BITS[self.kv_cache] <= 8 and _BITS[self.activations] <= 8
        return "fp8" if narrow else "bf16"

    @classmethod
    def parse(cls, text: str, where: str = "`precision`") -> "Precision":
        """'fp4' (weights and activations fp4, KV fp8), or 'w4a8kv8'-style, or 'weights/activations/kv';
        an error names `where`."""
        text = text.strip().lower()
        if text in WEIGHT_DTYPES:
            return cls(weights=text, activations=text, kv_cache="fp8" if text != "bf16" else "bf16")
        parts = text.split("/")
        if len(parts) == 3:
            return cls(*parts)
        raise ConfigError(f"{where}: {text!r} is not one of bf16, fp8, fp6, fp4 or weights/activations/kv "
                          "(e.g. fp4/fp8/fp8)")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a decoder-only transformer (dense or MoE; GQA, MLA or sliding-window attention)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    display_name: str = ""
    tie_embeddings: bool = False
    experts: int = 0
    active_experts: int = 0
    shared_experts: int = 0
    expert_ffn: int = 0
    dense_layers: int = 0
    attention: str = "gqa"
    sliding_window: int = 0
    sliding_layers_fraction: float = 0.0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    max_context: int = 131072
    source: str = ""
    hf_repo: str = ""      # Hugging Face repo id (or a local model folder) that launch commands name
    checkpoint_dtype: str = "bf16"   # weights as hf_repo publishes them ("bf16" for any 16-bit format)

    def __post_init__(self):
        check_model_fields(self)

    # ---- structure -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def ffn_dense_layers(self) -> int:
        return self.layers - self.moe_layers

    @property
    def sliding_layers(self) -> int:
        return round(self.layers * self.sliding_layers_fraction) if self.sliding_window else 0

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.sliding_layers

    # ---- parameters ------------------------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        h, d = self.hidden, self.head_dim
        if self.attention == "mla":
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank * self.heads * qk) if self.q_lora_rank else h * self.heads * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + \
                self.kv_lora_rank * self.heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + self.heads * self.v_head_dim * h
        return h * self.heads * d * 2 + h * self.kv_heads * d * 2

    @property
    def dense_ffn_params(self) -> int:
        """One dense (gated, SwiGLU) FFN: gate, up and down projections."""
        return 3 * self.hidden * self.ffn

    @property
    def expert_params(self) -> int:
        """One routed or shared expert (gated FFN of width expert_ffn)."""
        return 3 * self.hidden * self.expert_ffn

    @property
    def router_params(self) -> int:
        return self.hidden * self.experts

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the output head (once if tied)."""
        return self.vocab * self.hidden * (1 if self.tie_embeddings else 2)

    @property
    def layer_stack_params(self) -> int:
        """All transformer-layer parameters (attention, FFN, experts, routers), no embeddings."""
        moe = self.moe_layers * (self.experts * self.expert_params + self.shared_experts * self.expert_params
                                 + self.router_params)
        return self.layers * self.attention_params_per_layer + self.ffn_dense_layers * self.dense_ffn_params + moe

    @property
    def total_params(self) -> int:
        return self.layer_stack_params + self.embedding_params

    @property
    def active_params_per_token(self) -> int:
        """Parameters one token multiplies through, output head included, input embedding (a lookup) not."""
        moe = self.moe_layers * ((self.active_experts + self.shared_experts) * self.expert_params + self.router_params)
        stack = self.layers * self.attention_params_per_layer + self.ffn_dense_layers * self.dense_ffn_params + moe
        return stack + self.vocab * self.hidden

    def weight_bytes(self, dtype: str) -> float:
        """Bytes of all weights: linear layers in `dtype`, embeddings and output head in bf16."""
        return self.layer_stack_params * BYTES_PER_VALUE[dtype] + self.embedding_params * BYTES_PER_VALUE["bf16"]

    # ---- KV cache and attention ------------------------------------------------------------
    def kv_values_per_token_layer(self, tp: int = 1) -> float:
        """Cached values one token adds to one layer on one of `tp` tensor-parallel GPUs: K and V of the KV
        heads that GPU holds (heads split over tp, at least one each: with tp > kv_heads heads are
        replicated), or MLA's latent plus rope key, which every head shares, so every rank holds it all."""
        if self.attention == "mla":
            return float(self.kv_lora_rank + self.qk_rope_head_dim)
        return 2.0 * self.head_dim * math.ceil(self.kv_heads / tp) if tp < self.kv_heads else 2.0 * self.head_dim

    def kv_bytes_per_token(self, kv_dtype: str, tp: int = 1, pp: int = 1) -> float:
        """KV bytes one token of context adds on one GPU of a tp x pp deployment (the whole model with
        the defaults), over its full-attention layers (the most any pipeline stage holds). The one place
        KV bytes are computed. Sliding-window layers hold at most `sliding_window` tokens per sequence;
        see `kv_bytes_per_sequence_window`."""
        return math.ceil(self.full_attention_layers / pp) * self.kv_values_per_token_layer(tp) * BYTES_PER_VALUE[kv_dtype]

    def kv_bytes_per_sequence_window(self, kv_dtype: str, tp: int = 1, pp: int = 1) -> float:
        """KV bytes the sliding-window layers hold for one sequence at or beyond the window, on one GPU."""
        return math.ceil(self.sliding_layers / pp) * self.sliding_window * self.kv_values_per_token_layer(tp) * \
            BYTES_PER_VALUE[kv_dtype]

    def elementwise_values_per_token(self, tp: int = 1) -> float:
        """Activation values one token reads and writes outside the GEMMs and attention, summed over
        layers, on one of `tp` tensor-parallel GPUs: per layer two RMSNorms (read and write the hidden
        state, 4h), two residual adds (read two, write one: 6h), the gated activation (read gate and up,
        write one: 3 x the FFN width each GPU holds; for MoE the active and shared experts' widths) and
        rotary on queries and keys (read and write, 2 (heads + kv_heads) x head_dim / tp). The hidden-state
        terms are not split by tp: every rank holds the whole residual stream. Fused kernels touch no less.
        Tried and left out: TensorRT-LLM's fusions (residual add, RMSNorm and quantisation in one kernel
        writing the GEMM's input format; SwiGLU in the GEMM epilogue; rotary in attention), 2 (6 + a) h bytes
        a layer for a-byte activations, a third of this count for Llama 2 70B at fp8, for every stack:
        infersim validate --split gpu (2026-11-29), seeds 0 / 1, median 9.9 / 8.8% against 7.7 / 8.0%, p90
        21.0 / 21.6% against 19.9 / 24.1%. Also left out: the hidden-state terms split over tp (the
        all-reduce fused with residual add and RMSNorm, each rank normalising its share of the tokens), for
        Llama 3.1 405B's long prompts at tp 4-8, whose held-out Offline rows come out 10-15% low: infersim
        validate (2026-11-29), seeds 0 / 1, leave one GPU out median 8.2 / 8.8%, p90 23.7 / 26.6% against
        7.7 / 8.0%, 19.9 / 24.1%; leave one model out median 10.9 / 9.5% against 8.0 / 7.6%; 405B Offline
        held out with its GPU still -12.7 / -11.6%."""
        h = self.hidden
        dense = 3 * self.ffn / tp
        moe = 3 * (self.active_experts + self.shared_experts) * self.expert_ffn / tp
        rotary = 2 * (self.heads + self.kv_heads) * self.head_dim / tp
        per_layer = 10 * h + rotary
        return self.layers * per_layer + self.ffn_dense_layers * dense + self.moe_layers * moe

    def attention_flops_per_context_token(self) -> float:
        """FLOPs of score and value products for one query attending one cached token, summed over layers
        of one kind (multiply by the layer count you need). MLA in its absorbed (decode) form."""
        if self.attention == "mla":
            return 2 * self.heads * (2 * self.kv_lora_rank + self.qk_rope_head_dim)
        return 4 * self.heads * self.head_dim

    def flops_per_token(self, context_tokens: int = 0) -> float:
        """Forward FLOPs for one token attending `context_tokens`: 2 x active params + attention."""
        full = self.full_attention_layers * context_tokens
        sliding = self.sliding_layers * min(context_tokens, self.sliding_window)
        return 2 * self.active_params_per_token + self.attention_flops_per_context_token() * (full + sliding)


_MODEL_KEYS = {f.name for f in fields(ModelSpec)} - {"name"}


def check_model_fields(model: ModelSpec) -> None:
    """Raise unless every field of `model` is in its range and the fields agree with each other."""
    where = f"model {model.name}"
    for name in MODEL_TEXT_FIELDS:
        require_text(f"{where}: {name}", getattr(model, name))
    require_bool(f"{where}: tie_embeddings", model.tie_embeddings)
    for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab"):
        require_number(f"{where}: {name}", getattr(model, name), low=1, high=10_000_000, integer=True)
    require_choice(f"{where}: attention", model.attention, ("gqa", "mla"))
    require_choice(f"{where}: checkpoint_dtype", model.checkpoint_dtype, WEIGHT_DTYPES)
    if model.heads % model.kv_heads:
        raise ConfigError(f"{where}: heads {model.heads} must be a multiple of kv_heads {model.kv_heads}")
    for name in ("experts", "active_experts", "shared_experts", "expert_ffn", "dense_layers",
                 "sliding_window", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                 "v_head_dim"):
        require_number(f"{where}: {name}", getattr(model, name), low=0, high=10_000_000, integer=True)
    require_number(f"{where}: max_context", model.max_context, low=1, high=100_000_000, integer=True)
    require_number(f"{where}: sliding_layers_fraction", model.sliding_layers_fraction, low=0, high=1)
    if model.experts:
        require_number(f"{where}: active_experts", model.active_experts, low=1, high=model.experts, integer=True)
        require_number(f"{where}: expert_ffn", model.expert_ffn, low=1, high=10_000_000, integer=True)
        require_number(f"{where}: dense_layers", model.dense_layers, low=0, high=model.layers, integer=True)
    if model.attention == "mla" and not (model.kv_lora_rank and model.qk_rope_head_dim and model.v_head_dim):
        raise ConfigError(f"{where}: attention 'mla' needs kv_lora_rank, qk_rope_head_dim and v_head_dim")
    if model.sliding_layers_fraction and not model.sliding_window:
        raise ConfigError(f"{where}: sliding_layers_fraction needs sliding_window > 0")


def model_from_table(name: str, table: dict) -> ModelSpec:
    where = f"{table.get('_file', 'models.toml')}: [{name}]"
    values = {k: v for k, v in table.items() if k != "_file"}
    reject_unknown_keys(where, values, _MODEL_KEYS)
    missing = [k for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab") if k not in values]
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")
    try:
        return ModelSpec(name=name, **values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def model_from_hf_config(path: str | Path) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face `config.json` (Llama, Mistral/Mixtral, gpt-oss, DeepSeek-V3)."""
    path = Path(path)
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    cfg = cfg.get("text_config", cfg)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: text_config must be a JSON object")

    def whole(key, default=None, zero_is_absent=True):
        """A count in the config: a whole number >= 1; absent, null or (if `zero_is_absent`) 0 takes
        `default` (None: required)."""
        value = cfg.get(key)
        zero = zero_is_absent and value == 0 and not isinstance(value, bool)
        if value is None or (zero and default is not None):
            if default is None:
                raise ConfigError(f"{path}: missing key {key!r} (a whole number >= 1)")
            return default
        return require_number(f"{path}: {key}", value, low=1, high=1e9, integer=True)

    def flag(key, default):
        """A true/false setting in the config; absent or null takes `default`."""
        value = cfg.get(key)
        return default if value is None else require_bool(f"{path}: {key}", value)

    hidden, heads = whole("hidden_size"), whole("num_attention_heads")
    width = whole("intermediate_size", 4 * hidden)
    values = dict(
        layers=whole("num_hidden_layers"), hidden=hidden, heads=heads,
        kv_heads=whole("num_key_value_heads", heads, zero_is_absent=False),     # absent: MHA; 0 is no count
        head_dim=whole("head_dim", max(1, hidden // heads)),
        ffn=whole("intermediate_size_mlp", width),      # Llama 4's dense layers are wider than its experts
        vocab=whole("vocab_size"),
        tie_embeddings=flag("tie_word_embeddings", False),
        max_context=whole("max_position_embeddings", 131072, zero_is_absent=False),
        display_name=path.parent.name or path.stem, source=str(path),
        hf_repo=str(path.resolve().parent),     # engines load a model from the folder holding config.json
    )
    experts = whole("num_local_experts", 0) or whole("n_routed_experts", 0) or whole("num_experts", 0)
    if experts:
        values.update(_hf_moe_layout(cfg, path, whole, experts, values["layers"], width))
    if whole("kv_lora_rank", 0):
        values.update(attention="mla", kv_lora_rank=whole("kv_lora_rank"), q_lora_rank=whole("q_lora_rank", 0),
                      qk_nope_head_dim=whole("qk_nope_head_dim", 128), qk_rope_head_dim=whole("qk_rope_head_dim", 64),
                      v_head_dim=whole("v_head_dim", 128), kv_heads=heads)
    window, chunk = whole("sliding_window", 0), whole("attention_chunk_size", 0)
    layer_types = _layer_list(cfg, path, "layer_types", values["layers"])
    if window and layer_types:
        fraction = sum(1 for t in layer_types if "sliding" in str(t)) / len(layer_types)
        values.update(sliding_window=window, sliding_layers_fraction=fraction)
    elif window and flag("use_sliding_window", True) and window < values["max_context"]:
        values.update(sliding_window=window, sliding_layers_fraction=1.0)
    elif chunk and chunk < values["max_context"]:
        # Llama 4: layers with rotary embeddings attend within chunks of `attention_chunk_size` tokens (at
        # most that many cached per sequence, as a sliding window holds); every `no_rope_layer_interval`-th
        # layer (no rotary) attends the whole context. `no_rope_layers` marks each layer: 1 chunked, 0 global.
        marks = _layer_list(cfg, path, "no_rope_layers", values["layers"])
        interval = whole("no_rope_layer_interval", 4)
        marks = marks or [int((i + 1) % interval != 0) for i in range(values["layers"])]
        values.update(sliding_window=chunk, sliding_layers_fraction=sum(1 for m in marks if m) / len(marks))
    try:
        return ModelSpec(name=path.stem if path.stem != "config" else (path.parent.name or "model"), **values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _layer_list(cfg: dict, path: Path, key: str, layers: int) -> list | None:
    """A per-layer list in the config (`layer_types`, `no_rope_layers`): one entry per layer, or None if absent."""
    value = cfg.get(key)
    if value is None or value == []:
        return None
    if not isinstance(value, list) or len(value) != layers:
        raise ConfigError(f"{path}: {key} must be a list with one entry per layer ({layers}), not {excerpt(value)}")
    return value


def _layer_indices(cfg: dict, path: Path, key: str, layers: int) -> set | None:
    """A list of layer indices in the config (`moe_layers`, `mlp_only_layers`), each a whole number from
    0 to layers - 1; None when absent."""
    value = cfg.get(key)
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers
                                            for i in value)):
        raise ConfigError(f"{path}: {key} must be a list of layer indices from 0 to {layers - 1}, not {excerpt(value)}")
    return set(value)


def _hf_moe_layout(cfg: dict, path: Path, whole, experts: int, layers: int, width: int) -> dict:
    """The MoE fields of a config.json: top-k, expert width, shared experts and which layers are MoE.

    Expert width is `moe_intermediate_size`, else `intermediate_size` (Mixtral, Llama 4). Shared experts
    are DeepSeek's `n_shared_experts` of that width, Qwen2-MoE's one shared expert of
    `shared_expert_intermediate_size` (counted in expert widths), or Llama 4's one. A layer is MoE unless
    the config makes it dense: the first `first_k_dense_replace` (DeepSeek), every layer off
    `moe_layer_freq` (DeepSeek), off `decoder_sparse_step` or in `mlp_only_layers` (Qwen), or off
    `interleave_moe_layer_step` (Llama 4: Maverick alternates dense and MoE); a `moe_layers` list names
    them instead of all of these, as in Hugging Face's Llama 4."""
    key = "experts_per_token" if cfg.get("experts_per_token") is not None else "num_experts_per_tok"   # gpt-oss
    top_k = whole(key, 0)
    if not 1 <= top_k <= experts:
        raise ConfigError(f"{path}: {key} is {top_k or 'missing'}: the experts each token is routed to, a "
                          f"whole number from 1 to the {experts} experts")
    expert_ffn = whole("moe_intermediate_size", width)
    shared = whole("n_shared_experts", 0)
    shared_width = whole("shared_expert_intermediate_size", 0)
    if shared_width:
        if shared_width % expert_ffn:
            raise ConfigError(f"{path}: shared_expert_intermediate_size {shared_width} is not a multiple of the "
                              f"expert width {expert_ffn}; write the model as a catalog table instead")
        shared = shared_width // expert_ffn
    if str(cfg.get("model_type", "")).startswith("llama4"):
        shared = 1
    listed = _layer_indices(cfg, path, "moe_layers", layers)
    dense_only = _layer_indices(cfg, path, "mlp_only_layers", layers) or set()
    first_dense = whole("first_k_dense_replace", 0)
    freq, sparse_step = whole("moe_layer_freq", 1), whole("decoder_sparse_step", 1)
    step = whole("interleave_moe_layer_step", 1)
    moe = sorted(listed) if listed is not None else [
        i for i in range(layers) if i >= first_dense and i % freq == 0 and (i + 1) % sparse_step == 0
        and i % step == step - 1 and i not in dense_only]
    if not moe:
        raise ConfigError(f"{path}: num_experts is {experts} but the config leaves no layer a MoE layer")
    return dict(experts=experts, active_experts=top_k, shared_experts=shared, expert_ffn=expert_ffn,
                dense_layers=layers - len(moe))


def load_models(user_files=()) -> dict[str, ModelSpec]:
    tables = merged_catalog("simulator.catalog", "models.toml", user_files)
    return {name: model_from_table(name, table) for name, table in tables.items()}


def get_model(name: str, user_files=()) -> ModelSpec:
    """A catalog model by name, or a Hugging Face config.json given as a path."""
    if name.endswith(".json") or names_a_file(name):
        return model_from_hf_config(name)
    models = load_models(user_files)
    key = name.lower()
    if key not in models:
        raise ConfigError(f"`model`: unknown model {excerpt(name, 60)}; known: {', '.join(sorted(models))} or a "
                          "config.json path")
    return models[key]
