import os
from pathlib import Path

import numpy as np

import pytest

from simulator.errors import ConfigError
from workloads import (Constant, Empirical, Fixed, Gamma, LogNormal, Offline, Poisson, Uniform,
                       get_scenario, list_scenarios, load_trace, mlperf_tpot_s, parse_length_flag, workload_from_flags,
                       workload_from_toml)

DATA = Path(__file__).parent.parent / "data"


def test_poisson_mean_gap():
    times = Poisson(50.0).times(100_000, np.random.default_rng(0))
    assert np.diff(times).mean() == pytest.approx(1 / 50, rel=0.02)


def test_gamma_cv_recovered():
    gaps = np.diff(Gamma(10.0, cv=3.0).times(200_000, np.random.default_rng(1)))
    assert gaps.mean() == pytest.approx(0.1, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_constant_and_offline():
    np.testing.assert_allclose(Constant(4.0).times(3, None), [0.25, 0.5, 0.75])
    assert not Offline().times(5, None).any()


def test_length_distributions():
    rng = np.random.default_rng(2)
    assert set(Fixed(7).sample(10, rng)) == {7}
    uniform = Uniform(10, 20).sample(10_000, rng)
    assert uniform.min() >= 10 and uniform.max() <= 20
    lognormal = LogNormal(300, 0.5).sample(200_000, rng)
    assert lognormal.mean() == pytest.approx(300, rel=0.01)
    clipped = LogNormal(300, 2.0, low=5, high=1024).sample(10_000, rng)
    assert clipped.min() >= 5 and clipped.max() <= 1024


def test_empirical_from_file():
    """Histogram 100 x 3, 200 x 1: mean 125."""
    lengths = Empirical.from_file(DATA / "lengths_hist.csv")
    assert lengths.mean == pytest.approx(125)
    assert lengths.sample(40_000, np.random.default_rng(0)).mean() == pytest.approx(125, rel=0.01)


@pytest.mark.parametrize("seed", range(8))
def test_empirical_draws_what_numpy_choice_draws(seed):
    """The guide-table sampler gives exactly rng.choice(values, p=weights): the same uniforms, the same
    inverse-CDF rule, on a dataset histogram (Llama 3.1 405B's prompts, 5,586 values), and on weights with
    zeros and ties, where flat stretches of the CDF must be stepped over."""
    dataset = get_scenario("llama3.1-405b", "offline").input_lengths
    ragged = Empirical((5, 9, 11, 40, 41, 300), (0.0, 2.0, 0.0, 1.0, 1.0, 0.0))
    for lengths in (dataset, ragged):
        weights = np.asarray(lengths.weights or [1.0] * len(lengths.values))
        for count in (0, 1, 3, 50_000):
            expected = np.random.default_rng(seed).choice(np.asarray(lengths.values), size=count,
                                                          p=weights / weights.sum())
            np.testing.assert_array_equal(lengths.sample(count, np.random.default_rng(seed)), expected)


@pytest.mark.parametrize("seed", range(4))
def test_empirical_counts_are_the_draws_counted(seed):
    """Counting uniforms per value by whole guide bins gives what mapping each one and counting gives,
    on the 405B prompt histogram and on ragged weights (zeros, ties), including uniforms on and a hair
    either side of every bin edge and cumulative-probability step, where rounding could misplace one."""
    dataset = get_scenario("llama3.1-405b", "offline").input_lengths
    ragged = Empirical((5, 9, 11, 40, 41, 300), (0.0, 2.0, 0.0, 1.0, 1.0, 0.0))
    for lengths in (dataset, ragged):
        _, cdf, guide = lengths._inverse_cdf
        edges = np.concatenate([np.arange(len(guide)) / len(guide), cdf[:-1]])
        uniform = np.concatenate([np.random.default_rng(seed).random(200_000), edges,
                                  np.nextafter(edges, 0), np.nextafter(edges, 1)])
        uniform = uniform[(uniform >= 0) & (uniform < 1)]
        np.testing.assert_array_equal(lengths.counts(uniform),
                                      np.bincount(lengths.indices(uniform), minlength=len(lengths.values)))


@pytest.mark.parametrize("text, message", [("0", "tokens: 0 is out of range"), ("lognormal:300", "is not N"),
                                            ("uniform:9,3", "high: 3 is out of range")])
def test_length_flag_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_length_flag("--input-tokens", text)


def test_trace_csv_sorted_and_jsonl():
    trace = load_trace(DATA / "trace_ok.csv")
    np.testing.assert_allclose(trace.arrival_s, [0.1, 0.5, 1.0])
    np.testing.assert_array_equal(trace.input_tokens, [50, 100, 200])
    assert len(load_trace(DATA / "trace_ok.jsonl")) == 2


@pytest.mark.parametrize("content, message", [
    ("arrival_s,input_tokens,output_tokens\n-1,10,10\n", "line 2: arrival_s '-1' must be finite"),
    ("arrival_s,input_tokens,output_tokens\n0,abc,10\n", "line 2: values must be numbers"),
    ("arrival_s,input_tokens\n0,10\n", "header lacks column 'output_tokens'"),
    ("", "file is empty"),
    ("arrival_s,input_tokens,output_tokens\nnan,10,10\n", "must be finite"),
    ("arrival_s,input_tokens,output_tokens\n0,10,0\n", "output_tokens '0' must be a whole number"),
    ("arrival_s,input_tokens,output_tokens\n", "no requests"),
])
def test_trace_errors(tmp_path, content, message):
    path = tmp_path / "trace.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_trace(path)


def test_spec_from_toml_and_unknown_key(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('requests = 100\n[arrival]\nkind = "gamma"\nrate_per_s = 5\ncv = 2\n'
                    '[input]\nkind = "fixed"\ntokens = 64\n[output]\nkind = "uniform"\nlow = 1\nhigh = 9\n')
    spec = workload_from_toml(path)
    requests = spec.build(seed=3)
    assert len(requests) == 100 and set(requests.input_tokens) == {64}
    assert np.array_equal(requests.arrival_s, spec.build(seed=3).arrival_s)
    path.write_text('requests = 100\nrate = 3\n[input]\nkind = "fixed"\ntokens = 64\n')
    with pytest.raises(ConfigError, match="unknown key 'rate'"):
        workload_from_toml(path)


def test_spec_from_flags_duration_cut():
    requests = workload_from_flags(rate=40, duration_s=120).build(0)
    assert requests.arrival_s.max() < 120
    assert len(requests) == pytest.approx(4800, rel=0.05)
    with pytest.raises(ConfigError, match="`rate` R"):
        workload_from_flags()
    with pytest.raises(ConfigError, match="`rate`: -1"):
        workload_from_flags(rate=-1, duration_s=3)


def test_scenarios_catalog():
    scenarios = list_scenarios()
    models = {s.model for s in scenarios}
    assert {"llama2-70b", "llama3.1-405b", "llama3.1-8b", "gpt-oss-120b", "deepseek-r1", "mixtral-8x7b"} <= models
    for scenario in scenarios:
        assert scenario.source and scenario.input_lengths.mean > 0
        if scenario.kind != "offline":
            assert scenario.ttft_p99_s > 0 and scenario.tpot_p99_s > 0
    server = get_scenario("llama2-70b", "server")
    assert (server.ttft_p99_s, server.tpot_p99_s) == (2.0, 0.2)
    assert get_scenario("llama2-70b", "interactive").tpot_p99_s == 0.04
    with pytest.raises(ConfigError, match="no interactive scenario"):
        get_scenario("mixtral-8x7b", "interactive")


def test_mlperf_tpot():
    """(latency - TTFT) / (output - 1): (2.0 - 0.5) / (31 - 1) = 0.05."""
    np.testing.assert_allclose(mlperf_tpot_s([2.0], [0.5], [31]), [0.05])
    assert np.isnan(mlperf_tpot_s([2.0], [0.5], [1])[0])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused_before_any_read(tmp_path):
    """A pipe has no size to check and a read waits for a writer: refused in one line, never read (a
    read here would block the test forever)."""
    from simulator.catalog_io import read_text
    pipe = tmp_path / "lengths.csv"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=r"lengths.csv: not a regular file \(a device, pipe or socket\)"):
        read_text(pipe)


def test_files_with_a_byte_order_mark_read_as_without(tmp_path):
    """Spreadsheets and some Windows editors start UTF-8 files with a byte-order mark: a lengths table
    and a TOML catalog read the same with it (histogram 100 x 3, 200 x 1: mean 125)."""
    from simulator.catalog_io import read_toml
    lengths = tmp_path / "lengths.csv"
    lengths.write_bytes(b"\xef\xbb\xbf" + (DATA / "lengths_hist.csv").read_bytes())
    assert Empirical.from_file(lengths).mean == pytest.approx(125)
    catalog = tmp_path / "gpus.toml"
    catalog.write_bytes(b"\xef\xbb\xbf[mygpu]\nhbm_gb = 80\n")
    assert read_toml(catalog) == {"mygpu": {"hbm_gb": 80}}
    # the same table saved as UTF-16 (another editor's "Unicode") is named as not UTF-8, in one line
    catalog.write_text("[mygpu]\nhbm_gb = 80\n", encoding="utf-16")
    with pytest.raises(ConfigError, match=r"gpus.toml: not UTF-8 text \(save it as UTF-8\)$"):
        read_toml(catalog)
