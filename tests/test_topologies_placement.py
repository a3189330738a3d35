"""Byzantine placement: counts, determinism, what each strategy picks, neighbourhood limits."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topologies

COUNTED = [
    "random",
    "max_degree",
    "min_degree",
    "betweenness",
    "eigenvector",
    "cut_vertices",
    "clustered",
    "spread",
]


@pytest.fixture(scope="module")
def ba():
    return topologies.barabasi_albert(60, 2, seed=0)


@pytest.mark.parametrize("strategy", COUNTED)
def test_count_sorted_distinct_and_deterministic(ba, strategy):
    chosen = topologies.place(ba, 7, strategy, seed=5)
    assert len(chosen) == 7 and chosen == sorted(set(chosen)) and all(0 <= v < 60 for v in chosen)
    assert chosen == topologies.place(ba, 7, strategy, seed=5)
    assert all(type(v) is int for v in chosen)


def test_fraction_count_rounds_down(ba):
    assert len(topologies.place(ba, 0.1, "max_degree")) == 6
    assert len(topologies.place(ba, 0.119, "max_degree")) == 7
    assert topologies.place(ba, 0, "random", seed=0) == []
    assert len(topologies.place(ba, 1.0, "random", seed=0)) == 60


def test_random_depends_on_seed(ba):
    assert topologies.place(ba, 10, "random", seed=1) != topologies.place(ba, 10, "random", seed=2)


def test_max_and_min_degree_pick_the_extreme_degrees(ba):
    degree = dict(ba.degree)
    top = topologies.place(ba, 8, "max_degree")
    assert min(degree[v] for v in top) >= max(degree[v] for v in ba if v not in top)
    low = topologies.place(ba, 8, "min_degree")
    assert max(degree[v] for v in low) <= min(degree[v] for v in ba if v not in low)


def test_ties_broken_by_node_id():
    ring = topologies.ring(10)
    for strategy in ("max_degree", "min_degree", "betweenness", "eigenvector", "cut_vertices"):
        assert topologies.place(ring, 3, strategy) == [0, 1, 2], strategy
    assert topologies.place(topologies.star(6), 2, "max_degree") == [0, 1]


def test_centrality_strategies_match_networkx(ba):
    between = nx.betweenness_centrality(ba)
    expected = sorted(ba, key=lambda v: (-round(between[v], 9), v))[:5]
    assert topologies.place(ba, 5, "betweenness") == sorted(expected)
    eigen = nx.eigenvector_centrality_numpy(ba)
    top = topologies.place(ba, 5, "eigenvector")
    assert min(eigen[v] for v in top) >= max(eigen[v] for v in ba if v not in top) - 1e-6


def test_directed_degree_is_out_degree():
    graph = nx.DiGraph([(0, 1), (0, 2), (0, 3), (1, 2), (2, 3), (3, 1)])
    assert topologies.place(graph, 1, "max_degree") == [0]
    assert topologies.place(graph, 1, "eigenvector") == [0]


def test_cut_vertices_first():
    graph = topologies.two_cliques(4)  # articulation points: 0, 7 and the center 8
    assert topologies.place(graph, 3, "cut_vertices") == [0, 7, 8]
    chosen = topologies.place(graph, 4, "cut_vertices")
    assert {0, 7, 8} < set(chosen)


def test_clustered_is_a_ball_and_spread_is_farthest_first():
    ring = topologies.ring(12)
    assert topologies.place(ring, 3, "clustered", center=5) == [4, 5, 6]
    assert topologies.place(ring, 4, "spread", center=0) == [0, 3, 6, 9]
    ball = topologies.place(ring, 5, "clustered", seed=3)
    assert nx.is_connected(ring.subgraph(ball))


def test_eclipse_covers_the_victims_neighbourhood(ba):
    victim = 17
    chosen = topologies.place(ba, None, "eclipse", victim=victim)
    assert chosen == sorted(ba.neighbors(victim))
    assert topologies.byzantine_counts(ba, chosen)[victim] == ba.degree(victim)
    directed = topologies.exponential(8)
    assert topologies.place(directed, None, "eclipse", victim=0) == [4, 6, 7]  # in-neighbours
    with pytest.raises(ValueError, match=r"places exactly 3 nodes; got count=2\. Pass count=None"):
        topologies.place(directed, 2, "eclipse", victim=0)


def test_fiedler_picks_the_endpoints_of_the_sparsest_cut():
    bell = topologies.dumbbell(5, 1)
    assert topologies.place(bell, 2, "fiedler") == [0, 9]
    with pytest.raises(ValueError, match=r"offers only 2 candidate nodes.*count=3"):
        topologies.place(bell, 3, "fiedler")


def test_manual(ba):
    assert topologies.place(ba, None, "manual", ids=[5, 3, 9]) == [3, 5, 9]
    assert topologies.place(ba, 3, "manual", ids=[5, 3, 9]) == [3, 5, 9]
    with pytest.raises(ValueError, match=r"repeats a node id"):
        topologies.place(ba, None, "manual", ids=[5, 5])
    with pytest.raises(ValueError, match=r"ids holds node 99, outside 0\.\.59"):
        topologies.place(ba, None, "manual", ids=[99])


def test_marked_takes_the_nodes_marked_byzantine():
    graph = topologies.ring(6)
    nx.set_node_attributes(graph, {v: v in (4, 1) for v in graph}, "byzantine")
    assert topologies.place(graph, 2, "marked") == [1, 4]
    assert topologies.placed(graph, 2, "marked") == (graph, [1, 4])
    nx.set_node_attributes(graph, {v: int(v == 3) for v in graph}, "byzantine")  # 0/1 work too
    assert topologies.place(graph, 1, "marked") == [3]
    nx.set_node_attributes(graph, {v: np.bool_(v == 0) for v in graph}, "byzantine")
    assert topologies.place(graph, 1, "marked") == [0]
    nx.set_node_attributes(graph, False, "byzantine")
    assert topologies.place(graph, 0, "marked") == []
    nx.set_node_attributes(graph, {v: v in (0, 3) for v in graph}, "byzantine")
    with pytest.raises(ValueError, match=r"place: honest node 1 has 1 Byzantine neighbours, above max_per_neighborhood=0"):
        topologies.place(graph, 2, "marked", max_per_neighborhood=0)


@pytest.mark.parametrize(
    "marks, count, message",
    [
        ({v: v in (1, 4) for v in range(6)}, 3, r"'marked' places the 2 nodes the graph marks byzantine \(\[1, 4\]\); got count=3\. Set count = 2"),
        ({v: v in (1, 4) for v in range(6)}, None, r"places the 2 nodes .*got count=None"),
        ({v: v in (1, 4) for v in range(6)}, 0.5, r"places the 2 nodes .*got count=0\.5"),
        ({}, 1, r"'marked' takes the nodes whose 'byzantine' attribute is true, and this graph has none\. Give from_edgelist a node file"),
        ({0: True, 1: False}, 1, r"'marked': node 2 has no 'byzantine' attribute; every node needs one"),
        ({v: "yes" for v in range(6)}, 1, r"'marked': node 0 has byzantine='yes'; use True/False"),
    ],
)
def test_marked_bad_input(marks, count, message):
    graph = topologies.ring(6)
    nx.set_node_attributes(graph, marks, "byzantine")
    with pytest.raises(ValueError, match=message):
        topologies.place(graph, count, "marked")


def test_max_per_neighborhood_raises_without_repair():
    ring = topologies.ring(10)
    with pytest.raises(
        ValueError,
        match=r"honest node 1 has 2 Byzantine neighbours, above max_per_neighborhood=1.*repair=True",
    ):
        topologies.place(ring, None, "manual", ids=[0, 2, 5], max_per_neighborhood=1)
    assert topologies.place(topologies.ring(12), 3, "spread", center=0, max_per_neighborhood=1) == [0, 3, 6]


def test_repair_moves_and_reports(ba):
    with pytest.warns(UserWarning, match=r"place: moved Byzantine nodes \(from, to\)"):
        chosen = topologies.place(ba, 8, "max_degree", max_per_neighborhood=1, repair=True)
    counts = topologies.byzantine_counts(ba, chosen)
    assert len(chosen) == 8 and all(counts[v] <= 1 for v in ba if v not in chosen)
    ids, moves = topologies.repair_placement(ba, topologies.place(ba, 8, "max_degree"), 1)
    assert ids == chosen and moves and all(a != b for a, b in moves)


def test_repair_fails_clearly_when_impossible():
    with pytest.raises(ValueError, match=r"repair_placement: the greedy repair is stuck .* above b=1"):
        topologies.repair_placement(topologies.complete(5), [0, 1], 1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 12), limit=st.integers(1, 3))
def test_repair_result_respects_the_limit(seed, count, limit):
    graph = topologies.erdos_renyi(40, 0.12, seed=seed, connected=False)
    start = topologies.place(graph, count, "random", seed=seed)
    try:
        ids, moves = topologies.repair_placement(graph, start, limit)
    except ValueError:
        return
    counts = topologies.byzantine_counts(graph, ids)
    assert len(ids) == count and len(moves) == len(set(moves))
    assert all(counts[v] <= limit for v in range(40) if v not in ids)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(count=61, strategy="random", seed=0), r"count=61 exceeds n=60 nodes\. Use count <= 60"),
        (dict(count=-1, strategy="random", seed=0), r"place needs count >= 0"),
        (dict(count=1.5, strategy="random", seed=0), r"fractional count must lie in \[0, 1\]"),
        (dict(count=3, strategy="max_degre"), r"unknown strategy 'max_degre'\. Did you mean 'max_degree'\?"),
        (dict(count=3, strategy="random"), r"strategy 'random' draws at random and needs seed=<int>"),
        (dict(count=3, strategy="spread"), r"strategy 'spread' draws at random and needs seed=<int>"),
        (dict(count=3, strategy="max_degree", victim=2), r"option victim= applies to strategy eclipse"),
        (dict(count=None, strategy="eclipse"), r"'eclipse' needs victim=<node id>"),
        (dict(count=None, strategy="max_degree"), r"'max_degree' needs a count"),
        (dict(count=3, strategy="max_degree", max_per_neighborhood=-1), r"needs max_per_neighborhood >= 0"),
    ],
)
def test_bad_input(ba, kwargs, message):
    with pytest.raises(ValueError, match=message):
        topologies.place(ba, **kwargs)


def test_graph_must_have_nodes_zero_to_n_minus_one():
    with pytest.raises(ValueError, match=r"nodes must be the integers 0\.\.2.*from_networkx"):
        topologies.place(nx.path_graph([1, 2, 3]), 1, "max_degree")


def test_fiedler_needs_connected_graph():
    graph = nx.union(topologies.complete(3), nx.relabel_nodes(topologies.complete(3), {0: 3, 1: 4, 2: 5}))
    with pytest.raises(ValueError, match=r"'fiedler' needs a connected graph"):
        topologies.place(graph, 2, "fiedler")


def test_byzantine_counts_matches_loop(ba):
    byzantine = [1, 4, 9, 30]
    expected = np.array([sum(u in byzantine for u in ba.neighbors(v)) for v in range(60)])
    np.testing.assert_array_equal(topologies.byzantine_counts(ba, byzantine), expected)


# --------------------------------------------------------------------------- attach


def test_attach_adds_count_nodes_per_target_numbered_in_target_order():
    honest = topologies.ring(5)
    graph, byzantine = topologies.placed(honest, 2, "attach", targets=[3, 0], seed=9)
    assert byzantine == [5, 6, 7, 8]
    assert graph.number_of_nodes() == 9 and not graph.is_directed()
    # target 3's attackers first (5, 6), then target 0's (7, 8), each linked to its target only
    assert {v: sorted(graph.neighbors(v)) for v in byzantine} == {5: [3], 6: [3], 7: [0], 8: [0]}
    assert {v: graph.nodes[v]["attached_to"] for v in byzantine} == {5: 3, 6: 3, 7: 0, 8: 0}
    # the honest part is exactly the graph as built, which is left untouched
    assert nx.utils.graphs_equal(graph.subgraph(range(5)), honest)
    assert honest.number_of_nodes() == 5 and honest.number_of_edges() == 5
    np.testing.assert_array_equal(topologies.byzantine_counts(graph, byzantine)[:5], [2, 0, 0, 2, 0])


def test_attach_all_targets_and_directed_graphs_link_both_ways():
    graph, byzantine = topologies.placed(topologies.ring(3), 1, "attach")
    assert byzantine == [3, 4, 5] and [graph.nodes[v]["attached_to"] for v in byzantine] == [0, 1, 2]
    directed = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    graph, byzantine = topologies.attach(directed, 1, targets=[1])
    assert graph.is_directed() and byzantine == [3]
    assert set(graph.in_edges(3)) == {(1, 3)} and set(graph.out_edges(3)) == {(3, 1)}
    assert set(graph.edges) - {(3, 1), (1, 3)} == set(directed.edges)


def test_attach_keeps_the_target_community():
    graph, byzantine = topologies.placed(topologies.dumbbell(3), 1, "attach", targets=[0, 4])
    assert [graph.nodes[v]["community"] for v in byzantine] == [0, 1]


def test_attach_with_no_attackers_and_the_other_strategies_keep_the_graph():
    ring = topologies.ring(6)
    graph, byzantine = topologies.placed(ring, 0, "attach")
    assert byzantine == [] and nx.utils.graphs_equal(graph, ring)
    graph, byzantine = topologies.placed(ring, 2, "max_degree")
    assert graph is ring and byzantine == topologies.place(ring, 2, "max_degree")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(count=1, targets=[6]), r"attach: targets holds node 6, outside 0\.\.5"),
        (dict(count=1, targets=[1, 1]), r"targets repeats a node id"),
        (dict(count=1, targets=[]), r"non-empty list of node ids in 0\.\.5"),
        (dict(count=1, targets="some"), r"targets must be \"all\" or a list"),
        (dict(count=1, targets=[True]), r"node id in targets must be an integer"),
        (dict(count=0.5), r"attach: count must be an integer; got 0\.5"),
        (dict(count=-1), r"attach needs count >= 0"),
        (dict(count=1, max_per_neighborhood=1), r"'attach' gives every target exactly count .* max_per_neighborhood"),
        (dict(count=1, repair=True), r"so repair does not apply"),
        (dict(count=1, victim=2), r"option victim= applies to strategy eclipse, not 'attach'"),
    ],
)
def test_attach_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        topologies.placed(topologies.ring(6), strategy="attach", **kwargs)


def test_place_refuses_attach_and_targets_belong_to_attach():
    with pytest.raises(ValueError, match=r"'attach' adds nodes, so it changes the graph; call topologies\.placed"):
        topologies.place(topologies.ring(6), 1, "attach")
    with pytest.raises(ValueError, match=r"option targets= applies to strategy 'attach', not 'max_degree'"):
        topologies.placed(topologies.ring(6), 1, "max_degree", targets=[0])


def test_attach_builds_the_honest_majority_ring_of_the_study():
    """ClippedGossip's ring: 5 honest nodes, 2 Byzantine ones beside each (its edge list)."""
    path = Path(__file__).resolve().parent.parent / "experiments" / "honest_majority_ring" / "ring.edgelist"
    lines = [line.split("#")[0].split() for line in path.read_text().splitlines()]
    listed = {frozenset(map(int, pair)) for pair in lines if pair}
    graph, byzantine = topologies.placed(topologies.ring(5), 2, "attach")
    assert byzantine == list(range(5, 15)) and {frozenset(edge) for edge in graph.edges} == listed
