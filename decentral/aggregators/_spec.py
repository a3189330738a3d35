"""Rule specs: the base class, chains, and the registry of rules (:data:`AGGREGATORS`).

Specs are frozen dataclasses registered as JAX pytrees; the field checks, the pytree
registration and the registry's machinery are shared with attacks (``attacks._registry``).

A spec holds a rule's hyperparameters. Numeric ones are pytree data (traced, so sweeping a
radius never recompiles); structural ones (iterations, variant) are static. ``f`` is not a
hyperparameter: the engine passes it per node at call time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from attacks._registry import FieldChecks, Registry, did_you_mean, spec_pytree
from attacks._registry import spec_field as hyperparameter

from ._checks import check_requirement, prepare

_CHECKS = FieldChecks("hyperparameter")

#: The robustness a rule may claim (its ``robustness``), and what the contract suite's
#: breakdown test (``decentral.testing.check_breakdown``) then asks of its output against
#: f Byzantine rows, far away, inside the honest range, on its edge or crafted against a
#: claim (h_i: the honest rows, x_0 = h_0 the own vector, K the valid rows). The claims
#: are not a ladder: a coordinate-wise range says nothing of a distance to x_0, and the
#: other way round.
ROBUSTNESS_CLAIMS: dict[str, str] = {
    "none": "no claim: the breakdown test is skipped",
    "coordinatewise": "each output coordinate within the honest rows' range of that coordinate",
    "coordinatewise_widened": "each output coordinate within the honest rows' range of that coordinate widened by its width "
    "on each side, [2 low - high, 2 high - low]",
    "selection": "an honest row or an average of honest rows, a convex combination of them (tested as: within the honest "
    "coordinate range, which holds them)",
    "near_honest": "an average of valid rows near the honest ones: within sqrt(K) * D of the honest rows' convex hull, D "
    "their diameter (tested as: of their coordinate range, which holds the hull)",
    "geometric_median": "within Minsker's bound (1 - a) / sqrt(1 - 2a) * max_i |h_i - mean| of the honest mean, a = f / K",
    "bounded": "at most 2 * max_i |h_i - x_0| + 1 from the own vector x_0",
}

#: The claims stated by True or False (class attributes of :class:`Rule`, keywords of :func:`register`).
_BOOLEAN_CLAIMS = ("preaggregator", "uses_key", "order_invariant", "translation_equivariant", "tolerates_nonfinite")


def _where(inbox_size: int, node: int | None) -> str:
    if node is None:
        return ""
    return f" at node {node} (inbox size {inbox_size} = degree {inbox_size - 1} + itself)"


class Rule:
    """Base of every aggregation-rule spec.

    Subclasses are frozen dataclasses (use :func:`rule_spec`) defining ``name``,
    ``apply(x, *, f, mask, weights, key, count)`` on a prepared inbox, and ``min_count``.
    Class attributes state what the rule claims; the contract suite checks each claim.
    """

    name: ClassVar[str] = ""
    #: ``min_count(f)``: valid rows the rule needs to tolerate f Byzantine rows.
    min_count: ClassVar[Callable[[Any], Any]] = staticmethod(lambda f: 1)
    preaggregator: ClassVar[bool] = False
    uses_key: ClassVar[bool] = False
    order_invariant: ClassVar[bool] = True
    translation_equivariant: ClassVar[bool] = True
    #: One of :data:`ROBUSTNESS_CLAIMS`.
    robustness: ClassVar[str] = "none"
    #: Byzantine rows holding +-1e30, +-inf or NaN leave the output finite.
    tolerates_nonfinite: ClassVar[bool] = True
    #: Pre-aggregators: every valid row it returns but at most f is an honest row or an
    #: average of honest rows, so a rule after it keeps its robustness claim (in a chain).
    keeps_honest_rows: ClassVar[bool] = False

    def __post_init__(self):
        _CHECKS.validate(self)

    def required_count(self, f):
        """Valid rows needed for ``f`` (traced or concrete); instances may depend on fields."""
        return type(self).min_count(f)

    def hyperparameters(self) -> dict[str, Any]:
        """The spec's fields as a dict."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def with_largest_f(self, f: int) -> Rule:
        """This spec for a run whose largest f is ``f`` (a Python int, known before
        compiling). Rules whose compiled search depends on it (``mda``, ``smea``: the
        subsets they enumerate) return a copy bound to it; others return themselves."""
        del f
        return self

    def output_count(self, count: int) -> int:
        """Valid rows left after this step (pre-aggregators that merge rows override it)."""
        return count

    def check(self, inbox_size: int, f: int, *, node: int | None = None) -> None:
        """Raise ``ValueError`` when an inbox of ``inbox_size`` rows cannot tolerate ``f``."""
        check_requirement(self.name, self.required_count, inbox_size, f, _where(inbox_size, node))

    def apply(self, x, *, f, mask, weights, key, count):
        raise NotImplementedError

    def __call__(self, x, *, f=0, mask=None, weights=None, key=None):
        """Aggregate one inbox ``x: f32[K, d]`` (row 0 = own vector) into ``f32[d]``.

        Pre-aggregators return ``(x, mask, weights)`` instead.
        """
        x, f, mask, count = prepare(x, f, mask, weights, rule=self.name, min_count=self.required_count)
        if self.uses_key and key is None:
            raise ValueError(f"{self.name} is randomized and needs key=jax.random.key(...).")
        out = self.apply(x, f=f, mask=mask, weights=weights, key=key, count=count)
        ok = count >= self.required_count(f)
        if self.preaggregator:
            new_x, new_mask, new_weights = out
            old_weights = jnp.where(mask, 1.0, 0.0) if weights is None else jnp.asarray(weights, jnp.float32)
            return (
                jnp.where(ok, new_x, x),
                jnp.where(ok, new_mask, mask),
                jnp.where(ok, new_weights, old_weights),
            )
        return jnp.where(ok, out, x[0])


def rule_spec(cls):
    """Make ``cls`` a frozen dataclass and a JAX pytree (static fields as aux data).

    Registered with ``register_pytree_node`` so that two rule classes with the same fields
    have different tree structures (``register_dataclass`` tree definitions compare equal
    across such classes, so ``lax.cond`` could silently pick the wrong rule).
    Unflattening bypasses ``__init__``: validation runs on concrete values only.
    """
    return spec_pytree(cls, kw_only=False, keyed=False)


# --------------------------------------------------------------------------- chains


@rule_spec
class Chain(Rule):
    """Pre-aggregators applied in order, then a rule (config: ``["nnm", "trimmed_mean"]``)."""

    steps: tuple = hyperparameter(())
    name: ClassVar[str] = "chain"

    def __post_init__(self):
        if not self.steps:
            raise ValueError("chain: needs at least one step, e.g. ['nnm', 'trimmed_mean'].")
        *pre, last = self.steps
        for step in pre:
            if not step.preaggregator:
                raise ValueError(
                    f"chain: {step.name!r} is a rule, not a pre-aggregator; only the last step may be a rule "
                    f"(pre-aggregators: {sorted(n for n, c in AGGREGATORS.items() if c.preaggregator)})."
                )
        if last.preaggregator:
            raise ValueError(f"chain: the last step must be a rule, got pre-aggregator {last.name!r}.")

    @property
    def label(self) -> str:
        return "+".join(step.name for step in self.steps)

    # Claims of a chain: those every step makes; robustness is the final rule's where the
    # pre-aggregators keep the honest rows honest, else none.
    @property
    def uses_key(self):  # type: ignore[override]
        return any(step.uses_key for step in self.steps)

    @property
    def order_invariant(self):  # type: ignore[override]
        return all(step.order_invariant for step in self.steps)

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return all(step.translation_equivariant for step in self.steps)

    @property
    def tolerates_nonfinite(self):  # type: ignore[override]
        return all(step.tolerates_nonfinite for step in self.steps)

    @property
    def robustness(self):  # type: ignore[override]
        """The final rule's claim if every pre-aggregator keeps honest rows (bucketing):
        the claim is about the rows the rule receives, and a pre-aggregator that mixes
        Byzantine rows into honest ones (nnm) or moves honest rows (clip, arc) makes
        them other rows than the honest ones; then "none"."""
        *pre, last = self.steps
        return last.robustness if all(step.keeps_honest_rows for step in pre) else "none"

    def with_largest_f(self, f: int) -> Rule:
        return dataclasses.replace(self, steps=tuple(step.with_largest_f(f) for step in self.steps))

    def required_count(self, f):
        """Smallest inbox that passes every step (concrete f; steps may shrink the count)."""
        needed = 1
        while not self._fits(needed, f):
            needed += 1
        return needed

    def _fits(self, count, f):
        for step in self.steps:
            if count < step.required_count(f):
                return False
            count = step.output_count(count)
        return True

    def check(self, inbox_size: int, f: int, *, node: int | None = None) -> None:
        count = inbox_size
        for step in self.steps:
            check_requirement(f"{self.label} (step {step.name})", step.required_count, count, f, _where(inbox_size, node))
            count = step.output_count(count)

    def __call__(self, x, *, f=0, mask=None, weights=None, key=None):
        """Each step in turn; if any step lacks the rows it needs, the node's own vector."""
        own, _, _, _ = prepare(x, f, mask, weights, rule=self.label, min_count=lambda g: 1)
        own = own[0]
        keys = [None] * len(self.steps) if key is None else list(jax.random.split(key, len(self.steps)))
        enough = True
        for step, step_key in zip(self.steps[:-1], keys):
            count = jnp.sum(jnp.ones(jnp.shape(x)[0], bool) if mask is None else jnp.asarray(mask))
            enough = enough & (count >= step.required_count(f))
            x, mask, weights = step(x, f=f, mask=mask, weights=weights, key=step_key)
        last = self.steps[-1]
        enough = enough & (jnp.sum(jnp.asarray(mask)) >= last.required_count(f))
        return jnp.where(enough, last(x, f=f, mask=mask, weights=weights, key=keys[-1]), own)


# --------------------------------------------------------------------------- registry

#: Every registered rule and pre-aggregator, by name. Filled by ``_builtin.py``.
AGGREGATORS: dict[str, type[Rule]] = {}


def _function_members(function, own, *, min_count: Callable | None = None, **claims) -> dict:
    """The class attributes of a rule spec calling ``function`` with its hyperparameters:
    ``apply``, and the claims ``register`` was given (the others keep :class:`Rule`'s defaults)."""
    del own  # every field of such a spec is one of the function's hyperparameters

    def apply(self, x, *, f, mask, weights, key, count):
        del count
        return function(x, f=f, mask=mask, weights=weights, key=key, **self.hyperparameters())

    members = {"apply": apply, **claims}
    if min_count is not None:
        members["min_count"] = staticmethod(min_count)
    return members


def _given_claims(name: str, **claims) -> dict:
    """The claims given to ``register`` (those not None), each checked; raise otherwise.

    Raises:
      ValueError: a robustness not in :data:`ROBUSTNESS_CLAIMS`, or a boolean claim that is
        not True or False.
      TypeError: a ``min_count`` that is not a function.
    """
    given = {claim: value for claim, value in claims.items() if value is not None}
    robustness = given.get("robustness", "none")
    if robustness not in tuple(ROBUSTNESS_CLAIMS):  # a tuple: an unhashable value is unknown too
        allowed = ", ".join(map(repr, ROBUSTNESS_CLAIMS))
        raise ValueError(
            f"register({name!r}): unknown robustness claim {robustness!r}.{did_you_mean(robustness, ROBUSTNESS_CLAIMS)} "
            f"Allowed: {allowed} (their meaning: decentral.aggregators.ROBUSTNESS_CLAIMS)."
        )
    for claim in _BOOLEAN_CLAIMS:
        if claim in given and not isinstance(given[claim], bool):
            raise ValueError(f"register({name!r}): {claim} must be True or False, got {given[claim]!r}.")
    if "min_count" in given and not callable(given["min_count"]):
        raise TypeError(
            f"register({name!r}): min_count must be a function of f, e.g. min_count=lambda f: 2 * f + 1; "
            f"got {given['min_count']!r}."
        )
    return given


def _chain(items, hyperparameters: dict) -> Chain:
    """A list config: each item resolved on its own, the last one a rule."""
    if hyperparameters:
        raise ValueError("resolve: give each chain step its own hyperparameters as {'name': ..., ...}.")
    return Chain(steps=tuple(resolve(item) for item in items))


_RULES = Registry(
    entries=AGGREGATORS,
    base=Rule,
    decorate=rule_spec,
    checks=_CHECKS,
    noun="rule",
    article="a",
    title="aggregation rule",
    listing="Valid names",
    contract=("f", "key", "mask", "weights", "x"),  # alphabetical: missing ones are listed sorted
    signature="accept the common signature fn(x, *, f=0, mask=None, weights=None, key=None, **hyperparameters)",
    members=_function_members,
    sequence=_chain,
)


def register(
    name: str,
    spec,
    *,
    min_count: Callable | None = None,
    robustness: str | None = None,
    tolerates_nonfinite: bool | None = None,
    order_invariant: bool | None = None,
    translation_equivariant: bool | None = None,
    uses_key: bool | None = None,
    static: tuple[str, ...] = (),
    preaggregator: bool = False,
    replace: bool = False,
):
    """Add a rule to :data:`AGGREGATORS` so configs can name it; return its spec class.

    ``spec`` is either a :class:`Rule` subclass, which states its claims as class
    attributes (passing any claim or ``static`` with one is a ``TypeError``), or a plain
    pure function with the common signature ``fn(x, *, f=0, mask=None, weights=None,
    key=None, **hyperparameters)``, whose keyword-only hyperparameters become spec fields
    (defaults from the function). For a function:

    - ``min_count(f)``: the valid rows it needs to tolerate f Byzantine ones (default 1);
    - ``robustness``: one of :data:`ROBUSTNESS_CLAIMS` (default ``"none"``);
      ``tolerates_nonfinite``, ``order_invariant``, ``translation_equivariant`` (default
      True), ``uses_key`` (a randomized rule receives a PRNG key; default False): the
      claims the contract suite tests, as on :class:`Rule`; None keeps Rule's default;
    - ``static``: names of hyperparameters that become static fields (Python values that
      are part of the compiled program, e.g. an iteration count for ``range``; changing
      one recompiles; a number must be an integer). The others are traced, except that a
      string or bool default makes a hyperparameter static;
    - ``preaggregator=True``: it returns ``(x, mask, weights)`` and goes in front of a rule.

    A ``"module:function"`` plug-in path naming a function registered here resolves to the
    class made here, its claims included. A name already taken is an error unless
    ``replace=True``.

    Raises:
      ValueError: a taken name, an unknown claim value (the message lists the allowed
        ones), or a ``static`` name that is not one of the function's hyperparameters.
      TypeError: a malformed function, or claims or ``static`` given with a Rule subclass.
    """
    claims = _given_claims(
        name,
        min_count=min_count,
        robustness=robustness,
        tolerates_nonfinite=tolerates_nonfinite,
        order_invariant=order_invariant,
        translation_equivariant=translation_equivariant,
        uses_key=uses_key,
        preaggregator=preaggregator or None,  # False is the default, not a claim given
    )
    return _RULES.register(name, spec, replace=replace, static=static, **claims)


def resolve(config, **hyperparameters) -> Rule:
    """Build a spec from a config value.

    ``config`` is a registered name (``"krum"``), a plug-in path (``"package.module:Name"``,
    naming a Rule subclass, a function passed to :func:`register` (its class, claims
    included) or any other function with the common signature (no claims, min_count 1)), a dict
    ``{"name": ..., **hyperparameters}``, a list (a chain of pre-aggregators and a rule,
    each item resolved the same way) or a spec instance. Unknown names and hyperparameters
    raise ``ValueError`` listing the valid ones.
    """
    return _RULES.resolve(config, hyperparameters, again=resolve)
