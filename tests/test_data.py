"""decentral.data: sources, parsers on files written here, partitions, padding, on-device sampling."""

import gzip
import pickle
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral import data
from decentral.data import (
    MissingDataError,
    label_counts,
    load_dataset,
    partition_community,
    partition_dirichlet,
    partition_iid,
    partition_labels,
    partition_shards,
)
from decentral.models import Linear, Logistic

DIGIT_LABELS = data.load_digits().y_train  # 1,347 labels, 10 classes


def _check_disjoint_cover(parts, total):
    flat = np.concatenate(parts)
    assert len(flat) == total and len(np.unique(flat)) == total


# --------------------------------------------------------------------------- digits and determinism


def test_digits_is_the_default_and_standardized():
    full = data.load_digits()
    assert full.x_train.shape == (1347, 64) and full.x_test.shape == (450, 64)
    assert full.y_train.dtype == np.int32 and full.num_classes == 10
    np.testing.assert_allclose(full.x_train.mean(axis=0), 0, atol=1e-5)
    std = full.x_train.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-4) | (std == 0))
    fed = load_dataset(num_nodes=10, seed=3)
    assert fed.name == "digits" and fed.task == "classification" and fed.num_classes == 10
    assert fed.train.x.shape == (10, 135, 64) and fed.train.y.dtype == jnp.int32
    assert fed.input_shape == (64,) and fed.x_test.shape == (450, 64)
    assert int(fed.train.count.sum()) == 1347
    image = load_dataset("digits", num_nodes=4, image=True)
    assert image.train.x.shape[2:] == (8, 8, 1) and image.input_shape == (8, 8, 1)


def test_same_seed_same_data_other_seed_other_partition():
    a = load_dataset("digits", num_nodes=12, seed=5, partition={"name": "dirichlet", "alpha": 0.3})
    b = load_dataset("digits", num_nodes=12, seed=5, partition={"name": "dirichlet", "alpha": 0.3})
    c = load_dataset("digits", num_nodes=12, seed=6, partition={"name": "dirichlet", "alpha": 0.3})
    for field in ("x", "y", "count"):
        np.testing.assert_array_equal(getattr(a.train, field), getattr(b.train, field))
    assert not np.array_equal(a.train.y, c.train.y)
    np.testing.assert_array_equal(a.x_test, c.x_test)  # the test set is fixed by split_seed, not the run seed
    assert not np.array_equal(a.x_test, load_dataset("digits", num_nodes=12, split_seed=1).x_test)


def test_synthetic_data_is_per_node_and_deterministic():
    small = load_dataset("synthetic_regression", num_nodes=3, seed=4, heterogeneity=0.5)
    large = load_dataset("synthetic_regression", num_nodes=5, seed=4, heterogeneity=0.5)
    again = load_dataset("synthetic_regression", num_nodes=5, seed=4, heterogeneity=0.5)
    other = load_dataset("synthetic_regression", num_nodes=5, seed=5, heterogeneity=0.5)
    np.testing.assert_array_equal(small.train.x, large.train.x[:3])  # node i's data does not depend on n
    np.testing.assert_array_equal(small.optimum["w"], large.optimum["w"][:3])
    np.testing.assert_array_equal(large.train.y, again.train.y)
    assert not np.array_equal(large.train.x, other.train.x)
    assert large.train.y.dtype == jnp.float32 and large.task == "regression" and large.num_outputs == 1


# --------------------------------------------------------------------------- partitions


def test_iid_partition_sizes_and_cover():
    parts = partition_iid(DIGIT_LABELS, 10, seed=0)
    _check_disjoint_cover(parts, 1347)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_dirichlet_tiny_alpha_skews_labels_large_alpha_does_not():
    def top_share(parts):
        counts = np.stack([np.bincount(DIGIT_LABELS[p], minlength=10) for p in parts])
        return np.mean(counts.max(axis=1) / counts.sum(axis=1))

    skewed = partition_dirichlet(DIGIT_LABELS, 20, 0.01, seed=1)
    mixed = partition_dirichlet(DIGIT_LABELS, 20, 1000.0, seed=1)
    for parts in (skewed, mixed):
        _check_disjoint_cover(parts, 1347)
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1  # balanced: padded arrays stay tight
    assert top_share(skewed) > 0.8 and top_share(mixed) < 0.3
    unbalanced = partition_dirichlet(DIGIT_LABELS, 20, 0.05, seed=1, balanced=False)
    _check_disjoint_cover(unbalanced, 1347)
    assert min(len(p) for p in unbalanced) >= 1 and top_share(unbalanced) > 0.6


@pytest.mark.parametrize("k", [1, 2, 3])
def test_shards_give_exactly_k_labels_per_node(k):
    parts = partition_shards(DIGIT_LABELS, 30, k, seed=2)
    _check_disjoint_cover(parts, 1347)
    assert all(len(np.unique(DIGIT_LABELS[p])) == k for p in parts)
    holders = np.bincount(np.concatenate([np.unique(DIGIT_LABELS[p]) for p in parts]), minlength=10)
    assert holders.max() - holders.min() <= 1  # labels dealt evenly


def test_community_partition_labels():
    communities = np.repeat([7, 3], [6, 4])  # ids in any order; sorted: 3 -> group 0, 7 -> group 1
    parts = partition_community(DIGIT_LABELS, communities, seed=0)
    _check_disjoint_cover(parts, 1347)
    for node, part in enumerate(parts):
        expected = set(range(5)) if communities[node] == 3 else set(range(5, 10))
        assert set(np.unique(DIGIT_LABELS[part])) == expected
    explicit = partition_community(DIGIT_LABELS, communities, seed=0, labels_of=[[0], [1, 2]])
    assert {int(c) for p in explicit[:6] for c in DIGIT_LABELS[p]} == {1, 2}
    assert {int(c) for p in explicit[6:] for c in DIGIT_LABELS[p]} == {0}
    many = partition_community(DIGIT_LABELS, np.arange(12), seed=0)  # more communities than labels
    assert [int(np.unique(DIGIT_LABELS[p])[0]) for p in many] == [g % 10 for g in range(12)]
    fed = load_dataset("digits", num_nodes=10, partition="community", communities=communities)
    counts = label_counts(fed.train, 10)
    assert counts[:6, :5].sum() == 0 and counts[6:, 5:].sum() == 0 and counts.sum() == 1347


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: partition_iid(DIGIT_LABELS, 2000), r"1347 training samples over 2000 nodes give each node 0 \(0\.67 on average\)"),
        (lambda: partition_dirichlet(DIGIT_LABELS, 1400, 0.5), r"give each node 0 \(0\.96 on average\)"),
        (lambda: partition_shards(DIGIT_LABELS, 1000, 2), r"label \d has 1\d\d samples for 200 nodes, so each would get 0 of it \(1\.35 samples per node"),
        (lambda: partition_community(DIGIT_LABELS, np.repeat([0, 1], [2, 1000])), r"community 1 \(1000 nodes, labels \[5, 6, 7, 8, 9\]\) gets \d+ samples, so each of its nodes would get 0"),
        (lambda: load_dataset("digits", num_nodes=5000), r"give each node 0"),
        (lambda: load_dataset("digits", num_nodes=50, train_samples=20), r"20 training samples over 50 nodes give each node 0"),
    ],
)
def test_too_small_datasets_say_what_each_node_would_get(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_partition_argument_errors():
    with pytest.raises(ValueError, match=r"labels_per_node must be an int in \[1, 10\]"):
        partition_shards(DIGIT_LABELS, 4, 11)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        partition_dirichlet(DIGIT_LABELS, 4, 0.0)
    with pytest.raises(ValueError, match="community partition needs each node's community id"):
        load_dataset("digits", num_nodes=4, partition="community")
    with pytest.raises(ValueError, match=r"communities has shape \(3,\); expected \(4,\)"):
        load_dataset("digits", num_nodes=4, partition="community", communities=[0, 1, 1])
    with pytest.raises(ValueError, match="labels \\[42\\] that no sample has"):
        partition_community(DIGIT_LABELS, [0, 1], labels_of=[[0], [42]])


def test_labels_partition_gives_each_node_its_listed_labels_split_equally():
    per_node = [[0], [1], [1, 2], [9]]  # labels 3..8 are listed by nobody: left out
    parts = partition_labels(DIGIT_LABELS, per_node, seed=0)
    counts = {c: int((DIGIT_LABELS == c).sum()) for c in range(10)}
    assert [sorted(set(DIGIT_LABELS[p].tolist())) for p in parts] == [[0], [1], [1, 2], [9]]
    assert len(parts[0]) == counts[0] and len(parts[3]) == counts[9]
    ones = [int((DIGIT_LABELS[p] == 1).sum()) for p in parts[1:3]]
    assert sum(ones) == counts[1] and abs(ones[0] - ones[1]) <= 1  # label 1 split equally
    assert int((DIGIT_LABELS[parts[2]] == 2).sum()) == counts[2]
    flat = np.concatenate(parts)
    assert len(np.unique(flat)) == len(flat)  # disjoint
    assert partition_labels(DIGIT_LABELS, per_node, seed=0)[2].tolist() == parts[2].tolist()
    fed = load_dataset("digits", num_nodes=3, partition={"name": "labels", "per_node": [[0], [5], [0, 5]]})
    held = label_counts(fed.train, 10)
    assert held[:, [1, 2, 3, 4, 6, 7, 8, 9]].sum() == 0 and held[0, 5] == 0 and held[1, 0] == 0
    assert held[:, 0].sum() == counts[0] and held[:, 5].sum() == counts[5]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_dataset("digits", num_nodes=4, partition={"name": "labels", "per_node": [[0], [1]]}),
         r"per_node lists 2 label sets for 4 nodes \(in a run, the honest nodes in id order: there are 4\)"),
        (lambda: partition_labels(DIGIT_LABELS, [[0], [10]]), r"per_node\[1\] lists label 10, not a label of the training set"),
        (lambda: partition_labels(DIGIT_LABELS[:3], [[int(DIGIT_LABELS[0])]] * 4), r"node \d \(labels \[\d\]\) gets no sample"),
        (lambda: data.make_partition("labels", per_node=[[0], []]), r"per_node\[1\] must be a non-empty list of labels"),
        (lambda: data.make_partition("labels", per_node=[[0], [1, 1]]), r"per_node\[1\] lists a label twice"),
        (lambda: data.make_partition("labels", per_node=[[0], [-1]]), r"non-negative integer labels"),
        (lambda: data.make_partition("labels", per_node=[0, 1]), r"per_node\[0\] must be a non-empty list"),
        (lambda: data.make_partition("labels"), r"per_node must be a non-empty list of label lists"),
    ],
)
def test_labels_partition_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_over_nodes_gives_byzantine_nodes_copies_of_honest_rows():
    honest = load_dataset("synthetic_regression", num_nodes=3, seed=0, dim=2, samples_per_node=4)
    byzantine = np.array([False, True, False, True, True, False])
    laid = data.over_nodes(honest, byzantine)
    np.testing.assert_array_equal(data.layout.sources(byzantine), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(laid.info["data_of"], [0, 0, 2, 2, 5, 5])
    for node, row in enumerate([0, 0, 1, 1, 2, 2]):
        np.testing.assert_array_equal(laid.train.x[node], honest.train.x[row])
        np.testing.assert_array_equal(laid.optimum["w"][node], honest.optimum["w"][row])
    np.testing.assert_array_equal(laid.x_test, honest.x_test)
    with pytest.raises(ValueError, match="3 rows for 2 honest nodes"):
        data.over_nodes(honest, [False, True, False, True])
    with pytest.raises(ValueError, match="every node is Byzantine"):
        data.layout.sources([True, True])


# --------------------------------------------------------------------------- padding and sampling


def test_padding_counts_and_mask():
    x = np.arange(10, dtype=np.float32)[:, None] + 1.0
    y = np.arange(10, dtype=np.int32)
    node_data = data.pad_nodes(x, y, [np.array([3]), np.array([0, 5, 9]), np.array([1, 2])])
    assert node_data.x.shape == (3, 3, 1) and node_data.count.tolist() == [1, 3, 2]
    np.testing.assert_array_equal(node_data.y, [[3, 0, 0], [0, 5, 9], [1, 2, 0]])
    np.testing.assert_array_equal(node_data.x[..., 0], [[4, 0, 0], [1, 6, 10], [2, 3, 0]])
    np.testing.assert_array_equal(node_data.mask, [[1, 0, 0], [1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(jax.vmap(lambda d: d.mask)(node_data), node_data.mask)
    assert label_counts(node_data, 10).sum(axis=1).tolist() == [1, 3, 2]
    with pytest.raises(ValueError, match="node 1 has no sample"):
        data.pad_nodes(x, y, [np.array([1]), np.array([], dtype=int)])


def test_on_device_sampling_stays_within_counts_under_jit_and_vmap():
    n, m = 6, 9
    count = jnp.array([1, 2, 9, 4, 5, 3], jnp.int32)
    rows = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32), (n, m))
    valid = rows < count[:, None]
    # Row r of node i holds x = 100 i + r + 1 and label r; padding rows hold a poison value.
    x = jnp.where(valid, 100 * jnp.arange(n)[:, None] + rows + 1, -1).astype(jnp.float32)[..., None]
    node_data = data.NodeData(x, jnp.where(valid, rows, 99), count)

    @jax.jit
    def draw(key, node_data):
        keys = jax.random.split(key, n)
        return (
            jax.vmap(data.sample_batch, in_axes=(0, 0, None))(keys, node_data, 64),
            data.sample_batches(key, node_data, 16),
        )

    (xb, yb), (xs, ys) = draw(jax.random.key(0), node_data)
    assert xb.shape == (n, 64, 1) and yb.shape == (n, 64) and yb.dtype == jnp.int32
    assert np.all(np.asarray(yb) < np.asarray(count)[:, None]) and np.all(np.asarray(yb) >= 0)
    np.testing.assert_array_equal(xb[..., 0], 100 * np.arange(n)[:, None] + np.asarray(yb) + 1)  # x, y same row
    assert len(np.unique(np.asarray(yb[2]))) > 5  # the 9-sample node uses its rows
    assert xs.shape == (n, 16, 1)
    assert np.all(np.asarray(ys) < np.asarray(count)[:, None])
    np.testing.assert_array_equal(xs[..., 0], 100 * np.arange(n)[:, None] + np.asarray(ys) + 1)
    with pytest.raises(ValueError, match="written for one node"):
        data.sample_batch(jax.random.key(0), node_data, 4)


# --------------------------------------------------------------------------- IDX files


def _write_idx(path, array, *, gz):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def _write_mnist(folder, *, gz, rows=5, cols=4, train=12, test=7, dotted=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(test, dtype=np.uint8) % 10,
    }
    for name, array in arrays.items():
        name = name.replace("-idx", ".idx") if dotted else name
        _write_idx(folder / (name + (".gz" if gz else "")), array, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    for array in (
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-5, 7, 2**30], dtype=np.int32),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
    ):
        path = tmp_path / f"a{array.dtype}"
        _write_idx(path, array, gz=gz)
        out = data.read_idx(path)
        assert out.dtype == array.dtype and out.dtype.isnative
        np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_malformed_files(tmp_path):
    good = tmp_path / "good"
    _write_idx(good, np.zeros((3, 2, 2), np.uint8), gz=False)
    raw = good.read_bytes()
    cases = {
        "magic": (b"\x08\x03\x00\x00" + raw[4:], r"not an IDX file: magic number 0x08030000"),
        "type": (b"\x00\x00\x07\x03" + raw[4:], r"not an IDX file"),
        "truncated": (raw[:-1], r"header says shape \(3, 2, 2\) of uint8 \(28 bytes in all\), but the file has 27"),
        "padded": (raw + b"\x00", r"the file has 29 bytes"),
        "header": (raw[:9], r"truncated IDX header"),
        "empty": (b"", r"too short for an IDX header"),
        "gzip": (gzip.compress(raw)[:-6], r"corrupt gzip file"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as error:
            data.read_idx(path)
        assert str(path) in str(error.value)


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (True, True)])
def test_load_mnist_from_idx_files(tmp_path, gz, dotted):
    arrays = _write_mnist(tmp_path / "mnist", gz=gz, dotted=dotted)
    dataset = data.load_mnist(tmp_path / "mnist")
    assert dataset.x_train.shape == (12, 5, 4, 1) and dataset.x_test.shape == (7, 5, 4, 1)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
    np.testing.assert_array_equal(dataset.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_allclose(dataset.x_train.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(dataset.x_train.std(), 1, atol=1e-4)
    # Standardization is monotone per pixel: the order of raw values is kept.
    raw = arrays["t10k-images-idx3-ubyte"].astype(float)
    assert np.array_equal(np.argsort(raw.ravel(), kind="stable"), np.argsort(dataset.x_test.ravel(), kind="stable"))


def test_mnist_and_fashion_mnist_through_the_registry(tmp_path):
    _write_mnist(tmp_path, gz=True)
    for name in ("mnist", "fashion_mnist"):
        fed = load_dataset(name, path=str(tmp_path), num_nodes=3, seed=0, test_samples=5)
        assert fed.name == name and fed.train.x.shape == (3, 4, 5, 4, 1) and fed.input_shape == (5, 4, 1)
        assert fed.x_test.shape == (5, 5, 4, 1) and fed.num_classes == 10
    subset = load_dataset("mnist", path=tmp_path, num_nodes=2, train_samples=6, partition={"name": "shards", "labels_per_node": 3})
    assert int(subset.train.count.sum()) == 6


def test_missing_idx_files_name_the_folder_and_the_files(tmp_path):
    arrays = _write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MissingDataError) as error:
        data.load_mnist(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "missing t10k-labels-idx1-ubyte" in message
    for stem in arrays:
        assert f"{stem}[.gz]" in message
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ValueError)
    with pytest.raises(MissingDataError, match=r"fashion_mnist: data folder .*nowhere does not exist"):
        load_dataset("fashion_mnist", path=str(tmp_path / "nowhere"), num_nodes=2)
    with pytest.raises(MissingDataError, match=r"mnist needs path=FOLDER"):
        load_dataset("mnist", num_nodes=2)


def test_idx_dataset_consistency_errors(tmp_path):
    _write_mnist(tmp_path, gz=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"11 labels for the 12 images"):
        data.load_mnist(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(12, 10, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: labels must lie in 0\.\.9"):
        data.load_mnist(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((12, 1), np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"expected uint8 labels \[N\]"):
        data.load_mnist(tmp_path)


# --------------------------------------------------------------------------- CIFAR-10 batches


def _write_cifar(folder, *, per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        if index % 2:  # python-2 style, as the real files: bytes keys, protocol 2
            batch, protocol = {b"data": images, b"labels": labels, b"batch_label": b"x"}, 2
        else:
            batch, protocol = {"data": images, "labels": labels}, pickle.HIGHEST_PROTOCOL
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))


def test_read_cifar_batch_layout(tmp_path):
    plane = np.arange(1024, dtype=np.uint8).reshape(1, 1024)
    row = np.concatenate([plane, plane // 2, plane // 3], axis=1)  # red, green, blue planes
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": row, b"labels": [7]}, protocol=2))
    images, labels = data.read_cifar_batch(path)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8 and labels.tolist() == [7]
    expected = np.arange(1024, dtype=np.uint8).reshape(32, 32)  # row-major planes
    np.testing.assert_array_equal(images[0, :, :, 0], expected)
    np.testing.assert_array_equal(images[0, :, :, 1], expected // 2)
    np.testing.assert_array_equal(images[0, 5, 7], [expected[5, 7], expected[5, 7] // 2, expected[5, 7] // 3])


def test_load_cifar10_from_the_folder_or_its_parent(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    for path in (tmp_path, tmp_path / "cifar-10-batches-py"):
        dataset = data.load_cifar10(path)
        assert dataset.x_train.shape == (15, 32, 32, 3) and dataset.x_test.shape == (3, 32, 32, 3)
        np.testing.assert_allclose(dataset.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    fed = load_dataset("cifar10", path=tmp_path, num_nodes=5)
    assert fed.train.x.shape == (5, 3, 32, 32, 3) and fed.input_shape == (32, 32, 3)


def test_cifar_errors_name_the_file(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(MissingDataError) as error:
        data.load_cifar10(tmp_path)
    assert str(tmp_path) in str(error.value) and "missing data_batch_4" in str(error.value)
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch" in str(error.value)
    bad = tmp_path / "bad"
    for content, message in [
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"'data' must be uint8\[N, 3072\]"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), r"1 labels for 2 images"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), r"labels must be integers in 0\.\.9"),
        (pickle.dumps({b"images": 1}), r"needs keys 'data' and 'labels'"),
        (pickle.dumps([1, 2]), r"a pickled dict"),
        (b"not a pickle", r"not a CIFAR-10 python batch"),
    ]:
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=message) as error:
            data.read_cifar_batch(bad)
        assert str(bad) in str(error.value)


class _Exploit:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_cifar_batches_cannot_run_code(tmp_path, capsys):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        data.read_cifar_batch(path)
    assert "pickle code ran" not in capsys.readouterr().out


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_dataset("digit", num_nodes=2), r"Unknown dataset 'digit'\. Did you mean 'digits'\?.*cifar10, digits, fashion_mnist"),
        (lambda: load_dataset("mnist", pth="/x", num_nodes=2), r"dataset mnist: unknown parameter 'pth'\. Did you mean 'path'\?"),
        (lambda: load_dataset("digits", num_nodes=2, partition="dirichlet", alpha=0.1), r"dataset digits: unknown parameter 'alpha'"),
        (lambda: load_dataset("digits", num_nodes=2, partition="dirichlt"), r"Unknown partition 'dirichlt'\. Did you mean 'dirichlet'\?"),
        (lambda: data.make_partition({"name": "dirichlet", "alhpa": 0.1}), r"partition dirichlet: unknown parameter 'alhpa'\. Did you mean 'alpha'\?"),
        (lambda: data.make_partition({"alpha": 0.1}), r"needs a 'name' key"),
        (lambda: data.make_partition("shards", labels_per_node=0), r"labels_per_node must be a positive int"),
        (lambda: load_dataset("synthetic_regression", num_nodes=2, partition="shards"), r"generated node by node; partition='shards' does not apply"),
        (lambda: data.make_dataset("synthetic_classification", num_classes=1).build(2), r"num_classes must be at least 2"),
        (lambda: data.make_dataset("synthetic_regression", noise=-1.0), r"noise must be a non-negative number"),
        (lambda: data.make_dataset("digits", train_samples=0), r"train_samples must be a positive int"),
    ],
)
def test_registry_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_registry_lists_every_source():
    assert sorted(data.DATASETS) == [
        "cifar10", "digits", "fashion_mnist", "mnist", "mnist5k", "synthetic_classification", "synthetic_regression",
    ]
    assert sorted(data.PARTITIONS) == ["community", "dirichlet", "gamma_similarity", "iid", "labels", "shards"]
    spec = data.make_dataset("digits", image=True)
    assert data.make_dataset(spec) is spec and spec == data.Digits(image=True)
    assert data.make_partition({"name": "dirichlet", "alpha": 2}) == data.Dirichlet(alpha=2.0)


# --------------------------------------------------------------------------- synthetic optima


def test_synthetic_regression_known_optimum():
    clean = load_dataset("synthetic_regression", num_nodes=4, seed=0, noise=0.0, dim=5, samples_per_node=8)
    w_star = np.asarray(clean.info["w_star"])
    solution = data.least_squares_optimum(clean.train)
    np.testing.assert_allclose(solution["w"][:, 0], w_star, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(solution["b"], 0, atol=1e-5)
    # The optimum is in models.Linear's layout: zero loss at each node's own optimum.
    node0 = jax.tree.map(lambda leaf: leaf[0], clean.optimum)
    assert float(Linear().loss(node0, clean.train.x[0], clean.train.y[0])) < 1e-10
    skewed = load_dataset("synthetic_regression", num_nodes=4, seed=0, noise=0.0, dim=5, samples_per_node=8, heterogeneity=1.0)
    w_nodes = np.asarray(skewed.optimum["w"][:, :, 0])
    assert np.linalg.norm(w_nodes - w_star, axis=1).min() > 0.5  # nodes disagree
    # Least squares over a subset of nodes, checked against numpy on their stacked data.
    honest = np.array([True, False, True, True])
    subset = data.least_squares_optimum(skewed.train, honest)
    x = np.concatenate([np.c_[np.asarray(skewed.train.x[i]), np.ones(8)] for i in np.flatnonzero(honest)])
    y = np.concatenate([np.asarray(skewed.train.y[i]) for i in np.flatnonzero(honest)])
    reference = np.linalg.lstsq(x, y, rcond=None)[0]  # equal counts: same objective up to scale
    np.testing.assert_allclose(np.r_[subset["w"][:, 0], subset["b"]], reference, rtol=1e-4, atol=1e-5)


def test_synthetic_classification_heterogeneity_and_bayes_classifier():
    iid = load_dataset("synthetic_classification", num_nodes=8, seed=1, samples_per_node=200, separation=4.0)
    skewed = load_dataset("synthetic_classification", num_nodes=8, seed=1, samples_per_node=200, separation=4.0, heterogeneity=5.0)
    share = lambda fed: np.mean(label_counts(fed.train, 10).max(axis=1) / 200)  # noqa: E731
    assert share(iid) < 0.25 and share(skewed) > 0.5
    np.testing.assert_allclose(np.asarray(iid.info["priors"]), 0.1, rtol=1e-6)
    assert iid.train.y.dtype == jnp.int32 and iid.x_test.shape == (1000, 10)
    accuracy = jax.jit(Logistic().accuracy)(iid.info["bayes_params"], iid.x_test, iid.y_test)
    assert float(accuracy) > 0.8
    np.testing.assert_allclose(np.linalg.norm(iid.info["centres"], axis=1), 4.0, rtol=1e-5)
