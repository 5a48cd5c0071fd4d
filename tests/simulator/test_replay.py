"""Re-pricing a recorded Offline run: the steps do not depend on their durations, so the recorded steps
priced under new efficiencies must equal a fresh simulation under those efficiencies; and a trace counts
every output token its steps generate."""
from dataclasses import replace

import pytest

from simulator.api import run_config, serving_config
from simulator.engine import StepTrace
from simulator.replay import busy_time_s, busy_times_s, trace_window
from workloads.scenarios import get_scenario


@pytest.mark.parametrize("gpu,tp,ep,precision,model", [("b200", 1, 1, "fp4", "llama2-70b"),
                                                        ("h100", 2, 1, "fp8", "llama2-70b"),
                                                        ("mi355x", 2, 1, "fp4", "mixtral-8x7b"),
                                                        ("h200", 1, 2, "fp8", "mixtral-8x7b")])
def test_repriced_trace_equals_a_new_simulation(gpu, tp, ep, precision, model):
    config = serving_config(model=model, gpu=gpu, gpus=max(tp, ep), precision=precision, tp=tp, ep=ep,
                            max_batch_size=256, max_tokens_per_step=2048)
    requests = get_scenario(model, "offline").requests(600, None, 3)
    run = run_config(config, requests, record_steps=True)
    trace, cost = run.engine_result.traces[0], run.engine_result.step_costs[0]
    assert busy_time_s(trace, cost) == pytest.approx(run.summary["makespan_s"], rel=1e-9)
    changed = replace(cost.efficiency, compute_efficiency=0.41, narrow_compute_efficiency=0.33, memory_efficiency=0.6,
                      step_overhead_s=0.007, collective_efficiency=0.5, moe_efficiency=0.45,
                      collective_latency_s=2.5e-5, all_to_all_latency_s=1.1e-4)
    again = run_config(replace(config, efficiency=changed), requests)
    assert busy_time_s(trace, cost.with_efficiency(changed)) == pytest.approx(again.summary["makespan_s"], rel=1e-9)


def test_a_trace_counts_every_output_token_and_marks_completions():
    """Tokens in = tokens out for a trace: every prompt that completes emits one token and every decoding
    sequence one per step, so the steps of a whole Offline run generate exactly the output tokens of its
    requests (preempted ones included: a re-prefill emits the token after those already streamed). The
    trace marks every 64th completion: 600 requests leave marks at 64, 128, ..., 576 (9 marks), each
    holding the output tokens finished by then; the steps between the first and last mark generate
    about the tokens that finished in between (the batch in flight differs at the two ends)."""
    # KV for fewer sequences than the batch limit: the run preempts
    config = serving_config(model="llama2-70b", gpu="h100", gpus=2, precision="fp8", tp=2, max_batch_size=1024,
                            memory_utilization=0.6)
    requests = get_scenario("llama2-70b", "offline").requests(600, None, 3)
    run = run_config(config, requests, record_steps=True)
    trace = run.engine_result.traces[0]
    assert run.summary["preemptions"] > 0
    total = int(run.engine_result.arrays["output_tokens"].sum())
    assert run.summary["requests_completed"] == 600 and trace.finished_requests == 600
    assert trace.finished_tokens == total and trace_window(trace).tokens == total
    assert [m[0] for m in trace.marks] == list(range(64, 577, 64))
    first, last = trace.marks[0], trace.marks[-1]
    assert trace_window(trace, first, last).tokens == pytest.approx(last[1] - first[1], rel=0.2)


def test_a_window_is_priced_as_its_own_steps():
    """A window's busy time, read off the whole trace's step times, is the busy time of a trace holding
    only the window's steps (same prompt steps, same decode stretches), under any efficiency; and the
    whole trace as its own window prices as the whole."""
    config = serving_config(model="mixtral-8x7b", gpu="h100", gpus=2, precision="fp8", tp=2, max_batch_size=128)
    requests = get_scenario("mixtral-8x7b", "offline").requests(500, None, 5)
    run = run_config(config, requests, record_steps=True)
    trace, cost = run.engine_result.traces[0], run.engine_result.step_costs[0]
    first, last = trace.marks[1], trace.marks[-2]
    alone = StepTrace(trace.prompt_steps[first[2]:last[2]], trace.decode_stretches[first[3]:last[3]])
    changed = cost.with_efficiency(replace(cost.efficiency, compute_efficiency=0.37, memory_efficiency=0.55))
    for priced in (cost, changed):
        total, (window, whole) = busy_times_s(trace, priced, (trace_window(trace, first, last), trace_window(trace)))
        assert total == pytest.approx(busy_time_s(trace, priced), rel=1e-12)
        assert window == pytest.approx(busy_time_s(alone, priced), rel=1e-9)
        assert whole == pytest.approx(total, rel=1e-12)
        assert 0 < window < total
