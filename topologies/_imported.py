"""Graphs from elsewhere: a networkx graph relabelled to nodes 0..n-1, or an edge-list file."""

import math
from pathlib import Path

import networkx as nx

from ._checks import check_int, check_simple
from ._nodefile import read_node_file


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


def from_edgelist(path, *, directed: bool = False, n: int | None = None, nodes=None) -> nx.Graph:
    """Read a plain-text edge list: one edge `u v` (or `u v w`, with a weight) per line.

    `u` and `v` are non-negative integer ids; a weight w is a finite number >= 0, given on
    every line or on none.

    Blank lines and text after `#` are ignored; a repeated edge is the same edge (with the
    same weight). Nodes are 0..max id, or 0..n-1 when n is given (isolated nodes allowed).
    Weights are stored as the edge attribute `weight` (what `mixing_weights(kind="edgelist")`
    and `[network] weights = "edgelist"` read: w is the weight v gives u, and u gives v
    when undirected), and the file as the graph attribute `source`.

    Node attributes come from a separate CSV file `nodes` (the third column stays the
    weight): a header row, then one row per node; the column `node` (ids < n, each at most
    once) and any of `community` (an integer: what the data partition "community" reads)
    and `byzantine` (0/1 or true/false: what the placement strategy "marked" reads), e.g.

        node,community,byzantine
        0,0,0
        1,0,1

    Nodes not listed get no attribute, but the partition and the placement that read a
    column need it on every node. The node file is the graph attribute `nodes_source`.

    Args:
      path: the file.
      directed: read `u v` as u -> v (u in v's inbox) instead of an undirected edge.
      n: number of nodes, if it must exceed the largest id + 1.
      nodes: optional CSV file of node attributes (see above).

    Returns:
      A nx.Graph, or a nx.DiGraph when directed.

    Raises:
      ValueError: a malformed line, a weight on some lines only, a repeated edge with
        another weight (naming file and line), a self-loop, an id >= n, no edge; in the
        node file (naming file and line) no header or `node` column, an unknown column,
        a non-integer, repeated or out-of-graph id, a bad community or byzantine value.

    Example:
      >>> from_edgelist("ring.txt")  # doctest: +SKIP
    """
    path = Path(path)
    lines = [(number, _parse_edge(path, number, line)) for number, line in enumerate(path.read_text().splitlines(), 1)]
    lines = [(number, edge) for number, edge in lines if edge is not None]
    if not lines:
        raise ValueError(f"{path}: no edges found. Write one edge per line as 'u v', e.g. '0 1'.")
    first_number, first = lines[0]
    for number, edge in lines:
        if len(edge) != len(first):
            have, lack = (number, first_number) if len(edge) == 3 else (first_number, number)
            raise ValueError(
                f"{path}:{lack}: no weight, but line {have} has one ('u v w'). Give every edge a weight, or none."
            )
    edges = _distinct(path, directed, lines)
    largest = max(max(u, v) for u, v, *_ in edges)
    if n is None:
        n = largest + 1
    n = check_int("from_edgelist", "n", n, largest + 1, f"{path} uses node id {largest}.")
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.graph["source"] = str(path)
    graph.add_nodes_from(range(n))
    if len(first) == 3:
        graph.add_edges_from((u, v, {"weight": w}) for u, v, w in edges)
    else:
        graph.add_edges_from(edges)
    if nodes is not None:
        for name, values in read_node_file(nodes, n).items():
            nx.set_node_attributes(graph, values, name)
        graph.graph["nodes_source"] = str(nodes)
    return graph


def _distinct(path: Path, directed: bool, lines: list) -> list[tuple]:
    """The edges, each once; a repeat with another weight is an error naming both lines."""
    seen: dict[tuple[int, int], tuple[int, tuple]] = {}
    for number, edge in lines:
        u, v = edge[:2]
        key = (u, v) if directed else (min(u, v), max(u, v))
        if key in seen and seen[key][1][2:] != edge[2:]:
            earlier, other = seen[key]
            raise ValueError(
                f"{path}:{number}: edge {u} {v} has weight {edge[2]!r}, but line {earlier} gave it {other[2]!r}. "
                "Keep one line per edge."
            )
        seen.setdefault(key, (number, edge))
    return [edge for _, edge in seen.values()]


def _parse_edge(path: Path, number: int, line: str) -> tuple | None:
    """Parse one edge-list line into (u, v) or (u, v, w); None for blank or comment lines."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        return None
    if len(tokens) not in (2, 3) or not all(t.isdigit() for t in tokens[:2]):
        raise ValueError(
            f"{path}:{number}: expected two non-negative integer node ids 'u v' and an optional weight "
            f"'u v w', got {line.strip()!r}. Fix the line, or comment it out with '#'."
        )
    u, v = int(tokens[0]), int(tokens[1])
    if u == v:
        raise ValueError(
            f"{path}:{number}: self-loop {u} {v} (a node's own vector is slot 0 already). Delete the line."
        )
    if len(tokens) == 2:
        return u, v
    try:
        weight = float(tokens[2])
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(
            f"{path}:{number}: the weight {tokens[2]!r} of edge {u} {v} is not a finite number >= 0 "
            "(a mixing weight). Fix the line."
        )
    return u, v, weight
