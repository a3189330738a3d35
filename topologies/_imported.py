"""Graphs from elsewhere: a networkx graph relabelled to nodes 0..n-1, or an edge-list file."""

from pathlib import Path

import networkx as nx

from ._checks import check_int, check_simple


def from_networkx(graph: nx.Graph) -> nx.Graph:
    """Copy a networkx graph with its nodes relabelled 0..n-1 (sorted order when sortable).

    Relabelled nodes keep their original name in the `label` attribute; a graph whose
    nodes already are 0..n-1 is copied as it is. Direction and attributes are kept.

    Args:
      graph: a nx.Graph or nx.DiGraph without self-loops or parallel edges.

    Returns:
      A new graph of the same type with nodes 0..n-1.

    Raises:
      ValueError: empty graph, multigraph or self-loops.

    Example:
      >>> g = from_networkx(nx.path_graph("abc"))
      >>> g.nodes[0]["label"], sorted(g.neighbors(1))
      ('a', [0, 2])
    """
    check_simple("from_networkx", graph)
    if set(graph.nodes) == set(range(graph.number_of_nodes())):
        return graph.copy()
    try:
        order = sorted(graph.nodes)
    except TypeError:
        order = list(graph.nodes)
    return _relabel(graph, order)


def _relabel(graph: nx.Graph, order: list) -> nx.Graph:
    mapping = {node: i for i, node in enumerate(order)}
    relabelled = graph.__class__()
    relabelled.add_nodes_from((mapping[v], {**graph.nodes[v], "label": v}) for v in order)
    relabelled.add_edges_from((mapping[u], mapping[v], data) for u, v, data in graph.edges(data=True))
    relabelled.graph.update(graph.graph)
    return relabelled


def from_edgelist(path, *, directed: bool = False, n: int | None = None) -> nx.Graph:
    """Read a plain-text edge list: one edge `u v` (two non-negative integer ids) per line.

    Blank lines and text after `#` are ignored; a repeated edge is the same edge. Nodes are
    0..max id, or 0..n-1 when n is given (isolated nodes allowed).

    Args:
      path: the file.
      directed: read `u v` as u -> v (u in v's inbox) instead of an undirected edge.
      n: number of nodes, if it must exceed the largest id + 1.

    Returns:
      A nx.Graph, or a nx.DiGraph when directed.

    Raises:
      ValueError: a malformed line (naming file and line), a self-loop, an id >= n, no edge.

    Example:
      >>> from_edgelist("ring.txt")  # doctest: +SKIP
    """
    path = Path(path)
    edges = [_parse_edge(path, number, line) for number, line in enumerate(path.read_text().splitlines(), 1)]
    edges = [edge for edge in edges if edge is not None]
    if not edges:
        raise ValueError(f"{path}: no edges found. Write one edge per line as 'u v', e.g. '0 1'.")
    largest = max(max(u, v) for u, v in edges)
    if n is None:
        n = largest + 1
    n = check_int("from_edgelist", "n", n, largest + 1, f"{path} uses node id {largest}.")
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    return graph


def _parse_edge(path: Path, number: int, line: str) -> tuple[int, int] | None:
    """Parse one edge-list line into (u, v); None for blank or comment lines."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        return None
    if len(tokens) != 2 or not all(t.isdigit() for t in tokens):
        raise ValueError(
            f"{path}:{number}: expected two non-negative integer node ids 'u v', got {line.strip()!r}. "
            "Fix the line, or comment it out with '#'."
        )
    u, v = int(tokens[0]), int(tokens[1])
    if u == v:
        raise ValueError(
            f"{path}:{number}: self-loop {u} {v} (a node's own vector is slot 0 already). Delete the line."
        )
    return u, v
