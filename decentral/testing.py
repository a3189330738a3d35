"""The contract suite every aggregation rule must pass, for our rules and for users' own.

    >>> import decentral.aggregators as agg
    >>> from decentral.testing import check_rule
    >>> check_rule(agg.resolve("trimmed_mean"))        # raises AssertionError on a breach

Each check is a function ``check_x(spec, *, inbox_size=7, dim=5, seed=0)`` listed in
:data:`CHECKS`; :func:`check_rule` runs those that apply to the spec's claims (class
attributes ``order_invariant``, ``translation_equivariant``, ``robustness``,
``tolerates_nonfinite``, ``preaggregator``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .aggregators import Rule

__all__ = ["CHECKS", "check_rule", "largest_f"]


def largest_f(spec: Rule, inbox_size: int) -> int:
    """The largest f an inbox of ``inbox_size`` rows supports under ``spec`` (0 if none)."""
    f = 0
    while f + 1 < inbox_size and spec.required_count(f + 1) <= inbox_size:
        f += 1
    return f


def _inputs(spec, rng, inbox_size, dim, *, weights=True):
    x = rng.normal(size=(inbox_size, dim)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, size=inbox_size).astype(np.float32) if weights else None
    key = jax.random.key(int(rng.integers(2**31))) if spec.uses_key else None
    return x, w, key


def _call(spec, x, f, mask=None, weights=None, key=None):
    return spec(jnp.asarray(x), f=f, mask=None if mask is None else jnp.asarray(mask), weights=weights, key=key)


def _valid_rows(out, mask=None):
    """For pre-aggregators: the output rows as one array, masked rows zeroed (for comparisons)."""
    if not isinstance(out, tuple):
        return np.asarray(out)
    new_x, new_mask, new_weights = (np.asarray(a) for a in out)
    keep = new_mask if mask is None else new_mask & mask
    return np.concatenate([np.where(keep[:, None], new_x, 0.0), np.where(keep, new_weights, 0.0)[:, None]], axis=1)


def _close(actual, expected, what, *, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def _can_drop_a_row(spec, f, inbox_size):
    return spec.required_count(int(f)) <= inbox_size - 1


def check_shape_and_dtype(spec, *, inbox_size=7, dim=5, seed=0):
    """Output is f32[d] (pre-aggregators: f32[K, d], bool[K], f32[K])."""
    x, w, key = _inputs(spec, np.random.default_rng(seed), inbox_size, dim)
    out = _call(spec, x, largest_f(spec, inbox_size), weights=w, key=key)
    if spec.preaggregator:
        new_x, new_mask, new_weights = out
        assert new_x.shape == x.shape and new_x.dtype == jnp.float32, f"{spec.name}: x out {new_x.shape} {new_x.dtype}"
        assert new_mask.shape == (inbox_size,) and new_mask.dtype == jnp.bool_, f"{spec.name}: mask out"
        assert new_weights.shape == (inbox_size,) and new_weights.dtype == jnp.float32, f"{spec.name}: weights out"
        assert bool(new_mask[0]), f"{spec.name}: row 0 must stay valid"
    else:
        assert out.shape == (dim,), f"{spec.name}: output shape {out.shape}, expected ({dim},)"
        assert out.dtype == jnp.float32, f"{spec.name}: output dtype {out.dtype}, expected float32"
        assert np.all(np.isfinite(np.asarray(out))), f"{spec.name}: non-finite output on finite input"


def check_jit_matches_eager(spec, *, inbox_size=7, dim=5, seed=0):
    """jit (f, mask, weights and the spec traced) gives the eager result."""
    rng = np.random.default_rng(seed)
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    mask = np.ones(inbox_size, dtype=bool)
    f = largest_f(spec, inbox_size)
    eager = _call(spec, x, f, mask, w, key)
    jitted = jax.jit(lambda s, x, f, m, w, k: s(x, f=f, mask=m, weights=w, key=k))(spec, x, f, mask, w, key)
    _close(_valid_rows(jitted), _valid_rows(eager), f"{spec.name}: jit differs from eager")


def check_vmap_over_nodes(spec, *, inbox_size=7, dim=5, seed=0, nodes=4):
    """vmap over nodes (per-node f, mask, weights) equals node-by-node calls."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(nodes, inbox_size, dim)).astype(np.float32)
    ws = rng.uniform(0.5, 1.5, size=(nodes, inbox_size)).astype(np.float32)
    f_max = largest_f(spec, inbox_size)
    fs = np.array([min(i, f_max) for i in range(nodes)], dtype=np.int32)
    masks = np.ones((nodes, inbox_size), dtype=bool)
    masks[-1, -1] = not _can_drop_a_row(spec, fs[-1], inbox_size)
    keys = jax.random.split(jax.random.key(seed), nodes) if spec.uses_key else None
    batched = jax.vmap(lambda x, f, m, w, k: spec(x, f=f, mask=m, weights=w, key=k))(xs, fs, masks, ws, keys)
    for i in range(nodes):
        single = _call(spec, xs[i], int(fs[i]), masks[i], ws[i], None if keys is None else keys[i])
        node_out = jax.tree.map(lambda a: a[i], batched)
        _close(_valid_rows(node_out), _valid_rows(single), f"{spec.name}: vmap differs at node {i}")


def check_order_invariance(spec, *, inbox_size=7, dim=5, seed=0):
    """Permuting rows 1..K-1 (with their mask and weights) does not change the result."""
    if not spec.order_invariant:
        return
    rng = np.random.default_rng(seed)
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    x[2] = x[1]  # a duplicated row: ties must be broken by value
    mask = np.ones(inbox_size, dtype=bool)
    mask[-1] = not _can_drop_a_row(spec, 1, inbox_size)
    f = largest_f(spec, int(mask.sum()))
    perm = np.concatenate([[0], 1 + rng.permutation(inbox_size - 1)])
    base = _call(spec, x, f, mask, w, key)
    permuted = _call(spec, x[perm], f, mask[perm], w[perm], key)
    if spec.preaggregator:
        base = jax.tree.map(lambda a: a[perm], base)
    _close(_valid_rows(permuted, mask[perm]), _valid_rows(base, mask[perm]), f"{spec.name}: depends on inbox order")


def check_padding_invariance(spec, *, inbox_size=7, dim=5, seed=0):
    """Masked rows filled with 1e6 or NaN, and extra masked rows, change nothing."""
    rng = np.random.default_rng(seed)
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    f = largest_f(spec, inbox_size)
    base = _valid_rows(_call(spec, x, f, None, w, key))
    for fill in (1e6, np.nan):
        padded = np.concatenate([x, np.full((2, dim), fill, np.float32)])
        mask = np.arange(inbox_size + 2) < inbox_size
        weights = np.concatenate([w, np.full(2, 7.0, np.float32)])
        out = _valid_rows(_call(spec, padded, f, mask, weights, key), mask)
        if spec.preaggregator:
            out = np.delete(out, [inbox_size, inbox_size + 1], axis=0)
        _close(out, base, f"{spec.name}: masked rows filled with {fill} changed the result")


def check_translation_equivariance(spec, *, inbox_size=7, dim=5, seed=0):
    """rule(x + t) = rule(x) + t where the spec claims it."""
    if not spec.translation_equivariant:
        return
    rng = np.random.default_rng(seed)
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    shift = rng.normal(size=dim).astype(np.float32) * 3
    f = largest_f(spec, inbox_size)
    base = _call(spec, x, f, None, w, key)
    moved = _call(spec, x + shift, f, None, w, key)
    if spec.preaggregator:
        base, moved = np.asarray(base[0]) + shift, np.asarray(moved[0])
    else:
        base, moved = np.asarray(base) + shift, np.asarray(moved)
    _close(moved, base, f"{spec.name}: not translation equivariant", atol=1e-4)


def check_no_recompilation(spec, *, inbox_size=7, dim=5, seed=0):
    """A second call with new values, a new f and new numeric hyperparameters reuses the compilation."""
    rng = np.random.default_rng(seed)
    fn = jax.jit(lambda s, x, f, w, k: s(x, f=f, weights=w, key=k))
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    f_max = largest_f(spec, inbox_size)
    jax.block_until_ready(fn(spec, x, f_max, w, key))
    other = jax.tree.map(lambda leaf: leaf * 1.5 if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating) else leaf, spec)
    x2, w2, key2 = _inputs(spec, rng, inbox_size, dim)
    jax.block_until_ready(fn(other, x2, max(f_max - 1, 0), w2, key2))
    assert fn._cache_size() == 1, f"{spec.name}: recompiled for new values/f/hyperparameters ({fn._cache_size()} compilations)"


def _attacked(spec, rng, inbox_size, dim, fill, f=None):
    """An inbox whose last f rows are Byzantine and hold ``fill`` (a scalar or per-row values)."""
    f = largest_f(spec, inbox_size) if f is None else f
    x = rng.normal(size=(inbox_size, dim)).astype(np.float32)
    byzantine = np.arange(inbox_size) >= inbox_size - f
    x[byzantine] = np.resize(np.asarray(fill, dtype=np.float32), f)[:, None]
    return x, f, byzantine


def check_nonfinite_tolerance(spec, *, inbox_size=7, dim=5, seed=0):
    """1 and the largest tolerated number of Byzantine rows holding +-1e30, +-inf or NaN
    leave the output (the honest rows, for pre-aggregators) finite."""
    if not spec.tolerates_nonfinite:
        return
    rng = np.random.default_rng(seed)
    for f in sorted({1, largest_f(spec, inbox_size)}):
        if f == 0 or spec.required_count(f) > inbox_size:
            continue  # this inbox size tolerates no Byzantine row: nothing is claimed
        for fill in (1e30, -1e30, np.inf, -np.inf, np.nan):
            x, f, byzantine = _attacked(spec, rng, inbox_size, dim, fill, f)
            key = jax.random.key(seed) if spec.uses_key else None
            out = _call(spec, x, f, key=key)
            values = np.asarray(out[0])[~byzantine] if spec.preaggregator else np.asarray(out)
            assert np.all(np.isfinite(values)), f"{spec.name}: f={f} rows of {fill} gave {values}"


def check_breakdown(spec, *, inbox_size=7, dim=5, seed=0):
    """With f Byzantine rows at +-1e6 the output honours the spec's robustness claim."""
    if spec.preaggregator or spec.robustness == "none":
        return
    rng = np.random.default_rng(seed)
    for fill in (1e6, [1e6, -1e6, 1e6]):
        x, f, byzantine = _attacked(spec, rng, inbox_size, dim, fill)
        key = jax.random.key(seed) if spec.uses_key else None
        out = np.asarray(_call(spec, x, f, key=key), dtype=np.float64)
        honest = x[~byzantine].astype(np.float64)
        _assert_claim(spec, out, honest, x[0], f, inbox_size)


def _assert_claim(spec, out, honest, own, f, count):
    low, high = honest.min(axis=0), honest.max(axis=0)
    slack = 1e-4 * (1 + np.abs(honest).max())
    if spec.robustness in ("coordinatewise", "selection"):
        inside = np.all((out >= low - slack) & (out <= high + slack))
        assert inside, f"{spec.name}: output {out} leaves the honest coordinate range [{low}, {high}]"
    elif spec.robustness == "geometric_median":
        a = f / count
        bound = (1 - a) / np.sqrt(1 - 2 * a) * np.max(np.linalg.norm(honest - honest.mean(0), axis=1))
        distance = np.linalg.norm(out - honest.mean(0))
        assert distance <= bound + slack, f"{spec.name}: {distance} from the honest mean exceeds Minsker's {bound}"
    elif spec.robustness == "bounded":
        reach = 2 * np.max(np.linalg.norm(honest - own, axis=1)) + 1
        distance = np.linalg.norm(out - own)
        assert distance <= reach, f"{spec.name}: moved {distance} from the own vector (bound {reach})"
    else:
        raise AssertionError(f"{spec.name}: unknown robustness claim {spec.robustness!r}")


CHECKS = (
    check_shape_and_dtype,
    check_jit_matches_eager,
    check_vmap_over_nodes,
    check_order_invariance,
    check_padding_invariance,
    check_translation_equivariance,
    check_no_recompilation,
    check_nonfinite_tolerance,
    check_breakdown,
)


def check_rule(spec: Rule, *, inbox_size: int = 7, dim: int = 5, seed: int = 0) -> None:
    """Run every check of :data:`CHECKS` that applies to ``spec``; raise AssertionError on a breach."""
    for check in CHECKS:
        check(spec, inbox_size=inbox_size, dim=dim, seed=seed)
