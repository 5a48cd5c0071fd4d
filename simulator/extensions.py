"""The extension points and what is registered at each: the CLI's choice lists, `infersim catalog
extensions` and the docs read them here, so a new router, arrival process, length distribution,
batching policy, topology builder, import format or launch-command emitter shows up everywhere once its
class is registered.
"""
from __future__ import annotations

from simulator.importers import IMPORT_FORMATS
from simulator.launch.registry import EMITTERS
from simulator.router import ROUTERS
from simulator.scheduling import BATCHING
from topologies.builders import BUILDERS
from workloads.arrivals import ARRIVALS
from workloads.lengths import LENGTHS


def registries() -> dict[str, tuple[str, object]]:
    """Extension point -> (where its registry lives, the registry)."""
    return {"batching policy": ("simulator.scheduling.BATCHING", BATCHING),
            "router": ("simulator.router.ROUTERS", ROUTERS),
            "arrival process": ("workloads.arrivals.ARRIVALS", ARRIVALS),
            "length distribution": ("workloads.lengths.LENGTHS", LENGTHS),
            "topology builder": ("topologies.builders.BUILDERS", BUILDERS),
            "import format": ("simulator.importers.IMPORT_FORMATS", IMPORT_FORMATS),
            "launch emitter": ("simulator.launch.registry.EMITTERS", EMITTERS)}


def extension_points() -> list[dict]:
    """One row per registered entry: extension point, name, where it is registered, summary."""
    rows = []
    for point, (where, registry) in registries().items():
        rows += [{"extension_point": point, "name": name, "registry": where, "summary": text}
                 for name, text in registry.summaries().items()]
    return rows
