"""Spec registries: frozen dataclasses registered as JAX pytrees, and the name -> class
tables configs pick them from.

One implementation for every kind of spec (attacks here, aggregation rules in
``decentral.aggregators``): the field constructor and its checks, the decorator that makes
a spec class a pytree (traced fields as children, static ones as auxiliary data), and a
:class:`Registry` that registers classes or plain functions, loads ``"package.module:Name"``
plug-ins (a registered function's path reaches the class made for it) and builds a spec
from a config value. Each kind passes its own words ("rule" or
"attack", "hyperparameter" or "parameter") so that messages name what the user wrote.

A leaf module: numpy and JAX only (``attacks`` never imports ``decentral``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

# =========================================================================== close matches


def did_you_mean(name, valid) -> str:
    """``" Did you mean 'x'?"`` for the entry of ``valid`` closest to ``name``; "" when none is close."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name(title: str, name, valid, listing: str) -> ValueError:
    """``Unknown <title> 'name'. Did you mean ...? <listing>: a, b, c.``"""
    return ValueError(f"Unknown {title} {name!r}.{did_you_mean(name, valid)} {listing}: {', '.join(sorted(valid))}.")


def build(cls, params: dict, *, label: str, noun: str):
    """``cls(**params)`` for a dataclass spec; a parameter it lacks raises a ValueError
    (``<label>: unknown <noun> 'x'.``) with the close match and the valid names."""
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise ValueError(f"{label}: unknown {noun} {unknown[0]!r}.{did_you_mean(unknown[0], known)} Valid: {valid}.")
    return cls(**params)


def build_from_registry(kind: str, registry: dict, name, params: dict):
    """``registry[name](**params)`` for a dataclass spec; an unknown name or parameter raises a
    ValueError naming it (``kind`` says what it is, e.g. "model"), the close match and the valid ones."""
    if not isinstance(name, str) or name not in registry:
        raise unknown_name(kind, name, registry, "Valid")
    return build(registry[name], params, label=f"{kind} {name}", noun="parameter")


# =========================================================================== fields


def spec_field(default, *, static=False, choices=None, minimum=None, positive=False, optional=False):
    """Declare a spec field: ``static`` ones are compile-time constants, others are traced.

    ``choices``/``minimum``/``positive`` are checked when the spec is built from concrete
    values, so a bad config fails before compilation. ``optional`` allows ``None``.
    """
    meta = {"static": static, "choices": choices, "minimum": minimum, "positive": positive, "optional": optional}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class FieldChecks:
    """How one kind of spec checks its fields' values when a user builds a spec.

    Attributes:
      noun: what a field is called in messages ("hyperparameter", "parameter").
      nan_is_value: NaN skips the sign, range and integer checks (an attack may send NaN).
      choices_first: a field with ``choices`` is checked against them before arrays and
        traced values are let through; otherwise those pass unchecked.
    """

    noun: str
    nan_is_value: bool = False
    choices_first: bool = False

    def validate(self, spec) -> None:
        """Raise ``ValueError`` for the first field of ``spec`` whose value its declaration rejects."""
        for field in dataclasses.fields(spec):
            self.validate_field(spec.name, field, getattr(spec, field.name))

    def validate_field(self, owner: str, field: dataclasses.Field, value) -> None:
        meta = field.metadata
        if value is None:
            if meta.get("optional"):
                return
            raise ValueError(f"{owner}: {self.noun} {field.name!r} is required (got None).")
        if self.choices_first and _is_a_choice(owner, field, value):
            return
        if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
            return  # traced values and arrays (e.g. a starting point) are checked by shape at call time
        if _is_a_choice(owner, field, value):
            return
        if isinstance(value, str | bool):
            if meta.get("static"):
                return
            raise ValueError(f"{owner}: {self.noun} {field.name!r} must be a number, got {value!r}.")
        if not np.isscalar(value) and not isinstance(value, np.ndarray | jax.Array):
            raise ValueError(f"{owner}: {self.noun} {field.name!r} must be a number, got {value!r}.")
        if self.nan_is_value and np.isnan(value):
            return
        if meta.get("positive") and not value > 0:
            raise ValueError(f"{owner}: {self.noun} {field.name!r} must be > 0, got {value!r}.")
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise ValueError(f"{owner}: {self.noun} {field.name!r} must be >= {meta['minimum']}, got {value!r}.")
        if meta.get("static") and int(value) != value:
            raise ValueError(f"{owner}: {self.noun} {field.name!r} must be an integer, got {value!r}.")


def _is_a_choice(owner: str, field: dataclasses.Field, value) -> bool:
    """Whether ``field`` lists its choices; raises ``ValueError`` when ``value`` is not one of them."""
    choices = field.metadata.get("choices")
    if choices is None:
        return False
    if value not in choices:
        raise ValueError(f"{owner}: {field.name}={value!r} is not one of {list(choices)}.")
    return True


# =========================================================================== pytrees


def spec_pytree(cls, *, kw_only: bool, keyed: bool):
    """Make ``cls`` a frozen dataclass and a JAX pytree: traced fields are its children,
    static ones (``spec_field(static=True)``) its auxiliary data.

    Registered per class (not with ``register_dataclass``), so that two spec classes with
    the same fields have different tree structures. ``kw_only``: the constructor takes
    keywords only. ``keyed``: children carry their field names as key paths
    (``GetAttrKey``); otherwise they are numbered. Unflattening bypasses ``__init__`` (JAX
    rebuilds specs with tracers or placeholders), so validation runs only when a user
    builds a spec.
    """
    cls = dataclasses.dataclass(frozen=True, kw_only=kw_only)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(field.name for field in fields if not field.metadata.get("static"))
    meta = tuple(field.name for field in fields if field.metadata.get("static"))

    def flatten(spec):
        return tuple(getattr(spec, name) for name in data), tuple(getattr(spec, name) for name in meta)

    def flatten_with_keys(spec):
        children = tuple((jax.tree_util.GetAttrKey(name), getattr(spec, name)) for name in data)
        return children, tuple(getattr(spec, name) for name in meta)

    def unflatten(aux, children):
        spec = object.__new__(cls)
        for name, value in (*zip(data, children), *zip(meta, aux)):
            object.__setattr__(spec, name, value)
        return spec

    if keyed:
        jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    else:
        jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


# =========================================================================== registry


def _static_names(owner: str, static, names: list[str], noun: str) -> frozenset[str]:
    """``static`` (names of a function's parameters ``names``) as a set; raise when it names
    something else."""
    if isinstance(static, str):
        raise TypeError(f"register({owner!r}): static takes a tuple of names, e.g. static=({static!r},); got {static!r}.")
    for item in static:
        if item not in names:
            valid = ", ".join(names) or "none"
            raise ValueError(
                f"register({owner!r}): static names {item!r}, which is not a {noun} of the function."
                f"{did_you_mean(item, names)} Its {noun}s: {valid}."
            )
    return frozenset(static)


def load_plugin(path: str, noun: str):
    """The object a ``"package.module:Name"`` plug-in path names (imported on demand).

    Raises:
      ValueError: the module cannot be imported or has no such name.
    """
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Cannot load plug-in {noun} {path!r}: {error}. Use 'package.module:Name'.") from None


@dataclasses.dataclass(frozen=True)
class Registry:
    """The name -> spec-class table of one kind of spec, and how configs reach it.

    Attributes:
      entries: the table itself (the kind's public dict, e.g. ``ATTACKS``).
      base: the kind's base class; plug-ins must subclass it.
      decorate: the kind's spec decorator (a :func:`spec_pytree` setting), applied to the
        classes built from functions.
      checks: the kind's :class:`FieldChecks` (its ``noun`` names fields in messages).
      noun, article: the kind in messages ("rule", "a"; "attack", "an").
      title: the kind in "Unknown <title> 'x'" ("aggregation rule").
      listing: what precedes the valid names in that message ("Valid names").
      contract: the arguments a registered function must take (its other parameters,
        keyword-only with defaults, become fields); missing ones are listed in this order.
      signature: completes "the function must ..." when some are missing.
      members: ``members(function, own, **options) -> dict``: the class attributes of a
        spec built from ``function`` (the method calling it with the fields ``own``, and
        the claims ``register``'s ``options`` set; the kind checks their values).
      sequence: ``sequence(items, params) -> spec`` for a list config (rules: a chain),
        or None when a list is no config of this kind.
      unnamed_by_config: a class without a ``name`` is called by its config value in the
        unknown-parameter message (otherwise by its empty name).
      made: for each function ``register`` was given (by ``id``), the function and the
        class its latest registration made, kept when its name is replaced or removed:
        a plug-in path naming the function resolves to that class.
    """

    entries: dict
    base: type
    decorate: Callable[[type], type]
    checks: FieldChecks
    noun: str
    article: str
    title: str
    listing: str
    contract: tuple[str, ...]
    signature: str
    members: Callable[..., dict]
    sequence: Callable[..., Any] | None = None
    unnamed_by_config: bool = False
    made: dict[int, tuple[Callable, type]] = dataclasses.field(default_factory=dict)

    def register(self, name: str, spec, *, replace: bool = False, static=(), **options):
        """Add ``spec`` (a subclass of ``base``, or a function) under ``name``; return its class.

        For a function, ``static`` names the parameters that become static fields and
        ``options`` are the kind's claims (``members``'s keywords, only those the caller
        gave). A class states both itself: passing either with one is a ``TypeError``.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"register: the name must be an identifier-like string, got {name!r}.")
        if name in self.entries and not replace:
            raise ValueError(f"register: {self.noun} {name!r} is already registered; pass replace=True to override it.")
        if isinstance(spec, type) and issubclass(spec, self.base):
            if static or options:
                raise self._stated_by_the_class(name, [*options, *(["static"] if static else [])])
            cls = spec
        elif callable(spec):
            cls = self.from_function(name, spec, static=static, **options)
            self.made[id(spec)] = (spec, cls)
        else:
            raise TypeError(f"register: expected {self.article} {self.base.__name__} subclass or a function, got {spec!r}.")
        self.entries[name] = cls
        return cls

    def _stated_by_the_class(self, name: str, given: list[str]) -> TypeError:
        """The error for claims or static names passed with a class, which states its own."""
        keywords = ", ".join(f"{keyword}=" for keyword in given)
        return TypeError(
            f"register({name!r}): {self.article} {self.base.__name__} subclass states its claims as class attributes "
            f"and its static {self.checks.noun}s as {self.checks.noun}(..., static=True) fields; "
            f"remove {keywords} from the call (or register a function instead)."
        )

    def from_function(self, name: str, function, *, static=(), **options) -> type:
        """A spec class calling ``function``: its keyword-only parameters (with defaults)
        become fields, traced unless named in ``static`` or a string or bool default makes
        them static."""
        params = inspect.signature(function).parameters
        missing = [arg for arg in self.contract if arg not in params]
        if missing:
            raise TypeError(f"register({name!r}): the function must {self.signature}; missing {missing}.")
        extra = [p for p in params.values() if p.name not in self.contract]
        for p in extra:
            if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
                raise TypeError(f"register({name!r}): {self.checks.noun} {p.name!r} must be keyword-only with a default.")
        static = _static_names(name, static, [p.name for p in extra], self.checks.noun)
        namespace = {
            "__annotations__": {p.name: Any for p in extra},
            **{
                p.name: spec_field(
                    p.default, optional=p.default is None, static=p.name in static or isinstance(p.default, str | bool)
                )
                for p in extra
            },
            "name": name,
            **self.members(function, tuple(p.name for p in extra), **options),
            "__doc__": function.__doc__,
            "__module__": function.__module__,
        }
        return self.decorate(type(function.__name__.title().replace("_", ""), (self.base,), namespace))

    def made_for(self, function) -> type | None:
        """The class ``register`` made for ``function`` (its latest registration), or None."""
        made = self.made.get(id(function))
        return made[1] if made is not None and made[0] is function else None

    def lookup(self, name: str) -> type:
        """The class a registered name or a ``"package.module:Name"`` plug-in path names.

        A path naming a function passed to ``register`` gives the class made for it (its
        claims and static fields included); any other function gets a fresh class with
        none of them (the kind's defaults), named after the function.
        """
        if name in self.entries:
            return self.entries[name]
        if ":" in name:
            target = load_plugin(name, self.noun)
            attribute = name.partition(":")[2]
            if isinstance(target, type) and issubclass(target, self.base):
                return target
            if callable(target):
                return self.made_for(target) or self.from_function(attribute, target)
            raise ValueError(f"Plug-in {name!r} is neither {self.article} {self.base.__name__} subclass nor a function.")
        raise unknown_name(self.title, name, self.entries, self.listing)

    def resolve(self, config, params: dict, again: Callable):
        """A spec from a config value: a built spec (then ``params`` must be empty), a list
        (when the kind has a ``sequence``), a table ``{"name": ..., **params}`` or a name.

        ``again`` is the kind's public ``resolve(config, **params)``: a table's name is
        resolved through it, its keys passed as keyword arguments as if given by hand.
        """
        if isinstance(config, self.base):
            if params:
                raise ValueError(f"resolve: {self.checks.noun}s {sorted(params)} given with a built spec {config!r}.")
            return config
        if self.sequence is not None and isinstance(config, list | tuple):
            return self.sequence(config, params)
        if isinstance(config, dict):
            config = dict(config)
            if "name" not in config:
                raise ValueError(
                    f"resolve: {self.article} {self.noun} given as a table needs a 'name' key, got keys {sorted(config)}."
                )
            return again(config.pop("name"), **config, **params)
        if not isinstance(config, str):
            forms = "name, list or table" if self.sequence is not None else "name or table"
            raise ValueError(f"resolve: expected {self.article} {self.noun} {forms}, got {config!r}.")
        cls = self.lookup(config)
        label = (cls.name or config) if self.unnamed_by_config else cls.name
        return build(cls, params, label=label, noun=self.checks.noun)
