"""Placement of Byzantine nodes on a graph.

Every strategy ranks candidate nodes (most preferred first, ties by node id) and takes the
first `count`. On directed graphs a node's reach is what matters to an attacker: degree
means out-degree, eigenvector centrality is taken on the reversed graph, and `eclipse`
takes the victim's in-neighbours (its inbox); `cut_vertices`, `clustered`, `spread` and
`fiedler` use the undirected version. Neighbourhood limits count Byzantine in-neighbours.
Centralities are exact networkx computations: betweenness costs O(nm), fiedler a dense
O(n^3) eigendecomposition. The strategy ``attach`` adds new Byzantine nodes instead
(``_attach``); :func:`placed` serves every strategy, returning the run's graph too.
"""

import math
import numbers
import warnings

import networkx as nx
import numpy as np

from ._analysis import byzantine_counts, in_counts, inbox_links
from ._attach import ADDING, attach
from ._checks import check_choice, check_int, check_members, check_node_ids, derive_seed


def place(
    graph: nx.Graph,
    count,
    strategy: str = "random",
    *,
    seed: int | None = None,
    victim: int | None = None,
    ids=None,
    center: int | None = None,
    max_per_neighborhood: int | None = None,
    repair: bool = False,
) -> list[int]:
    """Choose which nodes are Byzantine.

    Strategies (ties broken by node id):
      random: uniform sample (needs seed).
      max_degree / min_degree: highest / lowest degree first.
      betweenness, eigenvector: most central first.
      cut_vertices: articulation points first, then by betweenness.
      clustered: the ball around `center` (nodes by hop distance, then id); without a
        center, one drawn with seed.
      spread: greedy farthest-first from `center` (or a seeded one): each next node
        maximises its hop distance to those chosen.
      eclipse: all neighbours of `victim`, so count is their number (pass None).
      fiedler: endpoints of the edges crossing the sign cut of the Fiedler vector
        (v2 of the Laplacian L = D - A), most central (betweenness) first.
      manual: exactly `ids` (count None or len(ids)).
      marked: the nodes whose `byzantine` attribute is true (e.g. from the node file of
        `from_edgelist`); every node needs the attribute, and count must equal their
        number (it guards against a file that changed).
    (`attach` adds nodes instead: see :func:`placed`.)

    With max_per_neighborhood=b, every honest node must end with at most b Byzantine
    (in-)neighbours: a violation raises, or with repair=True is mended by
    `repair_placement`, whose moves are reported in a UserWarning.

    Args:
      graph: nodes 0..n-1.
      count: int, or float fraction of n in [0, 1] (rounded down); None for eclipse/manual;
        for marked the number of marked nodes.
      strategy: one of STRATEGIES.
      seed: random seed, used by random, and by clustered and spread without center; the
        deterministic strategies accept and ignore it, so one scenario seed serves all.
      victim: the eclipsed node (eclipse only).
      ids: the Byzantine nodes (manual only).
      center: the ball's or the spread's first node (clustered, spread only).
      max_per_neighborhood: b, the most Byzantine neighbours any honest node may have.
      repair: move Byzantine nodes until the limit holds instead of raising.

    Returns:
      The Byzantine node ids, sorted.

    Raises:
      ValueError: a count outside 0..n, an unknown strategy (with a close match), an
        option the strategy does not take, or a violated neighbourhood limit.

    Example:
      >>> place(star(6), 1, "max_degree")
      [0]

    References:
      Piaseczny et al. Adversarial node placement in decentralized FL (MaxSpAN-FL). 2024.
      Fiedler. Algebraic connectivity of graphs. Czech. Math. J. 1973.
    """
    n = check_node_ids("place", graph)
    strategy = check_choice("place", "strategy", strategy, STRATEGIES)
    if strategy in ADDING:
        raise ValueError(
            f"place: strategy {strategy!r} adds nodes, so it changes the graph; call "
            f"topologies.placed(graph, count, {strategy!r}, targets=...), which returns the new graph too."
        )
    _check_options(strategy, victim=victim, ids=ids, center=center)
    if strategy == "marked":
        ranking = _marked(graph, n)
        count = _marked_count(count, ranking)
    elif strategy in _FIXED:
        ranking = (
            _eclipse(graph, victim, n) if strategy == "eclipse" else check_members("place", "ids", ids, n)
        )
        count = _fixed_count(count, strategy, len(ranking))
    else:
        count = _count(count, n, strategy)
        ranking = _RANKINGS[strategy](graph, seed=seed, center=center, count=count)
        if count > len(ranking):
            raise ValueError(
                f"place: strategy {strategy!r} offers only {len(ranking)} candidate nodes on this "
                f"graph; got count={count}. Use count <= {len(ranking)}, or strategy 'betweenness'."
            )
    chosen = sorted(ranking[:count])
    if max_per_neighborhood is None:
        return chosen
    b = check_int("place", "max_per_neighborhood", max_per_neighborhood, 0, "Use a limit >= 0.")
    if not repair:
        _check_limit(graph, chosen, b)
        return chosen
    chosen, moves = repair_placement(graph, chosen, b, preference=ranking)
    if moves:
        warnings.warn(
            f"place: moved Byzantine nodes (from, to) {moves} so that no honest node has more "
            f"than {b} Byzantine neighbours.",
            stacklevel=2,
        )
    return chosen


def placed(
    graph: nx.Graph,
    count,
    strategy: str = "random",
    *,
    seed: int | None = None,
    victim: int | None = None,
    ids=None,
    center: int | None = None,
    max_per_neighborhood: int | None = None,
    repair: bool = False,
    targets=None,
) -> tuple[nx.Graph, list[int]]:
    """The graph a run uses and its Byzantine ids, for every strategy.

    ``attach`` (see :func:`~topologies._attach.attach`) returns a new graph: the given one
    unchanged plus ``count`` new Byzantine nodes linked to each of ``targets`` (default
    ``"all"``), numbered n, n+1, ... in target order. It is deterministic (``seed`` is
    accepted and ignored) and refuses ``max_per_neighborhood`` and ``repair``: every
    target gets exactly ``count`` Byzantine neighbours by construction, so ``count`` is
    the limit. Every other strategy returns ``graph`` itself and :func:`place`'s ids.

    Args:
      graph: nodes 0..n-1 (never modified).
      count: as :func:`place` takes it; for ``attach`` the attackers per target (an int).
      strategy: one of STRATEGIES.
      seed, victim, ids, center, max_per_neighborhood, repair: as in :func:`place`.
      targets: ``attach`` only: ``"all"`` or a list of distinct node ids.

    Returns:
      ``(graph, byzantine)``: the run's graph and its sorted Byzantine ids.

    Raises:
      ValueError: as :func:`place` and ``attach`` raise, or an option the strategy does
        not take.

    Example:
      >>> graph, byzantine = placed(ring(4), 2, "attach", targets=[1])
      >>> graph.number_of_nodes(), byzantine
      (6, [4, 5])
    """
    strategy = check_choice("place", "strategy", strategy, STRATEGIES)
    if strategy not in ADDING:
        if targets is not None:
            raise ValueError(f"place: option targets= applies to strategy 'attach', not {strategy!r}. Remove it.")
        return graph, place(
            graph, count, strategy, seed=seed, victim=victim, ids=ids, center=center,
            max_per_neighborhood=max_per_neighborhood, repair=repair,
        )
    _check_options(strategy, victim=victim, ids=ids, center=center)
    if max_per_neighborhood is not None or repair:
        option = "max_per_neighborhood" if max_per_neighborhood is not None else "repair"
        raise ValueError(
            f"place: strategy 'attach' gives every target exactly count Byzantine neighbours, so {option} "
            "does not apply. Remove it (count is the per-target limit)."
        )
    return attach(graph, count, targets="all" if targets is None else targets)


def _check_options(strategy: str, **options) -> None:
    """Raise for an option given to a strategy that does not use it."""
    takes = {"victim": ("eclipse",), "ids": ("manual",), "center": ("clustered", "spread")}
    for name, value in options.items():
        if value is not None and strategy not in takes[name]:
            raise ValueError(
                f"place: option {name}= applies to strategy {' / '.join(takes[name])}, "
                f"not {strategy!r}. Remove it."
            )
    if strategy == "eclipse" and options["victim"] is None:
        raise ValueError("place: strategy 'eclipse' needs victim=<node id>.")
    if strategy == "manual" and options["ids"] is None:
        raise ValueError("place: strategy 'manual' needs ids=[...].")


def _count(count, n: int, strategy: str) -> int:
    """Resolve count (an int, or a fraction of n rounded down) and check 0 <= count <= n."""
    if count is None:
        raise ValueError(f"place: strategy {strategy!r} needs a count (int, or fraction of n).")
    if isinstance(count, numbers.Real) and not isinstance(count, numbers.Integral):
        if not 0 <= count <= 1:
            raise ValueError(
                f"place: a fractional count must lie in [0, 1]; got count={count}. Use e.g. 0.1 for 10% of n."
            )
        count = math.floor(count * n)
    count = check_int("place", "count", count, 0, "Use a count in 0..n.")
    if count > n:
        raise ValueError(
            f"place: count={count} exceeds n={n} nodes. Use count <= {n}, or a fraction like 0.2."
        )
    return count


def _fixed_count(count, strategy: str, size: int) -> int:
    """Check that count is None or the size of the set eclipse/manual places."""
    if count is not None and count != size:
        raise ValueError(
            f"place: strategy {strategy!r} places exactly {size} nodes; got count={count}. Pass count=None."
        )
    return size


def _marked(graph: nx.Graph, n: int) -> list[int]:
    """The nodes whose ``byzantine`` attribute is true; raise if a node lacks it or it is not a bool."""
    marks = [graph.nodes[v].get("byzantine") for v in range(n)]
    if all(mark is None for mark in marks):
        raise ValueError(
            "place: strategy 'marked' takes the nodes whose 'byzantine' attribute is true, and this graph "
            "has none. Give from_edgelist a node file with a byzantine column ([network.params] nodes = "
            "\"nodes.csv\"), or use strategy 'manual' with ids=[...]."
        )
    for v, mark in enumerate(marks):
        if mark is None:
            raise ValueError(
                f"place: strategy 'marked': node {v} has no 'byzantine' attribute; every node needs one "
                "(a node file's byzantine column must list every node). Add the node, 0 for honest."
            )
        if isinstance(mark, np.bool_) or (isinstance(mark, numbers.Integral) and mark in (0, 1)):
            continue
        raise ValueError(
            f"place: strategy 'marked': node {v} has byzantine={mark!r}; use True/False (or 1/0)."
        )
    return [v for v, mark in enumerate(marks) if mark]


def _marked_count(count, marked: list[int]) -> int:
    """Check that count equals the number of marked nodes."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count != len(marked):
        raise ValueError(
            f"place: strategy 'marked' places the {len(marked)} nodes the graph marks byzantine "
            f"({marked}); got count={count}. Set count = {len(marked)}, or fix the byzantine marks."
        )
    return len(marked)


def _rank(scores) -> list[int]:
    """Nodes by decreasing score, ties (equal to 9 significant digits) by increasing id."""
    scores = np.asarray(scores, dtype=float)
    scale = np.max(np.abs(scores)) if scores.size and np.max(np.abs(scores)) > 0 else 1.0
    key = np.round(scores / scale, 9)
    return np.lexsort((np.arange(scores.size), -key)).tolist()


def _scores(graph: nx.Graph, centrality: dict) -> np.ndarray:
    return np.array([centrality[v] for v in range(graph.number_of_nodes())], dtype=float)


def _degree(graph: nx.Graph) -> np.ndarray:
    degree = graph.out_degree if graph.is_directed() else graph.degree
    return np.array([degree[v] for v in range(graph.number_of_nodes())], dtype=float)


def _random(graph, *, seed, center, count):
    del center, count
    rng = np.random.default_rng(_need_seed("random", seed))
    return rng.permutation(graph.number_of_nodes()).tolist()


def _max_degree(graph, *, seed, center, count):
    del seed, center, count
    return _rank(_degree(graph))


def _min_degree(graph, *, seed, center, count):
    del seed, center, count
    return _rank(-_degree(graph))


def _betweenness(graph, *, seed, center, count):
    del seed, center, count
    return _rank(_scores(graph, nx.betweenness_centrality(graph)))


def _eigenvector(graph, *, seed, center, count):
    del seed, center, count
    reach = graph.reverse(copy=False) if graph.is_directed() else graph
    try:
        return _rank(_scores(graph, nx.eigenvector_centrality(reach, max_iter=10_000, tol=1e-10)))
    except nx.PowerIterationFailedConvergence as error:
        raise ValueError(
            "place: eigenvector centrality did not converge on this graph (it needs one dominant "
            "strongly connected component). Use strategy 'betweenness' or 'max_degree'."
        ) from error


def _cut_vertices(graph, *, seed, center, count):
    del seed, center, count
    cuts = set(nx.articulation_points(graph.to_undirected(as_view=True)))
    between = _scores(graph, nx.betweenness_centrality(graph))
    order = _rank(between)
    return [v for v in order if v in cuts] + [v for v in order if v not in cuts]


def _clustered(graph, *, seed, center, count):
    del count
    start = _start(graph, seed, center, "clustered")
    hops = nx.single_source_shortest_path_length(graph.to_undirected(as_view=True), start)
    return sorted(hops, key=lambda v: (hops[v], v))


def _spread(graph, *, seed, center, count):
    """Farthest-first: the first `count` picks only (each costs one BFS)."""
    undirected = graph.to_undirected(as_view=True)
    n = graph.number_of_nodes()
    chosen = [_start(graph, seed, center, "spread")]
    distance = np.full(n, float(n))  # unreachable counts as farther than any path
    for _ in range(count - 1):
        hops = nx.single_source_shortest_path_length(undirected, chosen[-1])
        distance = np.minimum(distance, [hops.get(v, n) for v in range(n)])
        chosen.append(int(np.argmax(distance)))  # argmax takes the smallest id on ties
    return chosen


def _fiedler(graph, *, seed, center, count):
    del seed, center, count
    undirected = graph.to_undirected(as_view=True)
    if not nx.is_connected(undirected):
        raise ValueError(
            "place: strategy 'fiedler' needs a connected graph (the Fiedler vector is not unique otherwise)."
        )
    laplacian = nx.laplacian_matrix(undirected, nodelist=range(graph.number_of_nodes())).toarray()
    vector = np.linalg.eigh(laplacian.astype(float))[1][:, 1]
    side = vector >= 0
    endpoints = {v for u, w in undirected.edges if side[u] != side[w] for v in (u, w)}
    order = _rank(_scores(graph, nx.betweenness_centrality(graph)))
    return [v for v in order if v in endpoints]


def _eclipse(graph: nx.Graph, victim, n: int) -> list[int]:
    victim = check_members("place", "victim", [victim], n)[0]
    inbox = graph.predecessors(victim) if graph.is_directed() else graph.neighbors(victim)
    return sorted(inbox)


def _start(graph: nx.Graph, seed, center, strategy: str) -> int:
    n = graph.number_of_nodes()
    if center is not None:
        return check_members("place", "center", [center], n)[0]
    return int(np.random.default_rng(_need_seed(strategy, seed)).integers(n))


def _need_seed(strategy: str, seed) -> int:
    if seed is None:
        raise ValueError(f"place: strategy {strategy!r} draws at random and needs seed=<int>.")
    return derive_seed("place", seed, 0)


_FIXED = ("eclipse", "manual", "marked")
_RANKINGS = {
    "random": _random,
    "max_degree": _max_degree,
    "min_degree": _min_degree,
    "betweenness": _betweenness,
    "eigenvector": _eigenvector,
    "cut_vertices": _cut_vertices,
    "clustered": _clustered,
    "spread": _spread,
    "fiedler": _fiedler,
}
STRATEGIES = (*_RANKINGS, *_FIXED, *ADDING)

#: One line per strategy, for ``decentral list placements`` (details in :func:`place`).
STRATEGY_SUMMARIES = {
    "random": "a uniform sample of the nodes (seeded)",
    "max_degree": "the highest-degree nodes first",
    "min_degree": "the lowest-degree nodes first",
    "betweenness": "the nodes of highest betweenness centrality first",
    "eigenvector": "the nodes of highest eigenvector centrality first",
    "cut_vertices": "articulation points first, then by betweenness",
    "clustered": "a ball of nodes around a center (by hop distance)",
    "spread": "greedy farthest-first: each next node maximises its hop distance to those chosen",
    "fiedler": "endpoints of the edges crossing the Fiedler-vector cut, most central first",
    "eclipse": "every neighbour of one victim node",
    "manual": "exactly the node ids given",
    "marked": "the nodes whose byzantine attribute is true (a node file's byzantine column)",
    "attach": "adds count new Byzantine nodes linked to each target node (the graph stays the honest part)",
}


def _check_limit(graph: nx.Graph, byzantine: list[int], b: int) -> None:
    """Raise naming the first honest node with more than b Byzantine neighbours."""
    counts = byzantine_counts(graph, byzantine)
    counts[byzantine] = 0
    over = np.flatnonzero(counts > b)
    if over.size:
        raise ValueError(
            f"place: honest node {over[0]} has {counts[over[0]]} Byzantine neighbours, above "
            f"max_per_neighborhood={b}. Pass repair=True to move Byzantine nodes, lower the "
            "count, or choose another strategy."
        )


def repair_placement(graph: nx.Graph, byzantine, max_per_neighborhood: int, *, preference=None):
    """Greedily move Byzantine nodes until no honest node has more than b Byzantine neighbours.

    The excess is sum over honest v of max(0, count_v - b), count_v being v's Byzantine
    in-neighbours. Each move takes a Byzantine node next to an honest node over the limit
    and puts it on a node never moved out, choosing the pair that leaves the smallest excess
    (ties: target earliest in `preference`, then by id; then source by id). A move never
    raises the excess and retires its source for good, so at most n moves are made.

    Args:
      graph: nodes 0..n-1.
      byzantine: Byzantine node ids.
      max_per_neighborhood: b >= 0.
      preference: candidate order for new positions (nodes not listed follow by id).

    Returns:
      (ids, moves): the repaired sorted ids and the (from, to) moves made, in order.

    Raises:
      ValueError: the greedy repair is stuck (no single move lowers the excess); it is
        greedy, so a valid placement may still exist.

    Example:
      >>> repair_placement(ring(6), [0, 2], 1)
      ([1, 2], [(0, 1)])
    """
    n = check_node_ids("repair_placement", graph)
    b = check_int("repair_placement", "max_per_neighborhood", max_per_neighborhood, 0, "Use b >= 0.")
    is_byzantine = np.zeros(n, dtype=bool)
    is_byzantine[check_members("repair_placement", "byzantine", byzantine, n)] = True
    listed = [] if preference is None else [int(v) for v in preference]
    check_members("repair_placement", "preference", listed, n)
    rank = np.empty(n, dtype=int)
    rank[listed + sorted(set(range(n)) - set(listed))] = np.arange(n)
    src, dst = inbox_links(graph)
    retired = np.zeros(n, dtype=bool)
    moves = []
    while (excess := _excess(src, dst, is_byzantine, b)) > 0:
        options = [
            _best_target(src, dst, is_byzantine, retired, rank, u, b)
            for u in _sources(src, dst, is_byzantine, b)
        ]
        left, _, source, target = min(options, default=(excess + 1, 0, -1, -1))
        if left > excess:
            raise ValueError(
                f"repair_placement: the greedy repair is stuck with {excess} Byzantine neighbours above b={b} "
                "(no single move lowers the excess; a valid placement may still exist). Lower the count, "
                "raise max_per_neighborhood, or place the nodes with strategy='manual'."
            )
        is_byzantine[[source, target]] = False, True
        retired[source] = True
        moves.append((source, target))
    return np.flatnonzero(is_byzantine).tolist(), moves


def _excess(src, dst, is_byzantine, b: int) -> int:
    """sum over honest v of max(0, Byzantine in-neighbours of v - b)."""
    counts = in_counts(src, dst, is_byzantine)
    return int(np.maximum(counts - b, 0)[~is_byzantine].sum())


def _sources(src, dst, is_byzantine, b: int) -> list[int]:
    """Byzantine nodes with an honest out-neighbour over the limit."""
    counts = in_counts(src, dst, is_byzantine)
    over = ~is_byzantine & (counts > b)
    return np.unique(src[is_byzantine[src] & over[dst]]).tolist()


def _best_target(src, dst, is_byzantine, retired, rank, source: int, b: int):
    """(excess after the move, target rank, source, target) for the best target of `source`."""
    after = is_byzantine.copy()
    after[source] = False
    counts = in_counts(src, dst, after)
    base = _excess(src, dst, after, b)
    # Turning v Byzantine adds 1 at each honest out-neighbour already at b or above, and
    # drops v's own excess.
    pushed = np.bincount(src, weights=(~after & (counts >= b))[dst], minlength=after.size)
    left = base + pushed.astype(int) - np.maximum(counts - b, 0)
    eligible = np.flatnonzero(~after & ~retired & (np.arange(after.size) != source))
    if eligible.size == 0:
        return (np.iinfo(int).max, 0, source, -1)
    target = eligible[np.lexsort((rank[eligible], left[eligible]))[0]]
    return (int(left[target]), int(rank[target]), source, int(target))
