"""What a compiled loop is made of: its static program, its traced inputs and knobs.

A :class:`Program` holds everything that shapes the compiled code (hashable, the key of
the compilation cache); :class:`Inputs` the arrays the loop reads (graph tables, data,
node flags); :class:`Knobs` the traced values of a run (the rule's and the attack's
numeric parameters, f per node, the message-loss probability, the crash round). Two
plans with equal programs and inputs of equal shapes share one compilation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .plan import Plan


@dataclasses.dataclass(frozen=True)
class Program:
    """What shapes the compiled loop, and nothing else (hashable).

    Plans with equal programs and arrays of equal shapes share one compilation: a sweep
    over seeds, learning rates, loss probabilities, f, placements of the same size or the
    numeric parameters of a rule or an attack compiles once per process.
    """

    task: str
    order: str
    gossip: str
    gossip_steps: int
    local_steps: int
    eval_every: int
    block: int
    delay: int
    network_kind: type  # the network's class: its ``tables_at`` gives the tables of a round
    batch_size: int
    model: Any  # a (hashable) models.Model, or None for the averaging task
    input_shape: tuple
    num_outputs: int
    optimizer: tuple  # (name, ((parameter, value), ...)) with numeric values replaced by 0.0
    optimization: int  # XLA backend optimization level


def _is_numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def program_of(plan: Plan) -> Program:
    """The static part of ``plan`` (see :class:`Program`)."""
    run, data = plan.scenario.run, plan.data
    config = plan.scenario.optimizer
    optimizer = (config.name, tuple(sorted((key, 0.0 if _is_numeric(value) else value) for key, value in config.params.items())))
    return Program(
        task=run.task, order=run.order, gossip=run.gossip, gossip_steps=run.gossip_steps,
        local_steps=run.local_steps, eval_every=run.eval_every, block=run.block, delay=plan.scenario.faults.delay,
        network_kind=type(plan.network), batch_size=plan.scenario.data.batch_size,
        model=plan.model, input_shape=data.input_shape if data else (), num_outputs=data.num_outputs if data else 0,
        optimizer=optimizer, optimization=run.optimization,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Inputs:
    """The arrays of a plan that the compiled loop reads, passed as arguments (traced).

    Attributes:
        byzantine, crashed, stragglers: bool[n] node flags.
        tables: the network's inbox tables (its ``engine_tables()``), one dict (nodes,
            neighbors, mask, weights) per degree bucket; a time-varying graph has one table
            whose arrays have a leading round axis.
        train: the nodes' training data (:class:`~decentral.data.NodeData`), or None.
        poisoned: what Byzantine nodes train on while the attack is active: a dict with
            ``x`` and/or ``y`` (the parts the attack poisons, [n, m, ...]), or None.
        x_test, y_test: the shared test set, or None.
        honest: int32[H], the honest node ids.
        honest_train: the honest nodes' training data, or None.
        optimum: f32[d], the honest nodes' optimum (synthetic regression), or None.
    """

    byzantine: Any
    crashed: Any
    stragglers: Any
    tables: Any
    train: Any
    poisoned: Any
    x_test: Any
    y_test: Any
    honest: Any
    honest_train: Any
    optimum: Any


def poisoned_data(plan: Plan) -> dict | None:
    """The training data Byzantine nodes train on while the attack is active: the parts
    it poisons (its ``poisons``: ``"inputs"`` -> ``x``, ``"labels"`` -> ``y``) from its
    ``poison``, honest nodes' rows left clean; None when it poisons nothing."""
    attack = plan.attack
    if plan.data is None or not attack.poisons:
        return None
    clean = plan.data.train
    x, y = attack.poison(clean.x, clean.y, plan.data.num_classes)
    byzantine = jnp.asarray(plan.network.byzantine)
    out = {}
    if "inputs" in attack.poisons:
        out["x"] = jnp.where(byzantine.reshape((-1,) + (1,) * (clean.x.ndim - 1)), x, clean.x)
    if "labels" in attack.poisons:
        out["y"] = jnp.where(byzantine[:, None], y, clean.y)
    return out


def _node_flags(n: int, ids) -> jnp.ndarray:
    flags = np.zeros(n, dtype=bool)
    flags[list(ids)] = True
    return jnp.asarray(flags)


def inputs_of(plan: Plan) -> Inputs:
    """The arrays ``plan``'s compiled loop reads (see :class:`Inputs`)."""
    n, faults = plan.network.n, plan.scenario.faults
    honest = np.flatnonzero(~plan.network.byzantine)
    data = plan.data
    train = honest_train = x_test = y_test = optimum = None
    if data is not None:
        train, x_test, y_test = data.train, data.x_test, data.y_test
        honest_train = jax.tree.map(lambda leaf: leaf[honest], train)
        if data.optimum is not None:
            optimum = plan.flattener.flatten(data.optimum)[honest].mean(axis=0)
    return Inputs(
        byzantine=jnp.asarray(plan.network.byzantine),
        crashed=_node_flags(n, faults.crashed),
        stragglers=_node_flags(n, faults.stragglers),
        tables=jax.tree.map(jnp.asarray, plan.network.engine_tables()),
        train=train,
        poisoned=poisoned_data(plan),
        x_test=x_test,
        y_test=y_test,
        honest=jnp.asarray(honest, dtype=jnp.int32),
        honest_train=honest_train,
        optimum=optimum,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Knobs:
    """The traced values of a run: changing any of them never recompiles."""

    rule: Any
    attack: Any
    f_nodes: Any
    message_loss: Any
    crash_round: Any


def knobs_for(plan: Plan, **changes) -> Knobs:
    """The scenario's traced values (``changes`` override them, e.g. ``message_loss=0.3``)."""
    faults = plan.scenario.faults
    knobs = Knobs(
        rule=plan.rule,
        attack=plan.attack,
        f_nodes=jnp.asarray(plan.f_nodes),
        message_loss=jnp.float32(faults.message_loss),
        crash_round=jnp.int32(faults.crash_round),
    )
    return dataclasses.replace(knobs, **changes)
