"""Network topologies (networkx graphs of GPUs, NICs and switches), placement of replicas onto them,
collective costs (alpha-beta per algorithm) and a flow-level max-min fair network for transfers."""
from topologies.builders import BUILDERS, cluster, gpus_of, mesh_server, nvl72, nvswitch_server
from topologies.registry import describe_topologies, list_topologies, load_topology
from topologies.collectives import (AlphaBeta, CollectiveCost, all_gather, all_reduce, all_to_all, reduce_scatter,
                                    send_recv)
from topologies.flows import FlowNetwork, NetworkError
from topologies.placement import Placement, place, servers_spanned

__all__ = ["AlphaBeta", "BUILDERS", "CollectiveCost", "FlowNetwork", "NetworkError", "Placement", "all_gather", "all_reduce",
           "all_to_all", "cluster", "describe_topologies", "gpus_of", "list_topologies", "load_topology",
           "mesh_server", "nvl72", "nvswitch_server", "place", "reduce_scatter", "send_recv", "servers_spanned"]
