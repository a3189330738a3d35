"""The worked example of a user's rule on ``decentral.aggregators.ops``: an iterative
spectral filter, written as a researcher would, in public primitives only.

It computes what the built-in ``filter`` computes (tests/test_aggregators_spectral.py
holds the two equal), and runs at its speed:

    PYTHONPATH=. decentral bench aggregators --rules mean,filter,tests.plugin_spectral_filter:SpectralFilter

Each step works on the K x K matrix of squared distances, read from the inbox once by
``ops.inbox_geometry``: ``ops.centered_gram`` re-centres it at the mean of the rows still
kept, ``ops.covariance_spectrum`` gives the top eigenvalue of their covariance and every
row's projection on its eigenvector, ``ops.until_stopped`` ends the loop when every node
is done, and the output is one ``ops.weighted_mean``.
"""

from typing import ClassVar

import jax.numpy as jnp

import decentral.aggregators as agg
from decentral.aggregators import ops


def spectral_filter(x, *, f=0, mask=None, weights=None, key=None, threshold=2.0):
    """Remove, one at a time and at most f in all, the row projecting most on the top
    eigenvector of the kept rows' covariance, while its eigenvalue exceeds ``threshold``
    times the mean of their other eigenvalues; return the mean of the rows kept. Needs 2f+1 rows."""
    del weights, key
    mask = jnp.ones(x.shape[0], bool) if mask is None else mask
    geometry = ops.inbox_geometry(x, mask)
    usable = ops.usable_rows(geometry, mask)
    removed = jnp.sum(mask) - jnp.sum(usable)  # unusable rows count as removed

    def step(state):
        kept, removed, stopped = state
        gram = ops.centered_gram(geometry.distances, kept)
        top, projections = ops.covariance_spectrum(gram, kept)
        trace = kept @ jnp.diagonal(gram) / jnp.sum(kept)
        rank = jnp.minimum(x.shape[1], jnp.sum(kept > 0) - 1)  # of the covariance, at most
        spread = jnp.where(rank > 1, jnp.maximum(trace - top[0], 0.0) / jnp.maximum(rank - 1, 1), 0.0)
        fires = ~stopped & (removed < f) & (top[0] > threshold * spread)
        scores = jnp.where(kept > 0, jnp.square(projections[:, 0]), -jnp.inf)
        worst = ops.ranks(-scores, -geometry.keys, kept > 0) == 0
        kept = jnp.where(fires & worst, 0.0, kept)
        return kept, removed + fires, ~fires

    start = (usable.astype(x.dtype), removed, jnp.asarray(False))
    kept, _, _ = ops.until_stopped((x.shape[0] - 1) // 2, step, start)  # at most f <= (K-1)/2 steps
    return ops.weighted_mean(x, kept)


@agg.rule_spec
class SpectralFilter(agg.Rule):
    """``spectral_filter`` as a spec (named by its path in a config; not registered, so
    importing this module leaves the registry as it is)."""

    threshold: float = agg.hyperparameter(2.0, positive=True)
    name: ClassVar[str] = "spectral_filter"
    min_count = staticmethod(lambda f: 2 * f + 1)

    def apply(self, x, *, f, mask, weights, key, count):
        del count
        return spectral_filter(x, f=f, mask=mask, weights=weights, key=key, threshold=self.threshold)
