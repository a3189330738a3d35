"""Partitions of a labelled training set over the nodes, their specs and registry, and padding.

``iid``, ``dirichlet`` (label skew), ``shards`` (k labels per node), ``community`` (each
graph community its own labels), ``labels`` (an explicit label list per node),
``gamma_similarity`` (ByzFL's, in :mod:`.gamma_similarity`): functions returning one index array per node, frozen
specs in :data:`PARTITIONS` built by :func:`make_partition`, then :func:`pad_nodes` gathers
the parts into a :class:`NodeData`.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from attacks._registry import build_from_registry

from .checks import node_count, positive
from .containers import NodeData
from .gamma_similarity import partition_gamma_similarity, similarity_gamma


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def _labels(function: str, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{function}: labels must be a 1-D integer array; got {labels.dtype}{list(labels.shape)}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{function}: labels must be non-negative integers; found {int(labels.min())}.")
    return labels


def _too_small(function: str, total: int, num_nodes: int) -> ValueError:
    share = total / num_nodes
    return ValueError(
        f"{function}: {total} training samples over {num_nodes} nodes give each node {total // num_nodes} "
        f"({share:.2f} on average); every node needs at least 1. "
        f"Use at most {total} nodes, a larger dataset, or another partition."
    )


def partition_iid(labels, num_nodes: int, *, seed=0) -> list[np.ndarray]:
    """Shuffle the sample indices and cut them into n nearly equal parts (sizes differ by <= 1).

    Args:
        labels: int[N] (only N is used).
        num_nodes: n.
        seed: partition seed.

    Returns:
        list of n int64 index arrays into the dataset, disjoint, covering all N samples.

    Raises:
        ValueError: N < n (some node would get no sample).
    """
    labels = _labels("partition_iid", labels)
    n = node_count("partition_iid", num_nodes)
    if labels.size < n:
        raise _too_small("partition_iid", labels.size, n)
    return list(np.array_split(_rng(seed).permutation(labels.size), n))


def partition_dirichlet(labels, num_nodes: int, alpha: float, *, seed=0, balanced: bool = True) -> list[np.ndarray]:
    """Label-skewed split: node label proportions drawn from Dirichlet(alpha).

    balanced=True (default): node i draws q_i ~ Dir(alpha * 1_C) and takes floor(N/n) or
    ceil(N/n) samples with label counts ~ Multinomial(size, q_i), nodes in a random
    order; when a label runs out, the rest comes from the labels still available, in
    order of q_i. Equal sizes keep the padded arrays tight.

    balanced=False: for each label c, p_c ~ Dir(alpha * 1_n) splits that label's samples
    over the nodes (node sizes vary); redrawn (up to 100 times) until every node has a sample.

    Small alpha gives nodes few labels; alpha -> inf approaches iid.

    Args:
        labels: int[N] labels.
        num_nodes: n.
        alpha: concentration > 0.
        seed: partition seed.
        balanced: see above.

    Returns:
        list of n disjoint index arrays.

    Raises:
        ValueError: alpha <= 0, N < n, or (unbalanced) no draw gives every node a sample.

    References:
        Hsu, Qi, Brown, "Measuring the effects of non-identical data distribution for
        federated visual classification", 2019 (per-label Dirichlet, balanced=False).
    """
    function = f"partition_dirichlet(alpha={alpha})"
    labels = _labels(function, labels)
    n = node_count(function, num_nodes)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
        raise ValueError(f"partition_dirichlet: alpha must be a positive number; got {alpha!r}.")
    if labels.size < n:
        raise _too_small(function, labels.size, n)
    rng = _rng(seed)
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    num_classes = len(classes)

    if not balanced:
        for _ in range(100):
            parts = [[] for _ in range(n)]
            for pool in pools:
                shares = rng.dirichlet(np.full(n, float(alpha)))
                shares = np.where(np.isfinite(shares), shares, 0.0)
                if shares.sum() <= 0:
                    shares[rng.integers(n)] = 1.0
                cuts = np.round(np.cumsum(shares / shares.sum()) * len(pool)).astype(int)[:-1]
                for node, piece in enumerate(np.split(pool, cuts)):
                    parts[node].append(piece)
            parts = [np.concatenate(p) for p in parts]
            if min(len(p) for p in parts) >= 1:
                return [rng.permutation(p) for p in parts]
        raise ValueError(
            f"{function}, balanced=False: in 100 draws some node always got no sample "
            f"({labels.size} samples over {n} nodes, {labels.size / n:.2f} per node on average). "
            "Use balanced=True, a larger alpha, or fewer nodes."
        )

    sizes = [len(chunk) for chunk in np.array_split(np.arange(labels.size), n)]
    remaining = np.array([len(pool) for pool in pools])
    used = np.zeros(num_classes, dtype=int)
    proportions = rng.dirichlet(np.full(num_classes, float(alpha)), size=n)
    parts: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n
    for node in rng.permutation(n):
        q = proportions[node]
        if not np.all(np.isfinite(q)) or q.sum() <= 0:  # tiny alpha can underflow every gamma draw
            q = np.zeros(num_classes)
            q[rng.integers(num_classes)] = 1.0
        q = q / q.sum()
        take = np.minimum(rng.multinomial(sizes[node], q), remaining)
        deficit = sizes[node] - take.sum()
        for c in np.lexsort((-remaining, -q)):  # fill from the node's most likely labels first
            if deficit == 0:
                break
            extra = min(deficit, remaining[c] - take[c])
            take[c] += extra
            deficit -= extra
        pieces = [pools[c][used[c]: used[c] + take[c]] for c in range(num_classes)]
        used += take
        remaining -= take
        parts[node] = rng.permutation(np.concatenate(pieces))
    return parts


def partition_shards(labels, num_nodes: int, labels_per_node: int, *, seed=0) -> list[np.ndarray]:
    """Pathological label skew: every node holds exactly k distinct labels.

    Label slots are dealt cyclically over a random label order: node i (in a random node
    order) gets labels perm[(i k + j) mod C] for j < k, so every label goes to
    floor or ceil(n k / C) nodes; each label's samples are split evenly among its holders.

    Args:
        labels: int[N] labels.
        num_nodes: n.
        labels_per_node: k, 1 <= k <= C (the labels present).
        seed: partition seed.

    Returns:
        list of n disjoint index arrays, node i's holding exactly k labels.

    Raises:
        ValueError: k outside [1, C], or a label with fewer samples than holders (names
            the label and how many samples each holder would get).

    References:
        McMahan et al., "Communication-efficient learning of deep networks from
        decentralized data", AISTATS 2017 (label shards).
    """
    function = f"partition_shards(labels_per_node={labels_per_node})"
    labels = _labels(function, labels)
    n = node_count(function, num_nodes)
    classes = np.unique(labels)
    k = labels_per_node
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= len(classes):
        raise ValueError(
            f"partition_shards: labels_per_node must be an int in [1, {len(classes)}] "
            f"(the number of labels present); got {k!r}."
        )
    k = int(k)
    if labels.size < n:
        raise _too_small(function, labels.size, n)
    rng = _rng(seed)
    order = rng.permutation(classes)
    nodes = rng.permutation(n)
    slots = np.arange(n * k)
    slot_node = nodes[slots // k]
    slot_label = order[slots % len(classes)]
    parts = [[] for _ in range(n)]
    for c in classes:
        holders = slot_node[slot_label == c]
        pool = rng.permutation(np.flatnonzero(labels == c))
        if len(pool) < len(holders):
            raise ValueError(
                f"{function}: label {int(c)} has {len(pool)} samples for {len(holders)} nodes, so each "
                f"would get {len(pool) // len(holders)} of it ({labels.size / n:.2f} samples per node on "
                "average). Use fewer nodes, more labels per node, or a larger dataset."
            )
        for node, piece in zip(holders, np.array_split(pool, len(holders))):
            parts[node].append(piece)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _community_labels(classes: np.ndarray, num_communities: int, labels_of) -> list[np.ndarray]:
    if labels_of is not None:
        if len(labels_of) != num_communities:
            raise ValueError(
                f"partition_community: labels lists {len(labels_of)} label sets for {num_communities} communities; "
                "give one set per community (in sorted community-id order)."
            )
        return [np.asarray(sorted(set(int(c) for c in group)), dtype=np.int64) for group in labels_of]
    if num_communities <= len(classes):
        return list(np.array_split(classes, num_communities))
    return [classes[[g % len(classes)]] for g in range(num_communities)]


def partition_community(labels, communities, *, seed=0, labels_of=None) -> list[np.ndarray]:
    """Each graph community gets its own labels; within a community the split is iid.

    Community ids (any ints) are taken in sorted order g = 0..G-1. By default the sorted
    labels are cut into G contiguous, nearly equal groups (G <= C); with more communities
    than labels, community g gets label g mod C. A label owned by several communities is
    split among them in proportion to their node counts.

    Args:
        labels: int[N] labels.
        communities: int[n], the community id of each node (n = number of nodes).
        seed: partition seed.
        labels_of: optional explicit label set per community (sorted id order), e.g.
            ``[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]`` for a dumbbell.

    Returns:
        list of n disjoint index arrays.

    Raises:
        ValueError: a community whose nodes would get no sample (names it, its labels and
            the samples per node), or a label set for a label that is absent.

    References:
        The dumbbell studies of He, Karimireddy, Jaggi, "Byzantine-robust decentralized
        learning via ClippedGossip", 2022 (heterogeneity across the cut).
    """
    labels = _labels("partition_community", labels)
    communities = np.asarray(communities)
    if communities.ndim != 1 or communities.size == 0 or not np.issubdtype(communities.dtype, np.integer):
        raise ValueError(
            f"partition_community: communities must be a non-empty 1-D int array, one id per node; "
            f"got {communities.dtype}{list(communities.shape)}."
        )
    n = communities.size
    ids, community_of = np.unique(communities, return_inverse=True)
    classes = np.unique(labels)
    groups = _community_labels(classes, len(ids), labels_of)
    members = [np.flatnonzero(community_of == g) for g in range(len(ids))]
    rng = _rng(seed)
    shares: list[list[np.ndarray]] = [[] for _ in ids]
    for c in classes:
        owners = [g for g, group in enumerate(groups) if c in group]
        if not owners:
            continue
        pool = rng.permutation(np.flatnonzero(labels == c))
        weights = np.array([len(members[g]) for g in owners], dtype=float)
        cuts = np.round(np.cumsum(weights / weights.sum()) * len(pool)).astype(int)[:-1]
        for g, piece in zip(owners, np.split(pool, cuts)):
            shares[g].append(piece)
    for g, group in enumerate(groups):
        absent = sorted(set(group.tolist()) - set(classes.tolist()))
        if absent:
            raise ValueError(f"partition_community: community {ids[g]} is given labels {absent} that no sample has.")
    parts: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n
    for g in range(len(ids)):
        pool = rng.permutation(np.concatenate(shares[g])) if shares[g] else np.empty(0, dtype=np.int64)
        size = len(members[g])
        if len(pool) < size:
            raise ValueError(
                f"partition_community: community {ids[g]} ({size} nodes, labels {groups[g].tolist()}) gets "
                f"{len(pool)} samples, so each of its nodes would get {len(pool) // size} "
                f"({len(pool) / size:.2f} on average); every node needs at least 1. "
                "Use fewer nodes, a larger dataset, or give the community more labels."
            )
        for node, piece in zip(members[g], np.array_split(pool, size)):
            parts[node] = piece
    return parts


def partition_labels(labels, per_node, *, seed=0) -> list[np.ndarray]:
    """An explicit label assignment: node k holds the samples whose label is in per_node[k].

    A label listed by several nodes is shuffled and split equally among them (sizes
    differ by <= 1, nodes in id order); a label no node lists is left out of training.

    Args:
        labels: int[N] labels.
        per_node: one list of labels per node, in node order (n = its length).
        seed: partition seed.

    Returns:
        list of n disjoint index arrays.

    Raises:
        ValueError: a label that is not a label of the training set, or a node that gets
            no sample (its labels have fewer samples than holders).

    References:
        Wu, Chen, Ling, "Byzantine-resilient decentralized stochastic optimization with
        robust aggregation rules" (IOS), IEEE TSP 2023: honest node i holds digit i.
    """
    labels = _labels("partition_labels", labels)
    classes = np.unique(labels)
    for node, group in enumerate(per_node):
        outside = sorted(set(int(c) for c in group) - set(classes.tolist()))
        if outside:
            raise ValueError(
                f"labels partition: per_node[{node}] lists label {outside[0]}, not a label of the training set "
                f"(its labels: {classes.tolist()}). Use labels of the dataset."
            )
    rng = _rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in per_node]
    for c in classes:
        holders = [node for node, group in enumerate(per_node) if c in group]
        if not holders:
            continue
        pool = rng.permutation(np.flatnonzero(labels == c))
        for node, piece in zip(holders, np.array_split(pool, len(holders))):
            parts[node].append(piece)
    for node, pieces in enumerate(parts):
        if sum(len(piece) for piece in pieces) == 0:
            raise ValueError(
                f"labels partition: node {node} (labels {list(per_node[node])}) gets no sample: its labels have "
                "fewer samples than nodes listing them. List fewer nodes per label, or a larger dataset."
            )
    return [rng.permutation(np.concatenate(pieces)) for pieces in parts]


class Partition:
    """Base of the partition specs: ``split(labels, num_nodes, *, seed, communities=None)``."""

    name: ClassVar[str] = ""

    def split(self, labels, num_nodes: int, *, seed=0, communities=None) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Iid(Partition):
    """:func:`partition_iid` (``communities`` is not used)."""

    name: ClassVar[str] = "iid"

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        del communities
        return partition_iid(labels, num_nodes, seed=seed)


@dataclasses.dataclass(frozen=True)
class Dirichlet(Partition):
    """:func:`partition_dirichlet` with concentration ``alpha`` (``communities`` is not used)."""

    name: ClassVar[str] = "dirichlet"
    alpha: float = 0.5
    balanced: bool = True

    def __post_init__(self):
        object.__setattr__(self, "alpha", positive("dirichlet", "alpha", self.alpha))
        if not isinstance(self.balanced, bool):
            raise ValueError(f"dirichlet: balanced must be true or false; got {self.balanced!r}.")

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        del communities
        return partition_dirichlet(labels, num_nodes, self.alpha, seed=seed, balanced=self.balanced)


@dataclasses.dataclass(frozen=True)
class Shards(Partition):
    """:func:`partition_shards` with ``labels_per_node`` labels per node (``communities`` is not used)."""

    name: ClassVar[str] = "shards"
    labels_per_node: int = 2

    def __post_init__(self):
        object.__setattr__(self, "labels_per_node", positive("shards", "labels_per_node", self.labels_per_node, integer=True))

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        del communities
        return partition_shards(labels, num_nodes, self.labels_per_node, seed=seed)


@dataclasses.dataclass(frozen=True)
class Community(Partition):
    """:func:`partition_community`; needs the per-node ``communities`` (from the topology)."""

    name: ClassVar[str] = "community"
    labels: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        if self.labels is not None:
            try:
                groups = tuple(tuple(int(c) for c in group) for group in self.labels)
            except TypeError:
                raise ValueError(
                    f"community: labels must be a list of label lists, one per community; got {self.labels!r}."
                ) from None
            object.__setattr__(self, "labels", groups)

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        if communities is None:
            raise ValueError(
                "community partition needs each node's community id (communities=int[n]); use a topology "
                "with communities (e.g. a dumbbell, a stochastic block model, or from_edgelist with a node "
                "file whose community column lists every node: [network.params] nodes = \"nodes.csv\") "
                "or another partition."
            )
        communities = np.asarray(communities)
        if communities.shape != (num_nodes,):
            raise ValueError(
                f"community partition: communities has shape {communities.shape}; "
                f"expected ({num_nodes},), one id per node."
            )
        return partition_community(labels, communities, seed=seed, labels_of=self.labels)


@dataclasses.dataclass(frozen=True)
class Labels(Partition):
    """:func:`partition_labels` with ``per_node``, one label list per node (``communities`` is not used).

    In a run the nodes are the honest ones, in id order (Byzantine nodes hold no data of
    their own), so ``per_node`` has one entry per honest node.
    """

    name: ClassVar[str] = "labels"
    per_node: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        groups = self.per_node
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or not groups:
            raise ValueError(
                f"labels: per_node must be a non-empty list of label lists, one per honest node; got {groups!r}."
            )
        checked = []
        for node, group in enumerate(groups):
            if isinstance(group, (str, bytes)) or not isinstance(group, Sequence) or not group:
                raise ValueError(f"labels: per_node[{node}] must be a non-empty list of labels; got {group!r}.")
            if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0 for c in group):
                raise ValueError(f"labels: per_node[{node}] must hold non-negative integer labels; got {list(group)!r}.")
            if len(set(group)) != len(group):
                raise ValueError(f"labels: per_node[{node}] lists a label twice ({list(group)}); list each once.")
            checked.append(tuple(int(c) for c in group))
        object.__setattr__(self, "per_node", tuple(checked))

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        del communities
        if len(self.per_node) != num_nodes:
            raise ValueError(
                f"labels partition: per_node lists {len(self.per_node)} label sets for {num_nodes} nodes (in a run, "
                f"the honest nodes in id order: there are {num_nodes}); give exactly one list per honest node."
            )
        return partition_labels(labels, self.per_node, seed=seed)


@dataclasses.dataclass(frozen=True)
class GammaSimilarity(Partition):
    """:func:`~decentral.data.gamma_similarity.partition_gamma_similarity`, ByzFL's
    ``gamma_similarity_niid``: a fraction ``gamma`` iid, the rest sorted by label (1: iid;
    ``communities`` is not used)."""

    name: ClassVar[str] = "gamma_similarity"
    gamma: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "gamma", similarity_gamma("gamma_similarity", self.gamma))

    def split(self, labels, num_nodes, *, seed=0, communities=None):
        del communities
        return partition_gamma_similarity(labels, num_nodes, self.gamma, seed=seed)


#: Every partition spec, by config name.
PARTITIONS: dict[str, type[Partition]] = {
    "iid": Iid, "dirichlet": Dirichlet, "shards": Shards, "community": Community, "labels": Labels,
    "gamma_similarity": GammaSimilarity,
}


def make_partition(config="iid", **params) -> Partition:
    """Build a partition spec from a name, a table or a built spec.

    Args:
        config: a key of :data:`PARTITIONS` ("iid", "dirichlet", "shards", "community", "labels",
            "gamma_similarity"), a
            table ``{"name": "dirichlet", "alpha": 0.1}``, or a :class:`Partition`.
        **params: the spec's fields (``alpha``, ``balanced``, ``labels_per_node``, ``labels``, ``per_node``,
            ``gamma``).

    Returns:
        Partition (frozen).

    Raises:
        ValueError: an unknown name or parameter (close-match suggestion), or a bad value.

    Example:
        >>> make_partition("shards", labels_per_node=2)  # Shards(labels_per_node=2)
    """
    if isinstance(config, Partition):
        if params:
            raise ValueError(f"make_partition: parameters {sorted(params)} given with a built spec {config!r}.")
        return config
    if isinstance(config, dict):
        config = dict(config)
        if "name" not in config:
            raise ValueError(f"make_partition: a partition table needs a 'name' key; got keys {sorted(config)}.")
        name = config.pop("name")
        return build_from_registry("partition", PARTITIONS, name, {**config, **params})
    return build_from_registry("partition", PARTITIONS, config, params)


def pad_nodes(x, y, parts: Sequence[np.ndarray]) -> NodeData:
    """Gather each node's samples and pad them to m = max part size.

    Args:
        x: [N, *input_shape] samples.
        y: [N] labels (kept int32) or targets (kept float32).
        parts: n index arrays into the samples (e.g. from a partition), each non-empty.

    Returns:
        NodeData with x f32[n, m, ...], y [n, m], count int32[n] (JAX arrays); padding is 0.

    Raises:
        ValueError: an empty part (names the node).
    """
    x, y = np.asarray(x), np.asarray(y)
    lengths = np.array([len(part) for part in parts], dtype=np.int64)
    if np.any(lengths == 0):
        raise ValueError(f"pad_nodes: node {int(np.argmin(lengths))} has no sample; every node needs at least 1.")
    n, m = len(parts), int(lengths.max())
    index = np.zeros((n, m), dtype=np.int64)
    valid = np.arange(m)[None, :] < lengths[:, None]
    index[valid] = np.concatenate([np.asarray(part, dtype=np.int64) for part in parts])
    y_dtype = np.int32 if np.issubdtype(y.dtype, np.integer) else np.float32
    x_nodes = np.where(valid.reshape(n, m, *([1] * (x.ndim - 1))), x[index], 0).astype(np.float32)
    y_nodes = np.where(valid, y[index], 0).astype(y_dtype)
    return NodeData(jnp.asarray(x_nodes), jnp.asarray(y_nodes), jnp.asarray(lengths.astype(np.int32)))


def label_counts(node_data: NodeData, num_classes: int) -> np.ndarray:
    """Samples of each label at each node, over valid rows only.

    Returns:
        int64[n, num_classes].
    """
    y = np.asarray(node_data.y)
    mask = np.asarray(node_data.mask)
    counts = np.zeros((y.shape[0], num_classes), dtype=np.int64)
    rows = np.broadcast_to(np.arange(y.shape[0])[:, None], y.shape)
    np.add.at(counts, (rows[mask], y[mask]), 1)
    return counts
