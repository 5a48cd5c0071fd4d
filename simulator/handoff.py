"""Disaggregated serving's KV hand-off: a prefilled prompt's KV streams from its prefill engine to a
decode engine, as rank-to-rank flows on the topology sharing links with every other transfer in flight
(`topologies.FlowNetwork`), or, with a fixed bandwidth given, over a link of that bandwidth per replica
(`fixed_bandwidth_network`): hand-offs a prefill replica sends at once (from any of its pipeline stages'
engines), or a decode replica receives at once, share its link."""
from __future__ import annotations

import networkx as nx

from simulator.drop_reasons import HANDOFF_UNREACHABLE, NO_DECODE_ENGINE
from simulator.router import ROUTERS
from topologies import FlowNetwork, NetworkError


def fixed_bandwidth_network(env, replicas, gb_per_s: float, latency_s: float) -> FlowNetwork:
    """Each replica's hand-off link (`replica{r}` to a shared fabric) at `gb_per_s` each way, the fixed
    latency paid once on the way out: concurrent hand-offs share a link max-min fairly (1 GB/s moves 558
    hand-offs of 655 MB in no less than 366 s; before, each took the whole 1 GB/s and the run ended at
    35 s). Per replica, not per engine: a replica's pipeline stages are engines of one set of GPUs."""
    graph = nx.Graph()
    for replica in sorted(set(replicas)):
        graph.add_edge(f"replica{replica}", "fabric", bandwidth_gb_per_s=gb_per_s, latency_us=latency_s * 1e6 / 2)
    return FlowNetwork(env, graph)


class KVHandoff:
    def __init__(self, cluster):
        config, tp = cluster.config, cluster.config.plan.tp
        self.cluster, self.env, self.table = cluster, cluster.env, cluster.table
        self.router = ROUTERS.get_class(config.router, "router")(cluster.rng, cluster.table)
        self.fixed = (fixed_bandwidth_network(self.env, cluster.replica_of, config.kv_transfer_gb_per_s,
                                              config.kv_transfer_latency_s) if config.kv_transfer_gb_per_s else None)
        # a hand-off moves every rank's shard (replicated KV heads once per rank that holds them)
        kv = config.precision.kv_cache
        self.bytes_per_token = config.model.kv_bytes_per_token(kv, tp) * tp
        self.window_bytes = config.model.kv_bytes_per_sequence_window(kv, tp) * tp

    def start(self, rid: int, source) -> None:
        """`source` finished `rid`'s prompt: hold its KV there while it streams to a decode engine."""
        context = self.table.input_tokens[rid] + self.table.generated[rid]
        blocks = source.kv.for_context(context + 1)
        source.hold_for_handoff(blocks)
        self.env.process(self._transfer(rid, source, blocks, context))

    def _transfer(self, rid: int, source, blocks: int, context: int):
        """Failures on the way: if the decode engine dies before the KV lands, the KV goes to another live
        one (sent again); if the prefill engine dies first, its KV is lost and the request starts over at
        a prefill engine (keeping the tokens it streamed, as after any failure); with no decode engine
        left, or none the network still reaches, the request is dropped saying which."""
        cluster, table = self.cluster, self.table
        nbytes = self.bytes_per_token * context + self.window_bytes
        unreachable: set[int] = set()
        while True:
            if not source.alive:
                source.release_reserved(blocks)
                table.engine[rid] = -1
                cluster.route(rid)
                return
            target = self._pick_decode(rid, unreachable)
            if target is None:
                source.release_reserved(blocks)
                alive = any(e.alive for e in cluster.decode_pool)
                cluster.drop(rid, HANDOFF_UNREACHABLE if alive else NO_DECODE_ENGINE)
                cluster.note_down()
                return
            landed = yield from self._send(source, target, nbytes)
            if landed is None:
                unreachable.add(target.index)
            elif landed:
                break
        source.release_reserved(blocks)
        now = self.env.now
        if rid not in cluster.delivered:       # a retry after a decode failure keeps its first token's time
            cluster.delivered.add(rid)
            table.first_token_s[rid] = now     # the first token reaches the user with its KV
        if table.generated[rid] >= table.output_tokens[rid]:
            table.finish_s[rid] = now
            cluster.finished(rid, source)
            return
        target.receive_handoff(rid)

    def engine_failed(self, index: int) -> None:
        """An engine failed: its replica's fixed hand-off link goes with it, so what streams to or from it
        stops sharing that link (a dead prefill engine's queued KV kept a decode link busy: 123.7 s for a
        run of 88)."""
        node = f"replica{self.cluster.replica_of[index]}"
        if self.fixed is not None and node in self.fixed.graph:
            self.fixed.fail_node(node)

    def _pick_decode(self, rid: int, excluded: set):
        pool = self.cluster.decode_pool
        if excluded:
            pool = [e for e in pool if e.index not in excluded]
        index = self.router.choose(pool, rid)
        return None if index is None else pool[index]

    def _send(self, source, target, nbytes: float):
        """Move one hand-off's KV: True when it landed with both engines still alive, False when either
        died on the way, None when the network has no route between them any more."""
        if self.fixed is not None:
            replica_of = self.cluster.replica_of
            try:
                yield self.fixed.transfer(f"replica{replica_of[source.index]}", f"replica{replica_of[target.index]}",
                                          nbytes)
            except NetworkError:      # an end's replica failed on the way: its link went with it
                return False if not (source.alive and target.alive) else None
            return source.alive and target.alive
        cluster = self.cluster
        senders = cluster.placement.gpus(cluster.replica_of[source.index])
        receivers = cluster.placement.gpus(cluster.replica_of[target.index])
        flows = [self.env.process(self._flow(a, b, nbytes / len(senders))) for a, b in zip(senders, receivers)]
        done = yield self.env.all_of(flows)
        if not (source.alive and target.alive):
            return False
        return True if all(done.values()) else None

    def _flow(self, a: str, b: str, nbytes: float):
        """One rank's share of a hand-off; False when the network loses its route. (Each flow catches its
        own failure: a condition over several failing flows would leave all but the first unhandled.)"""
        try:
            yield self.cluster.network.transfer(a, b, nbytes, spread=True)
        except NetworkError:
            return False
        return True
