"""Adversaries added next to honest nodes: the ``attach`` placement strategy.

The strategies of :func:`~topologies.place` turn existing nodes Byzantine. ``attach``
keeps the given graph, whole, as the honest part and adds ``count`` new Byzantine nodes
next to each target node, as papers build their settings: ClippedGossip's honest-majority
ring and the CS+ gossip experiments add b adversaries beside every honest node of a given
honest graph. :func:`~topologies.placed` is the one entry point for both kinds: it returns
the graph a run uses and its Byzantine ids.

References:
  He, Karimireddy, Jaggi. Byzantine-robust decentralized learning via ClippedGossip. 2022.
  Gaucher et al. Unified breakdown analysis for Byzantine robust gossip (CS+ gossip).
  ICML 2025.
"""

import networkx as nx

from ._checks import check_int, check_members, check_node_ids

#: The strategies that add Byzantine nodes to the graph instead of choosing existing ones.
ADDING = ("attach",)


def attach(graph: nx.Graph, count, *, targets="all") -> tuple[nx.Graph, list[int]]:
    """Add ``count`` new Byzantine nodes linked to each target node.

    The new nodes get ids n, n+1, ... in target order, each target's ``count`` attackers
    consecutive: target ``targets[j]``'s attackers are ``n + j*count .. n + (j+1)*count - 1``.
    Each new node is linked to its target only: one undirected edge, or on a directed graph
    both directions (the attacker is in its target's inbox, and its target in its own, so
    the attacker's honest-protocol vector follows its target). The graph's own nodes,
    edges and attributes stay exactly as they were; a new node carries ``attached_to`` (its
    target) and, when the target has one, the target's ``community``.

    Args:
      graph: nodes 0..n-1, left unchanged (a copy is returned).
      count: b >= 0, the attackers per target (an integer: it is a count per target, not
        a fraction of n).
      targets: ``"all"`` (every node, by id) or a list of distinct node ids, in the order
        their attackers are numbered.

    Returns:
      ``(attached, byzantine)``: the graph on n + b * len(targets) nodes and the new ids
      n .. n + b * len(targets) - 1.

    Raises:
      ValueError: a count that is not an integer >= 0, targets neither "all" nor a
        non-empty list of distinct node ids of the graph.

    Example:
      >>> attached, byzantine = attach(ring(4), 1, targets=[2, 0])
      >>> byzantine, sorted(attached.edges(4)), sorted(attached.edges(5))
      ([4, 5], [(4, 2)], [(5, 0)])
    """
    n = check_node_ids("attach", graph)
    b = check_int("attach", "count", count, 0, "Give the attackers per target as an integer, e.g. count = 1.")
    order = _targets(targets, n)
    attached = graph.copy()
    byzantine = list(range(n, n + b * len(order)))
    for index, node in enumerate(byzantine):
        target = order[index // b]
        attributes = {"attached_to": target}
        if "community" in graph.nodes[target]:
            attributes["community"] = graph.nodes[target]["community"]
        attached.add_node(node, **attributes)
        attached.add_edge(node, target)
        if attached.is_directed():
            attached.add_edge(target, node)
    return attached, byzantine


def _targets(targets, n: int) -> list[int]:
    """The target ids in numbering order: every node for "all", else the given list, checked."""
    if isinstance(targets, str):
        if targets != "all":
            raise ValueError(f"attach: targets must be \"all\" or a list of node ids; got {targets!r}.")
        return list(range(n))
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ValueError(
            f"attach: targets must be \"all\" or a non-empty list of node ids in 0..{n - 1}; got {targets!r}."
        )
    check_members("attach", "targets", targets, n)
    return [int(node) for node in targets]

