"""Re-pricing a recorded Offline run: the steps do not depend on their durations, so the recorded steps
priced under new efficiencies must equal a fresh simulation under those efficiencies."""
from dataclasses import replace

import pytest

from simulator.api import run_config, serving_config
from simulator.replay import busy_time_s
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
