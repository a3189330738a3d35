"""Time-varying graphs: a schedule of per-round graphs on the same nodes 0..n-1.

A schedule is a tuple of R graphs; round t of a run uses graph t mod R.
`decentral.network.from_schedule` turns it into per-round tables [R, n, K].
"""

import math

import networkx as nx
import numpy as np

from ._checks import check_int, derive_seed


def random_matchings(n: int, rounds: int, *, seed: int) -> tuple[nx.Graph, ...]:
    """Random matchings: each round, nodes pair up along a uniformly random matching.

    With n odd, one node (a different random one each round) sits the round out.

    Args:
      n: number of nodes, >= 2.
      rounds: R, the schedule length (round t uses matching t mod R).
      seed: random seed.

    Returns:
      R undirected graphs on nodes 0..n-1, each of maximum degree 1.

    Raises:
      ValueError: n < 2 or rounds < 1.

    Example:
      >>> [g.number_of_edges() for g in random_matchings(6, 3, seed=0)]
      [3, 3, 3]

    References:
      Boyd, Ghosh, Prabhakar, Shah. Randomized gossip algorithms. IEEE Trans. IT 2006.
    """
    n = check_int("random_matchings", "n", n, 2, "A matching needs two nodes.")
    rounds = check_int("random_matchings", "rounds", rounds, 1, "Use rounds >= 1.")
    rng = np.random.default_rng(derive_seed("random_matchings", seed, 0))
    return tuple(_matching(n, rng.permutation(n)) for _ in range(rounds))


def _matching(n: int, order: np.ndarray) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(order[0 : n - 1 : 2].tolist(), order[1:n:2].tolist(), strict=True))
    return graph


def one_peer_exponential(n: int) -> tuple[nx.DiGraph, ...]:
    """One-peer exponential graph (directed): in round t node i sends to i + 2^(t mod tau) mod n.

    tau = ceil(log2 n) rounds make one period; each round every node sends and receives
    exactly one message. For n a power of two, the uniform weights (1/2 each) average
    exactly over one period.

    Args:
      n: number of nodes, >= 2.

    Returns:
      tau directed graphs on nodes 0..n-1; an edge u -> v puts u in v's inbox.

    Raises:
      ValueError: n < 2.

    Example:
      >>> [sorted(g.successors(0)) for g in one_peer_exponential(8)]
      [[1], [2], [4]]

    References:
      Ying, Yuan, Chen, Hu, Pan, Yin. Exponential graph is provably efficient for
      decentralized deep training. NeurIPS 2021.
    """
    n = check_int("one_peer_exponential", "n", n, 2, "Use n >= 2.")
    return tuple(_shift(n, 2**k) for k in range(math.ceil(math.log2(n))))


def _shift(n: int, hop: int) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((i, (i + hop) % n) for i in range(n))
    return graph
