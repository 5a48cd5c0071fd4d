import networkx as nx
import pytest
import simpy

from simulator.errors import ConfigError
from simulator.hardware import get_gpu
from topologies import (FlowNetwork, NetworkError, all_reduce, all_to_all, cluster, gpus_of, load_topology,
                        mesh_server, nvswitch_server, place, send_recv, servers_spanned)
from topologies.collectives import LAUNCH_LATENCY_S


# ---- builders -------------------------------------------------------------------------------
def test_nvswitch_server_counts_and_bandwidth():
    graph = nvswitch_server(8, 450.0)
    assert graph.number_of_nodes() == 9 and graph.number_of_edges() == 8
    assert all(d["bandwidth_gb_per_s"] == 450.0 for _, _, d in graph.edges(data=True))


def test_mesh_server_is_a_full_mesh():
    graph = mesh_server(8, 76.8)
    assert graph.number_of_edges() == 28
    assert all(graph.has_edge(f"gpu{a}", f"gpu{b}") for a in range(8) for b in range(8) if a != b)


def test_cluster_halves_datasheet_scaleup_and_builds_rails():
    """MI355X: 1,075.2 GB/s bidirectional over 7 links -> 76.8 GB/s per direction per link. Two servers:
    16 NICs at 400 Gb/s = 50 GB/s, 8 rail leaves, leaf uplinks = 2 x 50 GB/s spread over the spines."""
    graph = cluster(2, "mesh", 8, 1075.2, scaleup_links=7, nic_gbps=400)
    assert graph.edges["gpu0", "gpu1"]["bandwidth_gb_per_s"] == pytest.approx(76.8)
    nics = [n for n, d in graph.nodes(data=True) if d["kind"] == "nic"]
    leaves = [n for n in graph if n.startswith("leaf")]
    spines = [n for n in graph if n.startswith("spine")]
    assert len(nics) == 16 and len(leaves) == 8 and len(spines) >= 2
    assert graph.edges["nic0", "leaf0"]["bandwidth_gb_per_s"] == 50.0
    assert graph.edges["nic8", "leaf0"]["bandwidth_gb_per_s"] == 50.0   # same rail
    uplinks = sum(graph.edges["leaf0", s]["bandwidth_gb_per_s"] for s in spines)
    assert uplinks == pytest.approx(100.0)
    oversubscribed = cluster(2, "mesh", 8, 1075.2, scaleup_links=7, nic_gbps=400, oversubscription=2)
    assert sum(oversubscribed.edges["leaf0", s]["bandwidth_gb_per_s"] for s in spines) == pytest.approx(50.0)


def test_load_topology_from_catalog_gpu_and_overrides(tmp_path):
    graph = load_topology("auto", get_gpu("b200"), 16, overrides={"nic_gbps": 200})
    assert graph.graph["servers"] == 2 and graph.edges["nic0", "leaf0"]["bandwidth_gb_per_s"] == 25.0
    with pytest.raises(ConfigError, match="unknown key 'nic_gbs'"):
        load_topology("auto", get_gpu("b200"), 16, overrides={"nic_gbs": 200})
    with pytest.raises(ConfigError, match="oversubscription: 0.5 is out of range"):
        load_topology("auto", get_gpu("b200"), 16, overrides={"oversubscription": 0.5})
    with pytest.raises(ConfigError, match="unknown topology"):
        load_topology("torus")
    path = tmp_path / "two.toml"
    path.write_text('[[node]]\nid = "a"\nkind = "gpu"\nindex = 0\n[[node]]\nid = "b"\nkind = "gpu"\nindex = 1\n'
                    '[[edge]]\na = "a"\nb = "b"\nbandwidth_gb_per_s = 10\nlatency_us = 1\n')
    explicit = load_topology(str(path))
    assert explicit.edges["a", "b"]["bandwidth_gb_per_s"] == 10
    path.write_text('[[node]]\nid = "a"\nkind = "gpu"\nindex = 0\n[[edge]]\na = "a"\nb = "z"\nbandwidth_gb_per_s = 1\n')
    with pytest.raises(ConfigError, match="not a declared node"):
        load_topology(str(path))
    path.write_text('builder = "cluster"\nservers = 2\nnic_gbps = 0\n')
    with pytest.raises(ConfigError, match="nic_gbps: 0 is out of range"):
        load_topology(str(path))


# ---- placement ------------------------------------------------------------------------------
def test_tp8_on_two_servers_stays_inside_each():
    graph = cluster(2, "nvswitch", 8, 900)
    placement = place(graph, tp=8)
    assert len(placement.replicas) == 2
    assert all(servers_spanned(graph, placement.tp_group(r)) == 1 for r in range(2))


def test_tp16_spans_two_servers_and_too_big_errors():
    graph = cluster(2, "nvswitch", 8, 900)
    assert servers_spanned(graph, place(graph, tp=16).tp_group(0)) == 2
    with pytest.raises(ConfigError, match="needs 32 GPUs"):
        place(graph, tp=16, pp=2)
    with pytest.raises(ConfigError, match="multiple of 8"):
        place(graph, tp=12)


def test_tp3_never_straddles_a_server():
    graph = cluster(2, "nvswitch", 8, 900)
    placement = place(graph, tp=3)
    assert len(placement.replicas) == 4 and len(placement.unused) == 4
    assert all(servers_spanned(graph, placement.tp_group(r)) == 1 for r in range(4))


# ---- collectives ----------------------------------------------------------------------------
def test_ring_all_reduce_nvswitch_vs_mesh_by_hand():
    """S = 64 MB on 8 GPUs. Ring: 2 x 7/8 x S / B + 14 steps x (route latency + 3 us launch).
    NVSwitch: B = 450 GB/s, route 2 x 0.5 us -> 0.248889 ms + 14 x 4 us = 0.304889 ms.
    Mesh: a ring uses one 76.8 GB/s link, route 0.7 us -> 1.458333 ms + 14 x 3.7 us = 1.510133 ms.
    Direct on the mesh uses all 7 links: 2 x S/8 / 76.8 GB/s + 2 x 3.7 us = 0.215733 ms."""
    size = 64e6
    switch = nvswitch_server(8, 450.0)
    mesh = mesh_server(8, 76.8)
    ring_switch = all_reduce(switch, gpus_of(switch)).get("ring").time_s(size)
    ring_mesh = all_reduce(mesh, gpus_of(mesh)).get("ring").time_s(size)
    direct_mesh = all_reduce(mesh, gpus_of(mesh)).get("direct").time_s(size)
    assert ring_switch == pytest.approx(2 * 7 / 8 * size / 450e9 + 14 * (1e-6 + LAUNCH_LATENCY_S))
    assert ring_mesh == pytest.approx(2 * 7 / 8 * size / 76.8e9 + 14 * (0.7e-6 + LAUNCH_LATENCY_S))
    assert direct_mesh == pytest.approx(2 * size / 8 / 76.8e9 + 2 * (0.7e-6 + LAUNCH_LATENCY_S))
    assert all_reduce(mesh, gpus_of(mesh)).best(size) == "direct"


def test_cross_server_all_reduce_is_bounded_by_the_nic():
    """tp 16 over two servers: hierarchical beats a flat ring, and shrinking NICs 800G -> 200G slows it."""
    fast = cluster(2, "nvswitch", 8, 900, nic_gbps=800)
    slow = cluster(2, "nvswitch", 8, 900, nic_gbps=200)
    size = 32e6
    fast_cost = all_reduce(fast, gpus_of(fast))
    assert fast_cost.best(size).startswith("hierarchical")
    # cross-server share per GPU: 2 x (1/2) x S/8 = 4 MB at 100 vs 25 GB/s: +0.12 ms on ~0.19 ms
    assert all_reduce(slow, gpus_of(slow)).time_s(size) > 1.5 * fast_cost.time_s(size)


def test_all_to_all_and_send_recv():
    """All-to-all on a mesh: S/(n-1) per link at 76.8 GB/s; send/recv across servers: NIC-bound 50 GB/s."""
    mesh = mesh_server(8, 76.8)
    assert all_to_all(mesh, gpus_of(mesh)).time_s(7e6) == pytest.approx(1e6 / 76.8e9 + 0.7e-6 + LAUNCH_LATENCY_S)
    graph = cluster(2, "nvswitch", 8, 900, nic_gbps=400)
    assert send_recv(graph, "gpu0", "gpu8").time_s(50e9) == pytest.approx(1.0, rel=1e-4)


# ---- flows ----------------------------------------------------------------------------------
def _run_flows(graph, transfers):
    env = simpy.Environment()
    network = FlowNetwork(env, graph)
    finished = {}

    def go(name, source, target, nbytes, start):
        yield env.timeout(start)
        yield network.transfer(source, target, nbytes)
        finished[name] = env.now

    for name, source, target, nbytes, start in transfers:
        env.process(go(name, source, target, nbytes, start))
    env.run()
    return finished, network


def _line(bandwidth=10.0):
    graph = nx.Graph(gpus_per_server=1)
    for i, name in enumerate(("a", "b", "c", "d")):
        graph.add_node(name, kind="gpu", index=i, server=i)
    graph.add_edge("a", "b", bandwidth_gb_per_s=bandwidth, latency_us=0.0)
    graph.add_edge("c", "d", bandwidth_gb_per_s=bandwidth, latency_us=0.0)
    return graph


def test_one_flow_full_rate_two_flows_share():
    """10 GB/s link: one 10 GB flow takes 1 s. Two 10 GB flows share it: 5 GB/s each, both end at 2 s."""
    finished, network = _run_flows(_line(), [("x", "a", "b", 10e9, 0)])
    assert finished["x"] == pytest.approx(1.0)
    finished, network = _run_flows(_line(), [("x", "a", "b", 10e9, 0), ("y", "a", "b", 10e9, 0)])
    assert finished["x"] == pytest.approx(2.0) and finished["y"] == pytest.approx(2.0)
    assert network.bytes_delivered == pytest.approx(20e9)


def test_a_flow_ending_frees_bandwidth():
    """x (10 GB) and y (2.5 GB) share 10 GB/s: y ends at 0.5 s (5 GB/s); x has 7.5 GB left at 10 GB/s: 1.25 s."""
    finished, _ = _run_flows(_line(), [("x", "a", "b", 10e9, 0), ("y", "a", "b", 2.5e9, 0)])
    assert finished["y"] == pytest.approx(0.5) and finished["x"] == pytest.approx(1.25)


def test_disjoint_links_do_not_interfere_and_opposite_directions_are_separate():
    finished, _ = _run_flows(_line(), [("x", "a", "b", 10e9, 0), ("y", "c", "d", 10e9, 0), ("z", "b", "a", 10e9, 0)])
    assert finished == pytest.approx({"x": 1.0, "y": 1.0, "z": 1.0})


def test_failed_link_fails_the_flow_cleanly():
    env = simpy.Environment()
    network = FlowNetwork(env, _line())
    outcome = {}

    def go():
        try:
            yield network.transfer("a", "b", 10e9)
            outcome["done"] = env.now
        except NetworkError as exc:
            outcome["error"] = str(exc)

    def cut():
        yield env.timeout(0.5)
        network.fail_link("a", "b")

    env.process(go())
    env.process(cut())
    env.run()
    assert "no route from a to b" in outcome["error"]
