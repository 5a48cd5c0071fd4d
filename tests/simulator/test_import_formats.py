"""import-runs formats that take the deployment from options (vllm): a value no deployment can have is
refused before a file is read, naming the option, not the file (which says nothing about it)."""
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.errors import ConfigError
from simulator.importers import IMPORT_FORMATS

# a Llama 3.1 70B run (the 8B fixture with its model_id changed: these tests deploy 70B)
RUN = Path(__file__).parent.parent / "data" / "vllm_bench_rate_70b.json"


@pytest.mark.parametrize("options, message", [
    (dict(gpus=0), "`gpus`: 0 is out of range [1, 100000]"),
    (dict(gpus=8, tp=0), "`tp`: 0 is out of range [1, 1024]"),
    (dict(gpus=8, tp=3), "`tp`: 3 does not divide llama3.1-70b's 64 attention heads"),
    (dict(gpus=4, tp=8), "`gpus`: 4 GPUs cannot hold one replica of tp=8"),
    (dict(gpus=8, ep=2), "`ep`: 2 needs a mixture-of-experts model"),
    (dict(gpus=8, precision="fp3"), "`precision`: 'fp3' is not one of"),
])
def test_vllm_deployment_options_are_checked_and_named(options, message):
    """--gpus 0 was blamed on the file ('v5.json: gpus '0' is out of range'), and --tp 3 on a 64-head
    model was written to the rows unchecked, to fail later in calibrate."""
    with pytest.raises(ConfigError) as error:
        IMPORT_FORMATS["vllm"]().read([str(RUN)], model="llama3.1-70b", gpu="h100", **options)
    assert str(error.value).startswith(message) and RUN.name not in str(error.value)


def test_vllm_a_plan_that_fits_imports():
    rows, _ = IMPORT_FORMATS["vllm"]().read([str(RUN)], model="llama3.1-70b", gpu="h100", gpus=8, tp=4)
    assert (rows[0].gpus, rows[0].tp) == (8, 4)


def test_cli_vllm_tp_error_names_the_flag_and_writes_nothing(tmp_path):
    out = tmp_path / "rows.csv"
    done = subprocess.run([sys.executable, "-m", "simulator", "import-runs", "--format", "vllm", str(RUN), "--model",
                           "llama3.1-70b", "--gpu", "h100", "--gpus", "8", "--tp", "3", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.startswith("infersim: error: --tp: 3 does not divide") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("change, message", [
    ({"max_concurrency": -3, "request_rate": "inf"}, "max_concurrency -3 must be a whole number >= 1"),
    ({"request_rate": None}, "request_rate is missing and max_concurrency is missing"),
])
def test_vllm_file_counts_and_a_missing_rate_are_named_as_they_are(tmp_path, change, message):
    """A negative count was 'a finite non-negative number' (a count is a whole number >= 1), and a null
    request_rate was called 'inf'."""
    import json
    data = {k: v for k, v in json.loads(RUN.read_text()).items() if k != "max_concurrency"}
    data.update(change)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        IMPORT_FORMATS["vllm"]().read([str(path)], model="llama3.1-70b", gpu="h100", gpus=8, tp=4)


@pytest.mark.parametrize("model, model_id, accepted", [
    ("llama3.1-70b", "meta-llama/Llama-3.1-70B-Instruct", True),
    ("llama3.1-70b", "RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8", True),   # another checkpoint, same size
    ("llama3.1-70b", "my-finetune", True),                                 # says no size
    ("llama3.1-70b", "meta-llama/Llama-3.1-8B-Instruct", False),
    ("llama3.1-70b", "Qwen/Qwen3-30B-A3B", False),                         # 30B, not the active 3B
    ("mixtral-8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1", True),        # 8 x 7 = 56 names 46.7B
    ("mixtral-8x7b", "mistralai/Mixtral-8x22B-v0.1", False),
    ("deepseek-r1", "deepseek-ai/DeepSeek-V3", True),
    ("deepseek-r1", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", False),   # the catalog name has no size
])
def test_vllm_a_file_that_ran_another_size_of_model_is_refused(tmp_path, model, model_id, accepted):
    """A result file says which model it served (model_id); imported as llama3.1-70b, a run of the 8B
    model would teach the fit an 8B's speed as the 70B's. It was imported without a word. The size a name
    gives is held against the model's own parameter count, so a catalog name without one (deepseek-r1)
    still refuses a 70B distillation."""
    import json
    data = json.loads(RUN.read_text())
    data["model_id"] = model_id
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    gpus, tp = (8, 8) if model == "deepseek-r1" else (8, 4)
    read = lambda: IMPORT_FORMATS["vllm"]().read([str(path)], model=model, gpu="h200", gpus=gpus, tp=tp,
                                                 precision="fp8")
    if accepted:
        assert read()[0][0].model == model
    else:
        with pytest.raises(ConfigError, match=rf"^`model`: {model} has [0-9.]+B parameters, but .* ran model_id"):
            read()
