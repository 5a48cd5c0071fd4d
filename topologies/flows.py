"""Flow-level network: concurrent transfers share links max-min fairly, re-solved whenever a flow
starts or ends, as SimPy events (SimPy owns the clock; this only schedules completions on it). Only the
flows linked to the one that started or ended through shared links are re-solved: the others' fair
shares cannot change.

Each direction of each edge is a resource of `bandwidth_gb_per_s`. A flow follows its hop-count
shortest route (the one a per-flow ECMP hash picks, or, for a transfer `spread` over many queue pairs,
an equal share on every equal-cost route, as collectives are priced), pays the route's latency once,
then moves bytes at its fair-share rate.
"""
from __future__ import annotations

import heapq
import itertools

import networkx as nx
import simpy

from simulator.errors import ConfigError
from topologies import collectives


class NetworkError(ConfigError):
    """A transfer has no route (a link or node it needed went down)."""


class _Flow:
    __slots__ = ("id", "endpoints", "edges", "remaining", "rate", "done")

    def __init__(self, flow_id, endpoints, edges, nbytes, done):
        self.id, self.endpoints, self.edges = flow_id, endpoints, edges
        self.remaining, self.rate, self.done = float(nbytes), 0.0, done


class FlowNetwork:
    def __init__(self, env: simpy.Environment, graph: nx.Graph):
        self.env = env
        self.graph = graph
        self.flows: dict[int, _Flow] = {}
        self._on_edge: dict[tuple, dict[int, _Flow]] = {}     # each directed link's flows
        self._bytes_per_s: dict[tuple, float] = {}            # each directed link's bandwidth, looked up once
        self._ids = itertools.count()
        self._last_update = env.now
        self._generation = 0
        self.bytes_delivered = 0.0

    @property
    def active_flows(self) -> int:
        return len(self.flows)

    def transfer(self, source: str, target: str, nbytes: float, spread: bool = False) -> simpy.Process:
        """A process that ends when `nbytes` have crossed from `source` to `target`; `spread`: in equal
        shares over every equal-cost route (an RDMA transfer on many queue pairs: a cross-rail KV hand-off
        between two 8-GPU servers took one 12.5 GB/s leaf-to-spine link, a quarter of its 400G NIC)."""
        return self.env.process(self._transfer(source, target, nbytes, spread))

    def _transfer(self, source, target, nbytes, spread=False):
        if source == target or nbytes <= 0:
            return
        routes = self._routes_for(source, target, spread)
        latency_s = sum(self.graph.edges[e].get("latency_us", 0.0) for e in routes[0]) * 1e-6
        if latency_s:
            yield self.env.timeout(latency_s)
            if not all(self.graph.has_edge(*edge) for edges in routes for edge in edges):
                # a link failed while the first bytes were on their way: route again
                routes = self._routes_for(source, target, spread)
        self._advance()
        done = []
        for edges in routes:
            done.append(self.env.event())
            self._add(_Flow(next(self._ids), (source, target), edges, nbytes / len(routes), done[-1]))
        self._resolve([edge for edges in routes for edge in edges])
        if len(done) == 1:
            yield done[0]
            return
        # each share catches its own failure (a condition over several failing events leaves all but the
        # first unhandled); the transfer fails if any share lost its route
        landed = yield self.env.all_of([self.env.process(self._share(event)) for event in done])
        if not all(landed.values()):
            raise NetworkError(f"network: no route from {source} to {target}")

    @staticmethod
    def _share(event):
        try:
            yield event
        except NetworkError:
            return False
        return True

    def _routes_for(self, source, target, spread: bool) -> tuple:
        """The routes a transfer takes: every equal-cost one (`spread`), else the hashed one."""
        return self._routes(source, target) if spread else (self._route(source, target),)

    def _route(self, source, target):
        try:
            return collectives.route(self.graph, source, target)
        except ConfigError:
            raise NetworkError(f"network: no route from {source} to {target}") from None

    def _routes(self, source, target) -> tuple:
        """The equal-cost routes a spread transfer shares out, less those a peer GPU relays (NVLink to
        another GPU's NIC, as NCCL's PXN does for collectives) where others exist: one transfer leaves by
        its own GPU's NIC, so a cross-rail hand-off runs at that NIC's rate, as a same-rail one does (with
        peer relays it came out 10% above it)."""
        try:
            routes = collectives.paths(self.graph, source, target)
        except ConfigError:
            raise NetworkError(f"network: no route from {source} to {target}") from None
        nodes = self.graph.nodes
        direct = tuple(route for route in routes if not any(nodes[a].get("kind") == "gpu" for a, _ in route[1:]))
        return direct or routes

    def _add(self, flow: _Flow) -> None:
        self.flows[flow.id] = flow
        for edge in flow.edges:
            self._on_edge.setdefault(edge, {})[flow.id] = flow

    def _remove(self, flow: _Flow) -> None:
        del self.flows[flow.id]
        for edge in flow.edges:
            sharing = self._on_edge[edge]
            del sharing[flow.id]
            if not sharing:
                del self._on_edge[edge]

    def _linked(self, edges) -> list:
        """The flows that share links, directly or through other flows, with `edges`, in start order."""
        found, frontier, seen = {}, list(edges), set()
        while frontier:
            edge = frontier.pop()
            if edge in seen:
                continue
            seen.add(edge)
            for flow_id, flow in self._on_edge.get(edge, {}).items():
                if flow_id not in found:
                    found[flow_id] = flow
                    frontier.extend(flow.edges)
        return [found[flow_id] for flow_id in sorted(found)]

    def _advance(self) -> None:
        """Move every flow's bytes forward to now at its current rate."""
        elapsed = self.env.now - self._last_update
        if elapsed > 0:
            for flow in self.flows.values():
                moved = min(flow.remaining, flow.rate * elapsed)
                flow.remaining -= moved
                self.bytes_delivered += moved
        self._last_update = self.env.now

    def _resolve(self, edges=None) -> None:
        """Max-min fair rates by progressive filling of the flows linked to `edges` (every flow when
        None), then schedule the next completion. The tightest link (least capacity left per unfixed flow
        crossing it) comes off a heap; fixing flows only raises the other links' shares, so a stale entry
        is pushed back with its current share. (It re-solved every flow, scanning every link for every
        fixed link: 94 of a disaggregated pareto's 184 s at 16 GPUs.)"""
        flows = [self.flows[i] for i in sorted(self.flows)] if edges is None else self._linked(edges)
        capacity, users = {}, {}
        for flow in flows:
            flow.rate = 0.0
            for edge in flow.edges:
                if edge not in users:
                    rate = self._bytes_per_s.get(edge)
                    if rate is None:
                        rate = self._bytes_per_s[edge] = self.graph.edges[edge]["bandwidth_gb_per_s"] * 1e9
                    capacity[edge] = rate
                    users[edge] = []
                users[edge].append(flow)
        unfixed = {edge: len(sharing) for edge, sharing in users.items()}
        order = {edge: i for i, edge in enumerate(users)}
        heap = [(capacity[edge] / unfixed[edge], order[edge], edge) for edge in users]
        heapq.heapify(heap)
        fixed = set()
        while heap:
            share, _, tight = heapq.heappop(heap)
            if not unfixed[tight]:
                continue
            current = capacity[tight] / unfixed[tight]
            if current != share:
                heapq.heappush(heap, (current, order[tight], tight))
                continue
            for flow in users[tight]:
                if flow.id in fixed:
                    continue
                flow.rate = share
                fixed.add(flow.id)
                for edge in flow.edges:
                    capacity[edge] -= share
                    unfixed[edge] -= 1
        self._generation += 1
        if not self.flows:
            return
        finishing = min(self.flows.values(), key=lambda f: (f.remaining / f.rate if f.rate > 0 else float("inf"), f.id))
        if finishing.rate <= 0:
            return
        delay = finishing.remaining / finishing.rate
        generation = self._generation
        event = self.env.timeout(delay)
        event.callbacks.append(lambda _event: self._on_timer(generation))

    def _on_timer(self, generation) -> None:
        if generation != self._generation:
            return   # rates changed since this completion was scheduled
        self._advance()
        # done when less than a byte or a nanosecond of transfer is left (float rounding of the clock)
        finished = [f for f in self.flows.values() if f.remaining <= max(1.0, f.rate * 1e-9)]
        for flow in finished:
            self.bytes_delivered += flow.remaining
            flow.remaining = 0.0
            self._remove(flow)
            flow.done.succeed()
        self._resolve([edge for flow in finished for edge in flow.edges])

    # ---- failures -------------------------------------------------------------------------------
    def fail_link(self, a: str, b: str) -> None:
        if not self.graph.has_edge(a, b):
            raise ConfigError(f"`fail` link:{a}-{b}: no such link in the topology")
        self._advance()
        self.graph.remove_edge(a, b)
        self._reroute()

    def fail_node(self, node: str) -> None:
        if node not in self.graph:
            raise ConfigError(f"`fail`: no node {node!r} in the topology")
        self._advance()
        self.graph.remove_node(node)
        self._reroute()

    def _reroute(self) -> None:
        """Flows whose route lost a link take a new one; the rest keep theirs (a spread transfer's shares
        all fell onto one hashed route when any link anywhere failed: 12 ms became 50 ms)."""
        collectives.invalidate(self.graph)
        for flow in list(self.flows.values()):
            if all(self.graph.has_edge(*edge) for edge in flow.edges):
                continue
            self._remove(flow)
            try:
                flow.edges = self._route(*flow.endpoints)
            except NetworkError as exc:
                flow.done.fail(exc)
                continue
            self._add(flow)
        self._resolve()
