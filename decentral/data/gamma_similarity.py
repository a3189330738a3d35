"""ByzFL's gamma-similarity partition: a fraction gamma of the samples dealt iid, the rest sorted by label.

The split the ByzFL benchmark calls ``gamma_similarity_niid`` (the ByzFL library's
``DataDistributor.gamma_niid_idx``); its spec is ``GammaSimilarity`` in
:mod:`decentral.data.partitions` (``{name = "gamma_similarity", gamma = 0.5}``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .checks import node_count


def similarity_gamma(owner: str, gamma) -> float:
    """``gamma`` as a float; a ValueError naming ``owner`` unless it is a number in [0, 1]."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= gamma <= 1.0:
        raise ValueError(
            f"{owner}: gamma must be a number in [0, 1] (1: iid, 0: every node a contiguous block of the "
            f"label-sorted samples); got {gamma!r}."
        )
    return float(gamma)


def partition_gamma_similarity(labels, num_nodes: int, gamma: float, *, seed=0) -> list[np.ndarray]:
    """ByzFL's ``gamma_similarity_niid``: gamma of the samples iid, the rest sorted by label.

    The rule of ByzFL's ``DataDistributor.gamma_niid_idx`` on its training subset (whose
    order is random: ``random_split``): with the N sample indices in a random order,
    the first k = int(N * gamma) are shuffled and cut into n nearly equal parts
    (``np.array_split``); the other N - k are sorted by (label, index) and cut into n
    contiguous parts the same way; node i holds its iid part followed by its sorted part.
    gamma = 1 is ByzFL's ``iid`` (one shuffled split); gamma = 0 its ``extreme_niid``
    (node i the i-th block of the label-sorted samples, so one or two labels each when n
    is a multiple of the label count). Part sizes differ by at most 2.

    Args:
        labels: int[N] labels.
        num_nodes: n.
        gamma: the iid fraction, in [0, 1].
        seed: partition seed.

    Returns:
        list of n disjoint int64 index arrays covering all N samples.

    Raises:
        ValueError: gamma outside [0, 1], labels not a 1-D non-negative int array, or a node
            that gets no sample (fewer than n samples in both pieces).

    References:
        González, Guerraoui, Pinot, Rizk, Stephan, Taïani, "ByzFL: research framework for
        robust federated learning", arXiv:2505.24802, 2025 (``gamma_similarity_niid``).
    """
    function = f"partition_gamma_similarity(gamma={gamma})"
    gamma = similarity_gamma("gamma_similarity", gamma)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{function}: labels must be a 1-D array of non-negative ints; got {labels.dtype}{list(labels.shape)}.")
    n = node_count(function, num_nodes)
    rng = np.random.default_rng(seed)
    order = rng.permutation(labels.size)
    similar = int(labels.size * gamma)
    shuffled = rng.permutation(order[:similar])
    rest = order[similar:]
    by_label = rest[np.lexsort((rest, labels[rest]))]
    parts = [
        np.concatenate([a, b]).astype(np.int64)
        for a, b in zip(np.array_split(shuffled, n), np.array_split(by_label, n), strict=True)
    ]
    empty = [node for node, part in enumerate(parts) if part.size == 0]
    if empty:
        raise ValueError(
            f"{function}: {labels.size} training samples ({similar} iid, {labels.size - similar} sorted) over {n} "
            f"nodes leave node {empty[0]} (and {len(empty) - 1} more) with no sample: each piece is cut into {n} "
            "parts. Use fewer nodes or a larger dataset."
        )
    return parts
