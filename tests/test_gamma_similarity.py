"""The gamma_similarity partition against a numpy transcription of ByzFL's ``DataDistributor``,
and its properties: disjoint parts, their sizes, the iid end (gamma = 1), the sorted end (gamma = 0)."""

import numpy as np
import pytest

from decentral import data
from decentral.data import GammaSimilarity, load_dataset, make_partition, partition_gamma_similarity

DIGIT_LABELS = data.load_digits().y_train  # 1,347 labels, 10 classes


# --------------------------------------------------------------------------- ByzFL's code, in numpy


class ByzFLDistributor:
    """ByzFL's ``DataDistributor`` (``byzfl/fed_framework/data_distributor.py``), its
    ``iid_idx``, ``extreme_niid_idx`` and ``gamma_niid_idx`` line by line, with numpy's
    generator ``rng`` standing in for Python's ``random.shuffle``, and ``idx`` the training
    subset's indices (ByzFL's ``random_split`` order)."""

    def __init__(self, gamma, nb_honest, rng):
        self.distribution_parameter, self.nb_honest, self.rng = gamma, nb_honest, rng

    def iid_idx(self, idx):
        idx = np.array(idx, dtype=np.int64)
        self.rng.shuffle(idx)                              # random.shuffle(idx)
        return np.array_split(idx, self.nb_honest)

    def extreme_niid_idx(self, targets, idx):
        if len(idx) == 0:
            return list([[]] * self.nb_honest)
        sorted_idx = np.array(sorted(zip(targets[idx], idx)))[:, 1]
        return np.array_split(sorted_idx, self.nb_honest)

    def gamma_niid_idx(self, targets, idx):
        nb_similarity = int(len(idx) * self.distribution_parameter)
        iid = self.iid_idx(idx[:nb_similarity])
        niid = self.extreme_niid_idx(targets, idx[nb_similarity:])
        split_idx = [np.concatenate((iid[i], niid[i])) for i in range(self.nb_honest)]
        return [node_idx.astype(int) for node_idx in split_idx]


def byzfl_gamma_split(labels, nb_honest, gamma, seed):
    rng = np.random.default_rng(seed)
    idx = list(rng.permutation(len(labels)))               # random_split(dataset, ...).indices
    return ByzFLDistributor(gamma, nb_honest, rng).gamma_niid_idx(np.asarray(labels), idx)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("gamma", [1.0, 0.66, 0.33, 0.0, 0.5])
@pytest.mark.parametrize("labels, n", [(DIGIT_LABELS, 10), (np.random.default_rng(3).integers(0, 4, 101), 7)])
def test_equals_byzfl_code(labels, n, gamma):
    ours = partition_gamma_similarity(labels, n, gamma, seed=11)
    theirs = byzfl_gamma_split(labels, n, gamma, 11)
    assert len(ours) == n
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.dtype == np.int64
        np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("gamma", [1.0, 0.66, 0.33, 0.0])
def test_every_sample_once_and_the_sizes(gamma):
    total, n = DIGIT_LABELS.size, 10
    parts = partition_gamma_similarity(DIGIT_LABELS, n, gamma, seed=0)
    flat = np.concatenate(parts)
    assert flat.size == total and np.unique(flat).size == total
    similar = int(total * gamma)
    expected = [a + b for a, b in zip([len(p) for p in np.array_split(np.arange(similar), n)],
                                      [len(p) for p in np.array_split(np.arange(total - similar), n)])]
    assert [len(p) for p in parts] == expected
    assert max(expected) - min(expected) <= 2


def test_gamma_one_is_byzfl_iid_end():
    parts = partition_gamma_similarity(DIGIT_LABELS, 10, 1.0, seed=4)
    assert {len(p) for p in parts} <= {134, 135}
    global_share = np.bincount(DIGIT_LABELS, minlength=10) / DIGIT_LABELS.size
    for part in parts:                                     # every node sees every label, near its global share
        share = np.bincount(DIGIT_LABELS[part], minlength=10) / part.size
        assert np.all(share > 0) and np.abs(share - global_share).max() < 0.1
    assert partition_gamma_similarity(DIGIT_LABELS, 10, 1.0, seed=5)[0].tolist() != parts[0].tolist()


def test_gamma_zero_is_the_label_sorted_blocks():
    parts = partition_gamma_similarity(DIGIT_LABELS, 10, 0.0, seed=4)
    in_order = DIGIT_LABELS[np.concatenate(parts)]
    assert np.all(np.diff(in_order) >= 0)                  # node 0 the smallest labels, node 9 the largest
    assert all(len(np.unique(DIGIT_LABELS[p])) <= 3 for p in parts)   # contiguous blocks of ~135
    balanced = np.repeat(np.arange(10), 50)[np.random.default_rng(0).permutation(500)]
    blocks = partition_gamma_similarity(balanced, 10, 0.0, seed=4)
    assert [np.unique(balanced[p]).tolist() for p in blocks] == [[label] for label in range(10)]
    for part in parts:                                     # within a label, by index: the seed does not matter
        assert np.all(np.diff(part[DIGIT_LABELS[part] == DIGIT_LABELS[part][0]]) > 0)
    again = partition_gamma_similarity(DIGIT_LABELS, 10, 0.0, seed=9)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_heterogeneity_grows_as_gamma_falls():
    def labels_per_node(gamma):
        parts = partition_gamma_similarity(DIGIT_LABELS, 10, gamma, seed=1)
        return np.mean([len(np.unique(DIGIT_LABELS[p])) for p in parts])

    assert labels_per_node(0.0) <= 3 < labels_per_node(0.33) and labels_per_node(1.0) == 10


def test_spec_registry_and_dataset():
    assert make_partition({"name": "gamma_similarity", "gamma": 0.33}) == GammaSimilarity(gamma=0.33)
    fed = load_dataset("digits", num_nodes=10, seed=2, partition={"name": "gamma_similarity", "gamma": 0.0})
    counts = data.label_counts(fed.train, 10)
    assert counts.sum() == 1347 and np.all((counts > 0).sum(axis=1) <= 3)
    assert fed.info["partition"] == GammaSimilarity(gamma=0.0)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: make_partition({"name": "gamma_similarity", "gamma": 1.5}), r"gamma must be a number in \[0, 1\].*got 1\.5"),
        (lambda: make_partition({"name": "gamma_similarity", "gamma": -0.1}), r"gamma must be a number in \[0, 1\]"),
        (lambda: make_partition({"name": "gamma_similarity", "gamma": True}), r"gamma must be a number.*got True"),
        (lambda: make_partition({"name": "gamma_similarity", "gamma": "iid"}), r"gamma must be a number"),
        (lambda: make_partition({"name": "gamma_similarity", "gama": 0.5}), r"gamma"),
        (lambda: make_partition("gamma_similar"), r"gamma_similarity"),
        (lambda: partition_gamma_similarity(DIGIT_LABELS[:15], 10, 0.5), r"leave node \d \(and \d more\) with no sample"),
        (lambda: partition_gamma_similarity(np.array([0.5, 1.0]), 2, 0.5), r"labels must be a 1-D array of non-negative ints"),
    ],
)
def test_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
