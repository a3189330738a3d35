"""The papers' variants of ALIE, IPM and dissensus (docs/attacks.md) against the numpy
references of tests/reference_attacks.py: ClippedGossip's population counts and uniform
dissensus weights, CS+'s messages centred on the receiver's own vector and its
line-searched dissensus. Random and adversarial inboxes (masked rows holding NaN and
1e6, honest rows far from the origin), with and without masked slots, under jit; vmap
and recompilation are covered by the contract suite (tests/test_attacks_contract.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attacks
import decentral.aggregators as agg
from tests import reference_attacks as ref

K, D = 8, 5
BYZ = np.array([0, 0, 0, 0, 0, 1, 1, 1], dtype=bool)
MASKS = {
    "masked": np.array([1, 1, 1, 1, 0, 1, 1, 0], dtype=bool),  # a masked honest slot (4), a masked Byzantine one (7)
    "unmasked": np.ones(K, dtype=bool),
}
run = jax.jit(lambda spec, key, x, byz, mask, w, ctx: spec(key, x, byz, mask, w, ctx))


def inbox(seed, kind, mask=MASKS["masked"]):
    """``kind="random"``: N(0, 1) rows; ``"adversarial"``: rows near 1e3 of spread 1e-2
    (float32 cancellation); slot 4 NaN where masked, Byzantine slot 7 1e6."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(K, D))
    if kind == "adversarial":
        x = 1e3 + 1e-2 * x
    x = x.astype(np.float32)
    if not mask[4]:
        x[4] = np.nan
    x[7] = 1e6
    return x


def call(spec, x, mask, w=None, ctx=None):
    ctx = attacks.Context() if ctx is None else ctx
    out, _ = run(spec, jax.random.key(0), jnp.asarray(x), jnp.asarray(BYZ), jnp.asarray(mask), w, ctx)
    return np.asarray(out)


def check_rows(out, expected, x, mask, tol):
    written = BYZ & mask
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(out[written], np.broadcast_to(expected, out[written].shape), rtol=tol, atol=tol)
    np.testing.assert_array_equal(out[~written], x[~written])


def tolerance(kind):
    return 1e-5 if kind == "random" else 2e-3  # |x| ~ 1e3 in float32: ulp ~ 6e-5


def population(n, byzantine, seed=0):
    honest = np.ones(n, dtype=bool)
    honest[list(byzantine)] = False
    edges = [(i, (i + 1) % n) for i in range(n)]
    graph = attacks.Graph(honest=honest, edges=np.array(edges + [(v, u) for u, v in edges]))
    return graph, np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def prepared(spec, graph, params):
    extra, _ = spec.prepare(jax.random.key(1), jnp.asarray(params), graph, spec.init(graph, D))
    return attacks.Context(extra=extra)


CASES = [(kind, m) for kind in ("random", "adversarial") for m in MASKS]


# =========================================================================== ALIE


@pytest.mark.parametrize("kind, mask_name", CASES)
@pytest.mark.parametrize("quantile", ["paper", "clipped_gossip"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_alie_counts_global_takes_n_and_f_from_the_population(kind, mask_name, quantile, sign):
    """ClippedGossip: z from the scenario's n nodes and f Byzantine nodes, not the inbox's."""
    mask = MASKS[mask_name]
    x = inbox(1, kind, mask)
    honest, n_inbox, f_inbox = ref.split(x, BYZ, mask)
    graph, params = population(11, [1, 5, 8, 9])
    assert ref.alie_z(11, 4, quantile) != pytest.approx(ref.alie_z(n_inbox, f_inbox, quantile), abs=1e-3)
    spec = attacks.resolve("alie", quantile=quantile, counts="global", sign=sign)
    out = call(spec, x, mask, ctx=prepared(spec, graph, params))
    check_rows(out, ref.alie(honest, 11, 4, quantile, sign=sign), x, mask, tolerance(kind))


def test_alie_counts_global_follows_the_graph_without_recompiling():
    spec = attacks.resolve("alie", quantile="clipped_gossip", counts="global")
    x, mask = inbox(2, "random"), MASKS["masked"]
    honest = ref.split(x, BYZ, mask)[0]
    before = run._cache_size()
    for byzantine in ([1, 5, 9], [0, 4]):
        graph, params = population(12, byzantine)
        out = call(spec, x, mask, ctx=prepared(spec, graph, params))
        check_rows(out, ref.alie(honest, 12, len(byzantine), "clipped_gossip"), x, mask, 1e-5)
    assert run._cache_size() - before <= 1


@pytest.mark.parametrize("kind, mask_name", CASES)
@pytest.mark.parametrize("scope", ["local", "global"])
def test_alie_center_own_starts_from_the_receiver(kind, mask_name, scope):
    """CS+'s sparse_little: x_i + z sigma (sigma over every honest node with scope='global')."""
    mask = MASKS[mask_name]
    x = inbox(3, kind, mask)
    honest, n, f = ref.split(x, BYZ, mask)
    spec = attacks.resolve("alie", center="own", scope=scope)
    ctx = None
    stats_rows = honest
    if scope == "global":
        graph, params = population(10, [2, 7], seed=3)
        params = (params + (1e3 if kind == "adversarial" else 0.0)).astype(np.float32)
        ctx = prepared(spec, graph, params)
        stats_rows = params[graph.honest].astype(np.float64)
    out = call(spec, x, mask, ctx=ctx)
    expected = ref.alie(stats_rows, n, f, own=x[0])
    check_rows(out, expected, x, mask, tolerance(kind))
    assert not np.allclose(expected, ref.alie(stats_rows, n, f), rtol=0, atol=1e-3)  # the centre matters


def test_alie_variant_errors():
    with pytest.raises(ValueError, match="counts='global'.*quantile='fixed'"):
        attacks.resolve("alie", quantile="fixed", z=1.5, counts="global")
    with pytest.raises(ValueError, match="population"):
        attacks.resolve("alie", counts="global").init(None, D)
    with pytest.raises(ValueError, match="counts"):
        attacks.resolve("alie", counts="inboxes")
    spec = attacks.resolve("alie", counts="global")
    with pytest.raises(ValueError, match="prepare"):
        spec(jax.random.key(0), inbox(0, "random"), BYZ, MASKS["masked"], None, attacks.Context())


# =========================================================================== IPM


@pytest.mark.parametrize("kind, mask_name", CASES)
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("epsilon", [0.1, -2.0])
def test_ipm_center_own(kind, mask_name, scope, epsilon):
    """CS+'s sparse_empire: x_i + t mu, i.e. center='own' with epsilon = -t."""
    mask = MASKS[mask_name]
    x = inbox(4, kind, mask)
    honest = ref.split(x, BYZ, mask)[0]
    spec = attacks.resolve("ipm", center="own", scope=scope, epsilon=epsilon)
    ctx = None
    if scope == "global":
        graph, params = population(10, [2, 7], seed=4)
        ctx = prepared(spec, graph, params)
        honest = params[graph.honest].astype(np.float64)
    out = call(spec, x, mask, ctx=ctx)
    check_rows(out, ref.ipm(honest, epsilon, own=x[0]), x, mask, tolerance(kind))


# =========================================================================== dissensus


@pytest.mark.parametrize("kind, mask_name", CASES)
def test_dissensus_unweighted_is_clipped_gossips_uniform_mixing(kind, mask_name):
    """ClippedGossip against rules other than gossip averaging: W_j = 1/(deg + 1) for every
    neighbour, which cancels: m = x_0 - eps sum_{j honest}(x_j - x_0) / f."""
    mask = MASKS[mask_name]
    x = inbox(5, kind, mask)
    w = np.random.default_rng(5).uniform(0.5, 1.5, size=K).astype(np.float32)
    spec = attacks.resolve("dissensus", epsilon=1.5, weighted=False)
    out = call(spec, x, mask, w=jnp.asarray(w))
    degree = int(mask.sum()) - 1
    expected = ref.dissensus(x, BYZ, mask, np.full(K, 1.0 / (degree + 1)), 1.5)
    check_rows(out, expected, x, mask, tolerance(kind))
    weighted = call(attacks.resolve("dissensus", epsilon=1.5), x, mask, w=jnp.asarray(w))
    check_rows(weighted, ref.dissensus(x, BYZ, mask, w, 1.5), x, mask, tolerance(kind))
    assert not np.allclose(weighted[5], out[5], rtol=0, atol=1e-3)  # the weights matter


# =========================================================================== optimal modes


def trimmed_rule(x, mask, weights):
    del weights
    return agg.trimmed_mean(x, f=2, mask=mask)


def _family(variant, x, mask):
    """(spec params, base, direction, default, search range) of a variant, from the definitions."""
    honest, n, f = ref.split(x, BYZ, mask)
    mean, std = ref.mean_std(honest)
    own = x[0].astype(np.float64)
    if variant == "alie_own":
        return {"center": "own"}, own, std, ref.alie_z(n, f), (0.0, 10.0)
    if variant == "ipm_own":
        return {"center": "own", "search_min": -10.0, "search_max": 0.0}, own, -mean, 0.1, (-10.0, 0.0)
    minus = ref.dissensus(x, BYZ, mask, np.ones(K), 1.0) - own  # -pull / f: epsilon = 1 moves by this
    return {}, own, minus, 1.0, (0.0, 10.0)


@pytest.mark.parametrize("variant, name", [("alie_own", "alie"), ("ipm_own", "ipm"), ("dissensus", "dissensus")])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_optimal_variants_match_a_fine_search(variant, name, mask_name):
    mask = MASKS[mask_name]
    rng = np.random.default_rng(6)
    x = (rng.normal(size=(K, D)) + 1.0).astype(np.float32)
    x[~mask] = np.nan
    params, base, direction, default, (low, high) = _family(variant, x, mask)
    spec = attacks.resolve(name, optimal=True, **params)
    out = call(spec, x, mask, ctx=attacks.Context(rule=trimmed_rule))
    valid = mask.copy()
    written = BYZ & mask
    mean = ref.split(x, BYZ, mask)[0].mean(axis=0)

    def objective(rows):
        return np.linalg.norm(ref.trimmed_mean(rows[valid], 2) - mean)

    scales = np.linspace(low, high, 20001)
    values = []
    for t in scales:
        rows = x.astype(np.float64).copy()
        rows[written] = base + t * direction
        values.append(objective(rows))
    values = np.array(values)
    lipschitz = np.max(np.abs(np.diff(values))) / (scales[1] - scales[0])
    tolerance = lipschitz * (high - low) * (2 / 31 / 15) / 2 + 1e-5
    achieved = objective(out.astype(np.float64))
    assert values.max() - tolerance <= achieved <= values.max() + 1e-4
    rows = x.astype(np.float64).copy()
    rows[written] = base + default * direction
    assert achieved >= objective(rows) - 1e-5  # never worse than the default scale
    np.testing.assert_array_equal(out[~written], x[~written])


# =========================================================================== docs/attacks.md


def test_the_configs_of_docs_attacks_md_resolve():
    """Every ``[attack]`` block of docs/attacks.md builds the spec it names."""
    import re
    import tomllib
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "attacks.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", page, flags=re.DOTALL)
    assert len(blocks) >= 6
    for block in blocks:
        table = tomllib.loads(block)["attack"]
        spec = attacks.resolve(table["name"], **table.get("params", {}))
        for key, value in table.get("params", {}).items():
            assert getattr(spec, key) == value, (block, key)
