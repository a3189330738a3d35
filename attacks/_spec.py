"""Attack specs: frozen dataclasses registered as JAX pytrees, the registry, and the
receiver's view (``View``), the attacker's knowledge (``Context``) and the population
graph (``Graph``) they work from.

A spec holds an attack's parameters. Numeric ones are pytree data (traced, so sweeping a
scale or the start round never recompiles); structural ones (a variant, a grid size, the
collusion flag) are static.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: The default ``stop_round``: never stop.
NEVER = 2**31 - 1


# =========================================================================== fields


def parameter(default, *, static=False, choices=None, minimum=None, positive=False, optional=False):
    """Declare a spec field: ``static`` ones are compile-time constants, others are traced.

    ``choices``/``minimum``/``positive`` are checked when the spec is built from concrete
    values, so a bad config fails before compilation. ``optional`` allows ``None``.
    """
    meta = {"static": static, "choices": choices, "minimum": minimum, "positive": positive, "optional": optional}
    return dataclasses.field(default=default, metadata=meta)


def _validate_field(attack: str, field: dataclasses.Field, value) -> None:
    meta = field.metadata
    if value is None:
        if meta.get("optional"):
            return
        raise ValueError(f"{attack}: parameter {field.name!r} is required (got None).")
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            raise ValueError(f"{attack}: {field.name}={value!r} is not one of {list(meta['choices'])}.")
        return
    if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
        return
    if isinstance(value, str | bool):
        if meta.get("static"):
            return
        raise ValueError(f"{attack}: parameter {field.name!r} must be a number, got {value!r}.")
    if not np.isscalar(value) and not isinstance(value, np.ndarray | jax.Array):
        raise ValueError(f"{attack}: parameter {field.name!r} must be a number, got {value!r}.")
    if np.isnan(value):
        return  # NaN is a legitimate value for `large`
    if meta.get("positive") and not value > 0:
        raise ValueError(f"{attack}: parameter {field.name!r} must be > 0, got {value!r}.")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ValueError(f"{attack}: parameter {field.name!r} must be >= {meta['minimum']}, got {value!r}.")
    if meta.get("static") and int(value) != value:
        raise ValueError(f"{attack}: parameter {field.name!r} must be an integer, got {value!r}.")


def attack_spec(cls):
    """Make ``cls`` a frozen keyword-only dataclass and a JAX pytree.

    Traced fields are the pytree's children, static ones its auxiliary data. Unflattening
    bypasses ``__init__`` (JAX rebuilds specs with tracers or placeholders), so validation
    runs only when a user builds a spec.
    """
    cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static"))
    meta = tuple(f.name for f in fields if f.metadata.get("static"))

    def flatten(spec):
        return tuple(getattr(spec, n) for n in data), tuple(getattr(spec, n) for n in meta)

    def flatten_with_keys(spec):
        return tuple((jax.tree_util.GetAttrKey(n), getattr(spec, n)) for n in data), tuple(getattr(spec, n) for n in meta)

    def unflatten(aux, children):
        spec = object.__new__(cls)
        for name, value in zip(data, children):
            object.__setattr__(spec, name, value)
        for name, value in zip(meta, aux):
            object.__setattr__(spec, name, value)
        return spec

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


# =========================================================================== what the attacker sees


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


# =========================================================================== base class


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attack:
    """Base of every attack spec.

    Subclasses (decorated with :func:`attack_spec`) define ``name`` and
    ``message(key, view, ctx)``, returning the Byzantine vector ``f32[d]`` (the same for
    every Byzantine row) or one per row ``f32[K, d]``; the base class writes it into the
    valid Byzantine slots only, between ``start_round`` (included) and ``stop_round``
    (excluded). Attacks that use the whole population override ``prepare`` (and ``init``
    for memory or graph-derived constants).

    Common fields:
      start_round, stop_round: traced ints; outside ``[start_round, stop_round)`` the
        Byzantine rows keep their honest content.
      collusion: static; True (default): every Byzantine row of one inbox carries the same
        vector (one noise draw); False: independent draws per row. Deterministic attacks
        send the same vector either way.
    """

    start_round: Any = parameter(0)
    stop_round: Any = parameter(NEVER)
    collusion: bool = parameter(True, static=True, choices=(True, False))

    name: ClassVar[str] = ""
    #: The attack needs the graph's edges (``Graph.edges``) at ``init``.
    needs_graph: ClassVar[bool] = False
    #: The attack poisons data: the engine must give the Byzantine nodes labels to flip.
    needs_labels: ClassVar[bool] = False
    #: The message is random (a key is used).
    randomized: ClassVar[bool] = False
    #: On finite inputs the Byzantine rows are finite.
    finite: ClassVar[bool] = True

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _validate_field(self.name, field, getattr(self, field.name))

    # ----------------------------------------------------------------- claims per instance

    @property
    def needs_rule(self) -> bool:
        """The attack calls ``ctx.rule`` (optimal modes)."""
        return bool(getattr(self, "optimal", False))

    @property
    def needs_population(self) -> bool:
        """``init`` needs the population's honest mask and ``prepare`` must run every round."""
        return getattr(self, "scope", "local") == "global"

    def parameters(self) -> dict[str, Any]:
        """The spec's fields as a dict."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def check_scenario(self, *, graph: bool, labels: bool, rule: bool = True) -> None:
        """Raise ``ValueError`` at scenario build time when the scenario lacks what the attack needs.

        Args:
          graph: the scenario has a graph (edges) to pass to ``init``.
          labels: the scenario's data has class labels the engine can flip.
          rule: the engine passes the receivers' rule as ``ctx.rule``.
        """
        if self.needs_graph and not graph:
            raise ValueError(f"attack {self.name!r} needs the communication graph (attacks.Graph with edges); this scenario has none.")
        if self.needs_labels and not labels:
            raise ValueError(f"attack {self.name!r} poisons labels; this scenario's data has no class labels. Pick another attack.")
        if self.needs_rule and not rule:
            raise ValueError(f"attack {self.name!r} with optimal=True needs the receivers' rule as ctx.rule.")

    # ----------------------------------------------------------------- population step

    def init(self, network: Graph | None, dim: int):
        """The attack's state before round 0 (host side, numpy, outside jit).

        Args:
          network: the population (:class:`Graph`), or None when the attack needs none.
          dim: d, the length of a message.

        Returns:
          A pytree of arrays (a dict; empty for memoryless attacks).

        Raises:
          ValueError: the attack needs a graph or the honest mask and ``network`` lacks it.
        """
        del dim
        state = {}
        if self.needs_graph and (network is None or network.edges is None):
            raise ValueError(f"attack {self.name!r} needs the graph: pass attacks.Graph(honest=..., edges=...) to init.")
        if self.needs_population:
            if network is None:
                raise ValueError(
                    f"attack {self.name!r} (scope='global' or population-based) needs the population: "
                    "pass attacks.Graph(honest=...) to init."
                )
            state["honest"] = jnp.asarray(network.honest)
        return state

    def prepare(self, key, honest_params, network, state):
        """Once per round, before the per-receiver calls: what the attacker learns from
        the whole population.

        Args:
          key: a PRNG key for this round.
          honest_params: f32[n, d], every node's honest message this round (rows of
            Byzantine nodes are ignored: ``state["honest"]`` says which rows are honest).
          network: the :class:`Graph` given to ``init``, or None (the engine passes None,
            so that new graphs of the same size reuse its compilation: keep what you need
            of the graph in the ``state`` that ``init`` returns, as the built-in attacks do).
          state: the pytree from ``init`` or the previous ``prepare``.

        Returns:
          ``(extra, state)``: ``extra`` (a dict) goes into ``Context.extra``.
        """
        del key, network
        if not self.needs_population:
            return {}, state
        from ._math import population_stats

        return population_stats(honest_params, state["honest"]), state

    # ----------------------------------------------------------------- the attack

    def message(self, key, view: View, ctx: Context):
        """The Byzantine vector f32[d], or one per row f32[K, d]."""
        raise NotImplementedError

    def rewrite(self, key, view: View, ctx: Context):
        """``(rows f32[K, d], keep bool[K])``: the Byzantine rows and which Byzantine slots stay valid."""
        rows = jnp.asarray(self.message(key, view, ctx), dtype=view.inbox.dtype)
        rows = jnp.broadcast_to(rows, view.inbox.shape)
        return rows, jnp.ones_like(view.mask)

    def __call__(self, key, inbox, byz_slot, mask, weights, ctx: Context | None = None):
        """Rewrite the Byzantine slots of one receiver's inbox.

        Args:
          key: a PRNG key (per receiver).
          inbox: f32[K, d], the inbox as honestly gathered (row 0 = the receiver).
          byz_slot: bool[K], slots whose sender is Byzantine (row 0 is never one).
          mask: bool[K] or None, valid slots.
          weights: f32[K] or None, the receiver's mixing weights.
          ctx: :class:`Context` (default: round 0, no rule, no population).

        Returns:
          ``(inbox f32[K, d], mask bool[K])``; only valid Byzantine slots may differ.
        """
        ctx = Context() if ctx is None else ctx
        view = make_view(inbox, byz_slot, mask, weights, attack=self.name)
        round_ = jnp.asarray(ctx.round, jnp.int32)
        active = (round_ >= self.start_round) & (round_ < self.stop_round)
        rows, keep = self.rewrite(key, view, ctx)
        write = view.byzantine & active
        out = jnp.where(write[:, None], rows.astype(view.inbox.dtype), view.inbox)
        out_mask = jnp.asarray(mask) if mask is not None else view.mask
        out_mask = jnp.where(write, keep & out_mask, out_mask)
        return out, out_mask


def apply(spec, keys, inboxes, byz_slots, masks, weights, ctx: Context, nodes=None):
    """``spec`` over a block of receivers (``vmap``), each with its own ``ctx.node``.

    Args:
      keys: [B] PRNG keys. inboxes: f32[B, K, d]. byz_slots, masks: bool[B, K].
      weights: f32[B, K] or None. ctx: the round's shared :class:`Context`.
      nodes: int32[B], the receivers' node ids (default 0..B-1).

    Returns:
      ``(inboxes f32[B, K, d], masks bool[B, K])``.
    """
    if nodes is None:
        nodes = jnp.arange(inboxes.shape[0], dtype=jnp.int32)

    def one(key, inbox, byz, mask, w, node):
        return spec(key, inbox, byz, mask, w, ctx.replace(node=node))

    return jax.vmap(one)(keys, inboxes, byz_slots, masks, weights, nodes)


# =========================================================================== registry

#: Every registered attack, by name. Filled by ``_attacks.py``.
ATTACKS: dict[str, type[Attack]] = {}


def _unknown(name: str, valid) -> ValueError:
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown attack {name!r}.{hint} Valid attacks: {', '.join(sorted(valid))}.")


_CONTRACT = ("key", "inbox", "byz_slot", "mask", "weights", "ctx")


def register(name: str, spec, *, replace: bool = False):
    """Add an attack to :data:`ATTACKS` so configs can name it.

    ``spec`` is an :class:`Attack` subclass (decorated with :func:`attack_spec`), or a
    pure function ``fn(key, inbox, byz_slot, mask, weights, ctx, **params) -> (inbox,
    mask)``; its keyword-only parameters (with defaults) become traced spec fields, and
    the wrapper still writes only the valid Byzantine slots and honours
    ``start_round``/``stop_round``. A name already taken is an error unless
    ``replace=True``. Returns the spec class.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register: the name must be an identifier-like string, got {name!r}.")
    if name in ATTACKS and not replace:
        raise ValueError(f"register: attack {name!r} is already registered; pass replace=True to override it.")
    if isinstance(spec, type) and issubclass(spec, Attack):
        cls = spec
    elif callable(spec):
        cls = _spec_from_function(name, spec)
    else:
        raise TypeError(f"register: expected an Attack subclass or a function, got {spec!r}.")
    ATTACKS[name] = cls
    return cls


def _spec_from_function(name, function):
    params = inspect.signature(function).parameters
    missing = [p for p in _CONTRACT if p not in params]
    if missing:
        raise TypeError(
            f"register({name!r}): the function must have the signature "
            f"fn(key, inbox, byz_slot, mask, weights, ctx, **params); missing {missing}."
        )
    extra = [p for p in params.values() if p.name not in _CONTRACT]
    for p in extra:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"register({name!r}): parameter {p.name!r} must be keyword-only with a default.")
    own = [p.name for p in extra]

    def rewrite(self, key, view, ctx):
        out, out_mask = function(
            key, view.inbox, view.byzantine, view.mask, view.raw_weights, ctx, **{n: getattr(self, n) for n in own}
        )
        return jnp.asarray(out), jnp.asarray(out_mask)

    namespace = {
        "__annotations__": {p.name: Any for p in extra},
        **{p.name: parameter(p.default, optional=p.default is None, static=isinstance(p.default, str | bool)) for p in extra},
        "name": name,
        "randomized": True,
        "rewrite": rewrite,
        "__doc__": function.__doc__,
        "__module__": function.__module__,
    }
    return attack_spec(type(function.__name__.title().replace("_", ""), (Attack,), namespace))


def resolve(config, **params) -> Attack:
    """Build an attack spec from a config value.

    ``config`` is a registered name (``"alie"``), a plug-in path
    (``"package.module:Name"``, naming an Attack subclass or a function with the contract
    signature), a dict ``{"name": ..., **params}`` or a spec instance. Unknown names and
    parameters raise ``ValueError`` listing the valid ones.
    """
    if isinstance(config, Attack):
        if params:
            raise ValueError(f"resolve: parameters {sorted(params)} given with a built spec {config!r}.")
        return config
    if isinstance(config, dict):
        config = dict(config)
        if "name" not in config:
            raise ValueError(f"resolve: an attack given as a table needs a 'name' key, got keys {sorted(config)}.")
        return resolve(config.pop("name"), **config, **params)
    if not isinstance(config, str):
        raise ValueError(f"resolve: expected an attack name or table, got {config!r}.")
    cls = _lookup(config)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{cls.name or config}: unknown parameter {unknown[0]!r}.{hint} Valid: {', '.join(sorted(known))}.")
    return cls(**params)


def _lookup(name: str) -> type[Attack]:
    if name in ATTACKS:
        return ATTACKS[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"Cannot load plug-in attack {name!r}: {error}. Use 'package.module:Name'.") from None
        if isinstance(target, type) and issubclass(target, Attack):
            return target
        if callable(target):
            return _spec_from_function(attribute, target)
        raise ValueError(f"Plug-in {name!r} is neither an Attack subclass nor a function.")
    raise _unknown(name, ATTACKS)
