"""infersim: predict LLM serving throughput, latency and cost on GPU clusters from datasheets,
calibration and a discrete-event simulation.

The API names below load on first use, so `import simulator` (or `import topologies`, which needs
`simulator.errors` and `simulator.hardware`) stays light: no simulation engine, no scipy.optimize, until
something asks for it.

Two API functions share their name with the module that defines them (`mlperf`, `sweep`). Importing a
submodule makes the import system set it as an attribute of this package, which would hide the function
(`from simulator import mlperf` gave the module once anything had imported `simulator.mlperf`): the
package refuses that one assignment, so `simulator.mlperf` is always the function and the module is
`sys.modules["simulator.mlperf"]` (what `from simulator.mlperf import ...` reads).
"""
import sys
import types
from importlib import import_module

_API = {"RunResult": "simulator.api", "serving_config": "simulator.api", "simulate": "simulator.api",
        "mlperf": "simulator.mlperf", "size": "simulator.sizing", "sweep": "simulator.sweep"}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return          # a submodule named like an API function: the name stays the function's
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
