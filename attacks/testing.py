"""The contract suite every attack must pass, for ours and for users' own.

    >>> import attacks
    >>> from attacks.testing import check_attack
    >>> check_attack(attacks.resolve("alie"))          # raises AssertionError on a breach

:func:`check_attack` builds one small scenario (a population of 8 nodes on a ring with
chords, nodes 6 and 7 Byzantine with NaN parameters that ``prepare`` must ignore;
receivers 0..3 with inboxes of 8 slots: 4 valid honest
rows after the receiver's own, one masked honest row holding NaN, two valid Byzantine
slots and one masked Byzantine slot holding 1e6), runs ``init``/``prepare`` and every
check of :data:`CHECKS`:

- shape and dtype of ``(inbox, mask)``;
- honest rows, masked rows and their mask bits are untouched, bit for bit;
- ``jit`` (spec, key, inputs and context traced) equals the eager call;
- ``vmap`` over receivers (``attacks.apply``) equals receiver-by-receiver calls;
- no recompilation when only numeric parameters, inputs, keys or the round change;
- Byzantine rows are finite where the spec claims it (``finite``);
- outside ``[start_round, stop_round)``, or without Byzantine slots, nothing changes.

It imports only numpy and JAX (no ``decentral``): optimal modes are checked against a
masked weighted mean unless ``rule=`` gives another ``rule(inbox, mask, weights)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Attack, apply
from ._view import Context, Graph

__all__ = ["CHECKS", "Case", "check_attack", "make_case", "masked_mean_rule"]


def masked_mean_rule(inbox, mask, weights):
    """Weighted mean of the valid rows (NaN-safe): the default ``ctx.rule`` of the suite."""
    w = jnp.ones(mask.shape, jnp.float32) if weights is None else weights
    w = jnp.where(mask, w, 0.0)
    return jnp.where(mask[:, None], inbox, 0.0).T @ w / jnp.sum(w)


class Case(NamedTuple):
    """The suite's scenario: a block of receivers and one shared context."""

    keys: Any  # [B] keys
    inboxes: np.ndarray  # f32[B, K, d]
    byz_slots: np.ndarray  # bool[B, K]
    masks: np.ndarray  # bool[B, K]
    weights: np.ndarray  # f32[B, K]
    nodes: np.ndarray  # int32[B]
    ctx: Context
    jitted: Any  # jax.jit of one receiver's call, the spec an argument

    def call(self, spec, b: int, ctx: Context | None = None):
        """Receiver ``b``'s call, jitted (``check_jit_matches_eager`` checks it equals eager)."""
        return self.jitted(spec, *self.receiver(b, ctx))

    def receiver(self, b: int, ctx: Context | None = None):
        """The arguments of receiver ``b``'s call."""
        ctx = self.ctx if ctx is None else ctx
        return (self.keys[b], self.inboxes[b], self.byz_slots[b], self.masks[b], self.weights[b], ctx.replace(node=int(self.nodes[b])))


def _graph(n=8):
    edges = [(i, (i + 1) % n) for i in range(n)] + [(i, (i + 3) % n) for i in range(0, n, 2)]
    edges += [(v, u) for u, v in edges]
    honest = np.ones(n, dtype=bool)
    honest[[6, 7]] = False
    return Graph(honest=honest, edges=np.array(edges, dtype=np.int32))


def make_case(spec: Attack, *, rule=None, inbox_size: int = 8, dim: int = 5, seed: int = 0, receivers: int = 4) -> Case:
    """Build the scenario of :func:`check_attack` (runs ``spec.init`` and ``spec.prepare``)."""
    if inbox_size < 8:
        raise ValueError("make_case: inbox_size must be >= 8 (4 honest, 1 masked honest, 2 Byzantine, 1 masked Byzantine).")
    rng = np.random.default_rng(seed)
    graph = _graph()
    params = rng.normal(size=(graph.n, dim)).astype(np.float32)
    params[~graph.honest] = np.nan  # prepare must ignore the Byzantine nodes' rows
    state = spec.init(graph, dim)
    extra, _ = spec.prepare(jax.random.key(seed + 1), jnp.asarray(params), graph, state)
    ctx = Context(round=3, node=0, rule=masked_mean_rule if rule is None else rule, extra=extra)

    size = inbox_size
    inboxes = rng.normal(size=(receivers, size, dim)).astype(np.float32)
    nodes = np.arange(receivers, dtype=np.int32)
    inboxes[:, 0] = params[nodes]
    byz = np.zeros((receivers, size), dtype=bool)
    byz[:, size - 3 :] = True
    masks = np.ones((receivers, size), dtype=bool)
    masks[:, size - 4] = False  # a masked honest slot
    masks[:, size - 1] = False  # a masked Byzantine slot
    inboxes[:, size - 4] = np.nan
    inboxes[:, size - 1] = 1e6
    weights = rng.uniform(0.5, 1.5, size=(receivers, size)).astype(np.float32)
    keys = jax.random.split(jax.random.key(seed), receivers)
    jitted = jax.jit(lambda s, k, x, b, m, w, c: s(k, x, b, m, w, c))
    return Case(keys, inboxes, byz, masks, weights, nodes, ctx, jitted)


def _assert_same(actual, expected, what):
    np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=what)


def _close(actual, expected, what):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=what)


def check_shape_and_dtype(spec, case):
    """The call returns (f32[K, d], bool[K])."""
    inbox, mask = case.call(spec, 0)
    size, dim = case.inboxes.shape[1:]
    assert inbox.shape == (size, dim) and inbox.dtype == jnp.float32, f"{spec.name}: inbox out {inbox.dtype}{inbox.shape}"
    assert mask.shape == (size,) and mask.dtype == jnp.bool_, f"{spec.name}: mask out {mask.dtype}{mask.shape}"


def check_untouched(spec, case):
    """Honest rows, masked rows and their mask bits come back bit for bit."""
    for b in range(len(case.nodes)):
        inbox, mask = case.call(spec, b)
        keep = ~(case.byz_slots[b] & case.masks[b])
        _assert_same(np.asarray(inbox)[keep], case.inboxes[b][keep], f"{spec.name}: an honest or masked row changed")
        _assert_same(np.asarray(mask)[keep], case.masks[b][keep], f"{spec.name}: an honest or masked mask bit changed")


def check_jit_matches_eager(spec, case):
    """jit (spec, key, inputs and context as arguments) equals the eager call."""
    args = case.receiver(1)
    eager = spec(*args)
    jitted = case.jitted(spec, *args)
    _close(jitted[0], eager[0], f"{spec.name}: jit differs from eager")
    _assert_same(jitted[1], eager[1], f"{spec.name}: jit mask differs from eager")


_apply = jax.jit(apply)


def check_vmap_over_receivers(spec, case):
    """attacks.apply (vmap over receivers, each with its ctx.node) equals per-receiver (jitted) calls."""
    batched = _apply(spec, case.keys, case.inboxes, case.byz_slots, case.masks, case.weights, case.ctx, case.nodes)
    for b in range(len(case.nodes)):
        single = case.call(spec, b)
        _close(batched[0][b], single[0], f"{spec.name}: vmap differs at receiver {b}")
        _assert_same(batched[1][b], single[1], f"{spec.name}: vmap mask differs at receiver {b}")


def _scaled(spec):
    """The spec with every floating-point parameter multiplied by 1.5 (same structure)."""

    def scale(leaf):
        if isinstance(leaf, float) or (hasattr(leaf, "dtype") and jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating)):
            return leaf * 1.5
        return leaf

    return jax.tree.map(scale, spec)


def check_no_recompilation(spec, case):
    """New numeric parameters, inputs, keys and round reuse the compilation."""
    before = case.jitted._cache_size()
    jax.block_until_ready(case.jitted(spec, *case.receiver(0)))
    after_first = case.jitted._cache_size()
    other = _scaled(spec)
    args = list(case.receiver(2, case.ctx.replace(round=4)))
    jax.block_until_ready(case.jitted(other, *args))
    assert case.jitted._cache_size() == after_first, (
        f"{spec.name}: recompiled when only numeric parameters, inputs or the round changed "
        f"({case.jitted._cache_size() - before} compilations)"
    )


def check_finite(spec, case):
    """Byzantine rows are finite on finite honest inputs, where the spec claims it."""
    if not spec.finite:
        return
    for b in range(len(case.nodes)):
        inbox, _ = case.call(spec, b)
        rows = np.asarray(inbox)[case.byz_slots[b] & case.masks[b]]
        assert np.all(np.isfinite(rows)), f"{spec.name}: non-finite Byzantine rows {rows}"


def check_timing_and_no_byzantine(spec, case):
    """Before start_round, from stop_round on, or with no Byzantine slot, nothing changes."""
    round_ = int(case.ctx.round)
    args = case.receiver(3)
    for changes in ({"start_round": round_ + 1}, {"stop_round": round_}):
        quiet = dataclasses.replace(spec, **changes)
        inbox, mask = case.jitted(quiet, *args)
        _assert_same(inbox, args[1], f"{spec.name}: acted outside [start_round, stop_round) ({changes})")
        _assert_same(mask, args[3], f"{spec.name}: changed the mask outside [start_round, stop_round)")
    none = list(args)
    none[2] = np.zeros_like(args[2])
    inbox, mask = case.jitted(spec, *none)
    _assert_same(inbox, args[1], f"{spec.name}: changed an inbox without Byzantine slots")
    _assert_same(mask, args[3], f"{spec.name}: changed the mask of an inbox without Byzantine slots")


CHECKS = (
    check_shape_and_dtype,
    check_untouched,
    check_jit_matches_eager,
    check_vmap_over_receivers,
    check_no_recompilation,
    check_finite,
    check_timing_and_no_byzantine,
)


def check_attack(spec: Attack, *, rule=None, inbox_size: int = 8, dim: int = 5, seed: int = 0) -> None:
    """Run every check of :data:`CHECKS` on ``spec``; raise AssertionError on a breach.

    Args:
      spec: an attack spec (a registered one, or a user's ``attacks.register``-ed spec).
      rule: ``ctx.rule`` for optimal modes (default: :func:`masked_mean_rule`).
      inbox_size: K >= 8. dim: d. seed: numpy and JAX seed of the scenario.
    """
    case = make_case(spec, rule=rule, inbox_size=inbox_size, dim=dim, seed=seed)
    for check in CHECKS:
        check(spec, case)
