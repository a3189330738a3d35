"""The subsets an exact subset rule (``mda``, ``smea``) searches: every way to remove f of
the valid rows, enumerated once as removal sets of at most ``largest_f`` rows.

A node's f is traced and lost messages change its valid count, so the table cannot
depend on either: it holds every subset R of the K slots with |R| <= ``largest_f`` (a
Python int), and a node keeps the subsets with R inside its valid rows and |R| = f.
That is sum_{j <= largest_f} C(K, j) candidates (67 at K = 11, f <= 2; 7,547 at K = 21,
f <= 4), not the 2^K of all subsets. ``largest_f`` is the run's largest f
(``Rule.with_largest_f``, set by the engine), else f itself when it is concrete, else
the largest f the inbox admits.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

#: Most candidate subsets an exact subset rule may enumerate per inbox.
SUBSET_LIMIT = 20_000


def removal_count(size: int, largest_f: int) -> int:
    """``sum_{j <= largest_f} C(size, j)``: the candidates of an inbox of ``size`` slots."""
    return sum(math.comb(size, j) for j in range(min(largest_f, size) + 1))


def check_removals(rule: str, size: int, largest_f: int) -> None:
    """Raise ``ValueError`` when the candidates exceed :data:`SUBSET_LIMIT`."""
    count = removal_count(size, largest_f)
    if count > SUBSET_LIMIT:
        raise ValueError(
            f"{rule} with f up to {largest_f} on inboxes of {size} rows would search {count:,} subsets "
            f"(the ways to remove up to {largest_f} of {size} rows), over its limit of {SUBSET_LIMIT:,}. "
            "Use a smaller f or a sparser topology, or 'mda_greedy' (a 2-approximation of mda); under jit with a "
            "traced f, give max_f, the largest f it will be called with (the engine sets it to the run's largest f)."
        )


@functools.cache
def removal_table(size: int, largest_f: int) -> np.ndarray:
    """bool[M, size]: every set of at most ``largest_f`` slots, by size, then in
    ``itertools.combinations`` order (the same relative order in every table)."""
    rows = [np.isin(np.arange(size), chosen) for j in range(largest_f + 1) for chosen in itertools.combinations(range(size), j)]
    return np.stack(rows)


def search_bound(rule: str, size: int, f, max_f: int | None) -> int:
    """The table's ``largest_f``: ``max_f`` when set, else f when concrete, else the largest
    f that 2f + 1 <= size admits; checked against :data:`SUBSET_LIMIT`."""
    if max_f is not None:
        largest = max_f
    elif not isinstance(f, jax.core.Tracer):
        largest = int(f)
    else:
        largest = (size - 1) // 2
    check_removals(rule, size, largest)
    return largest


def kept_subsets(mask, f, largest_f: int):
    """``(members, allowed)``: bool[M, K], the valid rows left by each removal set, and
    bool[M], the removal sets of exactly f valid rows (f <= ``largest_f``)."""
    removed = jnp.asarray(removal_table(mask.shape[0], largest_f))
    allowed = jnp.all(~removed | mask[None, :], axis=1) & (jnp.sum(removed, axis=1) == f)
    return mask[None, :] & ~removed, allowed


class SubsetSearch:
    """What the exact subset rules (``mda``, ``smea``) share beside their ``max_f`` field:
    the subset limit checked with the requirement, and the binding to the run's largest f.
    Listed before ``Rule`` among the bases."""

    def check(self, inbox_size: int, f: int, *, node: int | None = None) -> None:
        super().check(inbox_size, f, node=node)
        check_removals(self.name, inbox_size, f if self.max_f is None else max(self.max_f, f))

    def with_largest_f(self, f: int):
        return self if self.max_f is not None else dataclasses.replace(self, max_f=f)
