"""Mixing weights, spectral report, (r,s)-robustness and drawing."""

import itertools

import networkx as nx
import numpy as np
import pytest

import topologies


def _dense(graph, **kwargs):
    src, dst, edge, own = topologies.mixing_weights(graph, **kwargs)
    matrix = np.diag(own)
    matrix[dst, src] = edge
    return matrix


def _metropolis_loops(graph):
    """Reference: W_ij = 1/(1 + max(d_i, d_j)) on edges, W_ii = 1 - row sum."""
    n = graph.number_of_nodes()
    matrix = np.zeros((n, n))
    for i, j in graph.edges:
        matrix[i, j] = matrix[j, i] = 1 / (1 + max(graph.degree(i), graph.degree(j)))
    for i in range(n):
        matrix[i, i] = 1 - matrix[i].sum()
    return matrix


GRAPHS = {
    "ba": lambda: topologies.barabasi_albert(40, 2, seed=1),
    "two_cliques": lambda: topologies.two_cliques(5),
    "grid": lambda: topologies.grid(3, 5),
    "star": lambda: topologies.star(7),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_metropolis_rows_sum_to_one_symmetric_and_match_loops(name):
    graph = GRAPHS[name]()
    matrix = _dense(graph)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix, matrix.T, atol=0)
    np.testing.assert_allclose(matrix, _metropolis_loops(graph), atol=1e-15)
    assert (matrix >= 0).all()


def test_uniform_weights_on_directed_graph():
    graph = topologies.exponential(10)
    matrix = _dense(graph)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    assert matrix[0, 0] == pytest.approx(1 / 5) and matrix[0, 9] == pytest.approx(1 / 5)  # 9 -> 0
    assert matrix[0, 1] == 0.0  # 0 -> 1 is not in 0's inbox
    with pytest.raises(ValueError, match=r"Metropolis weights need an undirected graph.*kind='uniform'"):
        topologies.mixing_weights(graph, kind="metropolis")
    with pytest.raises(ValueError, match=r"unknown kind 'metropolos'\. Did you mean 'metropolis'\?"):
        topologies.mixing_weights(topologies.ring(5), kind="metropolos")


def _reference_report(graph, byzantine):
    """Reference spectral gap, delta and counts by explicit loops on the dense matrix."""
    matrix = _metropolis_loops(graph)
    honest = [v for v in graph if v not in byzantine]
    delta = np.array([sum(matrix[i, j] for j in byzantine) for i in honest])
    counts = np.array([sum(j in byzantine for j in graph.neighbors(i)) for i in honest])
    tilde = matrix[np.ix_(honest, honest)] + np.diag(delta)
    values = sorted(np.linalg.eigvalsh(tilde), reverse=True)
    return 1 - max(abs(values[1]), abs(values[-1])), delta, counts


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_report_matches_reference(name):
    graph = GRAPHS[name]()
    byzantine = topologies.place(graph, 3, "random", seed=7)
    report = topologies.analyze(graph, byzantine)
    gap, delta, counts = _reference_report(graph, byzantine)
    assert report.spectral_gap == pytest.approx(gap, abs=1e-10)
    np.testing.assert_allclose(report.byzantine_weight, delta, atol=1e-14)
    np.testing.assert_array_equal(report.byzantine_count, counts)
    honest = graph.subgraph(report.honest.tolist())
    assert report.honest_connected == nx.is_connected(honest)
    lap = nx.laplacian_matrix(honest).toarray().astype(float)
    assert report.algebraic_connectivity == pytest.approx(max(0.0, np.linalg.eigvalsh(lap)[1]), abs=1e-9)


def test_two_cliques_with_byzantine_center():
    # ClippedGossip's worst case: the central node is Byzantine, the honest cliques split.
    graph = topologies.two_cliques(5)
    report = topologies.analyze(graph, [10])
    assert not report.honest_connected
    assert report.spectral_gap == pytest.approx(0.0, abs=1e-12)
    assert report.algebraic_connectivity == pytest.approx(0.0, abs=1e-12)
    # node 0: degree 5, center degree 2 -> weight 1/6.
    assert report.byzantine_weight[0] == pytest.approx(1 / 6)
    assert report.byzantine_count.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]


def test_not_counting_byzantine_gives_the_honest_subgraph_weights():
    graph = topologies.barabasi_albert(30, 2, seed=3)
    byzantine = [0, 5, 11]
    report = topologies.analyze(graph, byzantine, count_byzantine_in_degree=False)
    honest = report.honest.tolist()
    relabelled = nx.relabel_nodes(graph.subgraph(honest), {v: i for i, v in enumerate(honest)})
    np.testing.assert_allclose(
        report.weights[np.ix_(honest, honest)], _metropolis_loops(relabelled), atol=1e-15
    )
    assert (report.byzantine_weight == 0).all()
    assert report.byzantine_count.sum() > 0


def test_directed_report():
    report = topologies.analyze(topologies.exponential(8), [3])
    assert report.directed and report.kind == "uniform"
    assert report.honest_connected
    assert 0 < report.spectral_gap <= 1
    assert report.byzantine_count.tolist() == [0, 0, 0, 1, 1, 0, 1]  # 3 sends to 4, 5, 7


def test_report_prints():
    text = str(topologies.analyze(topologies.two_cliques(3), [6]))
    assert "nodes 7 (1 Byzantine)" in text and "spectral gap" in text and "exact" in text
    big = str(topologies.analyze(topologies.ring(30), [0]))
    assert "not computed exactly" in big and "r in [1, 2]" in big
    assert "Report(" in repr(topologies.analyze(topologies.ring(5)))


def _brute_rs(graph, r):
    """Reference: the largest s <= n with (r, s)-robustness, by checking every pair."""
    n = graph.number_of_nodes()
    inbox = graph.predecessors if graph.is_directed() else graph.neighbors

    def reachable(subset):
        return sum(1 for v in subset if sum(1 for u in inbox(v) if u not in subset) >= r)

    best = n
    for labels in itertools.product((0, 1, 2), repeat=n):
        one = {v for v in range(n) if labels[v] == 1}
        two = {v for v in range(n) if labels[v] == 2}
        if not one or not two:
            continue
        x1, x2 = reachable(one), reachable(two)
        if x1 < len(one) and x2 < len(two):
            best = min(best, x1 + x2)
    return best


def _brute_robustness(graph):
    r = 0
    while _brute_rs(graph, r + 1) >= 1:
        r += 1
    return r, _brute_rs(graph, r) if r else 0


SMALL = {
    "ring6": lambda: topologies.ring(6),
    "complete5": lambda: topologies.complete(5),
    "complete6": lambda: topologies.complete(6),
    "star5": lambda: topologies.star(5),
    "two_cliques2": lambda: topologies.two_cliques(2),
    "circulant7": lambda: topologies.circulant(7, 2),
    "exponential6": lambda: topologies.exponential(6),
    "er7": lambda: topologies.erdos_renyi(7, 0.5, seed=2),
    "path_directed": lambda: nx.DiGraph([(0, 1), (1, 2), (2, 3)]),
    "disconnected": lambda: nx.Graph([(0, 1), (2, 3)]),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_exact_robustness_matches_brute_force(name):
    graph = SMALL[name]()
    result = topologies.robustness(graph)
    assert result.exact
    assert (result.r, result.s) == _brute_robustness(graph)


def test_known_robustness():
    assert topologies.robustness(topologies.complete(7)).r == 4  # ceil(n/2)
    assert topologies.robustness(topologies.ring(10)).r == 1
    assert topologies.robustness(nx.Graph([(0, 1), (2, 3)])).r == 0


def test_robustness_bounds_beyond_the_exact_limit():
    ring = topologies.robustness(topologies.ring(20))
    assert not ring.exact and ring.s is None and (ring.r, ring.r_upper) == (1, 2)
    complete = topologies.robustness(topologies.complete(20))
    assert (complete.r, complete.r_upper) == (10, 10)  # min degree 19 >= floor(20/2) + 10 - 1
    split = topologies.robustness(nx.disjoint_union(topologies.ring(10), topologies.ring(10)))
    assert (split.r, split.r_upper) == (0, 0)
    # The bounds bracket the exact value where both are available.
    graph = topologies.erdos_renyi(12, 0.6, seed=4)
    exact = topologies.robustness(graph)
    bounded = topologies.robustness(graph, exact_max_nodes=8)
    assert bounded.r <= exact.r <= bounded.r_upper
    with pytest.raises(ValueError, match=r"exact_max_nodes=30 would enumerate 2\^30 subsets"):
        topologies.robustness(graph, exact_max_nodes=30)


def test_wmsr_conditions():
    # K_n is (F+1, F+1)-robust for the F Byzantine nodes when n >= 2F + 1.
    assert topologies.analyze(topologies.complete(5), [0, 1]).f_total_robust is True
    assert topologies.analyze(topologies.complete(4), [0, 1]).f_total_robust is False
    assert topologies.analyze(topologies.ring(8), [0]).f_total_robust is False
    assert topologies.analyze(topologies.complete(7), [0]).f_local_robust is True  # 4-robust >= 3
    assert topologies.analyze(topologies.ring(30), [0]).f_local_robust is False  # r <= 2 < 3


def test_draw_small_png_and_svg(tmp_path):
    graph = topologies.two_cliques(6)
    values = np.linspace(0, 1, 13)
    figure = topologies.draw(
        graph, byzantine=[12], values=values, path=tmp_path / "g.png", title="two cliques"
    )
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(figure.axes) == 2  # the graph and its colour bar
    topologies.draw(topologies.exponential(8), byzantine=[0], path=tmp_path / "g.svg", layout="circular")
    assert "<svg" in (tmp_path / "g.svg").read_text()[:500]


def test_draw_large_graph_summarises(tmp_path):
    graph = topologies.barabasi_albert(600, 2, seed=0)
    figure = topologies.draw(
        graph,
        byzantine=topologies.place(graph, 10, "max_degree"),
        values=np.arange(600.0),
        path=tmp_path / "big.png",
        max_nodes=150,
    )
    assert "degree" in figure.axes[0].get_xlabel()
    assert "150 of 600 nodes" in figure.axes[1].get_title()
    assert (tmp_path / "big.png").stat().st_size > 0


def test_draw_bad_input(tmp_path):
    graph = topologies.ring(5)
    with pytest.raises(ValueError, match=r"values must have shape \(5,\)"):
        topologies.draw(graph, values=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"must end in \.png or \.svg"):
        topologies.draw(graph, path=tmp_path / "g.jpg")
    with pytest.raises(ValueError, match=r"unknown layout 'sprng'\. Did you mean 'spring'\?"):
        topologies.draw(graph, layout="sprng")


def test_docstring_examples_run():
    import doctest

    from topologies import _analysis, _builders, _checks, _dynamic, _imported, _placement, _random

    names = {**vars(topologies), "np": np, "nx": nx}
    for module in (_analysis, _builders, _checks, _dynamic, _imported, _placement, _random):
        result = doctest.testmod(module, extraglobs=names)
        assert result.failed == 0, module.__name__


def test_uniform_weights_on_an_undirected_graph_use_the_general_eigensolver():
    """Uniform weights are not symmetric: the gap is that of the full spectrum (star: 0.5)."""
    report = topologies.analyze(topologies.star(6), [], kind="uniform")
    weights = np.asarray(report.weights)
    expected = 1 - np.sort(np.abs(np.linalg.eigvals(weights)))[-2]
    assert report.spectral_gap == pytest.approx(expected) and report.spectral_gap == pytest.approx(0.5)


def test_robustness_of_a_single_node_is_zero_and_returns():
    assert topologies.robustness(topologies.from_networkx(nx.empty_graph(1))).r == 0
