"""Plain-numpy reference implementations of the attacks, written from the papers with
loops and ``x[mask]``; no JAX, no code shared with ``attacks``.

Every function takes one receiver's view: ``inbox: [K, d]``, ``byz: bool[K]`` (Byzantine
slots), ``mask: bool[K]`` (valid slots) and, where used, ``weights: [K]``; row 0 is the
receiver's own vector. "Honest rows" H are the valid non-Byzantine rows, row 0 included.
Computations are in float64.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import networkx as nx
import numpy as np


def split(inbox, byz, mask):
    """(honest rows [n_h, d], n valid rows, f valid Byzantine rows)."""
    inbox = np.asarray(inbox, dtype=np.float64)
    valid = np.asarray(mask, dtype=bool).copy()
    valid[0] = True
    byzantine = np.asarray(byz, dtype=bool) & valid
    byzantine[0] = False
    honest = [inbox[k] for k in range(len(inbox)) if valid[k] and not byzantine[k]]
    return np.array(honest), int(valid.sum()), int(byzantine.sum())


def mean_std(rows):
    """Coordinate-wise mean and standard deviation with ddof=1 (0 for a single row)."""
    mean = rows.mean(axis=0)
    std = rows.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(rows.shape[1])
    return mean, std


# --------------------------------------------------------------------------- simple


def sign_flip(honest, scale=1.0):
    return -scale * honest.mean(axis=0)


def ipm(honest, epsilon=0.1, own=None):
    """Xie et al. 2019: -epsilon times the honest mean; from ``own`` instead of 0 when given
    (CS+'s sparse_empire: the attacked node's parameters plus a multiple of the mean)."""
    start = 0.0 if own is None else np.asarray(own, dtype=np.float64)
    return start - epsilon * honest.mean(axis=0)


def flip_labels(y, num_classes):
    return np.array([num_classes - 1 - int(label) for label in np.ravel(y)]).reshape(np.shape(y))


# --------------------------------------------------------------------------- ALIE


def alie_z(n, f, quantile="paper"):
    """Baruch et al. 2019, Algorithm 1: s = floor(n/2 + 1) - f; z = max{z: Phi(z) < p}.

    p = (n - s)/n (the paper), or (n - f - s)/(n - f) (the ClippedGossip code).
    """
    s = math.floor(n / 2 + 1) - f
    p = (n - s) / n if quantile == "paper" else (n - f - s) / (n - f)
    p = min(max(p, 2.0**-20), 1 - 2.0**-20)  # the documented clip (a Byzantine majority gives p >= 1)
    return NormalDist().inv_cdf(p)


def alie(honest, n, f, quantile="paper", z=None, sign=1.0, own=None):
    """Baruch et al.: mu + sign z sigma; from ``own`` instead of mu when given (CS+'s
    sparse_little: the attacked node's parameters plus a multiple of sigma). n and f are
    the counts of the quantile: the receiver's, or the population's (ClippedGossip)."""
    mean, std = mean_std(honest)
    if z is None:
        z = alie_z(n, f, quantile)
    start = mean if own is None else np.asarray(own, dtype=np.float64)
    return start + sign * z * std


# --------------------------------------------------------------------------- hidden vulnerability


def hidden_vulnerability(honest, gamma, coordinates=1, first=0):
    """El Mhamdi et al. 2018: the honest mean moved by gamma on a few coordinates."""
    out = honest.mean(axis=0).copy()
    d = out.size
    chosen = range(d) if coordinates == "all" else [(first + i) % d for i in range(coordinates)]
    for j in chosen:
        out[j] += gamma
    return out


# --------------------------------------------------------------------------- Shejwalkar & Houmansadr


def perturbation(honest, kind):
    mean, std = mean_std(honest)
    if kind == "unit_mean":
        return -mean / np.linalg.norm(mean)
    if kind == "sign":
        return -np.sign(mean)
    return -std


def _halving_search(ok, gamma_init=10.0, threshold=1e-7):
    """The authors' search (NDSS'21 code): step from gamma_init, halving, keep the last success."""
    gamma, step, success = gamma_init, gamma_init, 0.0
    while abs(success - gamma) > threshold:
        if ok(gamma):
            success = gamma
            gamma = gamma + step / 2
        else:
            gamma = gamma - step / 2
        step = step / 2
    return success


def min_max(honest, kind="std", gamma_init=10.0):
    """m = mu + gamma p, the largest gamma with max_i ||m - x_i|| <= max_ij ||x_i - x_j||."""
    mean = honest.mean(axis=0)
    p = perturbation(honest, kind)
    bound = max(np.linalg.norm(a - b) for a in honest for b in honest)

    def ok(gamma):
        m = mean + gamma * p
        return max(np.linalg.norm(m - x) for x in honest) <= bound

    return mean + _halving_search(ok, gamma_init) * p


def min_sum(honest, kind="std", bound="max", gamma_init=10.0):
    """m = mu + gamma p, the largest gamma with sum_i ||m - x_i||^2 <= max_i (min_i) sum_j ||x_i - x_j||^2."""
    mean = honest.mean(axis=0)
    p = perturbation(honest, kind)
    sums = [sum(np.linalg.norm(a - b) ** 2 for b in honest) for a in honest]
    limit = max(sums) if bound == "max" else min(sums)

    def ok(gamma):
        m = mean + gamma * p
        return sum(np.linalg.norm(m - x) ** 2 for x in honest) <= limit

    return mean + _halving_search(ok, gamma_init) * p


# --------------------------------------------------------------------------- Fang et al.


def fang_reference(honest, own, kind):
    """(reference point r, direction s) as documented for fang_trim / fang_krum."""
    mean = honest.mean(axis=0)
    origin = np.zeros_like(own) if kind == "zero" else own
    r = {"own": own, "mean": mean, "zero": np.zeros_like(own)}[kind]
    s = np.where(mean - origin > 0, 1.0, -1.0)
    return r, s


def fang_trim_intervals(honest, own, reference="own", b=2.0):
    """Fang et al. 2020, full-knowledge trim attack: per coordinate, the interval the
    malicious value is drawn from (uniformly)."""
    r, s = fang_reference(honest, own, reference)
    low, high = np.zeros_like(own), np.zeros_like(own)
    for j in range(own.size):
        u_max = max(x[j] for x in honest) - r[j]
        u_min = min(x[j] for x in honest) - r[j]
        if s[j] > 0:  # the parameter increases: push below the minimum
            a, c = (u_min / b, u_min) if u_min > 0 else (b * u_min, u_min)
        else:  # it decreases: push above the maximum
            a, c = (u_max, b * u_max) if u_max > 0 else (u_max, u_max / b)
        low[j], high[j] = r[j] + a, r[j] + c
    return low, high


def krum_index(rows, f):
    """Blanchard et al. 2017: argmin of the sum of squared distances to the n - f - 2 closest others."""
    n = len(rows)
    k = max(n - f - 2, 1)
    scores = []
    for i in range(n):
        distances = sorted(np.sum((rows[i] - rows[j]) ** 2) for j in range(n) if j != i)
        scores.append(sum(distances[:k]))
    return int(np.argmin(scores))


def fang_krum(inbox, byz, mask, reference="mean", halvings=20, population=None):
    """Fang et al. 2020, full-knowledge Krum attack (colluding copies); returns the full inbox.

    ``population``: the honest vectors whose mean gives r and s (scope="global"); by default
    the receiver's honest rows.
    """
    inbox = np.asarray(inbox, dtype=np.float64)
    honest, n, f = split(inbox, byz, mask)
    d = inbox.shape[1]
    r, s = fang_reference(honest if population is None else population, inbox[0], reference)
    m = len(honest)
    sums = []
    for i in range(m):
        distances = sorted(np.linalg.norm(honest[i] - honest[j]) for j in range(m) if j != i)
        sums.append(sum(distances[: max(n - f - 2, 0)]))
    lam = min(sums) / (max(n - 2 * f - 1, 1) * math.sqrt(d)) + max(np.linalg.norm(x - r) for x in honest) / math.sqrt(d)
    valid = np.asarray(mask, bool).copy()
    valid[0] = True
    byzantine = np.asarray(byz, bool) & valid
    for _ in range(halvings):
        attacked = inbox.copy()
        attacked[byzantine] = r - lam * s
        rows = attacked[valid]
        if byzantine[valid][krum_index(rows, f)]:
            return attacked
        lam *= 0.5
    return inbox


# --------------------------------------------------------------------------- graph-aware


def dissensus(inbox, byz, mask, weights, epsilon=1.0):
    """He et al. 2022: x_0 - eps * sum_{j honest} W_j (x_j - x_0) / sum_{k byz} W_k."""
    inbox = np.asarray(inbox, dtype=np.float64)
    pull, byzantine_weight = np.zeros(inbox.shape[1]), 0.0
    for k in range(len(inbox)):
        if not (mask[k] or k == 0):
            continue
        if byz[k] and k != 0:
            byzantine_weight += weights[k]
        else:
            pull += weights[k] * (inbox[k] - inbox[0])
    return inbox[0] - epsilon * pull / byzantine_weight


def isolation(inbox, byz, mask, weights, target="own"):
    """m such that sum_j W_j x_j / sum_j W_j = T over the valid slots."""
    inbox = np.asarray(inbox, dtype=np.float64)
    goal = inbox[0] if target == "own" else np.zeros(inbox.shape[1])
    total, honest_sum, byzantine_weight = 0.0, np.zeros(inbox.shape[1]), 0.0
    for k in range(len(inbox)):
        if not (mask[k] or k == 0):
            continue
        total += weights[k]
        if byz[k] and k != 0:
            byzantine_weight += weights[k]
        else:
            honest_sum += weights[k] * inbox[k]
    return (goal * total - honest_sum) / byzantine_weight


def fiedler(n, edges, honest):
    """Fiedler vector of the honest subgraph (networkx Laplacian, numpy eigh), unit norm,
    sign fixed so its largest-magnitude entry is positive; 0 on Byzantine nodes."""
    graph = nx.Graph()
    nodes = [i for i in range(n) if honest[i]]
    graph.add_nodes_from(nodes)
    graph.add_edges_from((u, v) for u, v in edges if honest[u] and honest[v] and u != v)
    laplacian = nx.laplacian_matrix(graph, nodelist=nodes).toarray().astype(float)
    vector = np.linalg.eigh(laplacian)[1][:, 1]
    if vector[np.argmax(np.abs(vector))] < 0:
        vector = -vector
    out = np.zeros(n)
    out[nodes] = vector
    return out


def spectral(own, fiedler_vector, node, params, honest, scale=1.0):
    """Gaucher et al. 2025: x_i + scale * v[i] * sum_{j honest} v[j] x_j."""
    direction = sum(fiedler_vector[j] * params[j] for j in range(len(params)) if honest[j])
    return own + scale * fiedler_vector[node] * direction


def mimic_heuristic(rounds_params, honest, z0, warmup):
    """Karimireddy et al. 2022 (their code's MimicVariantAttacker): the mimicked node per round."""
    t, mu, z, target, targets = 0, None, None, None, []
    for params in rounds_params:
        good = [params[i] for i in range(len(params)) if honest[i]]
        ranks = [i for i in range(len(params)) if honest[i]]
        avg = sum(good) / len(good)
        if t == 0:
            mu = avg
            cumu = sum(np.dot(g - mu, z0) * (g - mu) for g in good)
            z = cumu / np.linalg.norm(cumu)
        elif t < warmup:
            mu = t / (1 + t) * mu + avg / (1 + t)
            cumu = sum(np.dot(g - mu, z) * (g - mu) for g in good)
            z = t / (1 + t) * z + cumu / np.linalg.norm(cumu) / (1 + t)
            z = z / np.linalg.norm(z)
        if t < warmup:
            best = max(range(len(good)), key=lambda i: np.dot(good[i], z))
            target = ranks[best]
        targets.append(target)
        t += 1
    return targets


# --------------------------------------------------------------------------- rules for the optimal-mode tests


def trimmed_mean(rows, f):
    """Coordinate-wise: drop the f largest and f smallest values, average the rest."""
    ordered = np.sort(np.asarray(rows, dtype=np.float64), axis=0)
    return ordered[f : len(rows) - f].mean(axis=0)


def median(rows):
    return np.median(np.asarray(rows, dtype=np.float64), axis=0)
