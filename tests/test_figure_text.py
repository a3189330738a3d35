"""The words of a figure from its runs' configs: labels with parameters, short paths, the
default title, the pooling warning and the chance level (no database, no drawing)."""

import warnings

import pytest

from decentral import figure_text as text
from decentral.cli import _label
from decentral.results import StoredRun
from decentral.scenario import scenario_from_dict, value_label


def _run(name="r", **changes):
    """A stored run of the default scenario with ``changes`` (config paths to values)."""
    config = scenario_from_dict({}).replace(**changes).to_dict()
    return StoredRun(name, config, {}, "done", 1.0, None)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("value", "path", "label"),
    [
        ("alie", "attack.name", "alie"),
        ({"name": "alie", "optimal": True}, None, "alie(optimal=true)"),
        ({"name": "alie", "params": {"optimal": True}}, "attack", "alie(optimal=true)"),
        ({"name": "alie", "params": {}}, "attack", "alie"),
        ({"name": "ipm", "params": {"epsilon": 0.5, "sign": -1}}, "attack", "ipm(epsilon=0.5,sign=-1)"),
        ({"name": "dirichlet", "alpha": 0.1}, "data.partition", "dirichlet(alpha=0.1)"),
        (["nnm", "trimmed_mean"], "defense.aggregator", "nnm+trimmed_mean"),
        # a whole stored [placement] table: the keys at their defaults are left out
        ({"strategy": "manual", "count": 2, "params": {"ids": [0, 6]}}, "placement", "manual(count=2,ids=[0,6])"),
        ({"strategy": "random", "count": 0, "params": {}}, "placement", "random"),
        ({"count": 1, "params": {"ids": [0]}}, None, "count=1,ids=[0]"),
        (True, None, "true"),
        (0.25, None, "0.25"),
    ],
)
def test_value_labels_show_the_parameters(value, path, label):
    assert value_label(value, path) == label


def test_a_label_without_parameters_and_the_cli_table_label():
    assert value_label({"name": "alie", "params": {"optimal": True}}, parameters=False) == "alie"
    axes = {"attack": {"name": "alie", "params": {"optimal": True}}, "defense.aggregator": "mean"}
    assert _label(axes) == "attack=alie(optimal=true), defense.aggregator=mean"


def test_where_matches_a_value_with_or_without_its_parameters():
    from decentral.figures import _matches

    run = _run(**{"attack": {"name": "alie", "params": {"optimal": True}}})
    assert _matches(run, "attack", "alie") and _matches(run, "attack", "alie(optimal=true)")
    assert _matches(run, "attack", {"name": "alie", "params": {"optimal": True}})
    assert not _matches(run, "attack", "alie(optimal=false)") and not _matches(run, "attack", "ipm")


@pytest.mark.parametrize(
    ("path", "name"),
    [("attack.name", "attack"), ("defense.aggregator", "aggregator"), ("network.params.n", "network.n"),
     ("attack.params.epsilon", "attack.epsilon"), ("placement.count", "placement.count"), ("run.rounds", "run.rounds"),
     ("data.partition.name", "partition"), ("placement.strategy", "placement")],
)
def test_short_names_of_config_paths(path, name):
    assert text.short(path) == name


# --------------------------------------------------------------------------- titles


def test_the_default_title_is_what_the_selection_fixes():
    everything = [_run(f"{rule}{count}", **{"defense.aggregator": rule, "placement.count": count, "attack.name": "alie"})
                  for rule in ("mean", "krum") for count in (2, 4)]
    chosen = [run for run in everything if run.value("placement.count") == 4]
    # placement.count varies in the database and is fixed here; attack.name never varies
    assert text.default_title(everything, chosen, {}, shown=["defense.aggregator"]) == "placement.count=4"
    assert text.default_title(everything, chosen, {"attack.name": "alie"}, shown=["defense.aggregator"]) == (
        "attack=alie, placement.count=4")
    one = [run for run in chosen if run.value("defense.aggregator") == "krum"]
    assert text.default_title(everything, one, {"defense.aggregator": "krum"}) == "aggregator=krum, placement.count=4"
    assert text.default_title(everything, everything, {}, shown=["defense.aggregator", "placement.count"]) == ""


# --------------------------------------------------------------------------- pooling


def test_differences_name_the_path_and_two_values_and_skip_seeds_and_shown_paths():
    a = _run("a", **{"attack.name": "alie", "run.seed": 1})
    b = _run("b", **{"attack": {"name": "alie", "params": {"optimal": True}}, "run.seed": 2})
    assert text.differences([a, b]) == {"attack.params.optimal": ("unset", "true")}
    assert text.differences([a, b], shown=["attack"]) == {}
    assert text.differences([a, _run("c", **{"attack.name": "alie", "run.seed": 5, "run.data_seed": 3})]) == {}
    c = _run("c", **{"attack.name": "alie", "run.rounds": 50})
    assert text.differences([a, c]) == {"run.rounds": ("100", "50")}


def test_the_pooling_warning_fires_only_when_pooled_runs_differ_outside_the_shown_paths():
    same = [_run("a", **{"run.seed": 1}), _run("b", **{"run.seed": 2})]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text.warn_pooled({"mean": same}, (), "the curve")
        text.warn_pooled({"x": [_run("a"), _run("b", **{"attack.name": "ipm"})]}, ("attack.name",), "the curve")
    differ = [_run("a"), _run("b", **{"data.partition": {"name": "dirichlet", "alpha": 0.1}})]
    with pytest.warns(UserWarning, match=r"pooled in the cell 'mean x alie' differ in data\.partition \(\"iid\" and "
                                         r"\{\"alpha\": 0\.1, \"name\": \"dirichlet\"\}\).*--where data\.partition=VALUE"):
        text.warn_pooled({"mean x alie": differ}, ("defense.aggregator",), "the cell")


# --------------------------------------------------------------------------- chance


def test_chance_level_from_the_dataset_or_as_given():
    digits = [_run("a"), _run("b", **{"data.dataset": "mnist5k"})]
    assert text.chance_level(digits) == pytest.approx(0.1)
    three = [_run("c", **{"data.dataset": "synthetic_classification", "data.params": {"num_classes": 4}})]
    assert text.chance_level(three) == pytest.approx(0.25)
    assert text.chance_level(digits + three) is None  # no single chance level
    assert text.chance_level(digits, metric="test_loss") is None
    assert text.chance_level([_run(**{"data.dataset": "synthetic_regression"})]) is None
    assert text.chance_level(digits, 0.5) == 0.5 and text.chance_level(digits, "none") is None
    for bad in (1.5, 0, "half", True):
        with pytest.raises(ValueError, match="chance must"):
            text.chance_level(digits, bad)


def test_num_classes_covers_every_classification_dataset():
    from decentral import data

    classification = sorted(name for name in data.DATASETS if name != "synthetic_regression")
    assert sorted(text.NUM_CLASSES) == classification
    assert text.NUM_CLASSES["digits"] == data.load_digits().num_classes
    assert text.NUM_CLASSES["synthetic_classification"] == data.SyntheticClassification().num_classes
