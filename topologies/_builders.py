"""Graph builders: networkx graphs with nodes 0..n-1.

Deterministic builders take sizes only. Random builders take `seed` keyword-only and return
the same graph for the same seed. The ones that can draw a disconnected graph
(`erdos_renyi`, `random_regular`, `small_world`, `stochastic_block`, `random_geometric`)
redraw up to `max_tries` times (try t uses a seed derived from (seed, t)) and raise a
ValueError naming a fix when every draw was disconnected; `connected=False` returns the
first draw as it is. Graphs with communities store an int `community` node attribute.
"""

import math
from pathlib import Path

import networkx as nx

from ._checks import check_int, check_probability, check_simple, derive_seed

_MAX_TRIES = 100


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


def erdos_renyi(
    n: int, p: float, *, seed: int, connected: bool = True, max_tries: int = _MAX_TRIES
) -> nx.Graph:
    """Erdos-Renyi G(n, p): each pair is linked independently with probability p.

    Connected whp once p > ln(n)/n.

    Args:
      n: number of nodes, >= 2.
      p: edge probability in [0, 1].
      seed: random seed.
      connected: redraw until connected (up to max_tries); False returns the first draw.
      max_tries: draws before giving up.

    Returns:
      An undirected graph.

    Raises:
      ValueError: bad n or p, or no connected draw in max_tries.

    Example:
      >>> erdos_renyi(20, 0.3, seed=0).number_of_nodes()
      20
    """
    n = check_int("erdos_renyi", "n", n, 2, "Use n >= 2.")
    p = check_probability("erdos_renyi", "p", p)
    fix = f"Use p above ln(n)/n = {math.log(n) / n:.3g}"
    return _sample_connected(
        "erdos_renyi", lambda s: nx.fast_gnp_random_graph(n, p, seed=s), seed, connected, max_tries, fix
    )


def random_regular(
    n: int, degree: int, *, seed: int, connected: bool = True, max_tries: int = _MAX_TRIES
) -> nx.Graph:
    """Uniform random degree-regular graph.

    Args:
      n: number of nodes, > degree.
      degree: every node's degree, >= 1, with n*degree even.
      seed: random seed.
      connected: redraw until connected (up to max_tries); False returns the first draw.
      max_tries: draws before giving up.

    Returns:
      An undirected degree-regular graph (connected whp for degree >= 3).

    Raises:
      ValueError: degree >= n, odd n*degree, or no connected draw in max_tries.

    Example:
      >>> set(dict(random_regular(10, 3, seed=0).degree).values())
      {3}
    """
    degree = check_int("random_regular", "degree", degree, 1, "Use degree >= 1.")
    n = check_int("random_regular", "n", n, degree + 1, f"A {degree}-regular graph needs n > degree.")
    if n * degree % 2:
        raise ValueError(
            f"random_regular needs n*degree even (it is twice the edge count); got "
            f"n={n}, degree={degree}. Use n={n + 1} or degree={degree + 1}."
        )
    fix = "Use degree >= 3 (connected whp)"
    return _sample_connected(
        "random_regular",
        lambda s: nx.random_regular_graph(degree, n, seed=s),
        seed,
        connected,
        max_tries,
        fix,
    )


def small_world(
    n: int, k: int, p: float, *, seed: int, connected: bool = True, max_tries: int = _MAX_TRIES
) -> nx.Graph:
    """Watts-Strogatz small world: `circulant(n, k)` with each edge rewired with probability p.

    Note k counts neighbours on each side, as in `circulant` (networkx's k is 2k here).

    Args:
      n: number of nodes, > 2k.
      k: neighbours on each side before rewiring, >= 1.
      p: rewiring probability in [0, 1].
      seed: random seed.
      connected: redraw until connected (up to max_tries); False returns the first draw.
      max_tries: draws before giving up.

    Returns:
      An undirected graph with n*k edges.

    Raises:
      ValueError: bad n, k or p, or no connected draw in max_tries.

    Example:
      >>> small_world(20, 2, 0.1, seed=0).number_of_edges()
      40

    References:
      Watts, Strogatz. Collective dynamics of 'small-world' networks. Nature 1998.
    """
    k = check_int("small_world", "k", k, 1, "Use k >= 1 neighbours on each side.")
    n = check_int("small_world", "n", n, 2 * k + 1, f"k={k} on each side needs n >= 2k+1 = {2 * k + 1}.")
    p = check_probability("small_world", "p", p)
    fix = "Use a larger k or a smaller p"
    return _sample_connected(
        "small_world", lambda s: nx.watts_strogatz_graph(n, 2 * k, p, seed=s), seed, connected, max_tries, fix
    )


def barabasi_albert(n: int, m: int, *, seed: int) -> nx.Graph:
    """Barabasi-Albert preferential attachment: each new node links to m existing ones.

    Always connected; degrees follow a power law P(d) ~ d^-3 (a few hubs).

    Args:
      n: number of nodes, > m.
      m: edges added per new node, >= 1.
      seed: random seed.

    Returns:
      An undirected graph with (n - m) * m edges.

    Raises:
      ValueError: m < 1 or n <= m.

    Example:
      >>> barabasi_albert(50, 2, seed=0).number_of_edges()
      96

    References:
      Barabasi, Albert. Emergence of scaling in random networks. Science 1999.
    """
    m = check_int("barabasi_albert", "m", m, 1, "Use m >= 1 edges per new node.")
    n = check_int("barabasi_albert", "n", n, m + 1, f"m={m} edges per new node needs n > m.")
    return nx.barabasi_albert_graph(n, m, seed=derive_seed("barabasi_albert", seed, 0))


def stochastic_block(
    sizes, p_in: float, p_out: float, *, seed: int, connected: bool = True, max_tries: int = _MAX_TRIES
) -> nx.Graph:
    """Stochastic block model: communities of the given sizes, linked within with
    probability p_in and across with probability p_out.

    Nodes are numbered community by community; node attribute `community` is the block index.

    Args:
      sizes: community sizes, each >= 1, at least two nodes in all.
      p_in: edge probability inside a community.
      p_out: edge probability across communities.
      seed: random seed.
      connected: redraw until connected (up to max_tries); False returns the first draw.
      max_tries: draws before giving up.

    Returns:
      An undirected graph on sum(sizes) nodes with a `community` attribute.

    Raises:
      ValueError: bad sizes or probabilities, or no connected draw in max_tries.

    Example:
      >>> g = stochastic_block([3, 4], 1.0, 0.5, seed=0)
      >>> g.nodes[4]["community"]
      1

    References:
      Holland, Laskey, Leinhardt. Stochastic blockmodels: first steps. Social Networks 1983.
    """
    sizes = [
        check_int("stochastic_block", "each of sizes", s, 1, "Use communities of >= 1 node.") for s in sizes
    ]
    if sum(sizes) < 2:
        raise ValueError(f"stochastic_block needs at least 2 nodes in all; got sizes={sizes}. Use e.g. sizes=[10, 10].")
    p_in = check_probability("stochastic_block", "p_in", p_in)
    p_out = check_probability("stochastic_block", "p_out", p_out)
    probs = [[p_in if a == b else p_out for b in range(len(sizes))] for a in range(len(sizes))]

    def build(s: int) -> nx.Graph:
        drawn = nx.stochastic_block_model(sizes, probs, seed=s)
        graph = nx.Graph()
        graph.add_nodes_from((v, {"community": drawn.nodes[v]["block"]}) for v in drawn)
        graph.add_edges_from(drawn.edges)
        return graph

    return _sample_connected(
        "stochastic_block", build, seed, connected, max_tries, "Use a larger p_out or p_in"
    )


def random_geometric(
    n: int, radius: float, *, seed: int, dim: int = 2, connected: bool = True, max_tries: int = _MAX_TRIES
) -> nx.Graph:
    """Random geometric graph: n uniform points in the unit cube [0,1]^dim, linked when
    within Euclidean distance `radius`.

    Nodes carry their `pos`. In 2-D, connected whp once radius > sqrt(ln(n) / (pi n)).

    Args:
      n: number of nodes, >= 2.
      radius: link distance, > 0.
      seed: random seed.
      dim: dimension of the cube, >= 1.
      connected: redraw until connected (up to max_tries); False returns the first draw.
      max_tries: draws before giving up.

    Returns:
      An undirected graph with a `pos` node attribute.

    Raises:
      ValueError: bad n, radius or dim, or no connected draw in max_tries.

    Example:
      >>> random_geometric(30, 0.4, seed=0).number_of_nodes()
      30

    References:
      Penrose. Random Geometric Graphs. Oxford University Press, 2003.
    """
    n = check_int("random_geometric", "n", n, 2, "Use n >= 2.")
    dim = check_int("random_geometric", "dim", dim, 1, "Use dim >= 1.")
    if not radius > 0:
        raise ValueError(
            f"random_geometric needs radius > 0; got radius={radius!r}. In 2-D, a radius above "
            "sqrt(ln(n)/(pi n)) gives a connected graph with high probability."
        )
    fix = f"Use radius above sqrt(ln(n)/(pi n)) = {math.sqrt(math.log(n) / (math.pi * n)):.3g} in 2-D"
    return _sample_connected(
        "random_geometric",
        lambda s: nx.random_geometric_graph(n, radius, dim=dim, seed=s),
        seed,
        connected,
        max_tries,
        fix,
    )


def _sample_connected(function: str, build, seed, connected: bool, max_tries, fix: str) -> nx.Graph:
    """Draw build(seed_t) for t = 0, 1, ... until connected (if asked), at most max_tries."""
    max_tries = check_int(function, "max_tries", max_tries, 1, "Use max_tries >= 1.")
    for attempt in range(max_tries if connected else 1):
        graph = build(derive_seed(function, seed, attempt))
        if not connected or nx.is_connected(graph):
            return graph
    raise ValueError(
        f"{function}: no connected graph in max_tries={max_tries} draws (seed={seed}). "
        f"{fix}, raise max_tries, or pass connected=False to accept a disconnected graph."
    )


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
