"""Plain-numpy reference implementations of the robust-statistics rules (and smea) of docs/robust_statistics.md.

``filter`` (hard filter), ``soft_filter``, ``caf``, ``que`` and ``dnc``, written from the
definitions in docs/robust_statistics.md (binding where they depart from the papers; the test
file's docstring lists where they do), independently of ``decentral.aggregators``:
float64, explicit loops over rows, and the d x d covariance matrix with
``np.linalg.eigh`` -- deliberately NOT the K x K Gram matrix of the JAX code, so that an
algebra slip in one route (centring, mapping eigenvectors back, the d - r zero eigenvalues
of the matrix exponential) does not repeat in the other. Speed is a non-goal: at d = 2000
one full eigendecomposition takes seconds, so above ``FULL_EIGH_MAX_DIM`` the same d x d
matrix is reduced exactly to the span of the centred rows first (``weighted_spectrum``).

Conventions (as ``reference_aggregators.py``):

- ``x`` [K, d] is one node's inbox; row 0 is the node's own vector (always valid, finite).
- ``mask`` [K] bool marks the valid rows (default: all). Invalid rows are never read.
- Mixing weights are ignored by these rules (like Krum), so the functions take none.
- ``count`` = number of valid rows ``n``. If ``count < MIN_COUNT[name](f)`` (2f + 1 for
  every rule here) a rule returns ``x[0]`` unchanged.
- A valid row is *unusable* when an entry is non-finite or its squared distance to row 0
  exceeds the float32 maximum (3.4e38). Unusable rows get weight 0 and count as already
  removed (they use up the removal budget first).
- Aggregators return float64 [d].

Each rule takes an optional ``record=Record()``: it collects the margin of every discrete
decision the rule took (the stop test, the argmax of the removal scores, the eigen-gap
behind v_1, the budget comparisons, DnC's cut) and the final weights, so that a test can
tell "the JAX rule disagrees" from "the decision was within float32 noise of a tie".
"""

import itertools
import math

import numpy as np

__all__ = [
    "MIN_COUNT",
    "AGGREGATORS",
    "FLOAT32_MAX",
    "Record",
    "Spectrum",
    "weighted_spectrum",
    "FULL_EIGH_MAX_DIM",
    "tie_key",
    "usable_rows",
    "hard_filter",
    "filter_",
    "soft_filter",
    "caf",
    "que",
    "que_scores",
    "dnc",
    "smea",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38

MIN_COUNT = {
    "filter": lambda f, **hyper: 2 * f + 1,
    "soft_filter": lambda f, **hyper: 2 * f + 1,
    "caf": lambda f, **hyper: 2 * f + 1,
    "que": lambda f, **hyper: 2 * f + 1,
    "dnc": lambda f, **hyper: 2 * f + 1,
    "smea": lambda f, **hyper: 2 * f + 1,
}

# A spectrum whose RMS spread is below this fraction of the rows' magnitude is float32
# noise (all active rows equal up to rounding): every decision on it leaves the output
# within that noise, so no margin is recorded for it.
_DEGENERATE = 1e-5


# --------------------------------------------------------------------------- #
# Decision margins


class Record:
    """Margins of the discrete decisions one reference call took, and its final weights.

    ``margins`` is a list of ``(kind, value)``:

    - ``"test"``: |lambda_1 - threshold * spread| / max(lambda_1, threshold * spread);
    - ``"argmax"``: (top - runner-up) / top of the removal scores (tau, QUE's score), the
      runner-up being the largest score of a row that differs from the winner (removing
      either of two identical rows gives the same result);
    - ``"soft_max"``: the same for tau_max of the soft rules (a row whose tau is that close
      to tau_max keeps a weight that float32 may round to 0, which changes the set of rows
      with c_i > 0, hence r and the next tau_max);
    - ``"gap"``: (lambda_1 - lambda_2) / lambda_1 wherever v_1 is used (it is ill-defined
      when the top eigenvalue is nearly double);
    - ``"budget"``: |(n - C) - f| (soft_filter) or |C - (n - 2f)| (caf), absolute, in units
      of one row's weight; not recorded while the weights are still exactly 0/1;
    - ``"best"``: |lambda_1 - best_lambda| / best_lambda of CAF's running minimum;
    - ``"cut"``: (s_first_dropped - s_last_kept) / s_first_dropped of DnC's selection;
    - ``"usable"``: |squared distance - 3.4e38| / 3.4e38 of a row near the overflow line.

    ``weights`` [K]: the weights c of the returned mean (0 on invalid and unusable rows).
    """

    RELATIVE = ("test", "argmax", "soft_max", "best", "cut", "usable")

    def __init__(self):
        self.margins = []
        self.weights = None

    def add(self, kind, value):
        self.margins.append((kind, float(value)))

    def closest(self, rtol=1e-3, gap_rtol=1e-2, budget_atol=1e-3):
        """The first decision within tolerance of a tie, as ``(kind, value)``, or None."""
        for kind, value in self.margins:
            limit = {"gap": gap_rtol, "budget": budget_atol}.get(kind, rtol)
            if value < limit:
                return kind, value
        return None

    def near_tie(self, rtol=1e-3, gap_rtol=1e-2, budget_atol=1e-3):
        return self.closest(rtol, gap_rtol, budget_atol) is not None


def _relative_margin(a, b):
    top = max(abs(a), abs(b))
    return abs(a - b) / top if top > 0 else math.inf


# --------------------------------------------------------------------------- #
# Helpers


def _prepare(x, mask):
    x = np.array(x, dtype=np.float64)
    k = x.shape[0]
    mask = np.ones(k, dtype=bool) if mask is None else np.array(mask, dtype=bool)
    assert mask.shape == (k,)
    assert mask[0], "row 0 (the node's own vector) must be valid"
    assert np.all(np.isfinite(x[0])), "row 0 is honest, hence finite"
    return x, mask


def _valid(mask):
    return [i for i in range(len(mask)) if mask[i]]


def _too_few(name, f, mask):
    return int(np.sum(mask)) < MIN_COUNT[name](f)


def tie_key(row):
    """t_i = x_i . u with u_k = sin(12.9898 k + 78.233), k = 0..d-1 (docs/robust_statistics.md)."""
    u = np.sin(12.9898 * np.arange(row.shape[0], dtype=np.float64) + 78.233)
    return float(np.dot(row, u))


def usable_rows(x, mask, record=None):
    """(usable valid rows in inbox order, number of unusable valid rows).

    Unusable: a non-finite entry, or ||x_i - x_0||^2 > float32 max (computed in float64).
    """
    usable, unusable = [], 0
    for i in _valid(mask):
        row = x[i]
        if not np.all(np.isfinite(row)):
            unusable += 1
            continue
        with np.errstate(over="ignore"):
            dist2 = float(np.sum((row - x[0]) ** 2))
        if record is not None and dist2 > 1e-3 * FLOAT32_MAX and math.isfinite(dist2):
            record.add("usable", abs(dist2 - FLOAT32_MAX) / FLOAT32_MAX)
        if not dist2 <= FLOAT32_MAX:
            unusable += 1
            continue
        usable.append(i)
    return usable, unusable


class Spectrum:
    """Weighted moments of the rows with c_i > 0 (docs/robust_statistics.md, common notation)."""

    def __init__(self, mu, sigma, eigenvalues, eigenvectors, spread, rank):
        self.mu = mu  # mu_c [d]
        self.sigma = sigma  # Sigma_c [d, d]
        self.eigenvalues = eigenvalues  # all d of them, descending
        # [d, m]: column k <-> eigenvalues[k], k < m. m = d (full eigh), or m = #active rows
        # (large d, see ``weighted_spectrum``): the d - m missing eigenvectors have
        # eigenvalue 0 and are orthogonal to every x_i - mu_c of an active row.
        self.eigenvectors = eigenvectors
        self.spread = spread  # (trace(Sigma_c) - lambda_1) / (r - 1)
        self.rank = rank  # r = min(d, #(c_i > 0) - 1)

    @property
    def lambda_1(self):
        return float(self.eigenvalues[0])

    @property
    def lambda_2(self):
        return float(self.eigenvalues[1]) if len(self.eigenvalues) > 1 else 0.0

    @property
    def v_1(self):
        return self.eigenvectors[:, 0]


# Up to this dimension Sigma_c is diagonalised whole (np.linalg.eigh on d x d). Above it
# (an eigh at d = 2000 takes seconds on 2 busy cores) the same d x d matrix is reduced
# exactly: its range is spanned by the centred active rows x_i - mu_c, so with Q an
# orthonormal basis of their span (QR, [d, m]) its eigenpairs are those of Q^T Sigma_c Q
# (m x m) mapped by Q, plus d - m zero eigenvalues on the orthogonal complement (the
# Rayleigh-Ritz method; exact, since range(Sigma_c) is inside range(Q)). Still not the
# Gram route of the JAX code: no K x K matrix of the rows' inner products, no eigenvectors
# rebuilt as X^T u / sqrt(lambda). ``test_large_dimension_path_matches_full_eigh`` checks
# the two paths agree.
FULL_EIGH_MAX_DIM = 256


def _eigh_descending(sigma, centred_rows, full):
    """(eigenvalues [d] descending, eigenvectors [d, m]) of the symmetric d x d ``sigma``."""
    d = sigma.shape[0]
    if full:
        values, vectors = np.linalg.eigh(sigma)  # ascending
        return values[::-1], vectors[:, ::-1]
    q = np.linalg.qr(np.array(centred_rows).T)[0]  # [d, m], orthonormal, spans the rows
    values, small = np.linalg.eigh(q.T @ sigma @ q)  # ascending
    values, vectors = values[::-1], q @ small[:, ::-1]
    return np.concatenate([values, np.zeros(d - len(values))]), vectors


def weighted_spectrum(x, c, rows, full=None):
    """mu_c, Sigma_c (d x d), its eigenpairs and the spread, over ``rows`` with weights c.

    mu_c = sum c_i x_i / C;  Sigma_c = (1/C) sum c_i (x_i - mu_c)(x_i - mu_c)^T;
    spread = (trace(Sigma_c) - lambda_1) / (r - 1), the mean of the other possibly non-zero
    eigenvalues, with r = min(d, #rows with c_i > 0 - 1); 0 if r <= 1.
    ``full``: diagonalise the whole d x d matrix (default: when d <= FULL_EIGH_MAX_DIM or
    d <= #active rows).
    """
    d = x.shape[1]
    active = [i for i in rows if c[i] > 0]
    total = sum(c[i] for i in active)
    mu = sum(c[i] * x[i] for i in active) / total
    sigma = np.zeros((d, d))
    for i in active:
        u = x[i] - mu
        sigma += c[i] * np.outer(u, u)
    sigma /= total
    if full is None:
        full = d <= FULL_EIGH_MAX_DIM or d <= len(active)
    values, vectors = _eigh_descending(sigma, [x[i] - mu for i in active], full)
    rank = min(d, len(active) - 1)
    spread = (float(np.trace(sigma)) - float(values[0])) / (rank - 1) if rank > 1 else 0.0
    return Spectrum(mu, sigma, values, vectors, spread, rank)


def _degenerate(x, rows, spectrum):
    """True when the active rows coincide up to rounding (see ``_DEGENERATE``)."""
    magnitude = max(float(np.linalg.norm(x[i])) for i in rows)
    trace = max(float(np.trace(spectrum.sigma)), 0.0)
    return math.sqrt(trace) <= _DEGENERATE * max(magnitude, 1e-300)


def _fires(x, rows, spectrum, threshold, record):
    """The stop test: lambda_1 > threshold * spread."""
    bound = threshold * spectrum.spread
    if record is not None and not _degenerate(x, rows, spectrum):
        record.add("test", _relative_margin(spectrum.lambda_1, bound))
    return spectrum.lambda_1 > bound


def _record_gap(x, rows, spectrum, record):
    if record is None or _degenerate(x, rows, spectrum) or spectrum.lambda_1 <= 0:
        return
    record.add("gap", (spectrum.lambda_1 - spectrum.lambda_2) / spectrum.lambda_1)


def _argmax(x, rows, scores, record, kind="argmax"):
    """The row with the largest score; ties: the larger tie key, then the lower index."""
    best = max(rows, key=lambda i: (scores[i], tie_key(x[i]), -i))
    if record is not None and scores[best] > 0:
        others = [scores[i] for i in rows if not np.array_equal(x[i], x[best])]
        if others:
            record.add(kind, (scores[best] - max(others)) / scores[best])
    return best


def _tau(x, rows, spectrum):
    """tau_i = ((x_i - mu_c) . v_1)^2."""
    return {i: float(np.dot(x[i] - spectrum.mu, spectrum.v_1)) ** 2 for i in rows}


def _weighted_mean(x, c, rows):
    active = [i for i in rows if c[i] > 0]
    return sum(c[i] * x[i] for i in active) / sum(c[i] for i in active)


def _finish(record, c):
    if record is not None:
        record.weights = c.copy()


# --------------------------------------------------------------------------- #
# The rules


def hard_filter(x, f=0, mask=None, threshold=2.0, *, record=None):
    """Filter (Diakonikolas, Kamath, Kane, Li, Moitra, Stewart; docs/robust_statistics.md "filter").

    c = 1 on usable valid rows; removed = #unusable valid rows.
    loop: if removed >= f: stop. If lambda_1 <= threshold * spread: stop. Else set
    c_j = 0 for the active row with the largest tau_j; removed += 1.  Return mu_c.
    """
    x, mask = _prepare(x, mask)
    if _too_few("filter", f, mask):
        return x[0].copy()
    rows, removed = usable_rows(x, mask, record)
    c = np.zeros(x.shape[0])
    c[rows] = 1.0
    while removed < f:
        active = [i for i in rows if c[i] > 0]
        spectrum = weighted_spectrum(x, c, active)
        if not _fires(x, active, spectrum, threshold, record):
            break
        _record_gap(x, active, spectrum, record)
        tau = _tau(x, active, spectrum)
        c[_argmax(x, active, tau, record)] = 0.0
        removed += 1
    _finish(record, c)
    return _weighted_mean(x, c, rows)


filter_ = hard_filter


def soft_filter(x, f=0, mask=None, threshold=2.0, *, record=None):
    """Soft filter (Steinhardt, Charikar, Valiant ITCS 2018; docs/robust_statistics.md "soft_filter").

    c as in filter. loop: if n - C >= f: stop. If the test does not fire: stop.
    tau_max = max over c_i > 0 of tau_i; if 0: stop. c_i <- c_i (1 - tau_i / tau_max).
    Return mu_c.
    """
    x, mask = _prepare(x, mask)
    if _too_few("soft_filter", f, mask):
        return x[0].copy()
    n = int(np.sum(mask))
    rows, _ = usable_rows(x, mask, record)
    c = np.zeros(x.shape[0])
    c[rows] = 1.0
    exact = True  # weights still 0/1: the budget comparison is exact in any precision
    while True:
        removed = n - sum(c[i] for i in rows)  # unusable rows count 1 each
        if record is not None and not exact:
            record.add("budget", abs(removed - f))
        if removed >= f:
            break
        active = [i for i in rows if c[i] > 0]
        spectrum = weighted_spectrum(x, c, active)
        if not _fires(x, active, spectrum, threshold, record):
            break
        tau = _tau(x, active, spectrum)
        tau_max = tau[_argmax(x, active, tau, record, kind="soft_max")]
        if tau_max == 0:
            break
        _record_gap(x, active, spectrum, record)
        for i in active:
            c[i] *= 1.0 - tau[i] / tau_max
        exact = False
    _finish(record, c)
    return _weighted_mean(x, c, rows)


def caf(x, f=0, mask=None, *, record=None):
    """CAF (Allouah, Guerraoui, Stephan ICML 2025, as ByzFL's CAF; docs/robust_statistics.md "caf").

    c as in filter; best = mu_c of the start, best_lambda = +inf.
    loop while C > n - 2f: compute mu_c, lambda_1, v_1, tau; if lambda_1 < best_lambda:
    best_lambda = lambda_1, best = mu_c. tau_max = max over c_i > 0 of tau_i; if 0: stop.
    c_i <- c_i (1 - tau_i / tau_max). Return best.
    """
    x, mask = _prepare(x, mask)
    if _too_few("caf", f, mask):
        return x[0].copy()
    n = int(np.sum(mask))
    rows, _ = usable_rows(x, mask, record)
    c = np.zeros(x.shape[0])
    c[rows] = 1.0
    best, best_lambda, best_c = _weighted_mean(x, c, rows), math.inf, c.copy()
    exact = True
    while True:
        total = sum(c[i] for i in rows)
        if record is not None and not exact:
            record.add("budget", abs(total - (n - 2 * f)))
        if not total > n - 2 * f:
            break
        active = [i for i in rows if c[i] > 0]
        spectrum = weighted_spectrum(x, c, active)
        degenerate = _degenerate(x, active, spectrum)
        if record is not None and best_lambda < math.inf and not degenerate:
            record.add("best", _relative_margin(spectrum.lambda_1, best_lambda))
        if spectrum.lambda_1 < best_lambda:
            best_lambda, best, best_c = spectrum.lambda_1, spectrum.mu, c.copy()
        tau = _tau(x, active, spectrum)
        tau_max = tau[_argmax(x, active, tau, record, kind="soft_max")]
        if tau_max == 0:
            break
        _record_gap(x, active, spectrum, record)
        for i in active:
            c[i] *= 1.0 - tau[i] / tau_max
        exact = False
    _finish(record, best_c)
    return np.array(best, dtype=np.float64)


def que_scores(x, rows, spectrum, alpha):
    """s_i = (x_i - mu_c)^T U (x_i - mu_c), U = exp(beta Sigma_c) / trace exp(beta Sigma_c).

    beta = alpha / lambda_1. With Sigma_c = sum_k lambda_k v_k v_k^T over ALL d eigenpairs,
    exp(beta Sigma_c) = sum_k exp(beta lambda_k) v_k v_k^T, so
    s_i = sum_k w_k ((x_i - mu_c) . v_k)^2 / sum_k w_k with w_k = exp(beta lambda_k); the
    common factor exp(beta lambda_1) is divided out of every w_k (w_k =
    exp(beta (lambda_k - lambda_1)) <= 1), which changes nothing but avoids overflow at
    large alpha.
    """
    beta = alpha / spectrum.lambda_1
    w = np.exp(beta * (spectrum.eigenvalues - spectrum.lambda_1))  # all d of them
    m = spectrum.eigenvectors.shape[1]  # eigenvectors beyond m: orthogonal to x_i - mu_c
    scores = {}
    for i in rows:
        coefficients = spectrum.eigenvectors.T @ (x[i] - spectrum.mu)  # (x_i - mu) . v_k
        scores[i] = float(np.sum(w[:m] * coefficients**2) / np.sum(w))
    return scores


def que(x, f=0, mask=None, alpha=4.0, threshold=2.0, *, record=None):
    """QUE scoring filter (Dong, Hopkins, Li NeurIPS 2019; docs/robust_statistics.md "que").

    As filter (hard removal, budget f, same stop test), but the removed row is the one
    with the largest quantum-entropy score (``que_scores``).
    """
    x, mask = _prepare(x, mask)
    if _too_few("que", f, mask):
        return x[0].copy()
    rows, removed = usable_rows(x, mask, record)
    c = np.zeros(x.shape[0])
    c[rows] = 1.0
    while removed < f:
        active = [i for i in rows if c[i] > 0]
        spectrum = weighted_spectrum(x, c, active)
        if not _fires(x, active, spectrum, threshold, record):
            break
        scores = que_scores(x, active, spectrum, alpha)
        c[_argmax(x, active, scores, record)] = 0.0
        removed += 1
    _finish(record, c)
    return _weighted_mean(x, c, rows)


def dnc(x, f=0, coordinates=None, mask=None, fraction=1.0, *, record=None):
    """Divide-and-Conquer (Shejwalkar, Houmansadr NDSS 2021; docs/robust_statistics.md "dnc").

    ``coordinates``: one index array R_t per iteration (default: one iteration over all d
    coordinates). For each R_t, on the usable valid rows restricted to R_t: centre at their
    uniform mean, v = top unit eigenvector of their covariance, s_i = ((x_i - mean)|R_t . v)^2;
    good_t = the n - ceil(fraction * f) usable rows with the lowest scores (every usable row
    when fewer remain; equal scores: the larger tie key, then the higher index, is dropped
    first). Return the uniform mean of the intersection of the good_t (x[0] if empty).
    """
    x, mask = _prepare(x, mask)
    if _too_few("dnc", f, mask):
        return x[0].copy()
    k, d = x.shape
    n = int(np.sum(mask))
    rows, _ = usable_rows(x, mask, record)
    keep = n - math.ceil(fraction * f)
    if coordinates is None:
        coordinates = [np.arange(d)]
    good = set(rows)
    for subset in coordinates:
        subset = np.asarray(subset, dtype=np.int64)
        assert subset.ndim == 1 and len(set(subset.tolist())) == len(subset), "R_t: distinct"
        assert np.all((subset >= 0) & (subset < d)), "R_t: coordinates in [0, d)"
        restricted = np.zeros((k, len(subset)))
        for i in rows:
            restricted[i] = x[i, subset]
        c = np.zeros(k)
        c[rows] = 1.0
        spectrum = weighted_spectrum(restricted, c, rows)  # uniform mean and covariance
        scores = _tau(restricted, rows, spectrum)
        if keep >= len(rows):
            kept = list(rows)
        else:
            order = sorted(rows, key=lambda i: (scores[i], tie_key(x[i]), i))
            kept = order[:keep]
            if record is not None:
                last, first_out = kept[-1], order[keep]
                if not np.array_equal(restricted[last], restricted[first_out]):
                    dropped = scores[first_out]  # >= scores[last]
                    gap = (dropped - scores[last]) / dropped if dropped > 0 else 0.0
                    record.add("cut", gap)
                _record_gap(restricted, rows, spectrum, record)
        good &= set(kept)
    c = np.zeros(k)
    c[sorted(good)] = 1.0
    _finish(record, c)
    if not good:
        return x[0].copy()
    return sum(x[i] for i in sorted(good)) / len(good)


def smea(x, f=0, mask=None, *, record=None):
    """SMEA (Allouah, Guerraoui, Gupta, Pinot, Stephan ICML 2023; as ByzFL's SMEA, with an
    exact top eigenvalue): among the subsets of n - f valid rows, all usable, the one whose
    covariance (uniform, 1/|S|) has the smallest top eigenvalue; return its mean. Subsets
    in ``itertools.combinations`` order; the first of equal eigenvalues wins. x[0] when no
    subset of usable rows exists."""
    x, mask = _prepare(x, mask)
    if _too_few("smea", f, mask):
        return x[0].copy()
    valid = _valid(mask)
    rows, _ = usable_rows(x, mask, record)
    scored = []
    for subset in itertools.combinations(valid, len(valid) - f):
        if not set(subset) <= set(rows):
            continue
        c = np.zeros(x.shape[0])
        c[list(subset)] = 1.0
        scored.append((weighted_spectrum(x, c, list(subset)).lambda_1, subset))
    if not scored:
        return x[0].copy()
    best_value, best = min(scored, key=lambda item: item[0])
    if record is not None and len(scored) > 1:
        others = [value for value, subset in scored if not np.array_equal(x[list(subset)].sum(0), x[list(best)].sum(0))]
        if others and best_value > 0:
            record.add("argmax", (min(others) - best_value) / best_value)
    return x[list(best)].mean(axis=0)


AGGREGATORS = {
    "filter": hard_filter,
    "soft_filter": soft_filter,
    "caf": caf,
    "que": que,
    "dnc": dnc,
    "smea": smea,
}
