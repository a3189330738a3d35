"""The engine end to end, at tiny sizes (each simulate() compiles once: keep them few)."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attacks
from decentral import aggregators, engine
from decentral.cli import main
from decentral.data import sample_batch
from decentral.scenario import load_scenario, scenario_from_dict


def tiny(**tables):
    """A small training scenario: 12 nodes on a 6-regular graph, digits, logistic."""
    config = {
        "network": {"topology": "random_regular", "params": {"n": 12, "degree": 6}},
        "data": {"dataset": "digits", "batch_size": 16},
        "run": {"rounds": 20, "eval_every": 10},
    }
    for table, values in tables.items():
        config[table] = {**config.get(table, {}), **values}
    return scenario_from_dict(config)


def test_mean_gossip_converges_to_the_least_squares_optimum():
    scenario = tiny(
        network={"topology": "complete", "params": {"n": 8}},
        data={"dataset": "synthetic_regression", "params": {"dim": 5, "samples_per_node": 40}, "batch_size": 40},
        model={"name": "linear"},
        optimizer={"learning_rate": 0.05},
        run={"rounds": 300, "eval_every": 100},
    )
    result = engine.simulate(scenario)
    distance = result.metrics["distance_to_optimum"].mean(axis=(1, 2))
    assert distance[-1] < 0.1 * distance[0], distance
    assert result.metrics["consensus_distance"][-1].max() < 1e-6


def test_complete_graph_mean_gossip_is_centralized_minibatch_sgd_on_the_average():
    """On a complete graph, mean gossip after each local step makes every node hold
    x_{t+1} = x_t - lr * mean_i grad_i(x_t; B_i): centralized SGD with the union of the
    nodes' minibatches. Replayed here in float64 numpy on the same minibatches."""
    scenario = tiny(
        network={"topology": "complete", "params": {"n": 6}},
        data={"dataset": "synthetic_regression", "params": {"dim": 4, "samples_per_node": 30}, "batch_size": 5},
        model={"name": "linear"},
        optimizer={"learning_rate": 0.05},
        run={"rounds": 15, "eval_every": 15},
    )
    result = engine.simulate(scenario)
    plan = engine.build(scenario)
    state = engine.initial_state(plan, 0)
    flat = np.asarray(state.params[0], dtype=np.float64)
    key = state.key
    layout = {name: np.asarray(index, dtype=int) for name, index in plan.flattener.unflatten(np.arange(plan.dim)).items()}
    node_data = [jax.tree.map(lambda leaf, i=i: leaf[i], plan.data.train) for i in range(6)]
    for _ in range(15):
        key, k_local, _ = jax.random.split(key, 3)
        keys = jax.random.split(jax.random.fold_in(k_local, 0), 6)
        grads = []
        for i in range(6):
            x, y = (np.asarray(a, dtype=np.float64) for a in sample_batch(keys[i], node_data[i], 5))
            w, b = flat[layout["w"]], flat[layout["b"]]
            residual = x @ w + b - y[:, None]
            grads.append({"w": 2 * x.T @ residual / 5, "b": 2 * residual.sum(axis=0) / 5})
        mean_grad = {name: np.mean([g[name] for g in grads], axis=0) for name in ("w", "b")}
        flat = flat - 0.05 * np.asarray(plan.flattener.flatten(mean_grad), dtype=np.float64)
    final = result.final_params[0]
    np.testing.assert_allclose(final, np.broadcast_to(flat, final.shape), rtol=1e-4, atol=1e-5)


def test_same_seed_same_metrics_and_repeats_differ():
    scenario = tiny(run={"rounds": 10, "eval_every": 10, "repeats": 2})
    first, second = engine.simulate(scenario), engine.simulate(scenario)
    for name in first.metrics:
        np.testing.assert_array_equal(first.metrics[name], second.metrics[name])
    accuracy = first.metrics["test_accuracy"][-1]
    assert not np.array_equal(accuracy[0], accuracy[1]), "replicates must use different batches"
    spread = first.over_honest("test_accuracy")
    assert spread["mean"].shape == (2, 2)
    assert np.all(spread["min"] <= spread["q10"]) and np.all(spread["q10"] <= spread["q50"])
    assert np.all(spread["q90"] <= spread["max"])


def test_large_values_break_mean_while_trimmed_mean_and_clipped_gossip_hold():
    """Averaging task on a ring lattice of 30 nodes (3 neighbours per side) with Byzantine
    nodes 0, 10 and 20: no honest node has more than one Byzantine neighbour."""
    base = {
        "network": {"topology": "circulant", "params": {"n": 30, "k": 3}},
        "placement": {"strategy": "manual", "count": 3, "params": {"ids": [0, 10, 20], "max_per_neighborhood": 1}},
        "attack": {"name": "large", "params": {"value": 1e3}},
        "defense": {"f": 1},
        "run": {"task": "averaging", "rounds": 20, "eval_every": 20, "dim": 8},
    }
    drift = {}
    for rule in ("mean", "trimmed_mean", "clipped_gossip"):
        config = {**base, "defense": {**base["defense"], "aggregator": rule}}
        drift[rule] = engine.simulate(scenario_from_dict(config)).summary()["drift"]
    # honest vectors start as N(0, I_8): one node's norm is about 2.8. The robust rules move
    # the honest average by that scale (they are not average-preserving); mean by ~1e3.
    assert drift["mean"] > 100, drift
    assert drift["trimmed_mean"] < 3 and drift["clipped_gossip"] < 3, drift


def test_new_seeds_learning_rates_and_numeric_parameters_share_one_compilation():
    base = tiny(
        placement={"count": 2},
        attack={"name": "ipm"},
        defense={"aggregator": "trimmed_mean", "f": 1},
        optimizer={"params": {"momentum": 0.9}},
        run={"rounds": 10, "eval_every": 10},
    )
    first = engine.simulate(base)
    chunk, evaluate = engine.make_chunk(engine.build(base))
    compiled = chunk._cache_size(), evaluate._cache_size()
    changes = [
        {"run.seed": 7},
        {"optimizer.learning_rate": 0.02},
        {"optimizer.params": {"momentum": 0.5}},
        {"attack.params": {"epsilon": 2.0}},
        {"defense.f": 2},
        {"faults.message_loss": 0.2},
    ]
    finals = [engine.simulate(base.replace(**change)).final("test_accuracy") for change in changes]
    assert (chunk._cache_size(), evaluate._cache_size()) == compiled
    for change, final in zip(changes, finals):  # the new values did act
        assert not np.array_equal(final, first.final("test_accuracy")), change


def test_no_recompilation_for_new_loss_probability_attack_parameters_or_f():
    plan = engine.build(tiny(attack={"name": "ipm"}, defense={"aggregator": "trimmed_mean", "f": 1}))
    chunk, _ = engine.make_chunk(plan)
    inputs = engine.inputs_of(plan)
    state = engine.initial_state(plan, 0)
    states = jax.tree.map(lambda leaf: leaf[None], state)
    states, _ = chunk(states, engine.knobs_for(plan), inputs)
    compiled = chunk._cache_size()
    stronger = attacks.resolve("ipm", epsilon=3.0)
    knobs = engine.knobs_for(plan, attack=stronger, f_nodes=jnp.asarray(plan.f_nodes) * 0, message_loss=jnp.float32(0.3))
    chunk(states, knobs, inputs)
    assert chunk._cache_size() == compiled


def test_label_flip_poisons_only_byzantine_nodes():
    plan = engine.build(tiny(placement={"count": 3}, attack={"name": "label_flip"}))
    poisoned = engine.poisoned_data(plan)
    assert set(poisoned) == {"y"}  # label_flip poisons labels only
    flipped = np.asarray(poisoned["y"]) != np.asarray(plan.data.train.y)
    byzantine = plan.network.byzantine
    assert flipped[byzantine].any() and not flipped[~byzantine].any()
    assert engine.poisoned_data(engine.build(tiny(placement={"count": 3}))) is None


def test_label_flip_outside_its_rounds_is_honest_training():
    """An attack window that never opens gives exactly the attack-free run."""
    never = tiny(placement={"count": 3}, attack={"name": "label_flip", "params": {"start_round": 1000}})
    honest = tiny(placement={"count": 3})
    np.testing.assert_array_equal(
        engine.simulate(never).metrics["test_accuracy"], engine.simulate(honest).metrics["test_accuracy"]
    )


def test_label_flip_byzantine_nodes_train_on_flipped_copies_of_honest_data():
    plan = engine.build(tiny(placement={"strategy": "manual", "count": 2, "params": {"ids": [4, 7]}}, attack={"name": "label_flip"}))
    poisoned, train = engine.poisoned_data(plan), plan.data.train
    source = plan.data.info["data_of"]
    assert source[4] != 4 and source[7] != 7 and not plan.network.byzantine[source].any()
    for node in (4, 7):
        np.testing.assert_array_equal(train.x[node], train.x[source[node]])  # a copy of an honest node's data
        np.testing.assert_array_equal(poisoned["y"][node], 9 - np.asarray(train.y[source[node]]))  # flipped


def test_honest_data_does_not_depend_on_where_the_byzantine_nodes_are():
    """The split is over the honest nodes in id order: two placements of 2 nodes, and two
    attached nodes beside an honest graph (its 12 nodes all honest), give the honest nodes
    the same data; so does another attack."""
    partition = {"partition": {"name": "dirichlet", "alpha": 0.5}}

    def honest_x(**tables):
        plan = engine.build(tiny(data=partition, **tables))
        return np.asarray(engine.inputs_of(plan).honest_train.x)

    first = honest_x(placement={"strategy": "manual", "count": 2, "params": {"ids": [0, 1]}})
    np.testing.assert_array_equal(first, honest_x(placement={"strategy": "manual", "count": 2, "params": {"ids": [5, 9]}}))
    np.testing.assert_array_equal(
        first, honest_x(placement={"strategy": "max_degree", "count": 2}, attack={"name": "label_flip"})
    )
    attached = honest_x(placement={"strategy": "attach", "count": 1, "params": {"targets": [3, 8]}})
    np.testing.assert_array_equal(attached, honest_x())
    assert attached.shape[0] == 12 and first.shape[0] == 10


def test_the_engine_runs_on_a_graph_with_attached_byzantine_nodes():
    """A 6-node complete honest graph with one ALIE attacker beside every node (ids 6..11)."""
    scenario = tiny(
        network={"topology": "complete", "params": {"n": 6}},
        placement={"strategy": "attach", "count": 1, "params": {"targets": "all"}},
        attack={"name": "alie"},
        defense={"aggregator": "trimmed_mean", "f": 1},
        run={"rounds": 10, "eval_every": 10},
    )
    plan = engine.build(scenario)
    assert plan.network.n == 12 and np.flatnonzero(plan.network.byzantine).tolist() == list(range(6, 12))
    assert sorted(plan.graph.neighbors(8)) == [2] and plan.graph.degree(2) == 6
    np.testing.assert_array_equal(plan.data.info["data_of"], list(range(6)) * 2)
    np.testing.assert_array_equal(plan.f_nodes, np.ones(12))
    result = engine.simulate(scenario)
    accuracy = result.metrics["test_accuracy"]
    assert accuracy.shape[-1] == 6 and np.isfinite(accuracy).all()


def ring_averaging(rounds, **faults):
    """4 nodes on a ring averaging with mean: Metropolis weights 1/3 on self and both neighbours."""
    scenario = scenario_from_dict({
        "network": {"topology": "ring", "params": {"n": 4}},
        "faults": faults,
        "run": {"task": "averaging", "rounds": rounds, "eval_every": 1, "dim": 3},
    })
    plan = engine.build(scenario)
    start = np.asarray(engine.initial_state(plan, 0).params, dtype=np.float64)
    return start, engine.simulate(scenario).final_params[0]


RING = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=np.float64) / 3


def test_averaging_error_is_the_mean_squared_distance_to_the_initial_honest_average():
    """``error`` = mean_i ||x_i - c_0||^2 over honest nodes (Gaucher et al.'s MSE up to n/d),
    in plain numpy from the start and the final vectors of a one-round mean on a ring."""
    scenario = scenario_from_dict({
        "network": {"topology": "ring", "params": {"n": 4}},
        "run": {"task": "averaging", "rounds": 1, "eval_every": 1, "dim": 3},
    })
    start = np.asarray(engine.initial_state(engine.build(scenario), 0).params, dtype=np.float64)
    result = engine.simulate(scenario)
    final = RING @ start
    center = start.mean(axis=0)
    expected = [np.mean(np.sum((x - center) ** 2, axis=1)) for x in (start, final)]
    np.testing.assert_allclose(np.asarray(result.metrics["error"])[:, 0], expected, rtol=1e-5)
    spread = np.asarray(result.metrics["consensus_distance"])[:, 0] + np.asarray(result.metrics["drift"])[:, 0] ** 2
    np.testing.assert_allclose(np.asarray(result.metrics["error"])[:, 0], spread, rtol=1e-5)


def test_a_crashed_node_freezes_and_its_neighbours_stop_receiving_from_it():
    start, final = ring_averaging(1, crashed=[1], crash_round=0)
    expected = RING @ start
    expected[1] = start[1]  # frozen
    expected[0] = (start[0] + start[3]) / 2  # node 1's message masked: weights renormalised
    expected[2] = (start[2] + start[3]) / 2
    np.testing.assert_allclose(final, expected, rtol=1e-5, atol=1e-6)


def test_a_straggler_message_is_the_one_from_delay_rounds_before():
    start, final = ring_averaging(2, stragglers=[1], delay=1)
    first = RING @ start  # round 0: the stale message is the initial vector, as is the current one
    stale_view = first.copy()
    stale_view[1] = start[1]  # what node 1's neighbours receive in round 1
    expected = RING @ stale_view
    expected[1] = (RING @ first)[1]  # node 1 itself combines its own current vector
    np.testing.assert_allclose(final, expected, rtol=1e-5, atol=1e-6)


def test_gossip_of_updates_equals_gossip_of_parameters_on_a_complete_graph_with_mean():
    """All nodes start equal; mean over everyone of (x + u_j) = x + mean of u_j."""
    base = {"network": {"topology": "complete", "params": {"n": 6}}, "run": {"rounds": 10, "eval_every": 10}}
    params = engine.simulate(scenario_from_dict(base)).final_params
    updates = engine.simulate(scenario_from_dict({**base, "run": {**base["run"], "gossip": "updates"}})).final_params
    np.testing.assert_allclose(updates, params, rtol=1e-4, atol=1e-5)


def test_message_loss_zero_is_the_lossless_run_bit_for_bit():
    lossless = engine.simulate(tiny(run={"rounds": 10, "eval_every": 10}))
    zero = engine.simulate(tiny(run={"rounds": 10, "eval_every": 10}, faults={"message_loss": 0.0}))
    np.testing.assert_array_equal(zero.final_params, lossless.final_params)
    lossy = engine.simulate(tiny(run={"rounds": 10, "eval_every": 10}, faults={"message_loss": 0.5}))
    assert not np.array_equal(lossy.final_params, lossless.final_params)


def test_time_varying_graph_uses_each_round_own_matching():
    scenario = scenario_from_dict({
        "network": {"topology": "random_matchings", "params": {"n": 6, "rounds": 3}},
        "run": {"task": "averaging", "rounds": 2, "eval_every": 1, "dim": 2},
    })
    plan = engine.build(scenario)
    x = np.asarray(engine.initial_state(plan, 0).params, dtype=np.float64)
    for t in range(2):
        partner = plan.network.neighbors[t][:, 1]  # slot 1: the round's partner (or itself)
        x = (x + x[partner]) / 2
    np.testing.assert_allclose(engine.simulate(scenario).final_params[0], x, rtol=1e-5, atol=1e-6)


def test_time_varying_requirement_is_checked_on_the_smallest_inbox():
    scenario = scenario_from_dict({
        "network": {"topology": "one_peer_exponential", "params": {"n": 8}},
        "defense": {"aggregator": "trimmed_mean", "f": 1},
        "run": {"task": "averaging", "rounds": 2, "eval_every": 1},
    })
    with pytest.raises(ValueError, match="trimmed_mean with f=1 needs an inbox of at least 3"):
        engine.build(scenario)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"run": {"rounds": 15, "eval_every": 10}}, "multiple of eval_every"),
        ({"defense": {"aggregator": "trimmed_mean", "f": 4}}, "at node"),
        ({"placement": {"count": 20}}, "count"),
        ({"optimizer": {"name": "sgd", "params": {"momentun": 0.9}}}, "momentun"),
        ({"optimizer": {"name": "not_an_optimizer"}}, "optax"),
        ({"network": {"topology": "rign"}}, "ring"),
        ({"network": {"topology": "ring", "params": {"n": 12, "degree": 3}}}, "degree"),
        ({"defense": {"aggregator": "krun"}}, "krum"),
        ({"attack": {"name": "alie", "params": {"zz": 1}}}, "zz"),
        ({"model": {"name": "linear"}}, "classification"),
        ({"faults": {"crashed": [12]}}, "crashed"),
        ({"run": {"gossip": "updates", "order": "cta"}}, "updates"),
        ({"placement": {"strategy": "attach", "count": 1, "params": {"targets": [12]}}}, "targets holds node 12"),
        ({"placement": {"strategy": "attach", "count": 1, "params": {"max_per_neighborhood": 1}}}, "max_per_neighborhood"),
        ({"placement": {"strategy": "attach", "count": 0.5}}, "attach: count must be an integer"),
        (
            {"network": {"topology": "random_matchings", "params": {"n": 12, "rounds": 2}}, "placement": {"strategy": "attach"}},
            r"strategy 'attach' adds nodes to a static graph, and topology 'random_matchings' is time-varying",
        ),
        (
            {"placement": {"count": 2}, "data": {"partition": {"name": "labels", "per_node": [[c % 10] for c in range(12)]}}},
            r"per_node lists 12 label sets for 10 nodes \(in a run, the honest nodes",
        ),
    ],
)
def test_bad_scenarios_fail_before_compilation_with_a_clear_message(tables, message):
    with pytest.raises(ValueError, match=message):
        engine.build(tiny(**tables))


def test_unknown_toml_key_suggests_the_closest(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[run]\nrouns = 3\n')
    with pytest.raises(ValueError, match=r"bad.toml.*'rouns'.*Did you mean 'rounds'"):
        load_scenario(path)


def test_a_scenario_reads_the_node_file_relative_to_itself(tmp_path, monkeypatch):
    """[network.params] nodes, like path, is relative to the scenario file's folder."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "edges.txt").write_text("0 1\n1 2\n2 3\n3 0\n")
    (folder / "nodes.csv").write_text("node,community,byzantine\n0,0,1\n1,0,0\n2,1,0\n3,1,0\n")
    (folder / "s.toml").write_text(
        '[network]\ntopology = "from_edgelist"\n[network.params]\npath = "edges.txt"\nnodes = "nodes.csv"\n'
        '[placement]\nstrategy = "marked"\ncount = 1\n'
    )
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(folder / "s.toml")
    assert scenario.network.params["nodes"] == str(folder.resolve() / "nodes.csv")
    graph, byzantine, _ = engine.graph_and_byzantine(scenario)
    assert byzantine == [0] and dict(graph.nodes(data="community")) == {0: 0, 1: 0, 2: 1, 3: 1}


def test_the_engine_runs_on_an_edge_list_with_a_node_file(tmp_path):
    """An 8-node two-community edge list (weights in its third column) with a node file:
    the community partition gives each community its own labels (digits 0-4 and 5-9),
    and the marked placement takes the file's Byzantine nodes."""
    (tmp_path / "edges.txt").write_text(
        "".join(f"{u} {v} 1\n" for u, v in [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (2, 6)])
    )
    (tmp_path / "nodes.csv").write_text(
        "node,community,byzantine\n" + "".join(f"{v},{v // 4},{int(v in (1, 5))}\n" for v in range(8))
    )
    (tmp_path / "s.toml").write_text(
        '[network]\ntopology = "from_edgelist"\nparams = { path = "edges.txt", nodes = "nodes.csv" }\n'
        '[placement]\nstrategy = "marked"\ncount = 2\n'
        '[data]\npartition = { name = "community" }\nbatch_size = 8\n'
        '[defense]\naggregator = "trimmed_mean"\nf = 1\n'
        '[attack]\nname = "alie"\n'
        '[run]\nrounds = 2\neval_every = 2\n'
    )
    scenario = load_scenario(tmp_path / "s.toml")
    plan = engine.build(scenario)
    assert np.flatnonzero(plan.network.byzantine).tolist() == [1, 5]
    honest = engine.inputs_of(plan).honest_train
    labels = [set(np.asarray(honest.y[i])[: int(honest.count[i])].tolist()) for i in range(6)]
    assert all(group <= set(range(5)) for group in labels[:3]) and all(group <= set(range(5, 10)) for group in labels[3:])
    accuracy = engine.simulate(scenario).metrics["test_accuracy"]
    assert accuracy.shape[-1] == 6 and np.isfinite(accuracy).all()
    with pytest.raises(ValueError, match=r"'marked' places the 2 nodes the graph marks byzantine \(\[1, 5\]\); got count=3"):
        engine.build(scenario.replace(placement={"count": 3}))
    with pytest.raises(ValueError, match=r"got count=0"):
        engine.build(scenario.replace(placement={"count": 0}))
    (tmp_path / "nodes.csv").write_text("node,community,byzantine\n0,0,0\n1,0,1\n5,1,1\n")
    with pytest.raises(ValueError, match=r"node 2 has no 'community' attribute.*community column a row for every node"):
        engine.build(scenario.replace(placement={"strategy": "manual", "params": {"ids": [1, 5]}}))


def test_cli_run_prints_one_row_per_sweep_point(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(
        '[network]\ntopology = "ring"\nparams = { n = 8 }\n'
        '[run]\ntask = "averaging"\nrounds = 4\neval_every = 2\n'
        '[sweep]\n"defense.aggregator" = ["mean", ["nnm", "trimmed_mean"]]\n'
    )
    assert main(["run", str(path)]) == 0
    table = capsys.readouterr().out
    assert "defense.aggregator=mean" in table and "defense.aggregator=nnm+trimmed_mean" in table


def test_cli_run_reports_a_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[defence]\nf = 1\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "defense" in err and len(err.strip().splitlines()) == 1


def test_quickstart_file_is_valid():
    scenario = load_scenario("experiments/quickstart.toml")
    assert len(scenario.points()) == 3
    engine.build(scenario.points()[0][1])


def _every_component_scenario(rule="trimmed_mean", attack="alie", task="averaging"):
    """16 nodes on a ring lattice (3 neighbours per side), Byzantine nodes 5 and 13, f=1."""
    config = {
        "network": {"topology": "circulant", "params": {"n": 16, "k": 3}},
        "placement": {"strategy": "manual", "count": 2, "params": {"ids": [5, 13]}},
        "defense": {"aggregator": rule, "f": 1},
        "attack": {"name": attack},
        "run": {"task": task, "rounds": 2, "eval_every": 2, "dim": 6},
    }
    if task == "train":
        config["data"] = {"dataset": "synthetic_classification", "params": {"dim": 5, "num_classes": 3}, "batch_size": 4}
    return scenario_from_dict(config)


@pytest.mark.parametrize("attack", sorted(attacks.ATTACKS))
def test_every_attack_runs_in_the_engine(attack):
    task = "train" if attacks.ATTACKS[attack]().needs_labels else "averaging"
    result = engine.simulate(_every_component_scenario(attack=attack, task=task))
    assert np.isfinite(result.final_params[0][result.honest]).all(), attack


@pytest.mark.parametrize("rule", sorted(name for name, spec in aggregators.AGGREGATORS.items() if not spec.preaggregator))
def test_every_rule_runs_in_the_engine_under_attack(rule):
    result = engine.simulate(_every_component_scenario(rule=rule, attack="sign_flip"))
    assert np.isfinite(result.final_params[0][result.honest]).all(), rule


@pytest.mark.parametrize("pre", sorted(name for name, spec in aggregators.AGGREGATORS.items() if spec.preaggregator))
def test_every_preaggregator_runs_in_the_engine_in_a_chain(pre):
    params = {"radius": 1.0} if pre == "clip" else {}
    chain = [{"name": pre, **params}, "trimmed_mean"]
    result = engine.simulate(_every_component_scenario(rule=chain))
    assert np.isfinite(result.final_params[0][result.honest]).all(), pre


def test_attack_state_advances_once_per_round_whatever_the_gossip_steps():
    """Mimic's warm-up counts rounds: with gossip_steps = 3 its counter after R rounds is R
    (it counted gossip steps, 3R, before semantics version 2), and the target it follows
    is learnt in the first ``warmup`` rounds."""
    config = {
        "network": {"topology": "circulant", "params": {"n": 12, "k": 2}},
        "placement": {"strategy": "manual", "count": 2, "params": {"ids": [0, 6]}},
        "attack": {"name": "mimic", "params": {"mode": "heuristic", "warmup": 2}},
        "defense": {"aggregator": "trimmed_mean", "f": 1},
        "run": {"task": "averaging", "rounds": 4, "eval_every": 1, "dim": 5, "gossip_steps": 3},
    }
    plan = engine.build(scenario_from_dict(config))
    counters = [int(states.attack_state["t"][0]) for _, states, _ in engine.evaluations(plan)]
    assert counters == [0, 1, 2, 3, 4]


def test_a_plug_in_topology_builder_is_named_by_its_path(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    config = {
        "network": {"topology": "tests.plugin_topologies:wheel", "params": {"n": 7}},
        "run": {"task": "averaging", "rounds": 2, "eval_every": 2, "dim": 3},
    }
    plan = engine.build(scenario_from_dict(config))
    assert plan.network.n == 7 and sorted(dict(plan.graph.degree()).values()) == [3] * 6 + [6]
    for path, message in [
        ("tests.plugin_topologies:missing", "Cannot load plug-in topology 'tests.plugin_topologies:missing'"),
        ("tests.plugin_topologies:NOT_A_BUILDER", "is not a function returning a graph"),
    ]:
        with pytest.raises(ValueError, match=message):
            engine.build(scenario_from_dict({**config, "network": {**config["network"], "topology": path}}))


def _diverging(task="averaging", start_round=3):
    """Ring of 8, Byzantine node 0 sending inf from ``start_round`` on, mean: the honest
    parameters are non-finite from that round on."""
    config = {
        "network": {"topology": "ring", "params": {"n": 8}},
        "placement": {"strategy": "manual", "count": 1, "params": {"ids": [0]}},
        "attack": {"name": "large", "params": {"value": "inf", "start_round": start_round}},
        "run": {"task": task, "rounds": 8, "eval_every": 2, "repeats": 2, "dim": 3},
    }
    if task == "train":
        config["data"] = {"dataset": "synthetic_classification", "params": {"dim": 5, "num_classes": 3}, "batch_size": 4}
    return scenario_from_dict(config)


def test_a_diverging_run_stops_at_the_evaluation_that_sees_it_and_its_summary_says_so():
    """The attack acts from round index 3, so the parameters after 4 rounds (the evaluation
    of round 4) are the first non-finite ones: the run stops there."""
    result = engine.simulate(_diverging())
    np.testing.assert_array_equal(result.rounds, [0, 2, 4])
    np.testing.assert_array_equal(result.metrics["diverged"], [[False, False], [False, False], [True, True]])
    assert result.diverged_round == 4
    assert np.isfinite(result.metrics["consensus_distance"][:2]).all()
    assert np.isnan(result.metrics["consensus_distance"][2]).all() and np.isnan(result.metrics["drift"][2]).all()
    summary = result.summary()
    assert summary["diverged_round"] == 4 and math.isnan(summary["drift"]) and math.isnan(summary["consensus_distance"])


def test_finite_parameters_whose_metrics_overflow_count_as_diverged():
    """Byzantine rows of 1e37 under mean: the honest parameters stay finite (float32 holds
    up to 3.4e38) but their squared distances overflow, so the run has diverged too."""
    scenario = _diverging().replace(**{"attack.params.value": 1e37, "attack.params.start_round": 0})
    plan = engine.build(scenario)
    (_, _, first), (round_index, states, second) = list(engine.evaluations(plan))
    assert round_index == 2 and not first["diverged"].any() and second["diverged"].all()
    assert np.isfinite(np.asarray(states.params)).all()  # the parameters of round 2 are still finite
    assert np.isnan(second["consensus_distance"]).all()


def test_a_diverged_model_has_no_accuracy_and_a_sound_run_no_divergence_in_its_summary():
    """NaN logits would read as class 0, an accuracy of 1 / classes: the metrics are NaN."""
    result = engine.simulate(_diverging(task="train", start_round=0))
    assert result.diverged_round == 2 and result.rounds.tolist() == [0, 2]
    assert np.isnan(result.metrics["test_accuracy"][-1]).all() and np.isnan(result.metrics["averaged_accuracy"][-1]).all()
    summary = result.summary()
    assert math.isnan(summary["accuracy_mean"]) and math.isnan(summary["accuracy_max"])
    sound = engine.simulate(_diverging(task="train", start_round=100))
    assert sound.diverged_round is None and sound.summary()["diverged_round"] is None
    assert sound.rounds.tolist() == [0, 2, 4, 6, 8] and not sound.metrics["diverged"].any()
