"""The data containers: per-node padded arrays, a central labelled dataset, and what the engine consumes.

    NodeData.x: f32[n, m, *input_shape]    padding rows are zeros
    NodeData.y: int32[n, m] (labels) or f32[n, m] (regression targets); padding is 0
    NodeData.count: int32[n]               valid rows per node, 1 <= count <= m

:class:`NodeData` is a JAX pytree (vmap over the node axis); :class:`Dataset` holds host
numpy arrays before partitioning; :class:`FederatedData` bundles a run's training nodes,
the shared test set and metadata.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


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
