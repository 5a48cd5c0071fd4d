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
def test_all_reduce_on_nvswitch_by_hand():
    """S = 64 MB on 8 GPUs of one NVSwitch, 450 GB/s each way per GPU, 0.5 us per hop (a step crosses
    GPU -> switch -> GPU: 1 us); every algorithm pays one 5 us launch.
    ring:   2 x 7/8 x S / 450 GB/s = 248.889 us + 5 + 14 steps x 1 us            = 267.889 us
    direct: each uplink carries 7 pieces of S/8 each way: 2 x 7 x S/8 / 450 GB/s  = 248.889 us + 5 + 2 = 255.889 us
    tree:   binary tree over ranks; rank 1's uplink carries 3 streams (to 0, 3, 4): 2 x 3 x S / 450 GB/s
            = 853.333 us + 5 + 2 x depth 3 x 1 us                                 = 864.333 us
    nvls:   the switch reduces: 7/8 x S once each way at 62% of 450 GB/s = 200.717 us + 5 + 2 = 207.717 us,
            the fastest (measured NVLS is ~1.3x a ring on 8 x H100)."""
    size, graph = 64e6, nvswitch_server(8, 450.0)
    cost = all_reduce(graph, gpus_of(graph))
    assert cost.get("ring").time_s(size) == pytest.approx(267.889e-6, rel=1e-5)
    assert cost.get("direct").time_s(size) == pytest.approx(255.889e-6, rel=1e-5)
    assert cost.get("tree").time_s(size) == pytest.approx(864.333e-6, rel=1e-5)
    assert cost.get("nvls").time_s(size) == pytest.approx(207.717e-6, rel=1e-5)
    assert cost.best(size) == "nvls"
    # 16 KB (a decode step's activations for a few sequences): latency-bound, one-shot wins: 5 + 2 us
    assert cost.time_s(16e3) == pytest.approx(7e-6 + 16e3 * 7 / 8 / (450e9 * 0.62), rel=1e-6)


def test_all_reduce_on_infinity_fabric_mesh_by_hand():
    """S = 64 MB on an 8-GPU full mesh: one 76.8 GB/s link per pair and direction, 0.7 us per hop.
    ring:   every step uses one link per GPU: 2 x 7/8 x S / 76.8 GB/s = 1458.333 us + 5 + 14 x 0.7 = 1473.133 us
    direct: every pair on its own link: 2 x S/8 / 76.8 GB/s = 208.333 us + 5 + 2 x 0.7 = 214.733 us (all 7
            links busy at once: why RCCL reaches ~7 links' worth of bus bandwidth on MI300X)
    tree:   each tree edge its own link: 2 x S / 76.8 GB/s = 1666.667 us + 5 + 2 x 3 x 0.7 = 1675.867 us
    No NVLS on a mesh. tp 2 on the mesh has a single link: S / 76.8 GB/s = 833.333 + 5 + 1.4 = 839.733 us."""
    size, graph = 64e6, mesh_server(8, 76.8)
    cost = all_reduce(graph, gpus_of(graph))
    assert cost.get("ring").time_s(size) == pytest.approx(1473.133e-6, rel=1e-5)
    assert cost.get("direct").time_s(size) == pytest.approx(214.733e-6, rel=1e-5)
    assert cost.get("tree").time_s(size) == pytest.approx(1675.867e-6, rel=1e-5)
    assert cost.best(size) == "direct"
    assert "nvls" not in [name for name, _ in cost.options]
    assert all_reduce(graph, ("gpu0", "gpu1")).time_s(size) == pytest.approx(839.733e-6, rel=1e-5)


def test_fat_tree_one_server_per_leaf_matches_rails_at_the_same_nic_speed():
    """tp 16 over two 8-GPU servers, 400G NICs (50 GB/s). Rails: same-rank GPUs meet on one leaf, 8 flows
    each on their own NIC links. Fat-tree, one server per leaf, 1:1: each leaf's 400 GB/s of uplinks
    is split over 2 spines (200 GB/s each); the 8 cross-server flows spread over both spines (ECMP),
    4 per uplink: 50 GB/s each, the NIC rate. Both non-blocking: the same all-reduce time."""
    rail = cluster(2, "nvswitch", 8, 900, nic_gbps=400, fabric="rail")
    tree = cluster(2, "nvswitch", 8, 900, nic_gbps=400, fabric="fat-tree", servers_per_leaf=1)
    size = 32e6
    rail_s = all_reduce(rail, gpus_of(rail)).time_s(size)
    tree_s = all_reduce(tree, gpus_of(tree)).time_s(size)
    assert tree_s == pytest.approx(rail_s, rel=0.02)
    # 2:1 oversubscribed uplinks do halve the cross-server bandwidth
    thin = cluster(2, "nvswitch", 8, 900, nic_gbps=400, fabric="fat-tree", servers_per_leaf=1, oversubscription=2)
    assert all_reduce(thin, gpus_of(thin)).time_s(size) > 1.3 * tree_s


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
    assert send_recv(mesh, "gpu0", "gpu1").time_s(0) == 0.0
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


def test_a_what_if_is_part_of_the_topology_name_results_print():
    """rail-800g run at --scaleout-gbps 400 printed plan.topology rail-800g; the override is named."""
    gpu = get_gpu("h100")
    assert load_topology("rail-800g", gpu, 16).graph["name"] == "rail-800g"
    assert load_topology("rail-800g", gpu, 16, {"nic_gbps": 400.0}).graph["name"] == "rail-800g with nic_gbps=400"


def test_a_spread_transfer_leaves_by_its_own_nic_whatever_the_rail():
    """Two 8-GPU B200 servers on 400G NICs (50 GB/s), one leaf per rail, each leaf's 2 x 400G of uplinks
    split over 8 spines (12.5 GB/s a link). 5 GB from gpu0 to gpu8 (same rail: nic0-leaf0-nic8) takes
    0.1 s. To gpu9 (another rail) the hashed route takes a 12.5 GB/s spine link: 0.4 s; spread over the
    8 spine routes it runs at nic0's 50 GB/s: 0.1 s (routes a peer GPU relays are left out: one
    transfer leaves by its own NIC; with them it took 0.09 s). A GPU failing elsewhere mid-transfer leaves
    the shares where they were (they all fell onto the hashed route before)."""
    graph = cluster(2, "nvswitch", 8, 1800, nic_gbps=400)
    for target in ("gpu8", "gpu9"):
        env = simpy.Environment()
        network = FlowNetwork(env, graph.copy())
        done = {}

        def go(to=target):
            yield network.transfer("gpu0", to, 5e9, spread=True)
            done["at"] = env.now

        def fail_elsewhere():
            yield env.timeout(0.01)
            network.fail_node("gpu6")

        env.process(go())
        env.process(fail_elsewhere())
        env.run()
        assert done["at"] == pytest.approx(0.1, rel=1e-3), target


def test_a_transfer_whose_link_fails_during_its_latency_takes_another_route():
    """a-c direct (10 GB/s, 100 us latency) and a-b-c (1 GB/s each): a 1 MB transfer starting at 10 ms
    routes a-c; the link fails 50 us into its latency wait. It moves on a-b-c and lands at 10.1 + 1 = 11.1
    ms (before, it ran over the dead link at that link's remembered bandwidth, landing at 10.2 ms, or raised
    a KeyError)."""
    graph = nx.Graph()
    graph.add_edge("a", "b", bandwidth_gb_per_s=1.0, latency_us=10.0)
    graph.add_edge("b", "c", bandwidth_gb_per_s=1.0, latency_us=10.0)
    graph.add_edge("a", "c", bandwidth_gb_per_s=10.0, latency_us=100.0)
    env = simpy.Environment()
    network = FlowNetwork(env, graph)
    landed = []

    def transfer(delay_s, nbytes):
        yield env.timeout(delay_s)
        yield network.transfer("a", "c", nbytes)
        landed.append(env.now)

    def fail():
        yield env.timeout(10e-3 + 50e-6)
        network.fail_link("a", "c")

    env.process(transfer(0.0, 1e3))       # the direct link's bandwidth is looked up once, here
    env.process(transfer(10e-3, 1e6))
    env.process(fail())
    env.run()
    assert landed[1] == pytest.approx(11.1e-3, rel=1e-9) and not network.flows
