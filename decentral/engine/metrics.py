"""What the engine measures at every evaluation, per honest node and over honest nodes.

Training: each honest node's test metrics and training loss, the averaged honest model's
test metrics, the consensus distance, and (synthetic regression) the distance to the
honest optimum. Averaging: the consensus distance, the drift of the honest mean and the
error, the honest nodes' mean squared distance to the average of their initial vectors
(consensus distance + drift**2; the MSE of Gaucher et al.'s averaging experiments, up to
their factor n/d).

Every task also measures ``diverged`` (bool, per replicate): whether any honest node's
parameters are non-finite (inf or NaN), or any metric is (parameters still finite but so
large that their squares or a loss overflow, e.g. 1e37). A diverged replicate's other
metrics are NaN, so an overflowed model is never read as an accuracy (the argmax of NaN
logits is class 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .local import model_parts
from .program import Program


def _consensus(params, honest):
    mine = params[honest]
    center = mine.mean(axis=0)
    return mine, center, jnp.mean(jnp.sum((mine - center[None, :]) ** 2, axis=1))


def make_metrics(program: Program):
    """``metrics(params, start_center, inputs) -> dict``: per honest node and over honest
    nodes, with the ``diverged`` flag (see the module docstring)."""
    measure = _measure(program)

    def metrics(params, start_center, inputs):
        out = measure(params, start_center, inputs)
        finite = [jnp.all(jnp.isfinite(value)) for value in out.values()]
        diverged = ~(jnp.all(jnp.isfinite(params[inputs.honest])) & jnp.all(jnp.stack(finite)))
        out = {name: jnp.where(diverged, jnp.nan, value) for name, value in out.items()}
        out["diverged"] = diverged
        return out

    return metrics


def _measure(program: Program):
    """The task's metrics, before the divergence check."""
    if program.task == "averaging":

        def averaging_metrics(params, start_center, inputs):
            mine, center, spread = _consensus(params, inputs.honest)
            error = jnp.mean(jnp.sum((mine - start_center[None, :]) ** 2, axis=1))
            return {"consensus_distance": spread, "drift": jnp.linalg.norm(center - start_center), "error": error}

        return averaging_metrics

    model, flattener, _ = model_parts(program)

    def node_metrics(flat, node_data, inputs):
        params = flattener.unflatten(flat)
        test = model.metrics(params, inputs.x_test, inputs.y_test)
        train_loss = model.loss(params, node_data.x, node_data.y, node_data.mask)
        return {**{f"test_{name}": value for name, value in test.items()}, "train_loss": train_loss}

    def training_metrics(params, start_center, inputs):
        del start_center
        mine, center, spread = _consensus(params, inputs.honest)
        out = jax.vmap(node_metrics, in_axes=(0, 0, None))(mine, inputs.honest_train, inputs)
        averaged = model.metrics(flattener.unflatten(center), inputs.x_test, inputs.y_test)
        out.update({f"averaged_{name}": value for name, value in averaged.items()})
        out["consensus_distance"] = spread
        if inputs.optimum is not None:
            out["distance_to_optimum"] = jnp.linalg.norm(mine - inputs.optimum[None, :], axis=1)
        return out

    return training_metrics
