"""Coordinate-wise rules (mean, median, trimmed_mean, meamed, phocas): each output
coordinate is computed from the same coordinate of the valid rows alone.

Each spec holds its documentation, its hyperparameters and its maths (``apply``, on an
inbox prepared by ``_checks.prepare``); its public function is derived from it
(``_public.public_function``). The ranked rules sort every coordinate of the valid rows
(``_rows.sorted_valid``: NaN and masked rows sorted last, as +inf).
"""

from __future__ import annotations

from typing import ClassVar

from ._checks import normalized_weights, one, two_f_plus_one
from ._public import public_function
from ._rows import closest_window_sum, coordinate_median, mean_of_sum, sorted_valid, window_mean, window_sum
from ._spec import Rule, rule_spec
from .ops import weighted_mean


@rule_spec
class Mean(Rule):
    """Weighted gossip average: sum_j w_j x_j / sum_j w_j over valid rows.

    Not robust: one Byzantine row moves it arbitrarily. ``f`` is unused.

    Tolerates:
        nothing: a single inf row makes the output inf.

    Returns:
        f32[d].

    Example:
        >>> mean(jnp.array([[0.0], [2.0]]))  # -> [1.]

    References:
        Plain (Metropolis-weighted) gossip averaging; no requirement on n or f.
    """

    name: ClassVar[str] = "mean"
    min_count = staticmethod(one)
    tolerates_nonfinite: ClassVar[bool] = False

    def apply(self, x, *, f, mask, weights, key, count):
        del f, key, count
        return weighted_mean(x, normalized_weights(weights, mask))


@rule_spec
class Median(Rule):
    """Coordinate-wise median; for an even count, the mean of the two middle values.

    With fewer than half the rows Byzantine, each output coordinate lies within the honest
    values' range. ``f`` only validates.

    Tolerates:
        up to (count-1)//2 rows holding +-inf, NaN (sorted as +inf) or huge values.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    Example:
        >>> median(jnp.array([[0.0], [1.0], [9.0]]), f=1)  # -> [1.]

    References:
        Yin, Chen, Ramchandran, Bartlett, "Byzantine-robust distributed learning: towards
        optimal statistical rates", ICML 2018. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "median"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del f, weights, key
        return coordinate_median(sorted_valid(x, mask), count)


@rule_spec
class TrimmedMean(Rule):
    """Coordinate-wise trimmed mean: drop the f largest and f smallest values, average the rest.

    Each output coordinate lies within the honest values' range when at most f rows are
    Byzantine (NaN counts as +inf).

    Tolerates:
        up to f rows holding +-inf, NaN (sorted as +inf) or huge values.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    Example:
        >>> trimmed_mean(jnp.array([[0.0], [1.0], [2.0], [100.0]]), f=1)  # -> [1.5]

    References:
        Yin et al., ICML 2018. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "trimmed_mean"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        return window_mean(sorted_valid(x, mask), f, count - 2 * f)


def _mean_of_all_but_f_closest_to(sorted_values, count, f, center, middle_sum):
    """Mean of the ``count - f`` sorted values closest to ``center``, given the sum of the
    middle ranks ``[f, count - f)`` (``closest_window_sum``; needs ``count >= 2f + 1``)."""
    keep = count - f
    return mean_of_sum(closest_window_sum(sorted_values, count, keep, center, middle_sum), keep)


@rule_spec
class Meamed(Rule):
    """Mean around the median: per coordinate, average the count-f values closest to the median.

    At exactly equal distance from the median the lower value is kept first.

    Byzantine values just beyond the honest range are among those closest to the median,
    so the output may leave the honest range: honest 0, 0, 0, 1 and Byzantine 1.7, 1.8,
    1.9 give 1.6 (f=3). It stays within the range widened by f/(count-f) of its width on
    each side: the median lies in the honest range, every value kept is no farther from
    it than the farthest honest value, and at most f of the count-f kept are Byzantine.

    Tolerates:
        up to f rows holding +-inf, NaN (sorted as +inf) or huge values.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    Example:
        >>> meamed(jnp.array([[0.0], [1.0], [2.0], [100.0]]), f=1)  # -> [1.]

    References:
        Xie, Koyejo, Gupta, "Generalized Byzantine-tolerant SGD", 2018. Requires count >= 2f+1.
    """

    name: ClassVar[str] = "meamed"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise_widened"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        values = sorted_valid(x, mask)
        middle_sum = window_sum(values, f, count - 2 * f)
        return _mean_of_all_but_f_closest_to(values, count, f, coordinate_median(values, count), middle_sum)


@rule_spec
class Phocas(Rule):
    """Phocas: per coordinate, average the count-f values closest to the f-trimmed mean.

    At exactly equal distance the lower value is kept first.

    As :func:`meamed`, the output may leave the honest range (the same inbox gives 1.6),
    and stays within it widened by f/(count-f) of its width on each side: the trimmed
    mean lies within the honest range, like the median.

    Tolerates:
        up to f rows holding +-inf, NaN (sorted as +inf) or huge values.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    References:
        Xie, Koyejo, Gupta, "Phocas: dimensional Byzantine-resilient SGD", 2018.
        Requires count >= 2f+1.
    """

    name: ClassVar[str] = "phocas"
    min_count = staticmethod(two_f_plus_one)
    robustness: ClassVar[str] = "coordinatewise_widened"

    def apply(self, x, *, f, mask, weights, key, count):
        del weights, key
        values = sorted_valid(x, mask)
        middle_sum = window_sum(values, f, count - 2 * f)
        trimmed_mean = mean_of_sum(middle_sum, count - 2 * f)
        return _mean_of_all_but_f_closest_to(values, count, f, trimmed_mean, middle_sum)


mean = public_function(Mean)
median = public_function(Median)
trimmed_mean = public_function(TrimmedMean)
meamed = public_function(Meamed)
phocas = public_function(Phocas)
