"""Hostile input at every CLI boundary: each case exits 2 with one line naming the field (or file) and,
where there is one, the allowed range; never a traceback."""
import re

import pytest

from simulator.cli import main

FILES = {
    "typo_workload.toml": 'requests = 10\n[arival]\nkind = "poisson"\n',
    "nan_workload.toml": 'requests = 10\n[arrival]\nkind = "poisson"\nrate_per_s = nan\n[input]\nkind = "fixed"\n'
                         'tokens = 10\n[output]\nkind = "fixed"\ntokens = 10\n',
    "negative_trace.csv": "arrival_s,input_tokens,output_tokens\n0.0,10,10\n-1.0,10,10\n",
    "empty.csv": "",
    "zero_hbm.toml": '[h100]\nhbm_gb = 0\n',
    "word_hbm.toml": '[h100]\nhbm_gb = "lots"\n',
    "bad_profile.toml": '[default]\ncompute_eficiency = 0.5\n',
    "huge_profile.toml": '[default]\ncompute_efficiency = 1e300\n',
    "rows_unknown.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,speed\nllama2-70b,b200,1,offline,1,s,9\n",
    "sweep_typo.toml": 'command = "simulate"\n[grid]\ngpus = [1]\n[bsae]\nmodel = "x"\n',
    "sweep_ok.toml": 'command = "simulate"\n[base]\nmodel = "llama3.1-8b"\nrequests = 5\n[grid]\ngpus = [1]\n',
    "sweep_grid_twice.toml": 'command = "simulate"\n[base]\nmodel = "llama3.1-8b"\n[grid]\ngpus = [1, 1]\n',
    "sweep_twice.toml": 'command = "simulate"\n[base]\nmodel = "llama3.1-8b"\n[[points]]\ngpus = 1\n[[points]]\ngpus = 1\n',
    "results.csv": "point_id,status,gpus,output_tokens_per_s\nabc,ok,1,10.0\n",
    "lengths.csv": "tokens,count\n100,3\n200,1\n",
    "rows_underscore.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source\nllama2-70b,b200,1_0,offline,30000,s\n",
    "rows_tiny.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source\nllama3.1-8b,b200,1,offline,1e-300,s\n",
    "rows_slow.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source\nllama3.1-8b,b200,1,offline,0.001,s\n",
    "rows_open_fast.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,rate_per_s,input_tokens,output_tokens,"
                          "tpot_p50_s\nllama3.1-70b,b200,1,open,200,s,1,512,256,1e-6\n",
    "rows_open_slow.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,rate_per_s,input_tokens,output_tokens,"
                          "tpot_p50_s\nllama3.1-8b,b200,1,open,1000,s,4,512,256,100\n",
    "vllm_tpot_zero.json": '{"completed": 10, "output_throughput": 5.0, "total_input_tokens": 100, '
                           '"total_output_tokens": 50, "request_rate": 1.0, "median_tpot_ms": 0}',
    "vllm_one_token.json": '{"completed": 10, "output_throughput": 1.0, "total_input_tokens": 100, '
                           '"total_output_tokens": 10, "request_rate": 1.0, "median_tpot_ms": 5}',
    "vllm_no_input.json": '{"completed": 10, "output_throughput": 5.0, "total_input_tokens": 0, '
                          '"total_output_tokens": 50, "request_rate": 1.0, "median_tpot_ms": 5}',
    "vllm.json": '{"completed": 10, "output_throughput": 5.0, "total_input_tokens": 100, "total_output_tokens": 50, '
                 '"request_rate": 1.0}',
    "truncated.json": '{"hw": "mi355x", "model": ',
    "unfitted_profile.toml": '[default]\ncompute_efficiency = 0.5\n',
    "misspelt_gpu_profile.toml": '[gpu."mi355"]\ncompute_efficiency_factor = 0.5\n',
    "release_typo_profile.toml": '[default]\ncompute_efficiency = 0.5\n[fit.default_release]\n'
                                 '"nvidia/tensorrt-llm" = "99.99"\n',
    "vendor_typo_profile.toml": '[default]\ncompute_efficiency = 0.5\n[fit.reference_stack]\nnvidai = "tensorrt-llm"\n',
    "log_sigma_typo_profile.toml": '[default]\ncompute_efficiency = 0.5\n[fit.log_sigma]\nmi355 = 0.1\n',
    "rows_nodes.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,nodes\nllama2-70b,b200,1,offline,1,s,2\n",
    "deep.json": "[" * 50_000 + "]" * 50_000,
    "deep.toml": "x = " + "[" * 50_000 + "]" * 50_000 + "\n",
    "long_int.toml": "x = " + "9" * 5_000 + "\n",
    "rows_twice.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source\nllama2-70b,b200,8,offline,30000,s\n"
                      ",,,,,\nllama2-70b,b200,8,offline,30000,s\n",     # row 2 (empty cells) is skipped
    "rows_dense_ep.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,tp,ep\nllama3.1-8b,b200,4,offline,1000,x,4,4\n",
    "rows_limit.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,ttft_limit_s\nllama2-70b,b200,1,offline,1,s,2\n",
    "rows_other_limit.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,ttft_limit_s\n"
                            "llama2-70b,b200,8,server,1000,s,1e-9\n",
    "rows_no_scenario.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source\nmixtral-8x7b,b200,8,interactive,1000,s\n",
    "rows_benchmark.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,benchmark\nllama2-70b,b200,8,offline,1000,s,resnet50\n",
    "rows_long_output.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,output_tokens\n"
                            "llama2-70b,b200,8,offline,1000,s,100000\n",
    "sliding_all.json": '{"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, '
                        '"num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000, '
                        '"max_position_embeddings": 32768, "sliding_window": 4096}',     # Mistral-7B-v0.1's shape
    "twice_key.json": '{"completed": 10, "completed": 12, "output_throughput": 5.0}',
    "topology_catalog_shape.toml": '[mine]\nbuilder = "cluster"\nnic_gbps = 400\n',
    "topology_dup_index.toml": '[[node]]\nid = "gpu0"\nkind = "gpu"\nindex = 0\n[[node]]\nid = "gpu1"\nkind = "gpu"\n'
                               'index = 0\n[[edge]]\na = "gpu0"\nb = "gpu1"\nbandwidth_gb_per_s = 450\n',
    "topology_dup_id.toml": '[[node]]\nid = "gpu0"\nkind = "gpu"\nindex = 0\n[[node]]\nid = "gpu0"\nkind = "gpu"\n'
                            'index = 1\n',
    "rows_short.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,tp,pp\nllama2-70b,b200,8,offline,1000,s\n",
    "rows_tp3.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,tp\nllama2-70b,b200,8,offline,1000,s,3\n",
    "rows_pp81.csv": "model,gpu,gpus,scenario,output_tokens_per_s,source,pp\nllama2-70b,b200,128,offline,1000,s,81\n",
}

SIM = ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--requests", "5", "--offline"]
OPEN = ["simulate", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--requests", "5"]
CASES = [
    (["simulate", "--gpu", "nosuch"], "--gpu: unknown GPU 'nosuch'"),
    (OPEN + ["--rate", "-5"], "--rate"),
    (OPEN + ["--rate", "nan"], "finite"),
    (OPEN + ["--rate", "inf"], "finite"),
    (["simulate", "--gpus", "0"], "--gpus"),
    (SIM + ["--requests", "10000000000"], "requests"),
    (OPEN[:-2] + ["--duration", "1e300", "--rate", "1"], "duration"),
    (SIM + ["--seed", "-1"], "--seed"),
    (OPEN + ["--users", "0"], "users"),
    (SIM + ["--max-batch-size", "0"], "--max-batch-size"),
    (SIM + ["--memory-utilization", "1.5"], "--memory-utilization"),
    (SIM + ["--block-size", "0"], "--block-size"),
    (SIM + ["--kv-transfer-gb-per-s", "0"], "--kv-transfer-gb-per-s"),
    (SIM + ["--input-tokens", "0"], "--input-tokens"),
    (SIM + ["--input-tokens", "lognormal:abc"], "--input-tokens"),
    (SIM + ["--output-tokens", "uniform:9,3"], "--output-tokens"),
    (["simulate", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1", "--offline", "--requests", "5"], "does not fit"),
    (["simulate", "--model", "nosuch-model"], "--model"),
    (["simulate", "--model", "/nonexistent/config.json"], "config.json"),
    (SIM + ["--precision", "fp4", "--gpu", "h100"], "fp4"),
    (SIM + ["--precision", "int3"], "--precision"),
    (SIM + ["--tp", "0"], "--tp"),
    (SIM + ["--ep", "3", "--tp", "2", "--gpus", "2"], "--ep"),
    (OPEN[:-2] + ["--workload", "{typo_workload.toml}"], "unknown key 'arival'"),
    (OPEN[:-2] + ["--workload", "{nan_workload.toml}"], "nan_workload.toml: [arrival] arrival.rate_per_s: must be a finite number"),
    (OPEN[:-2] + ["--trace", "{negative_trace.csv}"], "line 3: arrival_s '-1.0'"),
    (OPEN[:-2] + ["--trace", "{empty.csv}"], "empty"),
    (OPEN[:-2] + ["--trace", "/nonexistent.csv"], "file not found"),
    (SIM + ["--catalog", "{zero_hbm.toml}"], "hbm_gb"),
    (SIM + ["--catalog", "{word_hbm.toml}"], "hbm_gb"),
    (SIM + ["--profile", "{bad_profile.toml}"], "compute_eficiency"),
    (SIM + ["--profile", "{huge_profile.toml}"], "compute_efficiency"),
    (SIM + ["--profile", "{misspelt_gpu_profile.toml}"], "[gpu.mi355] names no gpu of the GPU catalog"),
    (SIM + ["--profile", "{unfitted_profile.toml}", "--interval", "0.9"], "--interval: the profile"),
    (SIM + ["--ep", "2", "--gpus", "2"], "--ep: 2 needs a mixture-of-experts model"),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--gpu", "h100", "--scenario", "server", "--rate", "1e5"],
     "--rate: 100000 requests/s is"),
    (["mlperf", "--scenario", "offline", "--sla-ttft", "2"], "--sla-ttft: Offline has no latency limits"),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--scenario", "server", "--duration", "60", "--rate", "1e-300"],
     "--rate: 1e-300 requests/s brings no query in the run's"),
    (["calibrate", "{rows_nodes.csv}"], "nodes 2 is more than gpus 1"),
    (["calibrate", "{rows_twice.csv}"], "rows_twice.csv: row 3 repeats"),
    (["calibrate", "{rows_dense_ep.csv}"], "row 1: ep: 4 needs a mixture-of-experts model"),
    (["calibrate", "{rows_limit.csv}"], "ttft_limit_s applies to scenarios server and interactive only"),
    (["calibrate", "{rows_other_limit.csv}"], "row 1: ttft_limit_s 1e-09 is not llama2-70b server's limit of 2 s"),
    (["calibrate", "{rows_no_scenario.csv}"], "row 1: benchmark mixtral-8x7b: mixtral-8x7b has no interactive"),
    (["calibrate", "{rows_benchmark.csv}"], "row 1: benchmark resnet50: no MLPerf scenario for 'resnet50'"),
    (["calibrate", "{rows_long_output.csv}"], "row 1: output_tokens 100000 is more than llama2-70b's context of 4096"),
    (["simulate", "--model", "{sliding_all.json}", "--gpu", "h200", "--gpus", "1", "--rate", "2", "--requests", "5",
      "--input-tokens", "512", "--output-tokens", "64"], "every layer of sliding_all uses sliding-window attention"),
    (["simulate", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "4", "--rate", "5", "--duration", "10",
      "--batching", "disaggregated", "--prefill-gpus", "2", "--kv-transfer-gb-per-s", "1e-9"],
     "--kv-transfer-gb-per-s: 1e-09 is out of range [0.01, 1e+06]"),      # ran for hours before
    (["simulate", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "1", "--rate", "2", "--requests", "5",
      "--batching", "disaggregated", "--prefill-gpus", "1"], "--gpus >= 2; got 1"),          # was "[1, 0]"
    (["simulate", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "4", "--rate", "2", "--requests", "5",
      "--batching", "disaggregated"], "--prefill-gpus: required with --batching disaggregated"),  # was "0 is out of range"
    (["import-runs", "--format", "vllm", "{twice_key.json}", "--model", "llama3.1-8b", "--gpu", "h200", "--gpus", "1"],
     "twice_key.json: key 'completed' appears twice in one object with two values"),     # json.loads kept the last in silence
    (SIM + ["--topology", "{topology_catalog_shape.toml}"], "[mine] is the catalog's shape"),     # was "unknown key"
    (OPEN + ["--gpus", "2", "--rate", "2", "--topology", "{topology_dup_index.toml}"],
     "GPUs 'gpu0' and 'gpu1' both have index 0"),                                # was accepted
    (OPEN + ["--gpus", "2", "--rate", "2", "--topology", "{topology_dup_id.toml}"],
     "node 2: id 'gpu0' is declared twice"),                 # was "2 GPUs requested but the topology has 1"
    (["calibrate", "{rows_short.csv}"], "rows_short.csv: row 1: 6 cells, the header has 8 columns"),
    (["calibrate", "{rows_tp3.csv}"], "row 1: tp: 3 does not divide llama2-70b's 64 attention heads"),
    (["calibrate", "{rows_pp81.csv}"], "row 1: pp: 81 stages is more than llama2-70b's 80 layers; pp can be 1 to 80"),
    (["mlperf", "--gpus", "128", "--tp", "1", "--pp", "128", "--queries", "200"],
     "--pp: 128 stages is more than llama2-70b's 80 layers"),
    (SIM + ["--set", "topology.nic_gbps=0"], "--set topology.nic_gbps: 0.0 is out of range [0.1, 1e+06]"),
    (SIM + ["--set", "gpu.nic_gbps=5e6"], "nic_gbps: 5000000.0 is out of range [0.1, 1e+06]"),   # one NIC range
    (SIM + ["--set", "gpu.hbm_tb_per_s=-1"], "hbm_tb_per_s"),
    (SIM + ["--set", "gpu.colour=red"], "unknown GPU field"),
    (OPEN + ["--gpus", "2", "--rate", "5", "--fail", "gpu:0@1", "--fail", "gpu:0@2"],
     "--fail: gpu:0 is given twice"),
    (OPEN + ["--gpus", "2", "--rate", "5", "--fail", "link:gpu2-nvswitch0@1"],
     "gpu2 is not one of the cluster's GPUs (gpu0..gpu1"),                     # was accepted, changing nothing
    (SIM + ["--out", "result.txt"], "result.txt' must end in .json or .csv"),   # wrote JSON silently
    (SIM + ["--print-config", "run.json"], "--print-config: 'run.json' must end in .toml"),   # wrote TOML into .json
    (SIM + ["--set", "gpu.hbm_gb=1", "--set", "gpu.hbm_gb=141"], "--set gpu.hbm_gb: given twice"),  # the first was dropped
    (["size", "--compare", "h200,nope", "--target-tokens-per-s", "1e5"], "--compare: unknown GPU 'nope'"),
    (["size", "--compare", "", "--target-tokens-per-s", "1e5"], "--compare: give GPU names, comma-separated"),
    (["size", "--compare", "h100,b200", "--gpu", "mi300x", "--target-tokens-per-s", "1e5"],
     "--gpu: not with --compare, which names the GPUs"),
    (["size", "--compare", "h100,h100", "--target-tokens-per-s", "1e5"], "--compare: h100 is named twice"),
    (["pareto", "--concurrency", "1,64", "--max-concurrency", "2"],
     "--max-concurrency: shapes the default concurrency levels; --concurrency lists them itself"),
    (["pareto", "--concurrency", "1", "--concurrency-ratio", "1.25"], "--concurrency-ratio: shapes the default"),
    (["simulate", "--rate", "1e-300", "--duration", "10"], "--rate: 1e-300 requests/s spreads 1 request(s) over"),
    (SIM + ["--set", "gpu.gpus_per_server=nan"], "gpus_per_server: must be a finite number in [1, 4096], got nan"),
    (SIM + ["--set", "gpu.gpus_per_server=1e30"], "gpus_per_server: 1e+30 is out of range [1, 4096]"),
    (SIM + ["--set", "gpu.scaleup_links=1e400"], "scaleup_links: must be a finite number in [0, 64], got inf"),
    (SIM + ["--set", "gpu.aliases=x"], "--set gpu.aliases: unknown GPU field"),
    # two ways of giving one NIC speed: refused, not one silently winning
    (SIM + ["--scaleout-gbps", "400", "--set", "gpu.nic_gbps=1"], "--scaleout-gbps: also given as --set gpu.nic_gbps"),
    (SIM + ["--set", "gpu.nic_gbps=1", "--set", "topology.nic_gbps=400"],
     "--set topology.nic_gbps: also given as --set gpu.nic_gbps"),
    (SIM + ["--set", "speed=1"], "--set"),
    (SIM + ["--set", "topology.bogus=abc"], "--set topology.bogus: unknown topology key; allowed: fabric,"),
    (SIM + ["--set", "topology.nic_gbps=fast"], "not a number"),
    (SIM + ["--topology", "nosuch"], "nosuch"),
    (SIM + ["--fail", "gpu:99@1"], "no such GPU"),
    (SIM + ["--fail", "link:x-y@1"], "no such link"),
    (SIM + ["--fail", "gpu:0@soon"], "--fail"),
    (SIM + ["--sla-ttft", "-1"], "--sla-ttft"),
    (SIM + ["--interval", "1.5"], "--interval"),
    (["mlperf", "--model", "mixtral-8x7b", "--scenario", "interactive"], "no interactive scenario"),
    (["mlperf", "--rate", "5", "--scenario", "offline"], "--rate"),
    (["mlperf", "--model", "llama3.1-8b", "--gpus", "1", "--queries", "0"], "--queries"),
    (["size", "--target-tokens-per-s", "-1"], "--target-tokens-per-s"),
    (["size", "--target-tokens-per-s", "1e6", "--confidence", "1.5"], "--confidence"),
    (["calibrate", "{empty.csv}"], "empty"),
    # the parsers' own limits: nesting deeper than Python recurses, integers over 4,300 digits
    (SIM + ["--config", "{deep.json}"], "deep.json: not valid JSON (nested too deeply)"),
    (SIM + ["--profile", "{deep.toml}"], "deep.toml: not valid TOML (nested too deeply)"),
    (SIM + ["--profile", "{long_int.toml}"], "long_int.toml: not valid TOML (a number too long to read)"),
    # an output that would replace an input, whichever option reads it
    (["validate", "--split", "gpu", "--out", "{rows_twice.csv}", "{rows_twice.csv}"], "would overwrite the input"),
    (["calibrate", "--prior-profile", "{bad_profile.toml}", "--out", "{bad_profile.toml}", "{rows_twice.csv}"],
     "would overwrite the input"),
    (SIM + ["--profile", "{bad_profile.toml}", "--out", "{bad_profile.toml}"], "would overwrite the input"),
    # before: each ran, a release or vendor typo moving H100's prediction by 8% without a word
    (SIM + ["--profile", "{release_typo_profile.toml}"], "[fit.default_release] 'nvidia/tensorrt-llm' = '99.99' has no"),
    (SIM + ["--profile", "{vendor_typo_profile.toml}"], "[fit.reference_stack] 'nvidai' names no vendor"),
    (SIM + ["--profile", "{log_sigma_typo_profile.toml}"], "[fit.log_sigma] 'mi355' names no GPU"),
    # before: a length table named as file:PATH was replaced by the per-request CSV, exit 0
    (SIM + ["--input-tokens", "file:{lengths.csv}", "--out", "{lengths.csv}"], "would overwrite the input"),
    (["calibrate", "{rows_unknown.csv}"], "unknown column 'speed'"),
    # before: exit 0 and a profile every later command refused ([vendor.nvidia] factor 9e-55)
    (["calibrate", "{rows_tiny.csv}"], "the rows ask for efficiencies no run reaches"),
    (["calibrate", "{rows_underscore.csv}"], "gpus '1_0' is not a number"),    # before: read as 10 GPUs
    # a thousandth of a token per second fits a profile every reader takes, at 1e-7 of the HBM's bandwidth
    (["calibrate", "{rows_slow.csv}", "--quiet"], "of the datasheet peak, below the 0.02 no serving stack falls to"),
    # before: exit 0 and a profile whose intervals spanned 0.004 to 55M tokens/s (1 us a token for 70B on
    # one B200), or whose steps took 1.4 s of overhead (100 s a token for 8B)
    (["calibrate", "{rows_open_fast.csv}"], "less than the 0.00428 s 1 b200 need to read llama3.1-70b's active"),
    (["calibrate", "{rows_open_slow.csv}", "--quiet"], "fits step_overhead_s at"),
    # before: named the CSV columns (tpot_p50_s, output_tokens) the file does not have, or wrote 0 tokens as 1
    (["import-runs", "--format", "vllm", "{vllm_tpot_zero.json}", "--model", "llama3.1-8b", "--gpu", "h100", "--gpus",
      "1"], "median_tpot_ms is 0"),
    (["import-runs", "--format", "vllm", "{vllm_one_token.json}", "--model", "llama3.1-8b", "--gpu", "h100", "--gpus",
      "1"], "total_output_tokens / completed is 1 token a request; a TPOT needs 2 or more"),
    (["import-runs", "--format", "vllm", "{vllm_no_input.json}", "--model", "llama3.1-8b", "--gpu", "h100", "--gpus",
      "1"], "total_input_tokens 0 over 10 completed requests is under one token a request"),
    (["size", "--gpu", "b200", "--target-tokens-per-s", "1e5", "--node-gpus", "1000"], "--node-gpus: 1000 is out of"),
    (["size", "--compare", "b200,B200", "--target-tokens-per-s", "1e5"], "--compare"),
    (["sweep", "{sweep_typo.toml}", "--out", "{out.csv}"], "bsae"),
    (["sweep", "{sweep_ok.toml}", "--out", "{out.csv}", "--jobs", "0"], "--jobs"),
    (["plot", "{results.csv}", "--x", "nosuch", "--y", "gpus", "-o", "{p.png}"], "nosuch"),
    (["plot", "{results.csv}", "--x", "gpus", "--y", "output_tokens_per_s", "-o", "{p.gif}"], ".png or .svg"),
    (["import-runs", "--format", "vllm", "{vllm.json}"], "--model"),
    (["import-runs", "--format", "inferencemax", "{truncated.json}"], "truncated.json"),
    # names longer than a file name may be: a name that may be a path is looked up, an output is claimed
    (["simulate", "--model", "m" * 300] + SIM[3:], "--model: unknown model 'mmm"),
    (SIM + ["--topology", "t" * 300], "--topology: unknown topology 'ttt"),
    (SIM + ["--out", "{" + "o" * 300 + ".json}"], "cannot write it (File name too long)"),
    (SIM + ["--topology", ""], "--topology: an empty name"),
    (["import-runs", "--format", "vllm", "{vllm.json}", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1",
      "--stack", ""], "--stack: an empty name"),
    (["import-runs", "--format", "vllm", "{vllm.json}", "--model", "llama3.1-405b", "--gpu", "h100", "--gpus", "1"],
     "does not fit: llama3.1-405b in fp8 needs 410.1 GB of weights per GPU with tp=1 ep=1; h100 has 80 GB"),
    (["sweep", "{sweep_twice.toml}", "--out", "{out.csv}"], "points[1] is a point given before"),
    (["sweep", "{sweep_grid_twice.toml}", "--out", "{out.csv}"], "grid.gpus lists '1' twice"),
    (["sweep", "{sweep_ok.toml}", "--out", "{out.json}"], "--out: "),
    (["pareto", "--model", "llama3.1-8b", "--gpu", "b200", "--gpus", "1", "--batching", "disaggregated",
      "--concurrency", "1", "--requests-per-user", "2", "--quiet"], "needs a prefill and a decode replica"),
]


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    argv = [re.sub(r"^(file:)?\{(.+)\}$", lambda m: (m.group(1) or "") + str(tmp_path / m.group(2)), a) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2, captured
    err = captured.err.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert message in err, err


def test_a_rows_config_json_model_is_refused_for_what_is_wrong_with_the_file(tmp_path, capsys):
    """A model given as a config.json path: the file's own problem (before: 'not in the model catalog')."""
    config = tmp_path / "config.json"
    config.write_text('{"foo": 1}')
    rows = tmp_path / "rows.csv"
    rows.write_text("model,gpu,gpus,scenario,output_tokens_per_s,source,input_tokens,output_tokens,rate_per_s,tpot_p50_s\n"
                    f"{config},b200,1,open,100,s,100,100,1,0.01\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", str(rows)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.count("\n") == 0
    assert "row 1: model: " in err and "missing key 'hidden_size'" in err, err


@pytest.mark.parametrize("options,message", [
    ({"gpu": None}, "`gpu`: expected a catalog name"), ({"model": 5}, "`model`: expected a catalog name"),
    ({"precision": None}, "`precision`: expected a number format"),
    ({"set_values": 5}, "`set_values`: expected a list of strings"), ({"fail": 5}, "`fail`: expected a list"),
])
def test_the_python_api_refuses_wrong_types_naming_the_argument(options, message):
    """The Python API's arguments of the wrong type get a ConfigError naming them, not an AttributeError or
    TypeError from deep inside; a whole float GPU count and a single `fail` string are what they say."""
    from simulator.api import simulate
    from simulator.errors import ConfigError
    from simulator.sweep import sweep
    base = {"model": "llama3.1-8b", "gpu": "b200", "gpus": 1, "rate": 1.0, "requests": 5}
    with pytest.raises(ConfigError, match=re.escape(message)):
        simulate(**{**base, **options})
    with pytest.raises(ConfigError, match="sweep spec: expected a TOML path or a dict"):
        sweep(None)
    assert simulate(**{**base, "gpus": 1.0}).plan["gpus"] == 1
    assert simulate(**{**base, "gpus": 2, "fail": "gpu:0@100"}).summary["run_status"] == "complete"
