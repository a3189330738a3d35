"""Checkpoints: a run's stacked states as bytes (numpy ``.npz``) and back, bit for bit."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np

from .plan import Plan
from .state import State, initial_states


def state_to_bytes(states: State) -> bytes:
    """Serialize stacked states (a checkpoint) to bytes: numpy ``.npz``, PRNG keys as raw data."""
    leaves = jax.tree.leaves(states)
    arrays = {}
    for index, leaf in enumerate(leaves):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        arrays[f"leaf{index}"] = np.asarray(leaf)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def state_from_bytes(plan: Plan, data: bytes) -> State:
    """The inverse of :func:`state_to_bytes`, for ``plan`` (its initial states give the structure)."""
    template = jax.eval_shape(lambda: initial_states(plan))
    leaves, treedef = jax.tree.flatten(template)
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        if len(stored.files) != len(leaves):
            raise ValueError("checkpoint does not match this scenario's state (different structure).")
        restored = []
        for index, shape in enumerate(leaves):
            value = jnp.asarray(stored[f"leaf{index}"])
            if jnp.issubdtype(shape.dtype, jax.dtypes.prng_key):
                value = jax.random.wrap_key_data(value)  # the default implementation, as jax.random.key
            if value.shape != shape.shape or value.dtype != shape.dtype:
                raise ValueError(f"checkpoint leaf {index} has shape {value.shape} {value.dtype}; expected {shape.shape} {shape.dtype}.")
            restored.append(value)
    return jax.tree.unflatten(treedef, restored)
