"""Collective costs on a GPU group of a topology, as alpha-beta models.

Each collective returns a `CollectiveCost`: one `AlphaBeta` per algorithm (ring, tree, direct,
hierarchical, and NVLink SHARP where the switch reduces in the network); `time_s(bytes)` takes the
fastest for that message size, as NCCL/RCCL's tuner would. Bandwidth comes from the most loaded link
after counting how much of the collective's concurrent traffic crosses it (per direction); traffic
between two endpoints spreads evenly over every equal-cost (hop-count) path, as ECMP hashing does on
average across a leaf-spine. Latency: one launch per collective (LAUNCH_LATENCY_S) plus the hop
latencies of each of the algorithm's sequential steps.

Message sizes: all-reduce, reduce-scatter and all-gather take the full buffer S (each GPU ends with S,
or S/n for reduce-scatter); all-to-all takes the bytes each GPU sends in total; send/recv the payload.
"""
from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import networkx as nx
import numpy as np

from simulator.errors import ConfigError
# one launch per collective call: the default of the efficiency field a calibration fits
from simulator.hardware import LAUNCH_LATENCY_S
# NVLink SHARP moves (n-1)/n x S each way instead of a ring's 2(n-1)/n x S, but reaches a smaller share of
# the line rate: 8 x H100 measure ~480 GB/s bus bandwidth with NVLS against ~370 for rings (line 450),
# i.e. NVLS is ~1.3x a ring for large messages. This factor reproduces that ratio (0.875 / 2 x 370 x
# 1.3 / 450 ~ 0.62 of ideal).
NVLS_EFFICIENCY = 0.62


@dataclass(frozen=True)
class AlphaBeta:
    """time = alpha_s + beta_s_per_byte x message bytes."""

    alpha_s: float = 0.0
    beta_s_per_byte: float = 0.0

    def scaled(self, bandwidth_factor: float, latency_shift_s: float = 0.0) -> "AlphaBeta":
        """The same transfer when links deliver `bandwidth_factor` times the bandwidth and each call's
        fixed cost moves by `latency_shift_s`."""
        return AlphaBeta(max(self.alpha_s + latency_shift_s, 0.0), self.beta_s_per_byte / bandwidth_factor)

    def time_s(self, message_bytes):
        """Seconds for a message (a number, or a numpy array of sizes); nothing to send costs nothing."""
        return (message_bytes > 0) * (self.alpha_s + self.beta_s_per_byte * message_bytes)


@dataclass(frozen=True)
class CollectiveCost:
    """The candidate algorithms of one collective on one group; the fastest one runs."""

    options: tuple  # ((name, AlphaBeta), ...)

    def scaled(self, bandwidth_factor: float, latency_shift_s: float = 0.0) -> "CollectiveCost":
        return CollectiveCost(tuple((name, ab.scaled(bandwidth_factor, latency_shift_s)) for name, ab in self.options))

    def time_s(self, message_bytes):
        """Seconds of the fastest algorithm for the message size (numbers or numpy arrays)."""
        if not self.options:
            return 0.0 * message_bytes
        if isinstance(message_bytes, np.ndarray):
            return functools.reduce(np.minimum, (ab.time_s(message_bytes) for _, ab in self.options))
        return min(ab.time_s(message_bytes) for _, ab in self.options)

    def best(self, message_bytes: float) -> str:
        return min(self.options, key=lambda item: item[1].time_s(message_bytes))[0]

    def get(self, name: str) -> AlphaBeta:
        for option, ab in self.options:
            if option == name:
                return ab
        raise ConfigError(f"algorithm: {name!r} is not available here; have {', '.join(n for n, _ in self.options)}")


_ROUTES: "weakref.WeakKeyDictionary[nx.Graph, dict]" = weakref.WeakKeyDictionary()


def invalidate(graph: nx.Graph) -> None:
    """Forget cached routes (after a link or node goes down)."""
    _ROUTES.pop(graph, None)


def paths(graph: nx.Graph, source: str, target: str) -> tuple:
    """Every hop-count shortest path from `source` to `target`, each as its directed edges, in a
    deterministic order (ECMP spreads traffic over these)."""
    cache = _ROUTES.setdefault(graph, {})
    key = (source, target)
    if key not in cache:
        found = sorted(_shortest_paths(graph, source, target))
        if not found:
            raise ConfigError(f"topology: no route from {source} to {target}")
        cache[key] = tuple(tuple(zip(path[:-1], path[1:])) for path in found)
    return cache[key]


def _shortest_paths(graph: nx.Graph, source: str, target: str) -> list[list[str]]:
    """Every hop-count shortest path (what `nx.all_shortest_paths` gives), by a breadth-first search
    that stops at the target's depth: a pair inside one server is two hops apart, and searching all of
    a 1,000-GPU cluster from it took 13 ms a pair."""
    if source not in graph or target not in graph:
        return []
    parents, frontier = {source: []}, [source]
    while frontier and target not in parents:
        reached = {}
        for node in frontier:
            for neighbor in graph[node]:
                if neighbor not in parents:
                    reached.setdefault(neighbor, []).append(node)
        parents.update(reached)
        frontier = list(reached)
    if target not in parents:
        return []
    paths, stack = [], [[target]]
    while stack:
        partial = stack.pop()
        if partial[-1] == source:
            paths.append(partial[::-1])
        stack.extend(partial + [parent] for parent in parents[partial[-1]])
    return paths


def route(graph: nx.Graph, source: str, target: str) -> tuple:
    """The directed edges one flow from `source` to `target` takes: the equal-cost path a per-flow ECMP
    hash picks (deterministic, from the endpoints' names)."""
    options = paths(graph, source, target)
    if len(options) == 1:
        return options[0]
    digest = sum((i + 1) * ord(c) for i, c in enumerate(f"{source}>{target}"))
    return options[digest % len(options)]


def _bandwidth_bytes_per_s(graph, edge) -> float:
    return graph.edges[edge]["bandwidth_gb_per_s"] * 1e9


def _latency_s(graph, edges) -> float:
    return sum(graph.edges[e].get("latency_us", 0.0) for e in edges) * 1e-6


def _path_latency_s(graph, source, target) -> float:
    return _latency_s(graph, paths(graph, source, target)[0])


def _bottleneck_s_per_byte(graph, pairs, efficiency) -> float:
    """Concurrent transfers, each moving one byte-unit from source to target, spread evenly over their
    equal-cost paths: seconds per unit on the most loaded directed link."""
    load = {}
    for source, target in pairs:
        options = paths(graph, source, target)
        share = 1.0 / len(options)
        for edges in options:
            for edge in edges:
                load[edge] = load.get(edge, 0.0) + share
    worst = 0.0
    for edge, amount in load.items():
        worst = max(worst, amount / (_bandwidth_bytes_per_s(graph, edge) * efficiency))
    return worst


def _ring(graph, group, efficiency):
    """One ring step: every GPU sends to its successor at once. Returns (s/byte per step, step latency)."""
    pairs = list(zip(group, group[1:] + group[:1]))
    return _bottleneck_s_per_byte(graph, pairs, efficiency), max(_path_latency_s(graph, a, b) for a, b in pairs)


def _direct(graph, group, efficiency):
    """Every GPU sends a piece to every other at once (one-shot): s/byte per piece, step latency."""
    pairs = [(a, b) for a in group for b in group if a != b]
    return _bottleneck_s_per_byte(graph, pairs, efficiency), max(_path_latency_s(graph, a, b) for a, b in pairs)


def _tree(graph, group, efficiency):
    """A binary tree over the group (rank order): s/byte on the busiest tree link, depth, hop latency."""
    pairs = [(group[(i - 1) // 2], group[i]) for i in range(1, len(group))]
    pairs += [(b, a) for a, b in pairs]
    depth = math.ceil(math.log2(len(group) + 1)) - 1 if len(group) > 1 else 0
    return (_bottleneck_s_per_byte(graph, pairs, efficiency), max(depth, 1),
            max(_path_latency_s(graph, a, b) for a, b in pairs))


def _in_network_reduction(graph, group) -> bool:
    """The whole group hangs off one switch that reduces in the network (NVLink SHARP)."""
    switches = set()
    for gpu in group:
        neighbours = [n for n in graph.neighbors(gpu) if graph.nodes[n].get("kind") == "switch"]
        if len(neighbours) != 1 or not graph.nodes[neighbours[0]].get("in_network_reduction"):
            return False
        switches.add(neighbours[0])
    return len(switches) == 1


def _servers(graph, group):
    by_server = {}
    for gpu in group:
        by_server.setdefault(graph.nodes[gpu].get("server", 0), []).append(gpu)
    return [by_server[s] for s in sorted(by_server)]


def _check_group(graph, group) -> tuple:
    group = tuple(group)
    for gpu in group:
        if gpu not in graph or graph.nodes[gpu].get("kind") != "gpu":
            raise ConfigError(f"topology: {gpu!r} is not a GPU of this topology")
    if len(set(group)) != len(group):
        raise ConfigError("topology: a collective group lists a GPU twice")
    return group


def reduce_scatter(graph: nx.Graph, group, efficiency: float = 1.0) -> CollectiveCost:
    """Each GPU ends with 1/n of the reduced S-byte buffer: (n-1)/n x S moved per GPU."""
    return _half_collective(graph, _check_group(graph, group), efficiency)


def all_gather(graph: nx.Graph, group, efficiency: float = 1.0) -> CollectiveCost:
    """Each GPU ends with all n pieces of an S-byte buffer: the mirror of reduce-scatter, same cost."""
    return _half_collective(graph, _check_group(graph, group), efficiency)


def _half_collective(graph, group, efficiency) -> CollectiveCost:
    n = len(group)
    if n <= 1:
        return CollectiveCost(())
    ring_beta, ring_alpha = _ring(graph, list(group), efficiency)
    direct_beta, direct_alpha = _direct(graph, list(group), efficiency)
    return CollectiveCost((
        ("ring", AlphaBeta(LAUNCH_LATENCY_S + (n - 1) * ring_alpha, (n - 1) / n * ring_beta)),
        ("direct", AlphaBeta(LAUNCH_LATENCY_S + direct_alpha, direct_beta / n)),
    ))


def all_reduce(graph: nx.Graph, group, efficiency: float = 1.0) -> CollectiveCost:
    """All-reduce of an S-byte buffer; every option pays one launch (LAUNCH_LATENCY_S) plus:

    ring: 2(n-1) steps of S/n: 2(n-1)/n x S / B_ring + 2(n-1) hop latencies.
    direct: reduce-scatter then all-gather, each GPU exchanging S/n with every peer at once:
        2 x S/n x (busiest link's load / its bandwidth) + 2 hop latencies. On a full mesh that uses all links.
    tree: pipelined binary tree, ~2 S / B_tree + 2 depth hop latencies.
    nvls (one switch that reduces in the network, NVLink SHARP): each GPU sends and receives (n-1)/n x S
        once, at NVLS_EFFICIENCY of the link: (n-1)/n x S / (B x NVLS_EFFICIENCY) + 2 hop latencies.
    hierarchical (groups spanning servers): reduce-scatter inside each server, all-reduce of S/g across
        servers among same-rank GPUs, all-gather inside each server.
    """
    group = _check_group(graph, group)
    n = len(group)
    if n <= 1:
        return CollectiveCost(())
    ring_beta, ring_alpha = _ring(graph, list(group), efficiency)
    direct_beta, direct_alpha = _direct(graph, list(group), efficiency)
    tree_beta, depth, tree_alpha = _tree(graph, list(group), efficiency)
    launch = LAUNCH_LATENCY_S
    options = [
        ("ring", AlphaBeta(launch + 2 * (n - 1) * ring_alpha, 2 * (n - 1) / n * ring_beta)),
        ("direct", AlphaBeta(launch + 2 * direct_alpha, 2 * direct_beta / n)),
        ("tree", AlphaBeta(launch + 2 * depth * tree_alpha, 2 * tree_beta)),
    ]
    if _in_network_reduction(graph, group):
        uplink = min(_bandwidth_bytes_per_s(graph, (gpu, next(iter(graph.neighbors(gpu))))) for gpu in group)
        options.append(("nvls", AlphaBeta(launch + 2 * direct_alpha,
                                          (n - 1) / n / (uplink * efficiency * NVLS_EFFICIENCY))))
    servers = _servers(graph, group)
    if len(servers) > 1 and len({len(s) for s in servers}) == 1 and len(servers[0]) > 1:
        per_server = len(servers[0])
        inner = [_half_collective(graph, tuple(s), efficiency) for s in servers]
        inner_best = max(inner, key=lambda c: c.time_s(1 << 24))
        across = [tuple(s[rank] for s in servers) for rank in range(per_server)]
        # all ranks' cross-server rings run at once: count their shared links together
        pairs = [(a, b) for ring in across for a, b in zip(ring, ring[1:] + ring[:1])]
        cross_beta = _bottleneck_s_per_byte(graph, pairs, efficiency)
        cross_alpha = max(_path_latency_s(graph, a, b) for a, b in pairs)
        m = len(servers)
        for inner_name, inner_ab in inner_best.options:
            options.append((f"hierarchical-{inner_name}", AlphaBeta(      # one launch, three phases
                launch + 2 * (inner_ab.alpha_s - launch) + 2 * (m - 1) * cross_alpha,
                2 * inner_ab.beta_s_per_byte + 2 * (m - 1) / m * cross_beta / per_server)))
    return CollectiveCost(tuple(options))


def all_to_all(graph: nx.Graph, group, efficiency: float = 1.0) -> CollectiveCost:
    """Each GPU sends S bytes in total, S/(n-1) to each peer, all at once (MoE dispatch or combine)."""
    group = _check_group(graph, group)
    n = len(group)
    if n <= 1:
        return CollectiveCost(())
    beta, alpha = _direct(graph, list(group), efficiency)
    return CollectiveCost((("direct", AlphaBeta(LAUNCH_LATENCY_S + alpha, beta / (n - 1))),))


def send_recv(graph: nx.Graph, source: str, target: str, efficiency: float = 1.0) -> CollectiveCost:
    """Point-to-point transfer: launch + route latency + bytes / slowest link on the route."""
    _check_group(graph, (source, target))
    if source == target:
        return CollectiveCost(())
    beta = _bottleneck_s_per_byte(graph, [(source, target)], efficiency)
    return CollectiveCost((("p2p", AlphaBeta(LAUNCH_LATENCY_S + _path_latency_s(graph, source, target), beta)),))


def all_reduce_time_s(graph, group, message_bytes, algorithm="auto", efficiency=1.0) -> float:
    cost = all_reduce(graph, group, efficiency)
    return cost.time_s(message_bytes) if algorithm == "auto" else cost.get(algorithm).time_s(message_bytes)


def all_to_all_time_s(graph, group, message_bytes, efficiency=1.0) -> float:
    return all_to_all(graph, group, efficiency).time_s(message_bytes)
