"""Deployable plans (`--emit`): every emitted name is one the engine's catalog entry lists, parallel sizes
in a command add up to the GPUs it takes, and plans an engine cannot express are refused in one line.

The checks parse the emitted argv and files themselves rather than trusting the emitter's own numbers.
"""
import json
import shlex

import pytest

from simulator.errors import ConfigError
from simulator.hardware import get_gpu
from simulator.launch import EMITTERS, engine_args, launch_for_plan
from simulator.models import get_model
from simulator.plan import Plan
from simulator.registry import Registry

ENGINES = ("vllm", "sglang", "trtllm")


def plan_section(plan: Plan, *, model="llama2-70b", gpu="h200", gpus=8, precision=("fp8", "fp8", "fp8"),
                 batching="continuous", prefill_gpus=0) -> dict:
    """A result's `plan` section as engine.simulate writes it: Plan.describe() plus the run's fields."""
    replicas = plan.replicas_for(gpus)
    section = {"model": model, "gpu": gpu, "gpus": gpus, "replicas": replicas, "batching": batching,
               "router": "round-robin", "precision": dict(zip(("weights", "activations", "kv_cache"), precision)),
               **plan.describe()}
    if batching == "disaggregated":
        section["prefill_gpus"] = prefill_gpus
        section["decode_gpus"] = replicas * plan.gpus_per_replica - prefill_gpus
    return section


# (name, plan section, model, gpu, engines that must refuse it)
CASES = [
    ("dense tp2 fp8", plan_section(Plan(tp=2), gpus=8), "llama2-70b", "h200", ()),
    ("dense pp2 tp8 bf16 chunked", plan_section(Plan(tp=8, pp=2), model="llama3.1-405b", gpus=32,
                                                precision=("bf16", "bf16", "bf16"), batching="chunked"),
     "llama3.1-405b", "h200", ()),
    ("moe ep=tp fp4", plan_section(Plan(tp=2, ep=2), model="mixtral-8x7b", gpu="b200", gpus=8,
                                   precision=("fp4", "fp4", "fp8")), "mixtral-8x7b", "b200", ()),
    ("moe wide ep fp8", plan_section(Plan(tp=1, ep=8), model="deepseek-r1", gpu="b200", gpus=16,
                                     batching="chunked"), "deepseek-r1", "b200", ()),
    ("moe wide ep tp2", plan_section(Plan(tp=2, ep=8), model="deepseek-r1", gpu="h200", gpus=16),
     "deepseek-r1", "h200", ("trtllm",)),
    ("disaggregated fp4", plan_section(Plan(tp=2), model="llama3.1-70b", gpu="b200", gpus=16,
                                       precision=("fp4", "fp4", "fp8"), batching="disaggregated", prefill_gpus=4),
     "llama3.1-70b", "b200", ()),
    ("fp4 on amd", plan_section(Plan(tp=1), gpu="mi355x", gpus=8, precision=("fp4", "fp4", "fp8")),
     "llama2-70b", "mi355x", ("sglang", "trtllm")),
    ("fp8 on amd", plan_section(Plan(tp=4), gpu="mi355x", gpus=8), "llama2-70b", "mi355x", ("trtllm",)),
]


def emit(engine, plan, model, gpu, memory_utilization=0.9):
    return launch_for_plan(engine, plan, get_model(model), get_gpu(gpu), memory_utilization)


def emitted_names(engine, command):
    """Every flag, JSON key and YAML key in one command, read from its argv and files."""
    args = engine_args(engine)
    program = next(p.split() for p in (args.disaggregated_program, args.program)
                   if p and list(command.argv[:len(p.split())]) == p.split())
    rest = command.argv[len(program):]
    names = [("flag", a) for a in rest if a.startswith("-") and not a.lstrip("-").isdigit()]
    for flag, value in zip(rest, rest[1:]):
        if value.startswith("{"):
            names += [("json", (flag, key)) for key in json.loads(value)]
    for config in command.files:
        names += [("yaml", (config.keys_from, key)) for key in config.keys()]
    return names


def value_of(argv, flag, default=1):
    return int(argv[argv.index(flag) + 1]) if flag in argv else default


def gpus_in_command(engine, argv) -> int:
    """GPUs one launch takes, from its parallel sizes as each engine documents them: vLLM runs tp x pp
    GPUs per data-parallel rank; SGLang's and TensorRT-LLM's tp size already counts attention-DP groups."""
    if engine == "vllm":
        return (value_of(argv, "--tensor-parallel-size") * value_of(argv, "--pipeline-parallel-size")
                * value_of(argv, "--data-parallel-size"))
    if engine == "sglang":
        return value_of(argv, "--tp-size") * value_of(argv, "--pp-size")
    return value_of(argv, "--tp_size") * value_of(argv, "--pp_size")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name, plan, model, gpu, refused", CASES, ids=[c[0] for c in CASES])
def test_every_emitted_name_is_documented(engine, name, plan, model, gpu, refused):
    if engine in refused:
        with pytest.raises(ConfigError, match=f"^`engine` {engine}: "):
            emit(engine, plan, model, gpu)
        return
    launch = emit(engine, plan, model, gpu)
    args = engine_args(engine)
    assert launch.commands
    for command in launch.commands:
        assert shlex.split(command.shell()) == list(command.argv)
        for kind, item in emitted_names(engine, command):
            if kind == "flag":
                assert item in args.flags, f"{engine}: {item} is not in engine_args.toml"
            elif kind == "json":
                assert item[1] in args.json_keys[item[0]], f"{engine}: {item} is not in engine_args.toml"
            else:
                assert item[1] in getattr(args, item[0]), f"{engine}: {item} is not in engine_args.toml"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name, plan, model, gpu, refused", CASES, ids=[c[0] for c in CASES])
def test_parallel_sizes_multiply_to_the_plans_gpus(engine, name, plan, model, gpu, refused):
    if engine in refused:
        pytest.skip(f"{engine} refuses {name}")
    launch = emit(engine, plan, model, gpu)
    servers = [c for c in launch.commands if c.gpus_per_launch]
    for command in servers:
        assert gpus_in_command(engine, command.argv) == command.gpus_per_launch
        assert command.gpus_per_launch == command.replicas_per_launch * plan["gpus_per_replica"]
    assert sum(c.launches * c.replicas_per_launch for c in servers) == plan["replicas"]
    if plan["batching"] == "disaggregated":
        by_role = {c.role: c.launches for c in servers}
        assert by_role == {"prefill": plan["prefill_gpus"] // plan["gpus_per_replica"],
                           "decode": plan["decode_gpus"] // plan["gpus_per_replica"]}


def test_limits_and_formats_reach_the_command():
    """llama2-70b tp2 on 8 H200, fp8: 4 replicas; vLLM runs them as 4 data-parallel ranks of one server."""
    plan = plan_section(Plan(tp=2, max_batch_size=384, max_tokens_per_step=4096, block_size=32), gpus=8,
                        batching="chunked")
    (server,) = emit("vllm", plan, "llama2-70b", "h200").commands
    argv = list(server.argv)
    assert argv[:3] == ["vllm", "serve", "meta-llama/Llama-2-70b-chat-hf"]
    assert value_of(argv, "--data-parallel-size") == 4 and value_of(argv, "--max-num-seqs") == 384
    assert value_of(argv, "--max-num-batched-tokens") == 4096 and value_of(argv, "--block-size") == 32
    assert "--enable-chunked-prefill" in argv and argv[argv.index("--quantization") + 1] == "fp8"
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"
    (sglang,) = emit("sglang", plan_section(Plan(tp=2), gpus=8), "llama2-70b", "h200").commands
    assert sglang.launches == 4 and sglang.argv[sglang.argv.index("--chunked-prefill-size") + 1] == "-1"


def test_moe_replicas_are_separate_servers_in_vllm():
    """vLLM shards expert layers over TP x DP, so MoE replicas must not share a server as DP ranks."""
    plan = plan_section(Plan(tp=2, ep=2), model="mixtral-8x7b", gpus=8)
    (server,) = emit("vllm", plan, "mixtral-8x7b", "h200").commands
    assert server.launches == 4 and "--data-parallel-size" not in server.argv
    assert "--enable-expert-parallel" in server.argv


def test_sglang_dp_attention_limit_covers_the_whole_replica():
    """SGLang divides --max-running-requests among DP-attention ranks; the plan's limit is per group."""
    plan = plan_section(Plan(tp=1, ep=8, max_batch_size=128), model="deepseek-r1", gpu="b200", gpus=8)
    (server,) = emit("sglang", plan, "deepseek-r1", "b200").commands
    assert value_of(server.argv, "--max-running-requests") == 128 * 8
    assert "--enable-dp-attention" in server.argv and value_of(server.argv, "--dp-size") == 8


def test_published_checkpoint_format_needs_no_quantization_flag():
    """DeepSeek-R1 is published in fp8: an fp8 plan loads it as it is."""
    plan = plan_section(Plan(tp=8, ep=8), model="deepseek-r1", gpus=8)
    for engine in ("vllm", "sglang"):
        launch = emit(engine, plan, "deepseek-r1", "h200")
        assert "--quantization" not in launch.commands[0].argv
        assert "published with fp8 weights" in launch.notes[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_fp6_is_refused_naming_emit(engine):
    plan = plan_section(Plan(tp=1), gpu="b200", precision=("fp6", "fp6", "fp8"))
    with pytest.raises(ConfigError, match=f"^`engine` {engine}: .*fp6/fp6") as refusal:
        emit(engine, plan, "llama2-70b", "b200")
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_static_batching_is_refused(engine):
    with pytest.raises(ConfigError, match=f"^`engine` {engine}: static batching"):
        emit(engine, plan_section(Plan(tp=2), gpu="b200", batching="static"), "llama2-70b", "b200")


def test_layouts_an_engine_has_no_arguments_for_are_refused():
    mixed = plan_section(Plan(tp=8, ep=2), model="mixtral-8x7b", gpus=8)
    with pytest.raises(ConfigError, match="^`engine` vllm: vLLM sizes expert parallelism"):
        emit("vllm", mixed, "mixtral-8x7b", "h200")
    with pytest.raises(ConfigError, match="^`engine` sglang: "):
        emit("sglang", mixed, "mixtral-8x7b", "h200")
    with pytest.raises(ConfigError, match="^`engine` vllm: a KV block of 4 tokens"):
        emit("vllm", plan_section(Plan(tp=2, block_size=4)), "llama2-70b", "h200")
    fp8_checkpoint_as_bf16 = plan_section(Plan(tp=8, ep=8), model="deepseek-r1", precision=("bf16", "bf16", "bf16"))
    with pytest.raises(ConfigError, match="published with fp8 weights"):
        emit("vllm", fp8_checkpoint_as_bf16, "deepseek-r1", "h200")


def test_a_config_json_model_is_named_by_its_folder(tmp_path):
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "intermediate_size": 14336, "vocab_size": 128256}))
    model = get_model(str(folder / "config.json"))
    launch = launch_for_plan("vllm", plan_section(Plan(tp=1)), model, get_gpu("h200"))
    assert launch.commands[0].argv[2] == str(folder.resolve())


def test_catalog_and_registry_name_the_same_engines():
    """The CLI's --emit choices come from the registry; each needs a catalog table with its sources."""
    assert isinstance(EMITTERS, Registry) and sorted(EMITTERS) == sorted(ENGINES)
    for engine in EMITTERS:
        args = engine_args(engine)
        assert args.version and args.sources and args.flags and args.precisions
        assert all("github.com" in source or "docs." in source for source in args.sources)
    with pytest.raises(ConfigError, match="^`engine`: 'tgi' is not one of"):
        launch_for_plan("tgi", plan_section(Plan()), get_model("llama2-70b"), get_gpu("h200"))


# ---- the command line ----------------------------------------------------------------------------------

def run_main(args, capsys):
    """main() as the installed `infersim` runs it: (exit status, captured output)."""
    from simulator.cli import main
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr()


def test_mlperf_emit_vllm_end_to_end(capsys, tmp_path):
    out = tmp_path / "result.json"
    code, captured = run_main(["mlperf", "--model", "llama2-70b", "--gpu", "mi355x", "--gpus", "8", "--emit", "vllm",
                               "--json", "--out", str(out)], capsys)
    assert code == 0, captured.err
    document = json.loads(captured.out)
    launch, plan = document["launch"], document["plan"]
    assert launch["engine"] == "vllm" and launch["version"] == engine_args("vllm").version
    assert json.loads(out.read_text())["launch"] == launch
    servers = [c for c in launch["commands"] if c["gpus_per_launch"]]
    assert sum(c["launches"] * c["replicas_per_launch"] for c in servers) == plan["replicas"]
    for command in servers:
        argv = shlex.split(command["command"])
        assert argv[:3] == ["vllm", "serve", "meta-llama/Llama-2-70b-chat-hf"]
        assert gpus_in_command("vllm", argv) == command["replicas_per_launch"] * plan["gpus_per_replica"]
        assert value_of(argv, "--max-num-seqs") == plan["max_batch_size"]
        assert argv[argv.index("--quantization") + 1] == "quark"      # mlperf's auto precision on MI355X is fp4


def test_size_emit_sglang_prints_the_command_after_the_result():
    from click.testing import CliRunner
    from simulator.cli import cli
    result = CliRunner().invoke(cli, ["size", "--model", "llama2-70b", "--gpu", "b200", "--scenario", "server",
                                      "--target-tokens-per-s", "50000", "--emit", "sglang"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary, _, launch = result.output.partition("# launch: SGLang 0.5")
    assert "tokens_per_s" in summary and "plan.replicas" in summary
    commands = [line for line in launch.splitlines() if line.startswith("python -m sglang.launch_server")]
    assert commands and all("--model-path meta-llama/Llama-2-70b-chat-hf" in c for c in commands)
    replicas = int(next(line.split()[-1] for line in summary.splitlines() if line.startswith("plan.replicas ")))
    assert f"# server: {replicas} launch" in launch


@pytest.mark.parametrize("args, expected", [
    (["mlperf", "--emit", "tgi"], "--emit"),
    (["size", "--target-tokens-per-s", "1000", "--emit", "VLLM"], "--emit"),
    (["mlperf", "--gpu", "mi355x", "--gpus", "8", "--emit", "trtllm"], "--emit trtllm: TensorRT-LLM runs on nvidia"),
    (["mlperf", "--gpu", "b200", "--gpus", "8", "--precision", "fp6", "--emit", "sglang"], "--emit sglang: "),
])
def test_bad_emit_exits_2_with_one_line(args, expected, capsys):
    code, captured = run_main(args, capsys)
    assert code == 2
    assert expected in captured.err and captured.err.count("\n") == 1 and not captured.out
