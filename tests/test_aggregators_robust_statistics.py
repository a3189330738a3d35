"""The robust-statistics rules (filter, soft_filter, caf, que, dnc, smea) against numpy references.

The references (``tests/reference_robust_statistics.py``) follow docs/robust_statistics.md, which
is binding where it departs from the papers; they work in float64 on the d x d covariance
with ``np.linalg.eigh``, independently of the JAX rules (``decentral/aggregators/
spectral.py``), which work in float32 through the K x K Gram matrix. Two parts:

1. self-checks of the references (numpy only): hand-computed inboxes, identities, limits,
   and hypothesis properties (translation, scaling, rotation, row order);
2. the JAX rules (``decentral.aggregators.resolve(name)``) against the references: random
   Gaussian and adversarial inboxes, masked (NaN / 1e6 in masked rows) and not, eager, under
   ``jax.jit`` with f traced, under ``jax.vmap`` over nodes with per-node f, masks (and
   mixing weights, which these rules ignore), K in {5, 7, 11}, d in {3, 50, 2000}. These
   tests skip while the rules are not registered.

What the papers' code does, and where docs/robust_statistics.md (hence the reference) differs
-------------------------------------------------------------------------------
filter -- Diakonikolas, Kamath, Kane, Li, Moitra, Stewart, "Being Robust (in High
  Dimensions) Can Be Practical", ICML 2017; code github.com/hoonose/robust-filter,
  ``filterCode/filterGaussianMean.m`` (commit 69d020b). Follows it: top eigenpair of the
  empirical covariance of the current set (``svds``), filter along v_1, repeat on what is
  left, return the empirical mean of what is left. Differs: (a) the code's stop test is
  ``lambda < 1 + 3 eps log(1/eps)`` for a KNOWN identity covariance; docs/robust_statistics.md's is
  relative to the inbox's own spread, lambda_1 > threshold * trace / r (threshold 2);
  (b) the code scores |x.v - median(x.v)| (median, not mean) and removes in one step every
  point beyond a Gaussian-tail cut T (scan with ``cher = 2.5``, ``eps``, ``tau``), then
  recurses; docs/robust_statistics.md removes ONE row per iteration, the largest ((x_i - mu_c).v_1)^2,
  at most f rows in all (unusable rows count first).
soft_filter -- Steinhardt, Charikar, Valiant, "Resilience", ITCS 2018. No code from the
  authors was found (code search for the paper and its update rule). docs/robust_statistics.md's update
  c_i <- c_i (1 - tau_i / tau_max) is the multiplicative filter of that line of work; the
  stop test is relative to the spread (not a known variance bound) and the weight budget
  n - C >= f is docs/robust_statistics.md's own.
caf -- Allouah, Guerraoui, Stephan, ICML 2025; code github.com/LPD-EPFL/byzfl,
  ``byzfl/aggregators/aggregators.py`` class ``CAF`` (commit 69bd1ac). Follows it: c = 1,
  ``while sum(c) > n - 2f``, weighted mean and covariance with 1/C, tau = ((x - mu).v)^2,
  c <- c (1 - tau / tau_max), strict ``<`` on the running minimum of lambda_max, return the
  mean at the smallest lambda_max seen (the weights after the last update are never
  scored). Differs: (a) ByzFL's eigenpair is ONE power step from a random Gaussian start
  (``max_iters=1``), its "eigenvalue" the Rayleigh quotient of that step, so ByzFL is
  random; docs/robust_statistics.md uses the exact top eigenpair; (b) ByzFL takes ``tau.max()`` over ALL
  rows, zero-weight ones included (a zeroed far row keeps tau_max, so later rounds barely
  down-weight the others); docs/robust_statistics.md takes it over rows with c_i > 0; (c) f = 0: ByzFL's
  loop never runs and it returns None, docs/robust_statistics.md the mean; (d) tau_max = 0 stops
  (ByzFL divides by zero); (e) ByzFL raises when 2f >= n, here x[0] is returned (same
  condition).
que -- Dong, Hopkins, Li, NeurIPS 2019; code github.com/twistedcubic/que-outlier-detection,
  ``mean.py`` (commit dd84549). Follows it: ``compute_m``: U = exp(lamb * cov) / trace with
  cov = (1/n) X_c^T X_c of the current set, ``lamb = lamb_multiplier / dominant eigenvalue``
  (``train_rme``) with ``lamb_multiplier = 4`` (docs/robust_statistics.md's alpha = 4, beta = alpha /
  lambda_1); score tau1 = (x - mean)^T U (x - mean) (``compute_tau1``). Differs: (a) the
  code stops when the spectral norm is <= ``norm_thresh = 1.2`` (known identity
  covariance); docs/robust_statistics.md uses the spread test of filter; (b) the code removes the top
  ``remove_p = p/2`` FRACTION of points per round; docs/robust_statistics.md one row per iteration,
  budget f; (c) the code's lambda_1 is 5 power iterations (``utils.dominant_eval_cov``)
  and its fast path approximates U (``utils.jl_chebyshev``); docs/robust_statistics.md is exact.
dnc -- Shejwalkar, Houmansadr, NDSS 2021. The authors' repository
  github.com/vrt1shjwlkr/NDSS21-Model-Poisoning (commit f2879cd) holds NO DnC: its
  notebooks implement Krum, Multi-Krum, Bulyan, trimmed mean, median and the attacks only.
  Blades (github.com/lishenghui/blades, ``blades/aggregators/aggregators.py`` class
  ``DnC``, commit 2cead94) re-implements it with defaults ``sub_dim = 10000`` (b),
  ``num_iters = 5``, ``filter_frac = 1.0`` (c): coordinates ``torch.randperm(d)[:b]`` (no
  replacement), centre at the uniform mean, v = top right singular vector of the centred
  subsample, keep the ``n - int(c * f)`` lowest scores, INTERSECT the kept sets over
  iterations, return their mean. An earlier Blades ``Dnc`` (``num_iters = 1``) took the
  UNION. docs/robust_statistics.md follows the intersection, b = 10000, fraction = 1.0, but iterations =
  1 (with one iteration union and intersection coincide) and ceil(fraction * f) instead of
  int() (equal at fraction 1.0); unusable rows count among the removed.

Tolerances and ties
-------------------
The JAX rules compute in float32 through the Gram matrix; the references in float64 on the
same float32-rounded inputs. ``rtol = 1e-4`` and ``atol = 1e-4 * (1 + s)``, where s is the
mean magnitude (max |x_ij|) of the rows under the returned weights: about 1e3 float32 ulps
of the data the result averages, enough for a few reweighting rounds, while keeping a
different row, or a wrong weight, an O(1) error on unit-normal data. Far rows at 1e6 that
a rule removes do not enter s (weight 0), so letting them leak in through cancellation
still fails. Instead of loosening tolerances where float32 cannot decide, the reference
records the margin of every discrete decision (``reference_robust_statistics.Record``) and
an inbox is skipped when one is within float32 noise: the stop test, the argmax of the
scores or tau_max, budgets, CAF's running minimum and DnC's cut within 1e-3 (relative; the
budgets absolute, in units of one row's weight), or an eigen-gap (lambda_1 - lambda_2) /
lambda_1 below 1e-2 wherever v_1 is used (a float32 v_1 errs by about 1e-7 / gap, which
the soft rules carry straight into their weights). Every test asserts that most of its
inboxes were compared.

Eager calls keep at least 2f + 1 valid rows (the rules validate concrete inputs); fewer
valid rows returning x[0] is tested under jit. DnC draws its coordinates from the key it
is called with; for subsample < d the test asks
``decentral.aggregators.spectral.dnc_coordinates(key, dim, subsample, iterations)``
(int [iterations, b]) which coordinates those are and passes them to the reference.
"""

import dataclasses
import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_robust_statistics as ref

RULES = ("filter", "soft_filter", "caf", "que", "dnc", "smea")

RTOL = 1e-4
ATOL = 1e-4
TIE_RTOL = 1e-3  # decisions within this (relative) of a tie are float32 noise
GAP_RTOL = 1e-2  # eigen-gaps below this make v_1 float32 noise
BUDGET_ATOL = 1e-3  # weight budgets within this of the cut
MIN_COMPARED = 0.75  # share of the inboxes a comparison test must actually compare


# --------------------------------------------------------------------------- #
# Inboxes


KINDS = ("gaussian", "far", "inside", "scaled", "alie", "huge")


def _byzantine_rows(rng, k, f):
    return sorted(rng.choice(np.arange(1, k), size=f, replace=False).tolist()) if f else []


def inbox(rng, kind, k, d, f):
    """A float32 inbox [k, d]: honest rows N(0, I), and f Byzantine rows of ``kind``.

    Byzantine rows (never row 0) always differ from each other:
    - "far": the honest mean plus (20 + 15 j) sqrt(d) along random unit directions;
    - "inside": uniform within the honest rows' per-coordinate range;
    - "scaled": honest-like draws whose component along one common direction is x10;
    - "alie": honest mean + 1.0 * honest std per coordinate, jittered by 0.05 std;
    - "huge": +-1e6 (1 + 0.1 j) per coordinate, random signs.
    """
    x = rng.normal(size=(k, d))
    byz = _byzantine_rows(rng, k, f) if kind != "gaussian" else []
    honest = x[[i for i in range(k) if i not in byz]]
    mean, std = honest.mean(axis=0), honest.std(axis=0) + 1e-3
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    for j, i in enumerate(byz):
        if kind == "far":
            u = rng.normal(size=d)
            x[i] = mean + (20.0 + 15.0 * j) * math.sqrt(d) * u / np.linalg.norm(u)
        elif kind == "inside":
            x[i] = rng.uniform(honest.min(axis=0), honest.max(axis=0))
        elif kind == "scaled":
            y = rng.normal(size=d)
            x[i] = y + 9.0 * np.dot(y, direction) * direction
        elif kind == "alie":
            x[i] = mean + std + 0.05 * std * rng.normal(size=d)
        elif kind == "huge":
            x[i] = 1e6 * (1.0 + 0.1 * j) * rng.choice([-1.0, 1.0], size=d)
        else:
            raise ValueError(kind)
    return x.astype(np.float32)


def random_mask(rng, k, keep_at_least):
    """Mask one or more rows other than 0, keeping ``keep_at_least`` valid (if possible)."""
    mask = np.ones(k, dtype=bool)
    spare = k - max(keep_at_least, 1)
    if spare < 1:
        return mask
    off = rng.choice(np.arange(1, k), size=int(rng.integers(1, spare + 1)), replace=False)
    mask[off] = False
    return mask


def fill_invalid(x, mask, fill):
    x = x.copy()
    x[~mask] = fill
    return x


def allowed_f(k):
    return [f for f in range(k) if 2 * f + 1 <= k]


# --------------------------------------------------------------------------- #
# Cases: a rule and its hyperparameters


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    hyper: tuple = ()

    @property
    def id(self):
        if not self.hyper:
            return self.name
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in self.hyper) + "]"

    @property
    def kwargs(self):
        return dict(self.hyper)

    @property
    def reference_kwargs(self):
        """The hyperparameters the reference takes (DnC's coordinates come separately)."""
        out = self.kwargs
        out.pop("iterations", None)
        out.pop("subsample", None)
        return out

    @property
    def uses_key(self):
        return self.name == "dnc"


def case(name, **hyper):
    return Case(name, tuple(sorted(hyper.items())))


DEFAULT_CASES = [case(name) for name in RULES]
DNC_SUBSAMPLED = case("dnc", iterations=3, subsample=2, fraction=0.5)
CASES = DEFAULT_CASES + [
    case("filter", threshold=1.5),
    case("soft_filter", threshold=1.5),
    case("que", alpha=16.0, threshold=1.5),
    case("que", alpha=0.25),
    DNC_SUBSAMPLED,
]
per_case = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
per_default = pytest.mark.parametrize("case", DEFAULT_CASES, ids=[c.id for c in DEFAULT_CASES])
VMAP_CASES = DEFAULT_CASES + [DNC_SUBSAMPLED]
per_vmap_case = pytest.mark.parametrize("case", VMAP_CASES, ids=[c.id for c in VMAP_CASES])


# --------------------------------------------------------------------------- #
# Calling the reference


def reference(case, x, f, mask=None, coordinates=None):
    """(output, Record) of the reference for ``case`` on one inbox."""
    record = ref.Record()
    x = np.asarray(x, dtype=np.float64)
    if case.name == "dnc":
        out = ref.dnc(x, f, coordinates, mask=mask, record=record, **case.reference_kwargs)
    else:
        out = ref.AGGREGATORS[case.name](x, f, mask=mask, record=record, **case.reference_kwargs)
    return out, record


def result_scale(x, mask, record):
    """Mean max-magnitude of the rows under the reference's returned weights."""
    w = record.weights
    if w is None or not np.any(w > 0):
        return float(np.max(np.abs(x[0])))
    rows = [i for i in range(len(w)) if w[i] > 0]
    return sum(w[i] * float(np.max(np.abs(x[i]))) for i in rows) / sum(w[i] for i in rows)


class Tally:
    """Counts compared and skipped (near-tie) inboxes of one test."""

    def __init__(self):
        self.compared = 0
        self.skipped = []

    def check(self, case, got, x, f, mask, coordinates=None, what=""):
        mask = np.ones(x.shape[0], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        expected, record = reference(case, x, f, mask, coordinates)
        msg = f"{case.id} f={f} mask={mask.astype(int)} {what}"
        got = np.asarray(got)
        assert got.shape == (x.shape[1],), msg
        assert got.dtype == np.float32, msg
        tie = record.closest(TIE_RTOL, GAP_RTOL, BUDGET_ATOL)
        if tie is not None:
            self.skipped.append((msg, tie))
            return
        atol = ATOL * (1.0 + result_scale(np.asarray(x, np.float64), mask, record))
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol, err_msg=msg)
        self.compared += 1

    def done(self):
        total = self.compared + len(self.skipped)
        assert total > 0
        assert self.compared >= MIN_COMPARED * total, (
            f"only {self.compared} of {total} inboxes compared; near ties: {self.skipped[:5]}"
        )


# --------------------------------------------------------------------------- #
# 1. Self-checks of the references (numpy only)

E = np.eye(3)
# Six honest rows +-e_k around 0 and one outlier at 7 e_1 (row 0 is 7 e_1: the references
# do not care which row is the node's own). Mean e_1; Sigma = diag(44/7, 2/7, 2/7);
# trace 48/7, r = min(3, 6) = 3, spread (48/7 - 44/7) / 2 = 2/7, 2 * spread = 4/7 < 44/7:
# the test fires;
# tau = 36 (outlier), 0 (+e_1), 4 (-e_1), 1 (+-e_2, +-e_3).
AXIS = np.array([7 * E[0], E[0], -E[0], E[1], -E[1], E[2], -E[2]])


def test_hand_computed_spectrum_of_the_axis_inbox():
    c = np.ones(7)
    s = ref.weighted_spectrum(AXIS, c, list(range(7)))
    np.testing.assert_allclose(s.mu, E[0])
    np.testing.assert_allclose(s.sigma, np.diag([44 / 7, 2 / 7, 2 / 7]), atol=1e-12)
    np.testing.assert_allclose(s.eigenvalues, [44 / 7, 2 / 7, 2 / 7])
    assert s.rank == 3
    np.testing.assert_allclose(s.spread, 2 / 7)
    tau = [float(np.dot(r - s.mu, s.v_1)) ** 2 for r in AXIS]
    np.testing.assert_allclose(tau, [36, 0, 4, 1, 1, 1, 1], atol=1e-12)


def test_hand_computed_rules_on_the_axis_inbox():
    # filter / que / dnc drop the outlier: mean of +-e_k = 0 (f = 2: the second round's
    # test, lambda_1 = 1/3 against 2 * spread = 2 (1 - 1/3) / 2 = 2/3, does not fire).
    for f in (1, 2):
        np.testing.assert_allclose(ref.hard_filter(AXIS, f), 0, atol=1e-12)
        np.testing.assert_allclose(ref.que(AXIS, f), 0, atol=1e-12)
    np.testing.assert_allclose(ref.dnc(AXIS, 1), 0, atol=1e-12)
    # soft_filter, f = 1: one round, c = 1 - tau / 36 = [0, 1, 8/9, 35/36 x 4], C = 52/9,
    # n - C = 11/9 >= 1 stops; mu_c = (1 - 8/9) e_1 / (52/9) = e_1 / 52.
    record = ref.Record()
    np.testing.assert_allclose(ref.soft_filter(AXIS, 1, record=record), E[0] / 52, atol=1e-12)
    np.testing.assert_allclose(record.weights, [0, 1, 8 / 9] + [35 / 36] * 4, atol=1e-12)
    # caf, f = 1: round 1 (lambda 44/7) is replaced by round 2 on the soft_filter weights
    # (lambda_1 = 0.3365 along e_2/e_3); the next update zeroes +-e_2 or +-e_3 (C < 5).
    np.testing.assert_allclose(ref.caf(AXIS, 1), E[0] / 52, atol=1e-12)
    # f = 0: every rule is the mean.
    for name, rule in ref.AGGREGATORS.items():
        np.testing.assert_allclose(rule(AXIS, 0), E[0], atol=1e-12, err_msg=name)


def test_hand_computed_que_scores():
    """On AXIS, beta = 4 / (44/7) = 7/11: U = diag(e^4, e^(2/11), e^(2/11)) / trace."""
    s = ref.weighted_spectrum(AXIS, np.ones(7), list(range(7)))
    w = np.array([math.exp(4), math.exp(2 / 11), math.exp(2 / 11)])
    scores = ref.que_scores(AXIS, list(range(7)), s, alpha=4.0)
    expected = [((r - E[0]) ** 2 * w).sum() / w.sum() for r in AXIS]
    np.testing.assert_allclose([scores[i] for i in range(7)], expected, rtol=1e-12)


def test_spread_formula():
    rng = np.random.default_rng(0)
    for k, d, weights, rank in [
        (2, 3, [1, 1], 1),  # r = #rows - 1
        (5, 2, [1] * 5, 2),  # r = d
        (5, 50, [1] * 5, 4),
        (6, 50, [1, 0.5, 0, 0.25, 1, 0], 3),  # rows with c_i > 0 only
    ]:
        x = rng.normal(size=(k, d))
        c = np.array(weights, dtype=np.float64)
        s = ref.weighted_spectrum(x, c, list(range(k)))
        active = [i for i in range(k) if c[i] > 0]
        mu = sum(c[i] * x[i] for i in active) / c.sum()
        trace = sum(c[i] * np.sum((x[i] - mu) ** 2) for i in active) / c.sum()
        assert s.rank == rank
        np.testing.assert_allclose(s.spread, (trace - s.eigenvalues[0]) / (rank - 1) if rank > 1 else 0.0)
        np.testing.assert_allclose(s.eigenvalues.sum(), trace)
    one = ref.weighted_spectrum(rng.normal(size=(3, 4)), np.array([1.0, 0, 0]), [0, 1, 2])
    assert one.rank == 0 and one.spread == 0.0


def test_the_test_compares_lambda_1_with_the_other_eigenvalues():
    """The spread is the mean of the other possibly non-zero eigenvalues, so the test can
    fire at any rank: in d = 2 a far row is removed (a spread of trace / r could never be
    exceeded twice there, as lambda_1 <= trace); with r <= 1 (two rows, or d = 1) there
    is nothing to compare with and the test fires whenever the rows differ."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 2))
    x[3] = [1e3, -2e3]
    honest = np.delete(x, 3, axis=0).mean(axis=0)
    for rule in (ref.hard_filter, ref.que, ref.caf, ref.dnc):
        np.testing.assert_allclose(rule(x, 1), honest, atol=1e-2, err_msg=rule.__name__)
    line = np.array([[0.0], [1.0], [2.0], [3.0], [50.0]])
    np.testing.assert_allclose(ref.hard_filter(line, 2), [1.0])  # 50 and 3 (then the farthest)
    assert ref.weighted_spectrum(line[:2], np.ones(2), [0, 1]).spread == 0.0


def test_large_dimension_path_matches_full_eigh(monkeypatch):
    """Above FULL_EIGH_MAX_DIM the reference reduces Sigma_c to the span of the centred
    rows (Rayleigh-Ritz); both paths must agree, spectrum and rules (forced at d = 120)."""
    rng = np.random.default_rng(7)
    x = inbox(rng, "far", 7, 120, 2).astype(np.float64)
    c = np.array([1.0, 0.5, 0.0, 1.0, 0.25, 1.0, 1.0])
    rows = list(range(7))
    full = ref.weighted_spectrum(x, c, rows, full=True)
    small = ref.weighted_spectrum(x, c, rows, full=False)
    assert small.eigenvectors.shape == (120, 6)
    np.testing.assert_allclose(small.eigenvalues, full.eigenvalues, atol=1e-10 * full.lambda_1)
    np.testing.assert_allclose(abs(small.v_1 @ full.v_1), 1.0, rtol=1e-12)
    active = [i for i in rows if c[i] > 0]
    for alpha in (0.25, 4.0, 64.0):
        a = ref.que_scores(x, active, full, alpha)
        b = ref.que_scores(x, active, small, alpha)
        np.testing.assert_allclose([b[i] for i in active], [a[i] for i in active], rtol=1e-9)
    for kind in ("far", "alie"):
        y = inbox(rng, kind, 7, 120, 2).astype(np.float64)
        outs = []
        for limit in (10**9, 0):
            monkeypatch.setattr(ref, "FULL_EIGH_MAX_DIM", limit)
            outs.append([rule(y, 2) for rule in ref.AGGREGATORS.values()])
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-9, atol=1e-9)


def test_far_outliers_are_removed():
    rng = np.random.default_rng(2)
    k, d, f = 11, 50, 2
    byz = [4, 7]
    x = rng.normal(size=(k, d))
    honest = np.delete(x, byz, axis=0)
    mean = honest.mean(axis=0)
    for j, i in enumerate(byz):
        u = rng.normal(size=d)
        x[i] = mean + (30 + 20 * j) * math.sqrt(d) * u / np.linalg.norm(u)
    contaminated = np.linalg.norm(x.mean(axis=0) - mean)
    assert contaminated > 30
    for rule in (ref.hard_filter, ref.que, ref.dnc):
        np.testing.assert_allclose(rule(x, f), mean, atol=1e-12, err_msg=rule.__name__)
    for rule in (ref.soft_filter, ref.caf):
        record = ref.Record()
        out = rule(x, f, record=record)
        assert record.weights[byz].max() == 0, rule.__name__
        assert np.linalg.norm(out - mean) < 0.05, rule.__name__


def test_unusable_rows_count_as_removed():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5))
    x[5] = 50.0  # a far row, usable
    honest = [0, 1, 2, 3, 6]
    for bad in (np.inf, -np.inf, np.nan, 1e30):
        y = x.copy()
        y[4, 2] = bad  # one bad entry makes row 4 unusable
        # f = 2: row 4 uses one removal, the far row the other.
        for rule in (ref.hard_filter, ref.que):
            np.testing.assert_allclose(rule(y, 2), x[honest].mean(0), atol=1e-12)
        # f = 1: the budget is spent on row 4; the far row stays.
        usable = [0, 1, 2, 3, 5, 6]
        for rule in (ref.hard_filter, ref.que, ref.soft_filter, ref.dnc):
            np.testing.assert_allclose(rule(y, 1), x[usable].mean(0), atol=1e-12)
        for rule in ref.AGGREGATORS.values():
            assert np.all(np.isfinite(rule(y, 2)))
    rows, unusable = ref.usable_rows(x, np.ones(7, dtype=bool))
    assert rows == list(range(7)) and unusable == 0


def test_float32_overflow_line():
    """Squared distance to row 0 above 3.4e38 (float32 max) makes a row unusable."""
    x = np.zeros((3, 3))
    a = math.sqrt(3.3e38 / 3)
    x[1] = a  # 3.3e38: usable
    x[2] = math.sqrt(3.5e38 / 3)  # 3.5e38: unusable
    rows, unusable = ref.usable_rows(x, np.ones(3, dtype=bool))
    assert rows == [0, 1] and unusable == 1
    record = ref.Record()
    ref.usable_rows(x, np.ones(3, dtype=bool), record)
    assert record.near_tie(rtol=0.1) and not record.near_tie(rtol=1e-3)


def test_too_few_valid_rows_and_masked_rows():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(7, 4))
    mask = np.array([1, 1, 0, 1, 1, 0, 1], dtype=bool)
    junk = x.copy()
    junk[~mask] = np.nan
    for name, rule in ref.AGGREGATORS.items():
        np.testing.assert_array_equal(rule(junk, 3, mask=mask), x[0], err_msg=name)  # 5 < 7
        out = rule(junk, 2, mask=mask)
        assert np.all(np.isfinite(out)), name
        np.testing.assert_allclose(rule(junk, 0, mask=mask), x[mask].mean(0), err_msg=name)
        np.testing.assert_allclose(out, rule(x[mask], 2), err_msg=name)  # masked rows unread
    assert all(ref.MIN_COUNT[name](f) == 2 * f + 1 for name in RULES for f in range(5))


def test_dnc_coordinates():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 6))
    x[3] += 4.0
    full = ref.dnc(x, 2)
    # All coordinates, in any order and repeated: the same single selection.
    np.testing.assert_allclose(ref.dnc(x, 2, [np.arange(6)]), full)
    np.testing.assert_allclose(ref.dnc(x, 2, [rng.permutation(6), rng.permutation(6)]), full)
    # An independent computation of that selection: SVD of the centred rows.
    centred = x - x.mean(axis=0)
    v = np.linalg.svd(centred)[2][0]
    keep = np.argsort((centred @ v) ** 2)[:7]
    np.testing.assert_allclose(full, x[keep].mean(axis=0))
    # Several subsets: the intersection of the kept sets.
    subsets = [np.array([0, 2]), np.array([5, 1, 3]), np.array([4])]
    kept = set(range(9))
    for r in subsets:
        y = x[:, r] - x[:, r].mean(axis=0)
        w = np.linalg.svd(y)[2][0]
        kept &= set(np.argsort((y @ w) ** 2)[:7].tolist())
    np.testing.assert_allclose(ref.dnc(x, 2, subsets), x[sorted(kept)].mean(axis=0))
    # fraction: ceil(0.5 * 3) = 2 rows dropped (instead of 3).
    record = ref.Record()
    ref.dnc(x, 3, mask=None, fraction=0.5, record=record)
    assert record.weights.sum() == 9 - 2


def test_dnc_empty_intersection_returns_own_vector():
    # One coordinate per iteration: the score is the squared deviation from the column
    # mean (-0.2); the kept sets {0,1,2}, {2,3,4}, {0,1,3} have no common row.
    x = np.array(
        [[0.0, 5.0, 0.0], [0.1, -6.0, 0.1], [-0.1, 0.0, 5.0], [5.0, 0.1, -0.1], [-6.0, -0.1, -6.0]]
    )
    np.testing.assert_array_equal(ref.dnc(x, 2, [[0], [1], [2]]), x[0])
    np.testing.assert_allclose(ref.dnc(x, 2, [[0]]), x[:3].mean(axis=0))


def test_que_alpha_limits():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 5)) * np.array([3.0, 1.0, 1.0, 0.5, 0.2])
    rows = list(range(8))
    s = ref.weighted_spectrum(x, np.ones(8), rows)
    tiny = ref.que_scores(x, rows, s, alpha=1e-9)  # U -> I / d: squared distance / d
    huge = ref.que_scores(x, rows, s, alpha=1e6)  # U -> v_1 v_1^T: tau (no overflow)
    for i in rows:
        np.testing.assert_allclose(tiny[i], np.sum((x[i] - s.mu) ** 2) / 5, rtol=1e-6)
        np.testing.assert_allclose(huge[i], np.dot(x[i] - s.mu, s.v_1) ** 2, rtol=1e-9, atol=1e-12)
    # Huge alpha: que removes as filter does.
    for seed in range(20):
        y = inbox(np.random.default_rng(seed), KINDS[seed % len(KINDS)], 7, 4, 2).astype(float)
        record = ref.Record()
        expected = ref.hard_filter(y, 2, record=record)
        if not record.near_tie():
            np.testing.assert_allclose(ref.que(y, 2, alpha=1e6), expected, atol=1e-9)


# Hypothesis: invariances of the references themselves (float64, so a tight tolerance;
# inboxes near a tie are skipped since rounding may then legitimately flip a decision).


@st.composite
def _inboxes(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    k = draw(st.sampled_from([5, 7, 11]))
    d = draw(st.sampled_from([3, 8]))
    f = draw(st.sampled_from(allowed_f(k)))
    kind = draw(st.sampled_from(KINDS))
    masked = draw(st.booleans())
    rng = np.random.default_rng(seed)
    x = inbox(rng, kind, k, d, f).astype(np.float64)
    mask = random_mask(rng, k, 2 * f + 1) if masked else np.ones(k, dtype=bool)
    return rng, x, f, mask


def _ref_call(name, x, f, mask, record=None):
    return ref.AGGREGATORS[name](x, f, mask=mask, record=record)


@pytest.mark.parametrize("name", RULES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_inboxes())
def test_reference_invariances(name, data):
    """rule(x + t) = rule(x) + t; rule(a x) = a rule(x); rule(x Q) = rule(x) Q for an
    orthogonal Q; permuting rows 1..K-1 (with the mask) changes nothing."""
    rng, x, f, mask = data
    record = ref.Record()
    base = _ref_call(name, x, f, mask, record)
    if record.near_tie(rtol=1e-6, gap_rtol=1e-6, budget_atol=1e-6):
        return
    scale = 1.0 + float(np.max(np.abs(x[mask])))
    shift = rng.normal(size=x.shape[1]) * 10.0
    np.testing.assert_allclose(
        _ref_call(name, x + shift, f, mask), base + shift, rtol=1e-7, atol=1e-7 * (scale + 10)
    )
    np.testing.assert_allclose(_ref_call(name, 3.0 * x, f, mask), 3.0 * base, rtol=1e-7, atol=1e-7 * scale)
    q = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))[0]
    np.testing.assert_allclose(_ref_call(name, x @ q, f, mask), base @ q, rtol=1e-7, atol=1e-7 * scale)
    perm = np.concatenate([[0], 1 + rng.permutation(x.shape[0] - 1)])
    np.testing.assert_allclose(_ref_call(name, x[perm], f, mask[perm]), base, rtol=1e-9, atol=1e-9 * scale)


# --------------------------------------------------------------------------- #
# 2. The JAX rules against the references


def _spec(case):
    """The JAX rule for ``case``; skips while it is not registered."""
    import decentral.aggregators as agg

    if case.name not in agg.AGGREGATORS:
        pytest.skip(f"JAX rule {case.name!r} is not registered yet (decentral/aggregators/spectral.py)")
    return agg.resolve(case.name, **case.kwargs)


def _coordinates(case, key, d):
    """The coordinate sets the JAX DnC uses for ``key`` (None for the other rules)."""
    if case.name != "dnc":
        return None
    iterations = case.kwargs.get("iterations", 1)
    subsample = case.kwargs.get("subsample", 10000)
    if subsample >= d:
        return [np.arange(d)] * iterations  # all coordinates: deterministic
    from decentral.aggregators import spectral

    draw = getattr(spectral, "dnc_coordinates", None)
    if draw is None:
        pytest.fail("decentral.aggregators.spectral.dnc_coordinates(key, dim, subsample, iterations) is missing")
    coords = np.asarray(draw(key, d, subsample, iterations))
    assert coords.shape == (iterations, subsample), coords.shape
    for row in coords:
        assert len(set(row.tolist())) == subsample and row.min() >= 0 and row.max() < d
    return list(coords)


def _key(seed):
    import jax

    return jax.random.key(seed)


@functools.lru_cache(maxsize=None)
def _jitted(case):
    """jit of one inbox with f, mask (and DnC's key) traced."""
    import jax

    spec = _spec(case)

    def call(x, f, mask, key):
        return spec(x, f=f, mask=mask, key=key if case.uses_key else None)

    return jax.jit(call)


@functools.lru_cache(maxsize=None)
def _vmapped(case):
    import jax

    spec = _spec(case)

    def call(x, f, mask, weights, key):
        return spec(x, f=f, mask=mask, weights=weights, key=key if case.uses_key else None)

    return jax.jit(jax.vmap(call))


def _run_jit(case, x, f, mask, seed=0):
    import jax.numpy as jnp

    key = _key(seed)
    got = _jitted(case)(jnp.asarray(x), jnp.asarray(f, dtype=jnp.int32), jnp.asarray(mask), key)
    return got, _coordinates(case, key, x.shape[1])


@per_default
def test_eager(case):
    """Eager calls, concrete f, K = 5, d = 3: mask=None, and masks with NaN / 1e6 rows."""
    import jax.numpy as jnp

    spec = _spec(case)
    rng = np.random.default_rng(10)
    tally = Tally()
    k, d = 5, 3
    # Few calls: an eager call traces (and compiles) the rule's loops afresh each time.
    for trial, (kind, f) in enumerate([("far", 2), ("alie", 1)]):
        key = _key(trial)
        extra = {"key": key} if case.uses_key else {}
        x = inbox(rng, kind, k, d, f)
        got = spec(jnp.asarray(x), f=f, **extra)
        tally.check(case, got, x, f, None, _coordinates(case, key, d), f"eager {kind}")
        g = max(f - 1, 0)
        mask = random_mask(rng, k, 2 * g + 1)
        y = fill_invalid(x, mask, np.nan if trial % 2 else 1e6)
        got = spec(jnp.asarray(y), f=g, mask=jnp.asarray(mask), **extra)
        tally.check(case, got, y, g, mask, _coordinates(case, key, d), f"eager {kind} masked")
    tally.done()


@per_case
def test_jit_random_and_adversarial(case):
    """jit, f traced, K = 7, d = 50: every kind of inbox, unmasked / NaN / 1e6 masked rows."""
    rng = np.random.default_rng(20)
    tally = Tally()
    k, d = 7, 50
    fills = [None, np.nan, 1e6]
    trial = 0
    for f in allowed_f(k):
        for kind in KINDS if f else ("gaussian", "huge"):
            fill = fills[trial % 3]
            x = inbox(rng, kind, k, d, f)
            mask = np.ones(k, dtype=bool) if fill is None else random_mask(rng, k, 2 * f + 1)
            if fill is not None:
                x = fill_invalid(x, mask, fill)
            got, coords = _run_jit(case, x, f, mask, seed=trial)
            tally.check(case, got, x, f, mask, coords, f"jit {kind} fill={fill}")
            trial += 1
    tally.done()


@per_vmap_case
def test_vmap_over_nodes(case):
    """jit(vmap) over 6 nodes, K = 11, d = 3: per-node f, masks, keys and mixing weights
    (ignored by these rules); one node has fewer than 2f + 1 valid rows (x[0])."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(30)
    tally = Tally()
    nodes, k, d = 6, 11, 3
    for batch in range(3):
        xs, fs, masks, ws = [], [], [], []
        for node in range(nodes):
            f = (node + batch) % 6
            kind = KINDS[(node + 2 * batch) % len(KINDS)]
            x = inbox(rng, kind, k, d, f)
            if node == nodes - 1:  # degenerate: 2f valid rows
                f = max(f, 1)
                mask = np.zeros(k, dtype=bool)
                mask[: 2 * f] = True
            elif (node + batch) % 3:
                mask = random_mask(rng, k, 2 * f + 1)
            else:
                mask = np.ones(k, dtype=bool)
            xs.append(fill_invalid(x, mask, np.nan if node % 2 else 1e6))
            fs.append(f)
            masks.append(mask)
            ws.append(rng.uniform(0.5, 1.5, size=k).astype(np.float32))
        keys = jax.random.split(_key(batch), nodes)
        got = _vmapped(case)(
            jnp.asarray(np.stack(xs)), jnp.asarray(fs, dtype=jnp.int32), jnp.asarray(np.stack(masks)),
            jnp.asarray(np.stack(ws)), keys,
        )
        got = np.asarray(got)
        for i in range(nodes):
            coords = _coordinates(case, keys[i], d)
            tally.check(case, got[i], xs[i], fs[i], masks[i], coords, f"vmap batch {batch} node {i}")
            if int(masks[i].sum()) < 2 * fs[i] + 1:
                np.testing.assert_array_equal(got[i], xs[i][0])
    tally.done()


LARGE_CASES = DEFAULT_CASES + [case("dnc", iterations=2, subsample=64)]


@pytest.mark.parametrize("case", LARGE_CASES, ids=[c.id for c in LARGE_CASES])
def test_large_dimension(case):
    """jit, K = 5, d = 2000, f = 1: one inbox of each of two kinds."""
    rng = np.random.default_rng(40)
    tally = Tally()
    k, d = 5, 2000
    for trial, kind in enumerate(("scaled", "far")):
        x = inbox(rng, kind, k, d, 1)
        mask = np.ones(k, dtype=bool)
        if trial:
            mask[2] = False  # 4 valid rows >= 3
            x = fill_invalid(x, mask, np.nan)
        got, coords = _run_jit(case, x, 1, mask, seed=trial)
        tally.check(case, got, x, 1, mask, coords, f"d=2000 {kind}")
    tally.done()


@per_default
def test_too_few_valid_rows_returns_own_vector(case):
    """Under jit, 2f valid rows (< 2f + 1): x[0] exactly; f = 0: the mean of the valid rows."""
    rng = np.random.default_rng(50)
    k, d = 7, 50
    for f in (1, 2, 3):
        x = rng.normal(size=(k, d)).astype(np.float32)
        mask = np.zeros(k, dtype=bool)
        mask[: 2 * f] = True
        x = fill_invalid(x, mask, np.nan)
        got, _ = _run_jit(case, x, f, mask)
        np.testing.assert_array_equal(np.asarray(got), x[0])
    x = rng.normal(size=(k, d)).astype(np.float32)
    mask = np.array([1, 1, 0, 1, 1, 1, 0], dtype=bool)
    x = fill_invalid(x, mask, 1e6)
    got, _ = _run_jit(case, x, 0, mask)
    np.testing.assert_allclose(np.asarray(got), x[mask].astype(np.float64).mean(axis=0), rtol=RTOL, atol=ATOL)


@per_default
def test_nonfinite_byzantine_rows(case):
    """Rows holding +-inf, NaN or 1e30 (whole rows or one entry) are unusable: they count
    as removed, and the output is finite and matches the reference."""
    rng = np.random.default_rng(60)
    tally = Tally()
    k, d = 7, 50
    for trial, bad in enumerate((np.inf, -np.inf, np.nan, 1e30)):
        for f in (1, 2, 3):
            x = inbox(rng, "far" if trial % 2 else "alie", k, d, f)
            rows = _byzantine_rows(rng, k, min(f, 2))
            for j, i in enumerate(rows):
                if j == 0:
                    x[i] = bad
                else:
                    x[i, int(rng.integers(d))] = bad
            mask = np.ones(k, dtype=bool)
            got, coords = _run_jit(case, x, f, mask, seed=trial)
            assert np.all(np.isfinite(np.asarray(got))), f"{case.id} bad={bad} f={f}"
            tally.check(case, got, x, f, mask, coords, f"bad={bad} rows={rows}")
    tally.done()


@pytest.mark.parametrize("name", RULES)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), f=st.integers(0, 3), kind=st.sampled_from(KINDS),
       fill=st.sampled_from([None, np.nan, 1e6, -1e6]))
def test_jit_matches_reference_property(name, seed, f, kind, fill):
    """Hypothesis: random inboxes (K = 7, d = 50, the jit test's compilation)."""
    c = case(name)
    _spec(c)
    rng = np.random.default_rng(seed)
    k = 7
    x = inbox(rng, kind, k, 50, f)
    mask = np.ones(k, dtype=bool) if fill is None else random_mask(rng, k, 2 * f + 1)
    if fill is not None:
        x = fill_invalid(x, mask, fill)
    got, coords = _run_jit(c, x, f, mask, seed=seed)
    tally = Tally()
    tally.check(c, got, x, f, mask, coords, f"property {kind} fill={fill}")
