"""The contract suite of decentral.testing over every registered rule and pre-aggregator,
each check over check_rule's default cases."""

import re

import jax
import numpy as np
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


def _claiming(spec, robustness):
    """A copy of ``spec`` that claims ``robustness``."""
    copy = jax.tree_util.tree_map(lambda leaf: leaf, spec)
    object.__setattr__(copy, "robustness", robustness)
    return copy


def test_mean_claims_no_robustness_and_indeed_breaks():
    """The breakdown check is meaningful: mean, which claims nothing, fails it."""
    spec = agg.resolve("mean")
    assert spec.robustness == "none" and agg.resolve("clip").robustness == "none"
    with pytest.raises(AssertionError, match="honest coordinate range"):
        testing.check_breakdown(_claiming(spec, "coordinatewise"))  # claim something it cannot do


@pytest.mark.parametrize(
    "name, old_claim, breach",
    [
        ("meamed", "coordinatewise", "attack 'just outside', f=3"),
        ("bulyan", "coordinatewise", "attack 'one-sided', f=1"),
        ("krum", "selection", "attack 'one-sided', f=2"),
        ("mda", "selection", "attack 'one-sided', f=3"),
    ],
)
def test_the_battery_catches_claims_the_old_breakdown_test_missed(monkeypatch, name, old_claim, breach):
    """The claims these rules made before the battery: f copies of 1e6 and alternating
    +-1e6 rows (the old test's attacks) pass them; Byzantine rows near the honest range
    do not, and the breach names the attack."""
    spec = _claiming(SPECS[name], old_claim)
    old = {attack: testing.BREAKDOWN_ATTACKS[attack] for attack in ("far copies", "far alternating")}
    with monkeypatch.context() as patch:
        patch.setattr(testing, "BREAKDOWN_ATTACKS", old)
        testing.check_rule(spec, checks=(testing.check_breakdown,))
    with pytest.raises(AssertionError, match=f"(?s)leaves the honest coordinate range .*{re.escape(breach)}"):
        testing.check_rule(spec, checks=(testing.check_breakdown,))


def test_breakdown_inboxes_are_the_battery_at_f_1_and_the_largest_f():
    inboxes = testing.breakdown_inboxes(SPECS["median"], inbox_size=7, dim=5, seed=3)
    assert [(inbox.name, inbox.f) for inbox in inboxes] == [(name, f) for f in (1, 3) for name in testing.BREAKDOWN_ATTACKS]
    again = testing.breakdown_inboxes(SPECS["median"], inbox_size=7, dim=5, seed=3)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(inboxes, again))
    for inbox in inboxes:
        byzantine = inbox.x[len(inbox.honest):]
        assert inbox.x.shape == (7, 5) and inbox.x.dtype == np.float32 and len(byzantine) == inbox.f
        if inbox.f > 1 and inbox.name not in ("far copies", "far alternating"):  # the old test's repeat
            assert len(np.unique(byzantine, axis=0)) == inbox.f, f"{inbox.name}: Byzantine rows repeat"
    assert testing.breakdown_inboxes(SPECS["krum"], inbox_size=4) == []  # krum tolerates no f at 4 rows


def test_registering_a_taken_rule_name_needs_replace():
    with pytest.raises(ValueError, match="'krum' is already registered; pass replace=True"):
        agg.register("krum", agg.AGGREGATORS["median"])
    assert agg.AGGREGATORS["krum"].name == "krum"
