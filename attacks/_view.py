"""What an attack sees: the population graph (``Graph``), the attacker's knowledge at one
receiver (``Context``) and that receiver's inbox (``View``, built by :func:`make_view`).

``Graph`` is built in numpy outside jit; ``Context`` is a pytree passed to every call;
``View`` is the checked, masked form of the arrays one call receives.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Graph:
    """The population an attack may look at, built once in numpy outside jit.

    Attributes:
      honest: bool[n], True for honest nodes.
      edges: int32[E, 2] or None, directed links ``(src, dst)``: ``src`` is in ``dst``'s
        inbox (an undirected graph lists both directions). Needed only by attacks with
        ``needs_graph`` (``spectral``).
    """

    honest: np.ndarray
    edges: np.ndarray | None = None

    def __post_init__(self):
        honest = np.asarray(self.honest, dtype=bool)
        if honest.ndim != 1:
            raise ValueError(f"Graph: honest must be a bool vector [n], got shape {honest.shape}.")
        object.__setattr__(self, "honest", honest)
        if self.edges is not None:
            edges = np.asarray(self.edges, dtype=np.int32).reshape(-1, 2)
            if edges.size and (edges.min() < 0 or edges.max() >= honest.size):
                raise ValueError(f"Graph: edges must hold node ids in [0, {honest.size}).")
            object.__setattr__(self, "edges", edges)

    @property
    def n(self) -> int:
        return int(self.honest.size)

    @classmethod
    def from_networkx(cls, graph, byzantine) -> Graph:
        """From a networkx graph on nodes 0..n-1 and the Byzantine nodes (ids or bool[n])."""
        n = graph.number_of_nodes()
        honest = _honest_mask(n, byzantine)
        pairs = [(int(u), int(v)) for u, v in graph.edges()]
        if not graph.is_directed():
            pairs += [(v, u) for u, v in pairs]
        return cls(honest=honest, edges=np.array(pairs, dtype=np.int32).reshape(-1, 2))

    @classmethod
    def from_adjacency(cls, adjacency, byzantine) -> Graph:
        """From a dense adjacency ``A[src, dst] != 0`` (src in dst's inbox) and the Byzantine nodes."""
        adjacency = np.asarray(adjacency)
        honest = _honest_mask(adjacency.shape[0], byzantine)
        src, dst = np.nonzero(adjacency)
        keep = src != dst
        return cls(honest=honest, edges=np.stack([src[keep], dst[keep]], axis=1).astype(np.int32))


def _honest_mask(n, byzantine):
    byzantine = np.asarray(byzantine)
    if byzantine.dtype == bool:
        if byzantine.shape != (n,):
            raise ValueError(f"Graph: a Byzantine mask must have shape [{n}], got {byzantine.shape}.")
        return ~byzantine
    ids = byzantine.astype(int).ravel()
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise ValueError(f"Graph: Byzantine ids {bad.tolist()} are not nodes of a graph with nodes 0..{n - 1}.")
    honest = np.ones(n, dtype=bool)
    honest[ids] = False
    return honest


class Context:
    """What an omniscient attacker knows at one receiver (a pytree).

    Attributes:
      round: int32 scalar, the current round (``start_round``/``stop_round`` compare to it).
      node: int32 scalar, the receiver's node id (``spectral`` reads its Fiedler entry).
      rule: the receiver's aggregation rule, ``rule(inbox: f32[K, d], mask: bool[K],
        weights: f32[K] | None) -> f32[d]``, used by optimal modes. A plain function is
        static (pytree auxiliary data: hashable by identity); a pytree callable (e.g. a
        rule spec) is traced, so its numeric hyperparameters do not recompile.
      extra: dict, what the attack's ``prepare`` computed from the whole population this
        round (global statistics, the Fiedler direction, the mimicked vector).
    """

    __slots__ = ("round", "node", "rule", "extra")

    def __init__(self, round=0, node=0, rule=None, extra=None):
        object.__setattr__(self, "round", round)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "extra", {} if extra is None else extra)

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"Context is immutable; use ctx.replace({name}=...).")

    def replace(self, **changes) -> Context:
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Context(**fields)

    def __repr__(self):
        return f"Context(round={self.round!r}, node={self.node!r}, rule={self.rule!r}, extra={sorted(self.extra)})"


def _rule_is_static(rule) -> bool:
    return rule is None or jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(rule))


def _flatten_context(ctx):
    if _rule_is_static(ctx.rule):
        return (ctx.round, ctx.node, ctx.extra, None), (ctx.rule,)
    return (ctx.round, ctx.node, ctx.extra, ctx.rule), (None,)


def _unflatten_context(aux, children):
    round_, node, extra, traced_rule = children
    ctx = object.__new__(Context)
    for name, value in zip(Context.__slots__, (round_, node, aux[0] if aux[0] is not None else traced_rule, extra)):
        object.__setattr__(ctx, name, value)
    return ctx


jax.tree_util.register_pytree_node(Context, _flatten_context, _unflatten_context)


class View(NamedTuple):
    """One receiver's inbox as an attack sees it (built by :meth:`Attack.__call__`).

    Attributes:
      inbox: f32[K, d], the inbox as received (masked rows may hold anything).
      clean: f32[K, d], the inbox with every non-honest row zeroed (NaN-safe sums).
      mask: bool[K], valid rows (row 0 forced valid).
      byzantine: bool[K], valid Byzantine rows (never row 0).
      honest: bool[K], valid honest rows, row 0 included.
      weights: f32[K], mixing weights, 0 on invalid rows (uniform when none were given).
      raw_weights: the weights argument as given (None or f32[K]), for ``ctx.rule``.
      count: int32, valid rows n. byzantine_count: int32, valid Byzantine rows f.
      honest_count: int32, valid honest rows n - f (>= 1).
    """

    inbox: jax.Array
    clean: jax.Array
    mask: jax.Array
    byzantine: jax.Array
    honest: jax.Array
    weights: jax.Array
    raw_weights: Any
    count: jax.Array
    byzantine_count: jax.Array
    honest_count: jax.Array

    @property
    def own(self):
        return self.inbox[0]

    @property
    def dim(self) -> int:
        return self.inbox.shape[1]

    @property
    def size(self) -> int:
        return self.inbox.shape[0]


def make_view(inbox, byz_slot, mask, weights, *, attack: str) -> View:
    """Check one receiver's arrays and build its :class:`View`."""
    inbox = jnp.asarray(inbox)
    if inbox.ndim != 2:
        raise ValueError(f"{attack}: the inbox must have shape [K, d], got {inbox.shape}.")
    if not jnp.issubdtype(inbox.dtype, jnp.floating):
        inbox = inbox.astype(jnp.float32)
    size = inbox.shape[0]
    byz_slot = jnp.asarray(byz_slot)
    if byz_slot.shape != (size,) or byz_slot.dtype != jnp.bool_:
        raise ValueError(f"{attack}: byz_slot must be bool[{size}], got {byz_slot.dtype}{list(byz_slot.shape)}.")
    if mask is None:
        mask = jnp.ones((size,), dtype=bool)
    mask = jnp.asarray(mask)
    if mask.shape != (size,) or mask.dtype != jnp.bool_:
        raise ValueError(f"{attack}: mask must be bool[{size}], got {mask.dtype}{list(mask.shape)}.")
    if weights is not None:
        weights = jnp.asarray(weights)
        if weights.shape != (size,):
            raise ValueError(f"{attack}: weights must have shape [{size}], got {weights.shape}.")
    valid = mask.at[0].set(True)
    byzantine = (byz_slot & valid).at[0].set(False)
    honest = valid & ~byzantine
    w = jnp.ones((size,), jnp.float32) if weights is None else weights.astype(jnp.float32)
    w = jnp.where(valid, w, 0.0)
    clean = jnp.where(honest[:, None], inbox, 0.0)
    count = jnp.sum(valid, dtype=jnp.int32)
    byzantine_count = jnp.sum(byzantine, dtype=jnp.int32)
    return View(inbox, clean, valid, byzantine, honest, w, weights, count, byzantine_count, count - byzantine_count)

