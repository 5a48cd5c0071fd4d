import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import ConfigError
from simulator.models import Precision, get_model, load_models, model_from_hf_config


def test_llama2_70b_parameter_count_is_about_69b():
    """80 layers x (attention 150,994,944 + FFN 704,643,072) + 2 x 32000 x 8192 embeddings = 68.98e9."""
    model = get_model("llama2-70b")
    assert model.total_params == 80 * (150_994_944 + 704_643_072) + 2 * 32000 * 8192
    assert 68.5e9 < model.total_params < 69.5e9


@pytest.mark.parametrize("name, low_b, high_b", [
    ("llama3.1-8b", 7.9, 8.1), ("llama3.1-70b", 70.0, 71.0), ("llama3.1-405b", 404, 407),
    ("mixtral-8x7b", 46.5, 47.0), ("gpt-oss-120b", 116, 118), ("deepseek-r1", 670, 672)])
def test_published_parameter_counts(name, low_b, high_b):
    assert low_b * 1e9 < get_model(name).total_params < high_b * 1e9


def test_moe_active_parameters():
    """gpt-oss-120b is published as ~5.1B active, DeepSeek-R1 as ~37B, Mixtral as ~12.9B."""
    assert 4.9e9 < get_model("gpt-oss-120b").active_params_per_token < 5.3e9
    assert 36e9 < get_model("deepseek-r1").active_params_per_token < 38e9
    assert 12.5e9 < get_model("mixtral-8x7b").active_params_per_token < 13.0e9


def test_kv_bytes_per_token():
    """Llama 2 70B, fp8 KV: 80 layers x 8 KV heads x 128 x 2 (K and V) x 1 byte = 163,840 bytes.
    DeepSeek-R1 MLA, bf16: 61 layers x (512 latent + 64 rope) x 2 bytes = 70,272 bytes."""
    assert get_model("llama2-70b").kv_bytes_per_token("fp8") == 163_840
    assert get_model("llama2-70b").kv_bytes_per_token("bf16") == 327_680
    assert get_model("deepseek-r1").kv_bytes_per_token("bf16") == 70_272


def test_kv_bytes_per_gpu_gpt_oss_at_tp_1_8_16():
    """gpt-oss-120b: 8 KV heads of 64 dims, fp8 (1 byte), 18 full-attention layers, 18 sliding layers of 128.
    tp 1: a GPU holds all 8 heads: 2 x 64 x 8 = 1,024 B per layer -> 18 x 1,024 = 18,432 B per token.
    tp 8: one head each: 2 x 64 x 1 = 128 B per layer -> 2,304 B per token.
    tp 16: 16 GPUs share 8 heads, each GPU still holds one whole head (replicated): 128 B per layer,
    2,304 B per token, not 64 B per layer. Window per sequence at tp 16: 18 x 128 x 128 = 294,912 B.
    The engine (cost model) and the memory plan read these same numbers."""
    from simulator.costmodel import StepCost
    from simulator.hardware import Efficiency, get_gpu
    from simulator.memory import plan_memory
    from simulator.models import Precision
    from simulator.plan import Plan
    model, precision = get_model("gpt-oss-120b"), Precision("fp4", "fp4", "fp8")
    for tp, per_layer, per_token in ((1, 1024, 18_432), (8, 128, 2_304), (16, 128, 2_304)):
        assert model.kv_values_per_token_layer(tp) == per_layer
        assert model.kv_bytes_per_token("fp8", tp) == per_token
        plan = Plan(tp=tp)
        assert StepCost(model, get_gpu("mi355x"), precision, plan, Efficiency())._kv_bytes_per_token_layer_gpu == per_layer
        assert plan_memory(model, get_gpu("mi355x"), precision, plan).kv_bytes_per_token_per_gpu == per_token
    assert model.kv_bytes_per_sequence_window("fp8", 16) == 294_912


def test_sliding_window_layers_hold_a_bounded_window():
    """gpt-oss-120b: 18 full layers x 8 KV heads x 64 x 2 = 18,432 fp8 bytes per token; 18 sliding layers
    hold 128 tokens each: 18 x 128 x 1024 = 2,359,296 bytes per sequence."""
    model = get_model("gpt-oss-120b")
    assert model.kv_bytes_per_token("fp8") == 18_432
    assert model.kv_bytes_per_sequence_window("fp8") == 2_359_296


def test_weight_bytes_per_dtype():
    """Linear layers in the weight dtype, embeddings in bf16: fp8 -> 68.45e9 + 2 x 262.1e6 x 2 bytes."""
    model = get_model("llama2-70b")
    embed = 2 * 32000 * 8192
    assert model.weight_bytes("fp8") == pytest.approx(model.layer_stack_params + embed * 2)
    assert model.weight_bytes("bf16") == pytest.approx(model.total_params * 2)
    assert model.weight_bytes("fp4") < model.weight_bytes("fp8") * 0.6


def test_flops_per_token():
    """2 x active params plus 4 x heads x head_dim per layer per context token."""
    model = get_model("llama2-70b")
    assert model.flops_per_token(1000) == 2 * model.active_params_per_token + 4 * 64 * 128 * 80 * 1000


def test_hf_config_loads(tmp_path):
    config = {"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
              "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    model = model_from_hf_config(path)
    assert model.total_params == get_model("llama3.1-8b").total_params
    assert get_model(str(path)).layers == 32


def write_config(tmp_path, config) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_llama4_maverick_config_alternates_dense_and_moe_layers(tmp_path):
    """Llama 4 Maverick (its config.json's text_config): 48 layers, hidden 5120, 40 heads, 8 KV heads of
    128; MoE on every second layer (`interleave_moe_layer_step` 2): 128 routed experts of width 8192, top-1,
    plus one shared expert of that width; dense layers of width `intermediate_size_mlp` 16384.
    By hand, attention 5120 x 128 x (2 x 40 + 2 x 8) = 62,914,560 a layer, x 48 = 3,019,898,880;
    24 dense FFNs of 3 x 5120 x 16384 = 251,658,240: 6,039,797,760; 24 MoE layers of 129 experts of
    3 x 5120 x 8192 = 125,829,120 plus a router of 5120 x 128: 389,582,684,160; embeddings
    2 x 202048 x 5120 = 2,068,971,520. Total 400,711,352,320 (Meta: 400B). Active per token: attention,
    dense, 24 x (2 x 125,829,120 + 655,360) = 6,055,526,400 and the output head 1,034,485,760:
    16,149,708,800 (Meta's 17B counts the input embedding too).
    Chunked attention: 3 of 4 layers (rotary ones) hold at most 8192 tokens a sequence."""
    text = {"model_type": "llama4_text", "hidden_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 40,
            "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
            "num_local_experts": 128, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2,
            "vocab_size": 202048, "attention_chunk_size": 8192, "max_position_embeddings": 1048576}
    path = write_config(tmp_path, {"model_type": "llama4", "text_config": text})
    model = model_from_hf_config(path)
    assert (model.moe_layers, model.dense_layers, model.shared_experts) == (24, 24, 1)
    # what infersim reads from a config.json is shown before anything runs on it
    shown = json.loads(CliRunner().invoke(cli, ["catalog", "models", "--model", str(path), "--json"]).output)
    assert shown[0]["moe_layers"] == 24 and shown[0]["params_b"] == pytest.approx(400.711352320)
    assert model.total_params == 400_711_352_320
    assert model.active_params_per_token == 16_149_708_800
    assert (model.sliding_window, model.sliding_layers, model.full_attention_layers) == (8192, 36, 12)


def test_qwen_moe_shared_expert_counts_in_expert_widths(tmp_path):
    """Qwen1.5-MoE-A2.7B: 24 layers, hidden 2048, 16 heads (MHA), 60 experts of width 1408, top-4, and a
    shared expert of width 5632 = 4 expert widths. Active by hand: attention 4 x 2048^2 = 16,777,216 a
    layer (biases left out), x 24 = 402,653,184; MoE (4 + 4) x 3 x 2048 x 1408 + 2048 x 60 = 69,328,896 a
    layer, x 24 = 1,663,893,504; output head 151936 x 2048 = 311,164,928: 2,377,711,616 (Qwen's 2.7B adds
    the input embedding, 0.31B)."""
    config = {"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
              "num_key_value_heads": 16, "intermediate_size": 5632, "moe_intermediate_size": 1408,
              "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
              "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 151936}
    model = model_from_hf_config(write_config(tmp_path, config))
    assert (model.shared_experts, model.expert_ffn, model.moe_layers) == (4, 1408, 24)
    assert model.active_params_per_token == 2_377_711_616
    dense_first = model_from_hf_config(write_config(tmp_path, {**config, "mlp_only_layers": [0, 1]}))
    assert (dense_first.moe_layers, dense_first.dense_layers) == (22, 2)
    # a moe_layers list names the MoE layers instead of the step rules (Hugging Face's Llama 4)
    listed = model_from_hf_config(write_config(tmp_path, {**config, "decoder_sparse_step": 2, "moe_layers": [1, 2, 3]}))
    assert listed.moe_layers == 3


def test_hf_config_missing_key(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 4096}))
    with pytest.raises(ConfigError, match="missing key 'num_attention_heads'"):
        model_from_hf_config(path)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown model 'llama9'.*llama2-70b"):
        get_model("llama9")


def test_catalog_typo_is_an_error(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[tiny]\nlayers = 2\nhidden = 64\nheads = 4\nkv_heads = 4\nhead_dim = 16\nffn = 128\n'
                    'vocab = 100\nlayer = 3\n')
    with pytest.raises(ConfigError, match=r"\[tiny\]: unknown key 'layer'"):
        load_models([path])


def test_precision_parse():
    assert Precision.parse("fp4") == Precision("fp4", "fp4", "fp8")
    assert Precision.parse("fp4/fp8/bf16") == Precision("fp4", "fp8", "bf16")
    assert Precision("fp4", "fp8", "fp8").gemm_dtype == "fp8"
    with pytest.raises(ConfigError, match="precision.kv_cache"):
        Precision("fp8", "fp8", "fp4")
    with pytest.raises(ConfigError, match="`precision`"):
        Precision.parse("int3")


@pytest.mark.parametrize("change, message", [
    ({"num_attention_heads": 0}, r"num_attention_heads: 0 is out of range \[1, 1e\+09\]"),
    ({"num_attention_heads": "32"}, "num_attention_heads: expected a number, got '32'"),
    ({"hidden_size": None}, "missing key 'hidden_size'"),
    ({"max_position_embeddings": "lots"}, "max_position_embeddings: expected a number, got 'lots'"),
    ({"sliding_window": "x"}, "sliding_window: expected a number, got 'x'"),
    ({"sliding_window": 4096, "layer_types": "sliding"}, r"layer_types must be a list with one entry per layer \(32\)"),
    ({"num_local_experts": 8}, "num_experts_per_tok is missing: the experts each token is routed to, a whole "
                               "number from 1 to the 8 experts"),
    ({"num_local_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok is 9: the experts each token"),
    ({"num_local_experts": 8, "num_experts_per_tok": 2, "mlp_only_layers": ["3"]}, "mlp_only_layers must be a list"),
    ({"num_local_experts": 8, "num_experts_per_tok": 2, "moe_layers": [40]}, "moe_layers must be a list of layer"),
    ({"num_local_experts": 8, "num_experts_per_tok": 2, "decoder_sparse_step": 64}, "leaves no layer a MoE layer"),
    ({"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 1000,
      "shared_expert_intermediate_size": 2500}, "shared_expert_intermediate_size 2500 is not a multiple"),
    ({"text_config": 5}, "text_config must be a JSON object"),
])
def test_hf_config_values_of_the_wrong_type_name_the_key(tmp_path, change, message):
    config = {"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
              "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192, **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        model_from_hf_config(path)
