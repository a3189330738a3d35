"""Shared numerics of the attacks: honest statistics, the optimal-scale search, Krum's
selection, and the Fiedler vector of the honest graph.

Everything except :func:`fiedler_vector` (host-side numpy) works on one receiver's
:class:`~attacks._view.View` and is written to be ``vmap``ped over receivers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

# =========================================================================== statistics


def _masked_stats(rows, valid):
    """Mean, std (ddof=1; 0 below two rows), min, max and count of the valid rows of ``rows: [m, d]``."""
    valid = valid.astype(bool)
    count = jnp.sum(valid, dtype=jnp.int32)
    safe = jnp.maximum(count, 1).astype(rows.dtype)
    clean = jnp.where(valid[:, None], rows, 0.0)
    mean = jnp.sum(clean, axis=0) / safe
    centred = jnp.where(valid[:, None], rows - mean[None, :], 0.0)
    dof = jnp.maximum(count - 1, 1).astype(rows.dtype)
    std = jnp.where(count > 1, jnp.sqrt(jnp.sum(centred * centred, axis=0) / dof), 0.0)
    low = jnp.min(jnp.where(valid[:, None], rows, jnp.inf), axis=0)
    high = jnp.max(jnp.where(valid[:, None], rows, -jnp.inf), axis=0)
    return {"mean": mean, "std": std, "min": low, "max": high, "count": count}


def population_stats(params, honest):
    """Honest statistics over the whole population (``scope="global"``).

    Args:
      params: f32[n, d], every node's message. honest: bool[n].

    Returns:
      dict with ``mean``, ``std`` (ddof=1), ``min``, ``max`` (coordinate-wise, f32[d]) and
      ``count`` (int32).
    """
    return _masked_stats(jnp.asarray(params, jnp.float32), jnp.asarray(honest))


def local_stats(view):
    """Honest statistics over the receiver's honest rows, its own included."""
    return _masked_stats(view.inbox, view.honest)


def honest_stats(spec, view, ctx):
    """The statistics an attack uses: the receiver's honest rows (``scope="local"``) or
    the whole honest population from ``ctx.extra`` (``scope="global"``)."""
    if getattr(spec, "scope", "local") == "global":
        missing = [k for k in ("mean", "std", "min", "max", "count") if k not in ctx.extra]
        if missing:
            raise ValueError(
                f"{spec.name} with scope='global' needs ctx.extra from its prepare() (missing {missing}); "
                "run state = spec.init(graph, d); extra, state = spec.prepare(key, params, graph, state) each round."
            )
        return ctx.extra
    return local_stats(view)


# =========================================================================== ALIE


def alie_z(count, byzantine_count, quantile: str):
    """Baruch et al.'s z for a receiver with ``count`` valid rows of which ``byzantine_count`` are Byzantine.

    s = floor(n/2 + 1) - f supporters; ``quantile="paper"``: z = Phi^{-1}((n - s)/n);
    ``"clipped_gossip"``: z = Phi^{-1}((n - f - s)/(n - f)). The argument is clipped to
    [2^-20, 1 - 2^-20] (|z| <= 4.76): with a Byzantine majority (s <= 0) the formula gives +inf.
    """
    n = jnp.asarray(count, jnp.float32)
    f = jnp.asarray(byzantine_count, jnp.float32)
    s = jnp.floor(n / 2 + 1) - f
    if quantile == "paper":
        p = (n - s) / n
    else:
        p = (n - f - s) / jnp.maximum(n - f, 1.0)
    return ndtri(jnp.clip(p, 2.0**-20, 1 - 2.0**-20))


# =========================================================================== optimal scale


def with_rows(view, message):
    """The inbox with every valid Byzantine row replaced by ``message`` (f32[d] or f32[K, d])."""
    message = jnp.broadcast_to(message, view.inbox.shape)
    return jnp.where(view.byzantine[:, None], message, view.inbox)


def best_scale(view, ctx, base, direction, target, low, high, grid: int, refine: int, *, name: str, default=None):
    """The scale t in [low, high] maximising ||rule(inbox with Byzantine rows base + t direction) - target||.

    One ``vmap`` over ``grid`` evenly spaced candidates, then one over ``refine``
    candidates spanning the best grid cell's neighbours (no Python loop). Peak memory:
    max(grid, refine) attacked inboxes, i.e. max(grid, refine) x K x d floats per receiver
    (times the receivers the engine vmaps together), plus what ``ctx.rule`` allocates per
    call. Non-finite distances count as -inf; ties go to the smallest scale. The search is
    jitted on its own, so eager calls stay fast (under an outer jit it is inlined).

    The attack's default (fixed) scale is a candidate too, so the optimal mode never does
    worse than the default against the receiver's rule (narrow peaks, e.g. against Krum,
    can fall between grid points).

    Args:
      view: the receiver's View. ctx: its Context (``ctx.rule`` is required).
      base, direction: f32[d] (or f32[K, d]). target: f32[d]. low, high: scalars.
      grid, refine: static candidate counts. name: the attack, for errors.
      default: the attack's fixed scale (a scalar), or None.

    Returns:
      The best scale (f32 scalar).

    Raises:
      ValueError: ``ctx.rule`` is None.
    """
    if ctx.rule is None:
        raise ValueError(f"{name} with optimal=True needs the receiver's rule as ctx.rule(inbox, mask, weights).")
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    default = low if default is None else jnp.asarray(default, jnp.float32)
    args = (view, base, direction, target, low, high, default)
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(ctx.rule)):
        return _search_static_rule(ctx.rule, *args, grid=grid, refine=refine)
    return _search_traced_rule(ctx.rule, *args, grid=grid, refine=refine)


def _search(rule, view, base, direction, target, low, high, default, *, grid, refine):
    def score(scale):
        attacked = with_rows(view, base + scale * direction)
        out = rule(attacked, view.mask, view.raw_weights)
        gap = jnp.sum((out - target) ** 2)
        return jnp.where(jnp.isfinite(gap), gap, -jnp.inf)

    coarse = jnp.concatenate([low + (high - low) * jnp.linspace(0.0, 1.0, grid), default[None]])
    coarse_scores = jax.vmap(score)(coarse)
    i = jnp.argmax(coarse_scores)
    step = (high - low) / max(grid - 1, 1)
    fine = jnp.clip(coarse[i] + step * jnp.linspace(-1.0, 1.0, refine), low, high)
    fine_scores = jax.vmap(score)(fine)
    j = jnp.argmax(fine_scores)
    return jnp.where(fine_scores[j] > coarse_scores[i], fine[j], coarse[i])


_search_static_rule = jax.jit(_search, static_argnames=("rule", "grid", "refine"))
_search_traced_rule = jax.jit(_search, static_argnames=("grid", "refine"))


# =========================================================================== distances, Krum


def pairwise_sq_distances(rows):
    """||x_i - x_j||^2 for ``rows: [m, d]`` (centred on row 0 first, clamped at 0)."""
    centred = rows - rows[:1]
    sq = jnp.sum(centred * centred, axis=1)
    gram = centred @ centred.T
    return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)


@jax.jit
def krum_selects_byzantine(inbox, valid, byzantine, byzantine_count):
    """Whether Krum (Blanchard et al. 2017: score = sum of the n - f - 2 smallest squared
    distances to other valid rows, f = the receiver's Byzantine count) picks a Byzantine row."""
    size = inbox.shape[0]
    distances = pairwise_sq_distances(inbox)
    others = jnp.where(jnp.eye(size, dtype=bool) | ~valid[None, :], jnp.inf, distances)
    count = jnp.sum(valid, dtype=jnp.int32)
    k = jnp.maximum(count - byzantine_count - 2, 1)
    ordered = jnp.sort(others, axis=1)
    take = jnp.arange(size)[None, :] < k
    scores = jnp.sum(jnp.where(take, ordered, 0.0), axis=1)
    scores = jnp.where(valid, scores, jnp.inf)
    return byzantine[jnp.argmin(scores)]


# =========================================================================== spectral


def fiedler_vector(graph) -> np.ndarray:
    """The Fiedler vector of the honest subgraph's Laplacian L = D - A (host side).

    A is the undirected, unweighted adjacency among honest nodes (a link in either
    direction counts). The vector has unit norm over honest nodes, 0 on Byzantine ones, and
    its sign is fixed so that its entry of largest magnitude is positive.

    Returns:
      f32[n].
    """
    honest = np.flatnonzero(graph.honest)
    index = -np.ones(graph.n, dtype=np.int64)
    index[honest] = np.arange(honest.size)
    m = honest.size
    adjacency = np.zeros((m, m))
    for src, dst in graph.edges:
        if graph.honest[src] and graph.honest[dst] and src != dst:
            adjacency[index[src], index[dst]] = adjacency[index[dst], index[src]] = 1.0
    laplacian = np.diag(adjacency.sum(axis=1)) - adjacency
    out = np.zeros(graph.n, dtype=np.float32)
    if m < 2:
        return out
    _, vectors = np.linalg.eigh(laplacian)
    vector = vectors[:, 1]
    if vector[np.argmax(np.abs(vector))] < 0:
        vector = -vector
    out[honest] = vector
    return out
