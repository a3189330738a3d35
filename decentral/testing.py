"""The contract suite every aggregation rule must pass, for our rules and for users' own.

    >>> import decentral.aggregators as agg
    >>> from decentral.testing import check_rule
    >>> check_rule(agg.resolve("trimmed_mean"))        # raises AssertionError on a breach

Each check is a function ``check_x(spec, *, inbox_size=7, dim=5, seed=0)`` listed in
:data:`CHECKS`, run on one case (an inbox size, a dimension, a seed); a check applies
where the spec's claims say so (class attributes ``order_invariant``,
``translation_equivariant``, ``robustness``, ``tolerates_nonfinite``, ``preaggregator``).
:func:`check_rule` runs them over several cases (:func:`cases` lists which).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .aggregators import ROBUSTNESS_CLAIMS, Rule

__all__ = ["CHECKS", "DEFAULT_CASES", "VALUE_CHECKS", "cases", "check_rule", "largest_f"]


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


@jax.jit
def _jitted(spec, x, f, mask, weights, key):
    """``spec`` on one inbox under jit, every argument traced (a spec's static fields are
    its tree structure): one compilation per spec structure and input shapes, shared by
    every check and case that calls it."""
    return spec(x, f=f, mask=mask, weights=weights, key=key)


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
    jitted = _jitted(spec, x, f, mask, w, key)
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
    x, w, key = _inputs(spec, rng, inbox_size, dim)
    f_max = largest_f(spec, inbox_size)
    jax.block_until_ready(_jitted(spec, x, f_max, None, w, key))
    compiled = _jitted._cache_size()
    other = jax.tree.map(lambda leaf: leaf * 1.5 if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating) else leaf, spec)
    x2, w2, key2 = _inputs(spec, rng, inbox_size, dim)
    jax.block_until_ready(_jitted(other, x2, max(f_max - 1, 0), None, w2, key2))
    assert _jitted._cache_size() == compiled, f"{spec.name}: recompiled for new values/f/hyperparameters"


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
    """Assert ``out`` honours ``spec.robustness`` (one of ``ROBUSTNESS_CLAIMS``, whose meanings these are)."""
    if spec.robustness not in tuple(ROBUSTNESS_CLAIMS):
        allowed = ", ".join(map(repr, ROBUSTNESS_CLAIMS))
        raise AssertionError(f"{spec.name}: unknown robustness claim {spec.robustness!r}; allowed: {allowed}")
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


#: The checks whose outcome depends on the inbox's values, size and dimension but not on
#: compilation (jit, vmap and recompilation are the others): the default cases run them at
#: an even inbox and at a high dimension too.
VALUE_CHECKS = (
    check_shape_and_dtype,
    check_order_invariance,
    check_padding_invariance,
    check_translation_equivariance,
    check_nonfinite_tolerance,
    check_breakdown,
)

#: The cases :func:`check_rule` runs when none is given: each line is (checks, inbox
#: sizes, dimensions, seeds), run over the product of its sizes, dimensions and seeds.
DEFAULT_CASES = (
    (CHECKS, (7,), (5,), (0, 1, 2)),  # every check; seeds 1 and 2 reuse seed 0's jit compilations
    (VALUE_CHECKS, (8,), (5,), (0,)),  # an even inbox: rank statistics between two rows
    (VALUE_CHECKS, (7,), (1000,), (0,)),  # a high dimension: sums and distances over many coordinates
)


def _axis_values(name: str, value, values) -> tuple | None:
    """The values of one case axis the caller gave (``name=`` or ``names=``), or None."""
    if value is not None and values is not None:
        raise TypeError(f"check_rule: give {name}= or {name}s=, not both.")
    if values is None:
        return None if value is None else (value,)
    values = tuple(values)
    if not values:
        raise ValueError(f"check_rule: {name}s= is empty; give at least one {name}.")
    return values


def cases(
    *,
    inbox_size: int | None = None,
    dim: int | None = None,
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    inbox_sizes: Sequence[int] | None = None,
    checks: Sequence[Callable] = CHECKS,
) -> list[tuple[Callable, dict]]:
    """The ``(check, {"inbox_size": K, "dim": d, "seed": s})`` pairs :func:`check_rule`
    runs for these arguments, in order (see there), keeping only the checks in ``checks``."""
    foreign = [check for check in checks if check not in CHECKS]
    if foreign:
        raise ValueError(f"check_rule: checks= takes checks of decentral.testing.CHECKS, got {foreign[0]!r}.")
    given = {
        "inbox_size": _axis_values("inbox_size", inbox_size, inbox_sizes),
        "dim": _axis_values("dim", dim, dims),
        "seed": _axis_values("seed", seed, seeds),
    }
    if all(values is None for values in given.values()):
        plan = DEFAULT_CASES
    else:
        single = {"inbox_size": (7,), "dim": (5,), "seed": (0,)}
        plan = ((CHECKS, *(single[axis] if values is None else values for axis, values in given.items())),)
    return [
        (check, {"inbox_size": size, "dim": d, "seed": s})
        for line_checks, sizes, dimensions, line_seeds in plan
        for size, d, s in itertools.product(sizes, dimensions, line_seeds)
        for check in line_checks
        if check in checks
    ]


def check_rule(
    spec: Rule,
    *,
    inbox_size: int | None = None,
    dim: int | None = None,
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    inbox_sizes: Sequence[int] | None = None,
    checks: Sequence[Callable] = CHECKS,
) -> None:
    """Run the checks of :data:`CHECKS` that apply to ``spec`` over several cases; raise
    AssertionError on a breach, naming the check and the case.

    With no case argument, the cases of :data:`DEFAULT_CASES`: every check at inbox size
    7, dimension 5 and seeds 0, 1, 2; and the :data:`VALUE_CHECKS` at inbox size 8
    (dimension 5, seed 0) and at dimension 1000 (inbox size 7, seed 0).

    Otherwise every check runs on the product of the inbox sizes, dimensions and seeds
    given: ``inbox_size=``/``dim=``/``seed=`` give one value, ``inbox_sizes=``/``dims=``/
    ``seeds=`` several (not both for one axis); an axis not given takes 7, 5 or 0. So
    ``check_rule(spec, inbox_size=8, dim=3, seed=1)`` is exactly that one case.

    ``checks`` keeps only those of :data:`CHECKS` (the contract tests run one at a time).
    """
    plan = cases(inbox_size=inbox_size, dim=dim, seed=seed, seeds=seeds, dims=dims, inbox_sizes=inbox_sizes, checks=checks)
    for check, case in plan:
        try:
            check(spec, **case)
        except AssertionError as error:
            where = ", ".join(f"{axis}={value}" for axis, value in case.items())
            raise AssertionError(f"{check.__name__}({where}): {error}") from error
