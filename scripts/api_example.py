"""The Python API in a few lines: simulate, an MLPerf score, sizing, and a small sweep.

    python scripts/api_example.py
"""
from simulator import mlperf, simulate, size, sweep

result = simulate(model="llama3.1-8b", gpu="b200", gpus=2, rate=20, requests=2000)
print("simulate:", round(result.summary["output_tokens_per_s"]), "tok/s,",
      f"p99 TTFT {result.summary['ttft_p99_s']:.3f} s,", f"${result.cost['usd_per_million_tokens']:.3f}/Mtok")

score = mlperf(model="llama3.1-8b", gpu="b200", gpus=1, scenario="server", max_batch_size=128, duration_s=30)
print("mlperf server:", round(score.tokens_per_s), "tok/s, valid:", score.valid, *score.notes, "plan tp", score.run.plan["tp"])

sized = size(model="llama3.1-8b", gpu="mi355x", scenario="offline", target_tokens_per_s=100_000, tp=1,
             max_batch_size=256)
print("size:", sized.gpus, "GPUs on", sized.nodes, "nodes,", round(sized.tokens_per_s), "tok/s")

rows = sweep({"command": "simulate", "base": {"model": "llama3.1-8b", "requests": 500, "rate": 10.0},
              "grid": {"gpu": ["b200", "mi355x"], "gpus": [1, 2]}})
for row in sorted(rows, key=lambda r: (r["gpu"], r["gpus"])):
    print("sweep:", row["gpu"], row["gpus"], round(row["output_tokens_per_s"]), "tok/s", row["status"])
