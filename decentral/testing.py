"""The contract suite every aggregation rule must pass, for our rules and for users' own.

    >>> import decentral.aggregators as agg
    >>> from decentral.testing import check_rule
    >>> check_rule(agg.resolve("trimmed_mean"))        # raises AssertionError on a breach

Each check is a function ``check_x(spec, *, inbox_size=7, dim=5, seed=0)`` listed in
:data:`CHECKS`, run on one case (an inbox size, a dimension, a seed); a check applies
where the spec's claims say so (class attributes ``order_invariant``,
``translation_equivariant``, ``robustness``, ``tolerates_nonfinite``, ``preaggregator``,
``keeps_honest_rows``).
:func:`check_rule` runs them over several cases (:func:`cases` lists which).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .aggregators import ROBUSTNESS_CLAIMS, Rule

__all__ = [
    "BREAKDOWN_ATTACKS",
    "CHECKS",
    "DEFAULT_CASES",
    "VALUE_CHECKS",
    "BreakdownInbox",
    "breakdown_inboxes",
    "cases",
    "check_rule",
    "largest_f",
]


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


def _attacked(rng, inbox_size, dim, fill, f):
    """An inbox whose last f rows are Byzantine and hold ``fill``."""
    x = rng.normal(size=(inbox_size, dim)).astype(np.float32)
    byzantine = np.arange(inbox_size) >= inbox_size - f
    x[byzantine] = np.resize(np.asarray(fill, dtype=np.float32), f)[:, None]
    return x, byzantine


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
            x, byzantine = _attacked(rng, inbox_size, dim, fill, f)
            key = jax.random.key(seed) if spec.uses_key else None
            out = _call(spec, x, f, key=key)
            values = np.asarray(out[0])[~byzantine] if spec.preaggregator else np.asarray(out)
            assert np.all(np.isfinite(values)), f"{spec.name}: f={f} rows of {fill} gave {values}"


#: How far beyond the honest range the "just outside" rows sit, as a fraction of each
#: coordinate's honest width: well above the claims' slack (1e-4), small enough that
#: rules choosing rows by their distances do not single such rows out.
EDGE_MARGIN = 0.01


def _box(honest):
    """The honest rows' coordinate range: its low and high ends and its width."""
    low, high = honest.min(axis=0), honest.max(axis=0)
    return low, high, high - low


def _far_copies(rng, honest, f):
    """f copies of 1e6 in every coordinate (the old breakdown test)."""
    del rng
    return np.full((f, honest.shape[1]), 1e6)


def _far_alternating(rng, honest, f):
    """Rows of +1e6 and -1e6 in turn (the old breakdown test's second inbox)."""
    del rng
    return np.resize([1e6, -1e6], f)[:, None] * np.ones(honest.shape[1])


def _far_scattered(rng, honest, f):
    """Far rows in different random directions, each at its own scale between 1e3 and 1e6."""
    directions = rng.normal(size=(f, honest.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * 10.0 ** rng.uniform(3, 6, size=(f, 1))


def _inside(rng, honest, f):
    """Rows inside the honest range: each coordinate uniform between the honest min and max."""
    low, high, _ = _box(honest)
    return rng.uniform(low, high, size=(f, honest.shape[1]))


def _at_edge(rng, honest, f, margin=0.0):
    """Rows on the honest range's edge: each coordinate at the honest min or max, chosen
    per row and coordinate, ``margin`` widths beyond it."""
    low, high, width = _box(honest)
    upper = rng.random((f, honest.shape[1])) < 0.5
    return np.where(upper, high + margin * width, low - margin * width)


def _just_outside(rng, honest, f):
    """Rows just outside the honest range: :func:`_at_edge` moved out by ``EDGE_MARGIN`` widths."""
    return _at_edge(rng, honest, f, EDGE_MARGIN)


def _one_sided(rng, honest, f):
    """Rows central in every coordinate but one: near the honest coordinate-wise median,
    except in one chosen coordinate, where all sit beyond the same end of the honest
    range, each at its own distance (1% to 100% of the width)."""
    low, high, width = _box(honest)
    rows = np.clip(np.median(honest, axis=0) + rng.uniform(-0.1, 0.1, size=(f, honest.shape[1])) * width, low, high)
    pulled, side = rng.integers(honest.shape[1]), rng.choice([-1.0, 1.0])
    end = high[pulled] if side > 0 else low[pulled]
    rows[:, pulled] = end + side * width[pulled] * rng.uniform(0.01, 1.0, size=f)
    return rows


def _crafted_coordinatewise(rng, honest, f):
    """Rows against the coordinate-wise claim: in each coordinate the f largest values (or
    the f smallest: a side per coordinate), just beyond the honest range, each row at its
    own distance (0.1% to 10% of the width). They are the values nearest an honest
    extreme, so a rule averaging the values closest to a median or a trimmed mean that
    the attack pushed to that extreme takes them in."""
    low, high, width = _box(honest)
    side = rng.choice([-1.0, 1.0], size=honest.shape[1])
    end = np.where(side > 0, high, low)
    return end + side * width * rng.uniform(0.001, 0.1, size=(f, honest.shape[1]))


def _mixed(rng, honest, f):
    """One far row (scale 1e3 to 1e6, a random direction) and f - 1 rows inside the honest range."""
    return np.concatenate([_far_scattered(rng, honest, 1), _inside(rng, honest, f - 1)])


#: The breakdown test's attacks: name -> ``rows(rng, honest, f)``, the f Byzantine rows
#: (differing from each other, but for the old test's copies) that join the honest rows.
BREAKDOWN_ATTACKS: dict[str, Callable] = {
    "far copies": _far_copies,
    "far alternating": _far_alternating,
    "far scattered": _far_scattered,
    "inside": _inside,
    "at the edge": _at_edge,
    "just outside": _just_outside,
    "one-sided": _one_sided,
    "crafted coordinatewise": _crafted_coordinatewise,
    "mixed": _mixed,
}


class BreakdownInbox(NamedTuple):
    """One inbox of the breakdown test: ``x`` (f32[K, d]) whose last ``f`` rows are
    Byzantine, made by the attack ``name`` of :data:`BREAKDOWN_ATTACKS`."""

    name: str
    f: int
    x: np.ndarray

    @property
    def honest(self) -> np.ndarray:
        """The honest rows (float64): row 0, the own vector, first."""
        return self.x[: len(self.x) - self.f].astype(np.float64)


def breakdown_inboxes(spec: Rule, *, inbox_size: int = 7, dim: int = 5, seed: int = 0) -> list[BreakdownInbox]:
    """The inboxes :func:`check_breakdown` runs ``spec`` on for this case: each attack of
    :data:`BREAKDOWN_ATTACKS` at f = 1 and at the largest f the inbox admits, on fresh
    standard-normal honest rows (none when the inbox admits no Byzantine row).
    Deterministic in ``seed``: a breach it reports can be rebuilt from here."""
    rng = np.random.default_rng(seed)
    largest = largest_f(spec, inbox_size)
    inboxes = []
    for f in sorted({1, largest}) if largest else ():
        for name, rows in BREAKDOWN_ATTACKS.items():
            # float32 values: the rows built on their range see the range the rule sees
            honest = rng.normal(size=(inbox_size - f, dim)).astype(np.float32).astype(np.float64)
            x = np.concatenate([honest, rows(rng, honest, f)]).astype(np.float32)
            inboxes.append(BreakdownInbox(name, f, x))
    return inboxes


@jax.jit
def _batched(spec, xs, fs, keys):
    """``spec`` on a batch of inboxes (vmapped, each with its own f and key) under jit:
    one compilation per spec structure and batch shape, which runs in a fraction of the
    time of the same calls made eagerly."""
    return jax.vmap(lambda x, f, key: spec(x, f=f, key=key))(xs, fs, keys)


def _on_every_inbox(spec, inboxes, seed):
    """``spec`` on each inbox, one batched call: its outputs as float64 arrays stacked
    over the inboxes (pre-aggregators: their rows and mask)."""
    xs = jnp.asarray(np.stack([inbox.x for inbox in inboxes]))
    fs = jnp.asarray([inbox.f for inbox in inboxes], dtype=jnp.int32)
    keys = jax.random.split(jax.random.key(seed), len(inboxes)) if spec.uses_key else None
    out = _batched(spec, xs, fs, keys)
    if spec.preaggregator:
        return list(zip(np.asarray(out[0], dtype=np.float64), np.asarray(out[1])))
    return np.asarray(out, dtype=np.float64)


def check_breakdown(spec, *, inbox_size=7, dim=5, seed=0):
    """Against each attack of :data:`BREAKDOWN_ATTACKS` (f = 1 and the largest f: far rows,
    rows inside the honest range, on its edge and just outside, rows pulling one
    coordinate, rows crafted against the coordinate-wise claim, a mix) the output honours
    the spec's robustness claim (:data:`~decentral.aggregators.ROBUSTNESS_CLAIMS`, as
    :func:`_assert_claim` tests it). A pre-aggregator claiming ``keeps_honest_rows``
    returns at most f valid rows outside the honest coordinate range.
    """
    claims = spec.keeps_honest_rows if spec.preaggregator else spec.robustness != "none"
    inboxes = breakdown_inboxes(spec, inbox_size=inbox_size, dim=dim, seed=seed) if claims else []
    if not inboxes:
        return
    for inbox, out in zip(inboxes, _on_every_inbox(spec, inboxes, seed)):
        try:
            if spec.preaggregator:
                _assert_rows_kept(spec, *out, inbox.honest, inbox.f)
            else:
                _assert_claim(spec, out, inbox.honest, inbox.honest[0], inbox.f, inbox_size)
        except AssertionError as error:
            raise AssertionError(f"{error} (attack {inbox.name!r}, f={inbox.f})") from error


def _slack(honest):
    """The claims' tolerance: float32 rounding of values the size of the honest ones."""
    return 1e-4 * (1 + np.abs(honest).max())


def _assert_rows_kept(spec, rows, mask, honest, f):
    """Assert at most ``f`` of the valid ``rows`` leave the honest coordinate range."""
    low, high, slack = honest.min(axis=0), honest.max(axis=0), _slack(honest)
    outside = mask & np.any((rows < low - slack) | (rows > high + slack), axis=1)
    assert outside.sum() <= f, f"{spec.name}: {outside.sum()} rows out of the honest coordinate range, more than f={f}"


def _assert_claim(spec, out, honest, own, f, count):
    """Assert ``out`` honours ``spec.robustness`` (one of ``ROBUSTNESS_CLAIMS``, whose meanings these are).

    "selection" (an honest row or an average of honest rows: a convex combination of
    them) has no cheap exact test; it is tested as the coordinate-wise claim, which it
    implies. "near_honest" is tested likewise on the coordinate range, which holds the
    honest rows' hull: the distance to the range is at most the distance to the hull.
    """
    if spec.robustness not in tuple(ROBUSTNESS_CLAIMS):
        allowed = ", ".join(map(repr, ROBUSTNESS_CLAIMS))
        raise AssertionError(f"{spec.name}: unknown robustness claim {spec.robustness!r}; allowed: {allowed}")
    low, high = honest.min(axis=0), honest.max(axis=0)
    slack = _slack(honest)
    if spec.robustness in ("coordinatewise", "selection"):
        inside = np.all((out >= low - slack) & (out <= high + slack))
        assert inside, f"{spec.name}: output {out} leaves the honest coordinate range [{low}, {high}]"
    elif spec.robustness == "coordinatewise_widened":
        width = high - low
        inside = np.all((out >= low - width - slack) & (out <= high + width + slack))
        assert inside, f"{spec.name}: output {out} leaves the widened honest coordinate range [{low - width}, {high + width}]"
    elif spec.robustness == "near_honest":
        diameter = np.max(np.linalg.norm(honest[:, None] - honest[None], axis=-1))
        distance = np.linalg.norm(out - np.clip(out, low, high))
        bound = np.sqrt(count) * diameter
        assert distance <= bound + slack, f"{spec.name}: {distance} from the honest coordinate range exceeds sqrt(K) * D = {bound}"
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
