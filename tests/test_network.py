"""decentral.network: engine tables, degree buckets, weights, time-varying schedules."""

import networkx as nx
import numpy as np
import pytest

import topologies
from decentral import network

GRAPHS = {
    "ring": lambda: topologies.ring(9),
    "star": lambda: topologies.star(12),
    "two_cliques": lambda: topologies.two_cliques(4),
    "ba": lambda: topologies.barabasi_albert(300, 2, seed=0),
    "er_disconnected": lambda: topologies.erdos_renyi(40, 0.03, seed=1, connected=False),
    "exponential": lambda: topologies.exponential(11),
    "digraph": lambda: nx.DiGraph([(0, 1), (1, 2), (2, 0), (3, 0), (0, 3), (4, 1)]),
}


def _links(graph):
    """Reference (src, dst) set: src is in dst's inbox."""
    if graph.is_directed():
        return set(graph.edges)
    return {(u, v) for u, v in graph.edges} | {(v, u) for u, v in graph.edges}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_tables_round_trip_to_the_edge_set(name):
    graph = GRAPHS[name]()
    net = network.from_graph(graph, byzantine=[1, 2])
    assert net.edges() == _links(graph)
    covered = np.concatenate([bucket.nodes for bucket in net.buckets])
    assert sorted(covered.tolist()) == list(range(graph.number_of_nodes()))  # each node once
    assert net.directed == graph.is_directed()
    assert net.byzantine.tolist() == [v in (1, 2) for v in range(graph.number_of_nodes())]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_slot_conventions(name):
    graph = GRAPHS[name]()
    net = network.from_graph(graph)
    inbox = graph.predecessors if graph.is_directed() else graph.neighbors
    for bucket in net.buckets:
        assert bucket.nodes.dtype == np.int32 and bucket.neighbors.dtype == np.int32
        assert bucket.mask.dtype == bool and bucket.weights.dtype == np.float32
        assert np.all(np.diff(bucket.nodes) > 0)
        for row, node in enumerate(bucket.nodes.tolist()):
            expected = [node, *sorted(inbox(node))]
            size = len(expected)
            assert bucket.neighbors[row, :size].tolist() == expected
            assert bucket.mask[row].tolist() == [True] * size + [False] * (bucket.mask.shape[1] - size)
            assert (bucket.neighbors[row, size:] == node).all()  # padding points at the node itself
            assert (bucket.weights[row, size:] == 0).all()
        np.testing.assert_allclose(bucket.weights.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    assert net.inbox_sizes.tolist() == [
        d + 1 for _, d in sorted(graph.in_degree if graph.is_directed() else graph.degree)
    ]


@pytest.mark.parametrize("name", ["ring", "star", "two_cliques", "ba"])
def test_metropolis_matrix_is_symmetric_and_matches_topologies(name):
    graph = GRAPHS[name]()
    matrix = network.from_graph(graph).mixing_matrix()
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, topologies.analyze(graph).weights, atol=1e-7)


def test_uniform_weights():
    graph = topologies.star(6)
    matrix = network.from_graph(graph, weights="uniform").mixing_matrix()
    np.testing.assert_allclose(matrix[0], np.full(6, 1 / 6), atol=1e-7)
    np.testing.assert_allclose(matrix[3], [0.5, 0, 0, 0.5, 0, 0], atol=1e-7)
    directed = network.from_graph(topologies.exponential(8)).mixing_matrix()  # uniform by default
    np.testing.assert_allclose(directed[0, [0, 4, 6, 7]], 0.25, atol=1e-7)


def test_regular_graph_gives_one_bucket():
    for graph in (
        topologies.ring(10),
        topologies.torus(4, 5),
        topologies.random_regular(50, 4, seed=0),
        topologies.exponential(16),
    ):
        net = network.from_graph(graph)
        assert len(net.buckets) == 1 and net.padded_slots == net.real_slots


def test_buckets_respect_max_padding_and_minimise_their_number():
    graph = topologies.barabasi_albert(500, 2, seed=3)
    sizes = np.array([d + 1 for _, d in sorted(graph.degree)])
    previous = None
    for bound in (1.0, 1.2, 1.5, 2.0, 4.0):
        net = network.from_graph(graph, max_padding=bound)
        assert net.padded_slots <= bound * sizes.sum()
        widths = [b.neighbors.shape[1] for b in net.buckets]
        assert widths == sorted(widths)
        for bucket in net.buckets:  # each bucket is padded to its own widest inbox
            assert bucket.neighbors.shape[1] == sizes[bucket.nodes].max()
        assert previous is None or len(net.buckets) <= previous
        previous = len(net.buckets)
    assert len(network.from_graph(graph, max_padding=1.0).buckets) == np.unique(sizes).size
    assert len(network.from_graph(graph, max_padding=np.inf).buckets) == 1


def test_barabasi_albert_10k_padding_against_one_global_width():
    graph = topologies.barabasi_albert(10_000, 3, seed=0)
    net = network.from_graph(graph)
    real = net.real_slots
    global_width = int(net.inbox_sizes.max())
    print(
        f"\nBA n=10,000 m=3: real inbox slots {real}; {len(net.buckets)} buckets "
        f"{[(b.nodes.size, b.neighbors.shape[1]) for b in net.buckets]} hold {net.padded_slots} "
        f"slots ({net.padded_slots / real:.2f}x real); one global K={global_width} would hold "
        f"{10_000 * global_width} ({10_000 * global_width / real:.1f}x real)"
    )
    assert net.padded_slots <= 2 * real
    assert net.edges() == _links(graph)


def test_tables_are_read_only():
    net = network.from_graph(topologies.ring(5), byzantine=[0])
    with pytest.raises(ValueError):
        net.buckets[0].weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        net.byzantine[1] = True
    assert repr(net) == "Network(n=5, byzantine=1, directed=False, buckets=[5x3])"


@pytest.mark.parametrize(
    "schedule",
    [topologies.random_matchings(9, 6, seed=1), topologies.one_peer_exponential(12)],
    ids=["random_matchings", "one_peer_exponential"],
)
def test_schedule_tables_match_each_rounds_graph(schedule):
    sched = network.from_schedule(schedule, byzantine=[0])
    rounds, n = len(schedule), schedule[0].number_of_nodes()
    assert sched.rounds == rounds and sched.neighbors.shape == (rounds, n, 2)
    assert sched.neighbors.dtype == np.int32 and sched.weights.dtype == np.float32
    for t, graph in enumerate(schedule):
        assert sched.edges(t) == _links(graph)
        assert sched.edges(t + rounds) == _links(graph)  # the engine indexes round t mod R
        assert (sched.neighbors[t, :, 0] == np.arange(n)).all()
        np.testing.assert_allclose(sched.weights[t].sum(axis=1), 1.0, atol=1e-6)
        unused = ~sched.mask[t]
        assert (sched.neighbors[t][unused] == np.nonzero(unused)[0]).all()
    sizes = sched.inbox_sizes
    assert sizes.shape == (rounds, n) and set(np.unique(sizes).tolist()) <= {1, 2}


def test_one_peer_exponential_averages_exactly_for_power_of_two():
    sched = network.from_schedule(topologies.one_peer_exponential(8))
    x = np.arange(8.0)
    for t in range(sched.rounds):
        x = (sched.weights[t] * x[sched.neighbors[t]]).sum(axis=1)
    np.testing.assert_allclose(x, np.full(8, 3.5), atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: network.from_graph(topologies.exponential(8), weights="metropolis"),
            r"need an undirected graph.*kind='uniform'",
        ),
        (
            lambda: network.from_graph(topologies.ring(5), weights="uniformm"),
            r"unknown kind 'uniformm'\. Did you mean 'uniform'\?",
        ),
        (
            lambda: network.from_graph(topologies.ring(5), byzantine=[7]),
            r"from_graph: byzantine must hold distinct node ids in 0\.\.4",
        ),
        (lambda: network.from_graph(topologies.ring(5), byzantine=[1, 1]), r"distinct node ids"),
        (
            lambda: network.from_graph(nx.path_graph([3, 4, 5])),
            r"from_graph: nodes must be the integers 0\.\.2.*from_networkx",
        ),
        (lambda: network.from_graph(nx.Graph([(0, 0), (0, 1)])), r"from_graph: self-loop at node 0"),
        (lambda: network.from_graph(topologies.ring(5), max_padding=0.5), r"max_padding must be >= 1"),
        (lambda: network.from_schedule([]), r"no graph given"),
        (
            lambda: network.from_schedule([topologies.ring(5), topologies.ring(6)]),
            r"from_schedule: round 1 has 6 nodes",
        ),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_network_module_imports_no_jax():
    import subprocess
    import sys

    code = "import sys, decentral.network; print('jax' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(network, extraglobs={"topologies": topologies})
    assert result.failed == 0 and result.attempted > 0
