"""The public rule functions: one signature for all, documented one by one.

Common arguments (every function):
    x: f32[K, d], one node's inbox; row 0 is the node's own vector.
    f: int (or traced int32), the number of Byzantine rows the rule must tolerate.
    mask: bool[K], valid rows (default all); row 0 must be valid. Masked rows are ignored
        whatever they hold (NaN, 1e6 padding).
    weights: f32[K], mixing weights (default uniform over valid rows); only weighted rules
        use them, and they are renormalised over the valid rows.
    key: a JAX PRNG key, for randomized rules only.

Every rule checks ``count >= min_count(f)`` (count = valid rows) before compilation when
its inputs are concrete, raising ``ValueError``. Under ``jit`` an inbox that has lost rows
below that count returns the node's own vector ``x[0]`` (pre-aggregators return their
inputs). Ties are broken by value (see ``tie_key``), never by row index.
"""

from __future__ import annotations

from . import _rules


def mean(x, *, f=0, mask=None, weights=None, key=None):
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
    return _rules.Mean()(x, f=f, mask=mask, weights=weights, key=key)


def median(x, *, f=0, mask=None, weights=None, key=None):
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
    return _rules.Median()(x, f=f, mask=mask, weights=weights, key=key)


def trimmed_mean(x, *, f=0, mask=None, weights=None, key=None):
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
    return _rules.TrimmedMean()(x, f=f, mask=mask, weights=weights, key=key)


def meamed(x, *, f=0, mask=None, weights=None, key=None):
    """Mean around the median: per coordinate, average the count-f values closest to the median.

    At exactly equal distance from the median the lower value is kept first.

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
    return _rules.Meamed()(x, f=f, mask=mask, weights=weights, key=key)


def phocas(x, *, f=0, mask=None, weights=None, key=None):
    """Phocas: per coordinate, average the count-f values closest to the f-trimmed mean.

    At exactly equal distance the lower value is kept first.

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
    return _rules.Phocas()(x, f=f, mask=mask, weights=weights, key=key)


def krum(x, *, f=0, mask=None, weights=None, key=None, variant="paper"):
    """Krum: the row with the smallest sum of squared distances to its nearest neighbours.

    score(i) = sum of ||x_i - x_j||^2 over the k nearest other valid rows, with
    k = count - f - 2 (``variant="paper"``, NeurIPS 2017) or k = count - f - 1
    (``variant="byzfl"``, as ByzFL and ByzantineMomentum compute it). Returns the
    best-scored row; equal scores are broken by value (``tie_key``). Non-finite rows are
    infinitely far from every other row, so they are never chosen while honest rows remain.

    Tolerates:
        up to f non-finite rows (including rows whose squared norm overflows float32).

    Returns:
        f32[d], one of the valid rows.

    Raises:
        ValueError: count < 2f+3, or an unknown variant.

    References:
        Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine learning with adversaries:
        Byzantine tolerant gradient descent", NeurIPS 2017. Requires count >= 2f+3.
    """
    return _rules.Krum(variant=variant)(x, f=f, mask=mask, weights=weights, key=key)


def multi_krum(x, *, f=0, mask=None, weights=None, key=None, m=None, variant="paper"):
    """Multi-Krum: the average of the m best Krum-scored rows (default m = count - f).

    Scores as :func:`krum`. At run time m is capped at the valid count.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+3, m < 1, or an unknown variant.

    References:
        Blanchard et al., NeurIPS 2017; El Mhamdi et al., ICML 2018. Requires count >= 2f+3.
    """
    return _rules.MultiKrum(m=m, variant=variant)(x, f=f, mask=mask, weights=weights, key=key)


def bulyan(x, *, f=0, mask=None, weights=None, key=None):
    """Bulyan: theta = count - 2f rows chosen by repeated Krum, then a coordinate-wise
    average of the beta = theta - 2f selected values closest to their median.

    Inner Krum: with r rows remaining it scores each by its k = r - f - 2 nearest other
    remaining rows; once fewer than f + 3 rows remain (the last steps, where that formula
    gives k < 1) it uses k = 1 nearest neighbour. Scores are recomputed on the remaining
    rows at every step.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 4f+3.

    References:
        El Mhamdi, Guerraoui, Rouault, "The hidden vulnerability of distributed learning in
        Byzantium", ICML 2018. Requires count >= 4f+3.
    """
    return _rules.Bulyan()(x, f=f, mask=mask, weights=weights, key=key)


def geometric_median(x, *, f=0, mask=None, weights=None, key=None, iterations=8, smoothing=0.1, start=None):
    """Smoothed Weiszfeld approximation of the weighted geometric median.

    z <- sum_j b_j x_j / sum_j b_j with b_j = w_j / max(smoothing, ||z - x_j||), for
    ``iterations`` steps from ``start`` (default: row 0, the node's own vector). Rows whose
    norm is non-finite in float32 get b_j = 0. ``f`` only validates.

    Args:
        iterations: number of Weiszfeld steps (static); 8 as in the ClippedGossip code.
        smoothing: nu > 0, the smoothing of the distances (traced); 0.1 as in ByzFL.
            It is in the units of the vectors: starting from row 0, a data point, the
            first step weighs row 0 by w_0 / nu, so a nu far below the inbox's spread
            leaves the output stuck at row 0 (the classic Weiszfeld trap).
        start: f32[d] starting point, or None for row 0.

    Tolerates:
        any number of non-finite rows (they get weight 0) while one finite row remains.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, iterations < 1, smoothing <= 0.

    References:
        Pillutla, Kakade, Harchaoui, "Robust aggregation for federated learning" (RFA),
        2019; Minsker 2015 for the breakdown bound. Requires count >= 2f+1.
    """
    spec = _rules.GeometricMedian(iterations=iterations, smoothing=smoothing, start=start)
    return spec(x, f=f, mask=mask, weights=weights, key=key)


def centered_clipping(x, *, f=0, mask=None, weights=None, key=None, radius=1.0, iterations=1, start=None):
    """Centered clipping: v <- v + sum_j w_j clip(x_j - v, radius), from ``start`` (default row 0).

    clip(u, t) = u * min(1, t / ||u||). With v starting at row 0 the output moves at most
    ``radius * iterations`` from the node's own vector. Rows with non-finite norms count
    as zero vectors. ``f`` only validates.

    Tolerates:
        any number of non-finite rows (they count as zero vectors).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, radius <= 0, iterations < 1.

    References:
        Karimireddy, He, Jaggi, "Learning from history for Byzantine robust optimization",
        ICML 2021. Requires count >= 2f+1.
    """
    spec = _rules.CenteredClipping(radius=radius, iterations=iterations, start=start)
    return spec(x, f=f, mask=mask, weights=weights, key=key)


def mda(x, *, f=0, mask=None, weights=None, key=None):
    """Minimum-diameter averaging: the mean of the count-f rows with the smallest diameter.

    Exact search over all subsets (2^K), for inboxes of at most ``MDA_EXACT_MAX_INBOX``
    (14) rows. Equal diameters are broken by the sum of pairwise squared distances.

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or K > 14 (use :func:`mda_greedy`).

    References:
        El Mhamdi, Guerraoui, Rouault, "Distributed momentum for Byzantine-resilient
        stochastic gradient descent", ICLR 2021 (MDA); Rousseeuw 1985 (MVE). Requires
        count >= 2f+1.
    """
    return _rules.MDA()(x, f=f, mask=mask, weights=weights, key=key)


def mda_greedy(x, *, f=0, mask=None, weights=None, key=None):
    """Greedy minimum-diameter averaging for large inboxes, a 2-approximation of :func:`mda`.

    For each valid row i, take the ball B_i of the count-f rows nearest to x_i (itself
    included); return the mean of the ball with the smallest diameter. Guarantee: if S* is
    the optimal subset of diameter D*, the ball around any i in S* has radius <= D*, so the
    returned subset has diameter <= 2 D* <= 2 x (diameter of any count-f honest rows).
    Cost O(K^2 d + K^3).

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.
    """
    return _rules.MDAGreedy()(x, f=f, mask=mask, weights=weights, key=key)


def cge(x, *, f=0, mask=None, weights=None, key=None, around="zero"):
    """Comparative gradient elimination: the mean of the count-f smallest-norm rows.

    ``around="zero"`` uses ||x_j|| (the federated definition); ``around="own"`` uses
    ||x_j - x_0||, the meaningful choice when parameters are gossiped.

    Tolerates:
        up to f non-finite rows (their norm is +inf).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or an unknown ``around``.

    References:
        Gupta, Vaidya, "Byzantine fault-tolerance in peer-to-peer distributed gradient-descent",
        2021. Requires count >= 2f+1.
    """
    return _rules.CGE(around=around)(x, f=f, mask=mask, weights=weights, key=key)


def aksel(x, *, f=0, mask=None, weights=None, key=None, mode="mid"):
    """Aksel: the mean of the rows closest (squared l2) to the coordinate-wise median.

    Keeps floor((count+1)/2) rows (``mode="mid"``) or count - f rows (``mode="n-f"``).
    The median is :func:`median` (mean of the two middles for an even count).

    Tolerates:
        up to f non-finite rows (``mode='n-f'``) or fewer than half (``mode='mid'``).

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1, or an unknown mode.

    References:
        ByzantineMomentum's ``aksel`` rule (Rouault, EPFL). Requires count >= 2f+1.
    """
    return _rules.Aksel(mode=mode)(x, f=f, mask=mask, weights=weights, key=key)


def nna(x, *, f=0, mask=None, weights=None, key=None):
    """Nearest-neighbour averaging: the mean of the count-f rows closest to row 0 (itself included).

    Tolerates:
        up to f non-finite rows.

    Returns:
        f32[d].

    Raises:
        ValueError: count < 2f+1.

    References:
        Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan, "Robust collaborative learning
        with linear gradient overhead" (MoNNA), ICML 2023. Requires count >= 2f+1.
    """
    return _rules.NNA()(x, f=f, mask=mask, weights=weights, key=key)


def ios(x, *, f=0, mask=None, weights=None, key=None):
    """Iterative outlier scissor, weighted.

    S = valid rows; f times: mu = weighted mean over S, remove the row j != 0 of S farthest
    from mu. Returns the weighted mean over S.

    Equally far rows: the one with the larger ``tie_key``, then the heavier, goes first.
    On CPU (the native kernel) the means are summed in an order fixed by the rows'
    values, so an exact tie in distance is decided the same way whatever the inbox
    order; the portable code (a GPU, or no C++ compiler) sums in row order and may
    decide such a tie by float32 rounding.

    Tolerates:
        up to f non-finite rows: they are infinitely far from any centre and removed first.

    Returns:
        f32[d].

    Raises:
        ValueError: count < f+1.

    References:
        Wu, Chen, Ling, "Byzantine-resilient decentralized stochastic optimization with
        robust aggregation rules", IEEE TSP 2023. Requires count >= f+1.
    """
    return _rules.IOS()(x, f=f, mask=mask, weights=weights, key=key)


def clipped_gossip(x, *, f=0, mask=None, weights=None, key=None, radius=None):
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
    return _rules.ClippedGossip(radius=radius)(x, f=f, mask=mask, weights=weights, key=key)


def cs_plus(x, *, f=0, mask=None, weights=None, key=None, step_size=1.0):
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
    return _rules.CSPlus(step_size=step_size)(x, f=f, mask=mask, weights=weights, key=key)


def nnm(x, *, f=0, mask=None, weights=None, key=None):
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
    return _rules.NNM()(x, f=f, mask=mask, weights=weights, key=key)


def arc(x, *, f=0, mask=None, weights=None, key=None, around="zero"):
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
    return _rules.ARC(around=around)(x, f=f, mask=mask, weights=weights, key=key)


def clip(x, *, f=0, mask=None, weights=None, key=None, radius=1.0, around="zero"):
    """Static clipping (pre-aggregator): every row scaled to norm <= radius.

    ``around="own"`` clips x_j - x_0 instead. Not robust by itself.

    Tolerates:
        any number of non-finite rows (they are clipped to zero vectors).

    Returns:
        (x, mask, weights).

    Raises:
        ValueError: radius <= 0.
    """
    return _rules.Clip(radius=radius, around=around)(x, f=f, mask=mask, weights=weights, key=key)


def bucketing(x, *, f=0, mask=None, weights=None, key=None, size=2):
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
    return _rules.Bucketing(size=size)(x, f=f, mask=mask, weights=weights, key=key)
