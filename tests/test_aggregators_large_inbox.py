"""Large inboxes (hubs of scale-free graphs) take other code paths than K = 11: distances
through a Gram matrix above ``PAIRWISE_MAX`` rows, row mixing through a matrix product and
array sorts above ``UNROLL_MAX`` rows. Each path against the plain-numpy references."""

import numpy as np
import pytest

import decentral.aggregators as agg
from decentral.aggregators import _rows, ops

import reference_aggregators as ref

RULES = ["krum", "multi_krum", "mda_greedy", "meamed", "geometric_median"]


@pytest.mark.parametrize("size", [ops.PAIRWISE_MAX, ops.PAIRWISE_MAX + 4, _rows.UNROLL_MAX + 2])
@pytest.mark.parametrize("name", RULES)
def test_rule_on_large_inbox(name, size):
    rng = np.random.default_rng(size)
    x = rng.normal(size=(size, 12)).astype(np.float32)
    if name != "geometric_median":  # (float64 references give a 1e30 row a tiny weight)
        x[3] = 1e30  # a Byzantine row whose squared norm overflows float32
    mask = np.ones(size, bool)
    mask[-2] = False
    x[-2] = np.nan  # a padded slot
    hyper = {"iterations": 3, "smoothing": 0.1} if name == "geometric_median" else {}
    got = np.asarray(getattr(agg, name)(x, f=2, mask=mask, **hyper))
    expected = ref.candidates(name, x.astype(np.float64), f=2, mask=mask, **hyper)
    assert any(np.allclose(got, e, rtol=1e-4, atol=1e-4) for e in expected), (got, expected[0])


@pytest.mark.parametrize("size", [ops.PAIRWISE_MAX + 4, _rows.UNROLL_MAX + 2])
def test_nnm_on_large_inbox(size):
    rng = np.random.default_rng(size)
    x = rng.normal(size=(size, 12)).astype(np.float32)
    x[5] = np.inf
    mixed, _, _ = agg.nnm(x, f=2)
    expected, _, _ = ref.nnm(x.astype(np.float64), f=2)
    honest = np.arange(size) != 5
    np.testing.assert_allclose(np.asarray(mixed)[honest], np.asarray(expected)[honest], rtol=1e-4, atol=1e-4)
    assert np.all(np.isnan(np.asarray(mixed)[5]))
