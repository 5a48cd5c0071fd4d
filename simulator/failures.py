"""Injected failures: a GPU or a link goes down at a given time. The engines on a failed GPU stop and
their requests are routed again (keeping the tokens they streamed); a failed link re-prices every
replica's collectives on what is left of the graph, and stops the engines whose own GPUs can no longer
reach each other."""
from __future__ import annotations

from simulator.errors import ConfigError


def failure_text(failure: tuple) -> str:
    """A parsed failure in the form `fail` takes, its time exactly: ("gpu", 9, 0.0) -> "gpu:9@0",
    ("gpu", 3, 0.1234567) -> "gpu:3@0.1234567"."""
    target = str(failure[1]) if failure[0] == "gpu" else f"{failure[1]}-{failure[2]}"
    time_s = repr(float(failure[-1]))
    return f"{failure[0]}:{target}@{time_s[:-2] if time_s.endswith('.0') else time_s}"


class FailureInjector:
    def __init__(self, cluster):
        self.cluster = cluster
        self.failed_gpus: list[str] = []
        config = cluster.config
        for failure in config.failures:
            if failure[0] == "gpu" and not 0 <= failure[1] < config.gpus:
                raise ConfigError(f"`fail` gpu:{failure[1]}: no such GPU (GPUs are 0..{config.gpus - 1})")
            if failure[0] == "link" and not cluster.graph.has_edge(failure[1], failure[2]):
                raise ConfigError(f"`fail` link:{failure[1]}-{failure[2]}: no such link in the topology")
            graph = cluster.graph
            outside = [end for end in failure[1:3] if failure[0] == "link" and end in graph
                       and graph.nodes[end].get("kind") == "gpu" and graph.nodes[end]["index"] >= config.gpus]
            if outside:
                raise ConfigError(f"`fail` link:{failure[1]}-{failure[2]}: {outside[0]} is not one of the cluster's "
                                  f"GPUs (gpu0..gpu{config.gpus - 1}; its server's other slots sit idle)")
            cluster.env.process(self._fail_at(failure))

    def _fail_at(self, failure):
        cluster = self.cluster
        yield cluster.env.timeout(failure[-1])
        if failure[0] == "gpu":
            doomed = self._fail_gpu(f"gpu{failure[1]}")
        else:
            doomed = self._fail_link(failure[1], failure[2])
        for i in sorted(doomed):
            if cluster.handoff is not None:
                cluster.handoff.engine_failed(i)
            for rid in cluster.engines[i].fail():
                cluster.table.engine[rid] = -1
                cluster.route(rid)
        if not any(e.alive for e in cluster.entry_pool) or not any(e.alive for e in cluster.decode_pool):
            cluster.note_down()

    def _fail_gpu(self, gpu: str) -> set[int]:
        cluster = self.cluster       # (each GPU fails once: ServingConfig refuses one named twice)
        self.failed_gpus.append(gpu)
        cluster.network.fail_node(gpu)
        return {i for i in range(len(cluster.engines)) if gpu in cluster.placement.gpus(cluster.replica_of[i])}

    def _fail_link(self, a: str, b: str) -> set[int]:
        cluster = self.cluster
        if not cluster.graph.has_edge(a, b):  # already down: an end's GPU failed
            return set()
        cluster.network.fail_link(a, b)
        doomed, costs = set(), {}
        for i, engine in enumerate(cluster.engines):
            if not engine.alive:
                continue
            try:
                engine.reprice(cluster.replica_cost(cluster.replica_of[i], costs))
            except ConfigError:
                doomed.add(i)          # its own GPUs can no longer reach each other
        return doomed
