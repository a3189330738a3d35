"""The attack base class, :func:`apply` over a block of receivers, and the attack registry.

A spec holds an attack's parameters. Numeric ones are pytree data (traced, so sweeping a
scale or the start round never recompiles); structural ones (a variant, a grid size, the
collusion flag) are static. :data:`ATTACKS` lists every registered attack by name;
:func:`register` adds a user's one, :func:`resolve` builds one from a config value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ._registry import FieldChecks, Registry, spec_pytree
from ._registry import spec_field as parameter
from ._view import Context, Graph, View, make_view

#: The default ``stop_round``: never stop.
NEVER = 2**31 - 1

#: NaN is a legitimate value (``large`` may send it); a choices field is checked first.
_CHECKS = FieldChecks("parameter", nan_is_value=True, choices_first=True)


def attack_spec(cls):
    """Make ``cls`` a frozen keyword-only dataclass and a JAX pytree.

    Traced fields are the pytree's children, static ones its auxiliary data. Unflattening
    bypasses ``__init__`` (JAX rebuilds specs with tracers or placeholders), so validation
    runs only when a user builds a spec.
    """
    return spec_pytree(cls, kw_only=True, keyed=True)


# =========================================================================== base class


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attack:
    """Base of every attack spec.

    Subclasses (decorated with :func:`attack_spec`) define ``name`` and
    ``message(key, view, ctx)``, returning the Byzantine vector ``f32[d]`` (the same for
    every Byzantine row) or one per row ``f32[K, d]``; the base class writes it into the
    valid Byzantine slots only, between ``start_round`` (included) and ``stop_round``
    (excluded). Attacks that use the whole population override ``prepare`` (and ``init``
    for memory or graph-derived constants). Data-poisoning attacks state what they poison
    in ``poisons`` and override ``poison``: the engine trains the Byzantine nodes on
    ``poison(x, y, num_classes)`` while ``active(round)``.

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
    #: The parts of the Byzantine nodes' training data the attack poisons, a subset of
    #: ``{"inputs", "labels"}`` (``label_flip``: labels; a backdoor attack poisons inputs
    #: too). Empty: the Byzantine nodes train on their own data, and ``poison`` returns it.
    poisons: ClassVar[frozenset[str]] = frozenset()
    #: The message is random (a key is used).
    randomized: ClassVar[bool] = False
    #: On finite inputs the Byzantine rows are finite.
    finite: ClassVar[bool] = True

    def __post_init__(self):
        _CHECKS.validate(self)

    # ----------------------------------------------------------------- claims per instance

    @property
    def needs_rule(self) -> bool:
        """The attack calls ``ctx.rule`` (optimal modes)."""
        return bool(getattr(self, "optimal", False))

    @property
    def needs_labels(self) -> bool:
        """The scenario's data must have class labels: the attack poisons them."""
        return "labels" in self.poisons

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
          labels: the scenario's data has class labels the attack can poison.
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

    # ----------------------------------------------------------------- rounds and training data

    def active(self, round_):
        """Traced bool: the attack acts in round ``round_``, i.e. ``start_round <= round_ < stop_round``."""
        round_ = jnp.asarray(round_, jnp.int32)
        return (round_ >= self.start_round) & (round_ < self.stop_round)

    def poison(self, x, y, num_classes: int):
        """``(x, y)``: the training data the Byzantine nodes train on while the attack is
        active, from their own inputs ``x`` and int labels ``y`` (``num_classes`` classes).

        Only the parts named in ``poisons`` change; the default returns ``(x, y)`` as given.
        """
        del num_classes
        return x, y

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
        active = self.active(ctx.round)
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


def _function_members(function, own) -> dict:
    """The class attributes of an attack spec calling ``function`` with its fields ``own``."""

    def rewrite(self, key, view, ctx):
        out, out_mask = function(
            key, view.inbox, view.byzantine, view.mask, view.raw_weights, ctx, **{n: getattr(self, n) for n in own}
        )
        return jnp.asarray(out), jnp.asarray(out_mask)

    return {"randomized": True, "rewrite": rewrite}


_ATTACKS = Registry(
    entries=ATTACKS,
    base=Attack,
    decorate=attack_spec,
    checks=_CHECKS,
    noun="attack",
    article="an",
    title="attack",
    listing="Valid attacks",
    contract=("key", "inbox", "byz_slot", "mask", "weights", "ctx"),
    signature="have the signature fn(key, inbox, byz_slot, mask, weights, ctx, **params)",
    members=_function_members,
    unnamed_by_config=True,
)


def register(name: str, spec, *, static: tuple[str, ...] = (), replace: bool = False):
    """Add an attack to :data:`ATTACKS` so configs can name it.

    ``spec`` is an :class:`Attack` subclass (decorated with :func:`attack_spec`), or a
    pure function ``fn(key, inbox, byz_slot, mask, weights, ctx, **params) -> (inbox,
    mask)``; its keyword-only parameters (with defaults) become spec fields, traced
    unless named in ``static`` (Python values that are part of the compiled program;
    changing one recompiles; a number must be an integer) or given a string or bool
    default, and the wrapper still writes only the valid Byzantine slots and honours
    ``start_round``/``stop_round``. A class declares its static fields itself
    (``parameter(..., static=True)``). A ``"module:function"`` plug-in path naming a
    function registered here resolves to the class made here. A name already taken is an
    error unless ``replace=True``. Returns the spec class.
    """
    return _ATTACKS.register(name, spec, replace=replace, static=static)


def resolve(config, **params) -> Attack:
    """Build an attack spec from a config value.

    ``config`` is a registered name (``"alie"``), a plug-in path
    (``"package.module:Name"``, naming an Attack subclass or a function with the contract
    signature), a dict ``{"name": ..., **params}`` or a spec instance. Unknown names and
    parameters raise ``ValueError`` listing the valid ones.
    """
    return _ATTACKS.resolve(config, params, again=resolve)
