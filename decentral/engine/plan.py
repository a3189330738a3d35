"""Building a plan: every component of a scenario made and checked on the host.

:func:`build` turns a :class:`~decentral.scenario.Scenario` into a :class:`Plan`: the seeds
of each purpose, the graph and its Byzantine nodes, the engine's network tables, the f
each node's rule assumes, the rule, the attack, the data (split over the honest nodes),
the model and the optimizer. Everything is validated here, so a bad scenario fails with
a message naming the table and key before anything compiles.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import optax

import attacks
import topologies
from attacks._registry import load_plugin

from .. import aggregators
from .._hints import did_you_mean
from ..data import Community, make_dataset, make_partition, over_nodes
from ..models import make_model
from ..network import from_graph, from_schedule
from ..scenario import Scenario

#: The purposes that get a seed each, derived from the master seed unless overridden.
SEED_PURPOSES = ("topology", "placement", "data", "init", "attack")


def derive_seeds(run) -> dict[str, int]:
    """One seed per purpose, derived from the master seed unless overridden in [run]."""
    derived = np.random.SeedSequence(run.seed).generate_state(len(SEED_PURPOSES))
    seeds = {purpose: int(value) for purpose, value in zip(SEED_PURPOSES, derived)}
    for purpose in SEED_PURPOSES:
        override = getattr(run, f"{purpose}_seed")
        if override is not None:
            seeds[purpose] = int(override)
    return seeds


def _call_with_params(what: str, function, params: dict, **fixed):
    """Call a builder with the user's params, naming the table on a bad key."""
    accepted = inspect.signature(function).parameters
    for key in params:
        if key not in accepted or key in fixed:
            valid = [name for name in accepted if name not in fixed]
            raise ValueError(f"{what}: unknown parameter {key!r}. Valid: {', '.join(valid)}.")
    fixed = {key: value for key, value in fixed.items() if key in accepted}
    return function(**params, **fixed)


def build_graph(scenario: Scenario, seed: int):
    """The scenario's graph: a builder of ``topologies`` by name, or a plug-in builder given
    as ``"package.module:function"`` (called with the ``[network.params]`` and, if it takes
    one, the topology seed)."""
    network = scenario.network
    if ":" in network.topology:
        builder = load_plugin(network.topology, "topology")
        if not callable(builder):
            raise ValueError(f"[network] topology {network.topology!r} is not a function returning a graph.")
    else:
        builder = topologies.BUILDERS.get(network.topology)
    if builder is None:
        hint = did_you_mean(network.topology, topologies.BUILDERS)
        raise ValueError(f"[network] unknown topology {network.topology!r}.{hint} See `decentral list topologies`.")
    return _call_with_params(f"[network.params] of {network.topology}", builder, network.params, seed=seed)


def network_weights(network) -> dict:
    """The ``[network]`` weight keys as the keyword arguments of ``from_graph``/``from_schedule``
    (``weights``, ``byzantine_weight``; a ``{matrix = PATH}`` table becomes a ``Path``). Pass
    ``weights`` as ``kind`` to ``topologies.analyze`` to report the scenario's realised weights."""
    weights = network.weights
    if isinstance(weights, dict):
        weights = Path(weights["matrix"])
    elif weights is not None and weights not in topologies.WEIGHTS:
        raise ValueError(
            f"[network] unknown weights {weights!r}.{did_you_mean(weights, topologies.WEIGHTS)} "
            f"Valid: {', '.join(topologies.WEIGHTS)}, or a table {{ matrix = \"W.npy\" }}."
        )
    return {"weights": weights, "byzantine_weight": network.byzantine_weight}


def per_node_f(scenario: Scenario, graph, network) -> np.ndarray:
    """int32[n]: the f each node's rule assumes (global, from its degree, or the truth)."""
    defense = scenario.defense
    if defense.f == "degree":
        return np.floor(defense.rho * (network.smallest_inbox_sizes - 1)).astype(np.int32)
    if defense.f == "true":
        counts = topologies.byzantine_counts(graph, np.flatnonzero(network.byzantine))
        return np.asarray(counts, dtype=np.int32)
    return np.full(network.n, defense.f, dtype=np.int32)


def resolve_rule(defense) -> aggregators.Rule:
    """The defense's rule; ``params`` configure the last step of a chain."""
    config = defense.aggregator
    if isinstance(config, list):
        if not config:
            raise ValueError("[defense] aggregator is an empty list; give a rule name or a chain.")
        *pre, last = config
        last = {"name": last, **defense.params} if isinstance(last, str) else {**last, **defense.params}
        return aggregators.resolve([*pre, last])
    return aggregators.resolve(config, **defense.params)


def check_rule_at_nodes(rule, network, f_nodes) -> None:
    """The rule's requirement at every honest node, before compilation."""
    honest = np.flatnonzero(~network.byzantine)
    sizes = network.smallest_inbox_sizes
    for node in honest:
        try:
            rule.check(int(sizes[node]), int(f_nodes[node]), node=int(node))
        except ValueError as error:
            raise ValueError(f"[defense] {error}") from None


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything the jitted loop needs, built and validated on the host."""

    scenario: Scenario
    seeds: dict
    graph: Any
    network: Any
    f_nodes: np.ndarray
    rule: aggregators.Rule
    attack: attacks.Attack
    attack_graph: Any
    data: Any
    model: Any
    flattener: Any
    optimizer: Any
    dim: int


def graph_and_byzantine(scenario: Scenario, seeds: dict | None = None):
    """``(graph, byzantine ids, schedule)``: the scenario's graph (for a time-varying one,
    the union of its rounds' edges, placement and analysis run on it), its Byzantine nodes,
    and the per-round graphs (None for a static graph).

    The graph is the one the run uses: for a strategy that adds nodes (``attach``,
    ``topologies.ADDING``) the built graph with the new Byzantine nodes; time-varying
    graphs refuse such a strategy (their rounds would need the added links too)."""
    seeds = seeds or derive_seeds(scenario.run)
    graph = build_graph(scenario, seeds["topology"])
    schedule = graph if isinstance(graph, tuple) else None
    placement = scenario.placement
    if schedule is not None:
        if placement.strategy in topologies.ADDING:
            raise ValueError(
                f"[placement] strategy {placement.strategy!r} adds nodes to a static graph, and topology "
                f"{scenario.network.topology!r} is time-varying (one graph per round). Use a static topology, "
                "or a strategy that chooses existing nodes (decentral list placements)."
            )
        graph = nx.compose_all(schedule)
    byzantine = []
    if placement.count or placement.strategy == "marked":  # marked checks count against the marks, 0 too
        graph, byzantine = _call_with_params(
            "[placement.params]", topologies.placed, placement.params, graph=graph, count=placement.count,
            strategy=placement.strategy, seed=seeds["placement"],
        )
    return graph, list(byzantine), schedule


def build(scenario: Scenario) -> Plan:
    """Build and validate every component of ``scenario`` (no compilation)."""
    seeds = derive_seeds(scenario.run)
    graph, byzantine, schedule = graph_and_byzantine(scenario, seeds)
    weights = network_weights(scenario.network)
    try:
        if schedule is None:
            network = from_graph(graph, byzantine=byzantine, **weights)
        else:
            network = from_schedule(schedule, byzantine=byzantine, **weights)
    except ValueError as error:
        raise ValueError(f"[network] {error}") from None
    if network.byzantine.all():
        raise ValueError("[placement] every node is Byzantine; lower count.")
    for key in ("crashed", "stragglers"):
        bad = [node for node in getattr(scenario.faults, key) if node >= network.n]
        if bad:
            raise ValueError(f"[faults] {key} holds node ids {bad} but the graph has nodes 0..{network.n - 1}.")
    f_nodes = per_node_f(scenario, graph, network)
    rule = resolve_rule(scenario.defense)
    check_rule_at_nodes(rule, network, f_nodes)
    rule = rule.with_largest_f(int(f_nodes[~network.byzantine].max()))
    attack = attacks.resolve(scenario.attack.name, **scenario.attack.params)
    train = scenario.run.task == "train"
    attack.check_scenario(graph=True, labels=train, rule=True)
    if scenario.run.rounds % scenario.run.eval_every:
        raise ValueError(
            f"[run] rounds={scenario.run.rounds} must be a multiple of eval_every={scenario.run.eval_every} "
            "(every evaluation chunk has the same length, so it compiles once)."
        )
    data = model = flattener = None
    if train:
        data = build_data(scenario, graph, network.byzantine, seeds["data"])
        model = make_model(scenario.model.name, **scenario.model.params)
        if model.task != data.task:
            raise ValueError(f"[model] {model.name} is for {model.task}; dataset {data.name} is {data.task}.")
        flattener = model.flattener(data.input_shape, data.num_outputs)
        dim = flattener.size
    else:
        dim = scenario.run.dim
    optimizer = make_optimizer(scenario.optimizer)
    attack_graph = attacks.Graph.from_networkx(graph, np.flatnonzero(network.byzantine))
    return Plan(scenario, seeds, graph, network, f_nodes, rule, attack, attack_graph, data, model, flattener, optimizer, dim)


def build_data(scenario: Scenario, graph, byzantine, seed: int):
    """The run's training data: the dataset built (partitioned, or generated) over the
    honest nodes only, in id order, then laid out over every node with each Byzantine
    node holding a copy of an honest node's data (:mod:`decentral.data.layout` explains
    why a copy). The honest nodes' data thus depends on the data seed and their
    number, never on where the Byzantine nodes are nor on the attack."""
    honest = np.flatnonzero(~np.asarray(byzantine))
    dataset = make_dataset(scenario.data.dataset, **scenario.data.params)
    needed = isinstance(make_partition(scenario.data.partition), Community)
    honest_data = dataset.build(
        honest.size, seed=seed, partition=scenario.data.partition, communities=_communities(graph, honest, needed)
    )
    return over_nodes(honest_data, byzantine)


def _communities(graph, nodes, needed: bool = False):
    """int[len(nodes)]: the ``community`` of each of ``nodes``, or None if one has none.

    When the partition ``needed`` them and only some nodes have one, raise naming a node
    without (a node file that leaves nodes out); with none at all, the partition says so."""
    values = [graph.nodes[int(node)].get("community") for node in nodes]
    missing = [int(node) for node, value in zip(nodes, values) if value is None]
    if needed and 0 < len(missing) < len(values):
        raise ValueError(
            f"[data] partition 'community': node {missing[0]} has no 'community' attribute ({len(missing)} "
            "honest nodes lack one), and every honest node needs one. If the graph comes from a from_edgelist "
            "node file, give its community column a row for every node."
        )
    return None if missing else np.asarray(values)


def optimizer_from(name: str, learning_rate, params: dict):
    """An optax optimizer by name, its learning rate traced (``inject_hyperparams``).

    Every numeric hyperparameter (learning rate, momentum, ...) lives in the optimizer
    state, so changing one never recompiles."""
    factory = getattr(optax, name, None)
    if factory is None or not callable(factory) or "learning_rate" not in inspect.signature(factory).parameters:
        raise ValueError(f"[optimizer] {name!r} is not an optax optimizer taking a learning_rate (e.g. sgd, adam).")
    accepted = inspect.signature(factory).parameters
    for key in params:
        if key not in accepted or key == "learning_rate":
            raise ValueError(f"[optimizer.params] {name} has no parameter {key!r}. Valid: {', '.join(accepted)}.")
    return optax.inject_hyperparams(factory)(learning_rate=learning_rate, **params)


def make_optimizer(config):
    """The scenario's ``[optimizer]`` as an optax optimizer (see :func:`optimizer_from`)."""
    return optimizer_from(config.name, config.learning_rate, config.params)
