"""Flow-level network: concurrent transfers share links max-min fairly, re-solved whenever a flow
starts or ends, as SimPy events (SimPy owns the clock; this only schedules completions on it).

Each direction of each edge is a resource of `bandwidth_gb_per_s`. A flow follows its hop-count
shortest route (the one a per-flow ECMP hash picks, or, for a transfer `spread` over many queue pairs,
an equal share on every equal-cost route, as collectives are priced), pays the route's latency once,
then moves bytes at its fair-share rate.
"""
from __future__ import annotations

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
        routes = self._routes(source, target) if spread else (self._route(source, target),)
        latency_s = sum(self.graph.edges[e].get("latency_us", 0.0) for e in routes[0]) * 1e-6
        if latency_s:
            yield self.env.timeout(latency_s)
        self._advance()
        done = []
        for edges in routes:
            done.append(self.env.event())
            flow = _Flow(next(self._ids), (source, target), edges, nbytes / len(routes), done[-1])
            self.flows[flow.id] = flow
        self._resolve()
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

    def _advance(self) -> None:
        """Move every flow's bytes forward to now at its current rate."""
        elapsed = self.env.now - self._last_update
        if elapsed > 0:
            for flow in self.flows.values():
                moved = min(flow.remaining, flow.rate * elapsed)
                flow.remaining -= moved
                self.bytes_delivered += moved
        self._last_update = self.env.now

    def _resolve(self) -> None:
        """Max-min fair rates by progressive filling, then schedule the next completion."""
        capacity = {}
        users: dict = {}
        for flow in self.flows.values():
            flow.rate = 0.0
            for edge in flow.edges:
                capacity.setdefault(edge, self.graph.edges[edge]["bandwidth_gb_per_s"] * 1e9)
                users.setdefault(edge, set()).add(flow.id)
        unfixed = set(self.flows)
        while unfixed:
            # the tightest link: least capacity left per unfixed flow crossing it
            share, tight = None, None
            for edge, ids in users.items():
                active = ids & unfixed
                if active:
                    per_flow = capacity[edge] / len(active)
                    if share is None or per_flow < share:
                        share, tight = per_flow, edge
            if tight is None:
                break
            for flow_id in list(users[tight] & unfixed):
                flow = self.flows[flow_id]
                flow.rate = share
                unfixed.discard(flow_id)
                for edge in flow.edges:
                    capacity[edge] -= share
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
            del self.flows[flow.id]
            flow.done.succeed()
        self._resolve()

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
            try:
                flow.edges = self._route(*flow.endpoints)
            except NetworkError as exc:
                del self.flows[flow.id]
                flow.done.fail(exc)
        self._resolve()
