"""The inboxes that showed rules claiming more robustness than they have, each kept as a
regression test of the weaker claim the rule now states (``decentral.testing``'s
breakdown battery found the breaches; these are small hand-made inboxes of the same
kind, the Byzantine rows last).

- meamed, phocas, bulyan take Byzantine values just beyond the honest range into their
  means: out of the honest range (not "coordinatewise"), inside it widened by its width
  ("coordinatewise_widened"). Nor are they "bounded": a coordinate-wise range says
  nothing of the distance to the own vector, not even trimmed_mean's.
- krum, multi_krum, mda, mda_greedy may choose Byzantine rows near the honest ones, out
  of their coordinate range (not "selection": an honest row or an average of honest
  rows); near the honest rows' hull ("near_honest"). mda is not "bounded".
- a chain through nnm hands its rule mixed rows, no longer the honest ones: the rule's
  claim does not carry over, and the chain claims "none"; bucketing keeps honest rows.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg


def _out(spec, rows, f):
    return np.asarray(spec(jnp.asarray(rows, jnp.float32), f=f), dtype=np.float64)


def _near_honest(out, honest, count):
    """Whether ``out`` is within sqrt(count) * D (D: the honest rows' diameter) of their
    coordinate range, as check_breakdown tests "near_honest"."""
    diameter = np.max(np.linalg.norm(honest[:, None] - honest[None], axis=-1))
    return np.linalg.norm(out - np.clip(out, honest.min(axis=0), honest.max(axis=0))) <= np.sqrt(count) * diameter


# Honest 0, 0, 0, 1 and Byzantine 1.7, 1.8, 1.9 (f = 3): the median and the trimmed mean
# are 1, and the four values closest to it are 1 and the three Byzantine ones.
JUST_ABOVE = [[0.0], [0.0], [0.0], [1.0], [1.9], [1.8], [1.7]]


@pytest.mark.parametrize("name", ["meamed", "phocas"])
def test_meamed_and_phocas_leave_the_honest_range_by_at_most_its_widening(name):
    spec = agg.resolve(name)
    out = _out(spec, JUST_ABOVE, f=3)
    np.testing.assert_allclose(out, [1.6], rtol=1e-6)  # above the honest max, 1
    assert out[0] <= 1 + 3 / (7 - 3)  # widened by f / (count - f) of the width
    assert spec.robustness == "coordinatewise_widened"


def test_bulyan_leaves_the_honest_range_by_at_most_its_widening():
    """Krum keeps the Byzantine (2, 5), central in x; the median of the kept y values is
    the honest max 3, and the three values closest to it are 3, 3 and 5."""
    rows = [[-3.0, 3.0], [2.0, 0.0], [2.0, 3.0], [2.0, 3.0], [1.0, -1.0], [3.0, 2.0], [2.0, 5.0]]
    spec = agg.resolve("bulyan")
    out = _out(spec, rows, f=1)
    np.testing.assert_allclose(out, [2.0, 11 / 3], rtol=1e-6)  # honest y in [-1, 3]
    assert out[1] <= 3 + 4  # widened by the width
    assert spec.robustness == "coordinatewise_widened"


@pytest.mark.parametrize("name", ["trimmed_mean", "meamed", "phocas"])
def test_coordinatewise_rules_are_not_bounded(name):
    """Own vector 0, honest rows 10 e_i (i < 5), Byzantine rows (10 + eps) * 1: every
    coordinate's median is 10, so the output is near 10 * 1, 22.4 from the own vector,
    past "bounded"'s 2 * 10 + 1, though within the honest range for trimmed_mean."""
    rows = np.concatenate([np.zeros((1, 5)), 10 * np.eye(5), (10 + 0.01 * np.arange(1, 6))[:, None] * np.ones(5)])
    out = _out(agg.resolve(name), rows, f=5)
    assert np.linalg.norm(out) > 2 * 10 + 1
    if name == "trimmed_mean":
        np.testing.assert_allclose(out, np.full(5, 10.0), rtol=1e-6)


@pytest.mark.parametrize("variant", ["paper", "byzfl"])
def test_krum_chooses_a_byzantine_row_near_the_honest_ones(variant):
    honest = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rows = np.concatenate([honest, [[0.5, 1.05]]])
    spec = agg.resolve("krum", variant=variant)
    out = _out(spec, rows, f=1)
    np.testing.assert_allclose(out, [0.5, 1.05], rtol=1e-6)  # the Byzantine row, y above 1
    assert _near_honest(out, honest, len(rows))
    assert spec.robustness == "near_honest"


@pytest.mark.parametrize("m", [None, 2])
def test_multi_krum_averages_byzantine_rows_near_the_honest_ones(m):
    """Honest rows on the line y = 1; the two Byzantine rows at y = 1.1 in their middle
    score best (m = count - f), or the m = 2 best of five rows are (0.5, 1.05) and a corner."""
    honest = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    rows, f, expected = np.concatenate([honest, [[1.5, 1.1], [2.5, 1.1]]]), 2, [2.0, 1.04]
    if m == 2:
        honest = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        rows, f, expected = np.concatenate([honest, [[0.5, 1.05]]]), 1, [0.25, 1.025]
    spec = agg.resolve("multi_krum", m=m)
    out = _out(spec, rows, f=f)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert _near_honest(out, honest, len(rows))
    assert spec.robustness == "near_honest"


@pytest.mark.parametrize("name", ["mda", "mda_greedy"])
def test_mda_averages_a_byzantine_row_near_the_honest_ones(name):
    """Honest 0 and 1, Byzantine 1.5: {1, 1.5} has the smallest diameter."""
    spec = agg.resolve(name)
    np.testing.assert_allclose(_out(spec, [[0.0], [1.0], [1.5]], f=1), [1.25], rtol=1e-6)
    assert spec.robustness == "near_honest"


@pytest.mark.parametrize("name", ["mda", "mda_greedy"])
def test_mda_is_not_bounded(name):
    """Honest 0, 10, -10 (diameter D = 20), Byzantine 29.99 and 29.98: {10, 29.98, 29.99}
    is the narrowest subset; its mean, 23.32 from the own vector 0, is past "bounded"'s
    2 * 10 + 1, and 13.32 from the honest hull [-10, 10], at most f / (count - f) * D."""
    out = _out(agg.resolve(name), [[0.0], [10.0], [-10.0], [29.99], [29.98]], f=2)
    np.testing.assert_allclose(out, [(10 + 29.99 + 29.98) / 3], rtol=1e-6)
    assert out[0] > 2 * 10 + 1 and out[0] - 10 <= 2 / 3 * 20


def test_a_chain_through_nnm_claims_nothing():
    """Honest 0 and 1, Byzantine 1.5: nnm mixes 1 with 1.5, and the trimmed mean of the
    mixed rows 0.5, 1.25, 1.25 is 1.25, past the honest max."""
    chain = agg.resolve(["nnm", "trimmed_mean"])
    np.testing.assert_allclose(_out(chain, [[0.0], [1.0], [1.5]], f=1), [1.25], rtol=1e-6)
    assert chain.robustness == "none"
    assert agg.resolve(["clip", "median"]).robustness == agg.resolve(["arc", "krum"]).robustness == "none"
    assert agg.resolve(["bucketing", "median"]).robustness == "coordinatewise"
