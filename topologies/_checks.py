"""Argument checks shared by the topologies modules: errors name the function, the value,
the rule broken and a fix."""

import difflib
import numbers

import networkx as nx
import numpy as np


def check_int(function: str, name: str, value, minimum: int, fix: str) -> int:
    """Return `value` as an int, or raise if it is not an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{function}: {name} must be an integer; got {value!r} ({type(value).__name__}). {fix}"
        )
    if value < minimum:
        raise ValueError(f"{function} needs {name} >= {minimum}; got {name}={value}. {fix}")
    return int(value)


def check_probability(function: str, name: str, value) -> float:
    """Return `value` as a float, or raise if it is not a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(
            f"{function}: {name} must be a probability in [0, 1]; got {name}={value!r}. Pass a number such as 0.1."
        )
    return float(value)


def check_choice(function: str, name: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, or raise naming the closest match."""
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{function}: unknown {name} {value!r}.{hint} Valid: {', '.join(sorted(choices))}.")


def check_simple(function: str, graph: nx.Graph) -> int:
    """Return n, or raise if the graph is empty, a multigraph or has self-loops."""
    n = graph.number_of_nodes()
    if n == 0:
        raise ValueError(f"{function}: the graph has no nodes. Build one with topologies.ring(8).")
    if graph.is_multigraph():
        raise ValueError(
            f"{function}: multigraphs are not supported (an inbox holds each neighbour once). "
            "Convert with nx.Graph(graph) or nx.DiGraph(graph)."
        )
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ValueError(
            f"{function}: self-loop at node {loops[0][0]!r} (a node's own vector is slot 0 "
            "already). Remove with graph.remove_edges_from(list(nx.selfloop_edges(graph)))."
        )
    return n


def check_node_ids(function: str, graph: nx.Graph) -> int:
    """Return n, or raise if the graph is not simple or its nodes are not exactly 0..n-1."""
    n = check_simple(function, graph)
    if set(graph.nodes) != set(range(n)):
        raise ValueError(
            f"{function}: nodes must be the integers 0..{n - 1}. "
            "Relabel with topologies.from_networkx(graph)."
        )
    return n


def check_members(function: str, name: str, ids, n: int) -> list[int]:
    """Return `ids` as a sorted list of distinct node ids in 0..n-1, or raise."""
    members = [check_int(function, f"a node id in {name}", i, 0, f"Use ids in 0..{n - 1}.") for i in ids]
    outside = [i for i in members if i >= n]
    if outside:
        raise ValueError(
            f"{function}: {name} holds node {outside[0]}, outside 0..{n - 1}. Use ids below n={n}."
        )
    if len(set(members)) != len(members):
        raise ValueError(f"{function}: {name} repeats a node id; list each node once.")
    return sorted(members)


def derive_seed(function: str, seed, stream: int) -> int:
    """Derive an int seed for one random draw (stream) of a function from the user's seed."""
    seed = check_int(function, "seed", seed, 0, "Pass seed=<non-negative int>.")
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def check_graph(graph: nx.Graph, *, caller: str = "check_graph") -> int:
    """Check that a graph is simple with nodes exactly 0..n-1, as builders return them.

    Args:
      graph: a nx.Graph or nx.DiGraph.
      caller: the function named in the error message.

    Returns:
      n, the number of nodes.

    Raises:
      ValueError: no nodes, a multigraph, a self-loop, or nodes other than 0..n-1 (the
        message names the fix, e.g. topologies.from_networkx).

    Example:
      >>> check_graph(ring(5))
      5
    """
    return check_node_ids(caller, graph)
