"""Plain-numpy reference implementations of the robust aggregation rules.

Written from the definitions (the papers and /work/shared/RULES.md), independently of
``decentral.aggregators``: float64, explicit loops, ``x[mask]``, ``np.median``,
``np.sort``, ``itertools.combinations``. Speed and vectorisation are non-goals; each
function should be checkable against its definition by reading it.

Conventions shared by every rule:

- ``x`` [K, d] is one node's inbox; row 0 is the node's own vector.
- ``mask`` [K] bool marks the valid rows (default: all); row 0 is always valid. Invalid
  rows are never read (they may hold NaN or 1e6, and so may their weights).
- ``weights`` [K] nonnegative mixing weights (default 1 for every valid row); weighted
  rules normalise them over the valid rows.
- ``count`` is the number of valid rows. If ``count < MIN_COUNT[name](f, **hyper)`` an
  aggregator returns ``x[0]`` unchanged and a pre-aggregator returns its inputs unchanged.
- Aggregators return float64 [d]; pre-aggregators return ``(x, mask, weights)`` with
  float64 ``x`` [K, d] and ``weights`` [K] (ones on valid rows when none were given).
"""

import itertools
import math

import numpy as np

__all__ = [
    "MIN_COUNT",
    "AGGREGATORS",
    "PRE_AGGREGATORS",
    "mean",
    "median",
    "trimmed_mean",
    "meamed",
    "phocas",
    "krum",
    "multi_krum",
    "bulyan",
    "geometric_median",
    "centered_clipping",
    "mda",
    "mda_greedy",
    "cge",
    "aksel",
    "nna",
    "ios",
    "clipped_gossip",
    "cs_plus",
    "nnm",
    "arc",
    "clip",
    "candidates",
    "check_bucketing",
]


# --------------------------------------------------------------------------- #
# Minimum number of valid rows. Every entry takes f and the rule's hyperparameters.

MIN_COUNT = {
    "mean": lambda f, **hyper: 1,
    "median": lambda f, **hyper: 2 * f + 1,
    "trimmed_mean": lambda f, **hyper: 2 * f + 1,
    "meamed": lambda f, **hyper: 2 * f + 1,
    "phocas": lambda f, **hyper: 2 * f + 1,
    "krum": lambda f, **hyper: 2 * f + 3,
    "multi_krum": lambda f, **hyper: 2 * f + 3,
    "bulyan": lambda f, **hyper: 4 * f + 3,
    "geometric_median": lambda f, **hyper: 2 * f + 1,
    "centered_clipping": lambda f, **hyper: 2 * f + 1,
    "mda": lambda f, **hyper: 2 * f + 1,
    "mda_greedy": lambda f, **hyper: 2 * f + 1,
    "cge": lambda f, **hyper: 2 * f + 1,
    "aksel": lambda f, **hyper: 2 * f + 1,
    "nna": lambda f, **hyper: 2 * f + 1,
    "ios": lambda f, **hyper: f + 1,
    "clipped_gossip": lambda f, radius=None, **hyper: 1 if radius is not None else f + 1,
    "cs_plus": lambda f, **hyper: f + 1,
    "nnm": lambda f, **hyper: 2 * f + 1,
    "arc": lambda f, **hyper: 2 * f + 1,
    "clip": lambda f, **hyper: 1,
}


# --------------------------------------------------------------------------- #
# Helpers


def _prepare(x, mask, weights):
    """float64 copies of the inputs, with the documented defaults filled in."""
    x = np.array(x, dtype=np.float64)
    k = x.shape[0]
    mask = np.ones(k, dtype=bool) if mask is None else np.array(mask, dtype=bool)
    assert mask[0], "row 0 (the node's own vector) must be valid"
    if weights is None:
        weights = np.ones(k, dtype=np.float64)
    else:
        weights = np.array(weights, dtype=np.float64)
    return x, mask, weights


def _valid(mask):
    """Indices of the valid rows, in inbox order (row 0 first)."""
    return [i for i in range(len(mask)) if mask[i]]


def _too_few(name, f, mask, **hyper):
    return int(np.sum(mask)) < MIN_COUNT[name](f, **hyper)


def _norm(u):
    return math.sqrt(float(np.sum(u * u)))


def _sqdist(a, b):
    return float(np.sum((a - b) ** 2))


def _clip_vector(u, t):
    """u * min(1, t / ||u||), with clip(0, t) = 0 and clip(u, inf) = u."""
    n = _norm(u)
    if n == 0.0 or n <= t:
        return u.copy()
    return u * (t / n)


def _median_1d(values):
    """Median of a list of floats; mean of the two middle ones for an even length."""
    return float(np.median(np.array(values, dtype=np.float64)))


def _trimmed_mean_1d(values, f):
    s = sorted(values)
    kept = s[f : len(s) - f]
    return sum(kept) / len(kept)


def _closest_mean_1d(values, center, keep):
    """Mean of the `keep` values closest to `center`; equal distance: lower value first."""
    order = sorted(values, key=lambda v: (abs(v - center), v))
    kept = order[:keep]
    return sum(kept) / len(kept)


def _cw_median(rows):
    """Coordinate-wise median of a list of [d] vectors."""
    d = rows[0].shape[0]
    return np.array([_median_1d([r[c] for r in rows]) for c in range(d)])


def _krum_scores(rows, k):
    """score_i = sum of the k smallest squared distances from rows[i] to the other rows."""
    scores = []
    for i in range(len(rows)):
        dists = sorted(_sqdist(rows[i], rows[j]) for j in range(len(rows)) if j != i)
        scores.append(sum(dists[:k]))
    return scores


def _pairwise(rows):
    """Matrix of Euclidean distances, computed once so equal pairs give equal values."""
    n = len(rows)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dist[i, j] = _norm(rows[i] - rows[j])
    return dist


def _diameter_and_spread(dist, subset):
    """(max pairwise distance, sum over pairs i<j of squared distances) of a subset."""
    diameter = 0.0
    spread = 0.0
    for a, b in itertools.combinations(subset, 2):
        diameter = max(diameter, dist[a, b])
        spread += dist[a, b] ** 2
    return diameter, spread


def _mean_rows(rows):
    return sum(rows) / len(rows)


def _norms(x, idx, around):
    if around == "zero":
        return {j: _norm(x[j]) for j in idx}
    if around == "own":
        return {j: _norm(x[j] - x[0]) for j in idx}
    raise ValueError(f"around must be 'zero' or 'own', got {around!r}")


def _byzantine_weight(w, idx, f):
    """delta: the sum of the f largest (normalised) weights among valid j != 0."""
    others = sorted((w[j] for j in idx if j != 0), reverse=True)
    return sum(others[:f])


def _by_distance_to_own(x, idx):
    """Valid indices sorted by ||x_j - x_0||, row 0 first; returns (order, distances)."""
    dist = {j: _norm(x[j] - x[0]) for j in idx}
    order = sorted(idx, key=lambda j: (dist[j], j != 0))
    return order, dist


def _leq_rel(a, b, rtol=1e-6):
    """a <= b with a relative tolerance (the threshold is a sum of float weights)."""
    return a <= b + rtol * abs(b)


# --------------------------------------------------------------------------- #
# Aggregators


def mean(x, f=0, mask=None, weights=None):
    """Weighted mean sum_V w_j x_j / sum_V w_j (gossip averaging; RULES.md "Mean")."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("mean", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    total = sum(weights[j] for j in idx)
    return sum(weights[j] * x[j] for j in idx) / total


def median(x, f=0, mask=None, weights=None):
    """Coordinate-wise median (Yin et al. ICML 2018); even count: mean of the middle two."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("median", f, mask):
        return x[0].copy()
    return _cw_median([x[j] for j in _valid(mask)])


def trimmed_mean(x, f=0, mask=None, weights=None):
    """CW trimmed mean dropping f lowest and f highest (Yin et al. ICML 2018)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("trimmed_mean", f, mask):
        return x[0].copy()
    v = x[mask]
    return np.array([_trimmed_mean_1d(list(v[:, c]), f) for c in range(x.shape[1])])


def meamed(x, f=0, mask=None, weights=None):
    """CW mean of the count-f values closest to the CW median (Xie, Koyejo, Gupta 2018)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("meamed", f, mask):
        return x[0].copy()
    v = x[mask]
    count = v.shape[0]
    out = []
    for c in range(x.shape[1]):
        values = list(v[:, c])
        out.append(_closest_mean_1d(values, _median_1d(values), count - f))
    return np.array(out)


def phocas(x, f=0, mask=None, weights=None):
    """CW mean of the count-f values closest to the CW trimmed mean (Xie et al. 2018)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("phocas", f, mask):
        return x[0].copy()
    v = x[mask]
    count = v.shape[0]
    out = []
    for c in range(x.shape[1]):
        values = list(v[:, c])
        out.append(_closest_mean_1d(values, _trimmed_mean_1d(values, f), count - f))
    return np.array(out)


def _krum_k(count, f, variant):
    if variant == "paper":
        return count - f - 2
    if variant == "byzfl":
        return count - f - 1
    raise ValueError(f"variant must be 'paper' or 'byzfl', got {variant!r}")


def _smallest_choices(rows, scores, m, rtol=0.0):
    """Every way to take m rows with the smallest scores, ties at the cut broken every way.

    Scores within ``rtol`` (relative) of the cut count as tied. Choices that differ only
    by swapping identical rows are listed once. The first choice is the plain sort's.
    """
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    cut = scores[order[m - 1]]
    near = rtol * abs(cut)
    sure = tuple(i for i in order if scores[i] < cut - near)
    tied = [i for i in order if abs(scores[i] - cut) <= near]
    first = tuple(order[:m])
    choices, seen = [first], {tuple(sorted(tuple(rows[i]) for i in first[len(sure) :]))}
    for extra in itertools.combinations(tied, m - len(sure)):
        key = tuple(sorted(tuple(rows[i]) for i in extra))
        if key not in seen:
            seen.add(key)
            choices.append(sure + extra)
    return choices


def _krum_all(x, f, mask, variant):
    x, mask, _ = _prepare(x, mask, None)
    if _too_few("krum", f, mask):
        return [x[0].copy()]
    rows = [x[j] for j in _valid(mask)]
    scores = _krum_scores(rows, _krum_k(len(rows), f, variant))
    return [rows[c[0]].copy() for c in _smallest_choices(rows, scores, 1)]


def krum(x, f=0, mask=None, weights=None, *, variant="paper"):
    """Krum: the valid row with the smallest k-nearest score (Blanchard et al. NeurIPS 2017).

    Score ties between different rows (k = 1 always makes the closest pair tie) are broken
    by the lowest inbox index; ``candidates`` lists every tie-break.
    """
    return _krum_all(x, f, mask, variant)[0]


def _multi_krum_all(x, f, mask, m, variant):
    x, mask, _ = _prepare(x, mask, None)
    if _too_few("multi_krum", f, mask):
        return [x[0].copy()]
    rows = [x[j] for j in _valid(mask)]
    count = len(rows)
    m = count - f if m is None else min(m, count)
    scores = _krum_scores(rows, _krum_k(count, f, variant))
    return [_mean_rows([rows[i] for i in c]) for c in _smallest_choices(rows, scores, m)]


def multi_krum(x, f=0, mask=None, weights=None, *, m=None, variant="paper"):
    """Multi-Krum: mean of the m best Krum-scored rows (Blanchard et al. NeurIPS 2017)."""
    return _multi_krum_all(x, f, mask, m, variant)[0]


def _bulyan_all(x, f, mask):
    x, mask, _ = _prepare(x, mask, None)
    if _too_few("bulyan", f, mask):
        return [x[0].copy()]
    rows = [x[j] for j in _valid(mask)]
    count = len(rows)
    theta = count - 2 * f
    beta = theta - 2 * f

    def finish(selected):
        out = []
        for c in range(x.shape[1]):
            values = [s[c] for s in selected]
            out.append(_closest_mean_1d(values, _median_1d(values), beta))
        return np.array(out)

    def select(remaining, selected):
        """Repeated Krum; branches on every score tie between different rows."""
        if len(selected) == theta:
            return [finish(selected)]
        r = len(remaining)
        if r == 1:
            scores = [0.0]
        else:
            k = min(max(r - f - 2, 1), r - 1)
            scores = _krum_scores(remaining, k)
        results = []
        for (best,) in _smallest_choices(remaining, scores, 1):
            rest = remaining[:best] + remaining[best + 1 :]
            results += select(rest, selected + [remaining[best]])
        return results

    return select(rows, [])


def bulyan(x, f=0, mask=None, weights=None):
    """Bulyan: repeated Krum selection, then CW mean around the median (El Mhamdi et al. ICML 2018).

    Selection steps with k = 1 make the closest pair tie; the lowest inbox index wins here,
    and ``candidates`` lists the result of every tie-break.
    """
    return _bulyan_all(x, f, mask)[0]


def geometric_median(x, f=0, mask=None, weights=None, *, iterations, smoothing, start=None, initial="own"):
    """Smoothed Weiszfeld iterations (Pillutla, Kakade, Harchaoui, RFA, IEEE TSP 2022), from
    ``start``, else from x_0 (``initial="own"``) or from 0 (``"zero"``, ClippedGossip's RFA)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("geometric_median", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    if start is not None:
        z = np.array(start, dtype=np.float64)
    else:
        z = np.zeros_like(x[0]) if initial == "zero" else x[0].copy()
    for _ in range(iterations):
        b = {j: weights[j] / max(smoothing, _norm(z - x[j])) for j in idx}
        z = sum(b[j] * x[j] for j in idx) / sum(b[j] for j in idx)
    return z


def centered_clipping(x, f=0, mask=None, weights=None, *, radius, iterations=1, start=None):
    """Centered clipping v += mean_w clip(x_j - v, radius) (Karimireddy, He, Jaggi ICML 2021)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("centered_clipping", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    total = sum(weights[j] for j in idx)
    v = x[0].copy() if start is None else np.array(start, dtype=np.float64)
    for _ in range(iterations):
        v = v + sum(weights[j] * _clip_vector(x[j] - v, radius) for j in idx) / total
    return v


def mda(x, f=0, mask=None, weights=None):
    """Minimum-diameter averaging over all (count-f)-subsets (El Mhamdi et al., MDA / Brute)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("mda", f, mask):
        return x[0].copy()
    rows = [x[j] for j in _valid(mask)]
    dist = _pairwise(rows)
    best_key, best_subset = None, None
    for subset in itertools.combinations(range(len(rows)), len(rows) - f):
        key = _diameter_and_spread(dist, subset)
        if best_key is None or key < best_key:
            best_key, best_subset = key, subset
    return _mean_rows([rows[i] for i in best_subset])


def mda_greedy(x, f=0, mask=None, weights=None):
    """Greedy MDA: best ball of count-f nearest rows around each centre (El Mhamdi et al.)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("mda_greedy", f, mask):
        return x[0].copy()
    rows = [x[j] for j in _valid(mask)]
    dist = _pairwise(rows)
    best_key, best_ball = None, None
    for i in range(len(rows)):
        ball = sorted(range(len(rows)), key=lambda j: (dist[i, j], j != i))[: len(rows) - f]
        key = _diameter_and_spread(dist, ball)
        if best_key is None or key < best_key:
            best_key, best_ball = key, ball
    return _mean_rows([rows[i] for i in best_ball])


def cge(x, f=0, mask=None, weights=None, *, around="zero"):
    """Comparative gradient elimination: mean of the count-f smallest norms (Gupta & Vaidya)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("cge", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    norms = _norms(x, idx, around)
    kept = sorted(idx, key=lambda j: norms[j])[: len(idx) - f]
    return _mean_rows([x[j] for j in kept])


def _aksel_all(x, f, mask, mode):
    x, mask, _ = _prepare(x, mask, None)
    if _too_few("aksel", f, mask):
        return [x[0].copy()]
    rows = [x[j] for j in _valid(mask)]
    count = len(rows)
    c = _cw_median(rows)
    s = [_sqdist(r, c) for r in rows]
    if mode == "mid":
        m = (count + 1) // 2
    elif mode == "n-f":
        m = count - f
    else:
        raise ValueError(f"mode must be 'mid' or 'n-f', got {mode!r}")
    # Distances equal up to float64 rounding count as ties (two rows are always
    # equidistant from their midpoint, the median of an inbox of two).
    return [_mean_rows([rows[i] for i in ch]) for ch in _smallest_choices(rows, s, m, 1e-9)]


def aksel(x, f=0, mask=None, weights=None, *, mode="mid"):
    """Aksel: mean of the m rows closest (squared l2) to the CW median (ByzantineMomentum, Rouault).

    m = floor((count+1)/2) for mode "mid", count-f for "n-f". With count = 2 and mode "mid"
    the two rows tie; ``candidates`` lists both results.
    """
    return _aksel_all(x, f, mask, mode)[0]


def nna(x, f=0, mask=None, weights=None):
    """Nearest-neighbour averaging around x_0 (Farhadkhani et al. ICML 2023, MoNNA)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("nna", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    order, _ = _by_distance_to_own(x, idx)
    return _mean_rows([x[j] for j in order[: len(idx) - f]])


def ios(x, f=0, mask=None, weights=None):
    """Iterative outlier scissor, weighted (Wu, Chen, Ling, IEEE TSP 2023)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("ios", f, mask):
        return x[0].copy()

    def weighted_mean(s):
        return sum(weights[j] * x[j] for j in s) / sum(weights[j] for j in s)

    s = _valid(mask)
    for _ in range(f):
        if not any(j != 0 for j in s):
            break
        mu = weighted_mean(s)
        worst = max((j for j in s if j != 0), key=lambda j: _norm(x[j] - mu))
        s.remove(worst)
    return weighted_mean(s)


def _weight_within(w, dist, idx, radius):
    """The total weight of the valid rows at distance <= radius from x_0."""
    return sum(w[j] for j in idx if dist[j] <= radius)


def clipped_gossip(x, f=0, mask=None, weights=None, *, radius=None):
    """Self-centred clipping gossip (He, Karimireddy, Jaggi 2022, ClippedGossip)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("clipped_gossip", f, mask, radius=radius):
        return x[0].copy()
    idx = _valid(mask)
    total = sum(weights[j] for j in idx)
    w = {j: weights[j] / total for j in idx}
    order, dist = _by_distance_to_own(x, idx)
    if radius is not None:
        tau = float(radius)
    else:
        delta = _byzantine_weight(w, idx, f)
        if delta == 0:
            tau = math.inf
        else:
            # nearest first; rows at the same distance (copies) are counted together
            kept = [j for j in order if _leq_rel(_weight_within(w, dist, idx, dist[j]), 1.0 - delta)]
            tau = math.sqrt(sum(w[j] * dist[j] ** 2 for j in kept) / delta)
    return x[0] + sum(w[j] * _clip_vector(x[j] - x[0], tau) for j in idx)


def cs_plus(x, f=0, mask=None, weights=None, *, step_size):
    """CS+ robust gossip step (Gaucher et al. ICML 2025, arXiv 2410.10418)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("cs_plus", f, mask):
        return x[0].copy()
    idx = _valid(mask)
    total = sum(weights[j] for j in idx)
    w = {j: weights[j] / total for j in idx}
    order, dist = _by_distance_to_own(x, idx)
    delta = _byzantine_weight(w, idx, f)
    if delta == 0:
        tau = math.inf
    else:
        tau = 0.0
        for j in order:  # rows at the same distance (copies) are counted together
            if _leq_rel(_weight_within(w, dist, idx, dist[j]), 1.0 - 2.0 * delta):
                tau = max(tau, dist[j])
    return x[0] - step_size * sum(w[j] * _clip_vector(x[0] - x[j], tau) for j in idx)


# --------------------------------------------------------------------------- #
# Pre-aggregators: return (x, mask, weights)


def nnm(x, f=0, mask=None, weights=None):
    """Nearest-neighbour mixing: each row -> mean of its count-f nearest (Allouah et al. AISTATS 2023)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("nnm", f, mask):
        return x, mask, weights
    idx = _valid(mask)
    out = x.copy()
    for i in idx:
        nearest = sorted(idx, key=lambda j: (_norm(x[j] - x[i]), j != i))[: len(idx) - f]
        out[i] = _mean_rows([x[j] for j in nearest])
    return out, mask, weights


def arc(x, f=0, mask=None, weights=None, *, around="zero"):
    """Adaptive robust clipping to the (k+1)-th largest norm, k = floor(2f(n-f)/n) (Allouah et al. 2024)."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("arc", f, mask):
        return x, mask, weights
    idx = _valid(mask)
    count = len(idx)
    k = (2 * f * (count - f)) // count
    norms = _norms(x, idx, around)
    tau = sorted(norms.values(), reverse=True)[k]
    out = x.copy()
    for j in idx:
        if norms[j] > tau:
            if around == "zero":
                out[j] = _clip_vector(x[j], tau)
            else:
                out[j] = x[0] + _clip_vector(x[j] - x[0], tau)
    return out, mask, weights


def clip(x, f=0, mask=None, weights=None, *, radius, around="zero"):
    """Static clipping of every valid row to norm <= radius (ByzFL "Clipping")."""
    x, mask, weights = _prepare(x, mask, weights)
    if _too_few("clip", f, mask):
        return x, mask, weights
    out = x.copy()
    for j in _valid(mask):
        if around == "zero":
            out[j] = _clip_vector(x[j], radius)
        elif around == "own":
            out[j] = x[0] + _clip_vector(x[j] - x[0], radius)
        else:
            raise ValueError(f"around must be 'zero' or 'own', got {around!r}")
    return out, mask, weights


# --------------------------------------------------------------------------- #
# Bucketing is random: a property checker instead of a reference.


def check_bucketing(
    x, mask, weights, size, out_x, out_mask, out_weights, rtol=1e-4, atol=1e-4
):
    """Assert that (out_x, out_mask, out_weights) is a valid bucketing of the inbox.

    Bucketing (Karimireddy, He, Jaggi ICLR 2022): row 0 is kept; the other valid rows are
    permuted and consecutive groups of ``size`` are averaged into rows
    1..ceil((count-1)/size) (the last group may be smaller); the rest is masked; a group's
    weight is the sum of its members' weights. The partition is recovered by backtracking
    over subsets, so any permutation is accepted.
    """
    x, mask, weights_in = _prepare(x, mask, weights)
    out_x = np.array(out_x, dtype=np.float64)
    out_mask = np.array(out_mask, dtype=bool)
    k = x.shape[0]
    assert out_x.shape == x.shape and out_mask.shape == (k,)

    np.testing.assert_array_equal(out_x[0], x[0], err_msg="bucketing must keep row 0")
    neighbours = [j for j in _valid(mask) if j != 0]
    groups = math.ceil(len(neighbours) / size)
    expected_mask = np.zeros(k, dtype=bool)
    expected_mask[: 1 + groups] = True
    np.testing.assert_array_equal(out_mask, expected_mask, err_msg="bucketing output mask")

    check_weights = weights is not None or out_weights is not None
    if check_weights:
        assert out_weights is not None, "weights were given but none came back"
        out_w = np.array(out_weights, dtype=np.float64)
        np.testing.assert_allclose(out_w[0], weights_in[0], rtol=rtol, err_msg="weight of row 0")
        np.testing.assert_allclose(
            out_w[out_mask].sum(), weights_in[mask].sum(), rtol=rtol, err_msg="total weight"
        )

    sizes = [size] * groups
    if groups:
        sizes[-1] = len(neighbours) - size * (groups - 1)

    def matches(g, members):
        ok = np.allclose(out_x[1 + g], _mean_rows([x[j] for j in members]), rtol=rtol, atol=atol)
        if ok and check_weights:
            ok = np.isclose(out_w[1 + g], sum(weights_in[j] for j in members), rtol=rtol)
        return ok

    def assign(g, left):
        if g == groups:
            return not left
        for members in itertools.combinations(sorted(left), sizes[g]):
            if matches(g, members) and assign(g + 1, left - set(members)):
                return True
        return False

    assert assign(0, set(neighbours)), (
        "bucketing output rows are not the means of a partition of the valid neighbour rows "
        f"into groups of sizes {sizes}"
    )


def candidates(name, x, f=0, mask=None, weights=None, **hyper):
    """Every result the definition allows when selection scores tie between different rows.

    Krum, Multi-Krum and Bulyan select by score; with k = 1 neighbour the two rows of the
    closest pair always tie, and the definitions do not say which wins. Aksel ("mid") on
    two rows keeps one of two rows equidistant from the median. For these rules this
    lists one result per tie-break (the first is what the rule function returns); every
    other rule has a single result.
    """
    if name == "krum":
        return _krum_all(x, f, mask, hyper.get("variant", "paper"))
    if name == "multi_krum":
        return _multi_krum_all(x, f, mask, hyper.get("m"), hyper.get("variant", "paper"))
    if name == "bulyan":
        return _bulyan_all(x, f, mask)
    if name == "aksel":
        return _aksel_all(x, f, mask, hyper.get("mode", "mid"))
    return [AGGREGATORS[name](x, f=f, mask=mask, weights=weights, **hyper)]


AGGREGATORS = {
    "mean": mean,
    "median": median,
    "trimmed_mean": trimmed_mean,
    "meamed": meamed,
    "phocas": phocas,
    "krum": krum,
    "multi_krum": multi_krum,
    "bulyan": bulyan,
    "geometric_median": geometric_median,
    "centered_clipping": centered_clipping,
    "mda": mda,
    "mda_greedy": mda_greedy,
    "cge": cge,
    "aksel": aksel,
    "nna": nna,
    "ios": ios,
    "clipped_gossip": clipped_gossip,
    "cs_plus": cs_plus,
}

PRE_AGGREGATORS = {"nnm": nnm, "arc": arc, "clip": clip}
