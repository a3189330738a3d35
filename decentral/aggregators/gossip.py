"""Robust gossip by clipping around the own vector (clipped_gossip, cs_plus): the node's
own vector plus the weighted, clipped differences to its neighbours, the radius chosen
from the weight ``delta`` that f Byzantine neighbours may hold.

Each spec holds its documentation, its hyperparameters and its maths (``apply``, on an
inbox prepared by ``_checks.prepare``); its public function is derived from it
(``_public.public_function``).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from ._checks import f_plus_one, normalized_weights, one
from ._public import public_function
from ._spec import Rule, hyperparameter, rule_spec
from .ops import clipped_sum, distances_and_keys, ranks

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
    """Self-centered clipping (ClippedGossip): x_0 + sum_j w_j clip(x_j - x_0, tau).

    ``radius`` fixes tau. With ``radius=None`` tau is the paper's adaptive radius:
    delta = the Byzantine weight, taken as the sum of the f largest neighbour weights;
    the kept rows are the nearest (row 0 first) whose cumulative weight is at most
    1 - delta; tau = sqrt(sum_kept w_j ||x_j - x_0||^2 / delta), and tau = inf when
    delta = 0 (plain gossip). The output moves at most tau from row 0.

    Tolerates:
        any number of non-finite rows (they count as zero differences).

    Returns:
        f32[d].

    Raises:
        ValueError: count < f+1 (adaptive), radius <= 0.

    References:
        He, Karimireddy, Jaggi, "Byzantine-robust decentralized learning via ClippedGossip",
        2022. Guarantee: an O(delta_max zeta^2 / gamma^2) neighbourhood (gamma: spectral gap).
    """

    radius: float | None = hyperparameter(None, optional=True, positive=True)
    name: ClassVar[str] = "clipped_gossip"
    robustness: ClassVar[str] = "bounded"

    def required_count(self, f):
        return one(f) if self.radius is not None else f_plus_one(f)

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
    """CS+ robust gossip: x_0 - step_size * sum_j w_j clip(x_0 - x_j, tau).

    delta = the sum of the f largest neighbour weights; tau = the largest ||x_j - x_0||
    among the nearest rows (row 0 first) whose cumulative weight is at most 1 - 2 delta,
    so exactly the 2-delta heaviest-farthest weight is clipped; tau = inf when delta = 0.

    Tolerates:
        any number of non-finite rows (they count as zero differences).

    Returns:
        f32[d].

    Raises:
        ValueError: count < f+1, step_size <= 0.

    References:
        Gaucher, Dieuleveut, Hendrikx, "Unified breakdown analysis for Byzantine robust
        gossip", ICML 2025 (arXiv 2410.10418). Requires count >= f+1.
    """

    step_size: float = hyperparameter(1.0, positive=True)
    name: ClassVar[str] = "cs_plus"
    min_count = staticmethod(f_plus_one)
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


clipped_gossip = public_function(ClippedGossip)
cs_plus = public_function(CSPlus)
