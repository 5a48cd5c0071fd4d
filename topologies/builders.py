"""Topology builders: plain functions returning a `networkx.Graph` of GPUs, NICs and switches.

Edges are full duplex: `bandwidth_gb_per_s` is the bandwidth in EACH direction (GB/s = 1e9 bytes/s) and
`latency_us` the one-hop latency. Vendor scale-up figures are bidirectional per GPU (H100 NVLink
900 GB/s = 450 GB/s each way; MI355X Infinity Fabric 7 links x 153.6 GB/s = 76.8 GB/s each way per
link), so builders halve them. Node ids: `gpu{i}` (global index i), `nic{i}`, `nvswitch{s}`, `leaf{k}`,
`spine{k}`; every node has `kind` (gpu|nic|switch), GPUs also `index` and `server`.
"""
from __future__ import annotations

import networkx as nx

from simulator.errors import ConfigError, require_choice, require_number
from simulator.hardware import check_nic_gbps
from simulator.registry import Registry

BUILDERS = Registry("topology builder")     # a topology file's `builder = NAME`; `infersim catalog extensions`

SERVER_KINDS = ("nvswitch", "mesh", "nvl72")
FABRICS = ("rail", "fat-tree")
NVLINK_LATENCY_US = 0.5
MESH_LATENCY_US = 0.7
NIC_LATENCY_US = 2.0
SWITCH_LATENCY_US = 0.6


def _new_graph(name: str, gpus_per_server: int) -> nx.Graph:
    graph = nx.Graph(name=name, gpus_per_server=gpus_per_server)
    return graph


def _add_gpus(graph: nx.Graph, first_gpu: int, gpus: int, server: int) -> list[str]:
    names = []
    for local in range(gpus):
        index = first_gpu + local
        name = f"gpu{index}"
        graph.add_node(name, kind="gpu", index=index, server=server, local_rank=local)
        names.append(name)
    return names


@BUILDERS.register(name="nvswitch_server")
def nvswitch_server(gpus: int = 8, nvlink_gb_per_s: float = 450.0, latency_us: float = NVLINK_LATENCY_US,
                    server: int = 0, first_gpu: int = 0, graph: nx.Graph | None = None,
                    in_network_reduction: bool = True) -> nx.Graph:
    """GPUs each with one edge to an NVSwitch node: any GPU can send at full NVLink bandwidth to any other.
    `in_network_reduction`: the switch reduces all-reduce traffic itself (NVLink SHARP, third-generation
    NVSwitch on H100 and later).

    >>> g = nvswitch_server(8, 450.0)
    >>> g.number_of_nodes(), g.number_of_edges()
    (9, 8)
    """
    require_number("gpus", gpus, low=1, high=4096, integer=True)
    require_number("nvlink_gb_per_s", nvlink_gb_per_s, low=0, low_inclusive=False, high=1e6)
    require_number("latency_us", latency_us, low=0, high=1e6)
    graph = graph if graph is not None else _new_graph("nvswitch-server", gpus)
    switch = f"nvswitch{server}"
    graph.add_node(switch, kind="switch", server=server, in_network_reduction=bool(in_network_reduction))
    for name in _add_gpus(graph, first_gpu, gpus, server):
        graph.add_edge(name, switch, bandwidth_gb_per_s=float(nvlink_gb_per_s), latency_us=float(latency_us))
    return graph


@BUILDERS.register(name="mesh_server")
def mesh_server(gpus: int = 8, link_gb_per_s: float = 76.8, latency_us: float = MESH_LATENCY_US,
                server: int = 0, first_gpu: int = 0, graph: nx.Graph | None = None) -> nx.Graph:
    """AMD Infinity Fabric full mesh: one direct link per GPU pair (a ring sees one link's bandwidth).

    >>> mesh_server(8).number_of_edges()
    28
    """
    require_number("gpus", gpus, low=1, high=64, integer=True)
    require_number("link_gb_per_s", link_gb_per_s, low=0, low_inclusive=False, high=1e6)
    require_number("latency_us", latency_us, low=0, high=1e6)
    graph = graph if graph is not None else _new_graph("mesh-server", gpus)
    names = _add_gpus(graph, first_gpu, gpus, server)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            graph.add_edge(a, b, bandwidth_gb_per_s=float(link_gb_per_s), latency_us=float(latency_us))
    return graph


@BUILDERS.register(name="nvl72")
def nvl72(gpus: int = 72, nvlink_gb_per_s: float = 900.0, latency_us: float = NVLINK_LATENCY_US,
          server: int = 0, first_gpu: int = 0, graph: nx.Graph | None = None) -> nx.Graph:
    """One NVLink domain of up to 72 GPUs. The 18 NVLink switch trays act as one non-blocking switch, so
    they are modelled as one switch node: every GPU reaches every other at its full NVLink bandwidth."""
    graph = nvswitch_server(gpus, nvlink_gb_per_s, latency_us, server, first_gpu, graph)
    graph.graph["name"] = "nvl72"
    return graph


def check_oversubscription(where: str, value) -> float:
    return require_number(where, value, low=1, high=1000)


@BUILDERS.register(name="cluster")
def cluster(servers: int = 1, server_kind: str = "nvswitch", gpus_per_server: int = 8,
            scaleup_gb_per_s: float = 900.0, scaleup_links: int = 0, nic_gbps: float = 400.0,
            oversubscription: float = 1.0, fabric: str = "rail", servers_per_leaf: int = 4,
            spines: int | None = None, nic_latency_us: float = NIC_LATENCY_US,
            switch_latency_us: float = SWITCH_LATENCY_US, name: str = "cluster") -> nx.Graph:
    """Servers joined by a scale-out fabric, one NIC per GPU.

    server_kind: nvswitch | mesh | nvl72; scaleup_gb_per_s is the datasheet's bidirectional per-GPU figure
    (a mesh divides it over scaleup_links links). nic_gbps: NIC line rate in Gb/s (400 -> 50 GB/s each way).
    fabric "rail": rail-optimised leaf-spine, the NIC of local rank r on leaf r, so same-rank GPUs of all
    servers are one switch apart; "fat-tree": `servers_per_leaf` servers per leaf. Leaf uplink capacity =
    downlink capacity / oversubscription, spread over the spines.
    """
    require_number("servers", servers, low=1, high=100_000, integer=True)
    require_choice("server_kind", server_kind, SERVER_KINDS)
    require_number("gpus_per_server", gpus_per_server, low=1, high=4096, integer=True)
    require_number("scaleup_gb_per_s", scaleup_gb_per_s, low=0, low_inclusive=False, high=1e6)
    check_nic_gbps("nic_gbps", nic_gbps)
    check_oversubscription("oversubscription", oversubscription)
    require_choice("fabric", fabric, FABRICS)
    require_number("servers_per_leaf", servers_per_leaf, low=1, high=100_000, integer=True)
    if spines is not None:
        require_number("spines", spines, low=1, high=100_000, integer=True)
    require_number("nic_latency_us", nic_latency_us, low=0, high=1e6)
    require_number("switch_latency_us", switch_latency_us, low=0, high=1e6)
    graph = _new_graph(name, gpus_per_server)
    graph.graph.update(servers=servers, server_kind=server_kind, nic_gbps=nic_gbps,
                       oversubscription=oversubscription, fabric=fabric)
    per_direction = scaleup_gb_per_s / 2
    for server in range(servers):
        first = server * gpus_per_server
        if server_kind == "mesh":
            links = scaleup_links or gpus_per_server - 1
            require_number("scaleup_links", links, low=1, high=4096, integer=True)
            mesh_server(gpus_per_server, per_direction / links, server=server, first_gpu=first, graph=graph)
        else:
            nvswitch_server(gpus_per_server, per_direction, server=server, first_gpu=first, graph=graph)
    if servers == 1:
        return graph
    nic_gb_per_s = nic_gbps / 8
    total = servers * gpus_per_server
    leaf_of = {}
    for index in range(total):
        server, local = divmod(index, gpus_per_server)
        nic = f"nic{index}"
        graph.add_node(nic, kind="nic", server=server)
        graph.add_edge(f"gpu{index}", nic, bandwidth_gb_per_s=nic_gb_per_s, latency_us=nic_latency_us / 2)
        leaf_key = local if fabric == "rail" else server // servers_per_leaf
        leaf = f"leaf{leaf_key}"
        if leaf not in graph:
            graph.add_node(leaf, kind="switch")
        graph.add_edge(nic, leaf, bandwidth_gb_per_s=nic_gb_per_s, latency_us=nic_latency_us / 2 + switch_latency_us)
        leaf_of.setdefault(leaf, []).append(index)
    leaves = sorted(leaf_of, key=lambda n: int(n[4:]))
    if len(leaves) == 1:
        return graph
    spine_count = spines or max(2, min(len(leaves), 16))
    for k in range(spine_count):
        graph.add_node(f"spine{k}", kind="switch")
    for leaf in leaves:
        uplink_total = len(leaf_of[leaf]) * nic_gb_per_s / oversubscription
        for k in range(spine_count):
            graph.add_edge(leaf, f"spine{k}", bandwidth_gb_per_s=uplink_total / spine_count,
                           latency_us=switch_latency_us)
    return graph


def gpus_of(graph: nx.Graph) -> list[str]:
    """GPU node ids in index order."""
    gpus = [n for n, data in graph.nodes(data=True) if data.get("kind") == "gpu"]
    return sorted(gpus, key=lambda n: graph.nodes[n]["index"])


def validate_graph(graph: nx.Graph, where: str = "topology") -> nx.Graph:
    """Every edge needs a positive finite bandwidth and a non-negative latency; every node a kind."""
    for node, data in graph.nodes(data=True):
        if data.get("kind") not in ("gpu", "nic", "switch"):
            raise ConfigError(f"{where}: node {node!r} needs kind gpu, nic or switch")
    for a, b, data in graph.edges(data=True):
        require_number(f"{where}: edge {a}-{b} bandwidth_gb_per_s", data.get("bandwidth_gb_per_s"), low=0,
                       low_inclusive=False, high=1e7)
        require_number(f"{where}: edge {a}-{b} latency_us", data.get("latency_us", 0.0), low=0, high=1e7)
    holder = {}
    for node, data in graph.nodes(data=True):
        if data.get("kind") != "gpu":
            continue
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ConfigError(f"{where}: GPU {node!r} needs an index, a whole number >= 0")
        if index in holder:
            raise ConfigError(f"{where}: GPUs {holder[index]!r} and {node!r} both have index {index}; each GPU "
                              "its own (placement and `fail` count GPUs by it)")
        holder[index] = node
    if not holder:
        raise ConfigError(f"{where}: no GPU nodes")
    return graph
