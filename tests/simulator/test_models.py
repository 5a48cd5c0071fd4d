import json

import pytest

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
    ({"sliding_window": 4096, "layer_types": "sliding"}, "layer_types must be a list of layer kinds"),
    ({"text_config": 5}, "text_config must be a JSON object"),
])
def test_hf_config_values_of_the_wrong_type_name_the_key(tmp_path, change, message):
    config = {"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
              "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192, **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        model_from_hf_config(path)
