"""Every rule in ``decentral.aggregators`` against the plain-numpy references.

One table (``CASES``) of rule + hyperparameters; every test is parametrized over it.
The references live in ``tests/reference_aggregators.py`` and were written from the
papers' definitions, independently of the JAX code.

Tolerances: JAX computes in float32 and the references in float64 on the same
float32-rounded inputs, so ``rtol = atol = 1e-4`` (about 1e3 float32 ulps: enough for
the 8 Weiszfeld or 3 clipping iterations, tight enough that picking a different row or
value, an O(1) error on unit-normal data, fails). With +-1e6 outliers, a rule that
legitimately averages them (``mean``, and ``multi_krum`` with m >= count) carries
float32 rounding of about eps32 * 1e6 ~ 0.1 into an O(1) result (+1e6 and -1e6
cancel), so its atol grows with the largest valid magnitude
(``OUTLIER_ATOL_PER_SCALE``). The robust rules drop or clip those rows, so they keep
the tight tolerance: an implementation that lets 1e6 leak in through cancellation
(e.g. a kept-rows sum computed as the total minus the dropped rows, or a cumsum over
sorted values) fails there on purpose.

Ties: Krum, Multi-Krum and Bulyan score rows by their k nearest distances; with k = 1
(Krum "paper" at count = f+3, every Bulyan run with f >= 1 in its last selection steps)
the two rows of the closest pair always tie, and Aksel "mid" on two rows keeps one of
two rows equidistant from their midpoint. The definitions leave these winners open, so
the JAX result may match any result of ``ref.candidates`` (one per tie-break).

Eager calls use concrete masks with at least min_count valid rows (the rules may
validate concrete values and raise before compiling); "fewer than min_count valid rows
returns x[0]" is tested under jit.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg
import reference_aggregators as ref

RTOL = 1e-4
ATOL = 1e-4
OUTLIER_ATOL_PER_SCALE = {"mean": 1e-6, "multi_krum[m=20]": 1e-6}  # m >= count: a mean

# JAX compiles once per shape and pytree structure, and compiling dominates the run
# time, so each rule sees three fixed shapes, covering K in {5, 7, 11}, d in {3, 16}:
EAGER_SHAPE = (5, 3)  # eager calls, concrete f
JIT_SHAPE = (7, 16)  # jit of one inbox, f traced
VMAP_SHAPE = (6, 11, 3)  # jit(vmap) over 6 nodes' inboxes, per-node f, mask, weights
# Weighted rules always get a weights array under jit (uniform where the test needs
# it), so that each jitted function compiles once.


def _start(d):
    """A fixed starting point for the iterative rules that accept ``start``."""
    return np.linspace(-0.5, 0.5, d).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    hyper: tuple = ()
    weighted: bool = False
    pre: bool = False

    @property
    def id(self):
        if not self.hyper:
            return self.name
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in self.hyper) + "]"

    def resolved(self, d):
        """Hyperparameters as keyword arguments; ``start="fixed"`` becomes a [d] vector."""
        out = dict(self.hyper)
        if out.get("start") == "fixed":
            out["start"] = _start(d)
        return out

    def min_count(self, f):
        return ref.MIN_COUNT[self.name](f, **dict(self.hyper))


def case(name, weighted=False, pre=False, **hyper):
    return Case(name, tuple(sorted(hyper.items())), weighted, pre)


CASES = [
    case("mean", weighted=True),
    case("median"),
    case("trimmed_mean"),
    case("meamed"),
    case("phocas"),
    case("krum", variant="paper"),
    case("krum", variant="byzfl"),
    case("multi_krum"),
    case("multi_krum", m=2, variant="byzfl"),
    case("multi_krum", m=20),
    case("bulyan"),
    case("geometric_median", weighted=True, iterations=8, smoothing=0.1),
    case("geometric_median", weighted=True, iterations=3, smoothing=1.0, start="fixed"),
    case("geometric_median", weighted=True, iterations=8, smoothing=0.1, initial="zero"),
    case("centered_clipping", weighted=True, radius=1.0),
    case("centered_clipping", weighted=True, radius=0.5, iterations=3, start="fixed"),
    case("mda"),
    case("mda_greedy"),
    case("cge", around="zero"),
    case("cge", around="own"),
    case("aksel", mode="mid"),
    case("aksel", mode="n-f"),
    case("nna"),
    case("ios", weighted=True),
    case("clipped_gossip", weighted=True),
    case("clipped_gossip", weighted=True, radius=0.5),
    case("cs_plus", weighted=True, step_size=1.0),
    case("cs_plus", weighted=True, step_size=0.3),
    case("nnm", pre=True),
    case("arc", pre=True, around="zero"),
    case("arc", pre=True, around="own"),
    case("clip", pre=True, radius=1.0),
    case("clip", pre=True, radius=1.0, around="own"),
]

WEIGHTED_CASES = [c for c in CASES if c.weighted]

per_case = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
per_weighted_case = pytest.mark.parametrize(
    "case", WEIGHTED_CASES, ids=[c.id for c in WEIGHTED_CASES]
)


# --------------------------------------------------------------------------- #
# Inputs


def _allowed_f(case, k):
    """f in {0, 1, 2} whose minimum count fits an inbox of k rows."""
    return [f for f in (0, 1, 2) if case.min_count(f) <= k]


def _random_mask(rng, k, keep_at_least, allow_degenerate=True):
    """Mask some rows other than 0, usually keeping ``keep_at_least`` valid rows.

    When no row can be spared, one is masked anyway (a degenerate inbox) unless
    ``allow_degenerate`` is False, in which case nothing is masked.
    """
    mask = np.ones(k, dtype=bool)
    spare = k - max(keep_at_least, 1)
    if spare < 1 and not allow_degenerate:
        return mask
    n_off = int(rng.integers(1, spare + 1)) if spare >= 1 else 1
    off = rng.choice(np.arange(1, k), size=min(n_off, k - 1), replace=False)
    mask[off] = False
    return mask


def _fill_invalid(x, weights, mask, fill):
    """Garbage in the masked rows: the result must not depend on them."""
    x = x.copy()
    x[~mask] = fill
    if weights is not None:
        weights = weights.copy()
        weights[~mask] = 1e3
    return x, weights


def _weights(rng, k):
    return rng.uniform(0.5, 1.5, size=k).astype(np.float32)


def _random_inputs(case, rng, k, d, f, masked, fill=np.nan, allow_degenerate=True):
    x = rng.normal(size=(k, d)).astype(np.float32)
    weights = _weights(rng, k) if case.weighted else None
    mask = np.ones(k, dtype=bool)
    if masked:
        mask = _random_mask(rng, k, case.min_count(f), allow_degenerate)
    x, weights = _fill_invalid(x, weights, mask, fill)
    return x, mask, weights


# --------------------------------------------------------------------------- #
# Calling the JAX rule and the reference


def _rule(case):
    fn = getattr(agg, case.name, None)
    if fn is None:
        pytest.fail(f"decentral.aggregators has no rule named {case.name!r}")
    return fn


@functools.lru_cache(maxsize=None)
def _jitted(case, d):
    """jit with f, mask and weights traced; structural hyperparameters closed over."""
    fn = _rule(case)
    hyper = case.resolved(d)

    def call(x, f, mask, weights):
        return fn(x, f=f, mask=mask, weights=weights, **hyper)

    return jax.jit(call)


@functools.lru_cache(maxsize=None)
def _vmapped(case, d):
    fn = _rule(case)
    hyper = case.resolved(d)

    def call(x, f, mask, weights):
        return fn(x, f=f, mask=mask, weights=weights, **hyper)

    return jax.jit(jax.vmap(call))


def _run_jit(case, x, f, mask, weights):
    return _jitted(case, x.shape[1])(
        jnp.asarray(x),
        jnp.asarray(f, dtype=jnp.int32),
        jnp.asarray(mask),
        None if weights is None else jnp.asarray(weights),
    )


def _run_vmap(case, xs, fs, masks, ws):
    return _vmapped(case, xs[0].shape[1])(
        jnp.asarray(np.stack(xs)),
        jnp.asarray(fs, dtype=jnp.int32),
        jnp.asarray(np.stack(masks)),
        jnp.asarray(np.stack(ws)) if case.weighted else None,
    )


def _node(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _reference(case, x, f, mask, weights):
    fn = ref.PRE_AGGREGATORS[case.name] if case.pre else ref.AGGREGATORS[case.name]
    return fn(x.astype(np.float64), f=f, mask=mask, weights=weights, **case.resolved(x.shape[1]))


def _scale(case, x, mask):
    """Extra atol for rules that legitimately average huge values (see module doc)."""
    per = OUTLIER_ATOL_PER_SCALE.get(case.id, 0.0)
    return per * float(np.max(np.abs(x[mask])))


def _check(case, got, x, f, mask, weights, what=""):
    """Compare a JAX result with the reference on the same inputs.

    Aggregators may match any result of ``ref.candidates`` (tie-breaks, module doc).
    Pre-aggregators: the mask exactly, the valid rows of x, and the weights exactly.
    """
    atol = ATOL + _scale(case, x, mask)
    msg = f"{case.id} f={f} mask={mask.astype(int)} {what}"
    if not case.pre:
        got = np.asarray(got)
        assert got.shape == (x.shape[1],), msg
        assert got.dtype == np.float32, msg
        allowed = ref.candidates(
            case.name, x.astype(np.float64), f=f, mask=mask, weights=weights,
            **case.resolved(x.shape[1]),
        )
        if any(np.allclose(got, e, rtol=RTOL, atol=atol) for e in allowed[1:]):
            return
        np.testing.assert_allclose(
            got, allowed[0], rtol=RTOL, atol=atol,
            err_msg=msg + (f" (matches none of {len(allowed)} tie-breaks)" if len(allowed) > 1 else ""),
        )
        return
    expected = _reference(case, x, f, mask, weights)
    got_x, got_mask, got_w = got
    exp_x, exp_mask, exp_w = expected
    got_x = np.asarray(got_x)
    assert got_x.shape == x.shape, msg
    np.testing.assert_array_equal(np.asarray(got_mask, dtype=bool), exp_mask, err_msg=msg)
    np.testing.assert_allclose(
        got_x[exp_mask], exp_x[exp_mask], rtol=RTOL, atol=atol, err_msg=msg
    )
    if got_w is not None or weights is not None:
        assert got_w is not None, msg + ": weights were given but none came back"
        np.testing.assert_allclose(
            np.asarray(got_w)[exp_mask], exp_w[exp_mask], rtol=0, atol=0, err_msg=msg
        )


# --------------------------------------------------------------------------- #
# Random inputs


@per_case
def test_random_eager(case):
    """Eager calls, concrete f, with mask=None/weights=None and with masks + garbage rows.

    Eager masks keep at least min_count(f) valid rows: with concrete values the rules may
    validate and raise before compiling; the degenerate case is tested under jit below.
    """
    rng = np.random.default_rng(1)
    k, d = EAGER_SHAPE
    fn = _rule(case)
    hyper = case.resolved(d)
    fs = _allowed_f(case, k)
    x, mask, weights = _random_inputs(case, rng, k, d, fs[-1], masked=False)
    got = fn(jnp.asarray(x), f=fs[-1], **hyper)
    _check(case, got, x, fs[-1], mask, None, "eager, no mask, no weights")
    for f, fill in ((fs[-1], np.nan), (fs[0], 1e6)):
        x, mask, weights = _random_inputs(
            case, rng, k, d, f, masked=True, fill=fill, allow_degenerate=False
        )
        w = None if weights is None else jnp.asarray(weights)
        got = fn(jnp.asarray(x), f=f, mask=jnp.asarray(mask), weights=w, **hyper)
        _check(case, got, x, f, mask, weights, f"eager, fill={fill}")


@per_case
def test_random_jit(case):
    """Under jit with f traced: full inboxes and masked ones (NaN / 1e6 in masked rows)."""
    k, d = JIT_SHAPE
    rng = np.random.default_rng(100)
    for f in _allowed_f(case, k):
        for trial, (masked, fill) in enumerate([(False, 0.0), (True, np.nan), (True, 1e6)]):
            x, mask, weights = _random_inputs(case, rng, k, d, f, masked, fill)
            got = _run_jit(case, x, f, mask, weights)
            _check(case, got, x, f, mask, weights, f"jit trial {trial}")


@per_weighted_case
def test_nan_weights_in_masked_rows(case):
    """Masked rows are ignored completely: NaN in their weights must not leak."""
    rng = np.random.default_rng(7)
    k, d = JIT_SHAPE
    f = max(_allowed_f(case, k))
    x, mask, weights = _random_inputs(case, rng, k, d, f, masked=True, fill=np.nan)
    weights[~mask] = np.nan
    got = _run_jit(case, x, f, mask, weights)
    _check(case, got, x, f, mask, weights, "NaN weights in masked rows")


# --------------------------------------------------------------------------- #
# Adversarial inputs


def _outliers(rng, k, d, f):
    x = rng.normal(size=(k, d)).astype(np.float32)
    rows = rng.choice(np.arange(1, k), size=f, replace=False)
    x[rows] = 1e6 * rng.choice([-1.0, 1.0], size=(f, d))
    return x


def _duplicates(rng, k, d, f):
    x = rng.normal(size=(k, d)).astype(np.float32)
    x[2] = x[1]  # two honest copies
    x[3] = x[0]  # a copy of the node's own vector
    x[k - f :] = x[0] + 3.0  # f colluding rows sending one vector
    return x


def _identical(rng, k, d, f):
    return np.tile(rng.normal(size=(1, d)).astype(np.float32), (k, 1))


ADVERSARIAL = {"outliers": _outliers, "duplicates": _duplicates, "identical": _identical}


def _adversarial_inbox(case, kind, rng, k, d, f, masked):
    """An adversarial inbox; ``masked`` also masks one honest row (filled with NaN)."""
    x = ADVERSARIAL[kind](rng, k, d, f)
    # Random weights with outliers. With duplicates, uniform weights keep the ties
    # between identical rows harmless (their order then never matters).
    weights = _weights(rng, k) if kind == "outliers" else np.ones(k, dtype=np.float32)
    mask = np.ones(k, dtype=bool)
    if masked:
        mask[k - f - 1] = False
    x, weights = _fill_invalid(x, weights, mask, np.nan)
    return x, mask, (weights if case.weighted else None)


@per_case
@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_adversarial_jit(case, kind):
    """f=1 row at +-1e6, duplicated rows, all-identical rows; with and without a mask."""
    rng = np.random.default_rng(list(ADVERSARIAL).index(kind))
    k, d = JIT_SHAPE
    f = 1 if case.min_count(1) <= k else 0
    for masked in (False, True):
        x, mask, w = _adversarial_inbox(case, kind, rng, k, d, f, masked)
        _check(case, _run_jit(case, x, f, mask, w), x, f, mask, w, f"{kind} masked={masked}")


@per_case
def test_adversarial_vmap(case):
    """The adversarial inboxes with f=2 (K=11), one node each, under jit(vmap)."""
    rng = np.random.default_rng(21)
    n, k, d = VMAP_SHAPE
    f = max(_allowed_f(case, k))
    nodes = [(kind, masked) for kind in ADVERSARIAL for masked in (False, True)]
    assert len(nodes) == n
    inboxes = [_adversarial_inbox(case, kind, rng, k, d, f, m) for kind, m in nodes]
    xs, masks, ws = (list(t) for t in zip(*inboxes))
    got = _run_vmap(case, xs, [f] * n, masks, ws)
    for i, (kind, masked) in enumerate(nodes):
        _check(case, _node(got, i), xs[i], f, masks[i], ws[i], f"{kind} masked={masked}")


@pytest.mark.parametrize("name", ["meamed", "phocas"])
def test_equal_distance_keeps_lower_value(name):
    """Exact tie (integers, exact in float32): the lower value is kept first."""
    case = Case(name)
    # Column 0: 0..4 around c=2 with f=1 keeps {2,1,3} and then 0 (not 4): mean 1.5.
    # Column 1: the same values in reverse row order. Column 2: no tie.
    x = np.array(
        [[0, 4, 0.0], [1, 3, 1.5], [2, 2, 2.0], [3, 1, 2.25], [4, 0, 9.0]], dtype=np.float32
    )
    mask = np.ones(5, dtype=bool)
    expected = _reference(case, x, 1, mask, None)
    np.testing.assert_allclose(expected[:2], [1.5, 1.5])
    got = _rule(case)(jnp.asarray(x), f=1)
    _check(case, got, x, 1, mask, None, "tie")


# --------------------------------------------------------------------------- #
# vmap over nodes, degenerate inboxes


@per_case
def test_vmap_over_nodes(case):
    """jit(vmap) over a batch of inboxes with per-node f, masks and weights."""
    rng = np.random.default_rng(11)
    n, k, d = VMAP_SHAPE
    fs = _allowed_f(case, k)
    for batch in range(3):
        xs, masks, ws, f_nodes = [], [], [], []
        for node in range(n):
            f = fs[(node + batch) % len(fs)]
            fill = np.nan if node % 2 else 1e6
            masked = (node + batch) % 3 != 0
            x, mask, w = _random_inputs(case, rng, k, d, f, masked, fill)
            xs.append(x), masks.append(mask), ws.append(w), f_nodes.append(f)
        got = _run_vmap(case, xs, f_nodes, masks, ws)
        for i in range(n):
            what = f"batch {batch} node {i}"
            _check(case, _node(got, i), xs[i], f_nodes[i], masks[i], ws[i], what)


DEGENERATE_CASES = [c for c in CASES if any(c.min_count(f) > 1 for f in (1, 2, 3))]


@pytest.mark.parametrize("case", DEGENERATE_CASES, ids=[c.id for c in DEGENERATE_CASES])
def test_too_few_valid_rows_returns_own_vector(case):
    """Under jit, count = min_count(f) - 1 valid rows: x[0] exactly (pre: inputs unchanged)."""
    rng = np.random.default_rng(5)
    k, d = JIT_SHAPE
    f = max(f for f in (1, 2, 3) if 1 < case.min_count(f) <= k)
    count = case.min_count(f) - 1
    x = rng.normal(size=(k, d)).astype(np.float32)
    weights = _weights(rng, k) if case.weighted else None
    mask = np.zeros(k, dtype=bool)
    mask[:count] = True
    x, weights = _fill_invalid(x, weights, mask, np.nan)
    got = _run_jit(case, x, f, mask, weights)
    if case.pre:
        got_x, got_mask, got_w = got
        np.testing.assert_array_equal(np.asarray(got_x)[mask], x[mask])
        np.testing.assert_array_equal(np.asarray(got_mask, dtype=bool), mask)
        if weights is not None:
            np.testing.assert_array_equal(np.asarray(got_w)[mask], weights[mask])
    else:
        np.testing.assert_array_equal(np.asarray(got), x[0])
    _check(case, got, x, f, mask, weights, "degenerate")


# --------------------------------------------------------------------------- #
# Bucketing: random, so checked by properties


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_bucketing_properties(size, weighted):
    """Row 0 kept, groups of ``size`` averaged, weights summed (``ref.check_bucketing``)."""
    rng = np.random.default_rng(size)
    k, d = JIT_SHAPE
    fn = getattr(agg, "bucketing", None)
    if fn is None:
        pytest.fail("decentral.aggregators has no rule named 'bucketing'")
    jitted = jax.jit(lambda x, mask, w, key: fn(x, mask=mask, weights=w, key=key, size=size))
    for seed in range(3):
        x = rng.normal(size=(k, d)).astype(np.float32)
        weights = _weights(rng, k) if weighted else None
        mask = np.ones(k, dtype=bool) if seed == 0 else _random_mask(rng, k, 2)
        x, weights = _fill_invalid(x, weights, mask, np.nan)
        w = None if weights is None else jnp.asarray(weights)
        key = jax.random.key(seed)
        outs = [fn(jnp.asarray(x), mask=jnp.asarray(mask), weights=w, key=key, size=size)]
        if weighted:  # jit once per size (compiling is the slow part)
            outs.append(jitted(jnp.asarray(x), jnp.asarray(mask), w, key))
        for out in outs:
            out_x, out_mask, out_w = out
            ref.check_bucketing(
                x, mask, weights, size, np.asarray(out_x), np.asarray(out_mask),
                None if out_w is None else np.asarray(out_w),
            )


# --------------------------------------------------------------------------- #
# Self-checks of the references (numpy only): hand-computed values and identities


def test_reference_hand_computed_values():
    line = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # ClippedGossip, f=1, uniform w=0.2: delta=0.2, kept prefix cum<=0.8 = rows 0..3,
    # tau = sqrt(0.2*(0+1+4+9)/0.2) = sqrt(14); x0 + 0.2*(1+2+3+sqrt(14)).
    np.testing.assert_allclose(ref.clipped_gossip(line, f=1), [0.2 * (6 + math.sqrt(14))])
    # CS+, f=1: 1-2delta=0.6 -> rows 0,1,2 -> tau=2; 0 - 0.2*(-1-2-2-2) = 1.4.
    np.testing.assert_allclose(ref.cs_plus(line, f=1, step_size=1.0), [1.4])
    # ARC, f=1, n=5: k=floor(2*1*4/5)=1, tau = 2nd largest norm = 3; 10 -> 3.
    out, _, _ = ref.arc(line, f=1)
    np.testing.assert_allclose(out[:, 0], [0, 1, 2, 3, 3])
    # Trimmed mean f=1 drops 0 and 10; median 2; meamed f=1 keeps 2,1,3,0 -> 1.5.
    np.testing.assert_allclose(ref.trimmed_mean(line, f=1), [2.0])
    np.testing.assert_allclose(ref.median(line[:4], f=1), [1.5])
    np.testing.assert_allclose(ref.meamed(line, f=1), [1.5])
    # IOS f=1: mu=3.2, farthest = 10 removed -> mean(0,1,2,3) = 1.5.
    np.testing.assert_allclose(ref.ios(line, f=1), [1.5])
    # MDA f=1: drop 10 -> 1.5. NNA f=1 around 0: 0,1,2,3 -> 1.5. CGE f=1 same.
    for rule in (ref.mda, ref.mda_greedy, ref.nna, ref.cge):
        np.testing.assert_allclose(rule(line, f=1), [1.5])
    # Krum on [0, 1, 2.5, 3, 10], f=1, k=n-f-2=2: scores 7.25, 3.25, 2.5, 4.25, 105.25
    # -> 2.5; "byzfl" k=3: 16.25, 7.25, 8.75, 13.25, 161.25 -> 1.0; Multi-Krum m=2 -> 1.75.
    uneven = np.array([[0.0], [1.0], [2.5], [3.0], [10.0]])
    np.testing.assert_allclose(ref.krum(uneven, f=1, variant="paper"), [2.5])
    np.testing.assert_allclose(ref.krum(uneven, f=1, variant="byzfl"), [1.0])
    np.testing.assert_allclose(ref.multi_krum(uneven, f=1, m=2), [1.75])
    # Weighted mean.
    np.testing.assert_allclose(ref.mean(line[:2], weights=[3.0, 1.0]), [0.25])
    # Geometric median of three collinear points (tiny smoothing): the middle one.
    np.testing.assert_allclose(
        ref.geometric_median(line[[0, 1, 4]], iterations=200, smoothing=1e-9), [1.0], atol=1e-6
    )


def test_reference_identities():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 4))
    w = rng.uniform(0.5, 1.5, size=7)
    avg, wavg = x.mean(axis=0), (w[:, None] * x).sum(axis=0) / w.sum()
    for rule in (ref.trimmed_mean, ref.meamed, ref.phocas, ref.multi_krum, ref.bulyan,
                 ref.mda, ref.mda_greedy, ref.cge, ref.nna):
        np.testing.assert_allclose(rule(x, f=0), avg, err_msg=rule.__name__)
    np.testing.assert_allclose(ref.median(x), np.median(x, axis=0))
    for out in (
        ref.ios(x, f=0, weights=w),
        ref.clipped_gossip(x, f=0, weights=w),
        ref.clipped_gossip(x, weights=w, radius=1e9),
        ref.cs_plus(x, f=0, weights=w, step_size=1.0),
        ref.centered_clipping(x, weights=w, radius=1e9),
        ref.mean(x, weights=w),
    ):
        np.testing.assert_allclose(out, wavg)
    # Masked rows are never read.
    mask = np.array([1, 1, 0, 1, 1, 0, 1], dtype=bool)
    junk = x.copy()
    junk[~mask] = np.nan
    for name, rule in ref.AGGREGATORS.items():
        hyper = {"geometric_median": dict(iterations=3, smoothing=0.1),
                 "centered_clipping": dict(radius=1.0), "cs_plus": dict(step_size=1.0)}
        out = rule(junk, f=1, mask=mask, weights=w, **hyper.get(name, {}))
        assert np.all(np.isfinite(out)), name
    # Too few valid rows: x[0].
    np.testing.assert_array_equal(ref.bulyan(x, f=1, mask=mask), x[0])


def test_reference_bucketing_checker():
    x = np.arange(12.0).reshape(6, 2)
    mask = np.array([1, 1, 1, 1, 1, 0], dtype=bool)
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    out = np.zeros_like(x)
    out[0] = x[0]
    out[1] = (x[4] + x[1]) / 2
    out[2] = (x[2] + x[3]) / 2
    out_mask = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    out_w = np.array([1.0, 7.0, 7.0, 0, 0, 0])
    ref.check_bucketing(x, mask, w, 2, out, out_mask, out_w)
    bad = out.copy()
    bad[2] = (x[2] + x[5]) / 2  # uses a masked row
    with pytest.raises(AssertionError):
        ref.check_bucketing(x, mask, w, 2, bad, out_mask, out_w)
