"""Pre-aggregators (nnm, arc, clip, bucketing): steps that return a new inbox
``(x, mask, weights)`` for the rule after them (``resolve(["nnm", "trimmed_mean"])``).

Each spec holds its documentation, its hyperparameters and its maths (``apply``, on an
inbox prepared by ``_checks.prepare``); its public function is derived from it
(``_public.public_function``). Weights passed on are 1 per valid row by default, 0 for
masked rows.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ._checks import two_f_plus_one
from ._public import public_function
from ._spec import Rule, hyperparameter, rule_spec
from .ops import clip_factors, finite_rows, inbox_geometry, mix_rows, nearest_sets, norms_and_keys, ranks


def _input_weights(weights, mask):
    """The weights a pre-aggregator passes on: 1 per valid row by default; masked rows 0."""
    weights = jnp.ones(mask.shape, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    return jnp.where(mask, weights, 0.0)


@rule_spec
class NNM(Rule):
    """Nearest-neighbour mixing (pre-aggregator): each valid row becomes the mean of its
    count-f nearest valid rows (itself included).

    A row with non-finite entries is infinitely far from the others, so only its own mix
    contains it; that mix becomes NaN, an outlier for the rule that follows.

    Tolerates:
        up to f non-finite rows (their own mix becomes NaN; honest rows stay finite).

    Returns:
        (x, mask, weights): f32[K, d], bool[K], f32[K]; mask and weights unchanged.

    Raises:
        ValueError: count < 2f+1.

    References:
        Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, "Fixing by mixing", AISTATS
        2023. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "nnm"
    min_count = staticmethod(two_f_plus_one)
    preaggregator: ClassVar[bool] = True

    def apply(self, x, *, f, mask, weights, key, count):
        del key
        geometry = inbox_geometry(x, mask)
        members = nearest_sets(geometry.distances, geometry.keys, mask, count - f)
        # A non-finite row is only ever its own neighbour: its own mix becomes NaN.
        mixed = mix_rows(x, members.astype(x.dtype) / jnp.maximum(count - f, 1).astype(x.dtype), geometry.finite)
        return mixed, mask, _input_weights(weights, mask)


def _clip_around(x, radius, around, norms=None):
    """Every row clipped to norm <= radius around zero or around row 0 (non-finite -> zero);
    ``norms``: the rows' ``norms_and_keys(x, around)[0]`` when the caller has them."""
    center = jnp.zeros_like(x[:1]) if around == "zero" else x[:1]
    factors = clip_factors(norms_and_keys(x, around)[0] if norms is None else norms, radius)
    return center + jnp.where((factors != 0)[:, None], (x - center) * factors[:, None], 0.0)


@rule_spec
class ARC(Rule):
    """Adaptive robust clipping (pre-aggregator): clip the k = floor(2 f (count-f) / count)
    largest-norm rows to the (k+1)-th largest norm.

    ``around="own"`` measures and clips x_j - x_0 instead of x_j.

    Tolerates:
        any number of non-finite rows (they are clipped to zero vectors).

    Returns:
        (x, mask, weights).

    Raises:
        ValueError: count < 2f+1.

    References:
        Allouah, Guerraoui, Gupta, Jellouli, Rizk, Stephan, "Boosting robustness by clipping
        gradients in distributed learning", 2024. Requires count >= 2f+1.
    """

    around: str = hyperparameter("zero", static=True, choices=("zero", "own"))
    name: ClassVar[str] = "arc"
    min_count = staticmethod(two_f_plus_one)
    preaggregator: ClassVar[bool] = True

    @property
    def translation_equivariant(self):  # type: ignore[override]
        return self.around == "own"

    def apply(self, x, *, f, mask, weights, key, count):
        del key
        norms, keys = norms_and_keys(x, self.around)
        clipped_count = (2 * f * (count - f)) // count
        rank = ranks(-norms, -keys, mask)
        radius = jnp.sum(jnp.where(rank == clipped_count, norms, 0.0))
        return _clip_around(x, radius, self.around, norms), mask, _input_weights(weights, mask)


@rule_spec
class Clip(Rule):
    """Static clipping (pre-aggregator): every row scaled to norm <= radius.

    ``around="own"`` clips x_j - x_0 instead. Not robust by itself.

    Tolerates:
        any number of non-finite rows (they are clipped to zero vectors).

    Returns:
        (x, mask, weights).

    Raises:
        ValueError: radius <= 0.
    """

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
    """Bucketing (pre-aggregator): row 0 kept; the other valid rows are shuffled with ``key``
    and averaged in consecutive groups of ``size`` into rows 1..ceil((count-1)/size).

    A group's weight is the sum of its members' weights; remaining rows are masked. A group
    holding a row with non-finite entries is NaN (downstream rules treat it as an outlier). The
    count left for the next rule is 1 + ceil((count-1)/size).

    Tolerates:
        nothing by itself: a group holding a non-finite row is NaN.

    Returns:
        (x, mask, weights).

    Raises:
        ValueError: size < 1, or key missing.

    References:
        Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
        bucketing", ICLR 2022.
    """

    size: int = hyperparameter(2, static=True, minimum=1)
    name: ClassVar[str] = "bucketing"
    preaggregator: ClassVar[bool] = True
    uses_key: ClassVar[bool] = True
    order_invariant: ClassVar[bool] = False  # a random grouping: invariant in distribution only
    tolerates_nonfinite: ClassVar[bool] = False  # a group holding a non-finite row is NaN
    keeps_honest_rows: ClassVar[bool] = True  # row 0 kept; at most f groups hold a Byzantine row

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
        means = mix_rows(x, members.astype(x.dtype) / jnp.maximum(sizes, 1)[:, None].astype(x.dtype), finite_rows(x))
        new_weights = members.astype(jnp.float32) @ _input_weights(weights, mask)
        new_mask = sizes > 0
        new_x = jnp.where(new_mask[:, None], means, x[:1])
        return new_x, new_mask, jnp.where(new_mask, new_weights, 0.0)


nnm = public_function(NNM)
arc = public_function(ARC)
clip = public_function(Clip)
bucketing = public_function(Bucketing)
