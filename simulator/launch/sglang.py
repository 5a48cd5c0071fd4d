"""SGLang: one `python -m sglang.launch_server` per replica. A wide-EP replica runs DP attention:
--tp-size counts all its GPUs, --dp-size its attention groups (each of tp-size / dp-size GPUs), and
--max-running-requests is split among those groups, so it carries the whole replica's limit.
Disaggregated plans: --disaggregation-mode prefill and decode servers behind a PD router."""
from __future__ import annotations

from simulator.launch.catalog import EngineArgs
from simulator.launch.core import Command, Deployment, EngineEmitter
from simulator.launch.registry import EMITTERS


@EMITTERS.register
class SglangEmitter(EngineEmitter):
    """SGLang `launch_server` (one server per replica, DP attention for wide expert parallelism)."""

    name = "sglang"

    def commands(self, d: Deployment, args: EngineArgs) -> tuple[list[Command], list[str]]:
        row = self.check_shared(d, args)
        if d.attention_dp > 1:
            parallel = ["--tp-size", str(d.tp * d.attention_dp), "--pp-size", str(d.pp),
                        "--dp-size", str(d.attention_dp), "--enable-dp-attention", "--ep-size", str(d.ep)]
        elif d.ep in (1, d.tp):
            parallel = ["--tp-size", str(d.tp), "--pp-size", str(d.pp)] + (["--ep-size", str(d.ep)] if d.ep > 1 else [])
        else:
            raise self.refuse(args, f"SGLang documents --ep-size equal to --tp-size ({d.tp}); the plan's ep "
                                    f"{d.ep} cannot be expressed")
        if d.batching == "chunked":      # a token budget per step shared by decodes and prompt chunks
            batching = ["--chunked-prefill-size", str(d.max_tokens_per_step), "--enable-mixed-chunk"]
        else:                             # whole prompts
            batching = ["--chunked-prefill-size", "-1"]
        argv = [*args.program.split(), args.model_flag, d.model_ref, *parallel,
                "--max-running-requests", str(d.max_batch_size * d.attention_dp), *batching,
                "--max-prefill-tokens", str(d.max_tokens_per_step), "--kv-cache-dtype", args.kv_cache_dtype[d.kv_cache],
                *self.precision_args(d, row), "--page-size", str(d.block_size)]
        if d.memory_utilization is not None:
            argv += ["--mem-fraction-static", f"{d.memory_utilization:g}"]
        if d.disaggregated:
            commands = [Command(role, (*argv, "--disaggregation-mode", role), replicas, d.gpus_per_replica, 1)
                        for role, replicas in (("prefill", d.prefill_replicas), ("decode", d.decode_replicas))]
        else:
            commands = [Command("server", tuple(argv), d.replicas, d.gpus_per_replica, 1)]
        return commands, self.shared_notes(d, args, row, commands)
