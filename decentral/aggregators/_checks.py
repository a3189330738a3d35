"""Input checks of one inbox: the requirement ``count >= min_count(f)`` with its message,
the shapes and dtypes of ``x``, ``mask`` and ``weights``, the normalised mixing weights,
and the requirement functions the built-in rules state.

Everything here works on ONE node's inbox ``x: f32[K, d]`` (row 0 = the node's own
vector). Checks run where values are concrete (eager calls, the engine before
compilation); under ``jit`` nothing is left to check.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

MinCount = Callable[[int], int]


# --------------------------------------------------------------------------- requirements


def one(f):
    """One valid row, whatever ``f`` (the rule needs only the node's own vector)."""
    del f
    return 1


def f_plus_one(f):
    return f + 1


def two_f_plus_one(f):
    return 2 * f + 1


def two_f_plus_three(f):
    return 2 * f + 3


def four_f_plus_three(f):
    return 4 * f + 3


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


# --------------------------------------------------------------------------- one inbox


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
