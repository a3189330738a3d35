"""Threat-model diagnostics of a plan: what its Byzantine nodes can do to its honest ones.

Computed on the host from the network's inbox tables (the weights the engine really
uses), before anything compiles, and cheap enough for every run at 10,000 nodes:

- per honest node, its Byzantine in-neighbours (Byzantine slots of its inbox) and its
  Byzantine weight delta_i (the sum of the weights of those slots), against the f its
  rule assumes (the plan's ``f_nodes``);
- whether the honest subgraph is connected (strongly, on a directed graph), and its
  number of components (``scipy.sparse.csgraph.connected_components``, O(n + m));
- the spectral gap 1 - max(|lambda_2|, |lambda_h|) of the honest block with the
  Byzantine weight folded onto the diagonal, W~ = W_HH + diag(delta), as
  :func:`topologies.analyze` defines it (it sets ClippedGossip's error floor: He,
  Karimireddy, Jaggi 2022). Up to :data:`DENSE_MAX_NODES` honest nodes it is computed
  densely (``numpy.linalg``, exact, what ``topologies.analyze`` does); above, with the
  sparse ARPACK solver (``scipy.sparse.linalg.eigsh`` when W~ is symmetric, as
  Metropolis weights of an undirected graph are, else ``eigs``) for the two eigenvalues
  of largest modulus: 0.15-0.3 s for the whole diagnosis at 10,000 nodes of degree 10.
  When that does not converge within :data:`ARPACK_MAX_ITERATIONS` restarts (a spectrum
  clustered at 1: a ring or a path of thousands of nodes), a symmetric W~ falls back to
  shift-invert near 1 (a sparse LU, cheap on such sparse local graphs); a
  non-symmetric one's gap is then NaN, never a guess. ``gap_method`` says which.

A time-varying network (a schedule of R tables) reports, per node, its largest
Byzantine count and weight over the period; its honest graph is the union of the
rounds' honest links (the graph is connected over a period), and its gap is that of the
period's mean W~ (the expected matrix that governs randomized gossip: Boyd, Ghosh,
Prabhakar, Shah, Randomized gossip algorithms, 2006).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigs, eigsh

#: Honest nodes up to which the spectral gap is computed densely (exactly).
DENSE_MAX_NODES = 300
#: ARPACK's restarts for the plain sparse gap (about a second at 10,000 nodes when it
#: fails) and for each shift-invert solve.
ARPACK_MAX_ITERATIONS = 50
#: The shift of the shift-invert fallback: eigenvalues nearest 1 + SHIFT and -1 - SHIFT.
SHIFT = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class ThreatModel:
    """What :func:`threat_model` found.

    Attributes:
        honest: int[H], the honest node ids.
        byzantine_count: int[H], Byzantine in-neighbours of each honest node.
        byzantine_weight: float64[H], delta_i, the weight of its Byzantine slots.
        f: int[H], the f each honest node's rule assumes.
        honest_components: connected components of the honest subgraph (strongly
            connected ones when directed; 0 without honest nodes).
        spectral_gap: of W~ (see the module docstring); NaN below 2 honest nodes or when
            ARPACK does not converge.
        gap_method: "dense", "sparse", "shift-invert", or "sparse, not converged" /
            "shift-invert, not converged" (the gap NaN), or "none".
    """

    honest: np.ndarray
    byzantine_count: np.ndarray
    byzantine_weight: np.ndarray
    f: np.ndarray
    honest_components: int
    spectral_gap: float
    gap_method: str

    @property
    def honest_connected(self) -> bool:
        return self.honest_components == 1

    @property
    def over_f(self) -> np.ndarray:
        """int[k]: the honest nodes with more Byzantine in-neighbours than their f."""
        return self.honest[self.byzantine_count > self.f]

    def worst_node(self) -> int | None:
        """The honest node with the largest excess of Byzantine in-neighbours over its f
        (the smallest id among ties), or None without honest nodes."""
        if not self.honest.size:
            return None
        return int(self.honest[np.argmax(self.byzantine_count - self.f)])

    def record(self) -> dict[str, float]:
        """Plain numbers for the results store (NaN where undefined)."""
        worst = self.worst_node()
        at = None if worst is None else int(np.searchsorted(self.honest, worst))
        empty = not self.honest.size
        return {
            "honest_nodes": float(self.honest.size),
            "over_f_nodes": float(self.over_f.size),
            "max_byzantine_count": math.nan if empty else float(self.byzantine_count.max()),
            "mean_byzantine_count": math.nan if empty else float(self.byzantine_count.mean()),
            "max_byzantine_weight": math.nan if empty else float(self.byzantine_weight.max()),
            "mean_byzantine_weight": math.nan if empty else float(self.byzantine_weight.mean()),
            "worst_node": math.nan if at is None else float(worst),
            "worst_node_count": math.nan if at is None else float(self.byzantine_count[at]),
            "worst_node_f": math.nan if at is None else float(self.f[at]),
            "honest_connected": float(self.honest_connected),
            "honest_components": float(self.honest_components),
            "spectral_gap": self.spectral_gap,
        }

    def problems(self) -> str | None:
        """One sentence on what breaks the threat model (nodes over their f, a disconnected
        honest graph), or None when nothing does."""
        parts = []
        over = self.over_f
        if over.size:
            worst = self.worst_node()
            at = int(np.searchsorted(self.honest, worst))
            parts.append(
                f"{over.size} of {self.honest.size} honest nodes have more Byzantine in-neighbours than their f "
                f"(e.g. node {worst}: {int(self.byzantine_count[at])} Byzantine in-neighbours, f={int(self.f[at])})"
            )
        if not self.honest_connected:
            parts.append(f"the honest subgraph is disconnected ({self.honest_components} components)")
        return "; ".join(parts) or None


def threat_model(network, f_nodes, *, dense_max_nodes: int = DENSE_MAX_NODES) -> ThreatModel:
    """The threat-model diagnostics of ``network`` (a :class:`~decentral.network.Network`
    or ``Schedule``: only its protocol is read) with per-node ``f_nodes`` (int[n]).

    Vectorised numpy over the table slots, a sparse component search, and the gap densely
    up to ``dense_max_nodes`` honest nodes, else sparsely (see the module docstring).
    """
    byzantine = np.asarray(network.byzantine, dtype=bool)
    n = byzantine.size
    honest = np.flatnonzero(~byzantine)
    index = np.full(n, -1)
    index[honest] = np.arange(honest.size)
    tables = [_with_round_axis(table) for table in network.engine_tables()]
    rounds = tables[0][1].shape[0]
    count = np.zeros((rounds, n), dtype=np.int64)
    weight = np.zeros((rounds, n))
    rows, cols, values, link_src, link_dst = [], [], [], [], []
    for nodes, neighbors, mask, weights in tables:
        receiver = np.broadcast_to(nodes[None, :, None], neighbors.shape)
        turn = np.broadcast_to(np.arange(rounds)[:, None, None], neighbors.shape)
        hostile = mask & byzantine[neighbors]
        np.add.at(count, (turn[hostile], receiver[hostile]), 1)
        np.add.at(weight, (turn[hostile], receiver[hostile]), weights[hostile].astype(np.float64))
        kept = mask & ~byzantine[neighbors] & ~byzantine[receiver]
        rows.append(index[receiver[kept]])
        cols.append(index[neighbors[kept]])
        values.append(weights[kept].astype(np.float64) / rounds)
        link = kept & (neighbors != receiver)
        link_src.append(index[neighbors[link]])
        link_dst.append(index[receiver[link]])
    delta_mean = weight.mean(axis=0)[honest]
    count, weight = count.max(axis=0)[honest], weight.max(axis=0)[honest]
    components = _components(np.concatenate(link_src), np.concatenate(link_dst), honest.size, network.directed)
    mixing = sparse.coo_matrix(
        (np.concatenate([*values, delta_mean]),
         (np.concatenate([*rows, np.arange(honest.size)]), np.concatenate([*cols, np.arange(honest.size)]))),
        shape=(honest.size, honest.size),
    ).tocsr()
    gap, method = _spectral_gap(mixing, dense_max_nodes)
    f = np.asarray(f_nodes, dtype=np.int64)[honest]
    return ThreatModel(honest, count, weight, f, components, gap, method)


def _with_round_axis(table: dict):
    """(nodes [n_b], neighbors, mask, weights [R, n_b, K]) of an engine table (R = 1 for a
    static network's bucket)."""
    neighbors, mask, weights = (np.asarray(table[name]) for name in ("neighbors", "mask", "weights"))
    if neighbors.ndim == 2:
        neighbors, mask, weights = neighbors[None], mask[None], weights[None]
    return np.asarray(table["nodes"]), neighbors, mask, weights


def _components(src: np.ndarray, dst: np.ndarray, size: int, directed: bool) -> int:
    """Connected components of the honest links src -> dst (honest indices)."""
    if size == 0:
        return 0
    adjacency = sparse.coo_matrix((np.ones(src.size), (dst, src)), shape=(size, size)).tocsr()
    found, _ = connected_components(adjacency, directed=directed, connection="strong")
    return int(found)


def _spectral_gap(mixing, dense_max_nodes: int) -> tuple[float, str]:
    """1 minus the second largest eigenvalue modulus of the row-stochastic ``mixing``."""
    size = mixing.shape[0]
    if size < 2:
        return math.nan, "none"
    symmetric = abs(mixing - mixing.T).max() <= 1e-12
    if size <= dense_max_nodes or size <= 3:
        dense = mixing.toarray()
        values = np.linalg.eigvalsh(dense) if symmetric else np.linalg.eigvals(dense)
        return _gap(values), "dense"
    try:
        values = (eigsh if symmetric else eigs)(
            mixing, k=2, which="LM", return_eigenvectors=False, maxiter=ARPACK_MAX_ITERATIONS, ncv=min(size - 1, 20),
            tol=1e-10,
        )
        return _gap(values), "sparse"
    except ArpackNoConvergence:
        if not symmetric:
            return math.nan, "sparse, not converged"
    return _shift_invert_gap(sparse.csc_matrix(mixing))


def _shift_invert_gap(mixing) -> tuple[float, str]:
    """The gap of a symmetric W~ whose spectrum clusters at 1 (a long ring or path), where
    plain Lanczos stalls: its two eigenvalues nearest 1 + s, 1 and lambda_2, by
    shift-invert (s = :data:`SHIFT`; a sparse LU of W~ - (1 + s) I, cheap on the sparse
    local graphs that get here: an expander's gap converges in the plain solver). The
    smallest eigenvalue matters only when Gershgorin's bound lambda >= min_i (2 W~_ii - 1)
    does not already put it above -lambda_2; it is then the one nearest -1 - s."""
    try:
        top = eigsh(mixing, k=2, sigma=1.0 + SHIFT, which="LM", return_eigenvectors=False, maxiter=ARPACK_MAX_ITERATIONS)
        values = list(top)
        if 2.0 * mixing.diagonal().min() - 1.0 < -abs(float(np.sort(top)[0])):
            values += list(eigsh(mixing, k=1, sigma=-1.0 - SHIFT, which="LM", return_eigenvectors=False,
                                 maxiter=ARPACK_MAX_ITERATIONS))
    except (ArpackNoConvergence, RuntimeError):
        return math.nan, "shift-invert, not converged"
    return _gap(np.asarray(values)), "shift-invert"


def _gap(values: np.ndarray) -> float:
    """The largest modulus minus the second: 1 - |lambda_2| for an exactly stochastic W~,
    and not lost in the float32 rounding of the tables' rows (off 1 by ~1e-8)."""
    moduli = np.sort(np.abs(values))
    return float(max(0.0, moduli[-1] - moduli[-2]))
