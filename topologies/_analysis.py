"""Spectra, Byzantine weights and (r,s)-robustness of a graph with Byzantine nodes.

Dense linear algebra: `analyze` costs O(n^2) memory and O(n^3) time (a few seconds at
n = 2,000). The weights come from `mixing_weights` (`_weights.py`), which is sparse and
feeds the engine's tables.
"""

import math
import os
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ._checks import check_int, check_members, check_node_ids
from ._weights import inbox_links, mixing_weights, weight_kind

_EXACT_CAP = 24


def byzantine_counts(graph: nx.Graph, byzantine) -> np.ndarray:
    """Number of Byzantine in-neighbours of every node.

    Args:
      graph: nodes 0..n-1.
      byzantine: Byzantine node ids.

    Returns:
      int[n]; entry v counts the Byzantine nodes in v's inbox.

    Example:
      >>> byzantine_counts(ring(4), [0]).tolist()
      [0, 1, 0, 1]
    """
    n = check_node_ids("byzantine_counts", graph)
    is_byzantine = np.zeros(n, dtype=bool)
    is_byzantine[check_members("byzantine_counts", "byzantine", byzantine, n)] = True
    return in_counts(*inbox_links(graph), is_byzantine)


def in_counts(src: np.ndarray, dst: np.ndarray, is_byzantine: np.ndarray) -> np.ndarray:
    """int[n]: per node, the Byzantine sources among its inbox links src -> dst."""
    return np.bincount(dst[is_byzantine[src]], minlength=is_byzantine.size)


@dataclass(frozen=True)
class Robustness:
    """(r,s)-robustness of a graph (LeBlanc et al. 2013), exact or bounded.

    A set S is r-reachable when some node of S has >= r in-neighbours outside S. The graph
    is (r,s)-robust when, for every pair of disjoint nonempty S1, S2, all of S1 or all of
    S2 or at least s nodes of S1 and S2 together have >= r in-neighbours outside their set;
    r-robust means (r,1)-robust.

    Attributes:
      r: the largest r for which the graph is r-robust (exact), or a lower bound.
      r_upper: an upper bound on r (equal to r when exact).
      s: the largest s <= n for which the graph is (r,s)-robust, or None (not computed).
      exact: whether r and s were computed exactly (by enumerating subsets).
      method: how r was obtained.
    """

    r: int
    r_upper: int
    s: int | None
    exact: bool
    method: str

    def __str__(self) -> str:
        if self.exact:
            return f"({self.r},{self.s})-robust, exact ({self.method})"
        return f"r-robust for r in [{self.r}, {self.r_upper}], not computed exactly ({self.method})"


def robustness(graph: nx.Graph, *, exact_max_nodes: int = 16) -> Robustness:
    """(r,s)-robustness of the whole graph: exact up to exact_max_nodes, bounded beyond.

    Exact: all 2^n subsets, with a min-over-subsets transform for the pairs, O(n^2 2^n).
    Bounds beyond: r >= 1 iff the graph has a rooted out-branching (a connected graph when
    undirected); r >= min(delta - floor(n/2) + 1, ceil(n/2)), delta the minimum in-degree
    (the smaller set of a pair has <= floor(n/2) nodes); r <= max(1, delta) and
    r <= ceil(n/2).

    Args:
      graph: nodes 0..n-1.
      exact_max_nodes: the largest n enumerated exactly (2^n subsets; 20 takes seconds).

    Returns:
      A Robustness.

    Example:
      >>> str(robustness(complete(4)))
      '(2,4)-robust, exact (all subset pairs)'

    References:
      LeBlanc, Zhang, Koutsoukos, Sundaram. Resilient asymptotic consensus in robust
      networks. IEEE JSAC 2013.
    """
    n = check_node_ids("robustness", graph)
    limit = check_int("robustness", "exact_max_nodes", exact_max_nodes, 1, "Use a small limit such as 16.")
    if limit > _EXACT_CAP:
        raise ValueError(
            f"robustness: exact_max_nodes={limit} would enumerate 2^{limit} subsets; the cap is "
            f"{_EXACT_CAP}. Use exact_max_nodes <= {_EXACT_CAP}."
        )
    if n <= limit:
        r, s = _exact(graph)
        return Robustness(r, r, s, True, "all subset pairs")
    rooted = len([c for c in nx.condensation(nx.DiGraph(graph)).in_degree if c[1] == 0]) == 1
    delta = min(d for _, d in (graph.in_degree if graph.is_directed() else graph.degree))
    half = math.ceil(n / 2)
    lower = max(min(delta - n // 2 + 1, half), 1) if rooted else 0
    upper = min(max(1, delta), half) if rooted else 0
    method = (
        f"n={n} > exact_max_nodes={limit}; lower bound: min in-degree {delta} >= floor(n/2) + r - 1, "
        "or a rooted out-branching for r = 1; upper bound: min(min in-degree, ceil(n/2))"
    )
    return Robustness(lower, upper, None, False, method)


def _reach_counts(graph: nx.Graph, r: int) -> np.ndarray:
    """x[S] = |{v in S: v has >= r in-neighbours outside S}| when that is < |S|, else a
    large value (S is fully reachable, or empty), over all subsets S as bitmasks."""
    n = graph.number_of_nodes()
    masks = np.arange(2**n, dtype=np.uint64)
    inbox = graph.predecessors if graph.is_directed() else graph.neighbors
    reached = np.zeros(2**n, dtype=np.int64)
    for v in range(n):
        bits = np.uint64(sum(1 << u for u in inbox(v)))
        outside = np.bitwise_count(bits & ~masks)
        reached += ((masks >> np.uint64(v)) & np.uint64(1)).astype(bool) & (outside >= r)
    size = np.bitwise_count(masks)
    return np.where(reached < size, reached, 2 * n + 1)


def _min_pair(x: np.ndarray, n: int) -> int:
    """min over disjoint nonempty S1, S2 of x[S1] + x[S2] (large when no pair qualifies)."""
    best = x.copy()  # best[M] = min over subsets T of M of x[T]
    for bit in range(n):
        view = best.reshape(-1, 2, 2**bit)
        np.minimum(view[:, 1, :], view[:, 0, :], out=view[:, 1, :])
    full = 2**n - 1
    return int(np.min(x + best[full ^ np.arange(2**n)]))


def _max_s(graph: nx.Graph, r: int) -> int:
    """The largest s <= n such that the graph is (r, s)-robust (0 if not r-robust)."""
    n = graph.number_of_nodes()
    return min(_min_pair(_reach_counts(graph, r), n), n)


def _exact(graph: nx.Graph) -> tuple[int, int]:
    """The largest r with the graph r-robust, and the largest s for that r (0, 0 if none)."""
    r, s = 0, 0
    if graph.number_of_nodes() < 2:
        return r, s  # no two disjoint non-empty subsets: robustness is not defined beyond 0
    while r < graph.number_of_nodes() and (larger := _max_s(graph, r + 1)) >= 1:
        r, s = r + 1, larger
    return r, s


@dataclass(frozen=True, eq=False)
class Report:
    """What `analyze` found; str(report) is a few printable lines.

    Attributes:
      n: number of nodes.
      byzantine: the Byzantine node ids.
      directed: whether the graph is directed.
      kind: the mixing weights: a name of WEIGHTS, "matrix" (a given array) or
        "matrix PATH" (a matrix file).
      count_byzantine_in_degree: whether Byzantine neighbours counted in the degrees.
      delta: the byzantine_weight asked for (None: the weights' own); byzantine_weight
        holds what each honest node realises.
      weights: float64[n, n], the mixing matrix W (row i: node i's weights).
      honest: int[h], the honest node ids.
      byzantine_count: int[h], Byzantine in-neighbours of each honest node.
      byzantine_weight: float64[h], delta_i = sum over Byzantine j of W_ij.
      spectral_gap: 1 - max(|lambda_2|, |lambda_h|) of W~ = W_HH + diag(delta), i.e. 1 minus
        the second largest eigenvalue modulus (NaN with fewer than 2 honest nodes).
      algebraic_connectivity: lambda_2 of the Laplacian D - A of the honest subgraph
        (undirected version), 0 when disconnected.
      honest_connected: the honest subgraph is connected (strongly, when directed).
      robustness: (r,s)-robustness of the whole graph.
      f_total_robust: (F+1, F+1)-robust with F = len(byzantine), the condition for W-MSR
        consensus under an F-total adversary; None when the bounds cannot tell.
      f_local_robust: (2F+1)-robust with F = max byzantine_count, sufficient for W-MSR
        under an F-local adversary; None when the bounds cannot tell.
    """

    n: int
    byzantine: tuple[int, ...]
    directed: bool
    kind: str
    count_byzantine_in_degree: bool
    delta: float | None
    weights: np.ndarray = field(repr=False)
    honest: np.ndarray = field(repr=False)
    byzantine_count: np.ndarray = field(repr=False)
    byzantine_weight: np.ndarray = field(repr=False)
    spectral_gap: float
    algebraic_connectivity: float
    honest_connected: bool
    robustness: Robustness
    f_total_robust: bool | None
    f_local_robust: bool | None

    def __str__(self) -> str:
        counted = "counted" if self.count_byzantine_in_degree else "not counted"
        worst = (
            f"max {self.byzantine_count.max()}, mean {self.byzantine_count.mean():.3g}; Byzantine weight "
            f"max {self.byzantine_weight.max():.3g}, mean {self.byzantine_weight.mean():.3g}"
            if self.honest.size
            else "no honest node"
        )
        f_local = int(self.byzantine_count.max()) if self.honest.size else 0
        lines = [
            f"nodes {self.n} ({len(self.byzantine)} Byzantine), "
            f"{'directed' if self.directed else 'undirected'}, "
            f"{self.kind} weights (Byzantine neighbours {counted} in degrees)"
            + ("" if self.delta is None else f", Byzantine weight {self.delta:g} at honest nodes with Byzantine neighbours"),
            f"honest subgraph connected: {'yes' if self.honest_connected else 'no'}; "
            f"algebraic connectivity {self.algebraic_connectivity:.4g}",
            f"spectral gap of honest block (Byzantine weight on diagonal): {self.spectral_gap:.4g}",
            f"Byzantine neighbours per honest node: {worst}",
            f"robustness: {self.robustness}",
            f"W-MSR (LeBlanc et al. 2013): F-total F={len(self.byzantine)} needs "
            f"({len(self.byzantine) + 1},{len(self.byzantine) + 1})-robust: {_verdict(self.f_total_robust)}; "
            f"F-local F={f_local} sufficient {2 * f_local + 1}-robust: {_verdict(self.f_local_robust)}",
        ]
        return "\n".join(lines)


def _kind_label(kind, graph: nx.Graph) -> str:
    """The name of the weights, "matrix" for an array, "matrix PATH" for a file."""
    if kind is None or isinstance(kind, str):
        return weight_kind(kind, graph)
    return f"matrix {kind}" if isinstance(kind, os.PathLike) else "matrix"


def _verdict(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown (bounds only)"}[value]


def analyze(
    graph: nx.Graph,
    byzantine=(),
    *,
    kind=None,
    count_byzantine_in_degree: bool = True,
    byzantine_weight: float | None = None,
    exact_max_nodes: int = 16,
) -> Report:
    """Mixing, spectra and robustness of a graph with Byzantine nodes, for plots and papers.

    W comes from `mixing_weights`. The honest block with the Byzantine weight folded onto
    the diagonal, W~ = W_HH + diag(delta), delta_i = sum_{j Byzantine} W_ij, is row
    stochastic; its spectral gap 1 - max(|lambda_2|, |lambda_h|) sets ClippedGossip's
    error floor O(delta_max zeta^2 / gamma^2).

    Args:
      graph: nodes 0..n-1.
      byzantine: Byzantine node ids.
      kind: mixing weights, see `mixing_weights`: a name, an n x n matrix (e.g. a
        network's `mixing_matrix()`) or the pathlib.Path of a matrix file.
      count_byzantine_in_degree: whether Byzantine neighbours count in the degrees (True:
        the weights the engine uses; False: the honest subgraph's own weights, delta = 0).
      byzantine_weight: the delta of `mixing_weights` (the engine's `[network]
        byzantine_weight`); report.byzantine_weight is then delta at every honest node with
        a Byzantine in-neighbour, 0 elsewhere.
      exact_max_nodes: see `robustness`.

    Returns:
      A Report.

    Raises:
      ValueError: bad node ids or weights.

    Example:
      >>> print(analyze(ring(8), [0]).spectral_gap)  # doctest: +SKIP

    References:
      He, Karimireddy, Jaggi. Byzantine-robust decentralized learning via ClippedGossip. 2022.
      LeBlanc, Zhang, Koutsoukos, Sundaram. Resilient asymptotic consensus in robust
      networks. IEEE JSAC 2013.
    """
    n = check_node_ids("analyze", graph)
    byzantine = check_members("analyze", "byzantine", byzantine, n)
    src, dst, edge, own = mixing_weights(
        graph, kind=kind, byzantine=byzantine, count_byzantine_in_degree=count_byzantine_in_degree,
        byzantine_weight=byzantine_weight,
    )
    weights = np.diag(own)
    weights[dst, src] = edge
    honest = np.setdiff1d(np.arange(n), byzantine)
    delta = weights[np.ix_(honest, byzantine)].sum(axis=1)
    counts = byzantine_counts(graph, byzantine)
    honest_graph = graph.subgraph(honest.tolist())
    rob = robustness(graph, exact_max_nodes=exact_max_nodes)
    f_local = int(counts[honest].max()) if honest.size else 0
    return Report(
        n=n,
        byzantine=tuple(byzantine),
        directed=graph.is_directed(),
        kind=_kind_label(kind, graph),
        count_byzantine_in_degree=count_byzantine_in_degree,
        delta=None if byzantine_weight is None else float(byzantine_weight),
        weights=weights,
        honest=honest,
        byzantine_count=counts[honest],
        byzantine_weight=delta,
        spectral_gap=_spectral_gap(weights[np.ix_(honest, honest)] + np.diag(delta)),
        algebraic_connectivity=_algebraic_connectivity(honest_graph),
        honest_connected=_connected(honest_graph),
        robustness=rob,
        f_total_robust=_is_rs_robust(graph, rob, len(byzantine) + 1, len(byzantine) + 1),
        f_local_robust=_is_rs_robust(graph, rob, 2 * f_local + 1, 1),
    )


def _spectral_gap(mixing: np.ndarray) -> float:
    """1 minus the second largest eigenvalue modulus of a row-stochastic matrix.

    ``eigvalsh`` only where the matrix is symmetric (Metropolis weights of an undirected
    graph); uniform weights are not, even on undirected graphs.
    """
    if mixing.shape[0] < 2:
        return math.nan
    symmetric = np.allclose(mixing, mixing.T, rtol=0.0, atol=1e-12)
    values = np.linalg.eigvalsh(mixing) if symmetric else np.linalg.eigvals(mixing)
    return float(max(0.0, 1.0 - np.sort(np.abs(values))[-2]))


def _algebraic_connectivity(graph: nx.Graph) -> float:
    if graph.number_of_nodes() < 2:
        return 0.0
    laplacian = nx.laplacian_matrix(graph.to_undirected(as_view=True), weight=None).toarray().astype(float)
    return float(max(0.0, np.linalg.eigvalsh(laplacian)[1]))


def _connected(graph: nx.Graph) -> bool:
    if graph.number_of_nodes() == 0:
        return False
    return nx.is_strongly_connected(graph) if graph.is_directed() else nx.is_connected(graph)


def _is_rs_robust(graph: nx.Graph, rob: Robustness, r: int, s: int) -> bool | None:
    """Whether the graph is (r,s)-robust; None when only bounds are known and they cannot
    tell. Uses: (r+s-1)-robust implies (r,s)-robust, and (r,s)-robust implies r-robust."""
    if r > rob.r_upper:
        return False
    if rob.exact:
        return s <= _max_s(graph, r)
    return True if rob.r >= r + s - 1 else None
