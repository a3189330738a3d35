"""Users' own rules: ``register`` with a function and with a Rule subclass, ``resolve`` of
a ``"module:Name"`` plug-in path, and ``decentral.testing.check_rule`` passing on a
correct user rule and failing on broken ones.

A malformed plug-in fails when registered or resolved, with a ``ValueError`` (a
``TypeError`` for a function without the common signature) that names what is wrong.
The ``scratch_registry`` fixture restores ``AGGREGATORS`` after each test, so
registrations never leak.
"""

import dataclasses
import re
from pathlib import Path
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg
from decentral import testing

REPO = Path(__file__).resolve().parents[1]
DIM = 3
BUILT_IN = frozenset(agg.AGGREGATORS)  # at import, before any test registers anything


@pytest.fixture
def scratch_registry():
    """Whatever a test registers is removed afterwards."""
    before = dict(agg.AGGREGATORS)
    yield agg.AGGREGATORS
    added = set(agg.AGGREGATORS) - set(before)
    agg.AGGREGATORS.clear()
    agg.AGGREGATORS.update(before)
    assert not added & set(agg.AGGREGATORS)


@pytest.fixture
def plugin_path(monkeypatch):
    """Make ``tests.plugin_rules`` importable (tests/ is not a package: the repository root
    on sys.path turns it into a namespace package)."""
    monkeypatch.syspath_prepend(str(REPO))


def shrunk_median(x, *, f=0, mask=None, weights=None, key=None, shrink=0.5):
    """The own vector moved ``shrink`` of the way to the coordinate-wise median."""
    del weights, key
    return x[0] + shrink * (agg.median(x, f=f, mask=mask) - x[0])


@agg.rule_spec
class HalfwayToMedian(agg.Rule):
    """A user's Rule subclass: the own vector moved ``weight`` of the way to the median."""

    weight: float = agg.hyperparameter(0.5, positive=True)
    name: ClassVar[str] = "halfway_to_median"
    min_count = staticmethod(lambda f: 2 * f + 1)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key, count
        return x[0] + self.weight * (agg.median(x, f=f, mask=mask) - x[0])


def test_register_a_function(scratch_registry):
    cls = agg.register("shrunk_median", shrunk_median, min_count=lambda f: 2 * f + 1)
    assert scratch_registry["shrunk_median"] is cls
    spec = agg.resolve("shrunk_median", shrink=0.25)
    assert [field.name for field in dataclasses.fields(spec)] == ["shrink"] and spec.shrink == 0.25
    x = np.random.default_rng(0).normal(size=(5, DIM)).astype(np.float32)
    np.testing.assert_allclose(spec(x, f=2), x[0] + 0.25 * (np.median(x, axis=0) - x[0]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("shrunk_median with f=2 needs an inbox of at least 5 valid rows; got 4. Use f <= 1")):
        spec(x[:4], f=2)
    with pytest.raises(ValueError, match=re.escape("shrunk_median: unknown hyperparameter 'shrnk'. Did you mean 'shrink'?")):
        agg.resolve("shrunk_median", shrnk=0.3)
    with pytest.raises(ValueError, match=re.escape("Did you mean 'shrunk_median'?")):
        agg.resolve("shrunk_medain")
    assert isinstance(agg.resolve(["nnm", "shrunk_median"]), agg.Chain)
    testing.check_rule(spec)


def test_register_a_rule_subclass(scratch_registry):
    assert agg.register("halfway_to_median", HalfwayToMedian) is HalfwayToMedian
    spec = agg.resolve({"name": "halfway_to_median", "weight": 0.75})
    assert spec == HalfwayToMedian(weight=0.75)
    with pytest.raises(ValueError, match=re.escape("halfway_to_median: hyperparameter 'weight' must be > 0, got 0.")):
        agg.resolve("halfway_to_median", weight=0)
    with pytest.raises(ValueError, match=re.escape("halfway_to_median with f=1 needs an inbox of at least 3 valid rows; got 2")):
        spec.check(2, 1)
    testing.check_rule(spec)
    testing.check_rule(spec, inbox_size=8, dim=3, seed=1)


def test_registering_a_taken_name_needs_replace(scratch_registry):
    agg.register("shrunk_median", shrunk_median, min_count=lambda f: 2 * f + 1)
    with pytest.raises(ValueError, match=re.escape("register: rule 'shrunk_median' is already registered; pass replace=True")):
        agg.register("shrunk_median", HalfwayToMedian)
    with pytest.raises(ValueError, match="rule 'median' is already registered"):
        agg.register("median", shrunk_median)
    assert agg.register("shrunk_median", HalfwayToMedian, replace=True) is scratch_registry["shrunk_median"]


def test_registrations_did_not_leak():
    """Runs after the tests above (file order): the fixture removed their names."""
    assert not {"shrunk_median", "halfway_to_median", "broken", "claims_too_much"} & set(agg.AGGREGATORS)
    assert BUILT_IN <= set(agg.AGGREGATORS)


def _positional_hyperparameter(x, f=0, mask=None, weights=None, key=None, radius=1.0):
    return x[0]


def _hyperparameter_without_default(x, *, f=0, mask=None, weights=None, key=None, radius):
    return x[0]


@pytest.mark.parametrize(
    "name, spec, error, message",
    [
        ("my rule", shrunk_median, ValueError, "register: the name must be an identifier-like string, got 'my rule'."),
        ("bare", lambda x: x[0], TypeError, "missing ['f', 'key', 'mask', 'weights']"),
        ("positional", _positional_hyperparameter, TypeError, "hyperparameter 'radius' must be keyword-only with a default"),
        ("no_default", _hyperparameter_without_default, TypeError, "hyperparameter 'radius' must be keyword-only with a default"),
        ("not_callable", 3.0, TypeError, "register: expected a Rule subclass or a function, got 3.0."),
    ],
)
def test_register_rejects_malformed_rules(scratch_registry, name, spec, error, message):
    with pytest.raises(error, match=re.escape(message)):
        agg.register(name, spec)
    assert name not in scratch_registry


def test_plugin_path_to_a_rule_subclass(plugin_path):
    from tests import plugin_rules

    spec = agg.resolve("tests.plugin_rules:Midrange", shrink=0.5)
    assert isinstance(spec, plugin_rules.Midrange) and spec.shrink == 0.5
    assert "plugin_midrange" not in agg.AGGREGATORS and "Midrange" not in agg.AGGREGATORS  # resolving registers nothing
    x = np.random.default_rng(2).normal(size=(7, DIM)).astype(np.float32)
    values = np.sort(x, axis=0)
    midpoint = 0.5 * (values[2] + values[4])  # f=2: the 3rd smallest and the 3rd largest
    np.testing.assert_allclose(spec(x, f=2), x[0] + 0.5 * (midpoint - x[0]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("plugin_midrange with f=3 needs an inbox of at least 7 valid rows; got 6")):
        spec(x[:6], f=3)
    testing.check_rule(agg.resolve("tests.plugin_rules:Midrange"))
    assert isinstance(agg.resolve(["nnm", "tests.plugin_rules:Midrange"]).steps[1], plugin_rules.Midrange)


def test_plugin_path_to_a_function(plugin_path):
    spec = agg.resolve("tests.plugin_rules:midrange", shrink=0.5)
    assert spec.name == "midrange" and spec.shrink == 0.5
    x = np.random.default_rng(3).normal(size=(7, DIM)).astype(np.float32)
    expected = agg.resolve("tests.plugin_rules:Midrange", shrink=0.5)(x, f=2)
    np.testing.assert_allclose(spec(x, f=2), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("midrange: unknown hyperparameter 'shrnik'. Did you mean 'shrink'?")):
        agg.resolve("tests.plugin_rules:midrange", shrnik=0.5)


@pytest.mark.parametrize(
    "path, message",
    [
        ("tests.plugin_rules:NoSuch", "Cannot load plug-in rule 'tests.plugin_rules:NoSuch': module 'tests.plugin_rules' has no attribute 'NoSuch'. Use 'package.module:Name'."),
        ("tests.no_such_module:rule", "Cannot load plug-in rule 'tests.no_such_module:rule': No module named 'tests.no_such_module'"),
        ("tests.plugin_rules:NOT_A_RULE", "Plug-in 'tests.plugin_rules:NOT_A_RULE' is neither a Rule subclass nor a function."),
    ],
)
def test_bad_plugin_paths(plugin_path, path, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.resolve(path)


# Broken user rules, each breaching a different claim; check_rule must catch every one.


def _order_dependent(x, *, f=0, mask=None, weights=None, key=None):
    """The mean of the valid rows, weighted by row position: depends on inbox order."""
    del f, weights, key
    position = jnp.where(mask, jnp.arange(1.0, x.shape[0] + 1.0), 0.0)
    return jnp.sum(jnp.where(mask[:, None], x, 0.0) * position[:, None], axis=0) / jnp.sum(position)


def _ignores_mask(x, *, f=0, mask=None, weights=None, key=None):
    """The coordinate-wise median of every row, padding included."""
    del f, mask, weights, key
    return jnp.median(x, axis=0)


def _not_translation_equivariant(x, *, f=0, mask=None, weights=None, key=None):
    """The median clipped to norm 1 around zero, but claiming translation equivariance."""
    median = agg.median(x, f=f, mask=mask)
    return median * jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(median), 1e-12))


def _plain_mean(x, *, f=0, mask=None, weights=None, key=None):
    """The mean of the valid rows, claiming (by default) to tolerate non-finite rows."""
    del f, weights, key
    return jnp.sum(jnp.where(mask[:, None], x, 0.0), axis=0) / jnp.sum(mask)


@pytest.mark.parametrize(
    "function, breach",
    [
        (_order_dependent, "depends on inbox order"),
        (_ignores_mask, "masked rows filled with"),
        (_not_translation_equivariant, "not translation equivariant"),
        (_plain_mean, "rows of"),
    ],
    ids=["order", "mask", "translation", "nonfinite"],
)
def test_check_rule_catches_a_broken_rule(scratch_registry, function, breach):
    agg.register("broken", function, min_count=lambda f: 2 * f + 1)
    with pytest.raises(AssertionError, match=re.escape(breach)):
        testing.check_rule(agg.resolve("broken"))


def test_check_rule_catches_a_false_robustness_claim(scratch_registry):
    @agg.rule_spec
    class ClaimsTooMuch(agg.Rule):
        name: ClassVar[str] = "claims_too_much"
        min_count = staticmethod(lambda f: 2 * f + 1)
        robustness: ClassVar[str] = "coordinatewise"
        tolerates_nonfinite: ClassVar[bool] = False

        def apply(self, x, *, f, mask, weights, key, count):
            return _plain_mean(x, f=f, mask=mask)

    with pytest.raises(AssertionError, match="leaves the honest coordinate range"):
        testing.check_rule(ClaimsTooMuch())
