"""The run's per-node data from the honest nodes' data: what Byzantine nodes hold.

A dataset is built (partitioned, or generated node by node) over the honest nodes only,
in id order, so the honest nodes' data depends on the data seed and on how many honest
nodes there are, never on where the Byzantine nodes sit, nor on the attack.

Byzantine nodes hold no data of their own. Their rows still exist (the local step is
``vmap``ped over every node, and ``NodeData`` needs ``count >= 1`` everywhere), and what
they train on matters: a Byzantine node follows the protocol on the messages really sent
to it, so its vector is what ``none`` sends, what every attack's rows carry outside its
``[start_round, stop_round)`` window, and what a data-poisoning attack (``label_flip``)
poisons. So each Byzantine node holds a copy of one honest node's data: under ``none`` it
behaves as an honest node in its place would, and ``label_flip`` flips the labels of that
copy (the attacker of the omniscient threat model knows the honest data). A zero-filled
dummy row would instead make ``none``'s Byzantine nodes send a model trained on nothing.
The copies are never counted in the honest metrics (they read the honest rows only).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .containers import FederatedData


def sources(byzantine) -> np.ndarray:
    """int64[n]: the honest data row each node holds.

    Honest node k-th in id order holds row k; the j-th Byzantine node (in id order) holds
    a copy of row ``j mod H`` (H honest nodes), so copies spread over the honest rows.

    Raises:
        ValueError: no honest node.
    """
    byzantine = np.asarray(byzantine, dtype=bool)
    honest = int((~byzantine).sum())
    if honest == 0:
        raise ValueError("the data is split over the honest nodes, and every node is Byzantine; lower the count.")
    rows = np.empty(byzantine.size, dtype=np.int64)
    rows[~byzantine] = np.arange(honest)
    rows[byzantine] = np.arange(int(byzantine.sum())) % honest
    return rows


def over_nodes(honest_data: FederatedData, byzantine) -> FederatedData:
    """The run's data: ``honest_data`` (built for the H honest nodes, in id order) laid
    out over all n nodes, each Byzantine node holding a copy of an honest row (:func:`sources`).

    Args:
        honest_data: FederatedData with H = number of honest nodes rows.
        byzantine: bool[n], the Byzantine nodes.

    Returns:
        FederatedData with n rows (train and, if any, optimum); the test set is unchanged;
        ``info["data_of"]`` is int64[n], the honest node whose data each node holds.

    Raises:
        ValueError: the data's rows are not one per honest node.
    """
    byzantine = np.asarray(byzantine, dtype=bool)
    rows = sources(byzantine)
    honest = np.flatnonzero(~byzantine)
    if honest_data.num_nodes != honest.size:
        raise ValueError(f"over_nodes: the data has {honest_data.num_nodes} rows for {honest.size} honest nodes.")

    def gather(tree):
        return None if tree is None else jax.tree.map(lambda leaf: leaf[rows], tree)

    return dataclasses.replace(
        honest_data,
        train=gather(honest_data.train),
        optimum=gather(honest_data.optimum),
        info={**honest_data.info, "data_of": honest[rows]},
    )
