"""Hostile GPU and model catalog entries and config.json values: each refused in one line naming the field
(exit 2 on the CLI), never a traceback, a silently coerced value or an entry no lookup can find."""
import json

import pytest
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.hardware import gpu_by_alias, load_gpus
from simulator.models import load_models, model_from_hf_config

GPU = {"display_name": '"X"', "vendor": '"nvidia"', "family": '"hopper"', "hbm_gb": "141", "hbm_tb_per_s": "4.8",
       "peak_tflops": "{ bf16 = 989, fp8 = 1979 }", "scaleup": '"nvswitch"', "scaleup_gb_per_s": "900",
       "gpus_per_server": "8", "nic_gbps": "400", "power_w": "700", "usd_per_gpu_hour": "[2.5, 4.5]"}
MODEL = {"layers": "32", "hidden": "4096", "heads": "32", "kv_heads": "8", "head_dim": "128", "ffn": "14336",
         "vocab": "128256"}
HF = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
      "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
      "tie_word_embeddings": False}


def entry(name: str, base: dict, **changes) -> str:
    lines = [f"{key} = {value}" for key, value in {**base, **changes}.items()]
    return f"[{name}]\n" + "\n".join(lines) + "\n"


def write(tmp_path, text: str, name: str = "cat.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def cli_error(capsys, argv) -> str:
    """The one line `infersim ARGV` prints on stderr; it must exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "Traceback" not in err, err
    return err


SIMULATE = ["simulate", "--model", "llama3.1-8b", "--gpus", "1", "--rate", "2", "--requests", "20"]


def refused(call, message: str) -> str:
    with pytest.raises(ConfigError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


# ---- GPU text fields and vendor ------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [("family", '["hopper"]'), ("base_family", "[1]"), ("vendor", "5"),
                                        ("display_name", "7"), ("source", "5")])
def test_a_gpu_text_field_of_another_type_is_refused(tmp_path, key, value):
    path = write(tmp_path, entry("mygpu", GPU, **{key: value}))
    refused(lambda: load_gpus([path]), f"{key}: expected a string")


def test_a_list_family_is_one_line_on_the_cli_not_a_traceback(tmp_path, capsys):
    path = write(tmp_path, entry("mygpu", GPU, family='["hopper"]'))
    assert "family: expected a string" in cli_error(capsys, SIMULATE + ["--catalog", str(path), "--gpu", "mygpu"])


def test_a_gpu_of_a_vendor_without_calibration_runs_and_says_it_has_no_interval(tmp_path, capsys):
    """Any GPU from its datasheet: a vendor the profile has no values for runs at the [default] ones,
    and the run says so instead of printing a number without an interval in silence."""
    path = write(tmp_path, entry("mygpu", GPU, vendor='"intel"', family='"gaudi3"'))
    main(["simulate", "--catalog", path, "--gpu", "mygpu", "--model", "llama3.1-8b", "--gpus", "1", "--rate", "2",
          "--requests", "5"])
    err = capsys.readouterr().err
    assert "no prediction interval: the efficiency profile holds no fit for mygpu" in err
    assert "vendor (intel) and family (gaudi3)" in err


def test_an_unknown_base_family_is_refused_naming_the_families(tmp_path):
    path = write(tmp_path, entry("mygpu", GPU, base_family='"nosuch"'))
    refused(lambda: load_gpus([path]), r"\[mygpu\]: base_family 'nosuch' is no catalog GPU's family; known: "
                                       r"blackwell, blackwell-ultra, cdna3, cdna4, hopper")


def test_a_new_family_is_its_own_base_family(tmp_path):
    path = write(tmp_path, entry("mygpu", GPU, family='"rubin"'))
    assert load_gpus([path])["mygpu"].base_family == "rubin"


# ---- catalog names are lower case --------------------------------------------------------------------
def test_an_upper_case_gpu_name_is_refused_not_unfindable(tmp_path):
    path = write(tmp_path, entry("MyGPU", GPU))
    refused(lambda: load_gpus([path]), r"\[MyGPU\]: catalog names are lower case .* write \[mygpu\]")


def test_an_upper_case_model_name_is_refused_not_unfindable(tmp_path):
    path = write(tmp_path, entry("MyM", MODEL))
    refused(lambda: load_models([path]), r"\[MyM\]: catalog names are lower case .* write \[mym\]")


def test_shipped_catalog_names_are_lower_case():
    assert all(name == name.lower() for name in [*load_gpus(), *load_models()])


# ---- aliases -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("alias, other", [("H200", "h200"), ("h100", "h100"), ("NVIDIA  b200", "b200")])
def test_an_alias_that_is_another_gpus_name_is_refused(tmp_path, alias, other):
    path = write(tmp_path, entry("mygpu", GPU, aliases=f'["{alias}"]'))
    refused(lambda: load_gpus([path]), rf"\[mygpu\]: alias '{alias}' is (the name|also an alias) of GPU {other}")


def test_two_gpus_sharing_an_alias_is_refused(tmp_path):
    path = write(tmp_path, entry("mygpu", GPU, aliases='["x"]') + entry("other", GPU, aliases='["X"]'))
    refused(lambda: load_gpus([path]), r"\[other\]: alias 'X' is also an alias of GPU mygpu")


def test_a_gpu_may_list_its_own_name_as_an_alias(tmp_path):
    path = write(tmp_path, entry("mygpu", GPU, aliases='["MyGPU", "My GPU"]'))
    assert gpu_by_alias(load_gpus([path]))["mygpu"] == "mygpu"


# ---- narrow-format peaks -----------------------------------------------------------------------------
@pytest.mark.parametrize("peaks, message", [
    ("{ bf16 = 989, fp8 = 1979, fp4 = 10 }", "peak_tflops.fp4 10 is below peak_tflops.fp8 1979"),
    ("{ bf16 = 989, fp8 = 1979, fp6 = 1000, fp4 = 4000 }", "peak_tflops.fp6 1000 is below peak_tflops.fp8 1979"),
    ("{ bf16 = 989, fp8 = 1979, fp6 = 4000, fp4 = 2000 }", "peak_tflops.fp4 2000 is below peak_tflops.fp6 4000"),
    ("{ bf16 = 989, fp4 = 500 }", "peak_tflops.fp4 500 is below peak_tflops.bf16 989"),
])
def test_a_narrow_peak_below_a_wider_one_is_refused(tmp_path, peaks, message):
    path = write(tmp_path, entry("mygpu", GPU, peak_tflops=peaks))
    refused(lambda: load_gpus([path]), message)


def test_set_fp4_peak_below_fp6_is_refused(capsys):
    err = cli_error(capsys, SIMULATE + ["--gpu", "b200", "--precision", "fp4", "--set", "gpu.peak_tflops.fp4=1"])
    assert "peak_tflops.fp4 1.0 is below peak_tflops.fp6 4500" in err


# ---- model booleans and config.json zeros ------------------------------------------------------------
def test_a_catalog_tie_embeddings_string_is_refused(tmp_path):
    path = write(tmp_path, entry("mym", MODEL, tie_embeddings='"no"'))
    refused(lambda: load_models([path]), "tie_embeddings: expected true or false, got 'no'")


def test_a_model_text_field_of_another_type_is_refused(tmp_path):
    path = write(tmp_path, entry("mym", MODEL, display_name="7"))
    refused(lambda: load_models([path]), "display_name: expected a string")


def hf_config(tmp_path, **changes):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**HF, **changes}))
    return path


@pytest.mark.parametrize("key, value", [("tie_word_embeddings", "false"), ("tie_word_embeddings", 0),
                                        ("use_sliding_window", "false")])
def test_a_config_json_flag_that_is_not_a_boolean_is_refused(tmp_path, key, value):
    path = hf_config(tmp_path, **{key: value}, sliding_window=4096)
    refused(lambda: model_from_hf_config(path), f"{key}: expected true or false")


@pytest.mark.parametrize("key", ["num_key_value_heads", "max_position_embeddings"])
def test_a_config_json_zero_is_refused_not_a_default(tmp_path, key):
    path = hf_config(tmp_path, **{key: 0})
    refused(lambda: model_from_hf_config(path), f"{key}: 0 is out of range")


def test_config_json_absent_kv_heads_means_mha_and_flags_still_read(tmp_path):
    config = {k: v for k, v in HF.items() if k != "num_key_value_heads"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**config, "tie_word_embeddings": True}))
    model = model_from_hf_config(path)
    assert model.kv_heads == model.heads == 32 and model.tie_embeddings is True
