"""Figures from a results database, study files, and `decentral plot` / `reproduce` end to end."""

import shutil
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from decentral import figures, results, runner, study
from decentral.cli import main
from decentral.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ("byzfl_benchmark", "cs_plus_gossip", "dumbbell", "honest_majority_ring", "placement", "rules_vs_attacks", "scale")


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """Two rules x two Byzantine counts on a 12-node ring lattice, 2 repeats each."""
    path = tmp_path_factory.mktemp("db") / "results.sqlite"
    base = scenario_from_dict({
        "network": {"topology": "circulant", "params": {"n": 12, "k": 2}},
        "placement": {"strategy": "manual", "count": 1, "params": {"ids": [0]}},
        "attack": {"name": "sign_flip"},
        "defense": {"f": 1},
        "run": {"rounds": 4, "eval_every": 2, "repeats": 2},
        "sweep": {"defense.aggregator": ["mean", "trimmed_mean"],
                  "placement": [{"count": 1, "params": {"ids": [0]}}, {"count": 2, "params": {"ids": [0, 6]}}]},
    })
    for outcome in runner.execute_all(path, base.points()):
        assert not isinstance(outcome[1], Exception), outcome
    return path


def test_figures_select_group_and_pool_runs(database):
    connection = results.connect(database)
    chosen = figures.select(connection, {"defense.aggregator": "mean"})
    assert len(chosen) == 2 and all(run.value("defense.aggregator") == "mean" for run in chosen)
    assert figures.select(connection, {"placement.count": 2, "defense.aggregator": "trimmed_mean"})[0].value("placement.count") == 2
    assert figures.x_value(chosen[0], "byzantine_fraction") in (1 / 12, 2 / 12)
    assert figures.x_value(chosen[0], "nodes") == 12
    with pytest.raises(ValueError, match="not numeric"):
        figures.x_value(chosen[0], "defense.aggregator")
    with pytest.raises(ValueError, match="no config key"):
        figures.select(connection, {"defense.aggregatr": "mean"})


def test_curves_of_a_per_replicate_metric_have_no_worst_node_band(database, tmp_path, monkeypatch):
    captured = []
    monkeypatch.setattr(figures.plots, "learning_curves", lambda curves, stem, **options: captured.extend(curves) or [])
    figures.make("curves", database, tmp_path / "c", group="defense.aggregator", metric="averaged_accuracy",
                 where={"placement.count": 1})
    connection = results.connect(database)
    for curve, run in zip(captured, figures.select(connection, {"placement.count": 1}), strict=True):
        rounds, values = results.series(connection, run.id, "averaged_accuracy", "value")
        assert curve.low is None and np.array_equal(curve.rounds, rounds) and np.array_equal(curve.mean, values)
    figures.make("curves", database, tmp_path / "c", group="defense.aggregator", where={"placement.count": 1})
    assert all(curve.low is not None for curve in captured[2:])  # test_accuracy is per node: mean and worst node


def test_heatmap_cells_are_the_stored_final_accuracies(database, tmp_path, monkeypatch):
    captured = {}

    def capture(values, rows, columns, stem, **options):
        captured.update(values=values, rows=rows, columns=columns, mark=options["mark_worst"])
        return []

    monkeypatch.setattr(figures.plots, "heatmap", capture)
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="placement.count", mark="column")
    assert captured["rows"] == ["mean", "trimmed_mean"] and captured["columns"] == ["1", "2"]
    assert captured["mark"] == "column"
    connection = results.connect(database)
    (run,) = figures.select(connection, {"defense.aggregator": "trimmed_mean", "placement.count": 2})
    _, accuracy = results.series(connection, run.id, "test_accuracy", "mean")
    assert captured["values"][1, 1] == pytest.approx(accuracy[-1].mean())


def test_ids_keep_only_those_runs_in_their_order_whatever_order_they_started(database, tmp_path, monkeypatch):
    connection = results.connect(database)
    started = figures.select(connection)
    wanted = [run.id for run in reversed(started) if run.value("placement.count") == 1]  # the reverse of start order
    assert [run.id for run in figures.select(connection, ids=wanted)] == wanted
    assert [run.id for run in figures.select(connection, {"defense.aggregator": "mean"}, ids=wanted)] == [
        run.id for run in reversed(started) if run.value("placement.count") == 1 and run.value("defense.aggregator") == "mean"]
    captured = _captured_heatmap(monkeypatch)
    figures.make("heatmap", database, tmp_path / "h", rows="placement.count", columns="defense.aggregator", ids=wanted)
    assert captured["rows"] == ["1"] and captured["columns"] == ["trimmed_mean", "mean"]  # the runs with count 2 are not drawn


def test_heatmap_worst_over_takes_the_worst_mean_of_a_path_in_each_cell(database, tmp_path, monkeypatch):
    captured = _captured_heatmap(monkeypatch)
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="attack", worst_over="placement")
    connection = results.connect(database)

    def final_mean(rule, count, metric="test_accuracy"):
        (run,) = figures.select(connection, {"defense.aggregator": rule, "placement.count": count})
        return results.series(connection, run.id, metric, "mean")[1][-1].mean()

    assert captured["rows"] == ["mean", "trimmed_mean"] and captured["columns"] == ["sign_flip"]
    assert captured["metric"] == "final honest accuracy, worst placement"
    for i, rule in enumerate(["mean", "trimmed_mean"]):
        assert captured["values"][i, 0] == pytest.approx(min(final_mean(rule, 1), final_mean(rule, 2)))
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="attack", worst_over="placement",
                 metric="train_loss")
    assert captured["values"][0, 0] == pytest.approx(max(final_mean("mean", 1, "train_loss"), final_mean("mean", 2, "train_loss")))
    with pytest.raises(ValueError, match="worst_over is a heatmap option"):
        figures.make("curves", database, tmp_path / "c", group="defense.aggregator", worst_over="placement")
    with pytest.raises(ValueError, match="no config key 'attack.nam'"):
        figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="attack", worst_over="attack.nam")


@pytest.fixture(scope="module")
def diverging(tmp_path_factory):
    """Averaging on a ring of 8, mean and trimmed_mean x an attack sending inf from round
    index 3 on (start_round 3) or never (start_round 50): mean diverges at round 4."""
    path = tmp_path_factory.mktemp("diverging") / "results.sqlite"
    base = scenario_from_dict({
        "network": {"topology": "ring", "params": {"n": 8}},
        "placement": {"strategy": "manual", "count": 1, "params": {"ids": [0]}},
        "attack": {"name": "large", "params": {"value": "inf"}},
        "defense": {"f": 1},
        "run": {"task": "averaging", "rounds": 8, "eval_every": 2},
        "sweep": {"defense.aggregator": ["mean", "trimmed_mean"], "attack.params.start_round": [3, 50]},
    })
    for outcome in runner.execute_all(path, base.points()):
        assert not isinstance(outcome[1], Exception), outcome
    return path


def test_a_diverged_heatmap_cell_reads_diverged_not_a_number(diverging, tmp_path, monkeypatch):
    options = {"rows": "defense.aggregator", "columns": "attack.params.start_round", "metric": "consensus_distance",
               "stat": "value"}
    (drawn,) = figures.make("heatmap", diverging, tmp_path / "drawn", formats=("svg",), **options)
    assert "<!-- diverged -->" in drawn.read_text()  # matplotlib names each text drawn as paths
    captured = {}

    def capture(values, rows, columns, stem, **options):
        captured.update(values=values, rows=rows, columns=columns, notes=options["notes"])
        return []

    monkeypatch.setattr(figures.plots, "heatmap", capture)
    figures.make("heatmap", diverging, tmp_path / "h", **options)
    assert captured["rows"] == ["mean", "trimmed_mean"] and captured["columns"] == ["3", "50"]
    assert captured["notes"] == [["diverged", None], [None, None]]
    assert np.isnan(captured["values"][0, 0]) and np.isfinite(captured["values"][[0, 1, 1], [1, 0, 1]]).all()


def test_a_graph_figure_of_a_diverged_run_says_it_diverged(diverging, tmp_path):
    where = {"defense.aggregator": "mean", "attack.params.start_round": 3}
    with pytest.raises(ValueError, match=r"diverged at round 4 .* select another run with --where"):
        figures.make("graph", diverging, tmp_path / "g", metric="consensus_distance", where=where)


@pytest.mark.filterwarnings("ignore:the runs pooled")  # a diverged and a sound run pooled on purpose
def test_a_curve_with_a_diverged_run_says_so_and_stops_where_it_diverged(diverging, tmp_path, monkeypatch):
    assert figures.make("consensus", diverging, tmp_path / "drawn", group="defense.aggregator", formats=("svg",))
    captured = {}
    monkeypatch.setattr(figures.plots, "learning_curves", lambda curves, stem, **options: captured.update(curves=curves))
    figures.make("consensus", diverging, tmp_path / "c", group="defense.aggregator")
    mean, trimmed = captured["curves"]
    assert mean.label == "mean (1 of 2 runs diverged)" and trimmed.label == "trimmed_mean"
    assert mean.rounds.tolist() == [0, 2, 4, 6, 8]
    values = mean.mean
    assert np.isnan(values[2:, 0]).all() and np.isfinite(values[:2]).all() and np.isfinite(values[:, 1]).all()


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("curves", {"group": "defense.aggregator", "where": {"placement.count": 1}}),
        ("consensus", {"group": "defense.aggregator"}),
        ("heatmap", {"rows": "defense.aggregator", "columns": "placement.count", "stat": "min"}),
        ("versus", {"x": "byzantine_fraction", "group": "defense.aggregator"}),
        ("versus", {"x": "spectral_gap", "group": "defense.aggregator", "where": {"placement.count": 1}}),
        ("versus", {"x": "nodes", "metric": "seconds"}),
        ("graph", {"where": {"defense.aggregator": "mean", "placement.count": 2}}),
    ],
)
@pytest.mark.filterwarnings("ignore:the runs pooled")  # pooling on purpose here
def test_every_figure_kind_writes_its_files(kind, options, database, tmp_path):
    written = figures.make(kind, database, tmp_path / kind, formats=("png", "pdf"), **options)
    assert [path.suffix for path in written] == [".png", ".pdf"]
    assert all(path.stat().st_size > 1000 for path in written)


@pytest.mark.filterwarnings("ignore:the runs pooled")
def test_communities_figure_needs_a_graph_with_communities(database, tmp_path):
    with pytest.raises(ValueError, match="no communities"):
        figures.make("communities", database, tmp_path / "c", group="defense.aggregator")


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("heatmap", {"rows": "defense.aggregator"}, "--rows and --columns"),
        ("versus", {}, "needs --x"),
        ("graph", {}, "one run; 4 match"),
        ("curves", {"where": {"attack.name": "alie"}}, "no finished run"),
        ("pie", {}, "unknown figure kind"),
        ("heatmap", {"rows": "defense.aggregator", "columns": "placement.count", "mark": "diagonal"}, "mark"),
    ],
)
def test_figure_errors_say_what_to_change(kind, options, message, database, tmp_path):
    with pytest.raises(ValueError, match=message):
        figures.make(kind, database, tmp_path / "x", **options)


def test_cli_plot_and_its_errors(database, tmp_path, capsys):
    out = tmp_path / "curves"
    assert main(["plot", "curves", "--db", str(database), "--out", str(out), "--group", "defense.aggregator",
                 "--where", "placement.count=1", "--format", "svg"]) == 0
    assert capsys.readouterr().out.strip() == str(out) + ".svg"
    assert main(["plot", "heatmap", "--db", str(database), "--out", str(out), "--rows", "defense.aggregator"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--columns" in err and len(err.strip().splitlines()) == 1
    assert main(["plot", "curves", "--db", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 2
    assert "no results database" in capsys.readouterr().err
    assert main(["plot", "curves", "--db", str(database), "--out", str(out), "--where", "novalue"]) == 2
    assert "PATH=VALUE" in capsys.readouterr().err


def test_sweep_axes_for_a_parameter_and_a_whole_table():
    scenario = scenario_from_dict({
        "attack": {"name": "ipm"},
        "sweep": {"attack.params.epsilon": [0.1, 2.0], "placement": [{"strategy": "random", "count": 2}, {"strategy": "max_degree", "count": 3}]},
    })
    points = scenario.points()
    assert [p.attack.params for _, p in points] == [{"epsilon": 0.1}, {"epsilon": 0.1}, {"epsilon": 2.0}, {"epsilon": 2.0}]
    assert [(p.placement.strategy, p.placement.count) for _, p in points[:2]] == [("random", 2), ("max_degree", 3)]
    for bad, message in [
        ({"placement": [{"strategy": "random", "cuont": 2}]}, "cuont"),
        ({"placement": ["random"]}, "table of its keys"),
        ({"run.seed.x": [1]}, "only params sub-keys"),
        ({"defence.f": [1]}, "defense"),
    ]:
        with pytest.raises(ValueError, match=message):
            scenario_from_dict({"sweep": bad})


def test_relative_paths_in_a_scenario_file_are_relative_to_the_file(tmp_path):
    (tmp_path / "graph.edgelist").write_text("0 1\n1 2\n2 0\n")
    (tmp_path / "s.toml").write_text('[network]\ntopology = "from_edgelist"\nparams = { path = "graph.edgelist" }\n')
    scenario = load_scenario(tmp_path / "s.toml")
    assert Path(scenario.network.params["path"]) == tmp_path / "graph.edgelist"


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_file_is_valid(name):
    chosen = study.load(name)
    assert chosen.figures and chosen.points() and chosen.points(quick=True)

    def work(points):
        return sum(point.run.rounds * point.run.repeats for _, point in points)

    assert work(chosen.points(quick=True)) < work(chosen.points()) / 4
    assert (chosen.folder / "README.md").is_file()


def test_study_errors_name_the_key(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "s.toml").write_text('[run]\ntask = "averaging"\nrounds = 2\neval_every = 2\n')
    for text, message in [
        ('scenarios = ["s.toml"]\ntitel = "x"\n', "unknown key 'titel'"),
        ('scenarios = ["t.toml"]\n', "'t.toml' is not in"),
        ('scenarios = ["s.toml"]\n[[figures]]\nname = "a"\nkind = "pie"\n', "unknown kind 'pie'"),
        ('scenarios = ["s.toml"]\n[[figures]]\nname = "a"\nkind = "versus"\nlog_x = "yes"\n', "log_x must be true or false"),
        ('scenarios = ["s.toml"]\n[[figures]]\nname = "a"\nkind = "versus"\nlog_y = 1\n', "log_y must be true or false"),
        ('scenarios = ["s.toml"]\n[quick]\nset = { "run.roundz" = 1 }\n', "roundz"),
    ]:
        (folder / "study.toml").write_text(text)
        with pytest.raises(ValueError, match=message):
            study.load(folder)
    with pytest.raises(ValueError, match="available: .*dumbbell"):
        study.load("no_such_study")


def test_studies_are_found_by_name_in_the_folder_given_never_beside_the_package(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "study.toml").write_text('scenarios = ["s.toml"]\n')
    (tmp_path / "mine" / "s.toml").write_text("")
    assert study.find("mine", tmp_path) == (tmp_path / "mine").resolve()
    monkeypatch.chdir(tmp_path)  # no experiments/ here: the checkout's studies are not looked up
    with pytest.raises(ValueError, match=r"no study 'dumbbell' .* in experiments; available: none\. .*--studies DIR"):
        study.find("dumbbell")


def test_reproduce_quick_runs_a_study_and_draws_its_figures(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "dumbbell"
    shutil.copytree(ROOT / "experiments" / "dumbbell", folder, ignore=shutil.ignore_patterns("quick", "*.sqlite*"))
    assert main(["reproduce", str(folder), "--quick", "--format", "png"]) == 0
    printed = capsys.readouterr().out.split()
    names = {Path(path).name for path in printed}
    assert names == {"curves.png", "per_clique.png", "graph_trimmed_mean.png", "paper_per_clique.png", "paper_curves.png"}
    assert all(Path(path).parent == folder / "quick" / "figures" for path in printed)
    with sqlite3.connect(folder / "quick" / "results.sqlite") as connection:
        assert connection.execute("SELECT COUNT(*), MIN(status) FROM runs").fetchone() == (8, "done")
    # a second reproduce skips every point and redraws
    assert main(["reproduce", str(folder), "--quick", "--format", "png"]) == 0
    assert capsys.readouterr().err.count("skipped") == 8
    assert not (ROOT / "figures" / "dumbbell" / "quick").exists()
    np.testing.assert_equal(len(printed), 5)
    # every figure draws the study's own points, in sweep order, not every run in the database
    drawn = []
    monkeypatch.setattr(figures, "make", lambda kind, database, stem, **options: drawn.append(options["ids"]) or [])
    loaded = study.load(folder)
    study.draw(loaded, quick=True)
    with sqlite3.connect(folder / "quick" / "results.sqlite") as connection:
        stored = {key for (key,) in connection.execute("SELECT id FROM runs")}
    assert len(drawn) == 5 and all(ids == drawn[0] for ids in drawn) and set(drawn[0]) == stored
    assert [results.run_id_of(scenario) for _, scenario in loaded.points(quick=True)] == drawn[0]


def test_reproduce_set_changes_every_point_into_a_variant_folder(tmp_path, capsys):
    folder = tmp_path / "dumbbell"
    shutil.copytree(ROOT / "experiments" / "dumbbell", folder, ignore=shutil.ignore_patterns("quick", "*.sqlite*"))
    (folder / "study.toml").write_text((folder / "study.toml").read_text().replace('"run.rounds" = 60', '"run.rounds" = 20'))
    argv = ["reproduce", str(folder), "--quick", "--format", "png", "--set", "run.eval_every=10",
            "--set", 'defense.aggregator=["mean", "clipped_gossip"]']
    assert main(argv) == 2  # defense.aggregator is swept: --set would be overwritten, so it is refused
    assert "sweeps 'defense.aggregator'" in capsys.readouterr().err
    assert main(argv[:-2]) == 0
    printed = [Path(p) for p in capsys.readouterr().out.split()]
    (variant,) = {p.parent.parent for p in printed}
    assert variant.parent == folder / "quick" and variant.name.startswith("variant-")
    with sqlite3.connect(variant / "results.sqlite") as connection:
        configs = [c for (c,) in connection.execute("SELECT config FROM runs")]
    assert len(configs) == 8 and all('"eval_every": 10' in c for c in configs)
    assert main(["reproduce", str(folder), "--quick", "--set", "run.roundz=3"]) == 2
    assert "roundz" in capsys.readouterr().err


def _captured_heatmap(monkeypatch):
    captured = {}

    def capture(values, rows, columns, stem, **options):
        captured.update(options, values=values, rows=rows, columns=columns)
        return []

    monkeypatch.setattr(figures.plots, "heatmap", capture)
    return captured


def test_heatmap_axes_title_colour_range_and_chance_from_the_runs(database, tmp_path, monkeypatch):
    captured = _captured_heatmap(monkeypatch)
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="placement.count")
    assert (captured["xlabel"], captured["ylabel"]) == ("placement.count", "aggregator")
    assert (captured["vmin"], captured["vmax"]) == (0.0, 1.0) and captured["chance"] == pytest.approx(0.1)  # digits
    assert captured["title"] is None  # nothing is fixed: both swept paths are on the axes
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="placement.count",
                 where={"defense.aggregator": "mean"}, vmin=0.2, chance="none")
    assert (captured["vmin"], captured["vmax"], captured["chance"]) == (0.2, 1.0, None)
    assert captured["title"] == "aggregator=mean"
    figures.make("heatmap", database, tmp_path / "h", rows="defense.aggregator", columns="placement.count",
                 metric="train_loss", title="")
    assert (captured["vmin"], captured["vmax"], captured["chance"], captured["title"]) == (None, None, None, None)


def test_curves_title_names_what_the_selection_fixes(database, tmp_path, monkeypatch):
    captured = {}
    monkeypatch.setattr(figures.plots, "learning_curves", lambda curves, stem, **options: captured.update(options) or [])
    figures.make("curves", database, tmp_path / "c", group="defense.aggregator", where={"placement.count": 1})
    assert captured["title"] == "placement.count=1, placement.ids=[0]" and captured["legend_title"] == "aggregator"
    figures.make("curves", database, tmp_path / "c", group="defense.aggregator", where={"placement.count": 1}, title="mine")
    assert captured["title"] == "mine"


def test_pooling_runs_that_differ_outside_the_selection_warns(database, tmp_path, monkeypatch):
    monkeypatch.setattr(figures.plots, "learning_curves", lambda *args, **options: [])
    with pytest.warns(UserWarning) as caught:
        figures.make("curves", database, tmp_path / "c", group="defense.aggregator")
    messages = [str(item.message) for item in caught]
    assert messages[0].startswith("the runs pooled in the curve 'mean' differ in placement.count (1 and 2)")
    assert any("placement.params.ids ([0] and [0, 6])" in message for message in messages) and len(messages) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # grouped or selected: nothing to warn about
        figures.make("curves", database, tmp_path / "c", group="defense.aggregator", where={"placement.count": 2})
        figures.make("curves", database, tmp_path / "c", group="placement", where={"defense.aggregator": "mean"})


def test_cli_plot_colour_range_chance_and_the_warning_line(database, tmp_path, monkeypatch, capsys):
    captured = _captured_heatmap(monkeypatch)
    base = ["plot", "heatmap", "--db", str(database), "--out", str(tmp_path / "h"), "--rows", "defense.aggregator"]
    assert main([*base, "--columns", "placement.count", "--vmin", "0.2", "--vmax", "0.9", "--chance", "0.5"]) == 0
    assert (captured["vmin"], captured["vmax"], captured["chance"]) == (0.2, 0.9, 0.5)
    assert main([*base, "--columns", "placement.count", "--chance", "half"]) == 2
    assert "chance must be 'auto', 'none' or a number" in capsys.readouterr().err
    assert main([*base, "--columns", "attack.name"]) == 0  # every cell pools two placements
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: the runs pooled in the cell 'mean x sign_flip' differ in placement.count")
    assert all(line.startswith("warning: ") for line in err) and len(err) == 2
    assert main([*base, "--columns", "attack.name", "--worst-over", "placement"]) == 0  # the pooled path is worst_over's
    assert capsys.readouterr().err == "" and captured["metric"] == "final honest accuracy, worst placement"


def test_study_figure_keys_for_the_colour_range_and_chance(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "s.toml").write_text('[run]\ntask = "averaging"\nrounds = 2\neval_every = 2\n')
    head = 'scenarios = ["s.toml"]\n[[figures]]\nname = "a"\nkind = "heatmap"\n'
    (folder / "study.toml").write_text(head + 'vmin = 0.1\nvmax = 0.9\nchance = "none"\n')
    assert study.load(folder).figures[0]["vmin"] == 0.1
    (folder / "study.toml").write_text(head + 'worst_over = "attack"\n')
    assert study.load(folder).figures[0]["worst_over"] == "attack"
    for text, message in [('vmin = "low"\n', "vmin must be a number"), ("chance = 2\n", "chance must be"),
                          ('chance = "half"\n', "chance must be"), ("worst_over = 1\n", "worst_over is a heatmap option")]:
        (folder / "study.toml").write_text(head + text)
        with pytest.raises(ValueError, match=message):
            study.load(folder)


def test_quick_scenarios_run_a_subset_of_the_files_and_must_be_the_studys(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, rounds in (("a.toml", 2), ("b.toml", 4)):
        (folder / name).write_text(f'[run]\ntask = "averaging"\nrounds = {rounds}\neval_every = 2\n'
                                   '[sweep]\n"defense.aggregator" = ["mean", "median"]\n')
    (folder / "study.toml").write_text('scenarios = ["a.toml", "b.toml"]\n[quick]\nscenarios = ["b.toml"]\n')
    loaded = study.load(folder)
    assert [scenario.run.rounds for _, scenario in loaded.points()] == [2, 2, 4, 4]
    assert [scenario.run.rounds for _, scenario in loaded.points(quick=True)] == [4, 4]
    (folder / "study.toml").write_text('scenarios = ["a.toml"]\n[quick]\nscenarios = ["b.toml"]\n')
    with pytest.raises(ValueError, match=r"\[quick\] scenarios lists 'b.toml', which is not in 'scenarios' \(a.toml\)"):
        study.load(folder)
