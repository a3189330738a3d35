"""Threat-model diagnostics (decentral.engine.diagnostics) against hand-computed values and
topologies.analyze, on tiny graphs (no compilation)."""

import math

import networkx as nx
import numpy as np
import pytest

import topologies
from decentral.engine import threat_model
from decentral.network import from_graph, from_schedule


def test_counts_weights_and_a_disconnected_honest_ring():
    """ring(8), Byzantine 0 and 4: honest 1-2-3 and 5-6-7; nodes 1, 3, 5, 7 each have one
    Byzantine neighbour of Metropolis weight 1/3; with f = 0 all four are over their f."""
    found = threat_model(from_graph(topologies.ring(8), byzantine=[0, 4]), np.zeros(8, int))
    np.testing.assert_array_equal(found.honest, [1, 2, 3, 5, 6, 7])
    np.testing.assert_array_equal(found.byzantine_count, [1, 0, 1, 1, 0, 1])
    np.testing.assert_allclose(found.byzantine_weight, [1 / 3, 0, 1 / 3, 1 / 3, 0, 1 / 3], rtol=1e-6)
    assert found.honest_components == 2 and not found.honest_connected
    assert found.spectral_gap == pytest.approx(0.0, abs=1e-9)  # two blocks: eigenvalue 1 twice
    np.testing.assert_array_equal(found.over_f, [1, 3, 5, 7])
    assert found.worst_node() == 1
    assert found.problems() == (
        "4 of 6 honest nodes have more Byzantine in-neighbours than their f "
        "(e.g. node 1: 1 Byzantine in-neighbours, f=0); the honest subgraph is disconnected (2 components)"
    )
    record = found.record()
    assert record["over_f_nodes"] == 4 and record["honest_components"] == 2 and record["honest_connected"] == 0
    assert (record["worst_node"], record["worst_node_count"], record["worst_node_f"]) == (1, 1, 0)
    assert record["max_byzantine_weight"] == pytest.approx(1 / 3) and record["mean_byzantine_count"] == pytest.approx(4 / 6)


def test_uniform_weights_by_hand():
    """Edges 0-1, 1-2, 2-3, 3-0, 0-2 with uniform weights 1/(1 + d_i): Byzantine node 0
    weighs 1/3 at node 1 (degree 2), 1/4 at node 2 (degree 3), 1/3 at node 3."""
    graph = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)])
    found = threat_model(from_graph(graph, byzantine=[0], weights="uniform"), np.ones(4, int))
    np.testing.assert_array_equal(found.byzantine_count, [1, 1, 1])
    np.testing.assert_allclose(found.byzantine_weight, [1 / 3, 1 / 4, 1 / 3], rtol=1e-6)
    assert found.honest_connected and found.problems() is None
    report = topologies.analyze(graph, [0], kind="uniform")
    assert found.spectral_gap == pytest.approx(report.spectral_gap, abs=1e-6)


@pytest.mark.parametrize("dense_max_nodes", [1000, 0], ids=["dense", "sparse"])
@pytest.mark.parametrize(
    ("graph", "byzantine", "kind"),
    [
        (topologies.ring(12), [0], None),
        (topologies.BUILDERS["random_regular"](n=40, degree=4, seed=1), [3, 17, 30], None),
        (topologies.BUILDERS["random_regular"](n=40, degree=4, seed=1), [3, 17, 30], "uniform"),
        (topologies.exponential(16), [5], None),
    ],
    ids=["ring", "regular-metropolis", "regular-uniform", "directed"],
)
def test_the_gap_and_counts_are_those_of_topologies_analyze(graph, byzantine, kind, dense_max_nodes):
    network = from_graph(graph, byzantine=byzantine, **({} if kind is None else {"weights": kind}))
    found = threat_model(network, np.ones(graph.number_of_nodes(), int), dense_max_nodes=dense_max_nodes)
    report = topologies.analyze(graph, byzantine, kind=kind)
    assert found.gap_method == ("dense" if dense_max_nodes else "sparse")  # these converge at once
    assert found.spectral_gap == pytest.approx(report.spectral_gap, abs=1e-5)
    np.testing.assert_array_equal(found.honest, report.honest)
    np.testing.assert_array_equal(found.byzantine_count, report.byzantine_count)
    np.testing.assert_allclose(found.byzantine_weight, report.byzantine_weight, rtol=1e-6, atol=1e-7)
    assert found.honest_connected == report.honest_connected


def test_a_long_ring_whose_spectrum_clusters_at_1_gets_its_gap_by_shift_invert():
    """ring(600) with one Byzantine node: an honest path of gap ~ (pi / 600)^2 / 3 = 9e-6,
    which plain Lanczos does not resolve in its budget."""
    graph = topologies.ring(600)
    found = threat_model(from_graph(graph, byzantine=[0]), np.ones(600, int), dense_max_nodes=0)
    assert found.gap_method == "shift-invert"
    assert found.spectral_gap == pytest.approx(topologies.analyze(graph, [0]).spectral_gap, rel=1e-3)


def test_a_schedule_reports_its_worst_round_and_the_gap_of_its_mean_matrix():
    """Round 0: links 0-1, 2-3; round 1: 1-2, 3-0 (Metropolis 1/2). Byzantine 0 reaches
    node 1 in round 0 and node 3 in round 1; the honest links 2-3 and 1-2 connect 1, 2, 3
    over the period. The mean W~ is [[.75, .25, 0], [.25, .5, .25], [0, .25, .75]], of
    eigenvalues 1, 0.75, 0.25: gap 0.25."""
    schedule = from_schedule((nx.Graph([(0, 1), (2, 3)]), nx.Graph([(1, 2), (3, 0)])), byzantine=[0])
    found = threat_model(schedule, np.zeros(4, int))
    np.testing.assert_array_equal(found.byzantine_count, [1, 0, 1])
    np.testing.assert_allclose(found.byzantine_weight, [0.5, 0, 0.5])
    assert found.honest_connected
    assert found.spectral_gap == pytest.approx(0.25)
    assert found.problems().startswith("2 of 3 honest nodes have more Byzantine in-neighbours than their f")


def test_no_honest_pair_has_no_gap():
    found = threat_model(from_graph(topologies.ring(3), byzantine=[0, 1]), np.zeros(3, int))
    assert math.isnan(found.spectral_gap) and found.honest_connected
