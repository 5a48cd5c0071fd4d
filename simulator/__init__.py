"""infersim: predict LLM serving throughput, latency and cost on GPU clusters from datasheets,
calibration and a discrete-event simulation."""
from simulator.api import RunResult, serving_config, simulate

__all__ = ["RunResult", "serving_config", "simulate"]
