"""The public face of ``decentral.aggregators``: each rule's function is derived from its
spec (same defaults, same docstring, so the two cannot drift), the signatures users call,
the order rules are registered and listed in, and ``ops`` as a submodule."""

import dataclasses
import inspect

import numpy as np
import pytest

import decentral.aggregators as agg

BUILT_IN = list(agg.AGGREGATORS)  # at import, before any test registers anything
COMMON = ("x", "f", "mask", "weights", "key")

#: The call signature of every public rule function, as users have called them.
SIGNATURES = {
    "mean": "(x, *, f=0, mask=None, weights=None, key=None)",
    "median": "(x, *, f=0, mask=None, weights=None, key=None)",
    "trimmed_mean": "(x, *, f=0, mask=None, weights=None, key=None)",
    "meamed": "(x, *, f=0, mask=None, weights=None, key=None)",
    "phocas": "(x, *, f=0, mask=None, weights=None, key=None)",
    "krum": "(x, *, f=0, mask=None, weights=None, key=None, variant='paper')",
    "multi_krum": "(x, *, f=0, mask=None, weights=None, key=None, m=None, variant='paper')",
    "bulyan": "(x, *, f=0, mask=None, weights=None, key=None)",
    "geometric_median": "(x, *, f=0, mask=None, weights=None, key=None, iterations=8, smoothing=0.1, start=None, initial='own')",
    "centered_clipping": "(x, *, f=0, mask=None, weights=None, key=None, radius=1.0, iterations=1, start=None)",
    "mda": "(x, *, f=0, mask=None, weights=None, key=None, max_f=None)",
    "mda_greedy": "(x, *, f=0, mask=None, weights=None, key=None)",
    "cge": "(x, *, f=0, mask=None, weights=None, key=None, around='zero')",
    "aksel": "(x, *, f=0, mask=None, weights=None, key=None, mode='mid')",
    "nna": "(x, *, f=0, mask=None, weights=None, key=None)",
    "ios": "(x, *, f=0, mask=None, weights=None, key=None)",
    "clipped_gossip": "(x, *, f=0, mask=None, weights=None, key=None, radius=None)",
    "cs_plus": "(x, *, f=0, mask=None, weights=None, key=None, step_size=1.0)",
    "filter": "(x, *, f=0, mask=None, weights=None, key=None, threshold=2.0)",
    "soft_filter": "(x, *, f=0, mask=None, weights=None, key=None, threshold=2.0)",
    "caf": "(x, *, f=0, mask=None, weights=None, key=None)",
    "que": "(x, *, f=0, mask=None, weights=None, key=None, alpha=4.0, threshold=2.0)",
    "dnc": "(x, *, f=0, mask=None, weights=None, key=None, iterations=1, subsample=10000, fraction=1.0)",
    "smea": "(x, *, f=0, mask=None, weights=None, key=None, max_f=None)",
    "nnm": "(x, *, f=0, mask=None, weights=None, key=None)",
    "arc": "(x, *, f=0, mask=None, weights=None, key=None, around='zero')",
    "clip": "(x, *, f=0, mask=None, weights=None, key=None, radius=1.0, around='zero')",
    "bucketing": "(x, *, f=0, mask=None, weights=None, key=None, size=2)",
}


def test_the_built_in_rules_are_registered_in_their_listing_order():
    assert BUILT_IN == list(SIGNATURES)


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_public_function_is_derived_from_the_spec(name):
    spec, function = agg.AGGREGATORS[name], getattr(agg, name)
    parameters = inspect.signature(function).parameters
    assert list(parameters)[: len(COMMON)] == list(COMMON)
    hyperparameters = {p.name: p.default for p in parameters.values() if p.name not in COMMON}
    assert hyperparameters == {field.name: field.default for field in dataclasses.fields(spec)}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values() if p.name != "x")
    assert function.__doc__ == spec.__doc__ and "Returns:" in spec.__doc__
    assert function.__name__ == spec.name


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_public_signatures_stay_as_they_were(name):
    assert str(inspect.signature(getattr(agg, name))) == SIGNATURES[name]


def test_a_public_function_passes_its_arguments_to_the_spec():
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    spec = agg.resolve("centered_clipping", radius=0.3, iterations=2)
    np.testing.assert_array_equal(agg.centered_clipping(x, f=1, mask=mask, radius=0.3, iterations=2), spec(x, f=1, mask=mask))
    np.testing.assert_array_equal(agg.krum(x=x, f=1, variant="byzfl"), agg.resolve("krum", variant="byzfl")(x, f=1))
    with pytest.raises(TypeError):
        agg.krum(x, 1)  # f is keyword-only
    with pytest.raises(TypeError):
        agg.krum(x, f=1, varaint="byzfl")


def test_ops_is_a_documented_submodule():
    from decentral.aggregators import ops

    assert agg.ops is ops and agg.tie_key is ops.tie_key
    for name in ops.__all__:
        assert getattr(ops, name).__doc__, name
