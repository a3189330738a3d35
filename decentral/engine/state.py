"""A run's state: what every replicate carries from round to round (a pytree)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .plan import Plan


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class State:
    """One replicate's simulation state (a pytree; stacked over repeats)."""

    params: Any
    opt_state: Any
    attack_state: Any
    key: Any
    round: Any
    start_center: Any
    history: Any  # f32[delay + 1, n, d] messages of past rounds (stragglers), or None


def initial_state(plan: Plan, repeat: int) -> State:
    """Replicate ``repeat``'s state at round 0 (seeds folded by the replicate index)."""
    n = plan.network.n
    init_key = jax.random.fold_in(jax.random.key(plan.seeds["init"]), repeat)
    if plan.scenario.run.task == "averaging":
        params = jax.random.normal(init_key, (n, plan.dim))
    else:
        # every node starts from the same model, as in decentralized SGD papers
        one = plan.model.init(init_key, plan.data.input_shape, plan.data.num_outputs)
        params = jnp.broadcast_to(plan.flattener.flatten(one), (n, plan.dim))
    honest = np.flatnonzero(~plan.network.byzantine)
    opt_state = jax.vmap(plan.optimizer.init)(params)
    attack_state = plan.attack.init(plan.attack_graph, plan.dim)
    key = jax.random.fold_in(jax.random.key(plan.seeds["attack"]), repeat)
    history = None
    faults = plan.scenario.faults
    if faults.stragglers:
        first = jnp.zeros_like(params) if plan.scenario.run.gossip == "updates" else params
        history = jnp.broadcast_to(first, (faults.delay + 1, *params.shape))
    return State(params, opt_state, attack_state, key, jnp.int32(0), params[honest].mean(axis=0), history)


def initial_states(plan: Plan) -> State:
    """Every replicate's state at round 0, stacked on a leading repeats axis."""
    states = [initial_state(plan, r) for r in range(plan.scenario.run.repeats)]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
