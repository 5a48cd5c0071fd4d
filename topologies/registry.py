"""Named topologies from `topologies/catalog/topologies.toml` or a user TOML file, with what-if overrides.

A catalog entry names a builder and some parameters; the rest come from the GPU (its server kind,
scale-up bandwidth, NIC speed) and the server count from the GPU count, so `--topology rail-800g` means
"this GPU's servers on an 800G rail fabric".
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

import networkx as nx

from simulator.catalog_io import names_a_file, packaged_toml, read_toml
from simulator.errors import ConfigError, excerpt, reject_unknown_keys, require_number
from topologies.builders import BUILDERS, cluster, validate_graph

CLUSTER_PARAMETERS = tuple(p for p in inspect.signature(cluster).parameters if p != "name")
# whole-number parameters and their upper limits (the builders check the rest of their ranges)
COUNTS = {"servers": 100_000, "spines": 100_000, "servers_per_leaf": 100_000, "gpus_per_server": 4096,
          "scaleup_links": 4096, "gpus": 4096}


def topology_catalog() -> dict:
    return packaged_toml("topologies.catalog", "topologies.toml")


def list_topologies() -> list[str]:
    return list(topology_catalog())


def describe_topologies() -> list[dict]:
    rows = []
    for name, entry in topology_catalog().items():
        rows.append({"name": name, "builder": entry.get("builder", "cluster"),
                     "server_kind": entry.get("server_kind", "from GPU"),
                     "scaleup_gb_per_s": entry.get("scaleup_gb_per_s", "from GPU"),
                     "nic_gbps": entry.get("nic_gbps", "from GPU"),
                     "oversubscription": entry.get("oversubscription", 1.0),
                     "fabric": entry.get("fabric", "rail"), "description": entry.get("description", "")})
    return rows


def gpu_defaults(gpu, gpus: int) -> dict:
    """Cluster-builder parameters implied by a GPUSpec and a GPU count."""
    return {"server_kind": gpu.scaleup, "gpus_per_server": gpu.gpus_per_server,
            "scaleup_gb_per_s": gpu.scaleup_gb_per_s, "scaleup_links": gpu.scaleup_links,
            "nic_gbps": gpu.nic_gbps, "servers": max(1, math.ceil(gpus / gpu.gpus_per_server))}


def _explicit_graph(where: str, data: dict) -> nx.Graph:
    reject_unknown_keys(where, data, ("node", "edge", "name", "description", "gpus_per_server"))
    graph = nx.Graph(name=data.get("name", where), gpus_per_server=data.get("gpus_per_server", 8))
    for i, node in enumerate(data.get("node", [])):
        reject_unknown_keys(f"{where}: node {i + 1}", node, ("id", "kind", "index", "server", "local_rank"))
        if "id" not in node:
            raise ConfigError(f"{where}: node {i + 1}: missing key 'id'")
        if str(node["id"]) in graph:
            raise ConfigError(f"{where}: node {i + 1}: id {str(node['id'])!r} is declared twice")
        graph.add_node(str(node["id"]), **{k: v for k, v in node.items() if k != "id"})
    for i, edge in enumerate(data.get("edge", [])):
        reject_unknown_keys(f"{where}: edge {i + 1}", edge, ("a", "b", "bandwidth_gb_per_s", "latency_us"))
        for key in ("a", "b"):
            if str(edge.get(key)) not in graph:
                raise ConfigError(f"{where}: edge {i + 1}: {key} = {edge.get(key)!r} is not a declared node")
        graph.add_edge(str(edge["a"]), str(edge["b"]), bandwidth_gb_per_s=edge.get("bandwidth_gb_per_s"),
                       latency_us=edge.get("latency_us", 0.0))
    return validate_graph(graph, where)


def builder_parameters(builder) -> tuple[str, ...]:
    """The parameters a topology builder takes from a catalog entry or an override."""
    return tuple(p for p in inspect.signature(builder).parameters if p not in ("graph", "name"))


def override_names() -> list[str]:
    """Every parameter some builder takes: what `topology.KEY` overrides may name."""
    return sorted({name for builder in BUILDERS.values() for name in builder_parameters(builder)})


def load_topology(name_or_path: str | None = None, gpu=None, gpus: int | None = None,
                  overrides: dict | None = None) -> nx.Graph:
    """Build a topology by catalog name or from a TOML file, filling unset parameters from `gpu` and
    `gpus`, then applying `overrides` (any cluster-builder parameter, e.g. {"nic_gbps": 200})."""
    if name_or_path is not None and not str(name_or_path).strip():
        raise ConfigError("`topology`: an empty name; give a catalog name (infersim catalog topologies lists them), "
                          "a TOML path or auto")
    name_or_path = name_or_path or "auto"
    overrides = dict(overrides or {})
    catalog = topology_catalog()
    if name_or_path in catalog:
        entry, where = dict(catalog[name_or_path]), f"topology {name_or_path}"
    elif name_or_path.endswith(".toml") or names_a_file(name_or_path):
        data = read_toml(name_or_path)
        where = str(name_or_path)
        if "edge" in data or "node" in data:
            if overrides:
                raise ConfigError(f"{where}: an explicit [[edge]] graph takes no overrides "
                                  f"({', '.join(overrides)}); edit the file")
            return _explicit_graph(where, data)
        tables = [key for key, value in data.items() if isinstance(value, dict)]
        if tables:
            raise ConfigError(f"{where}: [{tables[0]}] is the catalog's shape (topologies/catalog/topologies.toml); "
                              "a topology file holds one topology, its keys at the top level: drop the "
                              f"[{tables[0]}] line")
        entry = data
    else:
        raise ConfigError(f"`topology`: unknown topology {excerpt(name_or_path, 60)}; known: {', '.join(catalog)} "
                          "or a TOML path")
    builder_name = entry.pop("builder", "cluster")
    entry.pop("description", None)
    if builder_name not in BUILDERS:
        raise ConfigError(f"{where}: builder {builder_name!r} is not one of {', '.join(BUILDERS)}")
    builder = BUILDERS[builder_name]
    allowed = builder_parameters(builder)
    reject_unknown_keys(where, entry, allowed)
    reject_unknown_keys("`set_values` topology", overrides, allowed)
    params = {}
    if builder is cluster and gpu is not None:
        params.update(gpu_defaults(gpu, gpus or gpu.gpus_per_server))
    params.update(entry)
    params.update(overrides)
    # Counts must be whole numbers (a `set_values` value arrives as a float): 4.0 -> 4, 2.5 -> an error. They are
    # checked here, before the server count is derived from them (a string or a zero would otherwise
    # fail inside that arithmetic instead of naming the field).
    signature = inspect.signature(builder).parameters
    for key, value in list(params.items()):
        counted = key in signature and isinstance(signature[key].default, int) \
            and not isinstance(signature[key].default, bool)
        if counted or key in COUNTS:
            if value is None and key == "spines":
                continue
            low = 0 if key in signature and signature[key].default == 0 else 1
            params[key] = int(require_number(f"{where}: {key}", value, low=low, high=COUNTS.get(key, 1_000_000),
                                             integer=True))
    if builder is cluster and gpus is not None:
        needed = math.ceil(gpus / params.get("gpus_per_server", 8))
        if "servers" in entry or "servers" in overrides:
            if params["servers"] < needed:
                raise ConfigError(f"{where}: servers = {params['servers']} of {params.get('gpus_per_server', 8)} "
                                  f"GPUs hold fewer than the {gpus} GPUs asked for (needs {needed})")
        elif params.get("servers", 1) < needed:
            params["servers"] = needed
    try:
        graph = builder(**params)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    # a what-if's overrides are part of the name results print (`rail-800g` run at 400G said rail-800g)
    changed = ", ".join(f"{key}={value:g}" if isinstance(value, (int, float)) else f"{key}={value}"
                        for key, value in sorted(overrides.items()))
    graph.graph["name"] = f"{name_or_path} with {changed}" if changed else name_or_path
    return validate_graph(graph, where)


def describe_graph(graph: nx.Graph, gpus: int | None = None) -> tuple[list[dict], list[dict]]:
    """A built topology's nodes and links as rows, each with the name a failure injection gives it
    (`gpu:INDEX@T` for a GPU, `link:A-B@T` for a link; T in simulated seconds). With `gpus`, the GPUs of
    the last server beyond the cluster's are idle slots: no failure names them (nor their links)."""
    def idle(node) -> bool:
        data = graph.nodes[node]
        return gpus is not None and data.get("kind") == "gpu" and data.get("index", 0) >= gpus

    def order(node):
        # GPUs, NICs, then switches; within a kind by name with its number read as a number (nic2 < nic10)
        text = str(node)
        stem = text.rstrip("0123456789")
        number = int(text[len(stem):]) if len(stem) < len(text) else -1
        return ({"gpu": 0, "nic": 1}.get(graph.nodes[node].get("kind"), 2), stem, number, text)
    nodes = []
    for node in sorted(graph.nodes, key=order):
        data = graph.nodes[node]
        nodes.append({"node": node, "kind": "gpu (idle slot)" if idle(node) else data.get("kind"),
                      "server": data.get("server", ""),
                      "fail_as": f"gpu:{data['index']}@T" if data.get("kind") == "gpu" and not idle(node) else ""})
    rank = {node: i for i, node in enumerate(sorted(graph.nodes, key=order))}
    links = []
    for a, b, data in sorted(graph.edges(data=True), key=lambda e: (min(rank[e[0]], rank[e[1]]),
                                                                      max(rank[e[0]], rank[e[1]]))):
        a, b = (a, b) if rank[a] <= rank[b] else (b, a)
        links.append({"link": f"{a}-{b}", "bandwidth_gb_per_s": data.get("bandwidth_gb_per_s"),
                      "latency_us": data.get("latency_us", 0.0),
                      "fail_as": "" if idle(a) or idle(b) else f"link:{a}-{b}@T"})
    return nodes, links
