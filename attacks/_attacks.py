"""The attacks, one spec each, and the :data:`ATTACKS` registry.

Each spec's ``message(key, view, ctx)`` returns the Byzantine vector for one receiver;
:class:`~attacks._base.Attack` writes it into the valid Byzantine slots only. Notation in
the docstrings: H = the honest rows used for statistics (the receiver's valid honest rows,
its own x_0 included, or every honest node with ``scope="global"``), mu and sigma their
coordinate-wise mean and standard deviation (ddof=1), n the receiver's valid rows, f its
valid Byzantine rows, W its mixing weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._math import (
    alie_z,
    best_scale,
    fiedler_vector,
    honest_stats,
    krum_selects_byzantine,
    local_stats,
    pairwise_sq_distances,
    population_stats,
    with_rows,
)
from ._base import ATTACKS, Attack, attack_spec, parameter

_SCOPES = ("local", "global")


def _scope(default="local"):
    return parameter(default, static=True, choices=_SCOPES)


def _draw(spec, key, view, sample):
    """One draw ``sample(key) -> f32[d]`` shared by all rows (collusion), or one per row."""
    if spec.collusion:
        return sample(key)
    return jax.vmap(sample)(jax.random.split(key, view.size))


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Scaled(Attack):
    """Base of attacks with an optimal mode: m = base + t * direction, t fixed or searched.

    With ``optimal=True`` the scale t maximises ||ctx.rule(attacked inbox) - honest mean||
    over [search_min, search_max]: one vmap over ``grid`` evenly spaced candidates, then
    one over ``refine`` candidates spanning the best one's neighbours (memory:
    max(grid, refine) x K x d floats per receiver, see ``best_scale``).
    """

    optimal: bool = parameter(False, static=True, choices=(True, False))
    search_min: Any = parameter(0.0)
    search_max: Any = parameter(10.0)
    grid: int = parameter(32, static=True, minimum=2)
    refine: int = parameter(16, static=True, minimum=2)

    def _scaled(self, view, ctx, target, base, direction, fixed):
        if not self.optimal:
            return base + fixed * direction
        t = best_scale(
            view, ctx, base, direction, target, self.search_min, self.search_max, self.grid, self.refine,
            name=self.name, default=fixed,
        )
        return base + t * direction


# =========================================================================== simple attacks


@attack_spec
class NoAttack(Attack):
    """No attack: Byzantine nodes send their honest vector."""

    name: ClassVar[str] = "none"

    def message(self, key, view, ctx):
        del key, ctx
        return view.inbox


@attack_spec
class Gaussian(Attack):
    """Gaussian noise: m = c + sigma * N(0, I_d), c = mu (``center="honest_mean"``) or 0.

    Args:
      sigma: noise standard deviation (traced).
      center: "honest_mean" (default) or "zero" (pure noise, as in ByzFL).
      scope: "local" (receiver's honest rows) or "global" (all honest nodes).

    References:
      Blanchard et al., "Machine learning with adversaries: Byzantine tolerant gradient
      descent", NeurIPS 2017 (Gaussian Byzantine workers).
    """

    sigma: Any = parameter(1.0, minimum=0.0)
    center: str = parameter("honest_mean", static=True, choices=("honest_mean", "zero"))
    scope: str = _scope()
    name: ClassVar[str] = "gaussian"
    randomized: ClassVar[bool] = True

    def message(self, key, view, ctx):
        d = view.dim
        noise = _draw(self, key, view, lambda k: jax.random.normal(k, (d,), jnp.float32))
        if self.center == "zero":
            return self.sigma * noise
        mean = honest_stats(self, view, ctx)["mean"]
        return jnp.broadcast_to(mean, noise.shape) + self.sigma * noise


@attack_spec
class SignFlip(_Scaled):
    """Sign flipping: m = -s * mu.

    Args:
      scale: s (traced, default 1). optimal: search s against ``ctx.rule`` instead.
      scope: "local" or "global".

    References:
      Allen-Zhu et al., "Byzantine-resilient non-convex stochastic gradient descent", ICLR
      2021 (ByzFL's SignFlipping); Li et al., "RSA", AAAI 2019.
    """

    scale: Any = parameter(1.0)
    scope: str = _scope()
    name: ClassVar[str] = "sign_flip"

    def message(self, key, view, ctx):
        del key
        mean = honest_stats(self, view, ctx)["mean"]
        return self._scaled(view, ctx, mean, jnp.zeros_like(mean), -mean, self.scale)


@attack_spec
class IPM(_Scaled):
    """Inner product manipulation: m = c - epsilon * mu.

    c = 0 (``center="zero"``, default: Xie et al., ClippedGossip's ``IPMAttack``, ByzFL) or
    the receiver's own vector x_0 (``center="own"``: CS+'s ``sparse_empire`` sends
    x_i + t * mu with t >= 0 line-searched and mu over every honest node, i.e.
    ``center="own", scope="global", optimal=True`` with a search range of epsilon <= 0).

    Args:
      epsilon: traced, default 0.1 (ClippedGossip's value; ByzFL's default tau is 2).
      center: static, "zero" or "own".
      optimal: search epsilon against ``ctx.rule``. scope: "local" or "global".

    References:
      Xie, Koyejo, Gupta, "Fall of empires: breaking Byzantine-tolerant SGD by inner
      product manipulation", UAI 2019.
    """

    epsilon: Any = parameter(0.1)
    center: str = parameter("zero", static=True, choices=("zero", "own"))
    scope: str = _scope()
    name: ClassVar[str] = "ipm"

    def message(self, key, view, ctx):
        del key
        mean = honest_stats(self, view, ctx)["mean"]
        base = jnp.zeros_like(mean) if self.center == "zero" else view.own
        return self._scaled(view, ctx, mean, base, -mean, self.epsilon)


@attack_spec
class Zero(Attack):
    """Zero vector: m = 0."""

    name: ClassVar[str] = "zero"

    def message(self, key, view, ctx):
        del key, ctx
        return jnp.zeros((view.dim,), view.inbox.dtype)


@attack_spec
class Crash(Attack):
    """Crash / silence: the Byzantine slots are masked out (the message never arrives)."""

    name: ClassVar[str] = "crash"

    def rewrite(self, key, view, ctx):
        del key, ctx
        return view.inbox, ~view.byzantine


@attack_spec
class Large(Attack):
    """Huge or non-finite values: m = value * 1 (every coordinate).

    Args:
      value: traced float, default 1e30; also accepts "inf", "-inf", "nan" (or the floats).
    """

    value: Any = parameter(1e30)
    name: ClassVar[str] = "large"
    finite: ClassVar[bool] = False

    def __post_init__(self):
        if isinstance(self.value, str):
            try:
                object.__setattr__(self, "value", float(self.value))
            except ValueError:
                raise ValueError(f"large: value={self.value!r} is not a number (use 1e30, 'inf', '-inf' or 'nan').") from None
        super().__post_init__()

    def message(self, key, view, ctx):
        del key, ctx
        return jnp.full((view.dim,), self.value, view.inbox.dtype)


@attack_spec
class SampleDuplicate(Attack):
    """Sample duplicate: copy a random honest neighbour's message (uniform over the valid
    honest rows other than the receiver's own; its own when it has no other).

    With ``collusion=False`` each Byzantine row copies its own draw.

    References:
      Wu, Chen, Ling, "Byzantine-resilient decentralized stochastic optimization with
      robust aggregation rules" (IOS), IEEE TSP 2023 (ByrdLab's sample-duplicating attack).
    """

    name: ClassVar[str] = "sample_duplicate"
    randomized: ClassVar[bool] = True

    def message(self, key, view, ctx):
        del ctx
        others = view.honest & (jnp.arange(view.size) > 0)
        pool = jnp.where(jnp.any(others), others, view.honest)
        probabilities = pool.astype(jnp.float32) / jnp.sum(pool)
        index = _draw(self, key, view, lambda k: jax.random.choice(k, view.size, p=probabilities))
        return view.clean[index]


@attack_spec
class LabelFlip(Attack):
    """Label flipping (data poisoning): Byzantine nodes train honestly on labels y -> C - 1 - y.

    The message is the honest one (this spec leaves the inbox unchanged); the engine
    trains the Byzantine nodes on :meth:`poison` of their data (labels through
    :meth:`flip_labels`, inputs as they are).

    References:
      He, Karimireddy, Jaggi, "Byzantine-robust decentralized learning via ClippedGossip",
      2022 (y -> 9 - y on MNIST); Allouah et al. (ByzFL).
    """

    name: ClassVar[str] = "label_flip"
    poisons: ClassVar[frozenset[str]] = frozenset({"labels"})

    @staticmethod
    def flip_labels(y, num_classes: int):
        """y -> num_classes - 1 - y (int labels, any shape)."""
        return num_classes - 1 - y

    def poison(self, x, y, num_classes: int):
        """``(x, num_classes - 1 - y)``: the inputs as they are, the labels flipped."""
        return x, self.flip_labels(y, num_classes)

    def message(self, key, view, ctx):
        del key, ctx
        return view.inbox


# =========================================================================== statistical attacks


@attack_spec
class ALIE(_Scaled):
    """A little is enough: m = c + sign * z * sigma, coordinate-wise (sigma with ddof=1).

    c is mu (``center="honest_mean"``, default: Baruch et al., ClippedGossip, ByzFL) or the
    receiver's own vector x_0 (``center="own"``: CS+'s ``sparse_little``, which starts from
    the attacked node's parameters and uses the standard deviation of every honest node,
    i.e. ``center="own", scope="global", optimal=True``).

    z (``quantile``), with s = floor(n/2 + 1) - f supporters:
      "paper" (default): Baruch et al.'s Algorithm 1, z = max{z : Phi(z) < (n - s)/n}
        = Phi^{-1}((n - s)/n);
      "clipped_gossip": z = Phi^{-1}((n - f - s)/(n - f)), the form of the ClippedGossip
        code (and Blades), which counts only the honest rows;
      "fixed": the given ``z`` (ByzFL's tau = 1.5; ClippedGossip's experiments run "ALIE10",
        z = 10).
    n and f (``counts``): "inbox" (default), the receiver's valid rows and valid Byzantine
    rows; "global", the population's nodes and Byzantine nodes (ClippedGossip's
    ``ALittleIsEnoughAttack(n=args.n, m=args.f)``: one z for every receiver, read from the
    graph at ``init``). The quantile's argument is clipped to [2^-20, 1 - 2^-20]
    (|z| <= 4.76; a Byzantine majority, s <= 0, would give z = +inf, NaN in ClippedGossip).

    Args:
      quantile, z: see above (``z`` only with ``quantile="fixed"``).
      counts: static, "inbox" or "global" (not with ``quantile="fixed"``).
      center: static, "honest_mean" or "own".
      sign: +1 (the paper, ByzFL, CS+: c + z sigma) or -1 (ClippedGossip, BM: mu - z sigma); traced.
      optimal: search z in [search_min, search_max] against ``ctx.rule``.
      scope: "local" or "global": whose mu and sigma (n and f follow ``counts``).

    References:
      Baruch, Baruch, Goldberg, "A little is enough: circumventing defenses for
      distributed learning", NeurIPS 2019.
    """

    quantile: str = parameter("paper", static=True, choices=("paper", "clipped_gossip", "fixed"))
    z: Any = parameter(None, optional=True)
    counts: str = parameter("inbox", static=True, choices=("inbox", "global"))
    center: str = parameter("honest_mean", static=True, choices=("honest_mean", "own"))
    sign: Any = parameter(1.0)
    scope: str = _scope()
    name: ClassVar[str] = "alie"

    def __post_init__(self):
        super().__post_init__()
        if self.quantile == "fixed" and self.z is None:
            raise ValueError("alie: quantile='fixed' needs z (e.g. z=1.5).")
        if self.quantile != "fixed" and self.z is not None:
            raise ValueError(f"alie: z={self.z!r} is used only with quantile='fixed' (quantile={self.quantile!r} computes z).")
        if self.quantile == "fixed" and self.counts == "global":
            raise ValueError("alie: counts='global' sets the n and f of the quantile; with quantile='fixed' there is none (drop counts).")

    def init(self, network, dim):
        state = super().init(network, dim)
        if self.counts == "global":
            if network is None:
                raise ValueError("alie with counts='global' needs the population: pass attacks.Graph(honest=...) to init.")
            state["counts"] = jnp.asarray([network.n, network.n - int(network.honest.sum())], jnp.int32)
        return state

    def prepare(self, key, honest_params, network, state):
        extra, state = super().prepare(key, honest_params, network, state)
        if self.counts == "global":
            extra = dict(extra, counts=state["counts"])
        return extra, state

    def message(self, key, view, ctx):
        del key
        stats = honest_stats(self, view, ctx)
        if self.quantile == "fixed":
            z = jnp.asarray(self.z, jnp.float32)
        elif self.counts == "global":
            if "counts" not in ctx.extra:
                raise ValueError("alie with counts='global' needs ctx.extra['counts'] from its prepare(); run init/prepare each round.")
            z = alie_z(ctx.extra["counts"][0], ctx.extra["counts"][1], self.quantile)
        else:
            z = alie_z(view.count, view.byzantine_count, self.quantile)
        base = stats["mean"] if self.center == "honest_mean" else view.own
        return self._scaled(view, ctx, stats["mean"], base, self.sign * stats["std"], z)


@attack_spec
class HiddenVulnerability(_Scaled):
    """Hidden vulnerability: m = mu + gamma * e, e the indicator of a few coordinates.

    e covers ``coordinates`` consecutive coordinates from ``first`` (wrapping), or all
    of them (``coordinates="all"``). l2-based rules (Krum, geometric median) tolerate an
    O(sqrt(d)) deviation on single coordinates.

    Args:
      gamma: traced, absolute units. coordinates: static int >= 1 or "all". first: traced.
      optimal: line-search gamma against ``ctx.rule``. scope: "local" or "global".

    References:
      El Mhamdi, Guerraoui, Rouault, "The hidden vulnerability of distributed learning in
      Byzantium", ICML 2018.
    """

    gamma: Any = parameter(1.0)
    coordinates: Any = parameter(1, static=True)
    first: Any = parameter(0, minimum=0)
    scope: str = _scope()
    name: ClassVar[str] = "hidden_vulnerability"

    def __post_init__(self):
        super().__post_init__()
        if self.coordinates != "all" and not (isinstance(self.coordinates, int) and self.coordinates >= 1):
            raise ValueError(f"hidden_vulnerability: coordinates must be an int >= 1 or 'all', got {self.coordinates!r}.")

    def direction(self, dim):
        """e: f32[d]."""
        if self.coordinates == "all":
            return jnp.ones((dim,), jnp.float32)
        offset = jnp.mod(jnp.arange(dim) - jnp.asarray(self.first, jnp.int32), dim)
        return (offset < self.coordinates).astype(jnp.float32)

    def message(self, key, view, ctx):
        del key
        mean = honest_stats(self, view, ctx)["mean"]
        return self._scaled(view, ctx, mean, mean, self.direction(view.dim), self.gamma)


# =========================================================================== Shejwalkar & Houmansadr


def _perturbation(kind, stats):
    mean = stats["mean"]
    if kind == "unit_mean":
        norm = jnp.sqrt(jnp.sum(mean * mean))
        return -jnp.where(norm > 0, mean / jnp.where(norm > 0, norm, 1.0), 0.0)
    if kind == "sign":
        return -jnp.sign(mean)
    return -stats["std"]


def _min_max_gamma(rows, valid, mean, p):
    """Largest gamma >= 0 with max_i ||mean + gamma p - x_i|| <= max_{i,j} ||x_i - x_j|| (i, j valid).

    Each constraint is a convex quadratic in gamma, satisfied at gamma = 0 (mean is in the
    rows' convex hull), so the answer is the smallest positive root, in closed form.
    """
    delta = jnp.where(valid[:, None], mean[None, :] - rows, 0.0)  # invalid rows (NaN, padding) never enter
    distances = jnp.where(valid[:, None] & valid[None, :], pairwise_sq_distances(delta), 0.0)
    bound = jnp.max(distances)
    a = jnp.sum(p * p)
    b = delta @ p
    c = jnp.sum(delta * delta, axis=1) - bound
    safe_a = jnp.where(a > 0, a, 1.0)
    roots = (-b + jnp.sqrt(jnp.maximum(b * b - a * c, 0.0))) / safe_a
    gamma = jnp.min(jnp.where(valid, roots, jnp.inf))
    return jnp.where(a > 0, jnp.maximum(gamma, 0.0), 0.0)


def _min_sum_gamma(rows, valid, mean, p, bound_kind):
    """Largest gamma >= 0 with sum_i ||mean + gamma p - x_i||^2 <= max_i (or min_i) sum_j ||x_i - x_j||^2."""
    valid_f = valid.astype(rows.dtype)
    delta = jnp.where(valid[:, None], mean[None, :] - rows, 0.0)  # invalid rows (NaN, padding) never enter
    distances = pairwise_sq_distances(delta) * valid_f[:, None] * valid_f[None, :]
    sums = jnp.sum(distances, axis=1)
    if bound_kind == "max":
        bound = jnp.max(jnp.where(valid, sums, -jnp.inf))
    else:
        bound = jnp.min(jnp.where(valid, sums, jnp.inf))
    count = jnp.sum(valid_f)
    a = count * jnp.sum(p * p)
    b = jnp.sum(delta @ p)
    c = jnp.sum(delta * delta) - bound
    safe_a = jnp.where(a > 0, a, 1.0)
    gamma = (-b + jnp.sqrt(jnp.maximum(b * b - a * c, 0.0))) / safe_a
    return jnp.where(a > 0, jnp.maximum(gamma, 0.0), 0.0)


class _Shejwalkar(Attack):
    """Shared by min_max and min_sum: m = mu + gamma * p, gamma from a distance constraint."""

    def _gamma(self, rows, valid, stats, p):
        raise NotImplementedError

    def prepare(self, key, honest_params, network, state):
        extra, state = super().prepare(key, honest_params, network, state)
        if self.scope == "global":
            params = jnp.asarray(honest_params, jnp.float32)
            p = _perturbation(self.perturbation, extra)
            extra = dict(extra, gamma=self._gamma(params, state["honest"], extra, p))
        return extra, state

    def _message(self, view, ctx):
        stats = honest_stats(self, view, ctx)
        p = _perturbation(self.perturbation, stats)
        if self.scope == "global":
            gamma = ctx.extra["gamma"]
        else:
            gamma = self._gamma(view.clean, view.honest, stats, p)
        return stats, p, gamma


@attack_spec
class MinMax(_Shejwalkar, _Scaled):
    """Min-max: m = mu + gamma p, the largest gamma with
    max_{i in H} ||m - x_i|| <= max_{i, j in H} ||x_i - x_j||.

    p = -mu/||mu|| ("unit_mean"), -sign(mu) ("sign") or -sigma ("std", default). gamma is
    the exact solution (smallest positive root of the per-row quadratics), the limit of
    the paper's halving search (which also caps gamma at twice its initial value).

    Args:
      perturbation: "std" (default), "unit_mean" or "sign".
      optimal: instead pick gamma in [search_min, search_max] maximising the distance of
        ``ctx.rule``'s output to mu (the paper's AGR-tailored attack).
      scope: "local" or "global".

    References:
      Shejwalkar, Houmansadr, "Manipulating the Byzantine: optimizing model poisoning
      attacks and defenses for federated learning", NDSS 2021.
    """

    perturbation: str = parameter("std", static=True, choices=("std", "unit_mean", "sign"))
    scope: str = _scope()
    name: ClassVar[str] = "min_max"

    def _gamma(self, rows, valid, stats, p):
        return _min_max_gamma(rows, valid, stats["mean"], p)

    def message(self, key, view, ctx):
        del key
        if self.optimal:
            stats = honest_stats(self, view, ctx)
            p = _perturbation(self.perturbation, stats)
            return self._scaled(view, ctx, stats["mean"], stats["mean"], p, 0.0)
        stats, p, gamma = self._message(view, ctx)
        return stats["mean"] + gamma * p


@attack_spec
class MinSum(_Shejwalkar):
    """Min-sum: m = mu + gamma p, the largest gamma with
    sum_{i in H} ||m - x_i||^2 <= max_{i in H} sum_{j in H} ||x_i - x_j||^2.

    The constraint is one quadratic in gamma, solved exactly.

    Args:
      perturbation: "std" (default), "unit_mean" or "sign" (as in min_max).
      bound: "max" (default, the paper's formula) or "min" (the authors' released code,
        which bounds by the smallest honest sum: a stealthier, smaller gamma).
      scope: "local" or "global".

    References:
      Shejwalkar, Houmansadr, NDSS 2021.
    """

    perturbation: str = parameter("std", static=True, choices=("std", "unit_mean", "sign"))
    bound: str = parameter("max", static=True, choices=("max", "min"))
    scope: str = _scope()
    name: ClassVar[str] = "min_sum"

    def _gamma(self, rows, valid, stats, p):
        return _min_sum_gamma(rows, valid, stats["mean"], p, self.bound)

    def message(self, key, view, ctx):
        del key
        stats, p, gamma = self._message(view, ctx)
        return stats["mean"] + gamma * p


# =========================================================================== Fang et al.


_REFERENCES = ("own", "mean", "zero")


def _reference(kind, view, mean):
    """Fang et al.'s reference point r and estimated change direction s (+1 / -1 per coordinate).

    "own": r = x_0, s = sign(mu - x_0) (gossip of models: where the honest pull moves the
    receiver); "mean": r = mu, same s; "zero": r = 0, s = sign(mu) (the messages are
    updates or gradients, the paper's federated setting).
    """
    zero = jnp.zeros((view.dim,), view.inbox.dtype)
    origin = zero if kind == "zero" else view.own
    r = {"own": view.own, "mean": mean, "zero": zero}[kind]
    return r, jnp.where(mean - origin > 0, 1.0, -1.0)


@attack_spec
class FangTrim(Attack):
    """Fang et al.'s full-knowledge attack on trimmed mean and median.

    In update coordinates u = x - r (r the reference point), s_j the estimated direction
    of change of coordinate j (+1 if the honest mean increases it, else -1) and
    u_max, u_min the honest coordinate-wise extremes: where s_j = +1 the message is drawn
    uniformly in [u_min/b, u_min] (u_min > 0) or [b u_min, u_min] (u_min <= 0); where
    s_j = -1 in [u_max, b u_max] (u_max > 0) or [u_max, u_max/b] (u_max <= 0); m = r + u.

    Args:
      factor: b > 1 (traced, default 2 as in the paper).
      reference: "own" (default; gossip of models: r = x_0, the receiver's model plays the
        paper's pre-round global model, s = sign(mu - x_0)), "mean" (r = mu, same s) or
        "zero" (r = 0, s = sign(mu): the messages are updates or gradients, as in the
        paper's federated setting).
      scope: "local" or "global". With collusion=False (the paper) each Byzantine row
        draws its own values.

    References:
      Fang, Cao, Jia, Gong, "Local model poisoning attacks to Byzantine-robust federated
      learning", USENIX Security 2020 (Section 4, full knowledge).
    """

    factor: Any = parameter(2.0, minimum=1.0)
    reference: str = parameter("own", static=True, choices=_REFERENCES)
    scope: str = _scope()
    name: ClassVar[str] = "fang_trim"
    randomized: ClassVar[bool] = True

    def message(self, key, view, ctx):
        stats = honest_stats(self, view, ctx)
        ref, s = _reference(self.reference, view, stats["mean"])
        b = jnp.asarray(self.factor, jnp.float32)
        increasing = s > 0
        low_u, high_u = stats["min"] - ref, stats["max"] - ref
        below = (jnp.where(low_u > 0, low_u / b, b * low_u), low_u)
        above = (high_u, jnp.where(high_u > 0, b * high_u, high_u / b))
        start = jnp.where(increasing, below[0], above[0])
        end = jnp.where(increasing, below[1], above[1])
        d = view.dim
        uniform = _draw(self, key, view, lambda k: jax.random.uniform(k, (d,), jnp.float32))
        ref, start, end = (jnp.broadcast_to(a, uniform.shape) for a in (ref, start, end))
        return ref + start + uniform * (end - start)


@attack_spec
class FangKrum(Attack):
    """Fang et al.'s full-knowledge attack on Krum: m = r - lambda * s.

    r the reference point, s the estimated direction of change (+1 / -1), lambda the
    largest of lambda_max * 2^-t, t = 0..halvings-1, for which Krum (f = the receiver's
    Byzantine count) selects a Byzantine row, with
      lambda_max = min_{i in H} sum_{l in N_i} ||x_l - x_i|| / ((n - 2f - 1) sqrt(d))
                   + max_{i in H} ||x_i - r|| / sqrt(d),
    N_i the n - f - 2 honest rows closest to x_i. All candidates are evaluated in one
    vmap. If none succeeds the Byzantine rows keep their honest vectors (as the authors'
    code does). With collusion=False rows 2..f add U(-epsilon, epsilon) noise per
    coordinate (the paper's "close to" copies).

    Args:
      reference: "mean" (default): r = mu, s = sign(mu - x_0). "own" (r = x_0, the paper's
        w_Re transplanted to gossip) rarely succeeds: in gossip x_0 is itself a Krum
        candidate, and it out-scores x_0 - lambda s whenever s points to the honest rows.
        "zero": the messages are updates (the paper's federated setting). See fang_trim.
      halvings: static int, candidates evaluated (default 20).
      epsilon: traced, the noise half-width with collusion=False.
      scope: "local" or "global": whose honest mean gives r and s (Krum itself, and the
        bound lambda_max, always use the receiver's inbox).

    References:
      Fang, Cao, Jia, Gong, USENIX Security 2020 (Section 4, full knowledge, Krum).
    """

    reference: str = parameter("mean", static=True, choices=_REFERENCES)
    scope: str = _scope()
    halvings: int = parameter(20, static=True, minimum=1)
    epsilon: Any = parameter(1e-5, minimum=0.0)
    name: ClassVar[str] = "fang_krum"
    randomized: ClassVar[bool] = True

    def lambda_max(self, view, mean=None):
        """The paper's upper bound on lambda for this receiver (f32 scalar); ``mean`` is the
        honest mean the reference uses (default: the receiver's honest rows)."""
        ref, _ = _reference(self.reference, view, local_stats(view)["mean"] if mean is None else mean)
        d = jnp.asarray(view.dim, jnp.float32)
        distances = jnp.sqrt(pairwise_sq_distances(view.clean))
        pair = view.honest[:, None] & view.honest[None, :] & ~jnp.eye(view.size, dtype=bool)
        others = jnp.sort(jnp.where(pair, distances, jnp.inf), axis=1)
        k = jnp.maximum(view.count - view.byzantine_count - 2, 0)
        sums = jnp.sum(jnp.where(jnp.arange(view.size)[None, :] < k, others, 0.0), axis=1)
        closest = jnp.min(jnp.where(view.honest, sums, jnp.inf))
        denominator = jnp.maximum(view.count - 2 * view.byzantine_count - 1, 1).astype(jnp.float32)
        spread = jnp.sqrt(jnp.sum((view.clean - ref[None, :]) ** 2, axis=1))
        farthest = jnp.max(jnp.where(view.honest, spread, 0.0))
        return closest / (denominator * jnp.sqrt(d)) + farthest / jnp.sqrt(d)

    def message(self, key, view, ctx):
        mean = honest_stats(self, view, ctx)["mean"]
        ref, s = _reference(self.reference, view, mean)
        noise = jnp.zeros(view.inbox.shape, jnp.float32)
        if not self.collusion:
            noise = jax.random.uniform(key, view.inbox.shape, jnp.float32, -self.epsilon, self.epsilon)
            first = jnp.argmax(view.byzantine)
            noise = jnp.where((jnp.arange(view.size) == first)[:, None], 0.0, noise)
        lambdas = self.lambda_max(view, mean) * 0.5 ** jnp.arange(self.halvings, dtype=jnp.float32)
        return _fang_krum_rows(view, ref, s, noise, lambdas)


@jax.jit
def _fang_krum_rows(view, ref, s, noise, lambdas):
    """The rows r - lambda s (+ noise) for the largest lambda Krum selects, else the inbox
    (jitted on its own so eager calls stay fast)."""

    def rows(lam):
        return (ref - lam * s)[None, :] + noise

    def selected(lam):
        attacked = with_rows(view, rows(lam))
        return krum_selects_byzantine(attacked, view.mask, view.byzantine, view.byzantine_count)

    success = jax.vmap(selected)(lambdas)
    best = lambdas[jnp.argmax(success)]
    return jnp.where(jnp.any(success), rows(best), view.inbox)


# =========================================================================== mimic


@attack_spec
class Mimic(Attack):
    """Mimic: every Byzantine node sends one honest node's vector.

    ``mode="static"``: node ``target`` (an honest node id).
    ``mode="heuristic"`` (Karimireddy et al.'s mimic variant, as in their code): for the
    first ``warmup`` rounds the attacker learns the direction z of largest variance of the
    honest vectors by an online power iteration,
      t = 0:  mu = xbar, z = N(0, I) (from the prepare key), z <- c(z)/||c(z)||;
      0 < t < warmup: mu <- (t mu + xbar)/(t + 1), z <- normalize((t z + c(z)/||c(z)||)/(t + 1)),
    with c(z) = sum_i <x_i - mu, z> (x_i - mu) over honest nodes, and mimics the honest
    node maximising <x_i, z>; after the warmup that node stays the target. Memory (mu, z,
    the round counter, the target) lives in the attack state. (The RCL port instead
    picks argmax |<x_i, z>| every round; we follow the paper authors' code.)

    Args:
      mode: "static" (default) or "heuristic". target: traced node id (static mode).
      warmup: static int >= 1 (heuristic mode).

    References:
      Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
      bucketing", ICLR 2022.
    """

    mode: str = parameter("static", static=True, choices=("static", "heuristic"))
    target: Any = parameter(0, minimum=0)
    warmup: int = parameter(10, static=True, minimum=1)
    name: ClassVar[str] = "mimic"

    @property
    def needs_population(self) -> bool:
        return True

    def init(self, network, dim):
        state = super().init(network, dim)
        if self.mode == "static":
            if np.ndim(self.target) == 0 and not isinstance(self.target, jax.core.Tracer):
                target = int(self.target)
                if not (0 <= target < network.n and network.honest[target]):
                    honest = np.flatnonzero(network.honest)
                    raise ValueError(f"mimic: target={target} is not an honest node; honest nodes: {honest[:10].tolist()}...")
            return state
        state.update(
            t=jnp.zeros((), jnp.int32),
            mu=jnp.zeros((dim,), jnp.float32),
            z=jnp.zeros((dim,), jnp.float32),
            target=jnp.asarray(int(np.flatnonzero(network.honest)[0]), jnp.int32),
        )
        return state

    def prepare(self, key, honest_params, network, state):
        del network
        params = jnp.asarray(honest_params, jnp.float32)
        if self.mode == "static":
            return {"mimic": params[jnp.asarray(self.target, jnp.int32)]}, state
        honest = state["honest"]
        t = state["t"]
        tf = t.astype(jnp.float32)
        xbar = population_stats(params, honest)["mean"]
        mu = jnp.where(t == 0, xbar, (tf * state["mu"] + xbar) / (tf + 1))
        z_in = jnp.where(t == 0, jax.random.normal(key, xbar.shape, jnp.float32), state["z"])
        centred = jnp.where(honest[:, None], params - mu[None, :], 0.0)
        cumulative = (centred @ z_in) @ centred
        norm = jnp.sqrt(jnp.sum(cumulative**2))
        direction = cumulative / jnp.where(norm > 0, norm, 1.0)
        z = jnp.where(t == 0, direction, (tf * state["z"] + direction) / (tf + 1))
        z_norm = jnp.sqrt(jnp.sum(z**2))
        z = z / jnp.where(z_norm > 0, z_norm, 1.0)
        learning = t < self.warmup
        z = jnp.where(learning, z, state["z"])
        mu = jnp.where(learning, mu, state["mu"])
        scores = jnp.where(honest, params @ z, -jnp.inf)
        target = jnp.where(learning, jnp.argmax(scores).astype(jnp.int32), state["target"])
        state = dict(state, t=t + 1, mu=mu, z=z, target=target)
        return {"mimic": params[target], "target": target}, state

    def message(self, key, view, ctx):
        del key, view
        if "mimic" not in ctx.extra:
            raise ValueError("mimic needs ctx.extra['mimic'] from its prepare(); run init/prepare each round.")
        return ctx.extra["mimic"]


# =========================================================================== graph-aware attacks


@attack_spec
class Dissensus(_Scaled):
    """Dissensus: m = x_0 - epsilon * sum_{j honest} W_j (x_j - x_0) / sum_{k Byzantine} W_k.

    With epsilon = 1 a weighted mean returns exactly x_0 (the receiver's honest gossip
    pull is cancelled); epsilon > 1 reverses it. This is ClippedGossip's
    ``DissensusWorker`` (their experiments run epsilon = 1.5).

    Args:
      epsilon: traced, default 1.
      weighted: static; True (default) W = the receiver's mixing weights (ClippedGossip
        against gossip averaging and clipped gossip); False W = 1 on every valid row,
        m = x_0 - epsilon * sum_{j honest} (x_j - x_0) / f (ClippedGossip against every
        other rule, whose ``mixing = 1 / (deg + 1)`` cancels out).
      optimal: search epsilon in [search_min, search_max] against ``ctx.rule``, maximising
        the distance to the receiver's honest mean (CS+'s ``dissensus`` line-searches the
        factor of x_i + t sum_j w_ij (x_i - x_j), the same family up to the positive
        constant 1 / sum_k W_k).

    References:
      He, Karimireddy, Jaggi, "Byzantine-robust decentralized learning via ClippedGossip",
      2022.
    """

    epsilon: Any = parameter(1.0)
    weighted: bool = parameter(True, static=True, choices=(True, False))
    name: ClassVar[str] = "dissensus"

    def message(self, key, view, ctx):
        del key
        weights = view.weights if self.weighted else view.mask.astype(jnp.float32)
        w = jnp.where(view.honest, weights, 0.0)
        pull = w @ (view.clean - jnp.where(view.honest[:, None], view.own[None, :], 0.0))
        byzantine_weight = jnp.sum(jnp.where(view.byzantine, weights, 0.0))
        safe = jnp.where(byzantine_weight > 0, byzantine_weight, 1.0)
        if not self.optimal:
            return view.own - self.epsilon * pull / safe
        return self._scaled(view, ctx, local_stats(view)["mean"], view.own, -pull / safe, self.epsilon)


@attack_spec
class Isolation(Attack):
    """Isolation / model control: m = (T sum_j W_j - sum_{j honest} W_j x_j) / sum_{k Byzantine} W_k,
    so the receiver's (weighted) neighbourhood average equals the target T.

    Args:
      target: "own" (T = x_0, isolation: the receiver never moves) or "zero" (T = 0).
      weighted: static; True (default) uses the mixing weights, False the plain average.

    References:
      Wu, Chen, Ling, IOS, IEEE TSP 2023 (ByrdLab's isolation and model-control attacks).
    """

    target: str = parameter("own", static=True, choices=("own", "zero"))
    weighted: bool = parameter(True, static=True, choices=(True, False))
    name: ClassVar[str] = "isolation"

    def message(self, key, view, ctx):
        del key, ctx
        w = view.weights if self.weighted else view.mask.astype(jnp.float32)
        goal = view.own if self.target == "own" else jnp.zeros_like(view.own)
        honest_sum = jnp.where(view.honest, w, 0.0) @ view.clean
        byzantine_weight = jnp.sum(jnp.where(view.byzantine, w, 0.0))
        safe = jnp.where(byzantine_weight > 0, byzantine_weight, 1.0)
        return (goal * jnp.sum(w) - honest_sum) / safe


@attack_spec
class Spectral(_Scaled):
    """Spectral attack: m = x_0 + scale * v[i] * (v^T X_H), v the Fiedler vector of the
    honest subgraph's Laplacian, i the receiver (``ctx.node``), X_H the honest vectors.

    Nodes on the two sides of the honest graph's sparsest cut are pushed apart.
    ``init`` computes v on the host (dense eigendecomposition: fine up to a few thousand
    honest nodes); ``prepare`` computes v^T X_H each round.

    Args:
      scale: traced, default 1. optimal: search the scale against ``ctx.rule`` (the
        reference code's line search), maximising the distance to the receiver's honest mean.

    References:
      Gaucher, Dieuleveut, Hendrikx, "Unified breakdown analysis for Byzantine robust
      gossip", ICML 2025.
    """

    scale: Any = parameter(1.0)
    name: ClassVar[str] = "spectral"
    needs_graph: ClassVar[bool] = True

    @property
    def needs_population(self) -> bool:
        return True

    def init(self, network, dim):
        state = super().init(network, dim)
        state["fiedler"] = jnp.asarray(fiedler_vector(network))
        return state

    def prepare(self, key, honest_params, network, state):
        del key, network
        params = jnp.where(state["honest"][:, None], jnp.asarray(honest_params, jnp.float32), 0.0)
        return {"fiedler": state["fiedler"], "direction": state["fiedler"] @ params}, state

    def message(self, key, view, ctx):
        del key
        if "direction" not in ctx.extra:
            raise ValueError("spectral needs ctx.extra from its prepare(); run init/prepare each round.")
        node = jnp.asarray(ctx.node, jnp.int32)
        direction = ctx.extra["fiedler"][node] * ctx.extra["direction"]
        return self._scaled(view, ctx, local_stats(view)["mean"], view.own, direction, self.scale)


# =========================================================================== registry

for _cls in (
    NoAttack,
    Gaussian,
    SignFlip,
    Zero,
    Crash,
    Large,
    SampleDuplicate,
    LabelFlip,
    ALIE,
    IPM,
    Mimic,
    MinMax,
    MinSum,
    FangTrim,
    FangKrum,
    HiddenVulnerability,
    Dissensus,
    Isolation,
    Spectral,
):
    ATTACKS[_cls.name] = _cls
del _cls
