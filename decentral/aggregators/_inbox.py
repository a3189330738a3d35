"""Shared building blocks of the rules: inbox preparation, validation, sorting networks,
value-based tie keys, pairwise distances and clipping.

Everything here works on ONE node's inbox ``x: f32[K, d]`` (row 0 = the node's own
vector) and is written to be ``vmap``ped over nodes by the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

MinCount = Callable[[int], int]


# --------------------------------------------------------------------------- validation


def _is_concrete(value) -> bool:
    """True for Python/numpy values and committed (non-traced) JAX arrays."""
    return not isinstance(value, jax.core.Tracer)


def _concrete_int(value, what: str, rule: str) -> int | None:
    """The Python int behind ``value``, or None when it is traced."""
    if value is None or not _is_concrete(value):
        return None
    array = np.asarray(value)
    if array.shape != () or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{rule}: {what} must be an integer scalar, got {value!r}.")
    return int(array)


def check_requirement(rule: str, min_count: MinCount, count: int, f: int, where: str = "") -> None:
    """Raise a ValueError naming the rule, the numbers and a fix when ``count < min_count(f)``."""
    if f < 0:
        raise ValueError(f"{rule}: f must be >= 0, got f={f}{where}.")
    needed = min_count(f)
    if count < needed:
        largest_f = max((g for g in range(count + 1) if min_count(g) <= count), default=None)
        fix = (
            f"Use f <= {largest_f} or a larger inbox (a denser topology)."
            if largest_f is not None
            else "Use a larger inbox (a denser topology)."
        )
        raise ValueError(
            f"{rule} with f={f} needs an inbox of at least {needed} valid rows; "
            f"got {count}{where}. {fix}"
        )


def prepare(
    x,
    f,
    mask,
    weights,
    *,
    rule: str,
    min_count: MinCount,
):
    """Check and normalise one inbox.

    Returns ``(x, f, mask, count)`` with ``x`` float32 [K, d], ``mask`` bool [K] (row 0 is
    always valid), ``f`` an int32 scalar and ``count`` the number of valid rows (int32).
    Masked rows of ``x`` are replaced by row 0, so their contents (NaN, 1e6 padding) can
    never leak into a result.

    When ``x``'s shape, ``f`` and ``mask`` are concrete (eager calls on plain arrays) the
    rule's requirement is checked here, before any compilation; under ``jit`` the engine
    checks it per node beforehand, and an inbox that loses rows at run time falls back to
    the rule's documented degenerate output.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{rule}: the inbox x must have shape [K, d], got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    inbox_size = x.shape[0]
    if mask is None:
        mask = jnp.ones((inbox_size,), dtype=bool)
    else:
        mask = jnp.asarray(mask)
        if mask.shape != (inbox_size,):
            raise ValueError(f"{rule}: mask must have shape [{inbox_size}] (one flag per inbox row), got {mask.shape}.")
        if mask.dtype != jnp.bool_:
            raise ValueError(f"{rule}: mask must be boolean, got dtype {mask.dtype}.")
    if weights is not None:
        weights = jnp.asarray(weights)
        if weights.shape != (inbox_size,):
            raise ValueError(f"{rule}: weights must have shape [{inbox_size}] (one per inbox row), got {weights.shape}.")

    f_value = _concrete_int(f, "f", rule)
    if f_value is not None:
        count_value = inbox_size
        if _is_concrete(mask):
            mask_np = np.asarray(mask)
            if not mask_np[0]:
                raise ValueError(f"{rule}: row 0 is the node's own vector and must be valid (mask[0] is False).")
            count_value = int(mask_np.sum())
        check_requirement(rule, min_count, count_value, f_value)

    mask = mask.at[0].set(True)
    x = jnp.where(mask[:, None], x, x[:1])
    count = jnp.sum(mask, dtype=jnp.int32)
    return x, jnp.asarray(f, dtype=jnp.int32), mask, count


def normalized_weights(weights, mask):
    """Mixing weights restricted to valid rows and normalised to sum 1 (uniform by default)."""
    if weights is None:
        weights = jnp.ones(mask.shape, dtype=jnp.float32)
    weights = jnp.where(mask, weights.astype(jnp.float32), 0.0)
    total = jnp.sum(weights)
    safe = jnp.where(total > 0, total, 1.0)
    # A zero total (all valid weights zero) leaves only the node's own vector.
    fallback = jnp.zeros_like(weights).at[0].set(1.0)
    return jnp.where(total > 0, weights / safe, fallback)


# --------------------------------------------------------------------------- sorting networks


@functools.cache
def sorting_network(size: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``size`` inputs.

    Built for the next power of two; comparators touching a position >= size are dropped,
    which is valid because those virtual inputs would be +inf and never move.
    """
    width = 1
    while width < size:
        width *= 2
    pairs = []
    p = 1
    while p < width:
        k = p
        while k >= 1:
            for j in range(k % p, width - k, 2 * k):
                for i in range(min(k, width - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < size:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def sort_rows(values):
    """Sort ``values: [K, ...]`` along axis 0 with a sorting network of min/max ops.

    XLA's CPU sort along a short axis is a generic comparator sort, ~100x slower than an
    unrolled network of elementwise ``minimum``/``maximum`` (DESIGN.md, performance rules).
    NaN must be removed by the caller (``jnp.minimum`` propagates it).
    """
    rows = list(values)
    for i, j in sorting_network(len(rows)):
        low, high = jnp.minimum(rows[i], rows[j]), jnp.maximum(rows[i], rows[j])
        rows[i], rows[j] = low, high
    return jnp.stack(rows)


def sortable(x, mask):
    """Values ready for a coordinate-wise sort: NaN and invalid rows become +inf (sorted last)."""
    return jnp.where(mask[:, None] & ~jnp.isnan(x), x, jnp.inf)


def take_row(values, index):
    """``values[index]`` for a traced scalar ``index`` (a row gather, cheap under vmap)."""
    return jax.lax.dynamic_index_in_dim(values, index, axis=0, keepdims=False)


def window_mean(sorted_values, start, length):
    """Mean of ``sorted_values[start : start + length]`` along axis 0, per coordinate.

    ``start`` is a scalar or one start per coordinate ([d]); ``length`` is a scalar. Rows
    outside the window are selected away (never multiplied), so +-inf there cannot leak in.
    """
    start = jnp.broadcast_to(start, sorted_values.shape[1:])[None, :]
    ranks = jnp.arange(sorted_values.shape[0])[:, None]
    inside = (ranks >= start) & (ranks < start + length)
    total = jnp.sum(jnp.where(inside, sorted_values, 0.0), axis=0)
    return total / jnp.maximum(length, 1).astype(sorted_values.dtype)


def coordinate_median(sorted_values, count):
    """CW median of the first ``count`` rows of a sorted array (mean of the two middles)."""
    lower = take_row(sorted_values, (count - 1) // 2)
    upper = take_row(sorted_values, count // 2)
    return 0.5 * lower + 0.5 * upper


def shifted_rows(values, shift):
    """``out[s] = values[min(s + shift, K - 1)]`` for a traced scalar ``shift`` (one slice)."""
    size = values.shape[0]
    padded = jnp.concatenate([values, jnp.broadcast_to(values[-1:], values.shape)], axis=0)
    return jax.lax.dynamic_slice_in_dim(padded, jnp.clip(shift, 0, size), size, axis=0)


def closest_window_start(sorted_values, count, keep, center):
    """Per coordinate, the start of the ``keep`` consecutive sorted values closest to ``center``.

    The ``keep`` values nearest to ``center`` are a window ``[s, s + keep)`` of the sorted
    valid values, with ``s <= count - keep``. Where a lower and a higher value are at
    exactly equal distance the lower one is kept (a rule on values, so the result does not
    depend on inbox order). Window ``s`` is the answer iff the value just below it is
    strictly farther than the window's top, and the value just above it is at least as far
    as the window's bottom. Only ``s <= (K - 1) // 2`` is searched: every caller drops at
    most half of the rows.
    """
    size = sorted_values.shape[0]
    tops = shifted_rows(sorted_values, keep - 1)
    aboves = shifted_rows(sorted_values, keep)
    start = jnp.zeros(sorted_values.shape[1:], dtype=jnp.int32)
    found = jnp.zeros(sorted_values.shape[1:], dtype=bool)
    for s in range(min(size, (size - 1) // 2 + 1)):
        bottom, top, above = sorted_values[s], tops[s], aboves[s]
        below_ok = True if s == 0 else (center - sorted_values[s - 1]) > (top - center)
        above_ok = (s + keep >= count) | ((above - center) >= (center - bottom))
        chosen = (s + keep <= count) & below_ok & above_ok & ~found
        start = jnp.where(chosen, s, start)
        found = found | chosen
    return start


# --------------------------------------------------------------------------- distances, ties


def tie_key(x):
    """A per-row scalar used to break exact ties by value, not by row index.

    The projection of each row on a fixed pseudo-random direction
    ``u_k = sin(12.9898 k + 78.233)``: equal for identical rows, almost surely different
    otherwise, and shifting every row by the same vector preserves its order.
    """
    direction = jnp.sin(jnp.arange(x.shape[1], dtype=jnp.float32) * 12.9898 + 78.233)
    return jnp.where(jnp.isfinite(x), x, 0.0) @ direction


def row_is_finite(x):
    """True for rows whose entries and squared norm are finite in float32."""
    return jnp.all(jnp.isfinite(x), axis=1) & jnp.isfinite(jnp.sum(x * x, axis=1))


def pairwise_sq_distances(x, mask):
    """Squared distances ``D[i, j] = ||x_i - x_j||^2`` via the Gram matrix of ``x - x_0``.

    Subtracting row 0 first keeps float32 from cancelling when vectors are close (DESIGN.md).
    Rows that are non-finite or overflow are infinitely far from everything (0 from
    themselves), and so are invalid rows.
    """
    centered = x - x[:1]
    usable = mask & row_is_finite(centered)
    centered = jnp.where(usable[:, None], centered, 0.0)
    gram = centered @ centered.T
    sq_norms = jnp.diagonal(gram)
    distances = jnp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * gram, 0.0)
    far = ~(usable[:, None] & usable[None, :])
    distances = jnp.where(far, jnp.inf, distances)
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, distances)


def precedes(*keys):
    """``before[i, j]``: row i comes strictly before row j, comparing ``keys`` in turn, then
    the row index. A total order (keys must hold no NaN): every selection by rank in it is
    deterministic, and for rows that differ in some key it depends only on their values.
    """
    index = jnp.arange(keys[0].shape[0])
    before = index[:, None] < index[None, :]
    for key in reversed(keys):
        a, b = key[:, None], key[None, :]
        before = (a < b) | ((a == b) & before)
    return before


def ranks(primary, secondary, mask):
    """Rank of each row in the order (primary, secondary, index), invalid rows last (int32 [K])."""
    invalid = (~mask).astype(jnp.int32)
    return jnp.sum(precedes(invalid, jnp.where(mask, primary, 0.0), secondary), axis=0, dtype=jnp.int32)


def smallest_k_sum(values, k):
    """Sum of the ``k`` smallest entries of each row of ``values: [K, K]`` (k traced).

    Entries are sorted with a network, so the sum is taken in value order and is exactly
    the same whatever the order of the inbox rows.
    """
    ordered = sort_rows(values.T)  # sort along the original last axis
    taken = jnp.arange(values.shape[1])[:, None] < k
    return jnp.sum(jnp.where(taken, ordered, 0.0), axis=0)


def selection_mean(x, selected):
    """Mean of the rows where ``selected`` is True (selected away, never multiplied)."""
    total = jnp.sum(jnp.where(selected[:, None], x, 0.0), axis=0)
    return total / jnp.maximum(jnp.sum(selected), 1).astype(x.dtype)


def weighted_mean(x, weights):
    """``sum_j w_j x_j / sum_j w_j``; rows with zero weight are selected away."""
    total = jnp.sum(jnp.where((weights > 0)[:, None], weights[:, None] * x, 0.0), axis=0)
    return total / jnp.where(jnp.sum(weights) > 0, jnp.sum(weights), 1.0)


# --------------------------------------------------------------------------- clipping


def clip_factor(norms, radius):
    """``min(1, radius / norm)`` per row; 1 for zero norms, 0 for infinite ones."""
    safe = jnp.where(norms > 0, norms, 1.0)
    return jnp.where(norms > radius, radius / safe, 1.0)


def clip_rows(vectors, radius):
    """``v * min(1, radius / ||v||)`` per row, ``radius`` scalar or [K].

    Rows whose norm is non-finite (inf, NaN, or squared norm overflowing float32) are
    treated as absent and clipped to zero: float32 cannot say in which direction they lie.
    """
    finite = row_is_finite(vectors)
    norms = jnp.sqrt(jnp.sum(jnp.where(finite[:, None], vectors * vectors, 0.0), axis=1))
    scaled = jnp.where(finite[:, None], vectors, 0.0) * clip_factor(norms, radius)[:, None]
    return scaled, finite


def row_norms(vectors):
    """Euclidean norm per row; +inf for non-finite or overflowing rows."""
    finite = row_is_finite(vectors)
    return jnp.where(finite, jnp.sqrt(jnp.sum(jnp.where(finite[:, None], vectors * vectors, 0.0), axis=1)), jnp.inf)
