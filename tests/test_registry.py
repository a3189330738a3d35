"""The registry contract, once for both kinds of spec: aggregation rules
(``decentral.aggregators``) and attacks (``attacks``) register, replace, look up, load
plug-ins, wrap plain functions and flatten as pytrees the same way, each in its own words."""

import dataclasses
import re
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import attacks
import decentral.aggregators as agg

REPO = Path(__file__).resolve().parents[1]


def rule_probe(x, *, f=0, mask=None, weights=None, key=None, radius=1.0, variant="a", start=None):
    """A rule function with a traced, a static and an optional hyperparameter."""
    del f, mask, weights, key, variant, start
    return radius * x[0]


def attack_probe(key, inbox, byz_slot, mask, weights, ctx, *, radius=1.0, variant="a", start=None):
    """An attack function with a traced, a static and an optional parameter."""
    del key, weights, ctx, variant, start
    return jnp.where(byz_slot[:, None], radius * inbox[0], inbox), mask


def bad_rule(x, *, f=0, mask=None, weights=None, key=None, radius):
    return x[0]


def bad_attack(key, inbox, byz_slot, mask, weights, ctx, *, radius):
    return inbox, mask


KINDS = {
    "rule": types.SimpleNamespace(
        package=agg, table=agg.AGGREGATORS, base=agg.Rule, noun="rule", a_noun="a rule", field="hyperparameter",
        unknown="Unknown aggregation rule", listing="Valid names", known="median", typo="medain",
        other=agg.AGGREGATORS["mean"], plugin="tests.plugin_rules", plugin_class="Midrange",
        plugin_function="midrange", probe=rule_probe, bad=bad_rule, base_phrase="a Rule",
        plugin_registered="registered_midrange", registered_name="plugin_registered_midrange", registered_static=(),
    ),
    "attack": types.SimpleNamespace(
        package=attacks, table=attacks.ATTACKS, base=attacks.Attack, noun="attack", a_noun="an attack", field="parameter",
        unknown="Unknown attack", listing="Valid attacks", known="alie", typo="alei",
        other=attacks.ATTACKS["ipm"], plugin="tests.plugin_attacks", plugin_class="Scaled",
        plugin_function="opposite", probe=attack_probe, bad=bad_attack, base_phrase="an Attack",
        plugin_registered="registered_opposite", registered_name="plugin_registered_opposite", registered_static=("scale",),
    ),
}  # fmt: skip


@pytest.fixture(params=sorted(KINDS))
def kind(request, monkeypatch):
    """One kind of spec; whatever a test registers is removed afterwards, and the plug-in
    modules under tests/ are importable."""
    monkeypatch.syspath_prepend(str(REPO))
    kind = KINDS[request.param]
    before = dict(kind.table)
    yield kind
    kind.table.clear()
    kind.table.update(before)


def test_register_replace_and_a_taken_name(kind):
    cls = kind.package.register("probe", kind.probe)
    assert kind.table["probe"] is cls and issubclass(cls, kind.base) and cls.name == "probe"
    message = f"register: {kind.noun} 'probe' is already registered; pass replace=True to override it."
    with pytest.raises(ValueError, match=re.escape(message)):
        kind.package.register("probe", kind.other)
    assert kind.table["probe"] is cls
    assert kind.package.register("probe", kind.other, replace=True) is kind.other
    assert kind.table["probe"] is kind.other
    with pytest.raises(ValueError, match=re.escape(f"register: {kind.noun} {kind.known!r} is already registered")):
        kind.package.register(kind.known, kind.probe)
    with pytest.raises(ValueError, match=re.escape("register: the name must be an identifier-like string, got 'my probe'.")):
        kind.package.register("my probe", kind.probe)
    with pytest.raises(TypeError, match=re.escape(f"register: expected {kind.base_phrase} subclass or a function, got 3.0.")):
        kind.package.register("fresh", 3.0)


def test_unknown_names_suggest_a_close_match(kind):
    with pytest.raises(ValueError, match=re.escape(f"{kind.unknown} {kind.typo!r}. Did you mean {kind.known!r}? {kind.listing}: ")):
        kind.package.resolve(kind.typo)
    with pytest.raises(ValueError, match=re.escape(f"{kind.unknown} 'zzzzzz'. {kind.listing}: ")) as error:
        kind.package.resolve("zzzzzz")
    assert ", ".join(sorted(kind.table)) in str(error.value)
    kind.package.register("probe", kind.probe)
    with pytest.raises(ValueError, match=re.escape(f"probe: unknown {kind.field} 'radiuss'. Did you mean 'radius'? Valid: ")):
        kind.package.resolve("probe", radiuss=1.0)


def test_plugin_paths_to_a_class_and_a_function(kind):
    module = __import__(kind.plugin, fromlist=["_"])
    before = set(kind.table)
    spec = kind.package.resolve(f"{kind.plugin}:{kind.plugin_class}")
    assert type(spec) is getattr(module, kind.plugin_class)
    function_spec = kind.package.resolve(f"{kind.plugin}:{kind.plugin_function}")
    assert isinstance(function_spec, kind.base) and function_spec.name == kind.plugin_function
    assert set(kind.table) == before  # resolving registers nothing
    with pytest.raises(ValueError, match=re.escape(f"Cannot load plug-in {kind.noun} 'no_such_module:Thing'")):
        kind.package.resolve("no_such_module:Thing")
    with pytest.raises(ValueError, match=re.escape(f"Cannot load plug-in {kind.noun} '{kind.plugin}:Nothing'")):
        kind.package.resolve(f"{kind.plugin}:Nothing")
    constant = next(name for name in vars(module) if name.startswith("NOT_"))
    with pytest.raises(ValueError, match=re.escape(f"is neither {kind.base_phrase} subclass nor a function")):
        kind.package.resolve(f"{kind.plugin}:{constant}")


def test_a_registered_functions_path_resolves_to_the_class_register_made(kind):
    """Registered at import of the plug-in module (and removed from the table by the
    fixture): the path still reaches that class, not a fresh one named after the function."""
    path = f"{kind.plugin}:{kind.plugin_registered}"
    spec = kind.package.resolve(path)
    assert spec.name == kind.registered_name and type(kind.package.resolve(path)) is type(spec)
    fields = {field.name: field for field in dataclasses.fields(spec)}
    assert all(fields[name].metadata["static"] for name in kind.registered_static)


def test_static_names_make_static_fields(kind):
    cls = kind.package.register("probe", kind.probe, static=("radius",))
    assert next(field for field in dataclasses.fields(cls) if field.name == "radius").metadata["static"]
    call = jax.jit(lambda spec: spec.radius * jnp.ones(()))
    for radius in (1, 1, 2):
        assert float(call(kind.package.resolve("probe", radius=radius))) == radius
    assert call._cache_size() == 2  # a static field is part of the compiled program
    with pytest.raises(ValueError, match=re.escape(f"probe: {kind.field} 'radius' must be an integer, got 2.5.")):
        kind.package.resolve("probe", radius=2.5)
    message = (
        f"register('probe2'): static names 'radiu', which is not a {kind.field} of the function. "
        f"Did you mean 'radius'? Its {kind.field}s: radius, variant, start."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        kind.package.register("probe2", kind.probe, static=("radiu",))
    with pytest.raises(TypeError, match=re.escape("register('probe2'): static takes a tuple of names, e.g. static=('radius',)")):
        kind.package.register("probe2", kind.probe, static="radius")
    with pytest.raises(TypeError, match=re.escape(f"{kind.field}(..., static=True) fields; remove static= from the call")):
        kind.package.register("probe2", kind.other, static=("radius",))
    assert "probe2" not in kind.table


def test_a_function_becomes_a_spec(kind):
    cls = kind.package.register("probe", kind.probe)
    assert cls.__name__ == {"rule": "RuleProbe", "attack": "AttackProbe"}[kind.noun]
    assert cls.__doc__ == kind.probe.__doc__ and cls.__module__ == __name__
    fields = {field.name: field for field in dataclasses.fields(cls)}
    assert {"radius", "variant", "start"} <= set(fields)
    assert not fields["radius"].metadata["static"] and fields["variant"].metadata["static"]
    assert fields["start"].metadata["optional"] and fields["start"].default is None
    spec = kind.package.resolve({"name": "probe", "radius": 2.0})
    assert (spec.radius, spec.variant, spec.start) == (2.0, "a", None)
    with pytest.raises(ValueError, match=re.escape(f"probe: {kind.field} 'radius' must be a number, got 'far'.")):
        kind.package.resolve("probe", radius="far")
    with pytest.raises(TypeError, match=re.escape(f"{kind.field} 'radius' must be keyword-only with a default")):
        kind.package.register("bad", kind.bad)
    with pytest.raises(TypeError, match=re.escape("register('bare'): the function must ")):
        kind.package.register("bare", lambda z: z)
    assert "bad" not in kind.table and "bare" not in kind.table


def test_static_fields_are_aux_data_and_traced_fields_leaves(kind):
    kind.package.register("probe", kind.probe)
    spec = kind.package.resolve("probe", radius=2.0, variant="b")
    leaves, treedef = jax.tree_util.tree_flatten(spec)
    fields = dataclasses.fields(spec)
    traced = [field.name for field in fields if not field.metadata["static"]]
    static = [field.name for field in fields if field.metadata["static"]]
    assert "radius" in traced and "variant" in static
    assert leaves == [getattr(spec, name) for name in traced if getattr(spec, name) is not None]
    node_type, aux = treedef.node_data()
    assert node_type is type(spec) and aux == tuple(getattr(spec, name) for name in static)
    assert jax.tree_util.tree_unflatten(treedef, leaves) == spec
    doubled = jax.tree_util.tree_map(lambda leaf: 2 * leaf, spec)
    assert type(doubled) is type(spec) and doubled.radius == 4.0 and doubled.variant == "b"
    assert jax.tree_util.tree_structure(kind.package.resolve("probe", radius=3.0, variant="b")) == treedef
    assert jax.tree_util.tree_structure(kind.package.resolve("probe", radius=2.0)) != treedef


def test_a_traced_field_does_not_recompile_and_a_static_one_does(kind):
    kind.package.register("probe", kind.probe)
    call = jax.jit(lambda spec: spec.radius * 1.0)
    for radius in (1.0, 2.0, 3.0):
        assert float(call(kind.package.resolve("probe", radius=radius))) == radius
    assert call._cache_size() == 1
    call(kind.package.resolve("probe", variant="b"))
    assert call._cache_size() == 2


def test_a_built_spec_and_a_table(kind):
    spec = kind.package.resolve(kind.known)
    assert kind.package.resolve(spec) is spec
    with pytest.raises(ValueError, match=re.escape(f"resolve: {kind.field}s ['x'] given with a built spec")):
        kind.package.resolve(spec, x=1)
    with pytest.raises(ValueError, match=re.escape(f"resolve: {kind.a_noun} given as a table needs a 'name' key, got keys ['x'].")):
        kind.package.resolve({"x": 1})
    assert kind.package.resolve({"name": kind.known}) == spec


@pytest.mark.parametrize("name", ["trimed_mean", "krun", "Mean", "zzz", "", "alei", "sign-flip", "topolgy"])
def test_decentral_close_match_hints_are_the_registrys(name):
    """decentral._hints keeps a JAX-free copy of the registry's hint (see its docstring)."""
    from attacks import _registry
    from decentral import _hints

    valid = [*agg.AGGREGATORS, *attacks.ATTACKS, "topology", "placement"]
    assert _hints.did_you_mean(name, valid) == _registry.did_you_mean(name, valid)
