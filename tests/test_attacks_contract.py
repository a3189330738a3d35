"""The contract suite of attacks.testing over the registry, plug-ins, scenario checks and
bad input."""

import dataclasses
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attacks
import decentral.aggregators as agg
from attacks import testing

NAMES = {
    "none", "gaussian", "sign_flip", "zero", "crash", "large", "sample_duplicate", "label_flip", "alie", "ipm",
    "mimic", "min_max", "min_sum", "fang_trim", "fang_krum", "hidden_vulnerability", "dissensus", "isolation",
    "spectral",
}  # fmt: skip


def trimmed_rule(x, mask, weights):
    del weights
    return agg.trimmed_mean(x, f=2, mask=mask)


# Non-default parameters where the defaults would hide a code path.
SPECS = {name: cls() for name, cls in attacks.ATTACKS.items()}
SPECS.update(
    {
        "gaussian_independent_global": attacks.resolve("gaussian", collusion=False, scope="global"),
        "sample_duplicate_independent": attacks.resolve("sample_duplicate", collusion=False),
        "large_nan": attacks.resolve("large", value="nan"),
        "alie_optimal": attacks.resolve("alie", optimal=True),
        "alie_clipped_gossip_global": attacks.resolve("alie", quantile="clipped_gossip", scope="global"),
        "alie_global_counts_own": attacks.resolve("alie", quantile="clipped_gossip", counts="global", center="own"),
        "alie_own_optimal_global": attacks.resolve("alie", center="own", scope="global", optimal=True),
        "ipm_own_optimal": attacks.resolve("ipm", center="own", optimal=True, search_min=-10.0, search_max=0.0),
        "dissensus_unweighted": attacks.resolve("dissensus", weighted=False, epsilon=1.5),
        "dissensus_optimal": attacks.resolve("dissensus", optimal=True),
        "sign_flip_optimal": attacks.resolve("sign_flip", optimal=True),
        "ipm_optimal": attacks.resolve("ipm", optimal=True),
        "hidden_vulnerability_optimal": attacks.resolve("hidden_vulnerability", optimal=True, coordinates=2),
        "min_max_optimal": attacks.resolve("min_max", optimal=True, perturbation="sign"),
        "min_max_global": attacks.resolve("min_max", scope="global", perturbation="unit_mean"),
        "min_sum_global": attacks.resolve("min_sum", scope="global", bound="min"),
        "fang_trim_independent": attacks.resolve("fang_trim", collusion=False, reference="zero"),
        "fang_krum_independent": attacks.resolve("fang_krum", collusion=False, reference="own"),
        "fang_krum_global": attacks.resolve("fang_krum", scope="global"),
        "mimic_heuristic": attacks.resolve("mimic", mode="heuristic", warmup=3),
        "isolation_zero_unweighted": attacks.resolve("isolation", target="zero", weighted=False),
        "spectral_optimal": attacks.resolve("spectral", optimal=True),
    }
)


def test_registry_has_the_issues_names():
    assert set(attacks.ATTACKS) == NAMES
    for name, cls in attacks.ATTACKS.items():
        assert cls.name == name


@pytest.mark.parametrize("name", sorted(SPECS))
def test_contract(name):
    testing.check_attack(SPECS[name])


def test_contract_with_a_real_rule():
    testing.check_attack(attacks.resolve("alie", optimal=True, grid=8, refine=4), rule=trimmed_rule)


def test_the_suite_catches_a_breach():
    """check_untouched fails for a plug-in that writes into an honest row behind the wrapper's back."""

    @attacks.attack_spec
    class Leaky(attacks.Attack):
        name = "leaky"

        def __call__(self, key, inbox, byz_slot, mask, weights, ctx=None):
            out, out_mask = super().__call__(key, inbox, byz_slot, mask, weights, ctx)
            return out.at[1].set(0.0), out_mask

        def message(self, key, view, ctx):
            return view.own

    with pytest.raises(AssertionError, match="honest or masked row changed"):
        testing.check_attack(Leaky())


# =========================================================================== timing, recompilation


def test_start_and_stop_rounds():
    spec = attacks.resolve("zero", start_round=2, stop_round=4)
    x = jnp.ones((4, 3))
    byz = jnp.array([False, False, True, True])
    call = jax.jit(lambda s, r: s(jax.random.key(0), x, byz, None, None, attacks.Context(round=r))[0])
    active = [bool(jnp.all(call(spec, r)[2:] == 0.0)) for r in range(6)]
    assert active == [False, False, True, True, False, False]
    assert call._cache_size() == 1


def test_no_recompilation_over_a_parameter_sweep():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)), jnp.float32)
    byz = jnp.array([False, False, False, False, True, True])
    call = jax.jit(lambda s: s(jax.random.key(0), x, byz, None, None, attacks.Context())[0])
    outs = [call(attacks.resolve("alie", quantile="fixed", z=z, sign=sign)) for z in (0.5, 1.0, 3.0) for sign in (1.0, -1.0)]
    outs += [call(attacks.resolve("alie", quantile="fixed", z=1.0, start_round=r)) for r in (0, 5)]
    assert call._cache_size() == 1
    assert not np.allclose(outs[0], outs[2])


def test_a_traced_rule_does_not_recompile():
    """A pytree rule in ctx.rule is traced: changing its numeric field reuses the compilation."""

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass(frozen=True)
    class Shrunk:
        factor: float

        def __call__(self, x, mask, weights):
            return self.factor * testing.masked_mean_rule(x, mask, weights)

    x = jnp.asarray(np.random.default_rng(1).normal(size=(6, 4)), jnp.float32)
    byz = jnp.array([False, False, False, False, True, True])
    spec = attacks.resolve("ipm", optimal=True)
    call = jax.jit(lambda rule: spec(jax.random.key(0), x, byz, None, None, attacks.Context(rule=rule))[0])
    a, b = call(Shrunk(1.0)), call(Shrunk(0.5))
    assert call._cache_size() == 1
    assert a.shape == b.shape


# =========================================================================== resolve, register, plug-ins


def test_resolve_forms():
    spec = attacks.resolve("alie")
    assert isinstance(spec, attacks.ALIE) and spec.quantile == "paper"
    assert attacks.resolve({"name": "ipm", "epsilon": 0.5}) == attacks.IPM(epsilon=0.5)
    assert attacks.resolve(spec) is spec
    assert attacks.resolve("attacks:ALIE", quantile="fixed", z=2.0).z == 2.0
    assert "ALIE(" in repr(spec)


def test_plug_in_function_from_a_module(tmp_path, monkeypatch):
    (tmp_path / "my_attacks.py").write_text(
        textwrap.dedent(
            '''
            import jax.numpy as jnp

            def shout(key, inbox, byz_slot, mask, weights, ctx, *, loudness=3.0):
                """Byzantine rows send loudness times the receiver's vector; also tries to touch row 1."""
                del key, weights, ctx
                out = jnp.where(byz_slot[:, None], loudness * inbox[0], inbox)
                return out.at[1].set(0.0), mask
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = attacks.resolve("my_attacks:shout", loudness=2.0)
    assert spec.loudness == 2.0 and spec.collusion
    testing.check_attack(spec)  # the wrapper keeps row 1 (honest) untouched
    x = jnp.ones((3, 2))
    out, _ = spec(jax.random.key(0), x, jnp.array([False, False, True]), None, None)
    np.testing.assert_array_equal(out, [[1, 1], [1, 1], [2, 2]])
    sys.modules.pop("my_attacks", None)


def test_register_a_class_and_a_function():
    @attacks.attack_spec
    class Scaled(attacks.Attack):
        """Byzantine rows send factor * x_0."""

        factor: float = attacks.parameter(2.0)
        name = "scaled_own"

        def message(self, key, view, ctx):
            del key, ctx
            return self.factor * view.own

    def opposite(key, inbox, byz_slot, mask, weights, ctx):
        del key, weights, ctx
        return jnp.where(byz_slot[:, None], -inbox[0], inbox), mask

    try:
        attacks.register("scaled_own", Scaled)
        attacks.register("opposite", opposite)
        testing.check_attack(attacks.resolve("scaled_own", factor=3.0))
        testing.check_attack(attacks.resolve("opposite"))
    finally:
        attacks.ATTACKS.pop("scaled_own", None)
        attacks.ATTACKS.pop("opposite", None)
    with pytest.raises(TypeError, match="signature"):
        attacks.register("bad", lambda key, inbox: inbox)
    with pytest.raises(TypeError, match="keyword-only"):
        attacks.register("bad", lambda key, inbox, byz_slot, mask, weights, ctx, level: inbox)


def test_registering_a_taken_name_needs_replace():
    with pytest.raises(ValueError, match="'alie' is already registered; pass replace=True"):
        attacks.register("alie", attacks.IPM)
    assert attacks.ATTACKS["alie"] is attacks.ALIE


# =========================================================================== bad input


def test_unknown_attack_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown attack 'alei'\. Did you mean 'alie'\?.*Valid attacks: alie, crash"):
        attacks.resolve("alei")


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"gaussian: unknown parameter 'sigmaa'\. Did you mean 'sigma'\?.*Valid: .*center"):
        attacks.resolve("gaussian", sigmaa=2.0)
    with pytest.raises(ValueError, match="needs a 'name' key"):
        attacks.resolve({"sigma": 1.0})
    with pytest.raises(ValueError, match="Cannot load plug-in"):
        attacks.resolve("no_such_module:Thing")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"name": "alie", "quantile": "median"}, "not one of"),
        ({"name": "alie", "z": 1.0}, "only with quantile='fixed'"),
        ({"name": "alie", "quantile": "fixed"}, "needs z"),
        ({"name": "gaussian", "sigma": -1.0}, "must be >= 0"),
        ({"name": "gaussian", "sigma": "big"}, "must be a number"),
        ({"name": "large", "value": "huge"}, "not a number"),
        ({"name": "hidden_vulnerability", "coordinates": 0}, "int >= 1 or 'all'"),
        ({"name": "min_max", "grid": 1}, "must be >= 2"),
        ({"name": "fang_trim", "factor": 0.5}, "must be >= 1"),
        ({"name": "gaussian", "scope": "world"}, "not one of"),
    ],
)
def test_bad_parameter_values(params, message):
    with pytest.raises(ValueError, match=message):
        attacks.resolve(params)


def test_scenario_checks_fail_at_build_time():
    with pytest.raises(ValueError, match="needs the communication graph"):
        attacks.resolve("spectral").check_scenario(graph=False, labels=True)
    with pytest.raises(ValueError, match="no class labels"):
        attacks.resolve("label_flip").check_scenario(graph=True, labels=False)
    with pytest.raises(ValueError, match="ctx.rule"):
        attacks.resolve("min_max", optimal=True).check_scenario(graph=True, labels=True, rule=False)
    attacks.resolve("alie").check_scenario(graph=False, labels=False, rule=False)
    with pytest.raises(ValueError, match="needs the graph"):
        attacks.resolve("spectral").init(None, 4)
    with pytest.raises(ValueError, match="needs the graph"):
        attacks.resolve("spectral").init(attacks.Graph(honest=np.ones(4, bool)), 4)
    with pytest.raises(ValueError, match="needs the population"):
        attacks.resolve("alie", scope="global").init(None, 4)
    assert attacks.resolve("label_flip").needs_labels and attacks.resolve("spectral").needs_graph


def test_missing_prepare_is_a_clear_error():
    x = jnp.ones((3, 2))
    byz = jnp.array([False, False, True])
    for spec, message in [
        (attacks.resolve("alie", scope="global"), "needs ctx.extra"),
        (attacks.resolve("mimic"), "needs ctx.extra"),
        (attacks.resolve("spectral"), "needs ctx.extra"),
    ]:
        with pytest.raises(ValueError, match=message):
            spec(jax.random.key(0), x, byz, None, None, attacks.Context())


def test_bad_shapes():
    spec = attacks.resolve("zero")
    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match=r"byz_slot must be bool\[3\]"):
        spec(jax.random.key(0), x, jnp.array([False, True]), None, None)
    with pytest.raises(ValueError, match=r"mask must be bool\[3\]"):
        spec(jax.random.key(0), x, jnp.array([False, False, True]), jnp.ones(3), None)
    with pytest.raises(ValueError, match=r"inbox must have shape \[K, d\]"):
        spec(jax.random.key(0), jnp.ones(3), jnp.array([False, False, True]), None, None)


def test_graph_builders():
    import networkx as nx

    graph = attacks.Graph.from_networkx(nx.cycle_graph(5), byzantine=[2])
    assert graph.n == 5 and not graph.honest[2] and len(graph.edges) == 10
    dense = attacks.Graph.from_adjacency(nx.to_numpy_array(nx.cycle_graph(5)), byzantine=np.eye(5, dtype=bool)[2])
    assert {tuple(e) for e in dense.edges} == {tuple(e) for e in graph.edges}
    with pytest.raises(ValueError, match="node ids"):
        attacks.Graph(honest=np.ones(3, bool), edges=[(0, 5)])


def test_graph_rejects_byzantine_ids_outside_the_graph():
    with pytest.raises(ValueError, match=r"Byzantine ids \[-1, 5\] are not nodes of a graph with nodes 0..3"):
        attacks.Graph.from_adjacency(np.ones((4, 4)), [-1, 5])
