"""vLLM: `vllm serve` per server. Dense models put a node's replicas in one server as data-parallel ranks
(vLLM balances requests across them); MoE models do not, because vLLM shards expert layers over
TP x DP, so each replica is its own server and DP only carries a wide-EP replica's attention groups.
Disaggregated plans: NixlConnector prefill (kv_producer) and decode (kv_consumer) servers."""
from __future__ import annotations

import json

from simulator.launch.catalog import EngineArgs
from simulator.launch.core import Command, Deployment, EngineEmitter, replica_groups
from simulator.launch.registry import EMITTERS

ROLES = {"prefill": "kv_producer", "decode": "kv_consumer"}


@EMITTERS.register
class VllmEmitter(EngineEmitter):
    """vLLM `vllm serve` (data-parallel ranks for dense replicas, NixlConnector for prefill/decode roles)."""

    name = "vllm"

    def commands(self, d: Deployment, args: EngineArgs) -> tuple[list[Command], list[str]]:
        row = self.check_shared(d, args)
        if 1 < d.ep < d.tp * d.attention_dp:
            raise self.refuse(args, f"vLLM sizes expert parallelism as tp x dp ({d.tp * d.attention_dp}); the "
                                    f"plan's ep {d.ep} cannot be expressed")
        dense_dp = not d.is_moe and not d.disaggregated and d.attention_dp == 1
        per_launch = max(1, min(d.replicas, d.gpus_per_node // d.gpus_per_replica)) if dense_dp else 1
        common = ["--tensor-parallel-size", str(d.tp), "--pipeline-parallel-size", str(d.pp)]
        tail = ["--max-num-seqs", str(d.max_batch_size), "--max-num-batched-tokens", str(d.max_tokens_per_step),
                "--enable-chunked-prefill" if d.batching == "chunked" else "--no-enable-chunked-prefill",
                "--kv-cache-dtype", args.kv_cache_dtype[d.kv_cache], *self.precision_args(d, row),
                "--block-size", str(d.block_size)]
        if d.ep > 1:
            tail.insert(0, "--enable-expert-parallel")
        if d.memory_utilization is not None:
            tail += ["--gpu-memory-utilization", f"{d.memory_utilization:g}"]
        model = [*args.program.split(), d.model_ref]
        commands = []
        if d.disaggregated:
            for role, replicas in (("prefill", d.prefill_replicas), ("decode", d.decode_replicas)):
                transfer = {"kv_connector": "NixlConnector", "kv_role": ROLES[role]}
                argv = [*model, *common, *self._dp(d.attention_dp), *tail, "--kv-transfer-config",
                        json.dumps(transfer, separators=(",", ":"))]
                commands.append(Command(role, tuple(argv), replicas, d.gpus_per_replica, 1,
                                        json_values={"--kv-transfer-config": transfer}))
        else:
            for launches, replicas in replica_groups(d.replicas, per_launch):
                dp = d.attention_dp if d.attention_dp > 1 else replicas
                argv = [*model, *common, *self._dp(dp), *tail]
                commands.append(Command("server", tuple(argv), launches, replicas * d.gpus_per_replica, replicas))
        return commands, self.shared_notes(d, args, row, commands)

    @staticmethod
    def _dp(size: int) -> list[str]:
        return ["--data-parallel-size", str(size)] if size > 1 else []
