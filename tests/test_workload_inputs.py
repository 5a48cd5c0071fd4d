"""Workload inputs a user can get wrong: each is refused in one line naming the field and the allowed
range, never a traceback, a silently ignored value or one coerced into another."""
from __future__ import annotations

import pytest

from simulator.errors import ConfigError
from workloads.lengths import Empirical
from workloads.spec_inputs import workload_from_dict, workload_from_flags

FIXED = {"kind": "fixed", "tokens": 50}


def workload(**tables) -> dict:
    return {"requests": 5, "input": FIXED, "output": FIXED, **tables}


@pytest.mark.parametrize("tables, message", [
    ({"arrival": {"kind": ["poisson"], "rate_per_s": 1}}, "arrival.kind: ['poisson'] is not one of"),
    ({"input": {"kind": ["fixed"], "tokens": 5}}, "[input].kind: ['fixed'] is not one of"),
    ({"input": {"kind": "empirical", "values": 100}}, "values: expected an array of numbers, got 100"),
    ({"input": {"kind": "empirical", "values": ["a", "b"]}}, "values[0]: expected a number, got 'a'"),
    ({"input": {"kind": "empirical", "values": [100, 200], "weights": "abc"}}, "weights: expected an array"),
    ({"input": {"kind": "empirical", "values": [1e300]}}, "values[0]: 1e+300 is out of range [1, 1e+07]"),
    ({"input": {"kind": "empirical", "values": [True, 100]}}, "values[0]: expected a number, got True"),
    ({"input": {"kind": "empirical", "values": [100, 200], "weights": [1, False]}},
     "weights[1]: expected a number, got False"),
    ({"input": {"kind": "empirical", "values": [[1, 2], [3, 4]]}}, "values[0]: expected a number, got [1, 2]"),
    ({"input": {"kind": "empirical", "file": "lengths.csv", "values": [1]}},
     "give file or values (with weights), not both: values would be ignored"),
])
def test_workload_table_refused_in_one_line(tables, message):
    with pytest.raises(ConfigError) as caught:
        workload_from_dict(workload(**tables))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_empirical_from_python_takes_arrays_and_refuses_booleans():
    import numpy as np
    assert Empirical(np.array([5, 9]), np.array([1.0, 3.0])).mean == 8.0
    with pytest.raises(ConfigError, match=r"values\[1\]: expected a number"):
        Empirical((5, np.True_))


@pytest.mark.parametrize("flag", ["lognormal:100,0.1,5000,6000", "lognormal:7000,0.1,5000,6000"])
def test_lognormal_mean_outside_its_bounds_is_refused(flag):
    """Every draw would clip to a bound, so the mean a run reports would not be the mean drawn."""
    with pytest.raises(ConfigError, match=r"^`input_tokens`: mean: \d+\.0 is out of range \[5000, 6000\]$"):
        workload_from_flags(rate=1, requests=3, input_tokens=flag)


@pytest.mark.parametrize("name, text, message", [
    ("dup.csv", "arrival_s,arrival_s,input_tokens,output_tokens\n0,5,100,100\n",
     "dup.csv: line 1: column 'arrival_s' appears twice; keep one"),
    ("alias.csv", "timestamp,arrival_s,input_tokens,output_tokens\n0,5,100,100\n",
     "alias.csv: line 1: columns 'timestamp' and 'arrival_s' both give arrival_s; keep one"),
    ("extra.csv", "arrival_s,input_tokens,output_tokens,extra\n0,100,100,x\n",
     "extra.csv: line 1: unknown column 'extra'; accepted: arrival_s (or timestamp, arrival), input_tokens (or "
     "input), output_tokens (or output)"),
    ("extra.jsonl", '{"arrival_s": 0, "input_tokens": 5, "output_tokens": 5, "user": 3}\n',
     "extra.jsonl: line 1: unknown column 'user'; accepted: arrival_s"),
    ("alias.jsonl", '{"arrival_s": 0, "timestamp": 9, "input_tokens": 5, "output_tokens": 5}\n',
     "alias.jsonl: line 1: columns 'arrival_s' and 'timestamp' both give arrival_s"),
])
def test_trace_column_that_would_be_ignored_or_overridden_is_refused(tmp_path, name, text, message):
    from workloads.traces import load_trace
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_trace(tmp_path / name)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_duration_too_short_for_one_request_at_the_rate_is_refused():
    """1e-6 requests/s over 10 s: the one request a duration draws at least landed at ~3.3M s, far past
    the duration, silently. Refused now; a duration that holds a request keeps its first within it."""
    with pytest.raises(ConfigError, match=r"spreads 1 request\(s\) over about 1e\+06 s, beyond the duration_s of 10 s"):
        workload_from_flags(rate=1e-6, duration_s=10)
