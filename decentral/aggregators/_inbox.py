"""Shared building blocks of the rules: inbox preparation, validation, sorting networks,
value-based tie keys, pairwise distances and clipping.

Everything here works on ONE node's inbox ``x: f32[K, d]`` (row 0 = the node's own
vector) and is written to be ``vmap``ped over nodes by the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching

from . import _native

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
    Masked rows of ``x`` are left as they are (NaN, 1e6 padding): every kernel selects
    them away row by row (an array-wide ``where`` here would cost a full extra pass).

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


# --------------------------------------------------------------------------- row-wise building blocks
#
# On CPU, XLA fuses elementwise ops over [d] rows into one loop, but a reduction over the
# short inbox axis whose input is computed (a sorting network, a selection) re-evaluates
# that input per output element. So for inboxes of up to UNROLL_MAX rows every reduction
# over rows is written as an unrolled chain of elementwise ops; larger inboxes (hubs of
# scale-free graphs) use array reductions, which compile fast at any size.

#: Largest inbox for which row loops are unrolled (sorting networks, sums, picks).
UNROLL_MAX = 64


def as_rows(values):
    """``values: [K, ...]`` as a list of K rows when K <= UNROLL_MAX, else unchanged.

    Rank statistics keep their intermediate rows in a Python list: stacking them and
    slicing again makes XLA recompute the whole sorting network once per slice.
    """
    return [values[k] for k in range(values.shape[0])] if values.shape[0] <= UNROLL_MAX else values


def sum_rows(rows):
    """Sum over rows of a list of rows or of an array [K, ...] (axis 0)."""
    if isinstance(rows, list):
        return functools.reduce(jnp.add, rows)
    return jnp.sum(rows, axis=0) if rows.shape[0] > UNROLL_MAX else functools.reduce(jnp.add, as_rows(rows))


def pick_row(rows, index):
    """``rows[index]`` for a traced ``index`` (a scalar, or one index per coordinate)."""
    if not isinstance(rows, list):
        index = jnp.broadcast_to(index, rows.shape[1:])[None]
        return jnp.take_along_axis(rows, index, axis=0)[0]
    out = rows[0]
    for k in range(1, len(rows)):
        out = jnp.where(index == k, rows[k], out)
    return out


def _odd_even_merge(first, second):
    """Comparators merging two sorted runs of positions, of any lengths (Batcher's
    odd-even merge: merge the even- and the odd-indexed parts, then one exchange layer)."""
    if not first or not second:
        return []
    if len(first) == len(second) == 1:
        return [(first[0], second[0])]
    both = first + second
    return (
        _odd_even_merge(first[0::2], second[0::2])
        + _odd_even_merge(first[1::2], second[1::2])
        + [(both[i], both[i + 1]) for i in range(1, len(both) - 1, 2)]
    )


@functools.cache
def sorting_network(size: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, sorting ``size`` inputs.

    Both parts sorted, then merged by ``_odd_even_merge``, at the split that needs the
    fewest comparators (chosen by dynamic programming over the sizes). Each comparator is
    two vector instructions per coordinate, and rank rules are bound by them: 11 inputs
    take 37 (Batcher's network for 16 inputs cut to 11 took 38; the best known is 35),
    9 take 26 (28), 33 take 207 (246).
    """
    if size <= 1:
        return ()

    def split_at(split):
        second = [(i + split, j + split) for i, j in sorting_network(size - split)]
        merge = _odd_even_merge(list(range(split)), list(range(split, size)))
        return (*sorting_network(split), *second, *merge)

    return min((split_at(split) for split in range(1, size)), key=len)


def sort_rows(values):
    """Sort ``values: [K, ...]`` along axis 0; a list of rows for small K (see ``as_rows``).

    Small K: an unrolled sorting network of elementwise compare-exchanges — XLA's CPU
    sort along a short axis is a generic comparator sort, ~100x slower (DESIGN.md). NaN
    must be removed by the caller. Each exchange is one comparison and two selects:
    ``jnp.minimum``/``maximum`` propagate NaN, which costs ~1.4x more on CPU.
    """
    rows = list(values) if isinstance(values, list) else as_rows(values)
    if not isinstance(rows, list):
        return jnp.sort(values, axis=0)
    for i, j in sorting_network(len(rows)):
        lower = rows[i] < rows[j]
        rows[i], rows[j] = jnp.where(lower, rows[i], rows[j]), jnp.where(lower, rows[j], rows[i])
    return rows


def sortable(x, mask):
    """Rows ready for a coordinate-wise sort: NaN and invalid rows become +inf (sorted last).

    ``x < ceiling ? x : inf``, the ceiling +inf for valid rows and -inf for invalid ones:
    false for NaN, and where the mask is known (all rows valid) the very form of one x86
    ``minps``, one instruction per value where an ``isnan`` test and a select took two.
    """
    ceilings = jnp.where(mask, jnp.inf, -jnp.inf)
    if x.shape[0] > UNROLL_MAX:
        return jnp.where(x < ceilings[:, None], x, jnp.inf)
    return [jnp.where(x[k] < ceilings[k], x[k], jnp.inf) for k in range(x.shape[0])]


def window_sum(sorted_rows, start, length):
    """Sum of ``sorted_rows[start : start + length]``, per coordinate.

    ``start`` is a scalar or one start per coordinate; ``length`` is a scalar. Rows outside
    the window are selected away (never multiplied), so +-inf there cannot leak in.
    """
    if isinstance(sorted_rows, list):
        end = start + length
        return sum_rows([jnp.where((k >= start) & (k < end), row, 0.0) for k, row in enumerate(sorted_rows)])
    rank = jnp.arange(sorted_rows.shape[0]).reshape((-1,) + (1,) * (sorted_rows.ndim - 1))
    start = jnp.broadcast_to(start, sorted_rows.shape[1:])[None]
    return jnp.sum(jnp.where((rank >= start) & (rank < start + length), sorted_rows, 0.0), axis=0)


def mean_of_sum(total, length):
    """``total / length``, with an empty ``length`` (0) counted as 1 (the sum is then 0)."""
    return total / jnp.maximum(length, 1).astype(total.dtype)


def window_mean(sorted_rows, start, length):
    """Mean of ``sorted_rows[start : start + length]``, per coordinate (see ``window_sum``)."""
    return mean_of_sum(window_sum(sorted_rows, start, length), length)


def coordinate_median(sorted_values, count):
    """CW median of the first ``count`` rows of a sorted array (mean of the two middles).

    ``count <= K``, so the middles are among the first ``K // 2 + 1`` rows and the picks
    (one select per candidate row, for a traced ``count``) look no further.
    """
    candidates = sorted_values[: len(sorted_values) // 2 + 1]
    lower = pick_row(candidates, (count - 1) // 2)
    upper = pick_row(candidates, count // 2)
    return 0.5 * lower + 0.5 * upper


def shifted_rows(rows, shift, how_many):
    """``[rows[min(m + shift, K - 1)] for m < how_many]`` for a scalar ``shift`` (traced).

    For a list of rows: a barrel shifter, one select per row and bit of ``shift`` (about
    half the selects of ``how_many`` separate ``pick_row`` calls).
    """
    size = len(rows)
    shift = jnp.clip(shift, 0, size - 1)
    if not isinstance(rows, list):
        return [pick_row(rows, jnp.minimum(m + shift, size - 1)) for m in range(how_many)]
    steps = [2**b for b in reversed(range(max(size - 1, 1).bit_length()))]
    needed = [min(size, how_many)]  # rows needed after each step, from the last step back
    for step in reversed(steps[1:]):
        needed.insert(0, min(size, needed[0] + step))
    for step, length in zip(steps, needed):
        taken = (shift & step) != 0
        rows = [jnp.where(taken, rows[min(i + step, size - 1)], rows[i]) for i in range(length)]
    return rows + rows[-1:] * (how_many - len(rows))  # past the end: the last row


def _window_steps(sorted_values, keep, center):
    """``(steps, tops)`` for the window of ``keep`` sorted values closest to ``center``.

    For each ``i < (K - 1) // 2``: ``tops[i] = sorted_values[i + keep]`` (``shifted_rows``)
    and ``steps[i]`` says that it is strictly closer to ``center`` than ``sorted_values[i]``
    (a lower and a higher value at exactly equal distance: the lower one is kept, a rule
    on values, so the result does not depend on inbox order). ``tops[i] - center`` grows
    and ``center - sorted_values[i]`` shrinks with ``i``, also after float32 rounding, so
    the steps are True up to some ``s`` and False from there: the closest window is
    ``[s, s + keep)``. Every caller drops at most ``(K - 1) // 2`` rows.
    """
    half = (len(sorted_values) - 1) // 2
    tops = shifted_rows(sorted_values, keep, half)
    steps = [tops[i] - center < center - sorted_values[i] for i in range(half)]
    return steps, tops


def closest_window_start(sorted_values, count, keep, center):
    """Per coordinate, the start ``s`` of the ``keep`` consecutive sorted values closest to
    ``center`` (among the first ``count``): the number of steps ``_window_steps`` takes."""
    steps, _ = _window_steps(sorted_values, keep, center)
    drop = count - keep
    start = jnp.zeros(jnp.shape(center), dtype=jnp.int32)
    for i, step in enumerate(steps):
        start = start + ((i < drop) & step).astype(jnp.int32)
    return start


def closest_window_sum(sorted_values, count, keep, center, middle_sum):
    """Sum of the ``keep`` sorted values closest to ``center``, for ``keep >= count - keep``.

    ``middle_sum`` is the sum of ``sorted_values[count - keep : keep]``, the rows inside
    every candidate window (a trimmed sum the caller usually has already). Each row
    ``i < count - keep`` pairs with ``i + keep``: the window holds exactly one of the two,
    the higher one iff the window steps past ``i`` (``_window_steps``). One comparison and
    one select per pair, with no per-coordinate window start: finding the start and then
    selecting every row by it measured ~2x the time of the median on CPU.
    """
    steps, tops = _window_steps(sorted_values, keep, center)
    drop = count - keep
    total = middle_sum
    for i, step in enumerate(steps):
        total = jnp.where(i < drop, total + jnp.where(step, tops[i], sorted_values[i]), total)
    return total


# --------------------------------------------------------------------------- distances, ties


#: Nodes per step when a per-node computation runs under vmap (see ``per_node``).
PER_NODE_BATCH = 4


def per_node(function=None, *, static_argnums=()):
    """Run ``function`` a few nodes at a time (``lax.map``) when it is vmapped over nodes
    on CPU; vectorized over all nodes elsewhere.

    The small per-node matrix products of distance rules ([K, d] x [d, K]) and multi-pass
    iterative rules measured ~1.5-3x faster on CPU a few cache-resident inboxes at a time
    (``PER_NODE_BATCH``) than vectorized over all nodes at once. On a GPU the same loop of
    250 small steps made Krum 13x and the geometric median 69x ``mean`` (H200). ``static_argnums``
    are positions of Python values (iteration counts) passed through unbatched.
    """
    if function is None:
        return functools.partial(per_node, static_argnums=static_argnums)

    def call(*args):
        static = {i: args[i] for i in static_argnums}
        dynamic = [a for i, a in enumerate(args) if i not in static]

        def rebuild(values):
            values = iter(values)
            return [static[i] if i in static else next(values) for i in range(len(args))]

        wrapped = custom_batching.custom_vmap(lambda *values: function(*rebuild(values)))

        @wrapped.def_vmap
        def _few_at_a_time(axis_size, in_batched, *values):
            values = tuple(
                v if batched else jnp.broadcast_to(v, (axis_size, *jnp.shape(v))) for v, batched in zip(values, in_batched)
            )

            def one(node_values):
                return function(*rebuild(node_values))

            def on_cpu(*values):
                return jax.lax.map(one, values, batch_size=min(PER_NODE_BATCH, axis_size))

            def elsewhere(*values):  # a GPU wants every node at once
                return jax.vmap(lambda *node_values: one(node_values))(*values)

            out = jax.lax.platform_dependent(*values, cpu=on_cpu, default=elsewhere)
            return out, jax.tree.map(lambda _: True, out)

        return wrapped(*dynamic)

    return call


def mix_rows(coefficients, x, finite):
    """``coefficients @ x`` ([J, K] x [K, d]); zero coefficients ignore their row, and an
    output mixing a row that is not ``finite`` (bool [K], see ``finite_rows``) is NaN.

    Small inboxes: an unrolled sum of ``[J, 1] x [1, d]`` terms over rows (one
    elementwise loop, vectorized over nodes); a per-node [J, K] x [K, d] product is far
    too small for the CPU's GEMM.
    """
    poisoned = jnp.any((coefficients != 0) & ~finite[None, :], axis=1)
    if x.shape[0] > UNROLL_MAX:
        mixed = _small_gemm(coefficients, jnp.where(finite[:, None], x, 0.0))
    else:
        terms = [coefficients[:, k, None] * jnp.where(finite[k], x[k], 0.0)[None, :] for k in range(x.shape[0])]
        mixed = sum_rows(terms)
    return jnp.where(poisoned[:, None], jnp.nan, mixed)


@per_node
def _small_gemm(a, b):
    """``a @ b``, one node at a time."""
    return a @ b


def tie_direction(dim: int):
    """The fixed pseudo-random direction ``u_k = sin(12.9898 k + 78.233)`` of ``tie_key``."""
    return jnp.sin(jnp.arange(dim, dtype=jnp.float32) * 12.9898 + 78.233)


def _finite_or_zero(key):
    return jnp.where(jnp.isfinite(key), key, 0.0)  # non-finite rows are set apart by distances


def tie_key(x):
    """A per-row scalar used to break exact ties by value, not by row index.

    The projection of each row on a fixed pseudo-random direction
    ``u_k = sin(12.9898 k + 78.233)``: equal for identical rows, almost surely different
    otherwise, and shifting every row by the same vector preserves its order. (A
    matrix-vector product: XLA's CPU sum over the last axis of ``x * u`` is scalar code.
    ``inbox_geometry`` computes the same keys, summed in another order.)
    """
    return _finite_or_zero(x @ tie_direction(x.shape[1]))


#: Inboxes of up to this many rows get their distances pair by pair (``_geometry_sums``);
#: larger ones (hubs) through one Gram matrix product.
PAIRWISE_MAX = 16

#: The coordinate axis is cut into about this many chunks by ``_sum_over_coordinates``.
DISTANCE_CHUNKS = 10

#: Chunk widths are multiples of this many float32 lanes (one CPU vector register).
VECTOR_LANES = 8


def _chunked(x, chunks):
    """``x: [K, d]`` zero-padded to ``[K, c, w]``: c <= ``chunks`` chunks of a width w that
    is a multiple of ``VECTOR_LANES`` (zero columns add nothing to any pair's sum)."""
    size, dim = x.shape
    width = -(-max(dim, 1) // chunks)
    width = -(-width // VECTOR_LANES) * VECTOR_LANES
    count = -(-dim // width)
    if count * width != dim:
        x = jnp.pad(x, ((0, 0), (0, count * width - dim)))
    return x.reshape(size, count, width)


@functools.cache
def distance_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(first, second)``, i < j, whose squared distances ``_geometry_sums`` adds up."""
    return np.triu_indices(size, 1)


def _sum_over_coordinates(x, terms):
    """``sum_d terms(x)[:, d]``, for a ``terms`` that maps a chunk of columns ``[K, w]`` of
    ``x`` (and the chunk's index) to rows ``[R, w]``, elementwise along the columns.

    XLA's CPU reductions over the long last axis of a fused computation run one scalar
    at a time. Here the chunks are added elementwise (one vectorized loop, the inbox read
    from cache when called one node at a time), and only one chunk width is left to a
    matrix-vector product.
    """
    chunks = _chunked(x, DISTANCE_CHUNKS)
    total = terms(chunks[:, 0], 0)
    for t in range(1, chunks.shape[1]):
        total = total + terms(chunks[:, t], t)
    return total @ jnp.ones(chunks.shape[2], x.dtype)


def on_cpu_natively(native, portable):
    """``native`` on CPU when the native kernels are built (``_native``), else ``portable``.

    Both take the same arguments and give the same results (up to float32 summation
    order; ``tests/test_native.py``). The choice is made when the program is lowered for
    its device (``jax.lax.platform_dependent``): on a GPU the portable code runs.
    Derivatives (an attack differentiating through a rule) are the portable code's: the
    kernels have none. The kernels compute in float32: inboxes of another dtype
    (float64 under ``jax_enable_x64``, float16) take the portable code. ``args[0]`` is
    the inbox.
    """
    if not _native.available():
        return portable

    @jax.custom_jvp
    def call(*args):
        return jax.lax.platform_dependent(*args, cpu=native, default=portable)

    @call.defjvp
    def _portable_derivative(primals, tangents):
        return jax.jvp(portable, primals, tangents)

    return lambda x, *args: (call if jnp.result_type(x) == jnp.float32 else portable)(x, *args)


def _native_geometry_sums(x):
    """``_geometry_sums`` by the native kernel (one custom call for all nodes)."""
    sums, projections = _native.pair_sums(x, tie_direction(x.shape[1]))
    return sums, _finite_or_zero(projections), jnp.isfinite(projections)


@per_node
def _portable_geometry_sums(x):
    """``_geometry_sums`` in JAX, one node at a time, summed by coordinate chunks."""
    first, second = distance_pairs(x.shape[0])
    direction = _chunked(tie_direction(x.shape[1])[None], DISTANCE_CHUNKS)[0]

    def terms(chunk, t):
        return jnp.concatenate([jnp.square(chunk[first] - chunk[second]), chunk * direction[t][None, :]])

    sums = _sum_over_coordinates(x, terms)
    projections = sums[len(first) :]
    return sums[: len(first)], _finite_or_zero(projections), jnp.isfinite(projections)


def _geometry_sums(x):
    """``(sq_sums, keys, finite)`` from one read of the inbox: ``sum_d (x_i - x_j)^2`` for
    the ``distance_pairs``, ``tie_key(x)``, and which rows have a finite tie-key projection
    (no inf or NaN entry, nor entries so large that the projection overflows). Differences
    of rows, not a Gram matrix, so close vectors do not cancel in float32."""
    return on_cpu_natively(_native_geometry_sums, _portable_geometry_sums)(x)


def _portable_distances_and_keys(x, center):
    norms = row_norms(x - (x[:1] if center is None else center[None, :]))
    return norms, tie_key(x)


def _native_distances_and_keys(x, center):
    squares, projections = _native.center_sums(x, center, tie_direction(x.shape[1]))
    return jnp.where(jnp.isfinite(squares), jnp.sqrt(squares), jnp.inf), _finite_or_zero(projections)


def distances_and_keys(x, center=None):
    """``(||x_k - center||, tie_key(x))`` per row, from one read of the inbox; ``center`` a
    vector [d], or None for row 0 (the node's own vector). Norms are +inf for rows that are
    not finite in float32 (like ``row_norms``).

    On CPU, by the native kernel (``_native``): XLA emits the sum over the long last axis
    of ``(x - center)^2`` as scalar code (2x a read of the inbox), and a center that is
    row 0 reaches the kernel as no operand at all, not a copy of the row per node.
    """
    if center is None:
        native = functools.partial(_native_distances_and_keys, center=None)
        portable = functools.partial(_portable_distances_and_keys, center=None)
        return on_cpu_natively(native, portable)(x)
    return on_cpu_natively(_native_distances_and_keys, _portable_distances_and_keys)(x, center)


def distances_to(x, center):
    """``||x_k - center||`` per row, +inf where not finite in float32 (like
    ``row_norms(x - center)``), summed by coordinate chunks (``_sum_over_coordinates``):
    for per-node code, which reads the inbox from cache."""
    center = _chunked(center[None], DISTANCE_CHUNKS)[0]
    squares = _sum_over_coordinates(x, lambda chunk, t: jnp.square(chunk - center[t][None, :]))
    return jnp.where(jnp.isfinite(squares), jnp.sqrt(squares), jnp.inf)


@per_node
def finite_rows(x):
    """``finite[k]``: every entry of row k is finite (``x * 0`` sums to 0, not NaN)."""
    return jnp.isfinite(_sum_over_coordinates(x, lambda chunk, t: chunk * 0.0))


@per_node
def _gram_geometry(x):
    """Like ``_geometry_sums`` for large inboxes: ``(D, keys, finite)``, D via the Gram
    matrix of ``x - x_0`` (subtracting row 0 keeps float32 from cancelling when vectors
    are close)."""
    centered = x - x[:1]
    gram = centered @ centered.T
    sq_norms = jnp.diagonal(gram)
    distances = jnp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * gram, 0.0)
    return distances, tie_key(x), jnp.all(jnp.isfinite(x), axis=1)


def _sq_distances(x):
    """``(D, keys, finite)``: squared distances (exact between finite rows that do not
    overflow), ``tie_key(x)`` and the finite rows (see ``InboxGeometry``)."""
    size = x.shape[0]
    if size > PAIRWISE_MAX:
        return _gram_geometry(x)
    first, second = distance_pairs(size)
    sums, keys, finite = _geometry_sums(x)
    upper = jnp.zeros((size, size), x.dtype).at[first, second].set(sums)
    return upper + upper.T, keys, finite


class InboxGeometry(NamedTuple):
    """What the distance rules need from one inbox, computed in one pass over it."""

    distances: jax.Array  #: f32[K, K], squared distances, inf from unusable rows
    keys: jax.Array  #: f32[K], ``tie_key(x)``
    finite: jax.Array  #: bool[K], ``finite_rows(x)`` (small inboxes: also False for rows
    #: whose entries are so large, beyond ~1e34, that the tie key overflows)


def inbox_geometry(x, mask) -> InboxGeometry:
    """Squared distances ``D[i, j] = ||x_i - x_j||^2``, tie keys and finite rows of ``x``.

    Rows that are not usable (masked, non-finite, or overflowing: their squared distance
    to row 0 is not finite) are infinitely far from everything (0 from themselves); the
    distance between two finite rows never involves a third row, so no masking is needed
    before the sums.
    """
    distances, keys, finite = _sq_distances(x)
    usable = mask & finite & jnp.isfinite(distances[0])
    far = ~(usable[:, None] & usable[None, :])
    distances = jnp.where(far, jnp.inf, distances)
    return InboxGeometry(jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, distances), keys, finite)


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

    Entries are sorted first, so the sum is taken in value order and is exactly the same
    whatever the order of the inbox rows.
    """
    return window_sum(sort_rows(values.T), 0, k)  # sorted along the original last axis


def combine_rows(x, coefficients, offset=None):
    """``sum_k c_k (x_k - offset)`` over rows with ``c_k != 0``; the others are selected away,
    so NaN or inf in skipped rows (padding, Byzantine rows) cannot leak in.

    Written row by row for small inboxes: an array-wide ``where`` feeding the row sum
    would be materialized, and on CPU that costs more than the sum itself.
    """
    if x.shape[0] > UNROLL_MAX:
        vectors = x if offset is None else x - offset[None, :]
        return jnp.sum(jnp.where((coefficients != 0)[:, None], coefficients[:, None] * vectors, 0.0), axis=0)
    terms = []
    for k in range(x.shape[0]):
        row = x[k] if offset is None else x[k] - offset
        terms.append(jnp.where(coefficients[k] != 0, coefficients[k] * row, 0.0))
    return sum_rows(terms)


def selection_mean(x, selected):
    """Mean of the rows where ``selected`` is True."""
    count = jnp.maximum(jnp.sum(selected), 1).astype(x.dtype)
    return combine_rows(x, selected.astype(x.dtype)) / count


def weighted_mean(x, weights):
    """``sum_j w_j x_j / sum_j w_j``; rows with zero weight are selected away."""
    total = jnp.sum(weights)
    return combine_rows(x, weights) / jnp.where(total > 0, total, 1.0)


# --------------------------------------------------------------------------- clipping


def row_norms(vectors):
    """Euclidean norm per row; +inf for rows that are non-finite or overflow float32."""
    squares = jnp.sum(vectors * vectors, axis=1)
    return jnp.where(jnp.isfinite(squares), jnp.sqrt(squares), jnp.inf)


def clip_factors(norms, radius):
    """Per row, ``min(1, radius / norm)`` from the rows' ``norms`` (``row_norms``,
    ``distances_and_keys``); 0 for rows whose norm is not finite in float32 (inf, NaN, or
    entries beyond ~1e19): float32 cannot say in which direction they lie, so they count
    as zero vectors."""
    factor = jnp.where(norms > radius, radius / jnp.where(norms > 0, norms, 1.0), 1.0)
    return jnp.where(jnp.isfinite(norms), factor, 0.0)


def clipped_sum(x, center, weights, radius, distances=None):
    """``sum_j w_j clip(x_j - center, radius)``, clip(u, t) = u * min(1, t / ||u||);
    ``distances`` are the ``||x_j - center||`` when the caller has them already."""
    if distances is None:
        distances, _ = distances_and_keys(x, center)
    return combine_rows(x, weights * clip_factors(distances, radius), offset=center)
