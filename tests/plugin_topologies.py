"""A plug-in graph builder for the engine tests: ``[network] topology = "tests.plugin_topologies:wheel"``."""

import networkx as nx


def wheel(n: int) -> nx.Graph:
    """A hub joined to every node of a ring of n - 1 nodes."""
    return nx.wheel_graph(n)


NOT_A_BUILDER = 3
