"""Study: single-node MLPerf scores of MI355X, B200 and B300 on Llama 2 70B (Offline, Server,
Interactive) with their ratios, and whether 94 MI355X reach 1M output tokens/s on Llama 2 70B and on
gpt-oss-120b.

    python scripts/mlperf_study.py                 # ~4 minutes on 2 cores
    python scripts/mlperf_study.py --profile my.toml --duration 60

Everything comes from the model: datasheet figures, the efficiency profile, and simulation. The
94-GPU answer scores the whole cluster (one replica simulated where replicas are interchangeable):
Offline throughput, and one Server run at exactly 1M tokens/s offered (does it meet the scenario's p99
limits?), with the node's best plan.
"""
from __future__ import annotations

import argparse
import sys
import time

from simulator.mlperf import mlperf
from simulator.scenario_runs import ScenarioRunner, offline_score, resolve_config
from simulator.output import format_table
from simulator.search import meets_sla
from workloads.scenarios import get_scenario

GPUS = ("mi355x", "b200", "b300")
SCENARIOS = ("offline", "server", "interactive")


def node_scores(profile, duration_s):
    rows = []
    for gpu in GPUS:
        for scenario in SCENARIOS:
            start = time.perf_counter()
            result = mlperf(model="llama2-70b", gpu=gpu, gpus=8, scenario=scenario, profile=profile,
                            duration_s=None if scenario == "offline" else duration_s)
            d = result.to_dict()
            rows.append({"gpu": gpu, "scenario": scenario, "output_tokens_per_s": d["output_tokens_per_s"],
                         "tp": d["plan"]["tp"], "max_batch_size": d["plan"]["max_batch_size"],
                         "precision": d["plan"]["precision"]["weights"], "ttft_p99_s": d["ttft_p99_s"],
                         "tpot_p99_s": d["tpot_p99_s"], "usd_per_million_tokens": d["usd_per_million_tokens"],
                         "wall_s": time.perf_counter() - start})
    by = {(r["gpu"], r["scenario"]): r["output_tokens_per_s"] for r in rows}
    for row in rows:
        row["vs_b200"] = row["output_tokens_per_s"] / by[("b200", row["scenario"])]
    return rows


def cluster_answer(model, gpus, target, profile, duration_s):
    """Offline tokens/s of `gpus` MI355X, and whether a Server run at `target` tokens/s meets the limits."""
    start = time.perf_counter()
    node = mlperf(model=model, gpu="mi355x", gpus=8, scenario="server", profile=profile, duration_s=duration_s)
    plan = node.run.plan
    pins = {k: plan[k] for k in ("tp", "pp", "ep", "max_batch_size", "max_tokens_per_step")}
    config = resolve_config({"model": model, "gpu": "mi355x", "gpus": gpus, "profile": profile}, pins)
    offline_runner = ScenarioRunner(config, get_scenario(model, "offline"))
    offline_run, _ = offline_runner.offline(config.plan)
    offline_tokens, _ = offline_score(offline_run)
    server = get_scenario(model, "server")
    runner = ScenarioRunner(config, server, duration_s=duration_s)
    run, _ = runner.server_run(config.plan, target / server.output_lengths.mean, tokens_per_s=target)
    return {"model": model, "gpus": gpus, "tp": plan["tp"], "ep": plan["ep"], "max_batch_size": plan["max_batch_size"],
            "node_server_output_tokens_per_s": node.tokens_per_s, "offline_output_tokens_per_s": offline_tokens,
            "server_target_output_tokens_per_s": target, "server_ttft_p99_s": run.summary["ttft_p99_s"],
            "server_tpot_p99_s": run.summary["tpot_p99_s"],
            "server_meets_sla": meets_sla(run.summary, runner.sla),
            "wall_s": time.perf_counter() - start}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="efficiency profile TOML (default: the shipped fit)")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds per Server run")
    parser.add_argument("--gpus", type=int, default=94, help="cluster size for the 1M tok/s question")
    parser.add_argument("--target", type=float, default=1e6, help="output tokens/s for the cluster question")
    args = parser.parse_args(argv)
    rows = node_scores(args.profile, args.duration)
    print("Single 8-GPU node, Llama 2 70B (MLPerf tokens/s; vs_b200 = ratio to B200 in the same scenario)")
    print(format_table(rows, list(rows[0])))
    answers = [cluster_answer(model, args.gpus, args.target, args.profile, args.duration)
               for model in ("llama2-70b", "gpt-oss-120b")]
    print(f"\n{args.gpus} MI355X: Offline throughput, and a Server run offered {args.target:,.0f} output tokens/s")
    print(format_table(answers, list(answers[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
