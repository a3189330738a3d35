"""Users' own rules: ``register`` with a function (its claims and static hyperparameters
as keywords) and with a Rule subclass, ``resolve`` of a ``"module:Name"`` plug-in path
(a registered function's path keeps its min_count and claims), and
``decentral.testing.check_rule`` passing on a correct user rule and failing on broken
ones, over its default cases and over those it is given.

A malformed plug-in fails when registered or resolved, with a ``ValueError`` (a
``TypeError`` for a function without the common signature) that names what is wrong.
The ``scratch_registry`` fixture restores ``AGGREGATORS`` after each test, so
registrations never leak.
"""

import dataclasses
import re
from pathlib import Path
from typing import ClassVar

import jax
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
def plugin_path(monkeypatch, scratch_registry):
    """Make ``tests.plugin_rules`` importable (tests/ is not a package: the repository root
    on sys.path turns it into a namespace package); the rule it registers when first
    imported is removed afterwards, like any other (its path still resolves to its class)."""
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


# Claims and static hyperparameters given to register with a function.


def test_claims_default_to_the_rule_base_class(scratch_registry):
    cls = agg.register("plain", shrunk_median)
    claims = ("robustness", "tolerates_nonfinite", "order_invariant", "translation_equivariant", "uses_key", "preaggregator")
    assert {claim: getattr(cls, claim) for claim in claims} == {claim: getattr(agg.Rule, claim) for claim in claims}
    assert cls().required_count(3) == 1


def test_register_sets_the_claims_of_a_function(scratch_registry):
    cls = agg.register(
        "shrunk_median", shrunk_median, min_count=lambda f: 2 * f + 1, robustness="coordinatewise", tolerates_nonfinite=True,
        order_invariant=True, translation_equivariant=True, uses_key=False,
    )  # fmt: skip
    assert (cls.robustness, cls.tolerates_nonfinite, cls().required_count(2)) == ("coordinatewise", True, 5)
    testing.check_rule(cls(shrink=0.5))  # with its breakdown check: within the honest range for shrink <= 1


def test_a_false_claim_made_with_register_fails_check_rule(scratch_registry):
    agg.register(
        "claims_too_much", _plain_mean, min_count=lambda f: 2 * f + 1, robustness="coordinatewise", tolerates_nonfinite=False
    )
    with pytest.raises(AssertionError, match="leaves the honest coordinate range"):
        testing.check_rule(agg.resolve("claims_too_much"))


def _randomized_row(x, *, f=0, mask=None, weights=None, key=None):
    """A valid row drawn at random (a randomized rule: it needs the key)."""
    del f, weights
    return x[jax.random.choice(key, x.shape[0], p=mask / jnp.sum(mask))]


def test_uses_key_hands_a_randomized_rule_its_key(scratch_registry):
    spec = agg.register("random_row", _randomized_row, uses_key=True)()
    x = np.random.default_rng(5).normal(size=(5, DIM)).astype(np.float32)
    with pytest.raises(ValueError, match=re.escape("random_row is randomized and needs key=jax.random.key(...).")):
        spec(x)
    assert any(np.array_equal(spec(x, key=jax.random.key(0)), row) for row in x)


@pytest.mark.parametrize(
    "claims, error, message",
    [
        (
            {"robustness": "strong"}, ValueError,
            "register('claimed'): unknown robustness claim 'strong'. Allowed: 'none', 'coordinatewise', 'coordinatewise_widened', "
            "'selection', 'near_honest', 'geometric_median', 'bounded' (their meaning: decentral.aggregators.ROBUSTNESS_CLAIMS).",
        ),
        ({"robustness": "coordinatwise"}, ValueError, "unknown robustness claim 'coordinatwise'. Did you mean 'coordinatewise'? Allowed: "),
        ({"tolerates_nonfinite": "yes"}, ValueError, "register('claimed'): tolerates_nonfinite must be True or False, got 'yes'."),
        ({"uses_key": 1}, ValueError, "register('claimed'): uses_key must be True or False, got 1."),
        ({"min_count": 3}, TypeError, "register('claimed'): min_count must be a function of f, e.g. min_count=lambda f: 2 * f + 1; got 3."),
    ],
    ids=["robustness", "close-robustness", "bool", "int-for-bool", "min_count"],
)  # fmt: skip
def test_register_rejects_unknown_claim_values(scratch_registry, claims, error, message):
    with pytest.raises(error, match=re.escape(message)):
        agg.register("claimed", shrunk_median, **claims)
    assert "claimed" not in scratch_registry


def test_the_allowed_robustness_claims_are_those_check_rule_knows():
    assert tuple(agg.ROBUSTNESS_CLAIMS) == (
        "none", "coordinatewise", "coordinatewise_widened", "selection", "near_honest", "geometric_median", "bounded",
    )  # fmt: skip
    assert {cls.robustness for cls in agg.AGGREGATORS.values()} <= set(agg.ROBUSTNESS_CLAIMS)
    spec = agg.resolve("median")
    object.__setattr__(spec, "robustness", "strong")
    with pytest.raises(AssertionError, match=re.escape("median: unknown robustness claim 'strong'; allowed: 'none', 'coordinatewise'")):
        testing.check_breakdown(spec)


@pytest.mark.parametrize("keywords", [{"robustness": "selection"}, {"min_count": lambda f: f + 1}, {"static": ("weight",)}])
def test_a_rule_subclass_refuses_claims_given_to_register(scratch_registry, keywords):
    message = (
        "register('halfway_to_median'): a Rule subclass states its claims as class attributes and its static "
        f"hyperparameters as hyperparameter(..., static=True) fields; remove {next(iter(keywords))}= from the call"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        agg.register("halfway_to_median", HalfwayToMedian, **keywords)
    assert "halfway_to_median" not in scratch_registry


def _halving(x, *, f=0, mask=None, weights=None, key=None, iterations=2):
    """The own vector moved halfway to the coordinate-wise median, ``iterations`` times (a Python loop)."""
    del weights, key
    median, out = agg.median(x, f=f, mask=mask), x[0]
    for _ in range(iterations):
        out = 0.5 * (out + median)
    return out


def test_a_static_hyperparameter_is_part_of_the_compiled_program(scratch_registry):
    cls = agg.register("halving", _halving, static=("iterations",), min_count=lambda f: 2 * f + 1, robustness="coordinatewise")
    assert dataclasses.fields(cls)[0].metadata["static"]
    x = np.random.default_rng(6).normal(size=(5, DIM)).astype(np.float32)
    call = jax.jit(lambda spec, x: spec(x, f=1))
    for iterations in (2, 2, 3):
        expected = x[0] + (1 - 0.5**iterations) * (np.median(x, axis=0) - x[0])
        np.testing.assert_allclose(call(cls(iterations=iterations), x), expected, rtol=1e-5, atol=1e-6)
    assert call._cache_size() == 2  # a new iteration count recompiled, the same one did not
    with pytest.raises(ValueError, match=re.escape("halving: hyperparameter 'iterations' must be an integer, got 2.5.")):
        agg.resolve("halving", iterations=2.5)
    testing.check_rule(cls(iterations=3))
    traced = agg.register("traced_halving", _halving)  # without static=: a traced field, no Python loop over it
    with pytest.raises(jax.errors.TracerIntegerConversionError):
        call(traced(), x)


def test_static_must_name_hyperparameters_of_the_function(scratch_registry):
    message = (
        "register('halving'): static names 'iteration', which is not a hyperparameter of the function. "
        "Did you mean 'iterations'? Its hyperparameters: iterations."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.register("halving", _halving, static=("iteration",))
    assert "halving" not in scratch_registry


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
    """A function never registered: a fresh spec named after it, without claims (min_count 1)."""
    spec = agg.resolve("tests.plugin_rules:midrange", shrink=0.5)
    assert spec.name == "midrange" and spec.shrink == 0.5
    assert spec.required_count(2) == 1 and spec.robustness == "none"
    x = np.random.default_rng(3).normal(size=(7, DIM)).astype(np.float32)
    expected = agg.resolve("tests.plugin_rules:Midrange", shrink=0.5)(x, f=2)
    np.testing.assert_allclose(spec(x, f=2), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("midrange: unknown hyperparameter 'shrnik'. Did you mean 'shrink'?")):
        agg.resolve("tests.plugin_rules:midrange", shrnik=0.5)


def test_plugin_path_to_a_registered_function_keeps_its_min_count_and_claims(plugin_path):
    spec = agg.resolve("tests.plugin_rules:registered_midrange", shrink=0.5)
    assert spec.name == "plugin_registered_midrange" and spec.robustness == "coordinatewise"
    x = np.random.default_rng(4).normal(size=(4, DIM)).astype(np.float32)
    with pytest.raises(ValueError, match=re.escape("plugin_registered_midrange with f=2 needs an inbox of at least 5 valid rows; got 4")):
        spec(x, f=2)
    assert agg.resolve(["nnm", "tests.plugin_rules:registered_midrange"]).steps[1].required_count(2) == 5
    testing.check_rule(spec)  # its claim brings the breakdown check


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


@pytest.mark.parametrize(
    "function, claims",
    [
        (_order_dependent, {"order_invariant": False, "tolerates_nonfinite": False}),
        (_not_translation_equivariant, {"translation_equivariant": False}),
        (_plain_mean, {"tolerates_nonfinite": False}),
    ],
    ids=["order", "translation", "nonfinite"],
)
def test_honest_claims_given_to_register_pass_check_rule(scratch_registry, function, claims):
    """The broken rules above, registered claiming only what they do: check_rule skips the rest."""
    agg.register("honest", function, min_count=lambda f: 2 * f + 1, **claims)
    testing.check_rule(agg.resolve("honest"))


# check_rule's cases: the default ones catch rules that break only off the single old case.


def _ignores_mask_at_high_dimension(x, *, f=0, mask=None, weights=None, key=None):
    """The coordinate-wise median, of every row (padding included) when d >= 1000."""
    del weights, key
    return agg.median(x, f=f, mask=None if x.shape[1] >= 1000 else mask)


def _ignores_mask_on_an_outlier(x, *, f=0, mask=None, weights=None, key=None):
    """The coordinate-wise median, of every row (padding included) when the own vector has
    a coordinate below -2: the padding check's inbox at seed 2 has one, at seeds 0 and 1 not."""
    del weights, key
    return jnp.where(jnp.any(x[0] < -2), agg.median(x, f=f), agg.median(x, f=f, mask=mask))


@pytest.mark.parametrize(
    "function, broken_case",
    [(_ignores_mask_at_high_dimension, "inbox_size=7, dim=1000, seed=0"), (_ignores_mask_on_an_outlier, "inbox_size=7, dim=5, seed=2")],
    ids=["dimension", "seed"],
)
def test_the_default_cases_catch_a_rule_broken_off_the_single_case(scratch_registry, function, broken_case):
    spec = agg.register("broken", function, min_count=lambda f: 2 * f + 1)()
    testing.check_rule(spec, inbox_size=7, dim=5, seed=0)  # the single case check_rule ran before
    testing.check_rule(spec, seeds=(0, 1), inbox_sizes=(7, 8))
    where, breach = re.escape(f"check_padding_invariance({broken_case}): "), re.escape("broken: masked rows filled with")
    with pytest.raises(AssertionError, match=f"(?s){where}.*{breach}"):
        testing.check_rule(spec)


def test_check_rule_runs_the_cases_it_is_given(scratch_registry):
    shapes = set()

    def recording_median(x, *, f=0, mask=None, weights=None, key=None):
        """The coordinate-wise median, noting the inbox shapes it is called with."""
        del weights, key
        shapes.add(x.shape)
        return agg.median(x, f=f, mask=mask)

    spec = agg.register("recording", recording_median, min_count=lambda f: 2 * f + 1)()
    testing.check_rule(spec, inbox_sizes=(9,), dims=(2, 4))
    assert {(9, 2), (9, 4)} <= shapes and {d for _, d in shapes} == {2, 4} and min(k for k, _ in shapes) == 9
    assert testing.cases(inbox_size=8, dim=3, seed=1) == [(check, {"inbox_size": 8, "dim": 3, "seed": 1}) for check in testing.CHECKS]
    given = testing.cases(seeds=(3, 4), dim=2)
    assert [case["seed"] for _, case in given] == [3] * len(testing.CHECKS) + [4] * len(testing.CHECKS)
    assert {(case["inbox_size"], case["dim"]) for _, case in given} == {(7, 2)}


def test_check_rules_default_cases_are_those_its_docstring_states():
    plan = testing.cases()
    runs = {}
    for check, case in plan:
        runs.setdefault((case["inbox_size"], case["dim"], case["seed"]), []).append(check)
    every, values = list(testing.CHECKS), list(testing.VALUE_CHECKS)
    assert runs == {(7, 5, 0): every, (7, 5, 1): every, (7, 5, 2): every, (8, 5, 0): values, (7, 1000, 0): values}
    assert testing.cases(checks=(testing.check_breakdown,)) == [(check, case) for check, case in plan if check is testing.check_breakdown]


@pytest.mark.parametrize(
    "keywords, error, message",
    [
        ({"seed": 1, "seeds": (2,)}, TypeError, "check_rule: give seed= or seeds=, not both."),
        ({"dims": ()}, ValueError, "check_rule: dims= is empty; give at least one dim."),
        ({"checks": (print,)}, ValueError, "check_rule: checks= takes checks of decentral.testing.CHECKS, got <built-in function print>."),
    ],
)
def test_check_rule_refuses_conflicting_cases(keywords, error, message):
    with pytest.raises(error, match=re.escape(message)):
        testing.check_rule(agg.resolve("median"), **keywords)
