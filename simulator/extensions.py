"""The extension points and what is registered at each: the CLI's choice lists, `infersim catalog
extensions` and the docs read them here, so a new router, arrival process, length distribution,
topology builder or import format shows up everywhere once its class is registered.
"""
from __future__ import annotations

from simulator.registry import summary


def batching_policies() -> dict[str, str]:
    """`--batching`'s choices with a summary each.

    The one place that knows where batching policies are listed: `simulator.plan.BATCHING_POLICIES` until
    the engine's `simulator.scheduling.BATCHING` registry lands, when this becomes
    `return BATCHING.summaries()` ('disaggregated' registered there too, or kept as below)."""
    from simulator.plan import BATCHING_POLICIES
    from simulator.scheduling import POLICIES
    known = {name: summary(cls) for name, cls in POLICIES.items()}
    known.setdefault("disaggregated", "Prefill and decode on separate GPU pools (--prefill-gpus): prefill-only "
                                      "engines hand each prompt's KV cache over the network to decode-only ones.")
    return {name: known.get(name, "") for name in BATCHING_POLICIES}


def registries() -> dict[str, tuple[str, object]]:
    """Extension point -> (where its registry lives, the registry)."""
    from simulator.importers import IMPORT_FORMATS
    from simulator.router import ROUTERS
    from topologies.builders import BUILDERS
    from workloads.arrivals import ARRIVALS
    from workloads.lengths import LENGTHS
    return {"router": ("simulator.router.ROUTERS", ROUTERS),
            "arrival process": ("workloads.arrivals.ARRIVALS", ARRIVALS),
            "length distribution": ("workloads.lengths.LENGTHS", LENGTHS),
            "topology builder": ("topologies.builders.BUILDERS", BUILDERS),
            "import format": ("simulator.importers.IMPORT_FORMATS", IMPORT_FORMATS)}


def extension_points() -> list[dict]:
    """One row per registered entry: extension point, name, where it is registered, summary."""
    rows = [{"extension_point": "batching policy", "name": name, "registry": "simulator.plan.BATCHING_POLICIES",
             "summary": text} for name, text in batching_policies().items()]
    for point, (where, registry) in registries().items():
        rows += [{"extension_point": point, "name": name, "registry": where, "summary": text}
                 for name, text in registry.summaries().items()]
    return rows
