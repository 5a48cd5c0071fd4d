"""Placement: which GPUs of a topology each replica (and each of its tp groups and pipeline stages) uses.

Node-aware: a tensor-parallel group stays inside one server when it fits (tp <= GPUs per server) and
otherwise takes whole servers; pipeline stages and attention-data-parallel groups take the next groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from simulator.errors import ConfigError
from topologies.builders import gpus_of


@dataclass(frozen=True)
class Placement:
    """replicas[r] = GPUs of replica r, grouped: stages[s][d] is the tp group of stage s, attention group d."""

    replicas: tuple  # tuple[tuple[tuple[tuple[str, ...], ...], ...], ...]  replica -> stage -> dp group -> GPUs
    unused: tuple = ()

    def gpus(self, replica: int) -> tuple:
        return tuple(g for stage in self.replicas[replica] for group in stage for g in group)

    def tp_group(self, replica: int, stage: int = 0, dp_group: int = 0) -> tuple:
        return self.replicas[replica][stage][dp_group]

    def stage_groups(self, replica: int) -> tuple:
        return self.replicas[replica]

    def ep_group(self, replica: int, ep: int) -> tuple:
        """The expert-parallel group of stage 0: its attention groups' GPUs (ep > tp) or the first ep of tp."""
        stage = self.replicas[replica][0]
        flat = tuple(g for group in stage for g in group)
        return flat[:ep]


def servers_spanned(graph: nx.Graph, group) -> int:
    return len({graph.nodes[g].get("server", 0) for g in group})


def place(graph: nx.Graph, tp: int, pp: int = 1, attention_dp: int = 1, replicas: int | None = None,
          gpus: int | None = None) -> Placement:
    """Lay replicas of tp x pp x attention_dp GPUs onto the first `gpus` GPUs of `graph` (all by default).

    >>> from topologies.builders import cluster
    >>> p = place(cluster(2, "nvswitch", 8, 900), tp=8)
    >>> len(p.replicas), servers_spanned(cluster(2, "nvswitch", 8, 900), p.tp_group(0))
    (2, 1)
    """
    available = gpus_of(graph)
    if gpus is not None:
        if gpus > len(available):
            raise ConfigError(f"`gpus`: {gpus} GPUs requested but the topology has {len(available)}")
        available = available[:gpus]
    per_server = int(graph.graph.get("gpus_per_server", len(available)))
    by_server: dict[int, list[str]] = {}
    for gpu in available:
        by_server.setdefault(graph.nodes[gpu].get("server", 0), []).append(gpu)
    groups: list[tuple] = []
    if tp <= per_server:
        for server in sorted(by_server):
            members = by_server[server]
            for start in range(0, len(members) - tp + 1, tp):
                groups.append(tuple(members[start:start + tp]))
    else:
        if tp % per_server:
            raise ConfigError(f"`tp`: {tp} spans servers of {per_server} GPUs; use a multiple of {per_server}")
        whole = [by_server[s] for s in sorted(by_server) if len(by_server[s]) == per_server]
        span = tp // per_server
        for start in range(0, len(whole) - span + 1, span):
            groups.append(tuple(g for server in whole[start:start + span] for g in server))
    per_replica = pp * attention_dp
    fit = len(groups) // per_replica
    wanted = fit if replicas is None else replicas
    if wanted < 1 or wanted > fit:
        need = (wanted if wanted >= 1 else 1) * per_replica * tp
        raise ConfigError(f"placement: the plan needs {need} GPUs in tp groups of {tp} "
                          f"(x pp {pp} x attention-dp {attention_dp}); the cluster has {len(available)} GPUs "
                          f"in {len(by_server)} servers, room for {fit} replica(s)")
    out = []
    for r in range(wanted):
        mine = groups[r * per_replica:(r + 1) * per_replica]
        out.append(tuple(tuple(mine[s * attention_dp:(s + 1) * attention_dp]) for s in range(pp)))
    used = {g for replica in out for stage in replica for group in stage for g in group}
    return Placement(replicas=tuple(out), unused=tuple(g for g in available if g not in used))
