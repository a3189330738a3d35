"""The engine: decentralized learning with robust gossip, vectorized over nodes and repeats.

``simulate(scenario)`` builds everything on the host first (graph, placement, per-node f,
data, model, optimizer, attack) and validates it, so bad input fails before anything
compiles. Then one jitted function runs ``eval_every`` rounds in a ``lax.scan`` and
evaluates; it is compiled once and reused for every evaluation chunk, and replicate runs
are ``vmap``ped. Everything that can change without changing shapes is a traced argument
(learning rate, message-loss probability, f, the rule's and the attack's numeric
parameters), so none of it recompiles.

One round (``order="atc"``, adapt then combine): every node takes ``local_steps`` optimizer
steps on minibatches of its own data (Byzantine nodes too, on their possibly poisoned
data); then ``gossip_steps`` times, every honest node gathers its inbox (itself and its
in-neighbours), the attack rewrites the Byzantine rows of each receiver's inbox, lost
messages are masked out, and the node's rule combines the rest. ``order="cta"`` gossips
first. Byzantine nodes run the same protocol on the messages really sent to them (their
own data poisoned under ``label_flip``): the attack rewrites only what honest nodes
receive, so under ``none`` the network is fully honest.

Memory: the inbox of a block of B receivers is B * K * d floats (K the bucket's widest
inbox); ``[run] block`` sets B (default: the whole bucket at once).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import time
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import optax

import attacks
import topologies
from attacks._registry import did_you_mean

from . import aggregators
from .data import make_dataset, sample_batch
from .models import make_model
from .network import from_graph, from_schedule
from .results import honest_summaries
from .scenario import Scenario

SEED_PURPOSES = ("topology", "placement", "data", "init", "attack")


# --------------------------------------------------------------------------- host-side build


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
    network = scenario.network
    builder = topologies.BUILDERS.get(network.topology)
    if builder is None:
        hint = did_you_mean(network.topology, topologies.BUILDERS)
        raise ValueError(f"[network] unknown topology {network.topology!r}.{hint} See `decentral list topologies`.")
    return _call_with_params(f"[network.params] of {network.topology}", builder, network.params, seed=seed)


def smallest_inboxes(network) -> np.ndarray:
    """int32[n]: each node's inbox size (its smallest over rounds for a time-varying graph)."""
    sizes = network.inbox_sizes
    return sizes.min(axis=0) if sizes.ndim == 2 else sizes


def per_node_f(scenario: Scenario, graph, network) -> np.ndarray:
    """int32[n]: the f each node's rule assumes (global, from its degree, or the truth)."""
    defense = scenario.defense
    if defense.f == "degree":
        return np.floor(defense.rho * (smallest_inboxes(network) - 1)).astype(np.int32)
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
    sizes = smallest_inboxes(network)
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
    and the per-round graphs (None for a static graph)."""
    seeds = seeds or derive_seeds(scenario.run)
    graph = build_graph(scenario, seeds["topology"])
    schedule = graph if isinstance(graph, tuple) else None
    if schedule is not None:
        graph = nx.compose_all(schedule)
    placement = scenario.placement
    byzantine = _call_with_params(
        "[placement.params]", topologies.place, placement.params, graph=graph, count=placement.count,
        strategy=placement.strategy, seed=seeds["placement"],
    ) if placement.count else []
    return graph, list(byzantine), schedule


def build(scenario: Scenario) -> Plan:
    """Build and validate every component of ``scenario`` (no compilation)."""
    seeds = derive_seeds(scenario.run)
    graph, byzantine, schedule = graph_and_byzantine(scenario, seeds)
    weights = scenario.network.weights
    weight_option = {} if weights is None else {"weights": weights}
    if schedule is None:
        network = from_graph(graph, byzantine=byzantine, **weight_option)
    else:
        network = from_schedule(schedule, byzantine=byzantine, **weight_option)
    if network.byzantine.all():
        raise ValueError("[placement] every node is Byzantine; lower count.")
    for key in ("crashed", "stragglers"):
        bad = [node for node in getattr(scenario.faults, key) if node >= network.n]
        if bad:
            raise ValueError(f"[faults] {key} holds node ids {bad} but the graph has nodes 0..{network.n - 1}.")
    f_nodes = per_node_f(scenario, graph, network)
    rule = resolve_rule(scenario.defense)
    check_rule_at_nodes(rule, network, f_nodes)
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
        communities = _communities(graph)
        dataset = make_dataset(scenario.data.dataset, **scenario.data.params)
        data = dataset.build(network.n, seed=seeds["data"], partition=scenario.data.partition, communities=communities)
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


def _communities(graph):
    values = [graph.nodes[node].get("community") for node in range(graph.number_of_nodes())]
    return None if any(value is None for value in values) else np.asarray(values)


def poisoned_labels(plan: Plan):
    """The labels Byzantine nodes train on while a ``label_flip`` attack is active, else None."""
    if plan.data is None or not isinstance(plan.attack, attacks.LabelFlip):
        return None
    clean = plan.data.train.y
    flipped = plan.attack.flip_labels(clean, plan.data.num_classes)
    return jnp.where(jnp.asarray(plan.network.byzantine)[:, None], flipped, clean)


def _is_numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


# --------------------------------------------------------------------------- the jitted loop


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
    time_varying: bool
    batch_size: int
    model: Any  # a (hashable) models.Model, or None for the averaging task
    input_shape: tuple
    num_outputs: int
    optimizer: tuple  # (name, ((parameter, value), ...)) with numeric values replaced by 0.0
    optimization: int  # XLA backend optimization level


def program_of(plan: Plan) -> Program:
    """The static part of ``plan`` (see :class:`Program`)."""
    run, data = plan.scenario.run, plan.data
    config = plan.scenario.optimizer
    optimizer = (config.name, tuple(sorted((key, 0.0 if _is_numeric(value) else value) for key, value in config.params.items())))
    return Program(
        task=run.task, order=run.order, gossip=run.gossip, gossip_steps=run.gossip_steps,
        local_steps=run.local_steps, eval_every=run.eval_every, block=run.block, delay=plan.scenario.faults.delay,
        time_varying=not hasattr(plan.network, "buckets"), batch_size=plan.scenario.data.batch_size,
        model=plan.model, input_shape=data.input_shape if data else (), num_outputs=data.num_outputs if data else 0,
        optimizer=optimizer, optimization=run.optimization,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Inputs:
    """The arrays of a plan that the compiled loop reads, passed as arguments (traced).

    Attributes:
        byzantine, crashed, stragglers: bool[n] node flags.
        tables: the inbox tables, one dict (nodes, neighbors, mask, weights) per degree bucket;
            a time-varying graph has one table whose arrays have a leading round axis.
        train: the nodes' training data (:class:`~decentral.data.NodeData`), or None.
        poisoned: int32[n, m], the labels Byzantine nodes train on under ``label_flip``, or None.
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


def _inbox_tables(network) -> list[dict]:
    keys = ("neighbors", "mask", "weights")
    if not hasattr(network, "buckets"):  # time-varying: one table of all nodes, per round
        nodes = jnp.arange(network.n, dtype=jnp.int32)
        return [{"nodes": nodes, **{key: jnp.asarray(getattr(network, key)) for key in keys}}]
    return [{key: jnp.asarray(getattr(bucket, key)) for key in ("nodes", *keys)} for bucket in network.buckets]


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
        tables=_inbox_tables(plan.network),
        train=train,
        poisoned=poisoned_labels(plan),
        x_test=x_test,
        y_test=y_test,
        honest=jnp.asarray(honest, dtype=jnp.int32),
        honest_train=honest_train,
        optimum=optimum,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BoundRule:
    """A receiver's rule with its f bound (traced): the callable attacks see as ``ctx.rule``."""

    rule: Any
    f: Any
    key: Any

    def __call__(self, inbox, mask, weights):
        return self.rule(inbox, f=self.f, mask=mask, weights=weights, key=self.key)


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


def _node_flags(n: int, ids) -> jnp.ndarray:
    flags = np.zeros(n, dtype=bool)
    flags[list(ids)] = True
    return jnp.asarray(flags)


def _tables_at(tables, round_index, time_varying: bool) -> list[dict]:
    """The inbox tables in force at a round (a time-varying graph cycles through its rounds)."""
    if not time_varying:
        return tables
    (table,) = tables
    return [{key: value if key == "nodes" else value[round_index % value.shape[0]] for key, value in table.items()}]


def make_gossip(program: Program):
    """``gossip(own, sent, attack_state, key, round, knobs, inputs) -> (combined, attack_state)``.

    ``own`` are the vectors each node holds, ``sent`` what its neighbours receive from it
    (the same, except stragglers' stale ones). Byzantine nodes follow the protocol on the
    messages really sent to them (the attack rewrites only what honest nodes receive), so
    their own vector, which ``none`` sends and attacks may start from, is what an honest
    node in their place would hold. Crashed nodes keep their own vector; messages from
    crashed nodes stop arriving from ``crash_round`` on. The attack's ``prepare`` gets
    ``network=None``: attacks keep what they need of the graph in the state their
    ``init`` builds.
    """

    def receive(own, sent, extra, round_index, knobs, inputs, node_args):
        node, neighbors, mask, weights, key = node_args
        k_attack, k_loss, k_rule = jax.random.split(key, 3)
        inbox = sent[neighbors].at[0].set(own[node])
        slots = jnp.arange(neighbors.shape[0])
        byz_slot = inputs.byzantine[neighbors] & mask & (slots > 0)
        mask = mask & ~(inputs.crashed[neighbors] & (round_index >= knobs.crash_round) & (slots > 0))
        f = knobs.f_nodes[node]
        rule_key = k_rule if knobs.rule.uses_key else None
        ctx = attacks.Context(round=round_index, node=node, rule=BoundRule(knobs.rule, f, rule_key), extra=extra)
        attacked, attacked_mask = knobs.attack(k_attack, inbox, byz_slot, mask, weights, ctx)
        # the attack targets honest receivers; a Byzantine node combines what was really sent
        colluder = inputs.byzantine[node]
        inbox = jnp.where(colluder, inbox, attacked)
        mask = jnp.where(colluder, mask, attacked_mask)
        delivered = (jax.random.uniform(k_loss, mask.shape) >= knobs.message_loss) | (slots == 0)
        return knobs.rule(inbox, f=f, mask=mask & delivered, weights=weights, key=rule_key)

    def gossip(own, sent, attack_state, key, round_index, knobs, inputs):
        k_prepare, key = jax.random.split(key)
        extra, attack_state = knobs.attack.prepare(k_prepare, own, None, attack_state)
        updated = own
        keep = inputs.crashed & (round_index >= knobs.crash_round)
        for index, table in enumerate(_tables_at(inputs.tables, round_index, program.time_varying)):
            nodes = table["nodes"]
            keys = jax.random.split(jax.random.fold_in(key, index), nodes.shape[0])
            args = (nodes, table["neighbors"], table["mask"], table["weights"], keys)
            combined = jax.lax.map(
                lambda node_args: receive(own, sent, extra, round_index, knobs, inputs, node_args),
                args,
                batch_size=program.block or nodes.shape[0],
            )
            updated = updated.at[nodes].set(jnp.where(keep[nodes][:, None], own[nodes], combined))
        return updated, attack_state

    return gossip


def _model_parts(program: Program):
    """(model, flattener, optimizer) rebuilt from the program (numeric optimizer
    hyperparameters come from the optimizer state, so the 0.0 placeholders never act)."""
    flattener = program.model.flattener(program.input_shape, program.num_outputs)
    name, params = program.optimizer
    return program.model, flattener, optimizer_from(name, 0.0, dict(params))


def make_local_steps(program: Program):
    """``local(params, opt_state, key, round, attack, inputs) -> (params, opt_state)``: local
    optimizer steps per node; under ``label_flip``, Byzantine nodes train on flipped labels
    in the attack's rounds ``[start_round, stop_round)``."""
    model, flattener, optimizer = _model_parts(program)

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
            active = (round_index >= attack.start_round) & (round_index < attack.stop_round)
            train = dataclasses.replace(train, y=jnp.where(active, inputs.poisoned, train.y))
        for step in range(program.local_steps):
            keys = jax.random.split(jax.random.fold_in(key, step), params.shape[0])
            params, opt_state = jax.vmap(node_step)(params, opt_state, train, keys)
        return params, opt_state

    return local


def _consensus(params, honest):
    mine = params[honest]
    center = mine.mean(axis=0)
    return mine, center, jnp.mean(jnp.sum((mine - center[None, :]) ** 2, axis=1))


def make_metrics(program: Program):
    """``metrics(params, start_center, inputs) -> dict``: per honest node and over honest nodes."""
    if program.task == "averaging":

        def averaging_metrics(params, start_center, inputs):
            _, center, spread = _consensus(params, inputs.honest)
            return {"consensus_distance": spread, "drift": jnp.linalg.norm(center - start_center)}

        return averaging_metrics

    model, flattener, _ = _model_parts(program)

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


def make_chunk(plan: Plan):
    """The jitted ``chunk(states, knobs, inputs) -> (states, metrics)`` (eval_every rounds,
    then metrics) and ``evaluate(states, inputs) -> metrics`` of ``plan``'s program, shared
    with every plan of the same program (see :class:`Program`); pass ``inputs_of(plan)``."""
    return _compile(program_of(plan))


@functools.lru_cache(maxsize=32)
def _compile(program: Program):
    gossip = make_gossip(program)
    local = make_local_steps(program) if program.task == "train" else None
    metrics = make_metrics(program)
    slots = program.delay + 1

    def exchange(messages, history, round_index, inputs):
        """What neighbours receive: stragglers' messages are ``delay`` rounds old."""
        if history is None:
            return messages, None
        stale = history[(round_index - program.delay) % slots]
        return jnp.where(inputs.stragglers[:, None], stale, messages), history.at[round_index % slots].set(messages)

    def one_round(state: State, knobs: Knobs, inputs: Inputs):
        key, k_local, k_gossip = jax.random.split(state.key, 3)
        params, opt_state, attack_state = state.params, state.opt_state, state.attack_state
        frozen = (inputs.crashed & (state.round >= knobs.crash_round))[:, None]
        before = params
        if local is not None and program.order == "atc":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack, inputs)
        messages = params - before if program.gossip == "updates" else params
        history = state.history
        for step in range(program.gossip_steps):
            sent, recorded = exchange(messages, history, state.round, inputs)
            history = recorded if step == 0 else history
            messages, attack_state = gossip(
                messages, sent, attack_state, jax.random.fold_in(k_gossip, step), state.round, knobs, inputs
            )
        params = before + messages if program.gossip == "updates" else messages
        if local is not None and program.order == "cta":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack, inputs)
        params = jnp.where(frozen, before, params)
        return dataclasses.replace(
            state, params=params, opt_state=opt_state, attack_state=attack_state, key=key, round=state.round + 1,
            history=history,
        )

    def chunk_one(state: State, knobs: Knobs, inputs: Inputs):
        state, _ = jax.lax.scan(lambda s, _: (one_round(s, knobs, inputs), None), state, None, length=program.eval_every)
        return state, metrics(state.params, state.start_center, inputs)

    options = {"xla_backend_optimization_level": program.optimization}
    chunk = jax.jit(jax.vmap(chunk_one, in_axes=(0, None, None)), compiler_options=options)
    evaluate = jax.jit(
        jax.vmap(lambda state, inputs: metrics(state.params, state.start_center, inputs), in_axes=(0, None)),
        compiler_options=options,
    )
    return chunk, evaluate


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Result:
    """Metrics of one run.

    Attributes:
        scenario: the scenario that ran.
        rounds: int[E], the round of each evaluation (0 first).
        metrics: name -> array [E, repeats] (over honest nodes) or [E, repeats, honest].
        honest: int[H], the honest node ids (the last axis of per-node metrics).
        byzantine: int[b], the Byzantine node ids.
        final_params: f32[repeats, n, d].
        seconds: wall time of the whole run (build, compilation and rounds).
    """

    scenario: Scenario
    rounds: np.ndarray
    metrics: dict
    honest: np.ndarray
    byzantine: np.ndarray
    final_params: np.ndarray
    seconds: float

    def over_honest(self, name: str, quantiles=(0.1, 0.5, 0.9)) -> dict:
        """A per-node metric summarised over honest nodes at every evaluation, per repeat:
        ``{"mean", "min", "max", "q10", "q50", "q90"}`` each of shape [E, repeats]."""
        values = self.metrics[name]
        if values.ndim != 3:
            raise ValueError(f"{name} is not a per-node metric (shape {values.shape}).")
        return honest_summaries(values, quantiles)

    def final(self, name: str) -> np.ndarray:
        """The metric at the last evaluation: [repeats] or [repeats, honest]."""
        return self.metrics[name][-1]

    def summary(self) -> dict:
        """Final-evaluation figures over honest nodes and repeats (the CLI's table row)."""
        out = {}
        if "test_accuracy" in self.metrics:
            accuracy = self.final("test_accuracy")
            out.update(accuracy_mean=float(accuracy.mean()), accuracy_min=float(accuracy.min()),
                       accuracy_max=float(accuracy.max()), averaged_accuracy=float(self.final("averaged_accuracy").mean()))
        if "drift" in self.metrics:
            out["drift"] = float(self.final("drift").mean())
        out["consensus_distance"] = float(self.final("consensus_distance").mean())
        out["seconds"] = self.seconds
        return out


def initial_states(plan: Plan) -> State:
    """Every replicate's state at round 0, stacked on a leading repeats axis."""
    states = [initial_state(plan, r) for r in range(plan.scenario.run.repeats)]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def evaluations(plan: Plan, *, start: tuple[int, State] | None = None, progress: bool = False):
    """Run ``plan``, yielding ``(round, states, metrics)`` at every evaluation.

    The first is round 0 (before any training), then every ``eval_every`` rounds up to
    ``rounds``. ``start=(round, states)`` resumes from a checkpoint taken at an evaluation
    (that evaluation is not yielded again); the continuation is bit for bit the
    uninterrupted run. ``metrics`` are host numpy arrays ([repeats] or [repeats, honest]).
    """
    run = plan.scenario.run
    chunk, evaluate = make_chunk(plan)
    inputs = inputs_of(plan)
    knobs = knobs_for(plan)
    if start is None:
        states = initial_states(plan)
        first = 0
        yield 0, states, jax.device_get(evaluate(states, inputs))
    else:
        first, states = start
        if first % run.eval_every or not 0 <= first <= run.rounds:
            raise ValueError(f"cannot resume at round {first}: not an evaluation round of this run.")
    rounds = range(first + run.eval_every, run.rounds + 1, run.eval_every)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc="rounds", unit=f"x{run.eval_every}", leave=False)
    for round_index in rounds:
        states, measured = chunk(states, knobs, inputs)
        yield round_index, states, jax.device_get(measured)


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


def result_of(plan: Plan, rounds, measured: list[dict], final_states: State, seconds: float) -> Result:
    """Assemble a :class:`Result` from the evaluations' metrics."""
    return Result(
        scenario=plan.scenario,
        rounds=np.asarray(rounds),
        metrics={name: np.stack([m[name] for m in measured]) for name in measured[0]},
        honest=np.flatnonzero(~plan.network.byzantine),
        byzantine=np.flatnonzero(plan.network.byzantine),
        final_params=np.asarray(final_states.params),
        seconds=seconds,
    )


def simulate(scenario: Scenario, *, progress: bool = False) -> Result:
    """Run ``scenario`` (which must not hold a sweep: see :meth:`Scenario.points`)."""
    if scenario.sweep:
        raise ValueError("simulate runs one point; iterate over scenario.points() for a sweep (or use `decentral run`).")
    began = time.perf_counter()
    plan = build(scenario)
    rounds, measured, states = [], [], None
    for round_index, states, metrics in evaluations(plan, progress=progress):
        rounds.append(round_index)
        measured.append(metrics)
    return result_of(plan, rounds, measured, states, time.perf_counter() - began)
