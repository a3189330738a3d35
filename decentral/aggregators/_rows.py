"""Row algebra over one inbox on the CPU: sums, picks, sorting networks, coordinate-wise
windows (trimmed sums, medians, the window closest to a centre).

On CPU, XLA fuses elementwise ops over [d] rows into one loop, but a reduction over the
short inbox axis whose input is computed (a sorting network, a selection) re-evaluates
that input per output element. So for inboxes of up to ``UNROLL_MAX`` rows every
reduction over rows is written as an unrolled chain of elementwise ops on a Python list
of rows; larger inboxes (hubs of scale-free graphs) use array reductions, which compile
fast at any size. The functions take and give either form (see ``as_rows``).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

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

    Small K: an unrolled sorting network of elementwise compare-exchanges, as XLA's CPU
    sort along a short axis is a generic comparator sort, measured ~100x slower. NaN
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


def sorted_valid(x, mask):
    """``x: [K, d]`` sorted per coordinate, valid values first, NaN and invalid rows as
    +inf at the end (``sortable``, then ``sort_rows``)."""
    return sort_rows(sortable(x, mask))

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

