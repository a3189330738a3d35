"""The contract suite of decentral.testing over every registered rule and pre-aggregator,
each check over check_rule's default cases."""

import jax
import pytest

import decentral.aggregators as agg
from decentral import testing

# Non-default hyperparameters where the defaults would hide a code path.
SPECS = {name: cls() for name, cls in agg.AGGREGATORS.items()}
SPECS["clipped_gossip_fixed"] = agg.resolve("clipped_gossip", radius=0.5)
SPECS["multi_krum_m2"] = agg.resolve("multi_krum", m=2, variant="byzfl")
SPECS["cge_own"] = agg.resolve("cge", around="own")
SPECS["arc_own"] = agg.resolve("arc", around="own")
SPECS["nnm+trimmed_mean"] = agg.resolve(["nnm", "trimmed_mean"])
SPECS["bucketing+median"] = agg.resolve([{"name": "bucketing", "size": 2}, "median"])
SPECS["dnc_subsampled"] = agg.resolve("dnc", subsample=3, iterations=2)  # the key draws coordinates
SPECS["mda_bound"] = agg.resolve("mda", max_f=3)  # the engine's binding to the run's largest f


@pytest.mark.parametrize("check", testing.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", sorted(SPECS))
def test_contract(name, check):
    testing.check_rule(SPECS[name], checks=(check,))


@pytest.mark.parametrize("name", ["trimmed_mean", "krum", "geometric_median", "nnm"])
def test_contract_on_an_even_inbox(name):
    testing.check_rule(SPECS[name], inbox_size=8, dim=3, seed=1)


def test_mean_claims_no_robustness_and_indeed_breaks():
    """The breakdown check is meaningful: mean, which claims nothing, fails it."""

    class PretendsRobust(agg.Rule):
        pass

    spec = agg.resolve("mean")
    assert spec.robustness == "none" and agg.resolve("clip").robustness == "none"
    broken = jax.tree_util.tree_map(lambda leaf: leaf, spec)
    object.__setattr__(broken, "robustness", "coordinatewise")  # claim something it cannot do
    with pytest.raises(AssertionError, match="honest coordinate range"):
        testing.check_breakdown(broken)


def test_registering_a_taken_rule_name_needs_replace():
    with pytest.raises(ValueError, match="'krum' is already registered; pass replace=True"):
        agg.register("krum", agg.AGGREGATORS["median"])
    assert agg.AGGREGATORS["krum"].name == "krum"
