"""The aggregation rules and pre-aggregators, as specs (math in ``apply``).

Each spec's ``apply`` receives a prepared inbox (``_inbox.prepare``): ``x: f32[K, d]``
with masked rows replaced by row 0, ``mask: bool[K]`` with row 0 valid, a traced int32
``f`` and ``count`` = number of valid rows. The base class returns row 0 (the node's own
vector) whenever ``count < min_count(f)``. The public functions with docstrings are in
``_functions.py``.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from . import _native
from ._inbox import (
    clip_factors,
    clipped_sum,
    closest_window_start,
    closest_window_sum,
    coordinate_median,
    distances_and_keys,
    distances_to,
    finite_rows,
    inbox_geometry,
    mean_of_sum,
    mix_rows,
    normalized_weights,
    on_cpu_natively,
    per_node,
    precedes,
    ranks,
    selection_mean,
    smallest_k_sum,
    sort_rows,
    sortable,
    tie_direction,
    weighted_mean,
    window_mean,
    window_sum,
)
from ._spec import AGGREGATORS, Rule, hyperparameter, rule_spec


def _one(f):
    del f
    return 1


def _f_plus_one(f):
    return f + 1


def _two_f_plus_one(f):
    return 2 * f + 1


def _two_f_plus_three(f):
    return 2 * f + 3


def _four_f_plus_three(f):
    return 4 * f + 3


# =========================================================================== averaging


@rule_spec
class Mean(Rule):
    name: ClassVar[str] = "mean"
    min_count = staticmethod(_one)
    tolerates_nonfinite: ClassVar[bool] = False

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        return weighted_mean(x, normalized_weights(weights, mask))


# =========================================================================== coordinate-wise


def _sorted_valid(x, mask):
    return sort_rows(sortable(x, mask))


@rule_spec
class Median(Rule):
    name: ClassVar[str] = "median"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, weights, key
        return coordinate_median(_sorted_valid(x, mask), count)


@rule_spec
class TrimmedMean(Rule):
    name: ClassVar[str] = "trimmed_mean"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return window_mean(_sorted_valid(x, mask), f, count - 2 * f)


def _mean_closest_to(sorted_values, count, keep, center):
    start = closest_window_start(sorted_values, count, keep, center)
    return window_mean(sorted_values, start, keep)


def _mean_of_all_but_f_closest_to(sorted_values, count, f, center, middle_sum):
    """Mean of the ``count - f`` sorted values closest to ``center``, given the sum of the
    middle ranks ``[f, count - f)`` (``closest_window_sum``; needs ``count >= 2f + 1``)."""
    keep = count - f
    return mean_of_sum(closest_window_sum(sorted_values, count, keep, center, middle_sum), keep)


@rule_spec
class Meamed(Rule):
    name: ClassVar[str] = "meamed"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        values = _sorted_valid(x, mask)
        middle_sum = window_sum(values, f, count - 2 * f)
        return _mean_of_all_but_f_closest_to(values, count, f, coordinate_median(values, count), middle_sum)


@rule_spec
class Phocas(Rule):
    name: ClassVar[str] = "phocas"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        values = _sorted_valid(x, mask)
        middle_sum = window_sum(values, f, count - 2 * f)
        trimmed_mean = mean_of_sum(middle_sum, count - 2 * f)
        return _mean_of_all_but_f_closest_to(values, count, f, trimmed_mean, middle_sum)


# =========================================================================== Krum family


def krum_scores(distances, mask, neighbours):
    """Krum score per row: sum of its ``neighbours`` smallest squared distances to other
    valid rows (+inf for invalid rows). ``distances`` has 0 on the diagonal."""
    others = jnp.where(jnp.eye(distances.shape[0], dtype=bool) | ~mask[None, :], jnp.inf, distances)
    scores = smallest_k_sum(others, neighbours)
    return jnp.where(mask, scores, jnp.inf)


def _krum_neighbours(count, f, variant):
    return count - f - (2 if variant == "paper" else 1)


def _best_rows(x, mask, scores, keys, how_many):
    """Mean of the ``how_many`` valid rows with the smallest scores (ties by ``keys``)."""
    return selection_mean(x, ranks(scores, keys, mask) < how_many)


def _best_row(x, mask, scores, keys):
    """The valid row with the smallest score (ties by ``keys``), read alone from ``x``."""
    return x[jnp.argmin(ranks(scores, keys, mask))]


@rule_spec
class Krum(Rule):
    variant: str = hyperparameter("paper", static=True, choices=("paper", "byzfl"))
    name: ClassVar[str] = "krum"
    min_count = staticmethod(_two_f_plus_three)
    robustness: ClassVar[str] = "selection"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        geometry = inbox_geometry(x, mask)
        scores = krum_scores(geometry.distances, mask, _krum_neighbours(count, f, self.variant))
        return _best_row(x, mask, scores, geometry.keys)


@rule_spec
class MultiKrum(Rule):
    m: int | None = hyperparameter(None, optional=True, minimum=1)
    variant: str = hyperparameter("paper", static=True, choices=("paper", "byzfl"))
    name: ClassVar[str] = "multi_krum"
    min_count = staticmethod(_two_f_plus_three)
    robustness: ClassVar[str] = "selection"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        geometry = inbox_geometry(x, mask)
        scores = krum_scores(geometry.distances, mask, _krum_neighbours(count, f, self.variant))
        how_many = count - f if self.m is None else jnp.minimum(jnp.asarray(self.m, jnp.int32), count)
        return _best_rows(x, mask, scores, geometry.keys, how_many)


def bulyan_selection(x, mask, f, count):
    """Bulyan's first stage: theta = count - 2f rows chosen by repeated Krum.

    Each step scores the remaining r rows by the paper's Krum, k = r - f - 2 nearest other
    remaining rows, floored at 1 neighbour once fewer than f + 3 rows remain (the last
    steps, where the paper's formula would give k < 1), then moves the best row to the
    selection. Returns the selection mask.
    """
    distances, keys, _ = inbox_geometry(x, mask)
    theta = count - 2 * f

    def step(i, carry):
        remaining, selected = carry
        r = jnp.sum(remaining, dtype=jnp.int32)
        neighbours = jnp.clip(r - f - 2, 1, r - 1)
        scores = krum_scores(distances, remaining, neighbours)
        best = (ranks(scores, keys, remaining) == 0) & remaining & (i < theta)
        return remaining & ~best, selected | best

    _, selected = jax.lax.fori_loop(0, x.shape[0], step, (mask, jnp.zeros_like(mask)))
    return selected, theta


@rule_spec
class Bulyan(Rule):
    name: ClassVar[str] = "bulyan"
    min_count = staticmethod(_four_f_plus_three)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        selected, theta = bulyan_selection(x, mask, f, count)
        values = _sorted_valid(x, selected)
        return _mean_closest_to(values, theta, theta - 2 * f, coordinate_median(values, theta))


# =========================================================================== geometric


def _starting_point(rule, start, x):
    if start is None:
        return x[0]
    start = jnp.asarray(start, x.dtype)
    if start.shape != x.shape[1:]:
        raise ValueError(f"{rule}: start must have shape {x.shape[1:]} (one vector like the inbox rows), got {start.shape}.")
    return start


@rule_spec
class GeometricMedian(Rule):
    iterations: int = hyperparameter(8, static=True, minimum=1)
    smoothing: float = hyperparameter(0.1, positive=True)
    start: object = hyperparameter(None, optional=True)
    name: ClassVar[str] = "geometric_median"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "geometric_median"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        weights = normalized_weights(weights, mask)
        start = _starting_point(self.name, self.start, x)
        return _reweighted(self, x, weights, start, self.smoothing, _native.WEISZFELD, _weiszfeld)


def _reweighted(rule, x, weights, start, parameter, kind, portable):
    """``rule.iterations`` steps of ``portable(x, weights, start, parameter, iterations)``;
    on CPU the native kernel of the same steps (``_native.reweighted``), which reads each
    inbox from memory once (``rule.start`` None: from row 0, not a copy of it)."""

    def native(x, weights, start, parameter):
        start = None if rule.start is None else start
        return _native.reweighted(x, weights, start, parameter, iterations=rule.iterations, kind=kind)

    def iterate(x, weights, start, parameter):
        return portable(x, weights, start, parameter, rule.iterations)

    return on_cpu_natively(native, iterate)(x, weights, start, parameter)


@functools.partial(per_node, static_argnums=(4,))
def _weiszfeld(x, weights, start, smoothing, iterations):
    """``iterations`` smoothed Weiszfeld steps from ``start`` (a few nodes at a time under
    vmap: every step reads the inbox twice, and one node's inbox stays in cache)."""

    def step(_, z):
        distances = distances_to(x, z)
        beta = jnp.where(jnp.isfinite(distances), weights / jnp.maximum(smoothing, distances), 0.0)
        return weighted_mean(x, beta)

    return jax.lax.fori_loop(0, iterations, step, start)


def _clipping_steps(x, weights, start, radius, iterations):
    """``iterations`` centered-clipping steps ``v <- v + sum_j w_j clip(x_j - v, radius)``."""

    def clip_step(_, v):
        return v + clipped_sum(x, v, weights, radius)

    return jax.lax.fori_loop(0, iterations, clip_step, start)


@rule_spec
class CenteredClipping(Rule):
    radius: float = hyperparameter(1.0, positive=True)
    iterations: int = hyperparameter(1, static=True, minimum=1)
    start: object = hyperparameter(None, optional=True)
    name: ClassVar[str] = "centered_clipping"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        weights = normalized_weights(weights, mask)
        start = _starting_point(self.name, self.start, x)
        return _reweighted(self, x, weights, start, self.radius, _native.CLIPPING, _clipping_steps)


# =========================================================================== minimum diameter

#: Largest inbox for which ``mda`` enumerates every subset (2^K of them).
MDA_EXACT_MAX_INBOX = 14


def _subset_table(size):
    codes = np.arange(2**size)
    return jnp.asarray((codes[:, None] >> np.arange(size)[None, :]) & 1, dtype=bool)


def _diameters(members, distances):
    """Per subset ([S, K] bool): max and sum of pairwise squared distances inside it."""
    finite = jnp.where(jnp.isfinite(distances), distances, 0.0)
    spread = jnp.sum((members.astype(jnp.float32) @ finite) * members, axis=-1) / 2
    diameter = jnp.zeros(members.shape[0], dtype=distances.dtype)
    for i in range(members.shape[1]):
        row = jnp.max(jnp.where(members, distances[i][None, :], 0.0), axis=-1)
        diameter = jnp.maximum(diameter, jnp.where(members[:, i], row, 0.0))
    return diameter, spread


@rule_spec
class MDA(Rule):
    name: ClassVar[str] = "mda"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "selection"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        if x.shape[0] > MDA_EXACT_MAX_INBOX:
            raise ValueError(
                f"mda enumerates all 2^K subsets and supports inboxes of at most {MDA_EXACT_MAX_INBOX} rows; "
                f"got {x.shape[0]}. Use 'mda_greedy' (a 2-approximation) for larger inboxes."
            )
        subsets = _subset_table(x.shape[0])
        allowed = jnp.all(~subsets | mask[None, :], axis=1) & (jnp.sum(subsets, axis=1) == count - f)
        distances, keys, _ = inbox_geometry(x, mask)
        diameter, spread = _diameters(subsets, distances)
        # third criterion, on values: the members' summed tie keys (equal only for subsets
        # holding the same vectors, whose means are equal)
        members_key = subsets.astype(jnp.float32) @ keys
        best = _first_best(
            jnp.where(allowed, diameter, jnp.inf), jnp.where(allowed, spread, jnp.inf), jnp.where(allowed, members_key, jnp.inf)
        )
        return selection_mean(x, subsets[best])


def _first_best(*criteria):
    """Index of the lexicographic minimum over ``criteria`` (first index on exact ties)."""
    best = jnp.ones(criteria[0].shape, dtype=bool)
    for values in criteria:
        values = jnp.where(best, values, jnp.inf)
        best = best & (values == jnp.min(values))
    return jnp.argmax(best)


def nearest_sets(distances, keys, mask, size):
    """``members[i, j]``: row j is among the ``size`` valid rows nearest to row i."""
    rank = jax.vmap(ranks, in_axes=(0, None, None))(distances, keys, mask)
    return (rank < size) & mask[None, :]


@rule_spec
class MDAGreedy(Rule):
    name: ClassVar[str] = "mda_greedy"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "selection"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        distances, keys, _ = inbox_geometry(x, mask)
        balls = nearest_sets(distances, keys, mask, count - f)
        diameter, spread = _diameters(balls, distances)
        best = ranks(diameter, spread, mask) == 0
        return selection_mean(x, jnp.any(balls & best[:, None], axis=0))


# =========================================================================== norm / proximity selection


def _norms_and_keys(x, around):
    """``distances_and_keys`` around zero (``around="zero"``) or the node's own vector."""
    return distances_and_keys(x, jnp.zeros(x.shape[1:], x.dtype) if around == "zero" else None)


@rule_spec
class CGE(Rule):
    around: str = hyperparameter("zero", static=True, choices=("zero", "own"))
    name: ClassVar[str] = "cge"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return self.around == "own"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return _best_rows(x, mask, *_norms_and_keys(x, self.around), count - f)


@rule_spec
class Aksel(Rule):
    mode: str = hyperparameter("mid", static=True, choices=("mid", "n-f"))
    name: ClassVar[str] = "aksel"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        center = coordinate_median(_sorted_valid(x, mask), count)
        keep = (count + 1) // 2 if self.mode == "mid" else count - f
        return _best_rows(x, mask, *distances_and_keys(x, center), keep)


@rule_spec
class NNA(Rule):
    name: ClassVar[str] = "nna"
    min_count = staticmethod(_two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return _best_rows(x, mask, *distances_and_keys(x), count - f)


# =========================================================================== gossip rules (weighted)


@rule_spec
class IOS(Rule):
    name: ClassVar[str] = "ios"
    min_count = staticmethod(_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del key, count
        weights = normalized_weights(weights, mask)
        native = functools.partial(_native.outlier_scissor, direction=tie_direction(x.shape[1]))
        return on_cpu_natively(native, _outlier_scissor)(x, weights, mask, f)


def _outlier_scissor(x, weights, mask, f):
    """IOS's ``f`` scissor steps and final mean (the portable code of ``IOS.apply``)."""
    # Rows that are non-finite in float32 are infinitely far from any centre: the
    # scissor removes them first, and they never enter a centre.
    own_distances, keys = distances_and_keys(x)
    finite = jnp.isfinite(own_distances)
    others = jnp.arange(x.shape[0]) > 0

    def center_of(trusted):
        return weighted_mean(x, jnp.where(trusted & finite, weights, 0.0))

    def scissor(_, state):
        trusted, center = state
        distances = jnp.where(finite, distances_and_keys(x, center)[0], jnp.inf)
        candidates = trusted & others
        # the farthest row; among identical copies, the heaviest (a rule on values)
        order = precedes((~candidates).astype(jnp.int32), -jnp.where(candidates, distances, 0.0), -keys, -weights)
        farthest = (jnp.sum(order, axis=0) == 0) & candidates
        trusted = trusted & ~farthest
        return trusted, center_of(trusted)

    # Each step's centre is computed at the end of the step before and carried in the
    # loop state, so it reaches the distance pass as a buffer: computed in the same
    # step, XLA on CPU (which drops optimization barriers) fused its weighted sum into
    # the norm reduction and materialized one [d] term per row (27x `mean`; 10x after).
    trusted, _ = jax.lax.fori_loop(0, f, scissor, (mask, center_of(mask)))
    return weighted_mean(x, jnp.where(trusted, weights, 0.0))


#: Relative tolerance on cumulative-weight comparisons (uniform weights sum to exact
#: counts only up to float32 rounding).
WEIGHT_TOLERANCE = 1e-6


def byzantine_weight(weights, mask, f):
    """delta: the sum of the f largest neighbour weights (row 0 excluded)."""
    neighbours = mask & (jnp.arange(mask.shape[0]) > 0)
    heaviest = ranks(-weights, jnp.zeros_like(weights), neighbours) < f
    return jnp.sum(jnp.where(heaviest & neighbours, weights, 0.0))


def cumulative_weight_by_distance(distances, weights, keys, mask):
    """For each valid row, the weight of the valid rows up to and including it, nearest first.

    Rows tied in value (same distance and tie key: identical rows) are counted together,
    so a row's cumulative weight includes every copy of itself whatever the inbox order.
    """
    d = jnp.where(mask, distances, jnp.inf)
    up_to = (d[:, None] < d[None, :]) | ((d[:, None] == d[None, :]) & (keys[:, None] <= keys[None, :]))
    up_to = up_to & mask[:, None]
    return jnp.sum(jnp.where(up_to, weights[:, None], 0.0), axis=0)


def _gossip_step(x, weights, radius, distances, step_size=1.0):
    """``x_0 + step_size * sum_j w_j clip(x_j - x_0, radius)``; ``distances`` are the
    ``||x_j - x_0||``."""
    return x[0] + step_size * clipped_sum(x, x[0], weights, radius, distances)


@rule_spec
class ClippedGossip(Rule):
    radius: float | None = hyperparameter(None, optional=True, positive=True)
    name: ClassVar[str] = "clipped_gossip"
    robustness: ClassVar[str] = "bounded"

    def required_count(self, f):
        return _one(f) if self.radius is not None else _f_plus_one(f)

    def apply(self, x, *, f, mask, weights, key, count):
        del key, count
        weights = normalized_weights(weights, mask)
        distances, keys = distances_and_keys(x)
        radius = self.radius if self.radius is not None else self.adaptive_radius(distances, keys, f, mask, weights)
        return _gossip_step(x, weights, radius, distances)

    @staticmethod
    def adaptive_radius(distances, keys, f, mask, weights):
        """He, Karimireddy and Jaggi's radius: sqrt(sum_{kept} w_j d_j^2 / delta), the kept
        rows being the nearest ones whose cumulative weight stays within 1 - delta
        (``distances``, ``keys``: ``distances_and_keys(x)``)."""
        delta = byzantine_weight(weights, mask, f)
        cumulative = cumulative_weight_by_distance(distances, weights, keys, mask)
        kept = mask & (cumulative <= 1.0 - delta + WEIGHT_TOLERANCE) & jnp.isfinite(distances)
        energy = jnp.sum(jnp.where(kept, weights * distances**2, 0.0))
        return jnp.where(delta > 0, jnp.sqrt(energy / jnp.where(delta > 0, delta, 1.0)), jnp.inf)


@rule_spec
class CSPlus(Rule):
    step_size: float = hyperparameter(1.0, positive=True)
    name: ClassVar[str] = "cs_plus"
    min_count = staticmethod(_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del key, count
        weights = normalized_weights(weights, mask)
        distances, keys = distances_and_keys(x)
        delta = byzantine_weight(weights, mask, f)
        cumulative = cumulative_weight_by_distance(distances, weights, keys, mask)
        inside = mask & (cumulative <= 1.0 - 2.0 * delta + WEIGHT_TOLERANCE) & jnp.isfinite(distances)
        radius = jnp.max(jnp.where(inside, distances, 0.0))
        return _gossip_step(x, weights, jnp.where(delta > 0, radius, jnp.inf), distances, self.step_size)


# =========================================================================== pre-aggregators


def _input_weights(weights, mask):
    """The weights a pre-aggregator passes on: 1 per valid row by default; masked rows 0."""
    weights = jnp.ones(mask.shape, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    return jnp.where(mask, weights, 0.0)


@rule_spec
class NNM(Rule):
    name: ClassVar[str] = "nnm"
    min_count = staticmethod(_two_f_plus_one)
    preaggregator: ClassVar[bool] = True

    def apply(self, x, *, f, mask, weights, key, count):
        del key
        geometry = inbox_geometry(x, mask)
        members = nearest_sets(geometry.distances, geometry.keys, mask, count - f)
        # A non-finite row is only ever its own neighbour: its own mix becomes NaN.
        mixed = mix_rows(members.astype(x.dtype) / jnp.maximum(count - f, 1).astype(x.dtype), x, geometry.finite)
        return mixed, mask, _input_weights(weights, mask)


def _clip_around(x, radius, around, norms=None):
    """Every row clipped to norm <= radius around zero or around row 0 (non-finite -> zero);
    ``norms``: the rows' ``_norms_and_keys(x, around)[0]`` when the caller has them."""
    center = jnp.zeros_like(x[:1]) if around == "zero" else x[:1]
    factors = clip_factors(_norms_and_keys(x, around)[0] if norms is None else norms, radius)
    return center + jnp.where((factors != 0)[:, None], (x - center) * factors[:, None], 0.0)


@rule_spec
class ARC(Rule):
    around: str = hyperparameter("zero", static=True, choices=("zero", "own"))
    name: ClassVar[str] = "arc"
    min_count = staticmethod(_two_f_plus_one)
    preaggregator: ClassVar[bool] = True

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return self.around == "own"

    def apply(self, x, *, f, mask, weights, key, count):
        del key
        norms, keys = _norms_and_keys(x, self.around)
        clipped_count = (2 * f * (count - f)) // count
        rank = ranks(-norms, -keys, mask)
        radius = jnp.sum(jnp.where(rank == clipped_count, norms, 0.0))
        return _clip_around(x, radius, self.around, norms), mask, _input_weights(weights, mask)


@rule_spec
class Clip(Rule):
    radius: float = hyperparameter(1.0, positive=True)
    around: str = hyperparameter("zero", static=True, choices=("zero", "own"))
    name: ClassVar[str] = "clip"
    preaggregator: ClassVar[bool] = True

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return self.around == "own"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        return _clip_around(x, self.radius, self.around), mask, _input_weights(weights, mask)


@rule_spec
class Bucketing(Rule):
    size: int = hyperparameter(2, static=True, minimum=1)
    name: ClassVar[str] = "bucketing"
    preaggregator: ClassVar[bool] = True
    uses_key: ClassVar[bool] = True
    order_invariant: ClassVar[bool] = False  # a random grouping: invariant in distribution only
    tolerates_nonfinite: ClassVar[bool] = False  # a group holding a non-finite row is NaN

    def output_count(self, count: int) -> int:
        return 1 + -(-(count - 1) // self.size)

    def apply(self, x, *, f, mask, weights, key, count):
        del f, count
        inbox_size = x.shape[0]
        neighbours = mask & (jnp.arange(inbox_size) > 0)
        shuffle = jax.random.uniform(key, (inbox_size,))
        position = ranks(shuffle, jnp.zeros_like(shuffle), neighbours)
        bucket = jnp.where(neighbours, 1 + position // self.size, 0)
        members = bucket[None, :] == jnp.arange(inbox_size)[:, None]
        members = members & (mask[None, :])
        sizes = jnp.sum(members, axis=1)
        means = mix_rows(members.astype(x.dtype) / jnp.maximum(sizes, 1)[:, None].astype(x.dtype), x, finite_rows(x))
        new_weights = members.astype(jnp.float32) @ _input_weights(weights, mask)
        new_mask = sizes > 0
        new_x = jnp.where(new_mask[:, None], means, x[:1])
        return new_x, new_mask, jnp.where(new_mask, new_weights, 0.0)


for _spec in (
    Mean, Median, TrimmedMean, Meamed, Phocas, Krum, MultiKrum, Bulyan, GeometricMedian, CenteredClipping,
    MDA, MDAGreedy, CGE, Aksel, NNA, IOS, ClippedGossip, CSPlus, NNM, ARC, Clip, Bucketing,
):  # fmt: skip
    AGGREGATORS[_spec.name] = _spec
