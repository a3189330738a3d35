"""A user's own rules, loaded as plug-ins in test_aggregators_plugins.py:
``resolve("tests.plugin_rules:midrange")`` (a function never registered),
``resolve("tests.plugin_rules:registered_midrange")`` (a function registered at import,
with its min_count and claim) and ``resolve("tests.plugin_rules:Midrange")`` (a class)."""

from typing import ClassVar

import jax.numpy as jnp

import decentral.aggregators as agg

NOT_A_RULE = 42


def _sorted_valid(x, mask):
    """Coordinate-wise sort with invalid rows and NaN pushed to +inf (the last ranks)."""
    return jnp.sort(jnp.where(mask[:, None] & ~jnp.isnan(x), x, jnp.inf), axis=0)


def midrange(x, *, f=0, mask=None, weights=None, key=None, shrink=1.0):
    """Coordinate-wise midpoint of the (f+1)-th smallest and (f+1)-th largest valid values,
    pulled towards the own vector: ``x_0 + shrink * (midpoint - x_0)``. Needs 2f+1 rows."""
    del weights, key
    if mask is None:
        mask = jnp.ones(x.shape[0], dtype=bool)
    count = jnp.sum(mask, dtype=jnp.int32)
    values = _sorted_valid(x, mask)
    low = jnp.take(values, f, axis=0)
    high = jnp.take(values, count - 1 - f, axis=0)
    midpoint = 0.5 * low + 0.5 * high
    return x[0] + shrink * (midpoint - x[0])


@agg.rule_spec
class Midrange(agg.Rule):
    """The same rule as a spec class, claiming coordinate-wise robustness (each output
    coordinate within the honest values' range: true for 0 < shrink <= 1)."""

    shrink: float = agg.hyperparameter(1.0, positive=True)
    name: ClassVar[str] = "plugin_midrange"
    min_count = staticmethod(lambda f: 2 * f + 1)
    robustness: ClassVar[str] = "coordinatewise"

    def apply(self, x, *, f, mask, weights, key, count):
        del count
        return midrange(x, f=f, mask=mask, weights=weights, key=key, shrink=self.shrink)


def registered_midrange(x, *, f=0, mask=None, weights=None, key=None, shrink=1.0):
    """``midrange``, registered below with its min_count and claim: its plug-in path keeps both."""
    return midrange(x, f=f, mask=mask, weights=weights, key=key, shrink=shrink)


agg.register("plugin_registered_midrange", registered_midrange, min_count=lambda f: 2 * f + 1, robustness="coordinatewise")
