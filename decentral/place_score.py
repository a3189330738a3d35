"""Scoring Byzantine placements by simulated damage, a whole batch in one compilation.

A candidate placement is a set of existing nodes made Byzantine; everything else of the
scenario stays. Each candidate's plan is exactly the plan of the scenario with
``[placement] strategy = "manual"`` and ``params = { ids = [...] }``
(:func:`manual_scenario`, built by :func:`decentral.engine.build`), so the damage a
search reports is the damage a later ``decentral run`` of that manual placement
measures. What a candidate changes is traced data of one and the same
:class:`~decentral.engine.Program`: the node flags, the honest ids, the network's tables
(their weights depend on the set under ``byzantine_weight``), the data laid out over the
nodes (honest node k holds the k-th honest shard), what the attack poisons, f per node
(``f = "true"``) and the attack's initial state. :class:`Scorer` stacks those arrays of a
batch of candidates on a leading axis and ``vmap``s the engine's compiled chunk over it,
so every batch of sets of the same size reuses one compilation (batches are padded to
``batch`` candidates by repeating the last one; padding is never reported; sets of
another size have another number of honest nodes, hence other shapes, and compile once
more).

Damage (:func:`damage_of`), read at the last evaluation (round ``[run] rounds``), over
honest nodes and repeats, and larger is worse for the honest nodes:

- classification: 1 - the mean honest test accuracy;
- other training tasks (regression): the mean honest test loss;
- averaging: the honest nodes' mean squared distance to the average of their initial
  vectors (consensus distance + drift**2, i.e. mean_i ||x_i - c_0||^2).

A run that diverged (some replicate's honest parameters non-finite at some evaluation,
where ``decentral run`` stops) scores the worst damage: 1 for an accuracy, inf otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import engine
from .engine import Inputs, Knobs

#: What the damage of a scenario measures, by the metric it reads.
DAMAGE_METRICS = {
    "test_accuracy": "1 - final mean honest test accuracy",
    "test_loss": "final mean honest test loss",
    "drift": "final mean squared distance of honest nodes to their initial average",
}

#: Inputs fields that differ between placements (stacked); the others are shared.
STACKED_INPUTS = ("byzantine", "tables", "train", "poisoned", "honest", "honest_train", "optimum")
SHARED_INPUTS = ("crashed", "stragglers", "x_test", "y_test")
INPUT_AXES = Inputs(**{name: 0 for name in STACKED_INPUTS}, **{name: None for name in SHARED_INPUTS})
KNOB_AXES = Knobs(rule=None, attack=None, f_nodes=0, message_loss=None, crash_round=None)


def manual_scenario(scenario, ids, max_per_neighborhood: int | None = None):
    """``scenario`` with exactly ``ids`` Byzantine (``strategy = "manual"``), the limit
    kept so that the plan checks it too."""
    params = {"ids": sorted(int(node) for node in ids)}
    if max_per_neighborhood is not None:
        params["max_per_neighborhood"] = int(max_per_neighborhood)
    return scenario.replace(placement={"strategy": "manual", "count": len(params["ids"]), "params": params})


def damage_metric(metrics: dict) -> str:
    """The metric the damage reads (a key of :data:`DAMAGE_METRICS`)."""
    return next(name for name in DAMAGE_METRICS if name in metrics)


def damage_of(final: dict, diverged: bool) -> float:
    """One placement's damage from its final metrics (``name -> [repeats]`` or
    ``[repeats, honest]``) and whether its run diverged (see the module docstring)."""
    metric = damage_metric(final)
    if metric == "test_accuracy":
        return 1.0 if diverged else 1.0 - float(np.mean(np.asarray(final[metric], dtype=np.float64)))
    if diverged:
        return math.inf
    if metric == "test_loss":
        return float(np.mean(np.asarray(final[metric], dtype=np.float64)))
    spread = np.asarray(final["consensus_distance"], dtype=np.float64)
    return float(np.mean(spread + np.asarray(final["drift"], dtype=np.float64) ** 2))


def damage_of_result(result: engine.Result) -> float:
    """The damage of a finished :func:`decentral.engine.simulate` run (the same as the
    :class:`Scorer`'s for its placement)."""
    return damage_of({name: values[-1] for name, values in result.metrics.items()}, result.diverged_round is not None)


@functools.lru_cache(maxsize=8)
def _batched(chunk, optimization: int):
    """The engine's (unjitted) chunk ``vmap``ped over a leading axis of candidates (states, f per
    node and the placement-dependent inputs), jitted: one compilation per batch shape."""
    return jax.jit(
        jax.vmap(chunk, in_axes=(0, KNOB_AXES, INPUT_AXES)),
        compiler_options={"xla_backend_optimization_level": optimization},
    )


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class Scorer:
    """Damage of candidate placements of ``scenario`` (a scenario without a sweep, whose
    ``[run] rounds`` is the short simulation), ``batch`` candidates per compiled call.

    ``plan(ids)`` builds (and so validates) one candidate's plan; ``score(sets)`` returns
    each set's damage, in order; ``compiled`` is the jitted batch function (its
    ``_cache_size()`` counts compilations); ``metric`` the metric the damage read (a key
    of :data:`DAMAGE_METRICS`, once a batch is scored)."""

    def __init__(self, scenario, *, batch: int, max_per_neighborhood: int | None = None, first=None):
        if batch < 1:
            raise ValueError(f"the batch must hold at least one candidate; got {batch}.")
        self.scenario, self.batch, self.limit = scenario, batch, max_per_neighborhood
        reference = self.plan(first if first is not None else [])
        self.program = engine.program_of(reference)
        self.compiled = _batched(engine.chunk_function(reference), scenario.run.optimization)
        self.chunks = scenario.run.rounds // scenario.run.eval_every
        self.metric = None

    def plan(self, ids) -> engine.Plan:
        """The plan of the manual placement ``ids`` (raises ValueError as ``build`` does)."""
        return engine.build(manual_scenario(self.scenario, ids, self.limit))

    def score(self, sets) -> list[float]:
        """The damage of each placement in ``sets`` (sequences of node ids)."""
        return self.score_plans([self.plan(ids) for ids in sets])

    def score_plans(self, plans) -> list[float]:
        """The damage of each candidate plan (made by :meth:`plan`), in order."""
        out = []
        for start in range(0, len(plans), self.batch):
            part = plans[start : start + self.batch]
            out += self._score_batch(part + [part[-1]] * (self.batch - len(part)))[: len(part)]
        return out

    def _score_batch(self, plans) -> list[float]:
        for plan in plans:
            if engine.program_of(plan) != self.program:
                raise ValueError("placements of one scenario gave different programs; cannot score them together.")
        inputs = [engine.inputs_of(plan) for plan in plans]
        for name in SHARED_INPUTS:
            first = jax.tree.leaves(getattr(inputs[0], name))
            if any(not all(np.array_equal(a, b) for a, b in zip(first, jax.tree.leaves(getattr(other, name))))
                   for other in inputs[1:]):
                raise ValueError(f"placements of one scenario gave different {name}; cannot score them together.")
        knobs = [engine.knobs_for(plan) for plan in plans]
        batched_inputs = dataclasses.replace(
            inputs[0], **{name: _stack([getattr(one, name) for one in inputs]) for name in STACKED_INPUTS}
        )
        batched_knobs = dataclasses.replace(knobs[0], f_nodes=_stack([one.f_nodes for one in knobs]))
        states = _stack([engine.initial_states(plan) for plan in plans])
        diverged = np.zeros(len(plans), dtype=bool)
        measured = None
        for _ in range(self.chunks):
            states, measured = self.compiled(states, batched_knobs, batched_inputs)
            measured = jax.device_get(measured)
            diverged |= np.asarray(measured["diverged"]).reshape(len(plans), -1).any(axis=1)
        self.metric = damage_metric(measured)
        return [
            damage_of({name: values[i] for name, values in measured.items() if name != "diverged"}, bool(diverged[i]))
            for i in range(len(plans))
        ]
