"""Random graph builders: networkx graphs with nodes 0..n-1, drawn from a seed.

Random builders take `seed` keyword-only and return the same graph for the same seed. The
ones that can draw a disconnected graph (`erdos_renyi`, `random_regular`, `small_world`,
`stochastic_block`, `random_geometric`) redraw up to `max_tries` times (try t uses a seed
derived from (seed, t)) and raise a ValueError naming a fix when every draw was
disconnected; `connected=False` returns the first draw as it is. Graphs with communities
store an int `community` node attribute.
"""

import math

import networkx as nx

from ._checks import check_int, check_probability, derive_seed

_MAX_TRIES = 100


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
