"""Iterative rules (geometric_median, centered_clipping, ios): a centre refined step by
step, each step a pass over the inbox.

Each spec holds its documentation, its hyperparameters and its maths (``apply``, on an
inbox prepared by ``_checks.prepare``); its public function is derived from it
(``_public.public_function``). On CPU the steps run in a native kernel that reads each
inbox from memory once (``_native.reweighted``, ``_native.outlier_scissor``); the
portable loops here run elsewhere, and are what ``tests/test_native.py`` holds the
kernels to.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp

from . import _native
from ._checks import f_plus_one, normalized_weights, two_f_plus_one
from ._dispatch import on_cpu_natively, per_node
from ._public import public_function
from ._spec import Rule, hyperparameter, rule_spec
from .ops import clipped_sum, distances_and_keys, distances_to, precedes, tie_direction, weighted_mean


def _starting_point(rule, start, x, initial="own"):
    """The first iterate: ``start`` when given, else the zero vector (``initial="zero"``)
    or row 0 (``"own"``); None stands for row 0 (the native kernels read it in place)."""
    if start is None:
        return jnp.zeros(x.shape[1:], x.dtype) if initial == "zero" else None
    start = jnp.asarray(start, x.dtype)
    if start.shape != x.shape[1:]:
        raise ValueError(f"{rule}: start must have shape {x.shape[1:]} (one vector like the inbox rows), got {start.shape}.")
    return start


def _reweighted(rule, x, weights, start, parameter, kind, portable):
    """``rule.iterations`` steps of ``portable(x, weights, start, parameter, iterations)``;
    on CPU the native kernel of the same steps (``_native.reweighted``), which reads each
    inbox from memory once (``start`` None: from row 0, not a copy of it)."""
    from_own_row = start is None

    def native(x, weights, start, parameter):
        start = None if from_own_row else start
        return _native.reweighted(x, weights, start, parameter, iterations=rule.iterations, kind=kind)

    def iterate(x, weights, start, parameter):
        return portable(x, weights, start, parameter, rule.iterations)

    return on_cpu_natively(native, iterate)(x, weights, x[0] if from_own_row else start, parameter)


# =========================================================================== geometric median


@functools.partial(per_node, static_argnums=(4,))
def _weiszfeld(x, weights, start, smoothing, iterations):
    """``iterations`` smoothed Weiszfeld steps from ``start`` (a few nodes at a time under
    vmap: every step reads the inbox twice, and one node's inbox stays in cache)."""

    def step(_, z):
        distances = distances_to(x, z)
        beta = jnp.where(jnp.isfinite(distances), weights / jnp.maximum(smoothing, distances), 0.0)
        return weighted_mean(x, beta)

    return jax.lax.fori_loop(0, iterations, step, start)


@rule_spec
class GeometricMedian(Rule):
    """Smoothed Weiszfeld approximation of the weighted geometric median.

    z <- sum_j b_j x_j / sum_j b_j with b_j = w_j / max(smoothing, ||z - x_j||), for
    ``iterations`` steps from ``start`` (default: row 0, the node's own vector; or 0 with
    ``initial="zero"``). Rows whose norm is non-finite in float32 get b_j = 0. ``f`` only
    validates.

    Args:
        iterations: number of Weiszfeld steps (static); 8 as in the ClippedGossip code.
        smoothing: nu > 0, the smoothing of the distances (traced); 0.1 as in ByzFL.
            It is in the units of the vectors: starting from row 0, a data point, the
            first step weighs row 0 by w_0 / nu, so a nu far below the inbox's spread
            leaves the output stuck at row 0 (the classic Weiszfeld trap).
        start: f32[d] starting point, or None (then ``initial`` says where to start).
        initial: where to start when ``start`` is None (static): ``"own"`` (default), row
            0; or ``"zero"``, the zero vector, as the ClippedGossip code's ``RFA`` does (with
            8 steps, vectors near 0 then pull the output to them: IPM's -0.1 x the honest
            mean breaks it, see ``experiments/honest_majority_ring``).

    Tolerates:
        any number of non-finite rows (they get weight 0) while one finite row remains.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, iterations < 1, smoothing <= 0.

    References:
        Pillutla, Kakade, Harchaoui, "Robust aggregation for federated learning" (RFA),
        2019; Minsker 2015 for the breakdown bound. Requires count >= 2f+1.
    """

    iterations: int = hyperparameter(8, static=True, minimum=1)
    smoothing: float = hyperparameter(0.1, positive=True)
    start: object = hyperparameter(None, optional=True)
    initial: str = hyperparameter("own", static=True, choices=("own", "zero"))
    name: ClassVar[str] = "geometric_median"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "geometric_median"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        weights = normalized_weights(weights, mask)
        start = _starting_point(self.name, self.start, x, self.initial)
        return _reweighted(self, x, weights, start, self.smoothing, _native.WEISZFELD, _weiszfeld)


# =========================================================================== centered clipping


def _clipping_steps(x, weights, start, radius, iterations):
    """``iterations`` centered-clipping steps ``v <- v + sum_j w_j clip(x_j - v, radius)``."""

    def clip_step(_, v):
        return v + clipped_sum(x, v, weights, radius)

    return jax.lax.fori_loop(0, iterations, clip_step, start)


@rule_spec
class CenteredClipping(Rule):
    """Centered clipping: v <- v + sum_j w_j clip(x_j - v, radius), from ``start`` (default row 0).

    clip(u, t) = u * min(1, t / ||u||). With v starting at row 0 the output moves at most
    ``radius * iterations`` from the node's own vector. Rows with non-finite norms count
    as zero vectors. ``f`` only validates.

    Tolerates:
        any number of non-finite rows (they count as zero vectors).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, radius <= 0, iterations < 1.

    References:
        Karimireddy, He, Jaggi, "Learning from history for Byzantine robust optimization",
        ICML 2021. Requires count >= 2f+1.
    """

    radius: float = hyperparameter(1.0, positive=True)
    iterations: int = hyperparameter(1, static=True, minimum=1)
    start: object = hyperparameter(None, optional=True)
    name: ClassVar[str] = "centered_clipping"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        weights = normalized_weights(weights, mask)
        start = _starting_point(self.name, self.start, x)
        return _reweighted(self, x, weights, start, self.radius, _native.CLIPPING, _clipping_steps)


# =========================================================================== outlier scissor


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


@rule_spec
class IOS(Rule):
    """Iterative outlier scissor, weighted.

    S = valid rows; f times: mu = weighted mean over S, remove the row j != 0 of S farthest
    from mu. Returns the weighted mean over S.

    Equally far rows: the one with the larger ``tie_key``, then the heavier, goes first.
    On CPU (the native kernel) the means are summed in an order fixed by the rows'
    values, so an exact tie in distance is decided the same way whatever the inbox
    order; the portable code (a GPU, or no C++ compiler) sums in row order and may
    decide such a tie by float32 rounding.

    Tolerates:
        up to f non-finite rows: they are infinitely far from any centre and removed first.

    Returns:
        f32[d].

    Raises:
        ValueError: count < f+1.

    References:
        Wu, Chen, Ling, "Byzantine-resilient decentralized stochastic optimization with
        robust aggregation rules", IEEE TSP 2023. Requires count >= f+1.
    """

    name: ClassVar[str] = "ios"
    min_count = staticmethod(f_plus_one)
    robustness: ClassVar[str] = "bounded"

    def apply(self, x, *, f, mask, weights, key, count):
        del key, count
        weights = normalized_weights(weights, mask)
        native = functools.partial(_native.outlier_scissor, direction=tie_direction(x.shape[1]))
        return on_cpu_natively(native, _outlier_scissor)(x, weights, mask, f)


geometric_median = public_function(GeometricMedian)
centered_clipping = public_function(CenteredClipping)
ios = public_function(IOS)
