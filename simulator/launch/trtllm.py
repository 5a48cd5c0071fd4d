"""TensorRT-LLM: one `trtllm-serve` (PyTorch backend) per replica, with the options that have no flag
in an --extra_llm_api_options YAML file. Its attention DP runs attention on single GPUs, so a wide-EP
replica is expressible only with tp 1. Disaggregated plans: context (prefill) and generation (decode)
servers with a cache transceiver, and `trtllm-serve disaggregated` in front of them."""
from __future__ import annotations

from simulator.launch.catalog import EngineArgs
from simulator.launch.core import Command, ConfigFile, Deployment, EngineEmitter
from simulator.launch.registry import EMITTERS

ROLE_FILES = {"server": "extra-llm-api-options.yaml", "prefill": "context-extra-llm-api-options.yaml",
              "decode": "generation-extra-llm-api-options.yaml"}


@EMITTERS.register
class TrtllmEmitter(EngineEmitter):
    """TensorRT-LLM `trtllm-serve` (PyTorch backend; context/generation servers for prefill/decode roles)."""

    name = "trtllm"

    def commands(self, d: Deployment, args: EngineArgs) -> tuple[list[Command], list[str]]:
        row = self.check_shared(d, args)
        if d.attention_dp > 1 and d.tp > 1:
            raise self.refuse(args, f"TensorRT-LLM's attention DP runs attention on one GPU per group; the plan's "
                                    f"attention groups have tp {d.tp} GPUs")
        tp_size = d.tp * d.attention_dp
        argv = [*args.program.split(), d.model_ref, "--backend", "pytorch", "--tp_size", str(tp_size),
                "--pp_size", str(d.pp), *(["--ep_size", str(d.ep)] if d.ep > 1 else []),
                "--max_batch_size", str(d.max_batch_size), "--max_num_tokens", str(d.max_tokens_per_step),
                *(["--enable_chunked_prefill"] if d.batching == "chunked" else []), *self.precision_args(d, row)]
        options = {"kv_cache_config": {"dtype": args.kv_cache_dtype[d.kv_cache], "tokens_per_block": d.block_size}}
        if d.attention_dp > 1:
            options["enable_attention_dp"] = True
        if not d.disaggregated:
            commands = [self._server("server", argv, options, d.replicas, d)]
            return commands, self.shared_notes(d, args, row, commands)
        transceiver = {"cache_transceiver_config": {"backend": "DEFAULT"}}
        context = self._server("prefill", argv, {**options, **transceiver, "disable_overlap_scheduler": True},
                               d.prefill_replicas, d)
        generation = self._server("decode", argv, {**options, **transceiver}, d.decode_replicas, d)
        orchestrator = ConfigFile("disagg-config.yaml", {
            "hostname": "localhost", "port": 8000, "backend": "pytorch",
            "context_servers": {"num_instances": d.prefill_replicas,
                                "urls": [f"ctx-{i}:8000" for i in range(d.prefill_replicas)]},
            "generation_servers": {"num_instances": d.decode_replicas,
                                   "urls": [f"gen-{i}:8000" for i in range(d.decode_replicas)]}},
            keys_from="disaggregated_yaml_keys")
        router = Command("router", (*args.disaggregated_program.split(), "-c", orchestrator.path), 1, 0, 0,
                         files=(orchestrator,))
        commands = [context, generation, router]
        notes = self.shared_notes(d, args, row, commands) + [
            "disagg-config.yaml names the servers ctx-N:8000 and gen-N:8000: replace them with each server's host:port"]
        return commands, notes

    @staticmethod
    def _server(role: str, argv: list, options: dict, launches: int, d: Deployment) -> Command:
        config = ConfigFile(ROLE_FILES[role], options)
        return Command(role, (*argv, "--extra_llm_api_options", config.path), launches, d.gpus_per_replica, 1,
                       files=(config,))
