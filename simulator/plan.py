"""A deployment plan: how one model is laid over GPUs (tp, pp, ep, replicas) and its serving limits.

Replica layout: a replica is `tp x pp x attention_dp` GPUs. With `ep > tp` (wide expert parallelism)
attention runs data-parallel over `ep / tp` groups of `tp` GPUs while each MoE layer's experts are spread
over all `ep` GPUs and tokens reach them by all-to-all. With `ep <= tp` the replica is `tp x pp`, and each
of the `ep` expert ranks tensor-splits its experts over `tp / ep` GPUs (TensorRT-LLM's moe_tp x moe_ep = tp).
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import ConfigError, require_number

MAX_GPUS = 100_000    # the largest cluster any command lays out (the topology builders' server limit x 8)
# The largest tp, pp, ep and batch a plan takes (a measured row's plan columns are held to the same).
PLAN_LIMITS = {"tp": 1024, "pp": 256, "ep": 4096, "max_batch_size": 65536}


@dataclass(frozen=True)
class Plan:
    tp: int = 1
    pp: int = 1
    ep: int = 1
    max_batch_size: int = 256
    max_tokens_per_step: int = 8192
    block_size: int = 16
    memory_utilization: float = 0.92

    def __post_init__(self):
        for name, high in PLAN_LIMITS.items():
            require_number(f"`{name}`", getattr(self, name), low=1, high=high, integer=True)
        require_number("`max_tokens_per_step`", self.max_tokens_per_step, low=16, high=10_000_000, integer=True)
        require_number("`block_size`", self.block_size, low=1, high=4096, integer=True)
        require_number("`memory_utilization`", self.memory_utilization, low=0.05, high=1.0)
        if self.ep > self.tp and self.ep % self.tp:
            raise ConfigError(f"`ep`: {self.ep} must be a multiple of `tp` {self.tp} when larger than it")
        if self.ep < self.tp and self.tp % self.ep:
            raise ConfigError(f"`ep`: {self.ep} must divide `tp` {self.tp}")

    @property
    def attention_dp(self) -> int:
        """Data-parallel attention groups inside one replica (wide EP); 1 otherwise."""
        return self.ep // self.tp if self.ep > self.tp else 1

    @property
    def expert_gpus(self) -> int:
        """GPUs one pipeline stage spreads its routed experts over: `ep` ranks, each splitting its experts
        over `tp / ep` GPUs when ep < tp; all `ep` GPUs when ep >= tp."""
        return max(self.tp, self.ep)

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp * self.attention_dp

    def replicas_for(self, gpus: int) -> int:
        """How many replicas `gpus` GPUs hold; an error when not even one fits."""
        if gpus < self.gpus_per_replica:
            raise ConfigError(f"`gpus`: {gpus} GPUs cannot hold one replica of tp={self.tp} x pp={self.pp}"
                              f" x attention-dp={self.attention_dp} = {self.gpus_per_replica} GPUs")
        return gpus // self.gpus_per_replica

    def describe(self) -> dict:
        return {"tp": self.tp, "pp": self.pp, "ep": self.ep, "attention_dp": self.attention_dp,
                "gpus_per_replica": self.gpus_per_replica, "max_batch_size": self.max_batch_size,
                "max_tokens_per_step": self.max_tokens_per_step, "block_size": self.block_size}


def check_model_split(model, tp: int = 1, pp: int = 1, ep: int = 1, where: str | None = None) -> None:
    """Raise unless `model` splits the way a plan of tp, pp and ep lays it out (an error names the field
    as the flag, or as "`where`: field"):
    - tp: the query heads evenly, and the KV heads evenly or each replicated on tp / kv_heads GPUs (MLA's
      latent is shared by all heads, so only the query heads matter). A tp of 3 on 64 heads is refused by
      vLLM, SGLang and TensorRT-LLM alike, so a prediction for it would describe nothing that runs;
    - pp: every stage holds at least one layer (stacks split whole layers between stages);
    - ep: expert parallelism needs a mixture-of-experts model, and at most one rank per routed expert."""
    def label(name: str) -> str:
        return f"{where}: {name}" if where else f"`{name}`"

    def splits_heads(t: int) -> bool:
        return model.heads % t == 0 and (model.attention == "mla" or model.kv_heads % t == 0
                                         or t % model.kv_heads == 0)

    if not splits_heads(tp):
        usable = [t for t in range(1, min(model.heads, 1024) + 1) if splits_heads(t)]
        what = (f"{model.heads} attention heads" if model.heads % tp else
                f"{model.kv_heads} KV heads (nor is it a multiple of them)")
        raise ConfigError(f"{label('tp')}: {tp} does not divide {model.name}'s {what}; tp can be "
                          f"{', '.join(map(str, usable))}")
    if pp > model.layers:
        raise ConfigError(f"{label('pp')}: {pp} stages is more than {model.name}'s {model.layers} layers; "
                          f"pp can be 1 to {model.layers}")
    if ep != 1 and not model.is_moe:
        raise ConfigError(f"{label('ep')}: {ep} needs a mixture-of-experts model; {model.name} has no "
                          "experts to spread (ep 1; split it with tp or pp, or serve more replicas)")
    if model.is_moe and ep > model.experts:
        raise ConfigError(f"{label('ep')}: {ep} exceeds {model.name}'s {model.experts} routed experts; "
                          f"ep can be 1 to {model.experts}")
