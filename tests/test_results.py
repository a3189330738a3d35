"""The results database: crash safety, resumption, queries, export, and the CLI around it."""

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from decentral import engine, results, runner
from decentral.cli import main
from decentral.export import export_csv
from decentral.scenario import load_scenario, scenario_from_dict

AVERAGING = (
    '[network]\ntopology = "ring"\nparams = { n = 8 }\n'
    '[run]\ntask = "averaging"\nrounds = 4\neval_every = 2\n'
)


def averaging(**run):
    return scenario_from_dict({
        "network": {"topology": "ring", "params": {"n": 8}},
        "defense": {"aggregator": "trimmed_mean", "f": 0},
        "run": {"task": "averaging", "rounds": 8, "eval_every": 2, "repeats": 2, **run},
    })


def metric_table(path, run):
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT repeat, round, node, stat, name, value FROM metrics WHERE run = ? ORDER BY name, stat, node, round, repeat",
            (run,),
        ).fetchall()


def test_a_run_is_stored_once_in_long_form_and_skipped_when_done(tmp_path):
    path = tmp_path / "r.sqlite"
    scenario = scenario_from_dict({
        "network": {"topology": "ring", "params": {"n": 8}},
        "placement": {"strategy": "manual", "count": 1, "params": {"ids": [3]}},
        "run": {"rounds": 4, "eval_every": 2, "repeats": 2},
    })
    outcome = runner.execute(path, scenario, {"run.seed": 0})
    assert outcome.status == "done" and outcome.id == results.run_id_of(scenario)
    connection = results.connect(path)
    (run,) = results.runs(connection)
    assert run.axes == {"run.seed": 0} and run.value("network.topology") == "ring"
    rounds, accuracy = results.series(connection, run.id, "test_accuracy", "mean")
    np.testing.assert_array_equal(rounds, [0, 2, 4])
    assert accuracy.shape == (3, 2)
    nodes, per_node = results.per_node(connection, run.id, "test_accuracy")
    np.testing.assert_array_equal(nodes, [0, 1, 2, 4, 5, 6, 7])  # honest nodes only
    np.testing.assert_allclose(per_node.mean(axis=1), accuracy[-1], rtol=1e-6)  # the summary is of these values
    np.testing.assert_allclose(per_node.min(axis=1), results.series(connection, run.id, "test_accuracy", "min")[1][-1])
    # per-node values only at the final evaluation by default
    assert connection.execute("SELECT DISTINCT round FROM metrics WHERE node >= 0").fetchall() == [(4,)]
    versions = json.loads(connection.execute("SELECT versions FROM runs").fetchone()[0])
    assert versions["jax"] and versions["numpy"]
    before = metric_table(path, run.id)
    assert runner.execute(path, scenario).status == "skipped"
    assert metric_table(path, run.id) == before


def test_per_node_all_keeps_every_evaluation(tmp_path):
    path = tmp_path / "r.sqlite"
    scenario = scenario_from_dict({"network": {"topology": "ring", "params": {"n": 6}}, "run": {"rounds": 4, "eval_every": 2}})
    outcome = runner.execute(path, scenario, per_node="all")
    connection = results.connect(path)
    rounds = connection.execute("SELECT DISTINCT round FROM metrics WHERE node >= 0 ORDER BY round").fetchall()
    assert rounds == [(0,), (2,), (4,)]
    nodes, values = results.per_node(connection, outcome.id, "test_accuracy", round_index=2)
    assert values.shape == (1, 6)
    with pytest.raises(ValueError, match="per_node"):
        runner.execute(path, scenario, per_node="every")


class Crash(RuntimeError):
    pass


def test_a_crashed_run_resumes_from_its_checkpoint_bit_for_bit(tmp_path, monkeypatch):
    scenario = averaging()
    reference = runner.execute(tmp_path / "reference.sqlite", scenario)
    original = engine.evaluations

    def crash_after_three(plan, **kwargs):
        for count, item in enumerate(original(plan, **kwargs)):
            if count == 3:
                raise Crash("power cut")
            yield item

    path = tmp_path / "r.sqlite"
    monkeypatch.setattr(engine, "evaluations", crash_after_three)
    with pytest.raises(Crash):
        runner.execute(path, scenario, checkpoint_seconds=0)
    connection = results.connect(path)
    status, error = connection.execute("SELECT status, error FROM runs").fetchone()
    assert status == "failed" and "power cut" in error
    assert connection.execute("SELECT round FROM checkpoints").fetchone() == (4,)
    assert connection.execute("SELECT MAX(round) FROM metrics").fetchone() == (4,)  # exactly up to the checkpoint
    monkeypatch.setattr(engine, "evaluations", original)
    outcome = runner.execute(path, scenario, checkpoint_seconds=0)
    assert outcome.status == "resumed"
    assert metric_table(path, outcome.id) == metric_table(tmp_path / "reference.sqlite", reference.id)
    assert connection.execute("SELECT COUNT(*) FROM checkpoints").fetchone() == (0,)


def test_rerun_keeps_old_results_until_the_new_ones_are_complete(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    scenario = averaging()
    outcome = runner.execute(path, scenario)
    before = metric_table(path, outcome.id)

    def crash(plan, **kwargs):
        raise Crash("during the rerun")
        yield

    monkeypatch.setattr(engine, "evaluations", crash)
    with pytest.raises(Crash):
        runner.execute(path, scenario, rerun=True)
    assert metric_table(path, outcome.id) == before
    assert results.runs(results.connect(path))[0].status == "done"


def test_a_bad_scenario_writes_nothing(tmp_path):
    path = tmp_path / "r.sqlite"
    bad = averaging().replace(**{"defense.f": 5})
    with pytest.raises(ValueError, match="trimmed_mean"):
        runner.execute(path, bad)
    assert results.runs(results.connect(path), status=None) == []


def test_export_metrics_and_runs_as_csv(tmp_path):
    path = tmp_path / "r.sqlite"
    outcome = runner.execute(path, averaging(), {"run.seed": 0})
    count = export_csv(path, tmp_path / "m.csv")
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0] == "run,run.seed,repeat,round,node,stat,name,value"
    assert count == len(lines) - 1 == 5 * 2 * 3  # 5 evaluations x 2 repeats x (consensus_distance, drift, error)
    assert lines[1].startswith(f"{outcome.id},0,")
    assert export_csv(path, tmp_path / "r.csv", what="runs") == 1
    assert "done" in (tmp_path / "r.csv").read_text()


def test_cli_run_sweep_and_export(tmp_path, capsys):
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(AVERAGING + '[sweep]\n"defense.aggregator" = ["mean", ["nnm", "trimmed_mean"]]\n')
    assert main(["run", str(scenario)]) == 0
    out = capsys.readouterr()
    assert "defense.aggregator=nnm+trimmed_mean" in out.out and "done" in out.err
    database = tmp_path / "results.sqlite"
    assert database.is_file()
    assert main(["sweep", str(scenario)]) == 0
    assert capsys.readouterr().err.count("skipped") == 2
    assert main(["export", "--db", str(database), "--out", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") > 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "missing.toml"], "missing.toml"),
        (["sweep", "{file}", "--jobs", "0"], "--jobs must be >= 1"),
        (["run", "{file}", "--checkpoint-seconds", "-1"], "--checkpoint-seconds"),
        (["run", "{file}", "--per-node", "sometimes"], "invalid choice"),
        (["export", "--db", "nowhere.sqlite"], "no results database"),
        (["run", "{bad}"], "trimmed_mean"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(argv, message, tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(AVERAGING)
    bad = tmp_path / "bad.toml"
    bad.write_text(AVERAGING + '[defense]\naggregator = "trimmed_mean"\nf = 3\n')
    argv = [arg.format(file=good, bad=bad) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, err


def _rows(path):
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT id, status FROM runs ORDER BY id").fetchall()


def test_a_sweep_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    scenario = tmp_path / "long.toml"
    scenario.write_text(
        '[network]\ntopology = "ring"\nparams = { n = 8 }\n'
        '[run]\ntask = "averaging"\nrounds = 6000\neval_every = 20\n'
        '[sweep]\n"run.seed" = [0, 1, 2]\n'
    )
    database = tmp_path / "results.sqlite"
    command = [sys.executable, "-m", "decentral.cli", "sweep", str(scenario), "--checkpoint-seconds", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    finished_first = None
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        if not database.exists():
            continue
        try:
            with sqlite3.connect(database, timeout=1) as connection:
                done = connection.execute("SELECT id FROM runs WHERE status = 'done'").fetchall()
                # a point not yet half-way: it cannot finish between this poll and the kill
                checkpointed = connection.execute("SELECT COUNT(*) FROM checkpoints WHERE round <= 3000").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            continue
        if done and checkpointed:
            finished_first = done[0][0]
            break
    assert process.poll() is None, f"the sweep ended before it could be killed: {process.stderr.read().decode()}"
    assert finished_first is not None, "no point finished within the deadline"
    kept = metric_table(database, finished_first)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        interrupted = connection.execute("SELECT run, round FROM checkpoints").fetchall()
    assert interrupted, "the kill should leave one point checkpointed mid-way"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "skipped" in resumed.stderr and "resumed" in resumed.stderr
    assert [status for _, status in _rows(database)] == ["done"] * 3
    assert metric_table(database, finished_first) == kept
    evaluations = 6000 // 20 + 1
    with sqlite3.connect(database) as connection:
        counts = connection.execute("SELECT run, COUNT(*) FROM metrics GROUP BY run").fetchall()
        assert connection.execute("SELECT COUNT(*) FROM checkpoints").fetchone() == (0,)
    assert [count for _, count in counts] == [evaluations * 3] * 3  # consensus_distance, drift and error, no duplicate
    # the resumed point holds exactly the uninterrupted run's values
    run_id, _ = interrupted[0]
    config = json.loads(sqlite3.connect(database).execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    reference = runner.execute(tmp_path / "reference.sqlite", scenario_from_dict(config))
    assert reference.id == run_id
    assert metric_table(database, run_id) == metric_table(tmp_path / "reference.sqlite", run_id)


def test_sweep_with_two_jobs_runs_every_point_once(tmp_path, capsys):
    scenario = tmp_path / "grid.toml"
    scenario.write_text(AVERAGING + '[sweep]\n"run.seed" = [0, 1, 2]\n')
    assert main(["sweep", str(scenario), "--jobs", "2"]) == 0
    assert capsys.readouterr().err.count(": done") == 3
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        rows = connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        per_run = connection.execute("SELECT COUNT(*) FROM metrics GROUP BY run").fetchall()
    assert rows == [("done", 3)] and per_run == [(3 * 3,)] * 3  # 3 evaluations x (consensus_distance, drift, error)


CRASHING_RULE = '''
import os, signal
from pathlib import Path
import jax.numpy as jnp

def mean_or_crash(x, *, f=0, mask=None, weights=None, key=None):
    """The plain mean, but the first worker process that traces it dies with SIGKILL."""
    marker = Path(os.environ["CRASH_MARKER"])
    if os.getpid() != int(os.environ["PARENT_PID"]) and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return jnp.mean(x, axis=0)
'''


def test_points_orphaned_by_a_dead_worker_run_again_in_a_fresh_pool(tmp_path, monkeypatch, capsys):
    (tmp_path / "crash_once.py").write_text(CRASHING_RULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    monkeypatch.setenv("CRASH_MARKER", str(tmp_path / "crashed"))
    monkeypatch.setenv("PARENT_PID", str(os.getpid()))
    scenario = tmp_path / "grid.toml"
    scenario.write_text(AVERAGING + '[defense]\naggregator = "crash_once:mean_or_crash"\n[sweep]\n"run.seed" = [0, 1, 2]\n')
    assert main(["sweep", str(scenario), "--jobs", "2"]) == 0
    assert (tmp_path / "crashed").exists()  # a worker did die
    err = capsys.readouterr().err
    assert "warning: a worker process died" in err and "again in a fresh pool" in err
    assert err.count(": done") == 3
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        assert connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall() == [("done", 3)]


PID_RULE = '''
import os
from pathlib import Path
import jax.numpy as jnp

def mean_noting_pid(x, *, f=0, mask=None, weights=None, key=None):
    """The plain mean; records which process traced it."""
    with open(os.environ["PID_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return jnp.mean(x, axis=0)
'''


def test_workers_are_replaced_after_their_share_of_points_without_deadlock(tmp_path):
    """7 points, 2 jobs, 2 points per worker: fresh pools of 4 points. With
    ``ProcessPoolExecutor(max_tasks_per_child=2)`` this hung after 4 points (CPython
    gh-115634), so it runs in a subprocess with a timeout."""
    (tmp_path / "pid_rule.py").write_text(PID_RULE)
    scenario = tmp_path / "grid.toml"
    scenario.write_text(AVERAGING + '[defense]\naggregator = "pid_rule:mean_noting_pid"\n[sweep]\n"run.seed" = [0, 1, 2, 3, 4, 5, 6]\n')
    code = ("import sys; from decentral import runner; from decentral.cli import main; "
            f"runner.POINTS_PER_WORKER = 2; sys.exit(main(['sweep', {str(scenario)!r}, '--jobs', '2']))")
    env = {**os.environ, "PID_LOG": str(tmp_path / "pids"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(": done") == 7
    pids = set((tmp_path / "pids").read_text().split())
    assert len(pids) >= 2 and str(os.getpid()) not in pids  # two pools, so at least two worker processes


def test_the_run_id_hashes_the_config_with_the_semantics_version():
    """Pinned: a change that alters results for an unchanged config bumps
    decentral.semantics.SEMANTICS_VERSION, which changes every run id (so a database never
    serves a point computed under the old semantics as done); update the pins with it."""
    from decentral.semantics import SEMANTICS_VERSION

    assert SEMANTICS_VERSION == 3
    assert results.run_id({"run": {"seed": 0}}) == "f8ea43382889923f"
    assert results.run_id({"run": {"seed": 0}}, semantics=2) == "20323659058d3cc6"
    assert results.run_id({"run": {"seed": 0}}, semantics=1) == "8e274f85fc23cf96"


def test_runs_of_another_semantics_version_are_kept_but_run_again_with_a_warning(tmp_path):
    path = tmp_path / "r.sqlite"
    scenario = averaging()
    config = results.config_of(scenario)
    first = runner.execute(path, scenario)
    with sqlite3.connect(path) as connection:  # make it look like a run stored by version 1
        old = results.run_id(config, semantics=1)
        connection.execute("UPDATE metrics SET run = ? WHERE run = ?", (old, first.id))
        connection.execute("UPDATE runs SET id = ?, versions = ? WHERE id = ?", (old, json.dumps({"jax": "0"}), first.id))
    assert results.semantics_versions(results.connect(path)) == {1: 1}
    with pytest.warns(UserWarning, match=r"holds runs of another semantics version \(1 of version 1; this is version 3\)"):
        ((_, outcome),) = list(runner.execute_all(path, [({}, scenario)]))
    assert outcome.status == "done" and outcome.id == first.id  # computed again, not skipped
    assert results.semantics_versions(results.connect(path)) == {1: 1, 3: 1}
    assert metric_table(path, old) == metric_table(path, first.id)  # the old run is kept


# --------------------------------------------------------------------------- plug-in provenance

SHIFTED_RULE = '''
import jax.numpy as jnp

SHIFT = {shift}


def shifted_mean(x, *, f=0, mask=None, weights=None, key=None):
    """The plain mean moved by SHIFT in every coordinate (an edit of SHIFT changes results)."""
    return jnp.mean(x, axis=0) + SHIFT
'''


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_built_in_scenarios_keep_their_run_ids():
    """Every point of every committed study (and of the quick-start scenario) names no
    plug-in, so its id is the one computed before plug-in sources counted: the studies'
    databases and figures keep their runs."""
    from decentral import study

    experiments = Path(__file__).resolve().parent.parent / "experiments"
    points = load_scenario(experiments / "quickstart.toml").points()
    for folder in sorted(experiments.glob("*/study.toml")):
        loaded = study.load(folder.parent)
        points += loaded.points() + loaded.points(quick=True)
    assert len(points) > 100
    for _, scenario in points:
        config = results.config_of(scenario)
        assert results.plugin_sources(config) == {}
        assert results.run_id_of(scenario) == results.run_id(config)
    assert results.run_id({"run": {"seed": 0}}, plugins={}) == "f8ea43382889923f"  # the pin above


def test_plugin_sources_hash_the_file_of_each_plug_in_module(tmp_path, monkeypatch):
    """Paths in a rule name, a table, a chain (nested too), an attack table and a topology;
    a package's path hashes its ``__init__.py``, a submodule's its own file."""
    (tmp_path / "provenance_rules.py").write_text("def rule(x): ...\n")
    package = tmp_path / "provenance_package"
    package.mkdir()
    (package / "__init__.py").write_text("def attack(): ...\n")
    (package / "graphs.py").write_text("def wheel(n): ...\n")
    monkeypatch.syspath_prepend(tmp_path)
    config = {
        "defense": {"aggregator": ["nnm", [{"name": "provenance_rules:rule", "q": 1}], "provenance_rules:other"]},
        "attack": {"name": {"name": "provenance_package:attack"}},
        "network": {"topology": "provenance_package.graphs:wheel"},
        "model": {"name": "logistic"},
    }
    assert results.plugin_sources(config) == {
        "provenance_rules:rule": _sha256(tmp_path / "provenance_rules.py"),
        "provenance_rules:other": _sha256(tmp_path / "provenance_rules.py"),
        "provenance_package:attack": _sha256(package / "__init__.py"),
        "provenance_package.graphs:wheel": _sha256(package / "graphs.py"),
    }
    assert results.plugin_sources({"defense": {"aggregator": "krum"}, "attack": {"name": "alie"}}) == {}


@pytest.mark.parametrize(("config", "message"), [
    ({"defense": {"aggregator": ["nnm", "provenance_no_such_module:rule"]}},
     "[defense] aggregator: cannot find the source file of plug-in 'provenance_no_such_module:rule'"),
    ({"network": {"topology": "provenance_no_such_package.graphs:wheel"}},
     "[network] topology: cannot find the module of plug-in 'provenance_no_such_package.graphs:wheel': "
     "No module named 'provenance_no_such_package'"),
])
def test_a_plug_in_whose_module_is_missing_is_an_error_naming_the_key(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        results.plugin_sources(config)


def test_decentral_run_of_a_missing_plug_in_module_is_a_usage_error(tmp_path, capsys):
    scenario = tmp_path / "missing.toml"
    scenario.write_text(AVERAGING + '[attack]\nname = "provenance_no_such_module:attack"\n')
    assert main(["run", str(scenario)]) == 2
    assert "[attack] name: cannot find the source file of plug-in 'provenance_no_such_module:attack'" in capsys.readouterr().err
    assert not (tmp_path / "results.sqlite").exists()


def test_editing_a_plug_in_reruns_its_points_and_keeps_the_old_results(tmp_path, monkeypatch):
    """``decentral run`` as a subprocess each time, so each run imports the module as it
    is on disk: an edited plug-in's point runs again (not skipped as done) under a new id,
    and the old source's run stays beside it."""
    rule = tmp_path / "provenance_shifted.py"
    rule.write_text(SHIFTED_RULE.format(shift=0.0))
    monkeypatch.syspath_prepend(tmp_path)
    scenario = tmp_path / "shifted.toml"
    scenario.write_text(AVERAGING + '[defense]\naggregator = "provenance_shifted:shifted_mean"\n')
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def run() -> str:
        done = subprocess.run([sys.executable, "-m", "decentral.cli", "run", str(scenario)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stderr.splitlines()[-1]

    ((_, point),) = load_scenario(scenario).points()
    old = results.run_id_of(point)
    assert run() == "[1/1] (single run): done"
    rule.write_text(SHIFTED_RULE.format(shift=2.5))
    new = results.run_id_of(point)
    assert new != old
    assert new == results.run_id(results.config_of(point), plugins={"provenance_shifted:shifted_mean": _sha256(rule)})
    assert run() == "[1/1] (single run): done"  # not skipped: the plug-in changed
    assert run() == "[1/1] (single run): skipped"
    connection = results.connect(tmp_path / "results.sqlite")
    stored = {stored_run.id: stored_run for stored_run in results.runs(connection)}
    assert sorted(stored) == sorted([old, new]) and stored[old].config == stored[new].config
    _, drift_before = results.series(connection, old, "drift", "value")
    _, drift_after = results.series(connection, new, "drift", "value")
    assert np.all(drift_before[-1] < 1e-4) and np.all(drift_after[-1] > 1.0)  # each ran its own source


# --------------------------------------------------------------------------- diagnostics, divergence

BROKEN = {
    "network": {"topology": "ring", "params": {"n": 8}},
    "placement": {"strategy": "manual", "count": 2, "params": {"ids": [0, 4]}},
    "run": {"task": "averaging", "rounds": 8, "eval_every": 2},
}


def _csv(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_each_run_stores_its_threat_model_diagnostics_and_exports_them(tmp_path):
    """ring(8), Byzantine 0 and 4, f = 0: nodes 1, 3, 5, 7 over their f, two honest arcs."""
    path = tmp_path / "r.sqlite"
    outcome = runner.execute(path, scenario_from_dict(BROKEN))
    stored = results.diagnostics(results.connect(path))[outcome.id]
    assert stored["over_f_nodes"] == 4 and stored["honest_nodes"] == 6
    assert (stored["worst_node"], stored["worst_node_count"], stored["worst_node_f"]) == (1, 1, 0)
    assert stored["honest_connected"] == 0 and stored["honest_components"] == 2
    assert stored["spectral_gap"] == pytest.approx(0.0, abs=1e-9)
    assert stored["max_byzantine_weight"] == pytest.approx(1 / 3)
    export_csv(path, tmp_path / "runs.csv", what="runs")
    (row,) = _csv(tmp_path / "runs.csv")
    assert row["status"] == "done" and row["diverged_round"] == ""
    assert row["over_f_nodes"] == "4.0" and row["honest_connected"] == "0.0" and row["worst_node"] == "1.0"


def test_a_diverged_run_is_stored_shown_and_exported_as_diverged(tmp_path, capsys):
    """Byzantine node 0 sends inf from round index 3 on: the evaluation of round 4 sees it."""
    scenario = tmp_path / "diverge.toml"
    scenario.write_text(
        AVERAGING.replace("rounds = 4", "rounds = 8")
        + '[placement]\nstrategy = "manual"\ncount = 1\nparams = { ids = [0] }\n'
        + '[attack]\nname = "large"\nparams = { value = "inf", start_round = 3 }\n'
        + '[defense]\naggregator = "trimmed_mean"\nf = 1\n'
        + '[sweep]\n"attack.params.value" = ["inf", 1.0]\n'
    )
    database = tmp_path / "results.sqlite"
    assert main(["run", str(scenario)]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err and "diverged at round 4" not in out.err  # trimmed_mean holds
    scenario.write_text(scenario.read_text().replace('aggregator = "trimmed_mean"', 'aggregator = "mean"'))
    assert main(["run", str(scenario), "--db", str(tmp_path / "mean.sqlite")]) == 0
    out = capsys.readouterr()
    assert "attack.params.value=inf: done (diverged at round 4)" in out.err
    rows = {row[0].strip(): [cell.strip() for cell in row[1:]] for row in
            (line.strip("|").split("|") for line in out.out.splitlines()[2:])}
    assert rows["attack.params.value=inf"][:2] == ["diverged@4", "diverged@4"]  # drift, consensus_distance
    assert all(cell != "diverged@4" for cell in rows["attack.params.value=1.0"])
    connection = results.connect(tmp_path / "mean.sqlite")
    by_value = {run.value("attack.params.value"): run for run in results.runs(connection)}
    assert by_value["inf"].diverged_round == 4 and by_value["inf"].outcome == "diverged"
    assert by_value["inf"].status == "done" and by_value[1.0].diverged_round is None
    rounds, drift = results.series(connection, by_value["inf"].id, "drift", "value")
    assert rounds.tolist() == [0, 2, 4] and np.isnan(drift[-1]).all() and np.isfinite(drift[:-1]).all()
    assert results.summarize(connection, by_value["inf"].id)["diverged_round"] == 4
    export_csv(tmp_path / "mean.sqlite", tmp_path / "runs.csv", what="runs")
    exported = {row["attack.params.value"]: row for row in _csv(tmp_path / "runs.csv")}
    assert exported["inf"]["status"] == "diverged" and exported["inf"]["diverged_round"] == "4"
    assert exported["1.0"]["status"] == "done" and exported["1.0"]["diverged_round"] == ""
    assert main(["run", str(scenario), "--db", str(tmp_path / "mean.sqlite")]) == 0  # finished: skipped
    assert capsys.readouterr().err.count("skipped (diverged at round 4)") == 1
    assert database.is_file()


def test_a_database_made_before_diagnostics_and_divergence_still_reads(tmp_path):
    """An old database (no diverged_round column, no diagnostics table) gains both on connect."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, config TEXT NOT NULL, axes TEXT NOT NULL, status TEXT NOT NULL "
            "CHECK (status IN ('running', 'done', 'failed')), started REAL, finished REAL, seconds REAL, versions TEXT, "
            "git_commit TEXT, error TEXT);"
            "INSERT INTO runs (id, config, axes, status, started) VALUES ('abc', '{}', '{}', 'done', 1.0);"
        )
    connection = results.connect(path)
    (run,) = results.runs(connection)
    assert run.diverged_round is None and run.outcome == "done"
    assert results.diagnostics(connection) == {}
    results.connect(path).close()  # a second connection finds the column there
    assert export_csv(path, tmp_path / "runs.csv", what="runs") == 1
    assert _csv(tmp_path / "runs.csv")[0]["status"] == "done"
