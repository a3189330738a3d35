"""Mixing weights of a graph in edge form: named rules, a given matrix, per-edge weights,
and the Byzantine weight of every honest node set to a chosen delta.

x_i <- w_ii x_i + sum_{j in inbox(i)} W_ij x_j. Every form returns (src, dst, edge, own):
one entry per inbox link src -> dst, sorted by (dst, src), and the self weights. Sparse
(O(edges)) except a given matrix, which is n x n by nature.
"""

import numbers
import os
from pathlib import Path

import networkx as nx
import numpy as np

from ._checks import check_choice, check_members, check_node_ids

#: The named weights; a matrix (an array, or the pathlib.Path of a .npy or .csv file) is the other form.
WEIGHTS = ("metropolis", "uniform", "max_degree", "edgelist")
#: How far a row of a given matrix may sum from 1 (and an edge list's in-weights above 1).
ROW_TOLERANCE = 1e-6


def mixing_weights(
    graph: nx.Graph,
    *,
    kind=None,
    byzantine=(),
    count_byzantine_in_degree: bool = True,
    byzantine_weight: float | None = None,
):
    """Gossip weights in edge form: x_i <- w_ii x_i + sum_{j in inbox(i)} W_ij x_j.

    metropolis (undirected): W_ij = 1 / (1 + max(d_i, d_j)), w_ii = 1 - sum_j W_ij, a
      symmetric doubly stochastic matrix.
    uniform: W_ij = w_ii = 1 / (1 + d_i), d_i the in-degree: row stochastic only. The only
      named default on directed graphs (Metropolis needs symmetric links).
    max_degree: W_ij = 1 / (1 + d_max) on every link, d_max the largest in-degree,
      w_ii = 1 - sum_j W_ij (doubly stochastic on an undirected graph).
    edgelist: W_ij = the `weight` attribute of the edge j -> i (the third column of
      `from_edgelist`; an undirected edge weighs the same both ways), w_ii = 1 - sum_j W_ij,
      which must be >= 0 (a deficit of at most 1e-6 from rounding is taken as 0).
    a matrix: an n x n array, W[i, j] the weight node i gives node j, or the pathlib.Path
      of one in a .npy or .csv file (`read_weight_matrix`): entries finite and >= 0,
      nonzero off the diagonal only where j is in i's inbox, rows summing to 1 within 1e-6.

    With count_byzantine_in_degree=False the degrees count honest neighbours only and
    links touching a Byzantine node weigh 0 (the honest subgraph's own weights); by default
    every neighbour counts, as an honest node that cannot tell them apart must do.

    byzantine_weight=delta (in [0, 1)) then sets, at every honest node with Byzantine
    in-neighbours, their total weight to delta (split equally among them) and rescales its
    honest weights, its own included, to sum to 1 - delta; other rows are unchanged. This
    is the delta of ClippedGossip's analysis, which its experiments sweep.

    Args:
      graph: nodes 0..n-1.
      kind: a name of WEIGHTS, a matrix or a matrix file (see above); None picks
        metropolis, or uniform when directed.
      byzantine: Byzantine node ids (used by count_byzantine_in_degree=False and
        byzantine_weight).
      count_byzantine_in_degree: whether Byzantine neighbours count in the degrees (named
        degree-based weights only).
      byzantine_weight: delta in [0, 1), or None to keep the weights' own.

    Returns:
      (src int[m], dst int[m], edge float64[m], self float64[n]): one entry per inbox link
      src -> dst (both directions of an undirected edge), sorted by (dst, src).

    Raises:
      ValueError: an unknown kind, metropolis on a directed graph, a bad matrix or edge
        weight (naming the source, the entry or node and a fix), or a bad delta.

    Example:
      >>> src, dst, edge, own = mixing_weights(ring(4))
      >>> edge.round(4).tolist(), own.round(4).tolist()
      ([0.3333, 0.3333, 0.3333, 0.3333, 0.3333, 0.3333, 0.3333, 0.3333], [0.3333, 0.3333, 0.3333, 0.3333])

    References:
      Xiao, Boyd. Fast linear iterations for distributed averaging. 2004 (Metropolis and
      max-degree weights).
      He, Karimireddy, Jaggi. Byzantine-robust decentralized learning via ClippedGossip. 2022.
    """
    n = check_node_ids("mixing_weights", graph)
    is_byzantine = np.zeros(n, dtype=bool)
    is_byzantine[check_members("mixing_weights", "byzantine", byzantine, n)] = True
    if byzantine_weight is not None and not count_byzantine_in_degree:
        raise ValueError(
            "mixing_weights: byzantine_weight sets the weight of Byzantine links, which "
            "count_byzantine_in_degree=False sets to 0. Use one of the two."
        )
    if isinstance(kind, str) or kind is None:
        links = _named(graph, weight_kind(kind, graph), is_byzantine, count_byzantine_in_degree)
    else:
        if not count_byzantine_in_degree:
            raise ValueError(
                "mixing_weights: count_byzantine_in_degree=False recomputes degree-based weights; "
                "a given matrix has no degrees. Zero the Byzantine links in the matrix instead."
            )
        if isinstance(kind, os.PathLike):
            links = matrix_links(graph, read_weight_matrix(kind), source=str(kind))
        else:
            links = matrix_links(graph, kind)
    if byzantine_weight is None:
        return links
    return with_byzantine_weight(*links, is_byzantine, check_delta("mixing_weights", byzantine_weight))


def weight_kind(kind: str | None, graph: nx.Graph) -> str:
    """The weights' name, defaulting to metropolis, or uniform on a directed graph."""
    default = "uniform" if graph.is_directed() else "metropolis"
    return check_choice("mixing_weights", "kind", kind or default, WEIGHTS)


def check_delta(function: str, delta) -> float:
    """delta as a float, or raise if it is not a number in [0, 1)."""
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0.0 <= delta < 1.0:
        raise ValueError(
            f"{function}: byzantine_weight must be a number in [0, 1) (the total weight of an honest "
            f"node's Byzantine neighbours); got {delta!r}. Pass e.g. 0.1."
        )
    return float(delta)


def inbox_links(graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Every inbox link src -> dst (both directions of an undirected edge), sorted by (dst, src).

    Args:
      graph: nodes 0..n-1.

    Returns:
      (src int64[m], dst int64[m]).

    Example:
      >>> inbox_links(ring(3))[0].tolist()
      [1, 2, 0, 2, 0, 1]
    """
    pairs = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    if not graph.is_directed():
        pairs = np.concatenate([pairs, pairs[:, ::-1]])
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    return pairs[order, 0], pairs[order, 1]


def _named(graph: nx.Graph, kind: str, is_byzantine: np.ndarray, count_byzantine_in_degree: bool):
    """The links of a named kind of weights."""
    if kind == "metropolis" and graph.is_directed():
        raise ValueError(
            "mixing_weights: Metropolis weights need an undirected graph (W_ij = W_ji). "
            "Use kind='uniform' for directed graphs."
        )
    n = is_byzantine.size
    src, dst = inbox_links(graph)
    if kind == "edgelist":
        if not count_byzantine_in_degree:
            raise ValueError(
                "mixing_weights: count_byzantine_in_degree=False recomputes degree-based weights; "
                "an edge list's weights have no degrees. Zero the Byzantine edges' weights instead."
            )
        return _edgelist_links(graph, src, dst)
    live = np.ones(src.size, dtype=bool)
    if not count_byzantine_in_degree:
        live = ~(is_byzantine[src] | is_byzantine[dst])
    degree = np.bincount(dst[live], minlength=n).astype(float)
    if kind == "metropolis":
        edge = 1.0 / (1.0 + np.maximum(degree[src], degree[dst]))
    elif kind == "uniform":
        edge = 1.0 / (1.0 + degree[dst])
    else:
        edge = np.full(src.size, 1.0 / (1.0 + degree.max()))
    edge = np.where(live, edge, 0.0)
    own = 1.0 - np.bincount(dst, weights=edge, minlength=n)
    return src, dst, edge, own


def _edgelist_links(graph: nx.Graph, src: np.ndarray, dst: np.ndarray):
    """Per-edge weights from the `weight` attribute, the self weight the rest of 1."""
    source = graph.graph.get("source", "the graph")
    edge = np.empty(src.size)
    for index, (u, v) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        weight = graph.edges[u, v].get("weight")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight) or weight < 0:
            have = "has no weight" if weight is None else f"has weight {weight!r}"
            raise ValueError(
                f"mixing_weights: weights 'edgelist': edge {u} -> {v} of {source} {have}; every edge needs a "
                "finite weight >= 0 (a third column 'u v w' of the edge list). Add it, or use weights 'metropolis'."
            )
        edge[index] = weight
    own = 1.0 - np.bincount(dst, weights=edge, minlength=graph.number_of_nodes())
    if own.size and own.min() < -ROW_TOLERANCE:
        node = int(np.argmin(own))
        raise ValueError(
            f"mixing_weights: weights 'edgelist': the edges into node {node} of {source} weigh "
            f"{1.0 - own[node]:.9g} in total, more than 1, leaving it a negative self weight. "
            f"Scale the weights of node {node}'s in-edges down to sum to at most 1."
        )
    return src, dst, edge, np.maximum(own, 0.0)


def read_weight_matrix(path) -> np.ndarray:
    """An n x n weight matrix from a .npy file or a .csv file (one row per line, entries
    separated by commas; blank lines and text after `#` ignored).

    Args:
      path: the file; its suffix picks the format.

    Returns:
      float64[n, n] (its shape and values are checked against a graph by `matrix_links`).

    Raises:
      ValueError: a missing file, another suffix, a .npy that is not a 2-D numeric array,
        or a malformed .csv line (naming file and line).
    """
    path = Path(path)
    if path.suffix not in (".npy", ".csv"):
        raise ValueError(f"{path}: a weight matrix must be a .npy or a .csv file; got suffix {path.suffix!r}.")
    if not path.is_file():
        raise ValueError(f"{path}: weight matrix file not found. Check the path (relative to the scenario file).")
    if path.suffix == ".npy":
        try:
            matrix = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: not a numeric .npy array ({error}). Save one with numpy.save.") from None
        if matrix.ndim != 2 or not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool):
            raise ValueError(
                f"{path}: a weight matrix is a 2-D numeric array; got shape {matrix.shape}, dtype {matrix.dtype}."
            )
        return matrix.astype(np.float64)
    lines = enumerate(path.read_text().splitlines(), 1)
    rows = [(number, row) for number, row in ((number, _csv_row(path, number, line)) for number, line in lines) if row]
    if not rows:
        raise ValueError(f"{path}: no rows found. Write one row of the matrix per line, e.g. '0.5, 0.5'.")
    first, width = rows[0][0], len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise ValueError(
                f"{path}:{number}: {len(row)} entries, but line {first} has {width}. Write one full row per line."
            )
    return np.asarray([row for _, row in rows], dtype=np.float64)


def _csv_row(path: Path, number: int, line: str) -> list[float] | None:
    """One .csv line as floats (None for a blank or comment line), naming file and line on error."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    try:
        return [float(cell) for cell in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{path}:{number}: expected numbers separated by commas, got {line.strip()!r}. Fix the line."
        ) from None


def matrix_links(graph: nx.Graph, matrix, *, source: str = "the weight matrix"):
    """The links of a given n x n matrix, W[i, j] the weight node i gives node j.

    Args:
      graph: nodes 0..n-1.
      matrix: array-like n x n.
      source: what errors call the matrix (its file).

    Returns:
      (src, dst, edge, own) as `mixing_weights`; links j -> i of the graph get W[i, j]
      (0 allowed), the self weights the diagonal.

    Raises:
      ValueError: a wrong size, a ragged, non-finite or negative entry, a weight on a pair
        that is not an edge, a row not summing to 1 (the first such row and its sum).
    """
    n = check_node_ids("mixing_weights", graph)
    try:
        matrix = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: not a numeric matrix of equal rows; write {n} numbers per row.") from None
    if matrix.shape != (n, n):
        raise ValueError(
            f"{source}: the graph has {n} nodes, so the weight matrix must be {n} x {n}; got shape "
            f"{matrix.shape}. Write one row of {n} weights per node."
        )
    for bad, what in ((~np.isfinite(matrix), "not finite"), (matrix < 0, "negative")):
        if bad.any():
            i, j = (int(a) for a in np.argwhere(bad)[0])
            raise ValueError(
                f"{source}: entry ({i}, {j}) = {float(matrix[i, j])!r} is {what}; weights must be finite and >= 0."
            )
    src, dst = inbox_links(graph)
    off_edge = matrix.copy()
    np.fill_diagonal(off_edge, 0.0)
    off_edge[dst, src] = 0.0
    if off_edge.any():
        i, j = (int(a) for a in np.argwhere(off_edge)[0])
        raise ValueError(
            f"{source}: entry ({i}, {j}) = {float(matrix[i, j])!r} is a weight of node {i} on node {j}, but {j} -> {i} "
            f"is not an edge of the graph ({j} is not in {i}'s inbox). Set it to 0 or add the edge."
        )
    sums = matrix.sum(axis=1)
    bad = np.abs(sums - 1.0) > ROW_TOLERANCE
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{source}: row {i} (node {i}'s weights) sums to {sums[i]:.9g}; every row must sum to 1 within "
            f"{ROW_TOLERANCE:g}. Adjust its diagonal entry to 1 minus the rest of the row."
        )
    return src, dst, matrix[dst, src], np.diag(matrix).copy()


def with_byzantine_weight(src, dst, edge, own, is_byzantine: np.ndarray, delta: float):
    """Links whose honest receivers give their Byzantine in-neighbours delta in total.

    At an honest node i with b_i > 0 Byzantine in-neighbours: each gets delta / b_i, and
    its honest weights (its own included) are scaled by (1 - delta) / (their sum). Rows of
    other nodes are unchanged.

    Raises:
      ValueError: an honest node with Byzantine in-neighbours gives itself and its honest
        neighbours weight 0, so there is nothing to rescale.
    """
    n = is_byzantine.size
    from_byzantine = is_byzantine[src]
    count = np.bincount(dst[from_byzantine], minlength=n)
    target = (count > 0) & ~is_byzantine
    honest_sum = own + np.bincount(dst, weights=np.where(from_byzantine, 0.0, edge), minlength=n)
    stuck = target & (honest_sum <= 0)
    if stuck.any():
        node = int(np.argmax(stuck))
        raise ValueError(
            f"mixing_weights: honest node {node} gives itself and its honest neighbours weight 0, so "
            "byzantine_weight cannot rescale them to 1 - delta. Give it a positive self weight."
        )
    scale = np.where(target, (1.0 - delta) / np.where(target, honest_sum, 1.0), 1.0)
    share = delta / np.maximum(count, 1)
    edge = np.where(target[dst], np.where(from_byzantine, share[dst], edge * scale[dst]), edge)
    return src, dst, edge, own * scale
