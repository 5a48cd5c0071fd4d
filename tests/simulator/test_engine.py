import numpy as np
import pytest

from simulator.api import simulate as api_simulate
from simulator.plan import Plan
from simulator.router import ROUTERS, Router
from simulator.run import simulate
from workloads import ClosedLoop, ClosedLoopRequests
from tests.simulator.conftest import FixedStepCost, Stream


def run(config, stream, **cost):
    return simulate(config, stream, step_cost=FixedStepCost(config.plan, **cost))


def test_continuous_two_requests_together(small_config):
    """Both arrive at 0 and share one 1 s prefill: first tokens at 1.0; two 0.1 s decode steps give
    tokens 2 and 3 at 1.1 and 1.2, so both finish at 1.2 with TPOT 0.1 s."""
    result = run(small_config(), Stream([0, 0], [10, 10], [3, 3]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 1.0])
    np.testing.assert_allclose(result.arrays["finish_s"], [1.2, 1.2])
    assert result.summary["tpot_p50_s"] == pytest.approx(0.1)


def test_continuous_prefill_first_stalls_decodes(small_config):
    """A (out 3) at 0 prefills 0-1. B (out 2) arrives at 0.5 and prefills 1-2 while A waits (prefill
    first). Step 2.0-2.1 gives A its 2nd and B its 2nd (B done); step 2.1-2.2 gives A its 3rd.
    Inter-token gaps: A 1.1 s (it sat through B's prefill) and 0.1 s, B 0.1 s."""
    result = run(small_config(), Stream([0, 0.5], [10, 10], [3, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.0])
    np.testing.assert_allclose(result.arrays["finish_s"], [2.2, 2.1])
    assert result.summary["itl_p50_s"] == pytest.approx(0.1, rel=0.01)
    assert result.summary["itl_p99_s"] == pytest.approx(1.1, rel=0.01)


def test_a_sequence_joining_during_prompt_only_steps_waits_through_the_rest_of_them(small_config):
    """A (out 3) prefills 0-1. B (at 0.5) prefills 1-2 while A waits; C (at 1.5) prefills 2-3 while A and
    B wait. Step 3.0-3.1 decodes all three: gaps A 2.1 s, B 1.1 s (from its first token at 2.0), C 0.1 s;
    then A and B 0.1 s more. Every second a sequence spends between two of its tokens is a gap: the
    gaps sum to the requests' decode time, (3.2 - 1) + (3.2 - 2) + (3.1 - 3) = 3.5 s. Before, B was
    recorded as not waiting (0.1 s), as every sequence joining after a stall's first step was."""
    from simulator.engine import InterTokenGaps

    class Recorder:
        def __init__(self):
            self.gaps = []

        def add(self, duration_s, weight):
            self.gaps += [round(duration_s, 9)] * int(weight)

        def add_linear(self, first_s, last_s, steps, weight):
            for j in range(steps):
                self.add(first_s + (last_s - first_s) * j / max(steps - 1, 1), weight)

    recorder = Recorder()
    gaps = InterTokenGaps(recorder)
    gaps.stall(1.0, 1)      # B's prompt: A waits
    gaps.stall(1.0, 2)      # C's prompt: A and B wait
    gaps.record(3.0, 0.1, 0.1, 1, 3)
    gaps.record(3.1, 0.1, 0.1, 1, 2)
    assert sorted(recorder.gaps) == [0.1, 0.1, 0.1, 1.1, 2.1]
    result = run(small_config(), Stream([0, 0.5, 1.5], [10, 10, 10], [3, 3, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(result.arrays["finish_s"], [3.2, 3.2, 3.1])
    assert sum(recorder.gaps) == pytest.approx(sum(result.arrays["finish_s"] - result.arrays["first_token_s"]))


def test_a_handed_off_sequence_s_first_gap_runs_from_its_first_token(monkeypatch):
    """Disaggregated, one prefill and one decode H100, 300 requests in 10 s: every second between two
    tokens of a request is in the ITL histogram (the gaps sum to the requests' decode time). A hand-off
    waiting for a decode step, or for KV space, waits in its first gap; before, that gap was one step, and
    the histogram held 1,710 of 6,856 s of a run that preempted."""
    from simulator import metrics
    total = [0.0]
    add = metrics.LatencyHistogram.add

    def counting_add(self, duration_s, weight):
        total[0] += duration_s * weight
        add(self, duration_s, weight)

    def exact_linear(self, first_s, last_s, steps, weight):
        for j in range(steps):
            counting_add(self, first_s + (last_s - first_s) * j / max(steps - 1, 1), weight)

    monkeypatch.setattr(metrics.LatencyHistogram, "add", counting_add)
    monkeypatch.setattr(metrics.LatencyHistogram, "add_linear", exact_linear)
    rng = np.random.default_rng(0)
    from workloads.requests import Requests
    work = Requests(np.sort(rng.uniform(0, 10, 300)), rng.integers(500, 1500, 300), rng.integers(200, 1500, 300))
    result = api_simulate(work, model="llama3.1-8b", gpu="h100", gpus=2, batching="disaggregated", prefill_gpus=1,
                          max_batch_size=256)
    arrays = result.engine_result.arrays
    assert result.summary["preemptions"] == 0 and result.summary["requests_completed"] == 300
    assert total[0] == pytest.approx(float(np.sum(arrays["finish_s"] - arrays["first_token_s"])), rel=1e-9)


def test_arrival_cuts_a_decode_stretch_at_the_next_step_boundary(small_config):
    """A (out 10) decodes from 1.0 in one folded stretch. B arrives at 1.25: the step in flight ends at
    1.3 (A has 4 tokens), B prefills 1.3-2.3; A's last 6 tokens end at 2.9, B's second at 2.4."""
    result = run(small_config(), Stream([0, 1.25], [10, 10], [10, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.3])
    np.testing.assert_allclose(result.arrays["finish_s"], [2.9, 2.4])


def test_chunked_prefill_mixes_decode_and_prompt(small_config):
    """A prefills 0-1. B arrives at 0.5; step 1.0-2.1 decodes A (token 2) and prefills B (1 + 0.1 s):
    B's first token at 2.1. Step 2.1-2.2 finishes both."""
    result = run(small_config("chunked"), Stream([0, 0.5], [10, 10], [3, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.1])
    np.testing.assert_allclose(result.arrays["finish_s"], [2.2, 2.2])


def test_chunked_prefill_splits_long_prompts(small_config):
    """Budget 16 tokens: a 40-token prompt takes chunks 16 + 16 + 8, three 1 s steps."""
    config = small_config("chunked", plan=Plan(max_tokens_per_step=16))
    result = run(config, Stream([0], [40], [2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [3.0])
    np.testing.assert_allclose(result.arrays["finish_s"], [3.1])


def test_static_batch_runs_to_completion_before_the_next(small_config):
    """A alone forms a batch: prefill 0-1, tokens at 1.1, 1.2 (done). B (at 0.5) waits for the batch to end:
    prefill 1.2-2.2, its 2nd token at 2.3."""
    result = run(small_config("static"), Stream([0, 0.5], [10, 10], [3, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.2])
    np.testing.assert_allclose(result.arrays["finish_s"], [1.2, 2.3])


def test_static_batch_prefills_within_the_token_budget(small_config):
    """Budget 16 tokens, three 10-token prompts in one static batch: steps of A + 6 of B (0-1: A's first
    token) and B's last 4 + C (1-2), then one decode step for all (2.0-2.1). Before, the whole batch's
    30 tokens went in one step, past the activations the memory plan holds (256 prompts of 1,024 tokens
    in one step against 8,192)."""
    result = run(small_config("static", plan=Plan(max_tokens_per_step=16)), Stream([0, 0, 0], [10, 10, 10], [2, 2, 2]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.0, 2.0, 2.0])
    np.testing.assert_allclose(result.arrays["finish_s"], [2.1, 2.1, 2.1])


def test_a_disaggregated_decode_engine_recomputes_what_it_preempts():
    """One prefill and one decode H100 at 20% of HBM: 64 users of 1,024 + 1,024 tokens overflow the decode
    engine's KV, which preempts its newest sequences. Each is prefilled again there (prompt and streamed
    tokens) before new hand-offs join; before, it waited for a prefill the decode policy never ran, and 39
    of 256 requests stayed unfinished when nothing else could happen."""
    result = api_simulate(model="llama3.1-8b", gpu="h100", gpus=2, batching="disaggregated", prefill_gpus=1,
                          users=64, requests=256, input_tokens="1024", output_tokens="1024", memory_utilization=0.2,
                          max_batch_size=256)
    assert result.summary["preemptions"] > 0
    assert result.summary["requests_completed"] == 256 and result.summary["requests_dropped"] == 0


def test_static_padding_holds_slots(small_config):
    """A (out 2) and B (out 4) share a batch: A finishes at 1.1 but its slot stays taken, so C (arrived at
    0.2) starts only after B's last token at 1.3: prefill 1.3-2.3."""
    result = run(small_config("static"), Stream([0, 0, 0.2], [10, 10, 10], [2, 4, 2]))
    np.testing.assert_allclose(result.arrays["finish_s"], [1.1, 1.3, 2.4])


def test_disaggregated_hands_kv_to_the_decode_pool(small_config):
    """Prefill engine 0-1; the KV transfer takes 0.05 s latency + bytes / 1e6 GB/s (~0); the first token
    reaches the user with it at ~1.05, then two decode steps on the decode engine end at ~1.25."""
    config = small_config("disaggregated", gpus=2, prefill_gpus=1, kv_transfer_gb_per_s=1e6,
                          kv_transfer_latency_s=0.05)
    result = run(config, Stream([0], [10], [3]))
    np.testing.assert_allclose(result.arrays["first_token_s"], [1.05], atol=1e-6)
    np.testing.assert_allclose(result.arrays["finish_s"], [1.25], atol=1e-6)
    assert result.arrays["engine"][0] == 1


def test_hand_offs_sent_at_once_share_the_fixed_bandwidth(small_config):
    """A 1000-token prompt's KV after its prefill (1001 tokens x 80 layers x 8 KV heads x 2 x 128 x 1 byte =
    164,003,840 bytes) takes 1 s at 0.16400384 GB/s. Alone it reaches the user at 1 s prefill + 1 s; two
    prefilled together share the link and both land at 1 + 2 s. Before, each took the whole bandwidth
    (both at 2 s), so a slow hand-off link served any number of them at once."""
    config = small_config("disaggregated", gpus=2, prefill_gpus=1, kv_transfer_gb_per_s=0.16400384,
                          kv_transfer_latency_s=0.0)
    alone = run(config, Stream([0], [1000], [2]))
    np.testing.assert_allclose(alone.arrays["first_token_s"], [2.0], rtol=1e-6)
    shared = run(config, Stream([0, 0], [1000, 1000], [2, 2]))
    np.testing.assert_allclose(shared.arrays["first_token_s"], [3.0, 3.0], rtol=1e-6)


def test_a_replicas_pipeline_stages_share_its_hand_off_link(small_config):
    """pp 2: a prefill replica is two engines on one pair of GPUs. Two prompts, one per engine, prefilled
    together, send their KV over the replica's one link: both land at 1 + 2 s, as on one engine. Keyed per
    engine, each stage had a link of its own, and deeper pipelines looked up to 4x better at hand-offs."""
    config = small_config("disaggregated", gpus=4, prefill_gpus=2, plan=Plan(pp=2), kv_transfer_gb_per_s=0.16400384,
                          kv_transfer_latency_s=0.0)
    shared = run(config, Stream([0, 0], [1000, 1000], [2, 2]))
    np.testing.assert_allclose(shared.arrays["first_token_s"], [3.0, 3.0], rtol=1e-6)


def test_a_failed_prefill_engines_hand_off_stops_sharing_the_link(small_config):
    """Two prefill GPUs and one decode GPU, hand-offs of 1 s alone on the decode replica's link. Both
    prompts prefill 0-1 s and hand off together at half rate each; GPU 0 fails at 1.5 s (a quarter sent).
    Its KV is lost and its prompt (with the token it made) prefills again on GPU 1 (1.5-2.5 s), then hands
    off alone the KV of 1002 tokens (1002 / 1001 s); GPU 1's hand-off has the link to itself from 1.5 s
    and lands at 2.25 s. Before, the dead engine's transfer kept sharing the link until 3 s, and its
    prompt restarted only then (5 s)."""
    config = small_config("disaggregated", gpus=3, prefill_gpus=2, kv_transfer_gb_per_s=0.16400384,
                          kv_transfer_latency_s=0.0, failures=(("gpu", 0, 1.5),))
    result = run(config, Stream([0, 0], [1000, 1000], [2, 2]))
    np.testing.assert_allclose(sorted(result.arrays["first_token_s"]), [2.25, 2.5 + 1002 / 1001], rtol=1e-9)


def test_m_d_1_mean_wait_matches_closed_form(small_config):
    """Batch size 1 and fixed lengths make one engine an M/D/1 queue: service D = prefill 0.05 s +
    5 decode steps x 0.01 s = 0.1 s; at lambda = 6/s, rho = 0.6 and the mean wait in queue is
    rho D / (2 (1 - rho)) = 0.075 s. TTFT = wait + 0.05 s prefill."""
    rng = np.random.default_rng(1)
    count = 30_000
    arrival = np.cumsum(rng.exponential(1 / 6, count))
    config = small_config(plan=Plan(max_batch_size=1))
    result = run(config, Stream(arrival, np.full(count, 10), np.full(count, 6)), prefill_s=0.05, decode_s=0.01)
    wait = result.arrays["first_token_s"] - arrival - 0.05
    assert wait.mean() == pytest.approx(0.075, rel=0.05)


def test_conservation_and_routers(small_config):
    """Every request finishes or is dropped, and output tokens equal the sum of output lengths."""
    rng = np.random.default_rng(7)
    count = 2000
    arrival = np.sort(rng.uniform(0, 20, count))
    inputs, outputs = rng.integers(1, 500, count), rng.integers(1, 300, count)
    for router in ("round-robin", "least-outstanding", "least-kv", "power-of-two"):
        for batching in ("continuous", "chunked", "static"):
            config = small_config(batching, gpus=4, router=router)
            result = simulate(config, Stream(arrival, inputs, outputs))
            summary = result.summary
            assert summary["requests_completed"] + len(result.dropped) == count
            assert summary["requests_completed"] == count
            assert summary["output_tokens_completed"] == outputs.sum()
            assert np.all(result.arrays["first_token_s"] <= result.arrays["finish_s"])
            assert np.all(result.arrays["first_token_s"] >= arrival)


def test_preemption_when_kv_is_tiny_and_everyone_still_finishes(small_config):
    """Memory utilisation set so ~0.3 GB (about 1,800 tokens) is left for KV: eight 100 + 200-token
    requests (2,400 tokens at full length) cannot all stay resident; the newest are preempted and recomputed."""
    needed_gb = 69.499 + 8192 * 8192 * 16 * 2 / 1e9 + 8192 * 28672 * 4 / 1e9 + 2
    plan = Plan(memory_utilization=(needed_gb + 0.3) / 288)
    result = simulate(small_config(plan=plan), Stream(np.zeros(8), np.full(8, 100), np.full(8, 200)))
    assert result.summary["preemptions"] > 0
    assert result.summary["requests_completed"] == 8
    assert result.summary["output_tokens_completed"] == 8 * 200


def test_request_larger_than_kv_is_dropped_with_a_reason(small_config):
    needed_gb = 69.499 + 8192 * 8192 * 16 * 2 / 1e9 + 8192 * 28672 * 4 / 1e9 + 2
    plan = Plan(memory_utilization=(needed_gb + 0.3) / 288)
    result = simulate(small_config(plan=plan), Stream([0, 0], [100, 1500], [100, 1000]))
    assert result.summary["requests_completed"] == 1
    assert "KV blocks" in result.dropped[1]


def test_closed_loop_users(small_config):
    """Two users, think time 0, four requests of out 2: each user's request takes 1 s prefill + 0.1 s;
    the second pair starts at 1.1 and ends at 2.2."""
    workload = ClosedLoopRequests(ClosedLoop(users=2), input_tokens=np.full(4, 10), output_tokens=np.full(4, 2))
    result = run(small_config(), workload)
    np.testing.assert_allclose(np.sort(result.arrays["arrival_s"]), [0, 0, 1.1, 1.1])
    np.testing.assert_allclose(np.sort(result.arrays["finish_s"]), [1.1, 1.1, 2.2, 2.2])


def test_same_seed_same_result(small_config):
    rng = np.random.default_rng(3)
    arrival = np.sort(rng.uniform(0, 10, 500))
    stream = Stream(arrival, rng.integers(1, 400, 500), rng.integers(1, 400, 500))
    first = simulate(small_config(gpus=3, router="power-of-two", seed=5), stream)
    second = simulate(small_config(gpus=3, router="power-of-two", seed=5), stream)
    assert first.summary == second.summary


def test_static_padding_counts_a_finished_sequence_once(small_config):
    """A static batch of A (out 2) and B (out 300): after A finishes its slot decodes padding, and its
    context must move from the running sum to the padding sum, not sit in both. A padding slot holds
    no more context than a live one, so this batch never holds more KV than one where A also runs to
    300 tokens (its prompt reserves less). Counted twice, it held more, and the occupancy went negative
    once the batch emptied."""
    once = run(small_config("static"), Stream([0, 0], [10, 10], [2, 300]))
    alone = run(small_config("static"), Stream([0, 0], [10, 10], [300, 300]))
    occupancy = once.summary["kv_occupied_fraction_mean"]
    assert 0 <= occupancy <= alone.summary["kv_occupied_fraction_mean"]


def test_shortest_prompt_first_chooses_the_admission_order(small_config):
    """One slot; A (prompt 30) and B (prompt 10) both wait at t = 0; each prefill takes 1 s, each decode
    step 0.1 s, two output tokens each. First come first served runs A then B: A's tokens at 1.0 and
    1.1, B's at 2.1 and 2.2. Shortest prompt first runs B first: B at 1.0/1.1, A at 2.1/2.2."""
    stream = Stream([0, 0], [30, 10], [2, 2])
    fcfs = run(small_config("continuous", plan=Plan(max_batch_size=1)), stream)
    spf = run(small_config("shortest-prompt-first", plan=Plan(max_batch_size=1)), stream)
    np.testing.assert_allclose(fcfs.arrays["finish_s"], [1.1, 2.2])
    np.testing.assert_allclose(spf.arrays["finish_s"], [2.2, 1.1])


@ROUTERS.register
class LongPromptsToTheLastEngine(Router):
    """Test router: prompts over 20 tokens go to the last engine, the rest to the first."""

    name = "test-long-prompts-last"

    def choose(self, engines, rid):
        return len(engines) - 1 if self.table.input_tokens[rid] > 20 else 0


def test_a_router_receives_the_request_it_routes(small_config):
    """Registered from this module, the router is a valid choice and sees each request's prompt."""
    config = small_config("continuous", gpus=3, router="test-long-prompts-last")
    result = run(config, Stream([0, 0.1, 0.2, 0.3], [30, 10, 25, 5], [2, 2, 2, 2]))
    assert result.arrays["engine"].tolist() == [2, 0, 2, 0]


@pytest.mark.parametrize("fast", [True, False])
def test_requests_that_cannot_fit_are_dropped_with_their_reason_on_either_path(small_config, fast):
    """Llama 2 70B fp8 on one MI355X at memory utilisation 0.26 keeps 1,790 tokens of KV (72.0 GB usable
    of 288 less 69.5 GB of weights): a 3,000 + 10 token request fits the context but not the cache; a
    5,000-token prompt exceeds Llama 2's 4,096-token context. Both are dropped, each with its own
    reason, whether the engine runs its own loop (`fast`, admissibility checked for all requests at once)
    or under SimPy (one request at a time); the others are served."""
    config = small_config(plan=Plan(memory_utilization=0.26))
    result = simulate(config, Stream([0, 0, 1, 2], [100, 3000, 5000, 100], [5, 10, 5, 5]),
                      step_cost=FixedStepCost(config.plan), fast=fast)
    reasons = result.summary["requests_dropped_by_reason"]
    assert result.summary["requests_dropped"] == 2 and len(reasons) == 2
    assert any("longer than llama2-70b's 4096-token context" in r for r in reasons)
    assert any("needs more KV blocks than an engine holds" in r for r in reasons)
    finished = result.arrays["finish_s"]
    assert np.isfinite(finished[[0, 3]]).all() and np.isnan(finished[[1, 2]]).all()


def test_a_run_stopped_mid_step_is_not_more_than_fully_busy():
    """--max-time 1 ms stops the run inside its first prompt step (20 prompts of 8,000 tokens on tp 8 take
    far longer): that step counts to the stop. Before, its whole length did: utilization 228."""
    result = api_simulate(model="llama3.1-70b", gpu="h200", gpus=8, tp=8, offline=True, requests=20, input_tokens=8000,
                      output_tokens=64, max_time_s=0.001)
    assert result.summary["engine_busy_fraction_mean"] == pytest.approx(1.0)
    assert 0 < result.summary["kv_occupied_fraction_mean"] <= 1.0
