"""Rules from high-dimensional robust mean estimation: filters along the top eigenvector
of the inbox's covariance (filter, soft_filter, caf, que), divide-and-conquer (dnc) and
the exact smallest-top-eigenvalue subset (smea).

Everything runs in K-space: one distance pass over the inbox (``ops.inbox_geometry``,
the native kernel on CPU) gives the squared distances, from which the covariance of any
weighting of the rows follows exactly (``ops.centered_gram``, ``ops.covariance_spectrum``:
an exact K x K eigendecomposition, never a single power step); the output is one
weighted mean of the rows. So a filter costs about a distance rule (Krum), whatever d.

Shared conventions:
- a row is *usable* when valid, finite and at a finite squared distance from row 0
  (``ops.usable_rows``). Unusable rows start with weight 0 and count as removed, so they
  use up the removal budget first;
- mixing weights are ignored (every usable row starts with weight 1), as Krum does;
- the *spread* of a weighting is the mean of the covariance's other possibly non-zero
  eigenvalues, ``(trace - lambda_1) / (r - 1)`` with ``r = min(d, rows with weight - 1)``
  (0 when r <= 1). A filter fires when the top eigenvalue exceeds ``threshold`` times the
  spread: one direction stands out from the others. With K << d the covariance has rank
  K - 1, so a threshold set from a known honest variance (as in the papers, which assume
  n >> d) would always fire; this one is relative to the inbox itself, and it fires at
  any rank (a spread of trace / r could never be exceeded twice at r <= 2, as in a ring's
  3-row inboxes). With r <= 1 it fires whenever the rows differ;
- the row removed first is the one with the largest score; scores within
  ``SCORE_TIE`` (1e-5) of the largest count as equal, and are broken by the larger tie
  key (``ops.tie_key``), then the lower index, so that an exact tie computed in float32
  is not decided by rounding (which depends on the rows' order);
- every rule needs count >= 2f + 1 and returns ``x[0]`` below it.

Claims: order-invariant, translation-equivariant, tolerant of non-finite Byzantine rows.
No robustness class of the contract suite is claimed: their guarantees are bounds in
terms of the honest covariance, which ``decentral.robustness`` measures.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ._checks import two_f_plus_one
from ._public import public_function
from ._spec import Rule, hyperparameter, rule_spec
from ._subsets import SubsetSearch, kept_subsets, search_bound
from .ops import (
    centered_gram,
    covariance_spectrum,
    finite_rows,
    inbox_geometry,
    ranks,
    selection_mean,
    until_stopped,
    usable_rows,
    weighted_mean,
)


class Spectrum(NamedTuple):
    """The covariance of one weighting of the rows, in K-space."""

    values: jax.Array  #: f32[k], top eigenvalues, decreasing
    projections: jax.Array  #: f32[K, k], (x_i - mu) . v_m
    norms: jax.Array  #: f32[K], ||x_i - mu||^2
    spread: jax.Array  #: f32, the mean of the other eigenvalues (see the module docstring)


def spectrum(distances, weights, dim: int, k: int = 1) -> Spectrum:
    """The top-``k`` spectrum of the rows' covariance under ``weights`` (module docstring)."""
    gram = centered_gram(distances, weights)
    values, projections = covariance_spectrum(gram, weights, k)
    share = weights / jnp.maximum(jnp.sum(weights), 1e-30)
    norms = jnp.diagonal(gram)
    rank = jnp.minimum(dim, jnp.sum(weights > 0) - 1)
    others = jnp.maximum(jnp.sum(share * norms) - values[0], 0.0)  # trace - lambda_1
    spread = jnp.where(rank > 1, others / jnp.maximum(rank - 1, 1), 0.0)
    return Spectrum(values, projections, norms, spread)


#: Scores within this fraction of the largest one count as tied, and ties are broken by
#: value (``ops.tie_key``): an exact tie (a symmetric inbox) computed with float32
#: rounding must not be decided by the rounding, which depends on the rows' order.
SCORE_TIE = 1e-5


def tied_scores(scores, alive):
    """``scores`` snapped to a grid of ``SCORE_TIE`` times the largest finite one among
    the ``alive`` rows, so that rounding noise cannot split a tie."""
    top = jnp.max(jnp.where(alive & jnp.isfinite(scores), jnp.abs(scores), 0.0))
    step = top * SCORE_TIE
    return jnp.where(step > 0, jnp.round(scores / jnp.where(step > 0, step, 1.0)) * step, scores)


def _worst_row(scores, keys, weights):
    """One-hot bool[K] of the weighted row with the largest score (ties within
    ``SCORE_TIE``: larger key, then lower index)."""
    alive = weights > 0
    scores = jnp.where(alive & jnp.isfinite(scores), tied_scores(scores, alive), -jnp.inf)
    return (ranks(-scores, -keys, alive) == 0) & alive


def _projection_scores(found: Spectrum):
    """``tau_i = ((x_i - mu) . v_1)^2``: the squared projection on the top eigenvector."""
    return jnp.square(found.projections[:, 0])


def _start(x, mask):
    """``(distances, keys, weights, removed)``: the inbox's geometry, usable rows at weight 1,
    and the number of valid rows already removed for being unusable."""
    geometry = inbox_geometry(x, mask)
    usable = usable_rows(geometry, mask)
    removed = jnp.sum(mask, dtype=jnp.int32) - jnp.sum(usable, dtype=jnp.int32)
    return geometry.distances, geometry.keys, usable.astype(x.dtype), removed


def filtered_weights(x, mask, f, threshold, score, k: int = 1):
    """The weights (0 or 1) left by removing, one at a time and at most f in all, the row
    with the largest ``score(spectrum)`` while the top eigenvalue exceeds ``threshold``
    times the spread (``filter``, ``que``). At most (K - 1) // 2 steps: f <= (count - 1) / 2."""
    distances, keys, weights, removed = _start(x, mask)
    dim = x.shape[1]

    def step(state):
        weights, removed, stopped = state
        found = spectrum(distances, weights, dim, k)
        fires = ~stopped & (removed < f) & (found.values[0] > threshold * found.spread)
        weights = jnp.where(fires & _worst_row(score(found), keys, weights), 0.0, weights)
        return weights, removed + fires.astype(jnp.int32), ~fires

    weights, _, _ = until_stopped((x.shape[0] - 1) // 2, step, (weights, removed, jnp.asarray(False)))
    return weights


def down_weight(weights, scores):
    """``c_i (1 - tau_i / tau_max)`` over the weighted rows, and whether ``tau_max > 0``.

    Rows at ``tau_max`` (within ``SCORE_TIE``) get exactly 0, and no weight goes
    negative: XLA may divide by multiplying with a reciprocal, and a removed outlier left
    at weight 1e-8 would become the next ``tau_max`` and stall the filter.
    """
    alive = weights > 0
    top = jnp.max(jnp.where(alive, scores, 0.0))
    moved = top > 0
    scaled = weights * jnp.maximum(1.0 - scores / jnp.where(moved, top, 1.0), 0.0)
    updated = jnp.where(alive & (scores < top * (1.0 - SCORE_TIE)), scaled, 0.0)
    return jnp.where(moved, updated, weights), moved


# =========================================================================== filters


@rule_spec
class Filter(Rule):
    """Iterative filtering along the top eigenvector of the inbox's covariance.

    Start from the usable valid rows. While fewer than f rows are removed and the top
    eigenvalue of their covariance exceeds ``threshold`` times its spread (the mean of
    the other eigenvalues), remove the row with the largest squared projection on the top
    eigenvector. Return the mean of the rows left.

    Guarantee (papers): with an honest covariance bounded by sigma^2 and a fraction
    eps < 1/2 of outliers, the error is O(sigma sqrt(eps)). Here the threshold is
    relative to the spread, not to a known sigma (module docstring), and at most f rows
    are removed.

    Tolerates:
        up to f non-finite rows (removed before anything else).

    Returns:
        f32[d], the mean of at least count - f rows.

    Raises:
        ValueError: count < 2f+1, or threshold <= 0.

    References:
        Diakonikolas, Kamath, Kane, Li, Moitra, Stewart, "Robust estimators in high
        dimensions without the computational intractability", FOCS 2016; "Being robust
        (in high dimensions) can be practical", ICML 2017. Requires count >= 2f+1.
    """

    threshold: float = hyperparameter(2.0, positive=True)
    name: ClassVar[str] = "filter"
    min_count = staticmethod(two_f_plus_one)

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key, count
        return weighted_mean(x, filtered_weights(x, mask, f, self.threshold, _projection_scores))


@rule_spec
class SoftFilter(Rule):
    """Soft filtering: down-weight every row by its squared projection on the top eigenvector.

    Start with weight 1 on the usable valid rows. While the weight removed is below f and
    the top eigenvalue of the weighted covariance exceeds ``threshold`` times its spread,
    set ``c_i <- c_i (1 - tau_i / tau_max)``, tau_i the squared projection of row i on the
    top eigenvector. Return the weighted mean. Each step zeroes the row of largest tau,
    so at most f steps run.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or threshold <= 0.

    References:
        Steinhardt, Charikar, Valiant, "Resilience: a criterion for learning in the
        presence of arbitrary outliers", ITCS 2018; Diakonikolas et al., ICML 2017.
        Requires count >= 2f+1.
    """

    threshold: float = hyperparameter(2.0, positive=True)
    name: ClassVar[str] = "soft_filter"
    min_count = staticmethod(two_f_plus_one)

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        distances, _, weights, _ = _start(x, mask)
        dim, threshold = x.shape[1], self.threshold

        def step(state):
            weights, stopped = state
            found = spectrum(distances, weights, dim)
            runs = ~stopped & (count - jnp.sum(weights) < f) & (found.values[0] > threshold * found.spread)
            updated, moved = down_weight(weights, _projection_scores(found))
            runs = runs & moved
            return jnp.where(runs, updated, weights), ~runs

        weights, _ = until_stopped((x.shape[0] - 1) // 2, step, (weights, jnp.asarray(False)))
        return weighted_mean(x, weights)


@rule_spec
class CAF(Rule):
    """CAF, the covariance-bound-agnostic filter: soft filtering until 2f rows' weight is
    gone, returning the weighted mean whose covariance had the smallest top eigenvalue.

    Start with weight 1 on the usable valid rows. While the total weight exceeds
    count - 2f: compute the weighted mean and the top eigenpair of the weighted
    covariance, keep the mean if its top eigenvalue is the smallest yet, then set
    ``c_i <- c_i (1 - tau_i / tau_max)``. Needs no bound on the honest covariance nor a
    threshold. As ByzFL's CAF, except: an exact top eigenpair (ByzFL takes one power step
    from a random start), the mean of the rows at f = 0 (ByzFL returns None), and a stop
    when every tau is 0 (ByzFL divides by zero).

    Guarantee (paper): (f, kappa)-robust with kappa = O(f / (n - 2f)) relative to the
    honest covariance's top eigenvalue, without knowing it.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    References:
        Allouah, Guerraoui, Stephan, "Towards trustworthy federated learning with
        untrusted participants", ICML 2025. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "caf"
    min_count = staticmethod(two_f_plus_one)

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        distances, _, weights, _ = _start(x, mask)
        dim = x.shape[1]

        def step(state):
            weights, best, best_value, stopped = state
            runs = ~stopped & (jnp.sum(weights) > count - 2 * f)
            found = spectrum(distances, weights, dim)
            better = runs & (found.values[0] < best_value)
            best = jnp.where(better, weights, best)
            best_value = jnp.where(better, found.values[0], best_value)
            updated, moved = down_weight(weights, _projection_scores(found))
            runs = runs & moved
            return jnp.where(runs, updated, weights), best, best_value, ~runs

        start = (weights, weights, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(False))
        _, best, _, _ = until_stopped(x.shape[0] - 1, step, start)
        return weighted_mean(x, best)


def quantum_entropy_scores(found: Spectrum, alpha):
    """``(x_i - mu)^T exp(beta Sigma) (x_i - mu)``, ``beta = alpha / lambda_1``, from the
    full spectrum: ``||x_i - mu||^2 + sum_m (exp(beta lambda_m) - 1) P[i, m]^2``. The
    normalisation by ``tr exp(beta Sigma)`` is common to all rows and left out."""
    beta = alpha / jnp.where(found.values[0] > 0, found.values[0], 1.0)
    return found.norms + jnp.square(found.projections) @ jnp.expm1(beta * found.values)


@rule_spec
class QUE(Rule):
    """Quantum-entropy scoring filter: as ``filter``, but the row removed is the one with
    the largest quantum-entropy score.

    Score of row i: ``(x_i - mu)^T U (x_i - mu)``, ``U = exp(beta Sigma) / tr exp(beta Sigma)``,
    ``beta = alpha / lambda_1`` (Sigma the covariance of the rows left, lambda_1 its top
    eigenvalue), computed exactly from the K x K spectrum. ``alpha -> 0`` scores by the
    distance to the mean; ``alpha -> inf`` by the projection on the top eigenvector
    (``filter``); in between, every large direction counts, so several attackers pulling
    different ways are caught in one pass. Removal stops, as for ``filter``, after f rows
    or when the top eigenvalue is within ``threshold`` times the spread.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d], the mean of at least count - f rows.

    Raises:
        ValueError: count < 2f+1, alpha <= 0 or threshold <= 0.

    References:
        Dong, Hopkins, Li, "Quantum entropy scoring for fast robust mean estimation and
        improved outlier detection", NeurIPS 2019. Requires count >= 2f+1.
    """

    alpha: float = hyperparameter(4.0, positive=True)
    threshold: float = hyperparameter(2.0, positive=True)
    name: ClassVar[str] = "que"
    min_count = staticmethod(two_f_plus_one)

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key, count
        alpha = self.alpha
        kept = filtered_weights(x, mask, f, self.threshold, lambda found: quantum_entropy_scores(found, alpha), k=x.shape[0])
        return weighted_mean(x, kept)


# =========================================================================== divide and conquer


def dnc_coordinates(key, dim: int, subsample: int, iterations: int):
    """The coordinates ``dnc`` samples, int32[iterations, min(subsample, dim)]: for each
    iteration t, ``min(subsample, dim)`` distinct coordinates drawn from
    ``fold_in(key, t)``."""
    size = min(subsample, dim)
    draws = [jax.random.choice(jax.random.fold_in(key, t), dim, (size,), replace=False) for t in range(iterations)]
    return jnp.stack(draws).astype(jnp.int32)


def _dnc_good_rows(x, mask, usable, f, fraction):
    """Rows kept by one DnC iteration on the columns ``x``: the count - ceil(fraction f)
    usable rows with the smallest squared projection on the top eigenvector of their
    covariance (every usable row when fewer remain)."""
    geometry = inbox_geometry(x, mask)
    usable = usable & usable_rows(geometry, mask)
    found = spectrum(geometry.distances, usable.astype(x.dtype), x.shape[1])
    scores = jnp.where(usable, tied_scores(_projection_scores(found), usable), jnp.inf)
    keep = jnp.sum(mask, dtype=jnp.int32) - jnp.ceil(fraction * f).astype(jnp.int32)
    return (ranks(scores, geometry.keys, usable) < keep) & usable


@rule_spec
class DnC(Rule):
    """Divide-and-conquer: drop the rows that project most on the top eigenvector of the
    covariance of a random subset of coordinates, over several draws.

    For each of ``iterations`` draws of ``min(subsample, d)`` coordinates (from the
    rule's key, ``dnc_coordinates``): centre the usable rows' subsampled vectors at their
    mean, score each row by its squared projection on their top eigenvector, and keep
    the count - ceil(fraction f) lowest-scored rows. Return the mean of the rows kept in
    every draw (``x[0]`` if none is). With ``subsample >= d`` every draw is the same,
    so one runs and the key is unused.

    Tolerates:
        up to f non-finite rows (never kept).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, fraction <= 0, iterations or subsample < 1.

    References:
        Shejwalkar, Houmansadr, "Manipulating the Byzantine: optimizing model poisoning
        attacks and defenses for federated learning", NDSS 2021. Requires count >= 2f+1
        (the paper needs count > fraction f).
    """

    iterations: int = hyperparameter(1, static=True, minimum=1)
    subsample: int = hyperparameter(10_000, static=True, minimum=1)
    fraction: float = hyperparameter(1.0, positive=True)
    name: ClassVar[str] = "dnc"
    min_count = staticmethod(two_f_plus_one)
    uses_key: ClassVar[bool] = True

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, count
        dim = x.shape[1]
        if self.subsample >= dim:
            good = _dnc_good_rows(x, mask, mask, f, self.fraction)
        else:
            usable = mask & finite_rows(x)
            good = usable
            for columns in dnc_coordinates(key, dim, self.subsample, self.iterations):
                good = good & _dnc_good_rows(x[:, columns], mask, usable, f, self.fraction)
        return jnp.where(jnp.any(good), selection_mean(x, good), x[0])


# =========================================================================== smallest top eigenvalue


def top_eigenvalues_of_subsets(distances, members):
    """f32[M]: the top eigenvalue of the covariance of each subset of rows (``members``,
    bool[M, K], uniform weights), from one distance matrix: M exact K x K eigenvalue
    problems, no pass over the inbox."""

    def top(member):
        weights = member.astype(distances.dtype)
        gram = centered_gram(distances, weights)
        scale = jnp.sqrt(weights)
        return jnp.linalg.eigvalsh(scale[:, None] * gram * scale[None, :] / jnp.maximum(jnp.sum(weights), 1.0))[-1]

    return jax.vmap(top)(members)


@rule_spec
class SMEA(SubsetSearch, Rule):
    """SMEA, smallest maximum eigenvalue averaging: the mean of the count-f rows whose
    covariance has the smallest top eigenvalue.

    Exact: every way to remove f of the valid rows is scored (``_subsets``: the
    sum_{j <= max_f} C(K, j) removal sets, 67 at K = 11 and f <= 2, up to
    ``_subsets.SUBSET_LIMIT``), each by an exact K x K eigenvalue problem on the distance
    matrix (ByzFL scores each subset by one power step from a random start). ``max_f``
    (static) as for :func:`mda`. Subsets holding an unusable row (non-finite, or at an
    overflowing distance) are never chosen; with none left, the own vector.

    Guarantee (paper): (f, kappa)-robust with kappa = O(f / (n - 2f)) relative to the
    honest covariance's top eigenvalue, the best order possible.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or more candidate subsets than the limit.

    References:
        Allouah, Guerraoui, Gupta, Pinot, Stephan, "On the privacy-robustness-utility
        trilemma in distributed learning", ICML 2023. Requires count >= 2f+1.
    """

    max_f: int | None = hyperparameter(None, static=True, optional=True, minimum=0)
    name: ClassVar[str] = "smea"
    min_count = staticmethod(two_f_plus_one)

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key, count
        geometry = inbox_geometry(x, mask)
        usable = usable_rows(geometry, mask)
        members, allowed = kept_subsets(mask, f, search_bound(self.name, x.shape[0], f, self.max_f))
        allowed = allowed & ~jnp.any(members & ~usable[None, :], axis=1)
        scores = jnp.where(allowed, top_eigenvalues_of_subsets(geometry.distances, members), jnp.inf)
        best = jnp.argmin(scores)
        return jnp.where(allowed[best], selection_mean(x, members[best]), x[0])


filter_ = public_function(Filter)
soft_filter = public_function(SoftFilter)
caf = public_function(CAF)
que = public_function(QUE)
dnc = public_function(DnC)
smea = public_function(SMEA)
