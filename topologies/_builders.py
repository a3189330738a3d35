"""Deterministic graph builders: networkx graphs with nodes 0..n-1, from sizes only.

Random builders are in ``_random.py``, graphs from files or networkx in ``_imported.py``.
Graphs with communities store an int `community` node attribute.
"""

import math

import networkx as nx

from ._checks import check_int


def complete(n: int) -> nx.Graph:
    """Complete graph: every pair of the n nodes is linked.

    Args:
      n: number of nodes, >= 2.

    Returns:
      An undirected graph, (n-1)-regular.

    Raises:
      ValueError: n < 2.

    Example:
      >>> complete(5).number_of_edges()
      10
    """
    n = check_int("complete", "n", n, 2, "A complete graph needs two nodes to link.")
    return nx.complete_graph(n)


def ring(n: int) -> nx.Graph:
    """Cycle: node i is linked to i-1 and i+1 (mod n).

    The Metropolis mixing matrix is W = (I + A)/3, with spectral gap
    1 - (1 + 2cos(2 pi/n))/3 for n >= 3.

    Args:
      n: number of nodes, >= 3.

    Returns:
      An undirected 2-regular graph.

    Raises:
      ValueError: n < 3.

    Example:
      >>> sorted(ring(4).neighbors(0))
      [1, 3]
    """
    n = check_int("ring", "n", n, 3, "Use n >= 3, or complete(2) for two linked nodes.")
    return nx.cycle_graph(n)


def circulant(n: int, k: int) -> nx.Graph:
    """Ring lattice: node i is linked to i +- 1, ..., i +- k (mod n).

    Args:
      n: number of nodes, >= 2k + 1.
      k: neighbours on each side, >= 1 (degree 2k).

    Returns:
      An undirected 2k-regular graph (complete when n = 2k + 1).

    Raises:
      ValueError: k < 1 or n < 2k + 1.

    Example:
      >>> sorted(circulant(8, 2).neighbors(0))
      [1, 2, 6, 7]
    """
    k = check_int("circulant", "k", k, 1, "Use k >= 1 neighbours on each side.")
    n = check_int(
        "circulant", "n", n, 2 * k + 1, f"k={k} neighbours on each side need n >= 2k+1 = {2 * k + 1}."
    )
    return nx.circulant_graph(n, range(1, k + 1))


def torus(rows: int, cols: int) -> nx.Graph:
    """2-D torus: a rows x cols grid whose rows and columns wrap around.

    Node r*cols + c sits at row r, column c and is linked to its four grid neighbours.

    Args:
      rows: >= 3.
      cols: >= 3.

    Returns:
      An undirected 4-regular graph on rows*cols nodes.

    Raises:
      ValueError: rows or cols < 3 (a shorter wrap would repeat an edge).

    Example:
      >>> torus(3, 4).number_of_nodes()
      12
    """
    fix = "Use at least 3 rows and 3 columns, or grid() for a 2-wide lattice."
    rows = check_int("torus", "rows", rows, 3, fix)
    cols = check_int("torus", "cols", cols, 3, fix)
    return _lattice(rows, cols, periodic=True)


def grid(rows: int, cols: int) -> nx.Graph:
    """2-D grid without wrap-around; node r*cols + c sits at row r, column c.

    Nodes carry a `pos` attribute (c, -r) for drawing.

    Args:
      rows: >= 1.
      cols: >= 1, with rows*cols >= 2.

    Returns:
      An undirected graph with degrees 2 (corners) to 4 (interior).

    Raises:
      ValueError: rows or cols < 1, or a single node.

    Example:
      >>> grid(2, 3).degree(0)
      2
    """
    rows = check_int("grid", "rows", rows, 1, "Use rows >= 1.")
    cols = check_int("grid", "cols", cols, 1, "Use cols >= 1.")
    if rows * cols < 2:
        raise ValueError("grid needs rows*cols >= 2 nodes; got a 1 x 1 grid. Use grid(1, 2) or larger.")
    graph = _lattice(rows, cols, periodic=False)
    nx.set_node_attributes(graph, {r * cols + c: (c, -r) for r in range(rows) for c in range(cols)}, "pos")
    return graph


def _lattice(rows: int, cols: int, *, periodic: bool) -> nx.Graph:
    lattice = nx.grid_2d_graph(rows, cols, periodic=periodic)
    graph = nx.Graph()
    graph.add_nodes_from(range(rows * cols))
    graph.add_edges_from(((a * cols + b, c * cols + d) for (a, b), (c, d) in lattice.edges))
    return graph


def star(n: int) -> nx.Graph:
    """Star: node 0 is the hub, linked to each of nodes 1..n-1.

    Args:
      n: number of nodes, >= 2.

    Returns:
      An undirected tree; the hub has degree n-1, the leaves degree 1.

    Raises:
      ValueError: n < 2.

    Example:
      >>> star(5).degree(0)
      4
    """
    n = check_int("star", "n", n, 2, "A star needs a hub and at least one leaf.")
    return nx.star_graph(n - 1)


def hypercube(dim: int) -> nx.Graph:
    """Hypercube: 2^dim nodes, i and j linked when their binary ids differ in one bit.

    Args:
      dim: dimension, >= 1.

    Returns:
      An undirected dim-regular graph on 2^dim nodes.

    Raises:
      ValueError: dim < 1.

    Example:
      >>> sorted(hypercube(3).neighbors(0))
      [1, 2, 4]
    """
    dim = check_int("hypercube", "dim", dim, 1, "Use dim >= 1 (2^dim nodes).")
    graph = nx.Graph()
    graph.add_nodes_from(range(2**dim))
    graph.add_edges_from((i, i ^ (1 << b)) for i in range(2**dim) for b in range(dim) if not i >> b & 1)
    return graph


def exponential(n: int) -> nx.DiGraph:
    """Static exponential graph (directed): node i sends to i + 2^k mod n for 2^k < n.

    Every node has in- and out-degree floor(log2(n-1)) + 1.

    Args:
      n: number of nodes, >= 2.

    Returns:
      A directed graph; an edge u -> v puts u in v's inbox.

    Raises:
      ValueError: n < 2.

    Example:
      >>> sorted(exponential(8).successors(0))
      [1, 2, 4]

    References:
      Ying, Yuan, Chen, Hu, Pan, Yin. Exponential graph is provably efficient for
      decentralized deep training. NeurIPS 2021.
    """
    n = check_int("exponential", "n", n, 2, "Use n >= 2.")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    hops = [2**k for k in range(math.floor(math.log2(n - 1)) + 1)]
    graph.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops)
    return graph


def two_cliques(clique_size: int) -> nx.Graph:
    """Two cliques joined through one central node.

    Nodes 0..m-1 form clique A (community 0), m..2m-1 clique B (community 1); the central
    node 2m (community 2) is linked to node 0 and node 2m-1, as in the ClippedGossip code.

    Args:
      clique_size: m, nodes per clique, >= 2.

    Returns:
      An undirected graph on 2m+1 nodes with a `community` attribute.

    Raises:
      ValueError: clique_size < 2.

    Example:
      >>> sorted(two_cliques(3).neighbors(6))
      [0, 5]

    References:
      He, Karimireddy, Jaggi. Byzantine-robust decentralized learning via ClippedGossip.
      2022 (code: epfml/byzantine-robust-decentralized-optimizer, TwoCliques).
    """
    m = check_int("two_cliques", "clique_size", clique_size, 2, "Use cliques of >= 2 nodes.")
    graph = _two_cliques_base(m)
    graph.add_node(2 * m, community=2)
    graph.add_edges_from([(0, 2 * m), (2 * m - 1, 2 * m)])
    return graph


def dumbbell(clique_size: int, bridges: int = 1) -> nx.Graph:
    """Two cliques joined by r bridge edges (i, 2m-1-i) for i < r.

    Nodes 0..m-1 form clique A (community 0), m..2m-1 clique B (community 1).

    Args:
      clique_size: m, nodes per clique, >= 2.
      bridges: r, number of bridge edges, 1 <= r <= m.

    Returns:
      An undirected graph on 2m nodes with a `community` attribute.

    Raises:
      ValueError: clique_size < 2, or bridges outside 1..m.

    Example:
      >>> dumbbell(4, 2).has_edge(1, 6)
      True

    References:
      He, Karimireddy, Jaggi. Byzantine-robust decentralized learning via ClippedGossip.
      2022 (code: Dumbbell, bridge (0, 2m-1)).
    """
    m = check_int("dumbbell", "clique_size", clique_size, 2, "Use cliques of >= 2 nodes.")
    r = check_int("dumbbell", "bridges", bridges, 1, "Use at least one bridge edge.")
    if r > m:
        raise ValueError(
            f"dumbbell needs bridges <= clique_size (each bridge uses its own pair of nodes); "
            f"got bridges={r}, clique_size={m}. Use bridges <= {m}."
        )
    graph = _two_cliques_base(m)
    graph.add_edges_from((i, 2 * m - 1 - i) for i in range(r))
    return graph


def _two_cliques_base(m: int) -> nx.Graph:
    graph = nx.Graph()
    for community in (0, 1):
        members = range(community * m, (community + 1) * m)
        graph.add_nodes_from(members, community=community)
        graph.add_edges_from((i, j) for i in members for j in members if i < j)
    return graph
