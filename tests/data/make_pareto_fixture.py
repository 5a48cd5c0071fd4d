"""Writes tests/data/pareto_llama31_70b.json: a file of the `infersim pareto` schema (until that command
lands), its points priced by closed-loop simulate runs of Llama 3.1 70B, 1024 in / 1024 out, on 8 B200 and
8 MI355X over tp and concurrency; the front marked per GPU. The node's power beside the GPUs is an
assumption of this fixture (60% of GPU TDP), said in power_counted.

    python tests/data/make_pareto_fixture.py > tests/data/pareto_llama31_70b.json
"""
import json, sys
from simulator.api import simulate
from simulator.hardware import get_gpu
from simulator.plot import pareto_front

NODE_OTHER_W = 0.6   # assumed: node's CPUs, NICs, fans, PSU losses as a fraction of GPU TDP (fixture only)
points = []
for gpu_name in ("b200", "mi355x"):
    gpu = get_gpu(gpu_name)
    for tp in (1, 2, 4, 8):
        for users_per_replica in (1, 4, 16, 64):
            replicas = 8 // tp
            users = users_per_replica * replicas
            r = simulate(model="llama3.1-70b", gpu=gpu_name, gpus=8, tp=tp, precision="fp8", users=users,
                         requests=max(3 * users, 16), input_tokens="1024", output_tokens="1024", max_batch_size=256)
            s, c = r.summary, r.cost
            per_user = 1.0 / s["tpot_mean_s"]
            provisioned_mw = 8 * gpu.power_w * (1 + NODE_OTHER_W) / 1e6
            points.append({"gpu": gpu_name, "gpus": 8, "plan": {k: r.plan[k] for k in ("tp", "pp", "ep", "max_batch_size", "batching")} | {"precision": "fp8"},
                           "plan_label": f"tp{tp}", "concurrency": users,
                           "output_tokens_per_s": s["output_tokens_per_s"],
                           "output_tokens_per_s_per_gpu": s["output_tokens_per_s"] / 8,
                           "total_tokens_per_s_per_gpu": s["total_tokens_per_s"] / 8,
                           "output_tokens_per_s_per_user": per_user,
                           "ttft_p99_s": s["ttft_p99_s"], "tpot_p99_s": s["tpot_p99_s"],
                           "usd_per_million_tokens": c["usd_per_million_tokens"],
                           "usd_per_million_tokens_low": c["usd_per_million_tokens_low"],
                           "usd_per_million_tokens_high": c["usd_per_million_tokens_high"],
                           "output_tokens_per_s_per_provisioned_mw": s["output_tokens_per_s"] / provisioned_mw,
                           "on_front": False})
            print(gpu_name, tp, users, round(per_user, 1), round(s["output_tokens_per_s"] / 8), file=sys.stderr)
for gpu_name in ("b200", "mi355x"):
    mine = [p for p in points if p["gpu"] == gpu_name]
    front = set(pareto_front([(p["output_tokens_per_s_per_user"], p["output_tokens_per_s_per_gpu"]) for p in mine]))
    for p in mine:
        p["on_front"] = (p["output_tokens_per_s_per_user"], p["output_tokens_per_s_per_gpu"]) in front
doc = {"kind": "pareto", "model": "llama3.1-70b", "input_tokens": 1024, "output_tokens": 1024, "gpus": 8,
       "points": points,
       "power_counted": "GPU TDP plus 60% of it for the rest of the node (CPUs, NICs, fans, power supply losses)"}
print(json.dumps(doc, indent=2))
