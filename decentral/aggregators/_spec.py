"""Rule specs: frozen dataclasses registered as JAX pytrees, and their registry.

A spec holds a rule's hyperparameters. Numeric ones are pytree data (traced, so sweeping a
radius never recompiles); structural ones (iterations, variant) are static. ``f`` is not a
hyperparameter: the engine passes it per node at call time.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._hints import did_you_mean
from ._checks import check_requirement, prepare


def hyperparameter(default, *, static=False, choices=None, minimum=None, positive=False, optional=False):
    """Declare a spec field: ``static`` ones are compile-time constants, others are traced.

    ``choices``/``minimum``/``positive`` are checked when the spec is built from concrete
    values, so a bad config fails before compilation. ``optional`` allows ``None``.
    """
    meta = {"static": static, "choices": choices, "minimum": minimum, "positive": positive, "optional": optional}
    return dataclasses.field(default=default, metadata=meta)


def _validate_field(rule: str, field: dataclasses.Field, value) -> None:
    meta = field.metadata
    if value is None:
        if meta.get("optional"):
            return
        raise ValueError(f"{rule}: hyperparameter {field.name!r} is required (got None).")
    if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
        return  # traced values and arrays (e.g. a starting point) are checked by shape at call time
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            raise ValueError(f"{rule}: {field.name}={value!r} is not one of {list(meta['choices'])}.")
        return
    if isinstance(value, str | bool):
        if meta.get("static"):
            return
        raise ValueError(f"{rule}: hyperparameter {field.name!r} must be a number, got {value!r}.")
    if not np.isscalar(value) and not isinstance(value, np.ndarray | jax.Array):
        raise ValueError(f"{rule}: hyperparameter {field.name!r} must be a number, got {value!r}.")
    if meta.get("positive") and not value > 0:
        raise ValueError(f"{rule}: hyperparameter {field.name!r} must be > 0, got {value!r}.")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ValueError(f"{rule}: hyperparameter {field.name!r} must be >= {meta['minimum']}, got {value!r}.")
    if meta.get("static") and int(value) != value:
        raise ValueError(f"{rule}: hyperparameter {field.name!r} must be an integer, got {value!r}.")


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
    #: "none", "coordinatewise" (within the honest rows' coordinate range),
    #: "selection" (an honest row or an average of honest rows), "geometric_median"
    #: (Minsker's bound), "bounded" (moves at most a stated distance from row 0).
    robustness: ClassVar[str] = "none"
    #: Byzantine rows holding +-1e30, +-inf or NaN leave the output finite.
    tolerates_nonfinite: ClassVar[bool] = True

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _validate_field(self.name, field, getattr(self, field.name))

    def required_count(self, f):
        """Valid rows needed for ``f`` (traced or concrete); instances may depend on fields."""
        return type(self).min_count(f)

    def hyperparameters(self) -> dict[str, Any]:
        """The spec's fields as a dict."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

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
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(fl.name for fl in fields if not fl.metadata.get("static"))
    meta = tuple(fl.name for fl in fields if fl.metadata.get("static"))

    def flatten(spec):
        return [getattr(spec, name) for name in data], tuple(getattr(spec, name) for name in meta)

    def unflatten(aux, children):
        spec = object.__new__(cls)
        for name, value in (*zip(data, children), *zip(meta, aux)):
            object.__setattr__(spec, name, value)
        return spec

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


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

    # Claims of a chain: those every step makes; robustness is the final rule's.
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
        return self.steps[-1].robustness

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

#: Every registered rule and pre-aggregator, by name. Filled by ``_rules.py``.
AGGREGATORS: dict[str, type[Rule]] = {}


def _unknown(kind: str, name: str, valid) -> ValueError:
    return ValueError(f"Unknown {kind} {name!r}.{did_you_mean(name, valid)} Valid names: {', '.join(sorted(valid))}.")


def register(name: str, spec, *, min_count: Callable | None = None, preaggregator: bool = False, replace: bool = False):
    """Add a rule to :data:`AGGREGATORS` so configs can name it.

    ``spec`` is either a :class:`Rule` subclass, or a plain pure function with the common
    signature ``fn(x, *, f=0, mask=None, weights=None, key=None, **hyperparameters)``; its
    keyword-only hyperparameters become traced spec fields (defaults from the function).
    ``min_count(f)`` states the valid rows needed (default 1). A name already taken is an
    error unless ``replace=True``. Returns the spec class.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register: the name must be an identifier-like string, got {name!r}.")
    if name in AGGREGATORS and not replace:
        raise ValueError(f"register: rule {name!r} is already registered; pass replace=True to override it.")
    if isinstance(spec, type) and issubclass(spec, Rule):
        cls = spec
    elif callable(spec):
        cls = _spec_from_function(name, spec, min_count=min_count, preaggregator=preaggregator)
    else:
        raise TypeError(f"register: expected a Rule subclass or a function, got {spec!r}.")
    AGGREGATORS[name] = cls
    return cls


def _spec_from_function(name, function, *, min_count, preaggregator):
    common = {"x", "f", "mask", "weights", "key"}
    params = inspect.signature(function).parameters
    missing = sorted(common - set(params))
    if missing:
        raise TypeError(
            f"register({name!r}): the function must accept the common signature "
            f"fn(x, *, f=0, mask=None, weights=None, key=None, **hyperparameters); missing {missing}."
        )
    extra = [p for p in params.values() if p.name not in common]
    for p in extra:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"register({name!r}): hyperparameter {p.name!r} must be keyword-only with a default.")

    def apply(self, x, *, f, mask, weights, key, count):
        del count
        return function(x, f=f, mask=mask, weights=weights, key=key, **self.hyperparameters())

    namespace = {
        "__annotations__": {p.name: Any for p in extra},
        **{p.name: hyperparameter(p.default, optional=p.default is None, static=isinstance(p.default, str | bool)) for p in extra},
        "name": name,
        "min_count": staticmethod(min_count or (lambda f: 1)),
        "preaggregator": preaggregator,
        "apply": apply,
        "__doc__": function.__doc__,
        "__module__": function.__module__,
    }
    return rule_spec(type(function.__name__.title().replace("_", ""), (Rule,), namespace))


def resolve(config, **hyperparameters) -> Rule:
    """Build a spec from a config value.

    ``config`` is a registered name (``"krum"``), a plug-in path (``"package.module:Name"``,
    naming a Rule subclass or a function with the common signature), a dict
    ``{"name": ..., **hyperparameters}``, a list (a chain of pre-aggregators and a rule,
    each item resolved the same way) or a spec instance. Unknown names and hyperparameters
    raise ``ValueError`` listing the valid ones.
    """
    if isinstance(config, Rule):
        if hyperparameters:
            raise ValueError(f"resolve: hyperparameters {sorted(hyperparameters)} given with a built spec {config!r}.")
        return config
    if isinstance(config, list | tuple):
        if hyperparameters:
            raise ValueError("resolve: give each chain step its own hyperparameters as {'name': ..., ...}.")
        return Chain(steps=tuple(resolve(item) for item in config))
    if isinstance(config, dict):
        config = dict(config)
        if "name" not in config:
            raise ValueError(f"resolve: a rule given as a table needs a 'name' key, got keys {sorted(config)}.")
        return resolve(config.pop("name"), **config, **hyperparameters)
    if not isinstance(config, str):
        raise ValueError(f"resolve: expected a rule name, list or table, got {config!r}.")
    cls = _lookup(config)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise ValueError(f"{cls.name}: unknown hyperparameter {unknown[0]!r}.{did_you_mean(unknown[0], known)} Valid: {valid}.")
    return cls(**hyperparameters)


def _lookup(name: str) -> type[Rule]:
    if name in AGGREGATORS:
        return AGGREGATORS[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"Cannot load plug-in rule {name!r}: {error}. Use 'package.module:Name'.") from None
        if isinstance(target, type) and issubclass(target, Rule):
            return target
        if callable(target):
            return _spec_from_function(attribute, target, min_count=None, preaggregator=False)
        raise ValueError(f"Plug-in {name!r} is neither a Rule subclass nor a function.")
    raise _unknown("aggregation rule", name, AGGREGATORS)
