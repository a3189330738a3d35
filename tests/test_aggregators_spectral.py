"""The covariance primitives of ``decentral.aggregators.ops`` (``centered_gram``,
``top_eigenpairs``, ``covariance_spectrum``, ``usable_rows``) against numpy in d x d,
their derivatives, and the worked example of a user's spectral filter written on them
(tests/plugin_spectral_filter.py), which must equal the built-in ``filter``.

The rules themselves are compared with their plain-numpy references in
tests/test_aggregators_robust_statistics.py.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg
from decentral import testing
from decentral.aggregators import ops

REPO = Path(__file__).resolve().parents[1]
SHAPES = [(5, 3), (11, 500), (20, 30)]  # K = 20 > ops.PAIRWISE_MAX takes the Gram path


def _inbox(rng, size, dim, *, masked=1, fill=np.nan):
    x = (rng.normal(size=(size, dim)) * rng.uniform(0.5, 3, size=dim) + 4).astype(np.float32)
    mask = np.ones(size, bool)
    mask[size - masked :] = False
    x[~mask] = fill
    return x, mask


def _numpy_covariance(x, weights):
    """``(mu, Sigma)`` of the rows with positive weight, in float64, d x d."""
    keep = weights > 0
    share = weights[keep] / weights[keep].sum()
    mu = share @ x[keep].astype(np.float64)
    centred = x[keep].astype(np.float64) - mu
    return mu, (share[:, None] * centred).T @ centred


@pytest.mark.parametrize("size,dim", SHAPES)
def test_centered_gram_is_the_gram_of_the_rows_centred_at_their_weighted_mean(size, dim):
    rng = np.random.default_rng(size + dim)
    x, mask = _inbox(rng, size, dim)
    weights = np.where(mask, rng.uniform(0, 2, size), 0.0).astype(np.float32)
    weights[1] = 0.0  # a valid row outside the mean still gets its entries
    geometry = ops.inbox_geometry(jnp.asarray(x), jnp.asarray(mask))
    gram = np.asarray(ops.centered_gram(geometry.distances, jnp.asarray(weights)))
    mu, _ = _numpy_covariance(x, weights)
    centred = np.where(mask[:, None], x.astype(np.float64) - mu, 0.0)
    expected = centred @ centred.T
    np.testing.assert_allclose(gram, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_rows_at_an_infinite_distance_get_zero_gram_entries_and_are_not_usable():
    rng = np.random.default_rng(0)
    x, mask = _inbox(rng, 7, 4, masked=0)
    x[3] = np.inf
    x[5, 2] = 1e30  # finite, but its squared distance overflows float32
    geometry = ops.inbox_geometry(jnp.asarray(x), jnp.asarray(mask))
    usable = np.asarray(ops.usable_rows(geometry, jnp.asarray(mask)))
    assert usable.tolist() == [True, True, True, False, True, False, True]
    gram = np.asarray(ops.centered_gram(geometry.distances, jnp.asarray(usable, jnp.float32)))
    assert np.all(np.isfinite(gram)) and not gram[[3, 5]].any() and not gram[:, [3, 5]].any()
    mu, _ = _numpy_covariance(x, usable.astype(np.float64))
    centred = x[usable].astype(np.float64) - mu
    np.testing.assert_allclose(gram[np.ix_(usable, usable)], centred @ centred.T, rtol=1e-4, atol=1e-4)


def test_top_eigenpairs_are_numpys_in_decreasing_order():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(9, 9))
    matrix = (a @ a.T).astype(np.float32)
    values, vectors = ops.top_eigenpairs(jnp.asarray(matrix), 3)
    expected_values, expected_vectors = np.linalg.eigh(matrix.astype(np.float64))
    np.testing.assert_allclose(values, expected_values[::-1][:3], rtol=1e-5)
    for m in range(3):  # eigenvectors up to sign
        np.testing.assert_allclose(abs(np.dot(vectors[:, m], expected_vectors[:, -1 - m])), 1.0, rtol=1e-5)


@pytest.mark.parametrize("size,dim", SHAPES)
def test_covariance_spectrum_equals_the_d_by_d_eigendecomposition(size, dim):
    rng = np.random.default_rng(7 * size + dim)
    x, mask = _inbox(rng, size, dim)
    weights = np.where(mask, rng.uniform(0.1, 1, size), 0.0).astype(np.float32)
    geometry = ops.inbox_geometry(jnp.asarray(x), jnp.asarray(mask))
    gram = ops.centered_gram(geometry.distances, jnp.asarray(weights))
    values, projections = ops.covariance_spectrum(gram, jnp.asarray(weights), 3)
    mu, sigma = _numpy_covariance(x, weights)
    expected_values, vectors = np.linalg.eigh(sigma)
    np.testing.assert_allclose(values, expected_values[::-1][:3], rtol=1e-4)
    expected = (x[mask].astype(np.float64) - mu) @ vectors[:, ::-1][:, :3]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(np.abs(np.asarray(projections)[mask]), np.abs(expected), atol=1e-4 * scale)


def test_a_zero_eigenvalue_gets_zero_projections():
    x = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    mask = np.ones(4, bool)
    geometry = ops.inbox_geometry(jnp.asarray(x), jnp.asarray(mask))
    weights = jnp.ones(4)
    values, projections = ops.covariance_spectrum(ops.centered_gram(geometry.distances, weights), weights, 2)
    np.testing.assert_allclose(values, [1.0, 0.0], atol=1e-6)  # two points at distance 2: variance 1
    np.testing.assert_allclose(np.abs(projections[:, 0]), 1.0, rtol=1e-6)
    assert not np.asarray(projections[:, 1]).any()


def test_the_top_eigenvalue_differentiates_forward_through_the_portable_code():
    """A directional derivative (forward mode; the distance pass has no reverse mode)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    direction = rng.normal(size=(6, 5)).astype(np.float32)
    mask = jnp.ones(6, bool)

    def top(x):
        weights = jnp.ones(6)
        distances = ops.inbox_geometry(x, mask).distances
        return ops.covariance_spectrum(ops.centered_gram(distances, weights), weights)[0][0]

    _, derivative = jax.jvp(top, (jnp.asarray(x),), (jnp.asarray(direction),))
    _, sigma = _numpy_covariance(x, np.ones(6))
    vector = np.linalg.eigh(sigma)[1][:, -1]
    centred = x.astype(np.float64) - x.astype(np.float64).mean(0)
    expected = 2.0 / 6.0 * np.sum((centred @ vector) * (direction @ vector))  # d lambda = (2/n) sum (v.y_i)(v.u_i)
    np.testing.assert_allclose(float(derivative), expected, rtol=1e-3)


# --------------------------------------------------------------------------- the worked example


@pytest.fixture
def user_filter(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    return agg.resolve("tests.plugin_spectral_filter:SpectralFilter")


def _attacked_inboxes(rng, nodes, size, dim):
    xs = rng.normal(size=(nodes, size, dim)).astype(np.float32)
    f = (size - 1) // 2
    xs[:, size - f :] += rng.normal(size=(nodes, f, dim)).astype(np.float32) * rng.uniform(0.5, 6, size=(nodes, f, 1))
    return xs, f


@pytest.mark.parametrize("size,dim", [(7, 5), (11, 300)])
def test_the_users_filter_equals_the_built_in_filter(user_filter, size, dim):
    rng = np.random.default_rng(size)
    built_in = agg.resolve("filter")
    xs, f = _attacked_inboxes(rng, 6, size, dim)
    masks = np.ones((6, size), bool)
    masks[::2, -1] = False  # some inboxes lost a row
    fs = np.array([f, f - 1, f - 1, 0, f - 1, 1], np.int32)
    call = jax.jit(jax.vmap(lambda spec, x, f, m: spec(x, f=f, mask=m), in_axes=(None, 0, 0, 0)))
    np.testing.assert_array_equal(call(user_filter, xs, fs, masks), call(built_in, xs, fs, masks))
    for x, node_f in zip(xs, fs):
        np.testing.assert_array_equal(user_filter(x, f=int(node_f)), built_in(x, f=int(node_f)))


def test_the_users_filter_passes_the_contract_suite(user_filter):
    testing.check_rule(user_filter)
    testing.check_rule(user_filter, inbox_size=11, dim=40, seed=1)


# --------------------------------------------------------------------------- exact subset rules


def test_exact_mda_on_a_21_row_inbox_equals_the_reference():
    """Only the removals of f rows are searched (7,547 candidates at K = 21, f <= 4)."""
    import reference_aggregators as ref

    rng = np.random.default_rng(21)
    x = rng.normal(size=(21, 6)).astype(np.float32)
    x[[4, 9, 15]] += rng.normal(size=(3, 6)).astype(np.float32) * 5
    mask = np.ones(21, bool)
    mask[-1] = False
    for f in (1, 3):
        np.testing.assert_allclose(agg.mda(x, f=f, mask=mask), ref.mda(x, f, mask), rtol=1e-5, atol=1e-6)
    jitted = jax.jit(lambda x, f, m: agg.mda(x, f=f, mask=m, max_f=4))(x, 3, mask)
    np.testing.assert_allclose(jitted, ref.mda(x, 3, mask), rtol=1e-5, atol=1e-6)


def test_the_engine_binds_subset_rules_to_the_runs_largest_f():
    from decentral import engine
    from decentral.scenario import scenario_from_dict

    assert agg.resolve("mda").with_largest_f(2).max_f == 2
    assert agg.resolve("mda", max_f=3).with_largest_f(2).max_f == 3  # a given bound stays
    chain = agg.resolve(["nnm", "smea"]).with_largest_f(1)
    assert chain.steps[-1].max_f == 1 and chain.steps[0] == agg.resolve("nnm")
    assert agg.resolve("krum").with_largest_f(2) == agg.resolve("krum")
    scenario = scenario_from_dict(
        {
            "network": {"topology": "random_regular", "params": {"n": 12, "degree": 6}},
            "placement": {"strategy": "random", "count": 2},
            "defense": {"aggregator": ["nnm", "smea"], "f": 2},
            "run": {"task": "averaging", "dim": 4, "rounds": 2, "eval_every": 2},
        }
    )
    assert engine.build(scenario).rule.steps[-1].max_f == 2


def test_an_exact_tie_in_scores_is_decided_by_value_not_by_row_order():
    """Three valid rows whose projections on the top eigenvector tie exactly (rows 0 and
    4: 5.5 each in float64); float32 rounding alone would decide by the rows' order."""
    x = np.array([[-1, -1, 1], [1e6] * 3, [1e6] * 3, [0, 3, 3], [2, 2, -1]], np.float32)
    mask = np.array([True, False, False, True, True])
    perm = np.array([0, 1, 2, 4, 3])
    call = jax.jit(lambda spec, x, f, mask, key: spec(x, f=f, mask=mask, key=key))  # f traced, as in the engine
    for name in ("dnc", "filter", "que"):
        spec = agg.resolve(name)
        key = jax.random.key(0) if spec.uses_key else None
        base = call(spec, x, 1, mask, key)
        np.testing.assert_array_equal(call(spec, x[perm], 1, mask[perm], key), base, err_msg=name)
        np.testing.assert_array_equal(spec(x[perm], f=1, mask=mask[perm], key=key), base, err_msg=name)
