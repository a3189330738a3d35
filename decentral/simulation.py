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
first. Byzantine nodes never aggregate: they keep their own parameters.

Memory: the inbox of a block of B receivers is B * K * d floats (K the bucket's widest
inbox); ``[run] block`` sets B (default: the whole bucket at once).
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import optax

import attacks
import topologies

from . import aggregators
from .data import make_dataset, sample_batch
from .models import make_model
from .network import from_graph, from_schedule
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
        import difflib

        close = difflib.get_close_matches(network.topology, list(topologies.BUILDERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
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


def build(scenario: Scenario) -> Plan:
    """Build and validate every component of ``scenario`` (no compilation)."""
    seeds = derive_seeds(scenario.run)
    graph = build_graph(scenario, seeds["topology"])
    schedule = graph if isinstance(graph, tuple) else None
    if schedule is not None:  # time-varying: placement and analysis on the union of the rounds' edges
        graph = nx.compose_all(schedule)
    placement = scenario.placement
    byzantine = _call_with_params(
        "[placement.params]", topologies.place, placement.params, graph=graph, count=placement.count,
        strategy=placement.strategy, seed=seeds["placement"],
    ) if placement.count else []
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


def make_optimizer(config):
    """An optax optimizer by name, its learning rate traced (``inject_hyperparams``)."""
    factory = getattr(optax, config.name, None)
    if factory is None or not callable(factory) or "learning_rate" not in inspect.signature(factory).parameters:
        raise ValueError(f"[optimizer] {config.name!r} is not an optax optimizer taking a learning_rate (e.g. sgd, adam).")
    accepted = inspect.signature(factory).parameters
    for key in config.params:
        if key not in accepted or key == "learning_rate":
            raise ValueError(f"[optimizer.params] {config.name} has no parameter {key!r}. Valid: {', '.join(accepted)}.")
    return optax.inject_hyperparams(factory)(learning_rate=config.learning_rate, **config.params)


# --------------------------------------------------------------------------- the jitted loop


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


def _round_tables(network):
    """``tables(round) -> [table, ...]``: the inbox tables in force at a round (one per degree
    bucket; a time-varying graph has one table of all nodes, indexed by round mod R)."""
    if not hasattr(network, "buckets"):
        per_round = {key: jnp.asarray(getattr(network, key)) for key in ("neighbors", "mask", "weights")}
        nodes = jnp.arange(network.n, dtype=jnp.int32)
        return lambda r: [{"nodes": nodes, **{key: value[r % network.rounds] for key, value in per_round.items()}}]
    buckets = [
        {key: jnp.asarray(getattr(bucket, key)) for key in ("nodes", "neighbors", "mask", "weights")}
        for bucket in network.buckets
    ]
    return lambda r: buckets


def make_gossip(plan: Plan):
    """``gossip(own, sent, attack_state, key, round, knobs) -> (combined, attack_state)``.

    ``own`` are the vectors each node holds, ``sent`` what its neighbours receive from it
    (the same, except stragglers' stale ones). Byzantine nodes and crashed ones keep their
    own vector; messages from crashed nodes stop arriving from ``crash_round`` on.
    """
    byzantine = jnp.asarray(plan.network.byzantine)
    crashed = _node_flags(plan.network.n, plan.scenario.faults.crashed)
    tables_at = _round_tables(plan.network)
    block = plan.scenario.run.block
    attack_graph = plan.attack_graph
    uses_key = plan.rule.uses_key

    def receive(own, sent, extra, round_index, knobs, node_args):
        node, neighbors, mask, weights, key = node_args
        k_attack, k_loss, k_rule = jax.random.split(key, 3)
        inbox = sent[neighbors].at[0].set(own[node])
        slots = jnp.arange(neighbors.shape[0])
        byz_slot = byzantine[neighbors] & mask & (slots > 0)
        mask = mask & ~(crashed[neighbors] & (round_index >= knobs.crash_round) & (slots > 0))
        f = knobs.f_nodes[node]
        rule_key = k_rule if uses_key else None
        ctx = attacks.Context(round=round_index, node=node, rule=BoundRule(knobs.rule, f, rule_key), extra=extra)
        inbox, mask = knobs.attack(k_attack, inbox, byz_slot, mask, weights, ctx)
        delivered = (jax.random.uniform(k_loss, mask.shape) >= knobs.message_loss) | (slots == 0)
        return knobs.rule(inbox, f=f, mask=mask & delivered, weights=weights, key=rule_key)

    def gossip(own, sent, attack_state, key, round_index, knobs):
        k_prepare, key = jax.random.split(key)
        extra, attack_state = knobs.attack.prepare(k_prepare, own, attack_graph, attack_state)
        updated = own
        keep = byzantine | (crashed & (round_index >= knobs.crash_round))
        for index, table in enumerate(tables_at(round_index)):
            nodes = table["nodes"]
            keys = jax.random.split(jax.random.fold_in(key, index), nodes.shape[0])
            args = (nodes, table["neighbors"], table["mask"], table["weights"], keys)
            combined = jax.lax.map(
                lambda node_args: receive(own, sent, extra, round_index, knobs, node_args),
                args,
                batch_size=block or nodes.shape[0],
            )
            updated = updated.at[nodes].set(jnp.where(keep[nodes][:, None], own[nodes], combined))
        return updated, attack_state

    return gossip


def make_local_steps(plan: Plan):
    """``local(params, opt_state, key, round, attack) -> (params, opt_state)``: local
    optimizer steps per node; under ``label_flip``, Byzantine nodes train on flipped labels
    in the attack's rounds ``[start_round, stop_round)``."""
    model, flattener, optimizer = plan.model, plan.flattener, plan.optimizer
    batch_size = plan.scenario.data.batch_size
    steps = plan.scenario.run.local_steps
    poisoned = poisoned_labels(plan)

    def node_loss(flat, batch):
        x, y = batch
        return model.loss(flattener.unflatten(flat), x, y)

    def node_step(flat, opt_state, node_data, key):
        batch = sample_batch(key, node_data, batch_size)
        grads = jax.grad(node_loss)(flat, batch)
        updates, opt_state = optimizer.update(grads, opt_state, flat)
        return optax.apply_updates(flat, updates), opt_state

    def local(params, opt_state, key, round_index, attack):
        train = plan.data.train
        if poisoned is not None:
            active = (round_index >= attack.start_round) & (round_index < attack.stop_round)
            train = dataclasses.replace(train, y=jnp.where(active, poisoned, train.y))
        for step in range(steps):
            keys = jax.random.split(jax.random.fold_in(key, step), params.shape[0])
            params, opt_state = jax.vmap(node_step)(params, opt_state, train, keys)
        return params, opt_state

    return local


def make_metrics(plan: Plan):
    """``metrics(params) -> dict``: per honest node and over honest nodes."""
    honest = jnp.asarray(np.flatnonzero(~plan.network.byzantine))

    def consensus(params):
        mine = params[honest]
        center = mine.mean(axis=0)
        return mine, center, jnp.mean(jnp.sum((mine - center[None, :]) ** 2, axis=1))

    if plan.scenario.run.task == "averaging":

        def averaging_metrics(params, start_center):
            _, center, spread = consensus(params)
            return {"consensus_distance": spread, "drift": jnp.linalg.norm(center - start_center)}

        return averaging_metrics

    model, flattener, data = plan.model, plan.flattener, plan.data

    def node_metrics(flat, node_data):
        params = flattener.unflatten(flat)
        test = model.metrics(params, data.x_test, data.y_test)
        train_loss = model.loss(params, node_data.x, node_data.y, node_data.mask)
        return {**{f"test_{name}": value for name, value in test.items()}, "train_loss": train_loss}

    honest_data = jax.tree.map(lambda leaf: leaf[honest], data.train)
    optimum = None
    if data.optimum is not None:
        optimum = flattener.flatten(data.optimum)[honest].mean(axis=0)

    def training_metrics(params, start_center):
        del start_center
        mine, center, spread = consensus(params)
        out = jax.vmap(node_metrics)(mine, honest_data)
        averaged = model.metrics(flattener.unflatten(center), data.x_test, data.y_test)
        out.update({f"averaged_{name}": value for name, value in averaged.items()})
        out["consensus_distance"] = spread
        if optimum is not None:
            out["distance_to_optimum"] = jnp.linalg.norm(mine - optimum[None, :], axis=1)
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
    """The jitted ``chunk(states, knobs) -> (states, metrics)``: eval_every rounds, then metrics."""
    run = plan.scenario.run
    gossip = make_gossip(plan)
    local = make_local_steps(plan) if run.task == "train" else None
    metrics = make_metrics(plan)

    faults = plan.scenario.faults
    crashed = _node_flags(plan.network.n, faults.crashed)
    stragglers = _node_flags(plan.network.n, faults.stragglers)

    def exchange(messages, history, round_index):
        """What neighbours receive: stragglers' messages are ``delay`` rounds old."""
        if history is None:
            return messages, None
        slots = faults.delay + 1
        stale = history[(round_index - faults.delay) % slots]
        return jnp.where(stragglers[:, None], stale, messages), history.at[round_index % slots].set(messages)

    def one_round(state: State, knobs: Knobs):
        key, k_local, k_gossip = jax.random.split(state.key, 3)
        params, opt_state, attack_state = state.params, state.opt_state, state.attack_state
        frozen = (crashed & (state.round >= knobs.crash_round))[:, None]
        before = params
        if local is not None and run.order == "atc":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack)
        messages = params - before if run.gossip == "updates" else params
        history = state.history
        for step in range(run.gossip_steps):
            sent, recorded = exchange(messages, history, state.round)
            history = recorded if step == 0 else history
            messages, attack_state = gossip(messages, sent, attack_state, jax.random.fold_in(k_gossip, step), state.round, knobs)
        params = before + messages if run.gossip == "updates" else messages
        if local is not None and run.order == "cta":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack)
        params = jnp.where(frozen, before, params)
        return dataclasses.replace(
            state, params=params, opt_state=opt_state, attack_state=attack_state, key=key, round=state.round + 1,
            history=history,
        )

    def chunk_one(state: State, knobs: Knobs):
        state, _ = jax.lax.scan(lambda s, _: (one_round(s, knobs), None), state, None, length=run.eval_every)
        return state, metrics(state.params, state.start_center)

    chunk = jax.jit(jax.vmap(chunk_one, in_axes=(0, None)))
    evaluate = jax.jit(jax.vmap(lambda state: metrics(state.params, state.start_center)))
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
        out = {"mean": values.mean(axis=2), "min": values.min(axis=2), "max": values.max(axis=2)}
        for q in quantiles:
            out[f"q{round(q * 100)}"] = np.quantile(values, q, axis=2)
        return out

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


def simulate(scenario: Scenario, *, progress: bool = False) -> Result:
    """Run ``scenario`` (which must not hold a sweep: see :meth:`Scenario.points`)."""
    if scenario.sweep:
        raise ValueError("simulate runs one point; iterate over scenario.points() for a sweep (or use `decentral run`).")
    began = time.perf_counter()
    plan = build(scenario)
    run = scenario.run
    chunk, evaluate = make_chunk(plan)
    states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[initial_state(plan, r) for r in range(run.repeats)])
    knobs = knobs_for(plan)
    history = [jax.device_get(evaluate(states))]
    chunks = range(run.rounds // run.eval_every)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="rounds", unit=f"x{run.eval_every}", leave=False)
    for _ in chunks:
        states, measured = chunk(states, knobs)
        history.append(jax.device_get(measured))
    metrics = {name: np.stack([h[name] for h in history]) for name in history[0]}
    return Result(
        scenario=scenario,
        rounds=np.arange(0, run.rounds + 1, run.eval_every),
        metrics=metrics,
        honest=np.flatnonzero(~plan.network.byzantine),
        byzantine=np.flatnonzero(plan.network.byzantine),
        final_params=np.asarray(states.params),
        seconds=time.perf_counter() - began,
    )
