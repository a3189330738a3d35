"""The native CPU kernels (``decentral/aggregators/_native.cc``) against the rules'
portable JAX code, and how they are built.

The reference tests (``test_aggregators_reference.py``) run every rule on CPU through the
kernels where they build, at small d (3, 16). Here the kernels meet the portable code at
dimensions that exercise every loop of the C++ (several 512-column blocks, 64- and
16-lane steps, a scalar tail), on inboxes holding NaN, inf, 1e30 and duplicated rows,
vmapped, with operands batched along some vmap axes and not others. Agreement is up to
float32 summation order: the kernels sum in a different order (in double across
blocks), so ``RTOL``.
"""

import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg
from decentral.aggregators import _checks, _native, iterative, ops

RTOL = 2e-5
DIMS = (5, 1037)  # 1037 = 2 blocks of 512 + 13: 64-lane steps, a 16-lane step, a tail

pytestmark = pytest.mark.skipif(not _native.available(), reason="the native kernels are not built here (no C++ compiler)")


@pytest.fixture(autouse=True)
def _on_the_cpu():
    """The kernels exist for the CPU only: on a machine with a GPU, run these tests on
    its CPU (the rules themselves run their portable code on the GPU)."""
    with jax.default_device(jax.devices("cpu")[0]):
        yield


def test_the_kernels_build_wherever_a_compiler_is_found():
    assert _native._compiler() is not None
    assert _native.available()
    assert list(_native.library_path(_native._compiler()).parent.glob("kernels-*.so"))


def _inboxes(nodes, size, dim, seed=0):
    """Random inboxes with the adversarial rows every kernel must pass through unchanged:
    a NaN entry, an inf entry, a 1e30 row, a duplicate of row 1, an all-zero row."""
    x = np.random.default_rng(seed).normal(size=(nodes, size, dim)).astype(np.float32)
    if size >= 6:
        x[0, 2, dim // 2] = np.nan
        x[1, 3, 0] = np.inf
        x[1, 4] = 1e30
        x[2, 5] = x[2, 1]
        x[2, 2] = 0.0
    return jnp.asarray(x)


def _key_tolerance(x):
    """Per row, ``1e-4 sum_k |x_k u_k|``: tie keys are sums of d terms of both signs,
    whose float32 rounding grows with the terms, not with their sum."""
    magnitudes = np.nan_to_num(np.abs(np.asarray(x, np.float64)), posinf=0.0)
    return 1e-4 * magnitudes @ np.abs(np.asarray(ops.tie_direction(x.shape[-1]), np.float64))


def _assert_close(native, portable, tolerance=None):
    """Same finite entries (same booleans), equal within ``tolerance`` (default: ``RTOL``
    times ``max(|portable|, 1)``)."""
    native, portable = np.asarray(native), np.asarray(portable)
    if native.dtype == bool:
        np.testing.assert_array_equal(native, portable)
        return
    np.testing.assert_array_equal(np.isfinite(native), np.isfinite(portable))
    if tolerance is None:
        tolerance = RTOL * np.maximum(np.abs(portable), 1.0)
    finite = np.isfinite(native)
    assert np.all(np.abs(native[finite] - portable[finite]) <= np.broadcast_to(tolerance, native.shape)[finite])


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("size", [2, 11, 16])
def test_pair_sums_and_keys_match_the_portable_code(size, dim):
    x = _inboxes(4, size, dim)
    native = jax.jit(jax.vmap(ops._native_geometry_sums))(x)
    portable = jax.jit(jax.vmap(ops._portable_geometry_sums))(x)
    for a, b, tolerance in zip(native, portable, (None, _key_tolerance(x), None)):
        _assert_close(a, b, tolerance)


def _distances_and_keys(center_kind, native):
    """``distances_and_keys`` by one path, for a center given as None, a vector or zero."""
    function = ops._native_distances_and_keys if native else ops._portable_distances_and_keys

    def one(x, center):
        return function(x, {"own": None, "vector": center, "zero": jnp.zeros_like(center)}[center_kind])

    return one


@pytest.mark.parametrize("center_kind", ["own", "vector", "zero"])
@pytest.mark.parametrize("dim", DIMS)
def test_distances_and_keys_match_the_portable_code(center_kind, dim):
    x = _inboxes(4, 11, dim)
    centers = jnp.asarray(np.random.default_rng(1).normal(size=(4, dim)), jnp.float32)
    results = [jax.jit(jax.vmap(_distances_and_keys(center_kind, native)))(x, centers) for native in (True, False)]
    for a, b, tolerance in zip(*results, (None, _key_tolerance(x))):
        _assert_close(a, b, tolerance)


def test_operands_batched_along_different_vmap_axes_broadcast():
    """Outer vmap over 3 'seeds' (inboxes and centers batched), inner vmap over 4 nodes
    (inboxes batched, one center per seed), and the reverse (one inbox, many centers)."""
    x = _inboxes(12, 7, 600).reshape(3, 4, 7, 600)
    centers = jnp.asarray(np.random.default_rng(2).normal(size=(3, 600)), jnp.float32)
    per_node = jax.vmap(_distances_and_keys("vector", True), in_axes=(0, None))
    got = jax.jit(jax.vmap(per_node))(x, centers)
    one = _distances_and_keys("vector", False)
    expected = [[one(x[s, n], centers[s]) for n in range(4)] for s in range(3)]
    for part, tolerance in enumerate((None, _key_tolerance(x))):
        _assert_close(got[part], np.array([[e[part] for e in row] for row in expected]), tolerance)
    many_centers = jax.jit(jax.vmap(_distances_and_keys("vector", True), in_axes=(None, 0)))(x[0, 0], centers)
    for s in range(3):
        _assert_close(many_centers[0][s], ops._portable_distances_and_keys(x[0, 0], centers[s])[0])


def _reweighted_rule(kind, native, start, iterations):
    """One node's ``kind`` iterations by the kernel or by the portable loop."""
    portable = {_native.WEISZFELD: iterative._weiszfeld, _native.CLIPPING: iterative._clipping_steps}[kind]

    def one(x, weights, parameter):
        if native:
            return _native.reweighted(x, weights, start, parameter, iterations=iterations, kind=kind)
        return portable(x, weights, x[0] if start is None else start, parameter, iterations)

    return one


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("from_own", [True, False])
@pytest.mark.parametrize("kind", [_native.WEISZFELD, _native.CLIPPING])
@pytest.mark.parametrize("dim", DIMS)
def test_iterative_rules_match_the_portable_code(kind, from_own, iterations, dim):
    x = _inboxes(4, 11, dim)
    weights = np.full((4, 11), 1 / 11, np.float32)
    weights[1, 6] = 0.0  # a masked row holding NaN: its zero weight keeps it out
    x = x.at[1, 6].set(jnp.nan)
    start = None if from_own else jnp.linspace(-0.5, 0.5, dim, dtype=jnp.float32)
    parameter = jnp.asarray([0.1, 0.5, 2.0, 30.0], jnp.float32)  # a smoothing or a radius per node
    results = [
        jax.jit(jax.vmap(_reweighted_rule(kind, native, start, iterations)))(x, jnp.asarray(weights), parameter)
        for native in (True, False)
    ]
    _assert_close(*results)


@pytest.mark.parametrize("dim", DIMS)
def test_outlier_scissor_matches_the_portable_code(dim):
    """IOS with a traced f per node (0 to 3), masked rows, non-finite rows trusted or not,
    and identical far rows of different weights (the heavier one goes first)."""
    x = np.array(_inboxes(4, 9, dim))
    x[1, 7] = x[1, 8] = 40.0  # identical far copies
    x[2, 5] = np.nan  # masked below
    x[3, 6] = np.inf  # trusted: removed first
    weights = np.random.default_rng(5).uniform(0.5, 1.5, size=(4, 9)).astype(np.float32)
    weights[1, 8] = 3.0
    mask = np.ones((4, 9), bool)
    mask[2, 5] = mask[0, 3] = False
    f = jnp.asarray([0, 1, 1, 3], jnp.int32)  # node 1 keeps one of its two copies
    inputs = (jnp.asarray(x), jnp.asarray(weights), mask, f)

    def one(native):
        def ios(x, weights, mask, f):
            weights = _checks.normalized_weights(weights, mask)
            if native:
                return _native.outlier_scissor(x, weights, mask, f, ops.tie_direction(x.shape[1]))
            return iterative._outlier_scissor(x, weights, mask, f)

        return jax.jit(jax.vmap(ios))(*inputs)

    _assert_close(one(True), one(False))


def _rule_outputs(name, x, mask, weights, key):
    rule = agg.AGGREGATORS[name]()

    def one(x, mask, weights, key):
        return _first(rule(x, f=1, mask=mask, weights=weights, key=key))

    return jax.jit(jax.vmap(one))(x, mask, weights, key)


@pytest.mark.parametrize("name", sorted(agg.AGGREGATORS))
def test_every_rule_gives_the_same_result_by_either_path(name, monkeypatch):
    """Each rule, vmapped over inboxes of d = 1037 with outliers and a masked NaN row, by
    the kernels and by its portable code (as on a GPU, or without a compiler)."""
    x = np.random.default_rng(3).normal(size=(3, 9, 1037)).astype(np.float32)
    x[0, 4] = 1e6
    x[1, 2] = -1e6
    x[2, 8] = np.nan
    mask = np.ones((3, 9), bool)
    mask[2, 8] = False
    weights = np.random.default_rng(4).uniform(0.5, 1.5, size=(3, 9)).astype(np.float32)
    keys = jax.random.split(jax.random.key(0), 3)
    def outputs():
        return _rule_outputs(name, jnp.asarray(x), mask, weights, keys)

    _assert_close(outputs(), _by_portable_code(outputs, monkeypatch))


def _by_portable_code(compute, monkeypatch):
    """``compute()`` with the kernels turned off, as on a GPU or without a compiler."""
    monkeypatch.setattr(_native, "available", lambda: False)
    jax.clear_caches()  # so that the rules are traced again, without the kernels
    try:
        return compute()
    finally:
        jax.clear_caches()  # nothing traced without them outlives the test


@pytest.mark.parametrize("name", ["nna", "ios", "cge", "clip", "arc"])
def test_a_rule_differentiates_through_its_portable_code(name, monkeypatch):
    """The kernels have no derivatives: an attack that differentiates through a rule gets
    the portable code's (rules whose portable code is differentiable)."""
    x = jnp.asarray(np.random.default_rng(6).normal(size=(7, 40)), jnp.float32)
    rule = agg.AGGREGATORS[name]()

    def gradient():
        loss = lambda x: jnp.sum(jnp.square(_first(rule(x, f=1))))  # noqa: E731
        return jax.jit(jax.grad(loss))(x)

    native = gradient()
    portable = _by_portable_code(gradient, monkeypatch)
    assert np.all(np.isfinite(native)) and np.any(native != 0)
    _assert_close(native, portable)


def _first(output):
    """A rule's output, or a pre-aggregator's rows."""
    return output[0] if isinstance(output, tuple) else output


# --------------------------------------------------------------------------- building

_KRUM = textwrap.dedent(
    """
    import numpy as np, warnings
    warnings.simplefilter("always")
    import decentral.aggregators as agg
    from decentral.aggregators import _native
    x = np.random.default_rng(0).normal(size=(7, 300)).astype(np.float32)
    print(_native.available(), float(agg.krum(x, f=1).sum()))
    """
)


def _run(env_changes, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "JAX_PLATFORMS": "cpu", **env_changes}
    done = subprocess.run([sys.executable, "-c", _KRUM], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    built, total = done.stdout.split()
    return built == "True", float(total), done.stderr


@functools.cache
def _krum_total():
    x = np.random.default_rng(0).normal(size=(7, 300)).astype(np.float32)
    return float(agg.krum(x, f=1).sum())


def test_the_library_is_built_once_per_cache_and_reused(tmp_path):
    built, total, _ = _run({}, tmp_path)
    libraries = list((tmp_path / "decentral" / "native").glob("kernels-*.so"))
    assert built and len(libraries) == 1
    first_build = libraries[0].stat().st_mtime_ns
    built, again, _ = _run({}, tmp_path)
    assert built and libraries[0].stat().st_mtime_ns == first_build
    assert total == again == pytest.approx(_krum_total(), rel=1e-5)


def test_a_failing_compiler_falls_back_to_the_portable_code_with_one_warning(tmp_path):
    built, total, stderr = _run({"CXX": "false"}, tmp_path)
    assert not built
    assert stderr.count("native CPU kernels") == 1 and "failed" in stderr
    assert total == pytest.approx(_krum_total(), rel=1e-5)


def test_decentral_native_0_turns_the_kernels_off_silently(tmp_path):
    built, total, stderr = _run({"DECENTRAL_NATIVE": "0"}, tmp_path)
    assert not built and "native" not in stderr
    assert total == pytest.approx(_krum_total(), rel=1e-5)
