"""infersim: predict LLM serving throughput, latency and cost on GPU clusters from datasheets,
calibration and a discrete-event simulation."""
from simulator.api import RunResult, serving_config, simulate
from simulator.mlperf import mlperf
from simulator.sizing import size
from simulator.sweep import sweep

__all__ = ["RunResult", "mlperf", "serving_config", "simulate", "size", "sweep"]
