"""On-device minibatch sampling from padded per-node data, inside ``jit``/``vmap``."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from .containers import NodeData


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
