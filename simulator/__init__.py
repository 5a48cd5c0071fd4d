"""infersim: predict LLM serving throughput, latency and cost on GPU clusters from datasheets,
calibration and a discrete-event simulation.

The API names below load on first use, so `import simulator` (or `import topologies`, which needs
`simulator.errors` and `simulator.hardware`) stays light: no simulation engine, no scipy.optimize, until
something asks for it.
"""
from importlib import import_module

_API = {"RunResult": "simulator.api", "serving_config": "simulator.api", "simulate": "simulator.api",
        "mlperf": "simulator.mlperf", "size": "simulator.sizing", "sweep": "simulator.sweep"}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
