"""Local training: every node's optimizer steps on minibatches of its own data.

The model, its flattener and the optimizer are rebuilt from the :class:`Program`, so the
compiled step depends only on static values; numeric optimizer hyperparameters live in
the optimizer state (traced).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from ..data import sample_batch
from .plan import optimizer_from
from .program import Program


def model_parts(program: Program):
    """(model, flattener, optimizer) rebuilt from the program (numeric optimizer
    hyperparameters come from the optimizer state, so the 0.0 placeholders never act)."""
    flattener = program.model.flattener(program.input_shape, program.num_outputs)
    name, params = program.optimizer
    return program.model, flattener, optimizer_from(name, 0.0, dict(params))


def make_local_steps(program: Program):
    """``local(params, opt_state, key, round, attack, inputs) -> (params, opt_state)``: local
    optimizer steps per node. While the attack is active (its ``active(round)``),
    Byzantine nodes train on the data it poisons (``inputs.poisoned``, from its ``poison``:
    e.g. ``label_flip``'s flipped labels)."""
    model, flattener, optimizer = model_parts(program)

    def node_loss(flat, batch):
        x, y = batch
        return model.loss(flattener.unflatten(flat), x, y)

    def node_step(flat, opt_state, node_data, key):
        batch = sample_batch(key, node_data, program.batch_size)
        grads = jax.grad(node_loss)(flat, batch)
        updates, opt_state = optimizer.update(grads, opt_state, flat)
        return optax.apply_updates(flat, updates), opt_state

    def local(params, opt_state, key, round_index, attack, inputs):
        train = inputs.train
        if inputs.poisoned is not None:
            active = attack.active(round_index)
            train = dataclasses.replace(
                train, **{part: jnp.where(active, value, getattr(train, part)) for part, value in inputs.poisoned.items()}
            )
        for step in range(program.local_steps):
            keys = jax.random.split(jax.random.fold_in(key, step), params.shape[0])
            params, opt_state = jax.vmap(node_step)(params, opt_state, train, keys)
        return params, opt_state

    return local
