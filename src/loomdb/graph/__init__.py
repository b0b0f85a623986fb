"""Graph traversal over any backend: neighbours, k-hop expansion, shortest paths."""

from .traversal import Subgraph, expand, neighbors, shortest_path

__all__ = ["Subgraph", "expand", "neighbors", "shortest_path"]
