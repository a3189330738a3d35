"""Datasets, their partition over nodes, and on-device batch sampling.

Everything here is built once on the host (numpy, or a jitted generator for synthetic
tasks) before a run; nothing runs per round except :func:`sample_batch`, which draws a
minibatch with ``jax.random`` inside ``jit``/``vmap`` from per-node arrays padded to a
common size:

    NodeData.x: f32[n, m, *input_shape]    padding rows are zeros
    NodeData.y: int32[n, m] (labels) or f32[n, m] (regression targets); padding is 0
    NodeData.count: int32[n]               valid rows per node, 1 <= count <= m

Sources: synthetic regression and classification generated node by node from a seed
(any n, O(n) memory, a known optimum and a heterogeneity knob); scikit-learn's bundled
handwritten digits (the default, no download); MNIST and Fashion-MNIST (IDX files) and
CIFAR-10 (python pickle batches) read from a folder the user names. Nothing is ever
downloaded. Partitions of a labelled training set: ``iid``, ``dirichlet`` (label skew),
``shards`` (k labels per node), ``community`` (each graph community its own labels).

Registries: :data:`DATASETS` with :func:`make_dataset` / :func:`load_dataset`, and
:data:`PARTITIONS` with :func:`make_partition`; unknown names or parameters raise
``ValueError`` with a close-match suggestion.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import numbers
import os
import pickle
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from attacks._registry import build_from_registry

__all__ = [
    "CIFAR10",
    "DATASETS",
    "DATASET_SUMMARIES",
    "PARTITIONS",
    "Community",
    "Dataset",
    "DatasetSpec",
    "Digits",
    "Dirichlet",
    "FashionMNIST",
    "FederatedData",
    "Iid",
    "MNIST",
    "MissingDataError",
    "NodeData",
    "Partition",
    "Shards",
    "SyntheticClassification",
    "SyntheticRegression",
    "label_counts",
    "least_squares_optimum",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "make_dataset",
    "make_partition",
    "pad_nodes",
    "partition_community",
    "partition_dirichlet",
    "partition_iid",
    "partition_shards",
    "read_cifar_batch",
    "read_idx",
    "sample_batch",
    "sample_batches",
    "synthetic_classification",
    "synthetic_regression",
]


# --------------------------------------------------------------------------- containers


@functools.partial(jax.tree_util.register_dataclass, data_fields=["x", "y", "count"], meta_fields=[])
@dataclasses.dataclass(frozen=True, eq=False)
class NodeData:
    """Per-node training data padded to a common size m (a JAX pytree: vmap over axis 0).

    Attributes:
        x: f32[n, m, *input_shape]; rows ``>= count[i]`` of node i are zeros.
        y: int32[n, m] labels, or f32[n, m] regression targets; padding is 0.
        count: int32[n], the number of valid rows of each node (>= 1).

    Under ``jax.vmap`` a NodeData holds one node: x f32[m, ...], y [m], count int32[].
    """

    x: Any
    y: Any
    count: Any

    @property
    def num_nodes(self) -> int:
        """n (for a stacked NodeData)."""
        return int(self.count.shape[0])

    @property
    def capacity(self) -> int:
        """m, the padded number of rows per node."""
        return int(self.y.shape[-1])

    @property
    def mask(self):
        """bool[n, m] (or bool[m] for one node): True on valid rows, ``arange(m) < count``."""
        count = jnp.asarray(self.count)
        rows = jnp.arange(self.y.shape[-1]).reshape((1,) * count.ndim + (-1,))
        return rows < count[..., None]


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset held centrally (host numpy), before it is partitioned.

    Attributes:
        name: registry name, e.g. "digits".
        x_train: f32[N, *input_shape], standardized.
        y_train: int32[N] labels in [0, num_classes).
        x_test: f32[T, *input_shape], standardized with the training statistics.
        y_test: int32[T].
        num_classes: C.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclasses.dataclass(frozen=True, eq=False)
class FederatedData:
    """What the engine consumes: per-node training data, a shared held-out test set, metadata.

    Attributes:
        name: the dataset's registry name.
        task: "classification" or "regression".
        train: :class:`NodeData` with n nodes (JAX arrays).
        x_test: f32[T, *input_shape], shared by all nodes.
        y_test: int32[T] labels or f32[T] targets.
        input_shape: one example's shape.
        num_outputs: number of classes C (classification) or 1 (regression).
        optimum: regression only: each node's population minimiser in ``models.Linear``'s
            layout, stacked: ``{"w": f32[n, p, 1], "b": f32[n, 1]}``; None otherwise.
            The minimiser of an average over a set of nodes is their average (all nodes share
            the input covariance); :func:`least_squares_optimum` gives the empirical one.
        info: extra facts about the data (synthetic centres and priors, partition used).
    """

    name: str
    task: str
    train: NodeData
    x_test: Any
    y_test: Any
    input_shape: tuple[int, ...]
    num_outputs: int
    optimum: Any = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return self.train.num_nodes

    @property
    def num_classes(self) -> int:
        """C for classification tasks (labels are int32 in [0, C))."""
        if self.task != "classification":
            raise ValueError(f"{self.name} is a regression task; it has no classes.")
        return self.num_outputs


class MissingDataError(FileNotFoundError, ValueError):
    """A dataset's files are not where the user said (both a FileNotFoundError and a ValueError)."""


# --------------------------------------------------------------------------- sampling


def sample_batch(key, node_data: NodeData, batch_size: int):
    """Draw one node's minibatch on device: indices i_b ~ Uniform{0, ..., count-1}, with replacement.

    Written for one node; ``jax.vmap`` it over nodes (or use :func:`sample_batches`). Pure
    JAX, so it runs inside ``jit`` with no host round trip; ``batch_size`` is static.

    Args:
        key: a PRNG key.
        node_data: one node's NodeData: x f32[m, ...], y [m], count int32[].
        batch_size: B, a Python int.

    Returns:
        (x f32[B, *input_shape], y int32[B] or f32[B]), rows drawn among the node's valid rows.

    Raises:
        ValueError: a stacked NodeData (count with a node axis) or batch_size < 1.

    Example:
        >>> xb, yb = jax.vmap(sample_batch, in_axes=(0, 0, None))(keys, data.train, 32)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"sample_batch: batch_size must be a positive int; got {batch_size!r}.")
    count = jnp.asarray(node_data.count)
    if count.ndim != 0:
        raise ValueError(
            f"sample_batch is written for one node but got count of shape {count.shape}; "
            "vmap it over nodes, or call sample_batches for all nodes."
        )
    index = jax.random.randint(key, (int(batch_size),), 0, jnp.maximum(count, 1), dtype=jnp.int32)
    return jnp.take(node_data.x, index, axis=0), jnp.take(node_data.y, index, axis=0)


def sample_batches(key, node_data: NodeData, batch_size: int):
    """:func:`sample_batch` for every node, node i with ``jax.random.fold_in(key, i)``.

    Args:
        key: a PRNG key.
        node_data: stacked NodeData (n nodes).
        batch_size: B.

    Returns:
        (x f32[n, B, *input_shape], y [n, B]).
    """
    n = node_data.count.shape[0]
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(n))
    return jax.vmap(sample_batch, in_axes=(0, 0, None))(keys, node_data, batch_size)


# --------------------------------------------------------------------------- file parsers

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip file ({error}).") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or not.

    Layout: magic = 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes, then the
    values in C order, big-endian. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64 (MNIST images are 0x00000803, labels 0x00000801).

    Args:
        path: the file (gzip is detected by its magic bytes, not the name).

    Returns:
        np.ndarray of the sizes in the header, native byte order.

    Raises:
        ValueError: naming the file, when the magic number is wrong or the size in the
            header does not match the file's length (truncated or padded files).

    References:
        LeCun, Cortes, Burges, "The MNIST database of handwritten digits" (file format).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes, too short for an IDX header (4-byte magic number).")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex()}; expected 0x0000TTDD "
            "(TT a type code such as 08 for uint8, DD the number of dimensions, e.g. 0x00000803 for images)."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(data)}.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: the IDX header says shape {tuple(dims)} of {dtype.name} ({expected} bytes in all), "
            f"but the file has {len(data)} bytes: truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, bytes and numpy arrays: a data file cannot run code."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if module.startswith("numpy.core"):  # pickles written by numpy 1.x (CIFAR-10's own)
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a data batch holds only arrays and lists")
        return super().find_class(module, name)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR-10 python batch (a pickled dict with ``data`` and ``labels``).

    ``data`` is uint8[N, 3072], each row the red, green then blue 32x32 planes in row-major
    order; it is returned as images uint8[N, 32, 32, 3] (NHWC). Only arrays, lists and
    bytes are unpickled (a restricted unpickler), so a data file cannot run code.

    Args:
        path: e.g. ``cifar-10-batches-py/data_batch_1``.

    Returns:
        (images uint8[N, 32, 32, 3], labels int32[N]).

    Raises:
        ValueError: naming the file, when it is not such a pickle, ``data`` is not
            [N, 3072] uint8, or the labels do not match N or lie outside 0..9.

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images", 2009.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(error).__name__}: {error}).") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a pickled dict); got a {type(batch).__name__}.")
    batch = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels'; found {sorted(map(str, batch))}.")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be uint8[N, 3072] (32x32 RGB planes); got {data.dtype}{list(data.shape)}.")
    labels = np.asarray(batch["labels"])
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.size} labels for {data.shape[0]} images.")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must be integers in 0..9.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def _folder(name: str, path) -> Path:
    if path is None:
        raise MissingDataError(
            f"{name} needs path=FOLDER, the folder holding its files; decentral never downloads data."
        )
    folder = Path(os.path.expanduser(str(path)))
    if not folder.is_dir():
        raise MissingDataError(f"{name}: data folder {folder} does not exist (searched for the dataset's files there).")
    return folder


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: Path, stem: str) -> Path | None:
    # The official names, gzipped or not; some unpackers write "train-images.idx3-ubyte".
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _standardize_images(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC -> f32, scaled to [0, 1] then per-channel (x - mean) / std with training statistics."""
    train = train.astype(np.float32) / 255.0
    test = test.astype(np.float32) / 255.0
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axis=axes, dtype=np.float64).astype(np.float32)
    std = train.std(axis=axes, dtype=np.float64).astype(np.float32)
    std = np.where(std > 0, std, np.float32(1.0))
    return (train - mean) / std, (test - mean) / std


def _load_idx_dataset(name: str, path) -> Dataset:
    folder = _folder(name, path)
    found = {key: _find_idx(folder, stem) for key, stem in _MNIST_FILES.items()}
    missing = [_MNIST_FILES[key] for key, file in found.items() if file is None]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in _MNIST_FILES.values())
        raise MissingDataError(
            f"{name}: missing {', '.join(missing)} in {folder}. Expected the IDX files {expected} "
            "there (gzipped or not); decentral never downloads data."
        )
    arrays = {}
    for split in ("train", "test"):
        images_file, labels_file = found[f"{split}_images"], found[f"{split}_labels"]
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(
                f"{images_file}: expected uint8 images [N, rows, cols] (magic 0x00000803); "
                f"got {images.dtype}{list(images.shape)}."
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(
                f"{labels_file}: expected uint8 labels [N] (magic 0x00000801); got {labels.dtype}{list(labels.shape)}."
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{labels_file}: {labels.shape[0]} labels for the {images.shape[0]} images of {images_file}.")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{labels_file}: labels must lie in 0..9; found {int(labels.max())}.")
        arrays[split] = (images[..., None], labels.astype(np.int32))
    if arrays["train"][0].shape[1:] != arrays["test"][0].shape[1:]:
        raise ValueError(
            f"{name}: training images {arrays['train'][0].shape[1:3]} and test images "
            f"{arrays['test'][0].shape[1:3]} differ in size."
        )
    x_train, x_test = _standardize_images(arrays["train"][0], arrays["test"][0])
    return Dataset(name, x_train, arrays["train"][1], x_test, arrays["test"][1], 10)


def load_mnist(path) -> Dataset:
    """MNIST from a folder of IDX files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``.

    Images become f32[N, 28, 28, 1]: x/255, then standardized per channel with the
    training mean and std.

    Args:
        path: the folder.

    Returns:
        Dataset (60,000 training, 10,000 test images for the real files).

    Raises:
        MissingDataError: the folder or a file is missing (names the folder and the files).
        ValueError: a malformed file (names it).

    References:
        LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
        recognition", Proc. IEEE 1998.
    """
    return _load_idx_dataset("mnist", path)


def load_fashion_mnist(path) -> Dataset:
    """Fashion-MNIST from a folder of IDX files (the same names and format as :func:`load_mnist`).

    Args:
        path: the folder.

    Returns:
        Dataset of f32[N, 28, 28, 1] images and 10 classes.

    Raises:
        MissingDataError: the folder or a file is missing.
        ValueError: a malformed file.

    References:
        Xiao, Rasul, Vollgraf, "Fashion-MNIST: a novel image dataset for benchmarking
        machine learning algorithms", 2017.
    """
    return _load_idx_dataset("fashion_mnist", path)


_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def load_cifar10(path) -> Dataset:
    """CIFAR-10 from its python batches: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``.

    ``path`` is the ``cifar-10-batches-py`` folder or its parent. Images become
    f32[N, 32, 32, 3]: x/255, then standardized per channel with the training statistics.

    Args:
        path: the folder.

    Returns:
        Dataset (50,000 training, 10,000 test images for the real files).

    Raises:
        MissingDataError: the folder or a batch file is missing.
        ValueError: a malformed batch (names it).

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images", 2009.
    """
    folder = _folder("cifar10", path)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    expected = (*_CIFAR_TRAIN, "test_batch")
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise MissingDataError(
            f"cifar10: missing {', '.join(missing)} in {folder}. Expected the python batches "
            f"{', '.join(expected)} there (the cifar-10-batches-py folder or its parent); "
            "decentral never downloads data."
        )
    train = [read_cifar_batch(folder / name) for name in _CIFAR_TRAIN]
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    x_train, x_test = _standardize_images(x_train, x_test)
    return Dataset("cifar10", x_train, y_train, x_test, y_test, 10)


@functools.lru_cache(maxsize=8)
def _digits(test_fraction: float, split_seed: int, image: bool) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant border pixels stay 0
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)
    if image:
        x_train, x_test = x_train.reshape(-1, 8, 8, 1), x_test.reshape(-1, 8, 8, 1)
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10)


def load_digits(*, test_fraction: float = 0.25, split_seed: int = 0, image: bool = False) -> Dataset:
    """scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes; no download).

    A stratified train/test split fixed by ``split_seed``; each pixel standardized with the
    training mean and std, (x - mean) / std (pixels constant on the training set stay 0).

    Args:
        test_fraction: share of the samples held out for testing, in (0, 1).
        split_seed: seed of the split (fixed across runs by default).
        image: give examples as f32[8, 8, 1] images (for ``cnn``) instead of f32[64].

    Returns:
        Dataset; with the defaults 1,347 training and 450 test samples. Arrays are read-only
        (cached).

    Raises:
        ValueError: test_fraction outside (0, 1).

    References:
        Alpaydin, Kaynak, "Optical recognition of handwritten digits", UCI ML repository, 1998.
    """
    if not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must lie in (0, 1); got {test_fraction!r}.")
    return _digits(float(test_fraction), int(split_seed), bool(image))


# --------------------------------------------------------------------------- partitions


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def _labels(function: str, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{function}: labels must be a 1-D integer array; got {labels.dtype}{list(labels.shape)}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{function}: labels must be non-negative integers; found {int(labels.min())}.")
    return labels


def _nodes(function: str, num_nodes) -> int:
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, numbers.Integral) or num_nodes < 1:
        raise ValueError(f"{function}: num_nodes must be a positive int; got {num_nodes!r}.")
    return int(num_nodes)


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
    n = _nodes("partition_iid", num_nodes)
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
    n = _nodes(function, num_nodes)
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
    n = _nodes(function, num_nodes)
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


def _positive(owner: str, name: str, value, *, integer: bool = False, zero: bool = False):
    kind = numbers.Integral if integer else numbers.Real
    ok = not isinstance(value, bool) and isinstance(value, kind) and (value >= 0 if zero else value > 0)
    if not ok:
        what = "int" if integer else "number"
        raise ValueError(f"{owner}: {name} must be a {'non-negative' if zero else 'positive'} {what}; got {value!r}.")
    return int(value) if integer else float(value)


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
        object.__setattr__(self, "alpha", _positive("dirichlet", "alpha", self.alpha))
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
        object.__setattr__(self, "labels_per_node", _positive("shards", "labels_per_node", self.labels_per_node, integer=True))

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
                "with communities (e.g. a dumbbell or stochastic block model) or another partition."
            )
        communities = np.asarray(communities)
        if communities.shape != (num_nodes,):
            raise ValueError(
                f"community partition: communities has shape {communities.shape}; "
                f"expected ({num_nodes},), one id per node."
            )
        return partition_community(labels, communities, seed=seed, labels_of=self.labels)


#: Every partition spec, by config name.
PARTITIONS: dict[str, type[Partition]] = {"iid": Iid, "dirichlet": Dirichlet, "shards": Shards, "community": Community}


def make_partition(config="iid", **params) -> Partition:
    """Build a partition spec from a name, a table or a built spec.

    Args:
        config: a key of :data:`PARTITIONS` ("iid", "dirichlet", "shards", "community"), a
            table ``{"name": "dirichlet", "alpha": 0.1}``, or a :class:`Partition`.
        **params: the spec's fields (``alpha``, ``balanced``, ``labels_per_node``, ``labels``).

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


# --------------------------------------------------------------------------- synthetic tasks


# The generators draw ONE flat normal vector per node and one for the global quantities and
# the test set, then slice it: XLA compiles each threefry draw separately and slowly, so
# this keeps the first call (one compilation per shape) cheap. Node i's draw comes from
# fold_in(key, i), so its data does not depend on n. Test point t comes from node t mod n.


@functools.partial(jax.jit, static_argnames=("num_nodes", "dim", "samples_per_node", "test_samples"))
def _regression_arrays(key, noise, heterogeneity, *, num_nodes, dim, samples_per_node, test_samples):
    m, t = samples_per_node, test_samples
    shared = jax.random.normal(jax.random.fold_in(key, 0), (dim + t * dim + t,))
    w_star = shared[:dim]
    k_nodes = jax.random.fold_in(key, 1)

    def node(i):
        z = jax.random.normal(jax.random.fold_in(k_nodes, i), (dim + m * dim + m,))
        w = w_star + heterogeneity * z[:dim]
        x = z[dim: dim + m * dim].reshape(m, dim)
        return x, x @ w + noise * z[dim + m * dim:], w

    x, y, w = jax.vmap(node)(jnp.arange(num_nodes))
    x_test = shared[dim: dim + t * dim].reshape(t, dim)
    who = jnp.arange(t) % num_nodes
    y_test = jnp.sum(x_test * w[who], axis=1) + noise * shared[dim + t * dim:]
    return x, y, w, w_star, x_test, y_test


def synthetic_regression(num_nodes: int, *, seed=0, dim: int = 10, samples_per_node: int = 50,
                         noise: float = 0.1, heterogeneity: float = 0.0, test_samples: int = 1000) -> FederatedData:
    """Linear regression generated node by node: y = x . w_i + noise * e, x, e ~ N(0, I).

    w* ~ N(0, I_dim); node i's optimum is w_i = w* + heterogeneity * z_i, z_i ~ N(0, I)
    (heterogeneity = 0: iid nodes). Node i's data comes from ``fold_in(key, i)``, so it does
    not depend on n, and nothing global is materialised. The test set is the equal mixture
    of the nodes' distributions (point t from node t mod n), whose least-squares minimiser
    is mean_i w_i: the minimiser of the average of the nodes' population losses.

    Args:
        num_nodes: n.
        seed: data seed.
        dim: p, input features.
        samples_per_node: m, samples per node (every count is m).
        noise: sigma >= 0 of the target noise.
        heterogeneity: spread >= 0 of the node optima around w*.
        test_samples: T.

    Returns:
        FederatedData (task "regression", y f32) with ``optimum`` = each node's w_i in
        ``models.Linear`` layout ({"w": f32[n, p, 1], "b": zeros f32[n, 1]}) and
        ``info["w_star"]`` f32[p].

    Raises:
        ValueError: a non-positive size or a negative noise / heterogeneity.
    """
    owner = "synthetic_regression"
    n = _nodes(owner, num_nodes)
    dim = _positive(owner, "dim", dim, integer=True)
    m = _positive(owner, "samples_per_node", samples_per_node, integer=True)
    test_samples = _positive(owner, "test_samples", test_samples, integer=True)
    noise = _positive(owner, "noise", noise, zero=True)
    heterogeneity = _positive(owner, "heterogeneity", heterogeneity, zero=True)
    x, y, w, w_star, x_test, y_test = _regression_arrays(
        jax.random.key(seed), jnp.float32(noise), jnp.float32(heterogeneity),
        num_nodes=n, dim=dim, samples_per_node=m, test_samples=test_samples,
    )
    train = NodeData(x, y, jnp.full((n,), m, jnp.int32))
    optimum = {"w": w[:, :, None], "b": jnp.zeros((n, 1), jnp.float32)}
    info = {"w_star": w_star, "noise": noise, "heterogeneity": heterogeneity}
    return FederatedData(owner, "regression", train, x_test, y_test, (dim,), 1, optimum, info)


@functools.partial(jax.jit, static_argnames=("num_nodes", "dim", "num_classes", "samples_per_node", "test_samples"))
def _classification_arrays(key, separation, heterogeneity, *, num_nodes, dim, num_classes, samples_per_node, test_samples):
    m, t, c = samples_per_node, test_samples, num_classes
    shared = jax.random.normal(jax.random.fold_in(key, 0), (c * dim + t * dim + t,))
    directions = shared[: c * dim].reshape(c, dim)
    centres = separation * directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    k_nodes = jax.random.fold_in(key, 1)

    def sample(noise, normal, priors):
        # Inverse-CDF categorical draw: u = Phi(normal) is uniform on (0, 1).
        u = jax.scipy.special.ndtr(normal)
        thresholds = jnp.cumsum(priors)[:-1]
        y = jnp.sum(u[:, None] > thresholds[None, :], axis=1).astype(jnp.int32)
        return centres[y] + noise, y

    def node(i):
        z = jax.random.normal(jax.random.fold_in(k_nodes, i), (c + m * dim + m,))
        priors = jax.nn.softmax(heterogeneity * z[:c])
        x, y = sample(z[c: c + m * dim].reshape(m, dim), z[c + m * dim:], priors)
        return x, y, priors

    x, y, priors = jax.vmap(node)(jnp.arange(num_nodes))
    who = jnp.arange(t) % num_nodes
    test_noise = shared[c * dim: c * dim + t * dim].reshape(t, dim)
    x_test, y_test = jax.vmap(sample, in_axes=(0, 0, 0))(test_noise[:, None, :], shared[c * dim + t * dim:, None], priors[who])
    return x, y, priors, centres, x_test[:, 0], y_test[:, 0]


def synthetic_classification(num_nodes: int, *, seed=0, dim: int = 10, num_classes: int = 10,
                             samples_per_node: int = 50, separation: float = 2.0,
                             heterogeneity: float = 0.0, test_samples: int = 1000) -> FederatedData:
    """Gaussian classes generated node by node: y ~ Categorical(pi_i), x = mu_y + N(0, I).

    Class centres mu_c = separation * u_c, u_c uniform on the unit sphere of R^dim. Node
    i's class priors are pi_i = softmax(heterogeneity * g_i), g_i ~ N(0, I_C)
    (heterogeneity = 0: uniform priors, iid nodes; larger: label skew). Node data comes from
    ``fold_in(key, i)`` (independent of n). The test set is the equal mixture of the nodes'
    distributions (point t from node t mod n). With a
    shared identity covariance the Bayes classifier is linear, argmax_c mu_c . x -
    |mu_c|^2 / 2 + log pi_c, i.e. ``models.Logistic`` parameters (given in ``info``).

    Args:
        num_nodes: n.
        seed: data seed.
        dim: p, input features.
        num_classes: C >= 2.
        samples_per_node: m.
        separation: norm of every class centre (> 0).
        heterogeneity: label-skew strength (>= 0).
        test_samples: T.

    Returns:
        FederatedData (task "classification", y int32) with ``info`` holding "centres"
        f32[C, p], "priors" f32[n, C] and "bayes_params" ({"w": f32[p, C], "b": f32[C]},
        the Bayes classifier for the test mixture).

    Raises:
        ValueError: a non-positive size or separation, num_classes < 2, heterogeneity < 0.
    """
    owner = "synthetic_classification"
    n = _nodes(owner, num_nodes)
    dim = _positive(owner, "dim", dim, integer=True)
    num_classes = _positive(owner, "num_classes", num_classes, integer=True)
    if num_classes < 2:
        raise ValueError(f"{owner}: num_classes must be at least 2; got {num_classes}.")
    m = _positive(owner, "samples_per_node", samples_per_node, integer=True)
    test_samples = _positive(owner, "test_samples", test_samples, integer=True)
    separation = _positive(owner, "separation", separation)
    heterogeneity = _positive(owner, "heterogeneity", heterogeneity, zero=True)
    x, y, priors, centres, x_test, y_test = _classification_arrays(
        jax.random.key(seed), jnp.float32(separation), jnp.float32(heterogeneity),
        num_nodes=n, dim=dim, num_classes=num_classes, samples_per_node=m, test_samples=test_samples,
    )
    train = NodeData(x, y, jnp.full((n,), m, jnp.int32))
    bayes = {"w": centres.T, "b": -0.5 * jnp.sum(centres**2, axis=1) + jnp.log(jnp.mean(priors, axis=0))}
    info = {"centres": centres, "priors": priors, "bayes_params": bayes,
            "separation": separation, "heterogeneity": heterogeneity}
    return FederatedData(owner, "classification", train, x_test, y_test, (dim,), num_classes, None, info)


def least_squares_optimum(node_data: NodeData, nodes=None) -> dict:
    """The exact minimiser of the nodes' average mean-squared loss, in ``models.Linear`` layout.

    Solves min_{w, b} sum_{i in nodes} (1/count_i) sum_{r < count_i} (x_ir . w + b - y_ir)^2
    (each node's loss is a mean, as in decentralized SGD with doubly stochastic mixing) by
    the normal equations in float64 (least-norm solution if singular).

    Args:
        node_data: NodeData with f32 targets y [n, m].
        nodes: optional node ids or bool[n] mask (e.g. the honest nodes); default all.

    Returns:
        {"w": f32[p, 1], "b": f32[1]} with p = prod(input_shape).
    """
    x = np.asarray(node_data.x, dtype=np.float64)
    y = np.asarray(node_data.y, dtype=np.float64)
    count = np.asarray(node_data.count)
    valid = np.asarray(node_data.mask, dtype=np.float64)
    if nodes is not None:
        x, y, count, valid = x[nodes], y[nodes], count[nodes], valid[nodes]
    n, m = y.shape
    design = np.concatenate([x.reshape(n, m, -1) * valid[..., None], valid[..., None]], axis=2)
    scale = (1.0 / np.maximum(count, 1))[:, None, None]
    gram = np.sum(np.einsum("nmp,nmq->npq", design, design) * scale, axis=0)
    rhs = np.sum(np.einsum("nmp,nm->np", design, y * valid) * scale[:, :, 0], axis=0)
    solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return {"w": jnp.asarray(solution[:-1, None], jnp.float32), "b": jnp.asarray(solution[-1:], jnp.float32)}


# --------------------------------------------------------------------------- dataset registry


class DatasetSpec:
    """Base of the dataset specs: ``build(num_nodes, *, seed, partition, communities)``."""

    name: ClassVar[str] = ""

    def build(self, num_nodes: int, *, seed=0, partition="iid", communities=None) -> FederatedData:  # pragma: no cover
        raise NotImplementedError


class _CentralSpec(DatasetSpec):
    """A labelled dataset held centrally, then partitioned over the nodes."""

    def load(self) -> Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, num_nodes: int, *, seed=0, partition="iid", communities=None) -> FederatedData:
        """Load, optionally subsample (``train_samples``), partition and pad.

        Args:
            num_nodes: n.
            seed: data seed (subsample and partition); the test set does not depend on it.
            partition: a partition name, table or spec (see :func:`make_partition`).
            communities: int[n] community ids, for the community partition.

        Returns:
            FederatedData with ``info["partition"]`` the spec used.
        """
        partition = make_partition(partition)
        dataset = self.load()
        x, y = dataset.x_train, dataset.y_train
        rng = _rng(seed)
        train_samples = getattr(self, "train_samples", None)
        if train_samples is not None and train_samples < len(y):
            keep = np.sort(rng.choice(len(y), train_samples, replace=False))
            x, y = x[keep], y[keep]
        parts = partition.split(y, num_nodes, seed=rng.integers(2**63), communities=communities)
        train = pad_nodes(x, y, parts)
        x_test, y_test = dataset.x_test, dataset.y_test
        test_samples = getattr(self, "test_samples", None)
        if test_samples is not None and test_samples < len(y_test):
            keep = np.sort(np.random.default_rng(0).permutation(len(y_test))[:test_samples])
            x_test, y_test = x_test[keep], y_test[keep]
        return FederatedData(
            self.name, "classification", train, jnp.asarray(x_test), jnp.asarray(y_test),
            dataset.input_shape, dataset.num_classes, None, {"partition": partition},
        )


def _optional_count(owner: str, name: str, value):
    return None if value is None else _positive(owner, name, value, integer=True)


@dataclasses.dataclass(frozen=True)
class Digits(_CentralSpec):
    """:func:`load_digits`, partitioned (the default dataset).

    Fields: test_fraction (0.25), split_seed (0, fixes the test set), image (False: f32[64];
    True: f32[8, 8, 1] for cnn), train_samples (None: all 1,347).
    """

    name: ClassVar[str] = "digits"
    test_fraction: float = 0.25
    split_seed: int = 0
    image: bool = False
    train_samples: int | None = None

    def __post_init__(self):
        fraction = self.test_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"digits: test_fraction must lie in (0, 1); got {self.test_fraction!r}.")
        object.__setattr__(self, "train_samples", _optional_count("digits", "train_samples", self.train_samples))

    def load(self) -> Dataset:
        return load_digits(test_fraction=self.test_fraction, split_seed=self.split_seed, image=self.image)


@functools.lru_cache(maxsize=2)
def _cached_files(loader, folder: str, stamp) -> Dataset:
    del stamp  # part of the cache key: a changed file is read again
    return loader(folder)


def _stamp(folder) -> tuple:
    """(name, mtime, size) of the files a loader may read: the folder's and cifar-10-batches-py's."""
    root = Path(os.path.expanduser(str(folder)))
    files = []
    for directory in (root, root / "cifar-10-batches-py"):
        if directory.is_dir():
            files += [p for p in directory.iterdir() if p.is_file()]
    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))


@dataclasses.dataclass(frozen=True)
class _FolderSpec(_CentralSpec):
    path: str | None = None
    train_samples: int | None = None
    test_samples: int | None = None

    _loader: ClassVar[Any] = None

    def __post_init__(self):
        object.__setattr__(self, "train_samples", _optional_count(self.name, "train_samples", self.train_samples))
        object.__setattr__(self, "test_samples", _optional_count(self.name, "test_samples", self.test_samples))

    def load(self) -> Dataset:
        loader = type(self)._loader
        if self.path is None:
            return loader(None)  # raises MissingDataError with the expected files
        return _cached_files(loader, str(self.path), _stamp(self.path))


@dataclasses.dataclass(frozen=True)
class MNIST(_FolderSpec):
    """:func:`load_mnist` from ``path``; optional seeded ``train_samples`` subset and a fixed ``test_samples`` subset."""

    name: ClassVar[str] = "mnist"
    _loader: ClassVar[Any] = staticmethod(load_mnist)


@dataclasses.dataclass(frozen=True)
class FashionMNIST(_FolderSpec):
    """:func:`load_fashion_mnist` from ``path``; optional ``train_samples`` / ``test_samples`` subsets."""

    name: ClassVar[str] = "fashion_mnist"
    _loader: ClassVar[Any] = staticmethod(load_fashion_mnist)


@dataclasses.dataclass(frozen=True)
class CIFAR10(_FolderSpec):
    """:func:`load_cifar10` from ``path``; optional ``train_samples`` / ``test_samples`` subsets."""

    name: ClassVar[str] = "cifar10"
    _loader: ClassVar[Any] = staticmethod(load_cifar10)


def _synthetic_partition(name: str, partition) -> None:
    partition = make_partition(partition)
    if not isinstance(partition, Iid):
        raise ValueError(
            f"{name} is generated node by node; partition={partition.name!r} does not apply. "
            "Use heterogeneity=... for non-iid nodes."
        )


@dataclasses.dataclass(frozen=True)
class SyntheticRegression(DatasetSpec):
    """:func:`synthetic_regression` with these fields (the partition must be iid)."""

    name: ClassVar[str] = "synthetic_regression"
    dim: int = 10
    samples_per_node: int = 50
    noise: float = 0.1
    heterogeneity: float = 0.0
    test_samples: int = 1000

    def __post_init__(self):
        for field in ("dim", "samples_per_node", "test_samples"):
            _positive(self.name, field, getattr(self, field), integer=True)
        for field in ("noise", "heterogeneity"):
            _positive(self.name, field, getattr(self, field), zero=True)

    def build(self, num_nodes: int, *, seed=0, partition="iid", communities=None) -> FederatedData:
        del communities
        _synthetic_partition(self.name, partition)
        return synthetic_regression(num_nodes, seed=seed, **dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class SyntheticClassification(DatasetSpec):
    """:func:`synthetic_classification` with these fields (the partition must be iid)."""

    name: ClassVar[str] = "synthetic_classification"
    dim: int = 10
    num_classes: int = 10
    samples_per_node: int = 50
    separation: float = 2.0
    heterogeneity: float = 0.0
    test_samples: int = 1000

    def __post_init__(self):
        for field in ("dim", "num_classes", "samples_per_node", "test_samples"):
            _positive(self.name, field, getattr(self, field), integer=True)
        _positive(self.name, "separation", self.separation)
        _positive(self.name, "heterogeneity", self.heterogeneity, zero=True)

    def build(self, num_nodes: int, *, seed=0, partition="iid", communities=None) -> FederatedData:
        del communities
        _synthetic_partition(self.name, partition)
        return synthetic_classification(num_nodes, seed=seed, **dataclasses.asdict(self))


#: Every dataset spec, by config name.
DATASETS: dict[str, type[DatasetSpec]] = {
    "digits": Digits,
    "synthetic_regression": SyntheticRegression,
    "synthetic_classification": SyntheticClassification,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
}

#: One line per dataset, for ``decentral list datasets``.
DATASET_SUMMARIES = {
    "digits": "scikit-learn's bundled 8x8 handwritten digits, 10 classes (the default; no download)",
    "synthetic_regression": "linear regression generated per node, known optimum, heterogeneity knob",
    "synthetic_classification": "Gaussian classes generated per node, heterogeneity knob",
    "mnist": "MNIST from IDX files in params.path (28x28, 10 classes)",
    "fashion_mnist": "Fashion-MNIST from IDX files in params.path (28x28, 10 classes)",
    "cifar10": "CIFAR-10 from the python pickle batches in params.path (32x32x3, 10 classes)",
}


def make_dataset(name: str = "digits", **params) -> DatasetSpec:
    """Build a dataset spec from its registry name and parameters (nothing is loaded yet).

    Args:
        name: a key of :data:`DATASETS`.
        **params: the spec's fields, e.g. ``path="~/data/mnist"``.

    Returns:
        DatasetSpec (frozen).

    Raises:
        ValueError: an unknown name or parameter, with a close-match suggestion.
    """
    if isinstance(name, DatasetSpec):
        if params:
            raise ValueError(f"make_dataset: parameters {sorted(params)} given with a built spec {name!r}.")
        return name
    return build_from_registry("dataset", DATASETS, name, params)


def load_dataset(name: str = "digits", *, num_nodes: int, seed=0, partition="iid", communities=None,
                 **params) -> FederatedData:
    """Build the engine's per-node data: ``make_dataset(name, **params).build(...)``.

    Args:
        name: a key of :data:`DATASETS` ("digits", "synthetic_regression",
            "synthetic_classification", "mnist", "fashion_mnist", "cifar10").
        num_nodes: n.
        seed: the run's data seed.
        partition: "iid", "dirichlet", "shards", "community", a table
            ``{"name": "dirichlet", "alpha": 0.1}`` or a spec (real datasets only).
        communities: int[n] community ids for the community partition.
        **params: the dataset's own parameters (``path=`` for files).

    Returns:
        FederatedData.

    Raises:
        ValueError: unknown names or parameters, a dataset too small for the partition.
        MissingDataError: missing data files (also a ValueError).

    Example:
        >>> data = load_dataset("digits", num_nodes=100, seed=1, partition={"name": "dirichlet", "alpha": 0.1})
    """
    return make_dataset(name, **params).build(num_nodes, seed=seed, partition=partition, communities=communities)
