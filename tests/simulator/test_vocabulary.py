"""One vocabulary in every output: the same quantity under one name in each command's JSON, and one way
of printing numbers in every table and summary."""
import json
import re

from click.testing import CliRunner

from simulator.cli import cli
from simulator.output import format_number, format_summary, format_table

COMMANDS = {
    "simulate": ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--offline", "--requests", "200"],
    "mlperf": ["mlperf", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--queries", "300"],
    "size": ["size", "--model", "llama3.1-8b", "--gpu", "b200", "--scenario", "offline", "--target-tokens-per-s",
             "40000", "--queries", "300", "--node-gpus", "1"],
}
# names another command (or an earlier version) used for a quantity that has one name now
RETIRED = {"tokens_per_s": "output_tokens_per_s", "tokens_per_s_low": "output_tokens_per_s_low",
           "tokens_per_s_high": "output_tokens_per_s_high", "tokens_per_s_per_gpu": "output_tokens_per_s_per_gpu",
           "offline_tokens_per_s": "offline_output_tokens_per_s", "node_tokens_per_s": "node_output_tokens_per_s",
           "measured_tokens_per_s": "measured_output_tokens_per_s",
           "predicted_tokens_per_s": "predicted_output_tokens_per_s", "power_w_upper_bound": "gpu_power_w_upper_bound",
           "energy_j_per_token_upper_bound": "gpu_energy_j_per_token_upper_bound"}


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def keys(value, prefix=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "config":
                yield key
                yield from keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys(inner)


def test_every_command_names_throughput_and_latency_alike():
    documents = {name: json.loads(invoke(*args, "--json")) for name, args in COMMANDS.items()}
    for name, document in documents.items():
        found = set(keys(document))
        assert not found & set(RETIRED), (name, sorted(found & set(RETIRED)))
        for shared in ("output_tokens_per_s", "ttft_p99_s", "tpot_p99_s", "usd_per_million_tokens",
                       "output_tokens_per_s_low", "output_tokens_per_s_high"):
            assert shared in document, (name, shared)
    assert documents["mlperf"]["output_tokens_per_s_per_gpu"] > 0
    assert documents["size"]["output_tokens_per_s_per_gpu"] > 0
    scenarios = json.loads(invoke("catalog", "scenarios", "--json"))
    assert {"ttft_limit_s", "tpot_limit_s"} <= set(scenarios[0]) and "ttft_p99_s" not in scenarios[0]
    assert "ttft_limit_s" in documents["mlperf"]


def test_numbers_print_one_way():
    assert [format_number(v) for v in (1266450.3, 1_000_000, 12345, 1234, 812.54, 0.123456, float("nan"), "b200")] \
        == ["1,266,450", "1,000,000", "12,345", "1234", "812.5", "0.1235", "nan", "b200"]
    # a silly input's huge figure (a profile's 1e-300 efficiency): exponent form, not three hundred digits
    assert [format_number(v) for v in (1.0e300, 10**20, 999_999_999_999_999.0)] == ["1e+300", "1e+20", "999,999,999,999,999"]
    summary = format_summary({"output_tokens_per_s": 1266450.3, "plan": {"gpus": 100000},
                              "candidates": [{"plan": "tp1", "offline_output_tokens_per_s": 1.5e6}]})
    assert "1,266,450" in summary and "100,000" in summary and "1,500,000" in summary
    assert format_table([{"a": 1266450.3, "b": 1_000_000}], ["a", "b"]).splitlines()[1].split() == \
        ["1,266,450", "1,000,000"]


def test_consoles_print_tables_not_python_and_no_exponents():
    text = invoke(*COMMANDS["mlperf"])
    assert "{'" not in text and "[{" not in text
    assert not re.search(r"\d\.\d+e\+\d\d", text), text
    lines = text.splitlines()
    header = lines.index("candidates:") + 1
    assert lines[header].split() == ["plan", "offline_output_tokens_per_s", "outcome"]
    assert lines[header + 1].strip().startswith("tp1-pp1-ep1-mbs")
    sized = invoke(*COMMANDS["size"])
    assert "searched_gpus:" in sized and not re.search(r"\d\.\d+e\+\d\d", sized)


def test_gpu_catalog_shows_its_sources():
    text = invoke("catalog", "gpus")
    table, _, notes = text.partition("\nsources:\n")
    assert table.splitlines()[0].split()[-1] == "source"
    assert "[1]" in table.splitlines()[1]
    assert "  [1] NVIDIA H100 datasheet" in notes
    rows = json.loads(invoke("catalog", "gpus", "--json"))
    assert all(row["source"] for row in rows)
