"""Selection rules: the mean of rows chosen by their distances, pairwise (krum,
multi_krum, bulyan, mda, mda_greedy) or to a centre (cge: zero or the own vector;
aksel: the coordinate-wise median; nna: the own vector).

Each spec holds its documentation, its hyperparameters and its maths (``apply``, on an
inbox prepared by ``_checks.prepare``); its public function is derived from it
(``_public.public_function``). Rows are chosen by rank (``ops.ranks``): equal scores are
ordered by value (``ops.tie_key``), never by row index, and non-finite rows are
infinitely far from everything, so they are chosen last.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ._checks import four_f_plus_three, two_f_plus_one, two_f_plus_three
from ._public import public_function
from ._rows import closest_window_start, coordinate_median, sorted_valid, window_mean
from ._spec import Rule, hyperparameter, rule_spec
from ._subsets import SubsetSearch, kept_subsets, search_bound
from .ops import distances_and_keys, inbox_geometry, nearest_sets, norms_and_keys, ranks, selection_mean, smallest_k_sum

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
    """Krum: the row with the smallest sum of squared distances to its nearest neighbours.

    score(i) = sum of ||x_i - x_j||^2 over the k nearest other valid rows, with
    k = count - f - 2 (``variant="paper"``, NeurIPS 2017) or k = count - f - 1
    (``variant="byzfl"``, as ByzFL and ByzantineMomentum compute it). Returns the
    best-scored row; equal scores are broken by value (``tie_key``). Non-finite rows are
    infinitely far from every other row, so they are never chosen while honest rows remain.

    The row chosen may be a Byzantine one close to the honest rows, outside their
    coordinate range (rows (0, 0), (1, 0), (0, 1), (1, 1) and a Byzantine (0.5, 1.05)
    give the latter, f=1). Its score is at most an honest row's, at most k D^2 (D: the
    honest rows' diameter), and at least k - f + 1 of its k neighbours are honest: it is
    within sqrt(k / (k - f + 1)) D <= sqrt(count) D of an honest row.

    Tolerates:
        up to f non-finite rows (including rows whose squared norm overflows float32).

    Returns:
        f32[d], one of the valid rows.

    Raises:
        ValueError: count < 2f+3, or an unknown variant.

    References:
        Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine learning with adversaries:
        Byzantine tolerant gradient descent", NeurIPS 2017. Requires count >= 2f+3.
    """

    variant: str = hyperparameter("paper", static=True, choices=("paper", "byzfl"))
    name: ClassVar[str] = "krum"
    min_count = staticmethod(two_f_plus_three)
    robustness: ClassVar[str] = "near_honest"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        geometry = inbox_geometry(x, mask)
        scores = krum_scores(geometry.distances, mask, _krum_neighbours(count, f, self.variant))
        return _best_row(x, mask, scores, geometry.keys)


@rule_spec
class MultiKrum(Rule):
    """Multi-Krum: the average of the m best Krum-scored rows (default m = count - f).

    Scores as :func:`krum`. At run time m is capped at the valid count.

    For m <= count - f every row averaged has a score at most the largest honest one, so
    each is within sqrt(k / (k - f + 1)) D of an honest row, as for :func:`krum`, and the
    output within that of the honest rows' hull; Byzantine rows among them may take it out
    of the honest coordinate range. A larger m averages Byzantine rows whatever they hold.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+3, m < 1, or an unknown variant.

    References:
        Blanchard et al., NeurIPS 2017; El Mhamdi et al., ICML 2018. Requires count >= 2f+3.
    """

    m: int | None = hyperparameter(None, optional=True, minimum=1)
    variant: str = hyperparameter("paper", static=True, choices=("paper", "byzfl"))
    name: ClassVar[str] = "multi_krum"
    min_count = staticmethod(two_f_plus_three)
    robustness: ClassVar[str] = "near_honest"

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
    selection. Returns the selection mask and theta.
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


def _mean_closest_to(sorted_values, count, keep, center):
    """Per coordinate, the mean of the ``keep`` of the first ``count`` sorted values
    closest to ``center``."""
    start = closest_window_start(sorted_values, count, keep, center)
    return window_mean(sorted_values, start, keep)


@rule_spec
class Bulyan(Rule):
    """Bulyan: theta = count - 2f rows chosen by repeated Krum, then a coordinate-wise
    average of the beta = theta - 2f selected values closest to their median.

    Inner Krum: with r rows remaining it scores each by its k = r - f - 2 nearest other
    remaining rows; once fewer than f + 3 rows remain (the last steps, where that formula
    gives k < 1) it uses k = 1 nearest neighbour. Scores are recomputed on the remaining
    rows at every step.

    Byzantine rows that Krum selects may bring values just beyond the honest range among
    the beta closest to the median, so the output may leave the honest range; it stays
    within the range widened by its width on each side: the median of the selected values
    lies in the honest range, and every value kept is no farther from it than the
    farthest selected honest value.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 4f+3.

    References:
        El Mhamdi, Guerraoui, Rouault, "The hidden vulnerability of distributed learning in
        Byzantium", ICML 2018. Requires count >= 4f+3.
    """

    name: ClassVar[str] = "bulyan"
    min_count = staticmethod(four_f_plus_three)
    robustness: ClassVar[str] = "coordinatewise_widened"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        selected, theta = bulyan_selection(x, mask, f, count)
        values = sorted_valid(x, selected)
        return _mean_closest_to(values, theta, theta - 2 * f, coordinate_median(values, theta))


# =========================================================================== minimum diameter

def _diameters(members, distances):
    """Per subset ([S, K] bool): max and sum of pairwise squared distances inside it."""
    finite = jnp.where(jnp.isfinite(distances), distances, 0.0)
    spread = jnp.sum((members.astype(jnp.float32) @ finite) * members, axis=-1) / 2
    diameter = jnp.zeros(members.shape[0], dtype=distances.dtype)
    for i in range(members.shape[1]):
        row = jnp.max(jnp.where(members, distances[i][None, :], 0.0), axis=-1)
        diameter = jnp.maximum(diameter, jnp.where(members[:, i], row, 0.0))
    return diameter, spread


def _first_best(*criteria):
    """Index of the lexicographic minimum over ``criteria`` (first index on exact ties)."""
    best = jnp.ones(criteria[0].shape, dtype=bool)
    for values in criteria:
        values = jnp.where(best, values, jnp.inf)
        best = best & (values == jnp.min(values))
    return jnp.argmax(best)


@rule_spec
class MDA(SubsetSearch, Rule):
    """Minimum-diameter averaging: the mean of the count-f rows with the smallest diameter.

    Exact: searches every way to remove f of the valid rows (``_subsets``: the
    sum_{j <= max_f} C(K, j) removal sets of at most ``max_f`` rows, 67 at K = 11 and
    f <= 2, 7,547 at K = 21 and f <= 4), up to ``_subsets.SUBSET_LIMIT`` (20,000).
    ``max_f`` (static) is the largest f the rule will be called with: the engine sets it
    to the run's largest f; left None, it is f when f is concrete, else the largest f the
    inbox admits. Equal diameters are broken by the sum of pairwise squared distances.

    The rows kept may include Byzantine ones within the honest rows' diameter D of them
    (honest 0 and 1, Byzantine 1.5: the mean of 1 and 1.5, f=1): the subset's diameter is
    at most D and it holds an honest row, so the output is within f / (count - f) * D of
    the honest rows' hull, not necessarily in their coordinate range.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or more candidate subsets than the limit (use
        :func:`mda_greedy`).

    References:
        El Mhamdi, Guerraoui, Rouault, "Distributed momentum for Byzantine-resilient
        stochastic gradient descent", ICLR 2021 (MDA); Rousseeuw 1985 (MVE). Requires
        count >= 2f+1.
    """

    max_f: int | None = hyperparameter(None, static=True, optional=True, minimum=0)
    name: ClassVar[str] = "mda"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "near_honest"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key, count
        subsets, allowed = kept_subsets(mask, f, search_bound(self.name, x.shape[0], f, self.max_f))
        distances, keys, _ = inbox_geometry(x, mask)
        diameter, spread = _diameters(subsets, distances)
        # third criterion, on values: the members' summed tie keys (equal only for subsets
        # holding the same vectors, whose means are equal)
        members_key = subsets.astype(jnp.float32) @ keys
        best = _first_best(
            jnp.where(allowed, diameter, jnp.inf), jnp.where(allowed, spread, jnp.inf), jnp.where(allowed, members_key, jnp.inf)
        )
        return selection_mean(x, subsets[best])


@rule_spec
class MDAGreedy(Rule):
    """Greedy minimum-diameter averaging for large inboxes, a 2-approximation of :func:`mda`.

    For each valid row i, take the ball B_i of the count-f rows nearest to x_i (itself
    included); return the mean of the ball with the smallest diameter. Guarantee: if S* is
    the optimal subset of diameter D*, the ball around any i in S* has radius <= D*, so the
    returned subset has diameter <= 2 D* <= 2 x (diameter of any count-f honest rows).
    It holds an honest row, so the output is within 2 f / (count - f) * D of the honest
    rows' hull (D: their diameter); as for :func:`mda`, not necessarily in their
    coordinate range. Cost O(K^2 d + K^3).

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.
    """

    name: ClassVar[str] = "mda_greedy"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "near_honest"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        distances, keys, _ = inbox_geometry(x, mask)
        balls = nearest_sets(distances, keys, mask, count - f)
        diameter, spread = _diameters(balls, distances)
        best = ranks(diameter, spread, mask) == 0
        return selection_mean(x, jnp.any(balls & best[:, None], axis=0))


# =========================================================================== closest to a centre


@rule_spec
class CGE(Rule):
    """Comparative gradient elimination: the mean of the count-f smallest-norm rows.

    ``around="zero"`` uses ||x_j|| (the federated definition); ``around="own"`` uses
    ||x_j - x_0||, the meaningful choice when parameters are gossiped.

    Tolerates:
        up to f non-finite rows (their norm is +inf).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or an unknown ``around``.

    References:
        Gupta, Vaidya, "Byzantine fault-tolerance in peer-to-peer distributed gradient-descent",
        2021. Requires count >= 2f+1.
    """

    around: str = hyperparameter("zero", static=True, choices=("zero", "own"))
    name: ClassVar[str] = "cge"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return self.around == "own"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return _best_rows(x, mask, *norms_and_keys(x, self.around), count - f)


@rule_spec
class Aksel(Rule):
    """Aksel: the mean of the rows closest (squared l2) to the coordinate-wise median.

    Keeps floor((count+1)/2) rows (``mode="mid"``) or count - f rows (``mode="n-f"``).
    The median is :func:`median` (mean of the two middles for an even count).

    Tolerates:
        up to f non-finite rows (``mode='n-f'``) or fewer than half (``mode='mid'``).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or an unknown mode.

    References:
        ByzantineMomentum's ``aksel`` rule (Rouault, EPFL). Requires count >= 2f+1.
    """

    mode: str = hyperparameter("mid", static=True, choices=("mid", "n-f"))
    name: ClassVar[str] = "aksel"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        center = coordinate_median(sorted_valid(x, mask), count)
        keep = (count + 1) // 2 if self.mode == "mid" else count - f
        return _best_rows(x, mask, *distances_and_keys(x, center), keep)


@rule_spec
class NNA(Rule):
    """Nearest-neighbour averaging: the mean of the count-f rows closest to row 0 (itself included).

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    References:
        Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan, "Robust collaborative learning
        with linear gradient overhead" (MoNNA), ICML 2023. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "nna"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return _best_rows(x, mask, *distances_and_keys(x), count - f)


krum = public_function(Krum)
multi_krum = public_function(MultiKrum)
bulyan = public_function(Bulyan)
mda = public_function(MDA)
mda_greedy = public_function(MDAGreedy)
cge = public_function(CGE)
aksel = public_function(Aksel)
nna = public_function(NNA)
