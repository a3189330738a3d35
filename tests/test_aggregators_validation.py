"""Bad input fails early and clearly; degenerate and poisoned inboxes under ``jit``.

* Every error is a ``ValueError`` raised where values are concrete -- when the spec is
  built, or when the rule is called on concrete arrays -- before anything is traced or
  compiled, and its message names the rule, the offending value and a fix.
* Under ``jit`` (traced f and mask, nothing to validate) an inbox left with too few valid
  rows returns the own vector ``x[0]`` exactly; rules claiming ``tolerates_nonfinite``
  stay finite with f Byzantine rows of inf, NaN or 1e30.
* Distinct rules stay distinct as pytrees (one jitted function can take any spec).

Users' own rules (``register``, plug-in paths, ``check_rule``): test_aggregators_plugins.py.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral.aggregators as agg
from decentral import testing

DIM = 3

# Valid rows each rule needs to tolerate f Byzantine rows, from the papers (see the
# References of each docstring), written independently of the specs' ``min_count``.
REQUIREMENT = {
    "mean": lambda f: 1,
    "median": lambda f: 2 * f + 1,
    "trimmed_mean": lambda f: 2 * f + 1,
    "meamed": lambda f: 2 * f + 1,
    "phocas": lambda f: 2 * f + 1,
    "krum": lambda f: 2 * f + 3,
    "multi_krum": lambda f: 2 * f + 3,
    "bulyan": lambda f: 4 * f + 3,
    "geometric_median": lambda f: 2 * f + 1,
    "centered_clipping": lambda f: 2 * f + 1,
    "mda": lambda f: 2 * f + 1,
    "mda_greedy": lambda f: 2 * f + 1,
    "cge": lambda f: 2 * f + 1,
    "aksel": lambda f: 2 * f + 1,
    "nna": lambda f: 2 * f + 1,
    "ios": lambda f: f + 1,
    "clipped_gossip": lambda f: f + 1,  # adaptive radius; a fixed radius needs 1
    "cs_plus": lambda f: f + 1,
    "filter": lambda f: 2 * f + 1,
    "soft_filter": lambda f: 2 * f + 1,
    "caf": lambda f: 2 * f + 1,
    "que": lambda f: 2 * f + 1,
    "dnc": lambda f: 2 * f + 1,
    "smea": lambda f: 2 * f + 1,
    "nnm": lambda f: 2 * f + 1,
    "arc": lambda f: 2 * f + 1,
    "clip": lambda f: 1,
    "bucketing": lambda f: 1,
}
DEMANDING = sorted(name for name, need in REQUIREMENT.items() if need(2) > 1)
BUILT_IN = frozenset(agg.AGGREGATORS)  # at import, before any test registers anything


def _largest_f(need, count):
    """The largest f with need(f) <= count, by search (None if even f=0 does not fit)."""
    fitting = [g for g in range(count + 1) if need(g) <= count]
    return max(fitting) if fitting else None


def _zeros(rows):
    return np.zeros((rows, DIM), np.float32)


def _call_public(name, x, **kwargs):
    """The public function of a rule (``agg.trimmed_mean``...), with a key if it needs one."""
    if agg.AGGREGATORS[name].uses_key:
        kwargs.setdefault("key", jax.random.key(0))
    return getattr(agg, name)(x, **kwargs)


# --------------------------------------------------------------------------- requirements


def test_requirement_table_covers_the_registry_and_matches_the_specs():
    assert set(REQUIREMENT) == BUILT_IN, "a new rule needs its requirement here"
    for name, need in REQUIREMENT.items():
        spec = agg.resolve(name)
        assert [spec.required_count(f) for f in range(6)] == [need(f) for f in range(6)], name
    assert [agg.resolve("clipped_gossip", radius=1.0).required_count(f) for f in range(4)] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: agg.trimmed_mean(_zeros(4), f=2),
            "trimmed_mean with f=2 needs an inbox of at least 5 valid rows; got 4. "
            "Use f <= 1 or a larger inbox (a denser topology).",
        ),
        (
            lambda: agg.krum(_zeros(6), f=2),
            "krum with f=2 needs an inbox of at least 7 valid rows; got 6. Use f <= 1 or a larger inbox",
        ),
        (
            lambda: agg.krum(_zeros(2), f=0),
            "krum with f=0 needs an inbox of at least 3 valid rows; got 2. Use a larger inbox (a denser topology).",
        ),
        (
            lambda: agg.bulyan(_zeros(10), f=2),
            "bulyan with f=2 needs an inbox of at least 11 valid rows; got 10. Use f <= 1 or a larger inbox",
        ),
        (  # masked rows do not count
            lambda: agg.median(_zeros(6), f=2, mask=np.array([1, 1, 0, 1, 1, 0], bool)),
            "median with f=2 needs an inbox of at least 5 valid rows; got 4. Use f <= 1",
        ),
    ],
    ids=["trimmed_mean", "krum", "krum-f0", "bulyan", "masked"],
)
def test_requirement_messages(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("name", DEMANDING)
def test_every_rule_states_its_requirement(name):
    """One row short of need(2): the rule, f, the need, the count and the largest f that fits."""
    need = REQUIREMENT[name]
    count = need(2) - 1
    largest = _largest_f(need, count)
    fix = f"Use f <= {largest} or a larger inbox" if largest is not None else "Use a larger inbox"
    message = f"{name} with f=2 needs an inbox of at least {need(2)} valid rows; got {count}. {fix}"
    with pytest.raises(ValueError, match=re.escape(message)):
        _call_public(name, _zeros(count), f=2)


@pytest.mark.parametrize("name", DEMANDING)
def test_exactly_enough_rows_is_accepted(name):
    """need(f) rows pass the same validation (traced abstractly: nothing is computed)."""
    for f in (0, 1, 2):
        out = jax.eval_shape(lambda x: _call_public(name, x, f=f), _zeros(REQUIREMENT[name](f)))
        assert jax.tree.leaves(out)[0].shape[-1] == DIM


@pytest.mark.parametrize("name", ["trimmed_mean", "krum", "bulyan", "ios", "nnm"])
def test_check_names_the_node(name):
    need = REQUIREMENT[name]
    spec = agg.resolve(name)
    count = need(2) - 1
    where = f"got {count} at node 5 (inbox size {count} = degree {count - 1} + itself)"
    with pytest.raises(ValueError, match=re.escape(f"{name} with f=2 needs an inbox of at least {need(2)} valid rows; {where}")):
        spec.check(count, 2, node=5)
    spec.check(need(2), 2, node=5)  # enough: no error
    with pytest.raises(ValueError, match=r"f must be >= 0, got f=-1 at node 5"):
        spec.check(count, -1, node=5)


@pytest.mark.parametrize("f, message", [(1.5, "f must be an integer scalar, got 1.5"), (-1, "f must be >= 0, got f=-1")])
def test_bad_f(f, message):
    with pytest.raises(ValueError, match=re.escape(f"median: {message}")):
        agg.median(_zeros(5), f=f)


# --------------------------------------------------------------------------- names and hyperparameters


def test_unknown_rule_lists_the_valid_names_and_suggests_one():
    with pytest.raises(ValueError) as info:
        agg.resolve("trimed_mean")
    message = str(info.value)
    assert message.startswith("Unknown aggregation rule 'trimed_mean'. Did you mean 'trimmed_mean'? Valid names: ")
    assert message.removesuffix(".").split("Valid names: ")[1].split(", ") == sorted(agg.AGGREGATORS)


def test_unknown_rule_without_a_close_match_still_lists_the_names():
    with pytest.raises(ValueError, match=r"Unknown aggregation rule 'zzz'\. Valid names: aksel, arc, ") as info:
        agg.resolve("zzz")
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "config, kwargs, message",
    [
        ("krum", {"varaint": "paper"}, "krum: unknown hyperparameter 'varaint'. Did you mean 'variant'? Valid: variant."),
        ({"name": "centered_clipping", "raduis": 1.0}, {}, "centered_clipping: unknown hyperparameter 'raduis'. Did you mean 'radius'?"),
        ("median", {"radius": 1.0}, "median: unknown hyperparameter 'radius'. Valid: none."),
        ("geometric_median", {"nu": 0.1}, "Valid: initial, iterations, smoothing, start."),
    ],
)
def test_unknown_hyperparameter_names_the_valid_ones(config, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.resolve(config, **kwargs)


@pytest.mark.parametrize(
    "name, key, valid",
    [
        ("krum", "variant", ["paper", "byzfl"]),
        ("multi_krum", "variant", ["paper", "byzfl"]),
        ("cge", "around", ["zero", "own"]),
        ("arc", "around", ["zero", "own"]),
        ("clip", "around", ["zero", "own"]),
        ("aksel", "mode", ["mid", "n-f"]),
    ],
)
def test_bad_choice(name, key, valid):
    with pytest.raises(ValueError, match=re.escape(f"{name}: {key}='x' is not one of {valid}.")):
        agg.resolve(name, **{key: "x"})


@pytest.mark.parametrize(
    "name, key",
    [
        ("centered_clipping", "radius"),
        ("clip", "radius"),
        ("clipped_gossip", "radius"),
        ("geometric_median", "smoothing"),
        ("cs_plus", "step_size"),
    ],
)
@pytest.mark.parametrize("value", [0, 0.0, -1.0])
def test_nonpositive_hyperparameter(name, key, value):
    message = f"{name}: hyperparameter {key!r} must be > 0, got {value!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.resolve(name, **{key: value})
    with pytest.raises(ValueError, match=re.escape(message)):  # the public function: before x is even read
        getattr(agg, name)(None, **{key: value})


@pytest.mark.parametrize(
    "name, key, value, message",
    [
        ("geometric_median", "iterations", 0, "must be >= 1, got 0"),
        ("centered_clipping", "iterations", 0, "must be >= 1, got 0"),
        ("centered_clipping", "iterations", -3, "must be >= 1, got -3"),
        ("geometric_median", "iterations", 2.5, "must be an integer, got 2.5"),
        ("bucketing", "size", 0, "must be >= 1, got 0"),
        ("multi_krum", "m", 0, "must be >= 1, got 0"),
        ("centered_clipping", "radius", "big", "must be a number, got 'big'"),
    ],
)
def test_bad_count_like_hyperparameter(name, key, value, message):
    with pytest.raises(ValueError, match=re.escape(f"{name}: hyperparameter {key!r} {message}")):
        agg.resolve(name, **{key: value})


def test_resolve_rejects_malformed_configs():
    with pytest.raises(ValueError, match=re.escape("resolve: expected a rule name, list or table, got 3.")):
        agg.resolve(3)
    with pytest.raises(ValueError, match=re.escape("a rule given as a table needs a 'name' key, got keys ['size']")):
        agg.resolve({"size": 2})
    with pytest.raises(ValueError, match="hyperparameters .*given with a built spec"):
        agg.resolve(agg.resolve("clip"), radius=2.0)


# --------------------------------------------------------------------------- inbox inputs


@pytest.mark.parametrize("name", ["median", "krum", "geometric_median", "ios", "nnm"])
@pytest.mark.parametrize(
    "change, message",
    [
        ({"mask": np.ones(4, bool)}, "mask must have shape [5] (one flag per inbox row), got (4,)."),
        ({"mask": np.ones(5, np.int32)}, "mask must be boolean, got dtype int32."),
        ({"mask": np.array([0, 1, 1, 1, 1], bool)}, "row 0 is the node's own vector and must be valid (mask[0] is False)."),
        ({"weights": np.ones(6, np.float32)}, "weights must have shape [5] (one per inbox row), got (6,)."),
        ({"x": np.zeros(5, np.float32)}, "the inbox x must have shape [K, d], got shape (5,)."),
        ({"x": np.zeros((1, 5, DIM), np.float32)}, "the inbox x must have shape [K, d], got shape (1, 5, 3)."),
    ],
    ids=["mask-shape", "mask-dtype", "mask0", "weights-shape", "x-1d", "x-3d"],
)
def test_bad_inbox(name, change, message):
    arguments = {"x": _zeros(5), "f": 1, **change}
    with pytest.raises(ValueError, match=re.escape(f"{name}: {message}")):
        agg.resolve(name)(arguments.pop("x"), **arguments)


@pytest.mark.parametrize("name", ["geometric_median", "centered_clipping"])
def test_start_of_the_wrong_shape(name):
    message = f"{name}: start must have shape (3,) (one vector like the inbox rows), got (2,)."
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(agg, name)(_zeros(5), start=np.zeros(2, np.float32))


@pytest.mark.parametrize(
    "rule", [lambda: agg.resolve("bucketing"), lambda: agg.resolve([{"name": "bucketing", "size": 2}, "median"])], ids=["alone", "chain"]
)
def test_bucketing_needs_a_key(rule):
    with pytest.raises(ValueError, match=re.escape("bucketing is randomized and needs key=jax.random.key(...).")):
        rule()(_zeros(5))


def test_mda_searches_only_the_removals_of_f_rows_and_refuses_past_its_limit():
    """K = 21 with f = 4 is 7,547 candidate subsets (not 2^21); past SUBSET_LIMIT the
    error names the numbers, mda_greedy and max_f, eagerly and while tracing."""
    x = np.random.default_rng(0).normal(size=(21, DIM)).astype(np.float32)
    assert np.asarray(agg.mda(x, f=4)).shape == (DIM,)
    assert agg.SUBSET_LIMIT == 20_000
    message = "mda with f up to 6 on inboxes of 40 rows would search 4,598,479 subsets"
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.mda(_zeros(40), f=6)
    traced = "mda with f up to 10 on inboxes of 21 rows would search 1,048,576 subsets"
    with pytest.raises(ValueError, match=re.escape(traced) + ".*'mda_greedy'.*give max_f"):
        jax.jit(lambda x, f: agg.mda(x, f=f))(x, 1)  # f traced, no max_f: every f 21 rows admit
    bound = jax.jit(lambda x, f: agg.mda(x, f=f, max_f=4))(x, 4)
    np.testing.assert_allclose(bound, agg.mda(x, f=4), rtol=1e-6)
    with pytest.raises(ValueError, match=re.escape("would search") + ".*over its limit of 20,000"):
        agg.resolve("mda").check(40, 6, node=3)
    assert np.asarray(agg.mda_greedy(_zeros(15), f=2)).shape == (DIM,)


def test_requirement_fails_while_tracing_when_f_is_concrete():
    """Under jit with a Python f and no mask, the count is the static inbox size: the
    requirement is checked at trace time, nothing is compiled."""
    compiled = []
    fn = jax.jit(lambda x: agg.trimmed_mean(x, f=2))
    with pytest.raises(ValueError, match="trimmed_mean with f=2 needs an inbox of at least 5 valid rows; got 4"):
        compiled.append(fn.lower(_zeros(4)))
    assert not compiled


# --------------------------------------------------------------------------- chains


def test_chain_from_a_list_of_names():
    chain = agg.resolve(["nnm", "trimmed_mean"])
    assert isinstance(chain, agg.Chain)
    assert chain == agg.Chain(steps=(agg.resolve("nnm"), agg.resolve("trimmed_mean")))
    assert chain.label == "nnm+trimmed_mean"
    assert [chain.required_count(f) for f in range(4)] == [1, 3, 5, 7]
    x = np.random.default_rng(0).normal(size=(7, DIM)).astype(np.float32)
    mixed, mask, weights = agg.nnm(x, f=2)
    expected = agg.trimmed_mean(mixed, f=2, mask=mask, weights=weights)
    np.testing.assert_allclose(chain(x, f=2), expected, rtol=1e-6, atol=1e-6)


def test_chain_from_tables_and_names():
    chain = agg.resolve([{"name": "bucketing", "size": 2}, "median"])
    bucketing, median = chain.steps
    assert isinstance(bucketing, agg.AGGREGATORS["bucketing"]) and bucketing.size == 2
    assert isinstance(median, agg.AGGREGATORS["median"])
    assert chain.uses_key and not chain.order_invariant and not chain.tolerates_nonfinite
    assert chain.robustness == median.robustness
    # Groups of 2 leave 1 + ceil((n-1)/2) rows; median then needs 2f+1 of them.
    for f in range(4):
        assert chain.required_count(f) == next(n for n in range(1, 50) if 1 + math.ceil((n - 1) / 2) >= 2 * f + 1)
    x = np.random.default_rng(1).normal(size=(9, DIM)).astype(np.float32)
    key = jax.random.key(3)
    first, second = jax.random.split(key, 2)
    grouped = agg.bucketing(x, size=2, key=first)
    expected = agg.median(grouped[0], f=2, mask=grouped[1], weights=grouped[2], key=second)
    np.testing.assert_allclose(chain(x, f=2, key=key), expected, rtol=1e-6, atol=1e-6)


def test_chain_steps_get_their_own_hyperparameters():
    with pytest.raises(ValueError, match=re.escape("give each chain step its own hyperparameters as {'name': ..., ...}")):
        agg.resolve(["nnm", "median"], f=1)
    with pytest.raises(ValueError, match=re.escape("Unknown aggregation rule 'trimed_mean'. Did you mean 'trimmed_mean'?")):
        agg.resolve(["nnm", "trimed_mean"])
    with pytest.raises(ValueError, match=re.escape("clip: unknown hyperparameter 'raduis'. Did you mean 'radius'?")):
        agg.resolve([{"name": "clip", "raduis": 1.0}, "median"])


@pytest.mark.parametrize(
    "config, message",
    [
        (["median", "trimmed_mean"], "chain: 'median' is a rule, not a pre-aggregator; only the last step may be a rule "
         "(pre-aggregators: ['arc', 'bucketing', 'clip', 'nnm'])."),
        (["nnm", "krum", "median"], "chain: 'krum' is a rule, not a pre-aggregator"),
        (["nnm", "clip"], "chain: the last step must be a rule, got pre-aggregator 'clip'."),
        ([], "chain: needs at least one step, e.g. ['nnm', 'trimmed_mean']."),
    ],
    ids=["rule-first", "rule-in-the-middle", "pre-last", "empty"],
)
def test_malformed_chain(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.resolve(config)


def test_chain_check_follows_the_count_through_bucketing():
    chain = agg.resolve([{"name": "bucketing", "size": 2}, "median"])
    message = (
        "bucketing+median (step median) with f=2 needs an inbox of at least 5 valid rows; got 4 "
        "at node 3 (inbox size 7 = degree 6 + itself). Use f <= 1 or a larger inbox"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        chain.check(7, 2, node=3)
    chain.check(8, 2, node=3)  # 1 + ceil(7 / 2) = 5 rows reach the median
    # check() and required_count() agree everywhere.
    for chain in (chain, agg.resolve(["nnm", "krum"]), agg.resolve([{"name": "bucketing", "size": 3}, "bulyan"])):
        for f in range(3):
            for inbox_size in range(1, 16):
                if inbox_size < chain.required_count(f):
                    with pytest.raises(ValueError, match=re.escape(f"{chain.label} (step ")):
                        chain.check(inbox_size, f)
                else:
                    chain.check(inbox_size, f)


def test_chain_check_names_the_failing_step():
    with pytest.raises(ValueError, match=re.escape("nnm+krum (step krum) with f=1 needs an inbox of at least 5 valid rows; got 4")):
        agg.resolve(["nnm", "krum"]).check(4, 1)
    with pytest.raises(ValueError, match=re.escape("nnm+krum (step nnm) with f=2 needs an inbox of at least 5 valid rows; got 4")):
        agg.resolve(["nnm", "krum"]).check(4, 2)


# --------------------------------------------------------------------------- degenerate inboxes under jit

SPECS = {name: agg.AGGREGATORS[name]() for name in sorted(BUILT_IN)}
SPECS.update(
    {
        "clipped_gossip[r=0.5]": agg.resolve("clipped_gossip", radius=0.5),
        "nnm+trimmed_mean": agg.resolve(["nnm", "trimmed_mean"]),
        "arc+krum": agg.resolve(["arc", "krum"]),
        "bucketing+median": agg.resolve([{"name": "bucketing", "size": 2}, "median"]),
    }
)
K = 7


def _jitted():
    """A fresh jitted function per test: no cache shared between rules (see
    test_distinct_rules_have_distinct_tree_structures)."""
    return jax.jit(lambda spec, x, f, mask, weights, key: spec(x, f=f, mask=mask, weights=weights, key=key))


def _demanding_f(spec):
    """The smallest f >= 1 whose requirement exceeds 1 valid row and fits K + 1 rows."""
    for f in (1, 2, 3):
        if 1 < spec.required_count(f) <= K + 1:
            return f
    return None


DEGENERATE = sorted(name for name, spec in SPECS.items() if _demanding_f(spec) is not None)


def test_degenerate_table():
    assert {"mean", "clip", "bucketing", "clipped_gossip[r=0.5]"}.isdisjoint(DEGENERATE)
    assert {"median", "krum", "bulyan", "ios", "nnm", "nnm+trimmed_mean", "bucketing+median"} <= set(DEGENERATE)


@pytest.mark.parametrize("name", DEGENERATE)
def test_too_few_valid_rows_give_the_own_vector_under_jit(name):
    """Chains too: arc+krum with rows enough for ARC but not for Krum returns the own
    vector, not the own vector as ARC clipped it."""
    spec = SPECS[name]
    f = _demanding_f(spec)
    count = spec.required_count(f) - 1
    rng = np.random.default_rng(len(name))
    x = rng.normal(size=(K, DIM)).astype(np.float32)
    x[0] *= 4  # the largest norm: ARC (arc+krum) clips the own vector
    mask = np.zeros(K, bool)
    mask[rng.permutation(K - 1)[: count - 1] + 1] = True
    mask[0] = True
    x[~mask] = np.nan
    weights = rng.uniform(0.5, 1.5, size=K).astype(np.float32)
    key = jax.random.key(0) if spec.uses_key else None
    refusal = "needs an inbox of at least" if isinstance(spec, agg.Chain) else f"at least {count + 1} valid rows; got {count}"
    with pytest.raises(ValueError, match=refusal):
        spec(x, f=f, mask=mask, weights=weights, key=key)  # concrete: refused before compiling
    out = _jitted()(spec, x, jnp.asarray(f, jnp.int32), mask, weights, key)  # traced: degrades
    if spec.preaggregator:
        new_x, new_mask, new_weights = (np.asarray(a) for a in out)
        np.testing.assert_array_equal(new_mask, mask)
        np.testing.assert_array_equal(new_x[mask], x[mask])
        np.testing.assert_array_equal(new_weights[mask], weights[mask])
    else:
        np.testing.assert_array_equal(np.asarray(out), x[0])


# --------------------------------------------------------------------------- non-finite Byzantine rows

NONFINITE = sorted(name for name, spec in SPECS.items() if spec.tolerates_nonfinite)
POISON = [np.inf, -np.inf, np.nan, 1e30, -1e30]


def test_nonfinite_table():
    assert {"mean", "bucketing", "bucketing+median"}.isdisjoint(NONFINITE)
    assert {"median", "krum", "geometric_median", "clipped_gossip", "nnm", "arc", "nnm+trimmed_mean"} <= set(NONFINITE)


@pytest.mark.parametrize("name", NONFINITE)
def test_nonfinite_byzantine_rows_never_reach_the_output(name):
    """f Byzantine rows anywhere in the inbox, whole rows of one poison or mixed entries."""
    spec = SPECS[name]
    run = _jitted()
    rng = np.random.default_rng(sum(map(ord, name)))
    key = jax.random.key(0) if spec.uses_key else None
    for f in sorted({1, testing.largest_f(spec, K)}):
        if spec.required_count(f) > K:
            continue
        for trial in range(len(POISON) + 2):
            x = rng.normal(size=(K, DIM)).astype(np.float32)
            byzantine = np.zeros(K, bool)
            byzantine[1 + rng.permutation(K - 1)[:f]] = True
            if trial < len(POISON):
                x[byzantine] = POISON[trial]
            else:  # each entry its own poison (or an honest-looking value)
                x[byzantine] = rng.choice(POISON + [0.5], size=(f, DIM))
            weights = rng.uniform(0.5, 1.5, size=K).astype(np.float32)
            out = run(spec, x, jnp.asarray(f, jnp.int32), np.ones(K, bool), weights, key)
            values = np.asarray(out[0])[~byzantine] if spec.preaggregator else np.asarray(out)
            assert np.all(np.isfinite(values)), f"{name}: f={f}, Byzantine rows {x[byzantine].tolist()} gave {values}"


def test_mean_does_not_claim_it_and_indeed_breaks():
    """The check above has teeth: mean, which claims nothing, returns inf."""
    x = np.random.default_rng(0).normal(size=(K, DIM)).astype(np.float32)
    x[3] = np.inf
    assert not SPECS["mean"].tolerates_nonfinite
    assert not np.all(np.isfinite(np.asarray(agg.mean(x))))


# --------------------------------------------------------------------------- pytree identity


def test_distinct_rules_have_distinct_tree_structures():
    """Field-less rules (mean, median, trimmed_mean, meamed, phocas, bulyan, mda,
    mda_greedy, nna, ios, nnm) must differ as pytree structures: with
    ``register_dataclass`` (jaxlib 0.10) they compared equal although their hashes
    differed, so a jit cache keyed on the argument structure could, on a hash collision,
    run one rule's executable for another (seen as flaky wrong results when one jitted
    function took every spec as an argument)."""
    structure = jax.tree_util.tree_structure
    specs = [agg.AGGREGATORS[name]() for name in sorted(BUILT_IN)]
    for a, b in zip(specs, specs[1:]):
        assert structure(a) != structure(b), (a, b)
    assert structure(agg.resolve("krum")) != structure(agg.resolve("krum", variant="byzfl"))
    assert structure(agg.resolve("krum")) == structure(agg.resolve("krum"))
    assert structure(agg.resolve(["nnm", "median"])) != structure(agg.resolve(["nnm", "mean"]))


def test_lax_cond_between_two_rules_refuses():
    """Two different rules are not interchangeable branch outputs (it used to return the first)."""
    median, trimmed = agg.resolve("median"), agg.resolve("trimmed_mean")
    with pytest.raises(TypeError, match="pytree structure"):
        jax.lax.cond(False, lambda: median, lambda: trimmed)


def test_a_shared_jit_keeps_rules_apart():
    """One jitted function taking every spec as an argument runs each rule's own code."""
    run = jax.jit(lambda spec, x, f: spec(x, f=f))
    x = np.array([[0.0], [1.0], [2.0], [10.0], [100.0]], np.float32)
    for name in ["mean", "median", "trimmed_mean", "meamed", "phocas", "nna", "ios", "mda", "mda_greedy"]:
        spec = agg.resolve(name)
        np.testing.assert_allclose(run(spec, x, 1), spec(x, f=1), rtol=1e-6, err_msg=name)
