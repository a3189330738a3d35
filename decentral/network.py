"""Engine arrays: a graph's inboxes as padded per-node tables, grouped in degree buckets.

Built once in numpy, outside jit. Row i of a table is node i's inbox: slot 0 is the node
itself, then its in-neighbours sorted by id; padding slots point at the node itself, are
masked out and weigh 0. Nodes are grouped by inbox size into a few buckets, each padded
only to its own widest inbox, so a hub of degree 300 does not make every node pay for
300 slots.

Every network the engine runs on follows one protocol, which :class:`Network` (a static
graph) and :class:`Schedule` (a time-varying one) implement:

- ``n``, ``byzantine`` (bool[n]) and ``directed``;
- ``smallest_inbox_sizes``: int32[n], each node's smallest inbox over rounds (what its
  rule's f is checked against);
- ``engine_tables()``: the inbox tables as a tuple of dicts of host arrays (``nodes``,
  ``neighbors``, ``mask``, ``weights``), which the engine passes to its compiled loop as
  traced arguments;
- ``tables_at(tables, round_index, key)`` (a static method, traced): the tables in force
  at a round, from those arrays and the round's PRNG key. Its class is part of the
  compiled program, so a new kind of network (tables drawn per round from the key, say)
  is one new class with these members, and the engine asks nothing else.
"""

from dataclasses import dataclass

import networkx as nx
import numpy as np

import topologies


@dataclass(frozen=True, eq=False)
class Bucket:
    """The inbox tables of a group of nodes with similar inbox sizes.

    Attributes:
      nodes: int32[n_b], the bucket's node ids, sorted.
      neighbors: int32[n_b, K_b]; slot 0 is the node itself, then its in-neighbours by id,
        then padding (the node itself).
      mask: bool[n_b, K_b], True on the valid slots.
      weights: float32[n_b, K_b], mixing weights, 0 on padding; each row sums to 1.
    """

    nodes: np.ndarray
    neighbors: np.ndarray
    mask: np.ndarray
    weights: np.ndarray

    def __repr__(self) -> str:
        return f"Bucket(nodes={self.neighbors.shape[0]}, width={self.neighbors.shape[1]})"


@dataclass(frozen=True, eq=False)
class Network:
    """A graph as engine tables: one or more degree buckets covering nodes 0..n-1.

    Attributes:
      n: number of nodes.
      byzantine: bool[n], True for Byzantine nodes.
      directed: whether inboxes are in-neighbours of a directed graph.
      buckets: the degree buckets, by increasing width; every node is in exactly one.
    """

    n: int
    byzantine: np.ndarray
    directed: bool
    buckets: tuple[Bucket, ...]

    @property
    def inbox_sizes(self) -> np.ndarray:
        """int32[n]: each node's inbox size, in-degree + 1 (itself), to validate f per node."""
        sizes = np.zeros(self.n, dtype=np.int32)
        for bucket in self.buckets:
            sizes[bucket.nodes] = bucket.mask.sum(axis=1)
        return sizes

    @property
    def smallest_inbox_sizes(self) -> np.ndarray:
        """int32[n]: each node's inbox size (a static graph's sizes never change)."""
        return self.inbox_sizes

    def engine_tables(self) -> tuple[dict, ...]:
        """One table (nodes, neighbors, mask, weights) per degree bucket."""
        return tuple(
            {"nodes": b.nodes, "neighbors": b.neighbors, "mask": b.mask, "weights": b.weights} for b in self.buckets
        )

    @staticmethod
    def tables_at(tables, round_index, key):
        """A static graph's tables are the same at every round."""
        del round_index, key
        return tables

    @property
    def real_slots(self) -> int:
        """Valid inbox slots over all nodes: sum of inbox sizes."""
        return int(sum(bucket.mask.sum() for bucket in self.buckets))

    @property
    def padded_slots(self) -> int:
        """Table slots over all buckets, padding included: sum of n_b * K_b."""
        return int(sum(bucket.mask.size for bucket in self.buckets))

    def edges(self) -> set[tuple[int, int]]:
        """The links (src, dst), src in dst's inbox, read back from the tables (both
        directions of each undirected edge)."""
        return {
            pair
            for bucket in self.buckets
            for pair in _table_edges(bucket.nodes, bucket.neighbors, bucket.mask)
        }

    def mixing_matrix(self) -> np.ndarray:
        """float64[n, n]: W with W[i, j] the weight node i gives node j (dense; small n)."""
        matrix = np.zeros((self.n, self.n))
        for bucket in self.buckets:
            rows = np.broadcast_to(bucket.nodes[:, None], bucket.neighbors.shape)
            np.add.at(matrix, (rows[bucket.mask], bucket.neighbors[bucket.mask]), bucket.weights[bucket.mask])
        return matrix

    def __repr__(self) -> str:
        shapes = ", ".join(f"{b.neighbors.shape[0]}x{b.neighbors.shape[1]}" for b in self.buckets)
        return (
            f"Network(n={self.n}, byzantine={int(self.byzantine.sum())}, directed={self.directed}, "
            f"buckets=[{shapes}])"
        )


@dataclass(frozen=True, eq=False)
class Schedule:
    """A time-varying graph as per-round tables; round t of a run uses table t mod R.

    Attributes:
      n: number of nodes.
      byzantine: bool[n].
      directed: whether inboxes are in-neighbours of directed graphs.
      neighbors: int32[R, n, K], the slot conventions of `Bucket` (one width K for all).
      mask: bool[R, n, K].
      weights: float32[R, n, K], rows summing to 1.
    """

    n: int
    byzantine: np.ndarray
    directed: bool
    neighbors: np.ndarray
    mask: np.ndarray
    weights: np.ndarray

    @property
    def rounds(self) -> int:
        """R, the schedule's period."""
        return self.neighbors.shape[0]

    @property
    def inbox_sizes(self) -> np.ndarray:
        """int32[R, n]: each node's inbox size in each round."""
        return self.mask.sum(axis=2).astype(np.int32)

    @property
    def smallest_inbox_sizes(self) -> np.ndarray:
        """int32[n]: each node's smallest inbox size over the rounds."""
        return self.inbox_sizes.min(axis=0)

    def engine_tables(self) -> tuple[dict, ...]:
        """One table of all nodes whose arrays have a leading round axis [R, n, K]."""
        nodes = np.arange(self.n, dtype=np.int32)
        return ({"nodes": nodes, "neighbors": self.neighbors, "mask": self.mask, "weights": self.weights},)

    @staticmethod
    def tables_at(tables, round_index, key):
        """Round t uses the schedule's table t mod R (traced ``round_index``)."""
        del key
        (table,) = tables
        return ({name: value if name == "nodes" else value[round_index % value.shape[0]] for name, value in table.items()},)

    def edges(self, round_index: int) -> set[tuple[int, int]]:
        """The links (src, dst) of one round, read back from its table."""
        t = round_index % self.rounds
        return _table_edges(np.arange(self.n), self.neighbors[t], self.mask[t])

    def __repr__(self) -> str:
        rounds, n, width = self.neighbors.shape
        return f"Schedule(n={n}, byzantine={int(self.byzantine.sum())}, rounds={rounds}, width={width})"


def from_graph(
    graph: nx.Graph,
    *,
    byzantine=(),
    weights=None,
    byzantine_weight: float | None = None,
    max_padding: float = 1.5,
) -> Network:
    """Engine tables of a graph, its nodes grouped into degree buckets.

    Buckets: the fewest groups of consecutive inbox sizes whose padded slots total at most
    max_padding x the real slots (sum_b n_b K_b <= max_padding * sum_i (d_i + 1)), and of
    those splits the one with the fewest padded slots (dynamic programming over the
    distinct inbox sizes). A regular graph gives one bucket; max_padding=inf gives one
    global width.

    Weights (see `topologies.mixing_weights`): "metropolis", W_ij = 1/(1 + max(d_i, d_j)),
    the default on undirected graphs; "uniform", 1/(d_i + 1) with d_i the in-degree, the
    default on directed graphs; "max_degree", 1/(1 + d_max); "edgelist", the edges'
    `weight` attributes; or an n x n matrix (an array, or the pathlib.Path of a .npy or
    .csv file). Every neighbour counts in the degrees (an honest node cannot tell a
    Byzantine one apart). byzantine_weight=delta then gives the Byzantine in-neighbours of
    every honest node delta in total, its honest weights the rest.

    Args:
      graph: networkx graph with nodes 0..n-1 (see `topologies.from_networkx`).
      byzantine: Byzantine node ids.
      weights: a name above, a matrix, or None for the default above.
      byzantine_weight: delta in [0, 1), or None to keep the weights' own.
      max_padding: bound on padded / real slots, >= 1.

    Returns:
      A Network.

    Raises:
      ValueError: nodes not 0..n-1, self-loops, bad Byzantine ids, unknown or invalid
        weights, metropolis on a directed graph, a bad delta, max_padding < 1.

    Example:
      >>> net = from_graph(topologies.ring(8), byzantine=[0])
      >>> net.buckets[0].neighbors[1].tolist(), net.buckets[0].weights[1].tolist()
      ([1, 0, 2], [0.3333333432674408, 0.3333333432674408, 0.3333333432674408])
    """
    if not max_padding >= 1:
        raise ValueError(f"from_graph: max_padding must be >= 1 (padded / real slots); got {max_padding!r}.")
    n = topologies.check_graph(graph, caller="from_graph")
    mask = _byzantine_mask("from_graph", byzantine, n)
    links = topologies.mixing_weights(
        graph, kind=weights, byzantine=np.flatnonzero(mask), byzantine_weight=byzantine_weight
    )
    sizes = np.bincount(links[1], minlength=n) + 1
    buckets = tuple(
        Bucket(nodes.astype(np.int32), *_tables(n, links, nodes, int(sizes[nodes].max())))
        for nodes in _split(sizes, max_padding)
    )
    for bucket in buckets:
        _freeze(bucket.nodes, bucket.neighbors, bucket.mask, bucket.weights)
    return Network(n, mask, graph.is_directed(), buckets)


def from_schedule(
    graphs, *, byzantine=(), weights: str | None = None, byzantine_weight: float | None = None
) -> Schedule:
    """Per-round engine tables [R, n, K] of a time-varying graph (a tuple of graphs).

    Slot conventions and weights as in `from_graph`; K is the largest inbox over all rounds.

    Args:
      graphs: R graphs on the same nodes 0..n-1, all directed or all undirected (e.g.
        topologies.random_matchings(n, R, seed=0)).
      byzantine: Byzantine node ids.
      weights: a name as in `from_graph` ("metropolis", "uniform", "max_degree",
        "edgelist"), applied to each round's graph; a matrix fits one graph only.
      byzantine_weight: as in `from_graph`, in every round.

    Returns:
      A Schedule.

    Raises:
      ValueError: no graph, graphs on different node counts or of mixed direction, a
        matrix, or any error of `from_graph`.

    Example:
      >>> sched = from_schedule(topologies.one_peer_exponential(8))
      >>> sched.neighbors.shape
      (3, 8, 2)
    """
    graphs = tuple(graphs)
    if not graphs:
        raise ValueError("from_schedule: no graph given. Pass at least one round's graph.")
    n = topologies.check_graph(graphs[0], caller="from_schedule")
    for t, graph in enumerate(graphs):
        if (
            topologies.check_graph(graph, caller="from_schedule") != n
            or graph.is_directed() != graphs[0].is_directed()
        ):
            raise ValueError(
                f"from_schedule: round {t} has {graph.number_of_nodes()} nodes "
                f"({'directed' if graph.is_directed() else 'undirected'}); round 0 has {n} "
                f"({'directed' if graphs[0].is_directed() else 'undirected'}). Use one node set and one kind."
            )
    if not (weights is None or isinstance(weights, str)):
        raise ValueError(
            "from_schedule: a weight matrix fits one graph, and a time-varying graph changes its edges "
            "every round. Use named weights (metropolis, uniform, max_degree) for a time-varying graph."
        )
    mask = _byzantine_mask("from_schedule", byzantine, n)
    ids = np.flatnonzero(mask)
    links = [
        topologies.mixing_weights(graph, kind=weights, byzantine=ids, byzantine_weight=byzantine_weight)
        for graph in graphs
    ]
    width = 1 + max(int(np.bincount(dst, minlength=n).max()) for _, dst, _, _ in links)
    nodes = np.arange(n)
    tables = [
        np.stack(parts) for parts in zip(*(_tables(n, link, nodes, width) for link in links), strict=True)
    ]
    _freeze(*tables)
    return Schedule(n, mask, graphs[0].is_directed(), *tables)


def _byzantine_mask(function: str, byzantine, n: int) -> np.ndarray:
    ids = np.asarray(byzantine, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= n or np.unique(ids).size != ids.size):
        raise ValueError(
            f"{function}: byzantine must hold distinct node ids in 0..{n - 1}; got {sorted(ids.tolist())}."
        )
    mask = np.zeros(n, dtype=bool)
    mask[ids] = True
    _freeze(mask)
    return mask


def _tables(n: int, links, nodes: np.ndarray, width: int):
    """(neighbors int32, mask bool, weights float32) [len(nodes), width] for the given nodes.

    links = (src, dst, edge, self) sorted by (dst, src), as from topologies.mixing_weights.
    """
    src, dst, edge, own = links
    row = np.full(n, -1)
    row[nodes] = np.arange(nodes.size)
    slot = 1 + np.arange(dst.size) - np.searchsorted(dst, dst)  # rank within dst's inbox
    keep = row[dst] >= 0
    neighbors = np.repeat(nodes[:, None], width, axis=1).astype(np.int32)
    mask = np.zeros((nodes.size, width), dtype=bool)
    weights = np.zeros((nodes.size, width))
    mask[:, 0], weights[:, 0] = True, own[nodes]
    at = (row[dst[keep]], slot[keep])
    neighbors[at], mask[at], weights[at] = src[keep], True, edge[keep]
    return neighbors, mask, weights.astype(np.float32)


def _table_edges(nodes: np.ndarray, neighbors: np.ndarray, mask: np.ndarray) -> set[tuple[int, int]]:
    """(src, dst) pairs of the valid non-self slots of a table whose rows are `nodes`."""
    rows, slots = np.nonzero(mask[:, 1:])
    return set(zip(neighbors[rows, slots + 1].tolist(), nodes[rows].tolist(), strict=True))


def _split(sizes: np.ndarray, max_padding: float) -> list[np.ndarray]:
    """Node groups (sorted ids) of consecutive inbox sizes: the fewest groups with
    sum_b n_b * max size_b <= max_padding * sum(sizes), the fewest padded slots among them."""
    values, counts = np.unique(sizes, return_counts=True)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    budget = max_padding * float(sizes.sum())
    # best[b]: fewest slots covering values[0..b] with k groups; cuts[k - 1][b]: where the last starts.
    best = values * cumulative[1:].astype(float)
    cuts = [np.zeros(values.size, dtype=int)]
    while best[-1] > budget:
        step, start = np.full(values.size, np.inf), np.zeros(values.size, dtype=int)
        for b in range(1, values.size):
            options = best[:b] + values[b] * (cumulative[b + 1] - cumulative[1 : b + 1])
            start[b] = 1 + int(np.argmin(options))
            step[b] = options[start[b] - 1]
        best = step
        cuts.append(start)
    bounds, end = [], values.size - 1
    for cut in reversed(cuts):
        bounds.append(values[cut[end]])
        end = cut[end] - 1
    lows = sorted(bounds)
    highs = [*(low - 1 for low in lows[1:]), values[-1]]
    return [np.flatnonzero((sizes >= low) & (sizes <= high)) for low, high in zip(lows, highs, strict=True)]


def _freeze(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)
