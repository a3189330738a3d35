"""Mixing weights as data: max_degree, a given matrix, an edge list's weight column, the
Byzantine weight delta, and their errors; hand-computed on a 4-node graph."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import topologies
from decentral import engine, network
from decentral.scenario import load_scenario, scenario_from_dict

# The "paw": a triangle 0-1-2 with a tail 2-3. Degrees 2, 2, 3, 1.
PAW = [(0, 1), (0, 2), (1, 2), (2, 3)]
METROPOLIS = np.array([
    [5 / 12, 1 / 3, 1 / 4, 0],
    [1 / 3, 5 / 12, 1 / 4, 0],
    [1 / 4, 1 / 4, 1 / 4, 1 / 4],
    [0, 0, 1 / 4, 3 / 4],
])
UNIFORM = np.array([[1 / 3, 1 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3, 0], [1 / 4] * 4, [0, 0, 1 / 2, 1 / 2]])
MAX_DEGREE = np.array([[1 / 2, 1 / 4, 1 / 4, 0], [1 / 4, 1 / 2, 1 / 4, 0], [1 / 4] * 4, [0, 0, 1 / 4, 3 / 4]])
EDGES = "0 1 0.5\n0 2 0.25  # a comment\n\n1 2 0.125\n2 3 0.5\n"
FROM_EDGES = np.array([[0.25, 0.5, 0.25, 0], [0.5, 0.375, 0.125, 0], [0.25, 0.125, 0.125, 0.5], [0, 0, 0.5, 0.5]])
GIVEN = np.array([[0.5, 0.2, 0.3, 0], [0.1, 0.6, 0.3, 0], [0.2, 0.2, 0.2, 0.4], [0, 0, 0.9, 0.1]])


def paw():
    return nx.Graph(PAW)


def dense(graph, **kwargs):
    src, dst, edge, own = topologies.mixing_weights(graph, **kwargs)
    matrix = np.diag(own)
    matrix[dst, src] = edge
    return matrix


def write_matrix(folder: Path, name: str, matrix) -> Path:
    path = folder / name
    if path.suffix == ".npy":
        np.save(path, np.asarray(matrix))
    else:
        path.write_text("\n".join(", ".join(repr(float(v)) for v in row) for row in matrix) + "\n")
    return path


@pytest.mark.parametrize("kind, expected", [("metropolis", METROPOLIS), ("uniform", UNIFORM), ("max_degree", MAX_DEGREE)])
def test_named_weights_match_the_hand_computed_matrix(kind, expected):
    np.testing.assert_allclose(dense(paw(), kind=kind), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(network.from_graph(paw(), weights=kind).mixing_matrix(), expected, atol=1e-7)


def test_max_degree_on_a_directed_graph_uses_the_largest_in_degree():
    graph = nx.DiGraph([(0, 1), (2, 1), (1, 2)])  # in-degrees 0, 2, 1
    expected = np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(dense(graph, kind="max_degree"), expected, atol=1e-15)


def test_the_edge_list_weight_column_is_stored_and_used(tmp_path):
    path = tmp_path / "paw.txt"
    path.write_text(EDGES)
    graph = topologies.from_edgelist(path)
    assert graph.edges[2, 0]["weight"] == 0.25 and graph.graph["source"] == str(path)
    np.testing.assert_allclose(dense(graph, kind="edgelist"), FROM_EDGES, atol=1e-15)
    directed = tmp_path / "directed.txt"
    directed.write_text("0 1 0.5\n2 1 0.25\n")  # u -> v: u in v's inbox, W[v, u] = w
    expected = np.array([[1, 0, 0], [0.5, 0.25, 0.25], [0, 0, 1]])
    np.testing.assert_allclose(dense(topologies.from_edgelist(directed, directed=True), kind="edgelist"), expected)
    plain = tmp_path / "plain.txt"
    plain.write_text("0 1\n1 0\n")
    assert nx.get_edge_attributes(topologies.from_edgelist(plain), "weight") == {}


@pytest.mark.parametrize("name", ["W.npy", "W.csv"])
def test_a_given_matrix_file_is_the_network_weights(tmp_path, name):
    path = write_matrix(tmp_path, name, GIVEN)
    np.testing.assert_allclose(dense(paw(), kind=path), GIVEN, atol=1e-15)
    np.testing.assert_allclose(network.from_graph(paw(), weights=path).mixing_matrix(), GIVEN, atol=1e-7)
    np.testing.assert_allclose(dense(paw(), kind=GIVEN), GIVEN, atol=1e-15)  # an array as it is


def test_byzantine_weight_is_realised_exactly_at_every_honest_node():
    # One Byzantine node (2): nodes 0, 1, 3 see it; 0's honest weights 5/12 + 1/3 = 3/4 scale to 0.7.
    expected = np.array([
        [5 / 12 * 0.7 / 0.75, 1 / 3 * 0.7 / 0.75, 0.3, 0],
        [1 / 3 * 0.7 / 0.75, 5 / 12 * 0.7 / 0.75, 0.3, 0],
        [1 / 4] * 4,  # the Byzantine node's own row is unchanged
        [0, 0, 0.3, 0.7],
    ])
    np.testing.assert_allclose(dense(paw(), byzantine=[2], byzantine_weight=0.3), expected, atol=1e-14)
    # Two Byzantine nodes (0, 1) share delta at node 2; node 3 has none and keeps its row.
    two = dense(paw(), byzantine=[0, 1], byzantine_weight=0.3)
    np.testing.assert_allclose(two[2], [0.15, 0.15, 0.35, 0.35], atol=1e-15)
    np.testing.assert_allclose(two[[0, 1, 3]], METROPOLIS[[0, 1, 3]], atol=0)


@pytest.mark.parametrize("weights", ["uniform", "max_degree", "given"])
@pytest.mark.parametrize("delta", [0.0, 0.05, 0.4])
def test_byzantine_weight_rows_give_byzantine_neighbours_delta_and_sum_to_one(weights, delta):
    graph = topologies.barabasi_albert(30, 2, seed=3)
    byzantine = [0, 5, 11, 17]
    kind = dense(graph, kind="metropolis") if weights == "given" else weights
    matrix = network.from_graph(graph, byzantine=byzantine, weights=kind, byzantine_weight=delta).mixing_matrix()
    before = dense(graph, kind=kind)
    honest = np.setdiff1d(np.arange(30), byzantine)
    seen = honest[topologies.byzantine_counts(graph, byzantine)[honest] > 0]
    np.testing.assert_allclose(matrix[:, byzantine].sum(axis=1)[seen], delta, atol=1e-6)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    untouched = np.setdiff1d(np.arange(30), seen)
    np.testing.assert_allclose(matrix[untouched], before[untouched], atol=1e-7)


def test_a_time_varying_graph_takes_the_byzantine_weight_in_every_round():
    schedule = network.from_schedule(topologies.random_matchings(6, 3, seed=0), byzantine=[0], byzantine_weight=0.2)
    for t in range(3):
        partner = int(schedule.neighbors[t, 0, 1])  # node 0's partner this round
        row = schedule.weights[t, partner][schedule.mask[t, partner]]
        np.testing.assert_allclose(sorted(row.tolist()), [0.2, 0.8], atol=1e-7)
        np.testing.assert_allclose(schedule.weights[t, 0, :2], [0.5, 0.5], atol=1e-7)  # Byzantine row as before


def test_analyze_reports_the_realised_byzantine_weight():
    report = topologies.analyze(paw(), [2], byzantine_weight=0.3)
    np.testing.assert_allclose(report.byzantine_weight, [0.3, 0.3, 0.3], atol=1e-15)
    assert report.delta == 0.3 and "Byzantine weight 0.3 at honest nodes" in str(report)
    given = topologies.analyze(paw(), [2], kind=GIVEN)
    np.testing.assert_allclose(given.byzantine_weight, [0.3, 0.3, 0.9], atol=1e-15)
    assert given.kind == "matrix" and given.delta is None
    assert topologies.analyze(paw(), [2]).kind == "metropolis"  # the default as before
    np.testing.assert_allclose(topologies.analyze(paw(), [2], kind="max_degree").byzantine_weight, [0.25] * 3)


def test_analyze_of_a_weighted_edge_list_keeps_the_unweighted_laplacian(tmp_path):
    path = tmp_path / "paw.txt"
    path.write_text(EDGES)
    weighted = topologies.analyze(topologies.from_edgelist(path), kind="edgelist")
    assert weighted.algebraic_connectivity == pytest.approx(topologies.analyze(paw()).algebraic_connectivity)
    np.testing.assert_allclose(weighted.weights, FROM_EDGES, atol=1e-15)


def _averaging(network_table, **tables):
    config = {
        "network": network_table,
        "run": {"task": "averaging", "rounds": 1, "eval_every": 1, "dim": 3},
        **tables,
    }
    return scenario_from_dict(config)


def _paw_file(tmp_path, text="0 1\n0 2\n1 2\n2 3\n"):
    path = tmp_path / "paw.txt"
    path.write_text(text)
    return str(path)


def test_a_scenario_reads_a_matrix_relative_to_its_file_and_one_round_applies_it(tmp_path):
    write_matrix(tmp_path, "W.csv", GIVEN)
    _paw_file(tmp_path)
    (tmp_path / "s.toml").write_text(
        '[network]\ntopology = "from_edgelist"\nweights = { matrix = "W.csv" }\nparams = { path = "paw.txt" }\n'
        '[run]\ntask = "averaging"\nrounds = 1\neval_every = 1\ndim = 3\n'
    )
    scenario = load_scenario(tmp_path / "s.toml")
    assert scenario.network.weights == {"matrix": str(tmp_path / "W.csv")}
    (tmp_path / "sweep.toml").write_text('[sweep]\n"network.weights" = [{ matrix = "W.csv" }, "metropolis"]\n')
    points = [point.network.weights for _, point in load_scenario(tmp_path / "sweep.toml").points()]
    assert points == [{"matrix": str(tmp_path / "W.csv")}, "metropolis"]
    plan = engine.build(scenario)
    np.testing.assert_allclose(plan.network.mixing_matrix(), GIVEN, atol=1e-7)
    start = np.asarray(engine.initial_state(plan, 0).params, dtype=np.float64)
    np.testing.assert_allclose(engine.simulate(scenario).final_params[0], GIVEN @ start, rtol=1e-5, atol=1e-6)


def test_a_weighted_rule_reads_the_weights_of_the_tables(tmp_path):
    """clipped_gossip with a radius no difference reaches is x_0 + sum_j w_j (x_j - x_0) = W x."""
    scenario = _averaging(
        {"topology": "from_edgelist", "weights": "edgelist", "params": {"path": _paw_file(tmp_path, EDGES)}},
        defense={"aggregator": "clipped_gossip", "params": {"radius": 1e6}},
    )
    plan = engine.build(scenario)
    start = np.asarray(engine.initial_state(plan, 0).params, dtype=np.float64)
    np.testing.assert_allclose(engine.simulate(scenario).final_params[0], FROM_EDGES @ start, rtol=1e-5, atol=1e-6)


def test_sweeping_the_byzantine_weight_shares_one_compilation(tmp_path):
    base = _averaging(
        {"topology": "from_edgelist", "params": {"path": _paw_file(tmp_path)}, "byzantine_weight": 0.1},
        placement={"strategy": "manual", "count": 1, "params": {"ids": [2]}},
    )
    first = engine.simulate(base)
    chunk, evaluate = engine.make_chunk(engine.build(base))
    compiled = chunk._cache_size(), evaluate._cache_size()
    other = base.replace(**{"network.byzantine_weight": 0.4})
    plan = engine.build(other)
    second = engine.simulate(other)
    assert (chunk._cache_size(), evaluate._cache_size()) == compiled
    start = np.asarray(engine.initial_state(plan, 0).params, dtype=np.float64)
    expected = dense(paw(), byzantine=[2], byzantine_weight=0.4) @ start
    honest = [0, 1, 3]
    np.testing.assert_allclose(second.final_params[0][honest], expected[honest], rtol=1e-5, atol=1e-6)
    assert not np.allclose(first.final_params, second.final_params)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "name, matrix, message",
    [
        ("W.npy", GIVEN[:3, :3], r"W\.npy: the graph has 4 nodes, so the weight matrix must be 4 x 4; got shape \(3, 3\)"),
        ("W.npy", np.where(np.eye(4) == 1, np.nan, GIVEN), r"W\.npy: entry \(0, 0\) = nan is not finite"),
        ("W.csv", GIVEN * [[1], [1], [1], [np.nan]], r"W\.csv: entry \(3, 0\) = nan is not finite"),
        ("W.npy", GIVEN + [[0.2, -0.4, 0.2, 0], [0] * 4, [0] * 4, [0] * 4], r"W\.npy: entry \(0, 1\) = -0\.2.* is negative"),
        ("W.csv", GIVEN * [[1], [0.9], [1], [1]], r"W\.csv: row 1 \(node 1's weights\) sums to 0\.9; every row must sum to 1"),
        ("W.npy", GIVEN + [[-0.1, 0, 0, 0.1], [0] * 4, [0] * 4, [0] * 4], r"entry \(0, 3\) = 0\.1 .* 3 -> 0 is not an edge"),
    ],
)
def test_a_bad_matrix_names_its_file_and_the_fault(tmp_path, name, matrix, message):
    path = write_matrix(tmp_path, name, matrix)
    with pytest.raises(ValueError, match=message):
        network.from_graph(paw(), weights=path)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("W.csv", "0.5, 0.5\n0.5, x\n", r"W\.csv:2: expected numbers separated by commas, got '0\.5, x'"),
        ("W.csv", "0.5, 0.5\n\n1\n", r"W\.csv:3: 1 entries, but line 1 has 2"),
        ("W.csv", "# nothing\n", r"W\.csv: no rows found"),
        ("W.txt", "1\n", r"W\.txt: a weight matrix must be a \.npy or a \.csv file"),
    ],
)
def test_a_malformed_matrix_file_names_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        topologies.read_weight_matrix(tmp_path / name)
    with pytest.raises(ValueError, match=r"W\.npy: weight matrix file not found"):
        topologies.read_weight_matrix(tmp_path / "W.npy")


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 1 0.5\n1 2 0.5 7\n", r"e\.txt:2: expected two non-negative integer node ids 'u v' and an optional weight"),
        ("0 1 0.5\n1 2 heavy\n", r"e\.txt:2: the weight 'heavy' of edge 1 2 is not a finite number >= 0"),
        ("0 1 -0.5\n", r"e\.txt:1: the weight '-0\.5' of edge 0 1 is not a finite number >= 0"),
        ("0 1 nan\n", r"e\.txt:1: the weight 'nan'"),
        ("0 1 0.5\n1 2\n", r"e\.txt:2: no weight, but line 1 has one"),
        ("0 1\n1 2 0.5\n", r"e\.txt:1: no weight, but line 2 has one"),
        ("0 1 0.5\n1 0 0.25\n", r"e\.txt:2: edge 1 0 has weight 0\.25, but line 1 gave it 0\.5"),
    ],
)
def test_a_malformed_weighted_edge_list_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "e.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        topologies.from_edgelist(path)


def test_edge_list_weights_that_overfill_a_node_or_are_missing_are_errors(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("0 1 0.75\n0 2 0.5\n")
    with pytest.raises(ValueError, match=r"edges into node 0 of .*e\.txt weigh 1\.25 in total, more than 1.*Scale"):
        topologies.mixing_weights(topologies.from_edgelist(path), kind="edgelist")
    with pytest.raises(ValueError, match=r"edge 1 -> 0 of the graph has no weight.*third column"):
        topologies.mixing_weights(paw(), kind="edgelist")
    path.write_text("0 1 0.5\n0 2 0.5\n")  # node 0's in-weights sum to exactly 1: self weight 0
    assert dense(topologies.from_edgelist(path), kind="edgelist")[0, 0] == 0.0


@pytest.mark.parametrize(
    "table, message",
    [
        ({"weights": "max_degre"}, r"\[network\] unknown weights 'max_degre'\. Did you mean 'max_degree'\?"),
        ({"weights": {"matrx": "W.npy"}}, r"\[network\] weights has no key 'matrx'\. Did you mean 'matrix'\?"),
        ({"weights": {"matrix": 3}}, r"weights = \{ matrix = PATH \} needs a \.npy or \.csv file name"),
        ({"weights": 3}, r"\[network\] weights must be a name .* or a table"),
        ({"byzantine_weight": 1.0}, r"\[network\] byzantine_weight must be a number in \[0, 1\)"),
        ({"byzantine_weight": -0.1}, r"byzantine_weight must be a number in \[0, 1\)"),
        ({"byzantine_weight": True}, r"byzantine_weight must be a number in \[0, 1\)"),
        ({"topology": "random_matchings", "params": {"n": 4, "rounds": 2}, "weights": {"matrix": "W.npy"}},
         r"\[network\] from_schedule: a weight matrix fits one graph"),
    ],
)
def test_bad_network_weight_keys_fail_before_compilation(table, message):
    with pytest.raises(ValueError, match=message):
        engine.build(_averaging({"topology": "ring", "params": {"n": 4}, **table}))


def test_a_bad_matrix_in_a_scenario_names_the_key_and_the_file(tmp_path):
    path = write_matrix(tmp_path, "W.npy", METROPOLIS)  # the paw's, not the ring's: 0 -> 2 is no ring edge
    scenario = _averaging({"topology": "ring", "params": {"n": 4}, "weights": {"matrix": str(path)}})
    with pytest.raises(ValueError, match=r"^\[network\] .*W\.npy: entry \(0, 2\) = 0\.25 .* 2 -> 0 is not an edge"):
        engine.build(scenario)


def test_a_node_with_no_honest_weight_cannot_take_a_byzantine_weight():
    matrix = np.array([[0, 1.0, 0, 0], *METROPOLIS[1:]])  # node 0 gives all its weight to node 1
    with pytest.raises(ValueError, match=r"honest node 0 gives itself and its honest neighbours weight 0"):
        topologies.mixing_weights(paw(), kind=matrix, byzantine=[1], byzantine_weight=0.2)
    with pytest.raises(ValueError, match=r"byzantine_weight must be a number in \[0, 1\)"):
        topologies.mixing_weights(paw(), byzantine=[1], byzantine_weight=1.5)
    with pytest.raises(ValueError, match=r"count_byzantine_in_degree=False recomputes degree-based weights"):
        topologies.mixing_weights(paw(), kind=GIVEN, count_byzantine_in_degree=False)
