"""Graph builders: sizes, degrees, connectivity, determinism, spectra, communities, bad input."""

import math

import networkx as nx
import numpy as np
import pytest

import topologies

# (name, graph, n, degree sequence (sorted) or None, directed)
DETERMINISTIC = [
    ("complete", lambda: topologies.complete(6), 6, [5] * 6, False),
    ("ring", lambda: topologies.ring(7), 7, [2] * 7, False),
    ("circulant", lambda: topologies.circulant(10, 3), 10, [6] * 10, False),
    ("torus", lambda: topologies.torus(3, 5), 15, [4] * 15, False),
    ("grid", lambda: topologies.grid(3, 4), 12, [2] * 4 + [3] * 6 + [4] * 2, False),
    ("star", lambda: topologies.star(6), 6, [1] * 5 + [5], False),
    ("hypercube", lambda: topologies.hypercube(4), 16, [4] * 16, False),
    ("two_cliques", lambda: topologies.two_cliques(4), 9, [2] + [3] * 6 + [4] * 2, False),
    ("dumbbell", lambda: topologies.dumbbell(4, 2), 8, [3] * 4 + [4] * 4, False),
]

RANDOM = {
    "erdos_renyi": lambda seed: topologies.erdos_renyi(40, 0.2, seed=seed),
    "random_regular": lambda seed: topologies.random_regular(30, 3, seed=seed),
    "small_world": lambda seed: topologies.small_world(30, 2, 0.2, seed=seed),
    "barabasi_albert": lambda seed: topologies.barabasi_albert(40, 2, seed=seed),
    "stochastic_block": lambda seed: topologies.stochastic_block([10, 15], 0.6, 0.05, seed=seed),
    "random_geometric": lambda seed: topologies.random_geometric(40, 0.35, seed=seed),
}


def _degrees(graph):
    return sorted(d for _, d in graph.degree)


@pytest.mark.parametrize(
    "name, build, n, degrees, directed", DETERMINISTIC, ids=[d[0] for d in DETERMINISTIC]
)
def test_deterministic_builder_nodes_degrees_connectivity(name, build, n, degrees, directed):
    graph = build()
    assert sorted(graph.nodes) == list(range(n))
    assert _degrees(graph) == degrees
    assert graph.is_directed() is directed
    assert nx.is_connected(graph)
    assert nx.number_of_selfloops(graph) == 0


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_builder_deterministic_by_seed_and_connected(name):
    first, again, other = RANDOM[name](3), RANDOM[name](3), RANDOM[name](4)
    assert sorted(first.nodes) == list(range(first.number_of_nodes()))
    assert set(first.edges) == set(again.edges)
    assert set(first.edges) != set(other.edges)
    assert nx.is_connected(first)


def test_random_builder_degrees():
    assert set(dict(topologies.random_regular(30, 3, seed=0).degree).values()) == {3}
    assert topologies.small_world(30, 2, 0.2, seed=0).number_of_edges() == 60
    ba = topologies.barabasi_albert(40, 2, seed=0)
    assert ba.number_of_edges() == (40 - 2) * 2 and min(dict(ba.degree).values()) >= 2
    assert topologies.small_world(12, 2, 0.0, seed=0).edges == topologies.circulant(12, 2).edges


def test_random_geometric_links_points_within_radius():
    graph = topologies.random_geometric(40, 0.35, seed=1)
    pos = {v: np.array(p) for v, p in graph.nodes(data="pos")}
    for u in range(40):
        for v in range(u + 1, 40):
            assert graph.has_edge(u, v) == (np.linalg.norm(pos[u] - pos[v]) <= 0.35)


def test_disconnected_policy_redraws_then_raises_or_accepts():
    # p = 0.02 at n = 60 is far below ln(n)/n: every draw is disconnected.
    with pytest.raises(ValueError, match=r"erdos_renyi: no connected graph in max_tries=5 .*connected=False"):
        topologies.erdos_renyi(60, 0.02, seed=0, max_tries=5)
    sparse = topologies.erdos_renyi(60, 0.02, seed=0, connected=False)
    assert sparse.number_of_nodes() == 60 and not nx.is_connected(sparse)
    # random 2-regular graphs are unions of cycles: redraws find a Hamiltonian one.
    assert nx.is_connected(topologies.random_regular(8, 2, seed=0))


def test_exponential_is_directed_with_power_of_two_hops():
    graph = topologies.exponential(12)
    assert graph.is_directed()
    hops = [1, 2, 4, 8]
    assert set(graph.edges) == {(i, (i + h) % 12) for i in range(12) for h in hops}
    assert {d for _, d in graph.in_degree} == {4} and {d for _, d in graph.out_degree} == {4}
    assert nx.is_strongly_connected(graph)


def test_hypercube_links_differ_in_one_bit():
    graph = topologies.hypercube(4)
    assert all(bin(u ^ v).count("1") == 1 for u, v in graph.edges)


def test_torus_and_grid_layout():
    torus = topologies.torus(3, 4)
    assert sorted(torus.neighbors(0)) == [1, 3, 4, 8]
    grid = topologies.grid(3, 4)
    assert sorted(grid.neighbors(5)) == [1, 4, 6, 9] and grid.nodes[5]["pos"] == (1, -1)


def test_communities():
    two = topologies.two_cliques(4)
    assert [two.nodes[v]["community"] for v in range(9)] == [0] * 4 + [1] * 4 + [2]
    assert sorted(two.neighbors(8)) == [0, 7]
    bell = topologies.dumbbell(5, 3)
    assert [bell.nodes[v]["community"] for v in range(10)] == [0] * 5 + [1] * 5
    assert {(u, v) for u, v in bell.edges if bell.nodes[u]["community"] != bell.nodes[v]["community"]} == {
        (0, 9),
        (1, 8),
        (2, 7),
    }
    block = topologies.stochastic_block([3, 4, 5], 1.0, 0.2, seed=0)
    assert [block.nodes[v]["community"] for v in range(12)] == [0] * 3 + [1] * 4 + [2] * 5
    for community, members in ((0, range(3)), (1, range(3, 7)), (2, range(7, 12))):
        assert all(block.has_edge(u, v) for u in members for v in members if u < v), community


@pytest.mark.parametrize("n", [4, 5, 8, 13])
def test_ring_spectral_gap_closed_form(n):
    # Metropolis weights on a ring are 1/3 everywhere: W = (I + A)/3, eigenvalues
    # (1 + 2cos(2 pi k/n))/3; the gap is 1 - (1 + 2cos(2 pi/n))/3 for n >= 4.
    report = topologies.analyze(topologies.ring(n))
    assert report.spectral_gap == pytest.approx(1 - (1 + 2 * math.cos(2 * math.pi / n)) / 3, abs=1e-12)
    assert report.algebraic_connectivity == pytest.approx(2 - 2 * math.cos(2 * math.pi / n), abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_complete_graph_spectra_closed_form(n):
    # Metropolis on K_n is J/n (every weight 1/n): eigenvalues 1 and 0, so the gap is 1;
    # the Laplacian's nonzero eigenvalues all equal n.
    report = topologies.analyze(topologies.complete(n))
    assert report.spectral_gap == pytest.approx(1.0, abs=1e-12)
    assert report.algebraic_connectivity == pytest.approx(n, abs=1e-9)


def test_hypercube_and_torus_algebraic_connectivity():
    assert topologies.analyze(topologies.hypercube(4)).algebraic_connectivity == pytest.approx(2.0)
    expected = 2 - 2 * math.cos(2 * math.pi / 5)
    assert topologies.analyze(topologies.torus(3, 5)).algebraic_connectivity == pytest.approx(expected)


def test_from_networkx_relabels_and_keeps_direction():
    graph = topologies.from_networkx(nx.path_graph(["c", "a", "b"]))
    assert sorted(graph.nodes) == [0, 1, 2]
    assert [graph.nodes[v]["label"] for v in range(3)] == ["a", "b", "c"]
    assert {frozenset(e) for e in graph.edges} == {frozenset((2, 0)), frozenset((0, 1))}
    directed = topologies.from_networkx(nx.DiGraph([(10, 20), (20, 30)]))
    assert directed.is_directed() and set(directed.edges) == {(0, 1), (1, 2)}
    plain = nx.cycle_graph(4)
    copied = topologies.from_networkx(plain)
    assert copied is not plain and set(copied.edges) == set(plain.edges)


def test_from_edgelist_reads_comments_blank_lines_and_direction(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# a small graph\n0 1\n\n1 2  # inline comment\n2\t0\n0 1\n")
    graph = topologies.from_edgelist(path)
    assert sorted(graph.nodes) == [0, 1, 2] and graph.number_of_edges() == 3
    directed = topologies.from_edgelist(path, directed=True, n=5)
    assert directed.is_directed() and sorted(directed.nodes) == list(range(5))
    assert set(directed.edges) == {(0, 1), (1, 2), (2, 0)}


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 1\n1 x\n", r"edges.txt:2: expected two non-negative integer node ids 'u v' and an optional weight 'u v w', got '1 x'"),
        ("0 1\n1 2 3 4\n", r"edges.txt:2: expected two"),
        ("0 1\n1 2 3\n", r"edges.txt:1: no weight, but line 2 has one"),
        ("0,1\n", r"edges.txt:1: expected two"),
        ("0 1\n-1 2\n", r"edges.txt:2: expected two"),
        ("0 1\n2 2\n", r"edges.txt:2: self-loop 2 2"),
        ("# nothing\n", r"no edges found"),
    ],
)
def test_from_edgelist_malformed_line_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "edges.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        topologies.from_edgelist(path)


def test_from_edgelist_reads_node_attributes_from_a_node_file(tmp_path):
    """The edge list keeps its weight column; the node file sets community and byzantine,
    in any column order, and nodes it leaves out get no attribute."""
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1 0.5\n1 2 0.5\n2 3 0.5\n")
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("byzantine, node ,community\n0,0,7\n\ntrue,1,7\nFALSE,2,-1\n")
    graph = topologies.from_edgelist(edges, nodes=nodes, n=5)
    assert dict(graph.nodes(data="community")) == {0: 7, 1: 7, 2: -1, 3: None, 4: None}
    assert dict(graph.nodes(data="byzantine")) == {0: False, 1: True, 2: False, 3: None, 4: None}
    assert nx.get_edge_attributes(graph, "weight") == {(0, 1): 0.5, (1, 2): 0.5, (2, 3): 0.5}
    assert graph.graph["nodes_source"] == str(nodes)
    nodes.write_text("node,community\n3,1\n")
    only = topologies.from_edgelist(edges, nodes=nodes)
    assert dict(only.nodes(data="community")) == {0: None, 1: None, 2: None, 3: 1}
    assert all("byzantine" not in only.nodes[v] for v in only)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"nodes.csv: empty node file"),
        ("community\n0\n", r"nodes.csv:1: the header has no 'node' column \(got community\)"),
        ("0,1\n1,1\n", r"nodes.csv:1: unknown column '0' in the header\. Valid columns: node, community, byzantine"),
        ("node,colour\n0,red\n", r"nodes.csv:1: unknown column 'colour'.*Valid columns: node, community, byzantine"),
        ("node,node\n0,0\n", r"nodes.csv:1: column 'node' appears twice"),
        ("node,community\n0,1\nx,1\n", r"nodes.csv:3: node id 'x' is not a non-negative integer"),
        ("node,community\n0,1\n-1,1\n", r"nodes.csv:3: node id '-1' is not a non-negative integer"),
        ("node,community\n4,1\n", r"nodes.csv:2: node 4 is outside the graph, whose nodes are 0\.\.3"),
        ("node,community\n1,0\n\n1,1\n", r"nodes.csv:4: node 1 is listed again \(first on line 2\)"),
        ("node,community\n0,a\n", r"nodes.csv:2: community 'a' of node 0 is not an integer"),
        ("node,community\n0,1.5\n", r"nodes.csv:2: community '1.5' of node 0 is not an integer"),
        ("node,byzantine\n0,yes\n", r"nodes.csv:2: byzantine 'yes' of node 0 is not 0/1 or true/false"),
        ("node,byzantine\n0,2\n", r"nodes.csv:2: byzantine '2' of node 0"),
        ("node,community\n0\n", r"nodes.csv:2: 1 fields, but the header \(line 1\) names 2"),
    ],
)
def test_from_edgelist_bad_node_file_names_file_and_line(tmp_path, text, message):
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n1 2\n2 3\n")
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(text)
    with pytest.raises(ValueError, match=message):
        topologies.from_edgelist(edges, nodes=nodes)


def test_from_edgelist_n_too_small(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("0 7\n")
    with pytest.raises(ValueError, match=r"from_edgelist needs n >= 8"):
        topologies.from_edgelist(path, n=5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: topologies.ring(2), r"ring needs n >= 3; got n=2\. Use n >= 3"),
        (lambda: topologies.complete(1), r"complete needs n >= 2"),
        (lambda: topologies.circulant(6, 3), r"circulant needs n >= 7; got n=6"),
        (lambda: topologies.torus(2, 5), r"torus needs rows >= 3"),
        (lambda: topologies.grid(1, 1), r"grid needs rows\*cols >= 2"),
        (lambda: topologies.star(1), r"star needs n >= 2"),
        (lambda: topologies.hypercube(0), r"hypercube needs dim >= 1"),
        (lambda: topologies.exponential(1), r"exponential needs n >= 2"),
        (lambda: topologies.two_cliques(1), r"two_cliques needs clique_size >= 2"),
        (lambda: topologies.dumbbell(3, 4), r"dumbbell needs bridges <= clique_size.*Use bridges <= 3"),
        (lambda: topologies.random_regular(5, 3, seed=0), r"n\*degree even.*Use n=6 or degree=4"),
        (lambda: topologies.random_regular(3, 3, seed=0), r"random_regular needs n >= 4"),
        (
            lambda: topologies.erdos_renyi(10, 1.5, seed=0),
            r"erdos_renyi: p must be a probability in \[0, 1\]",
        ),
        (lambda: topologies.small_world(4, 2, 0.1, seed=0), r"small_world needs n >= 5"),
        (lambda: topologies.barabasi_albert(3, 3, seed=0), r"barabasi_albert needs n >= 4"),
        (lambda: topologies.stochastic_block([1], 0.5, 0.5, seed=0), r"at least 2 nodes"),
        (lambda: topologies.random_geometric(10, 0.0, seed=0), r"radius > 0"),
        (lambda: topologies.ring(5.0), r"ring: n must be an integer; got 5\.0"),
        (lambda: topologies.erdos_renyi(10, 0.5, seed=-1), r"erdos_renyi needs seed >= 0"),
        (lambda: topologies.from_networkx(nx.MultiGraph([(0, 1)])), r"multigraphs are not supported"),
        (lambda: topologies.from_networkx(nx.Graph([(0, 0), (0, 1)])), r"self-loop at node 0"),
        (lambda: topologies.random_matchings(1, 3, seed=0), r"random_matchings needs n >= 2"),
        (lambda: topologies.random_matchings(4, 0, seed=0), r"random_matchings needs rounds >= 1"),
        (lambda: topologies.one_peer_exponential(1), r"one_peer_exponential needs n >= 2"),
    ],
)
def test_bad_input_raises_value_error_naming_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_random_matchings_are_matchings_and_deterministic():
    schedule = topologies.random_matchings(7, 5, seed=2)
    assert len(schedule) == 5
    for graph in schedule:
        assert sorted(graph.nodes) == list(range(7))
        assert graph.number_of_edges() == 3 and max(d for _, d in graph.degree) == 1
    again = topologies.random_matchings(7, 5, seed=2)
    assert [set(g.edges) for g in schedule] == [set(g.edges) for g in again]
    assert len({frozenset(g.edges) for g in schedule}) > 1


def test_one_peer_exponential_rounds():
    schedule = topologies.one_peer_exponential(10)
    assert len(schedule) == 4  # ceil(log2 10)
    for k, graph in enumerate(schedule):
        assert graph.is_directed() and set(graph.edges) == {(i, (i + 2**k) % 10) for i in range(10)}
