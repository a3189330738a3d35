"""The ``decentral`` command line, run in-process through ``decentral.cli.main`` (and once
as ``python -m decentral.cli``): ``list``, ``demo`` and ``bench aggregators`` at tiny
sizes, and usage errors -- exit status 2, one line on stderr starting with ``error:``,
no traceback."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import attacks
import decentral.aggregators as agg
import topologies
from decentral import cli
from decentral.data import DATASETS

REPO = Path(__file__).resolve().parents[1]
SECTIONS = {
    "rules": "Aggregation rules and pre-aggregators (decentral.aggregators):",
    "topologies": "Topologies (topologies):",
    "attacks": "Attacks (attacks):",
    "placements": "Placement strategies (topologies.place):",
    "datasets": "Datasets (decentral.data):",
}
DEMO = ["demo", "--nodes", "16", "--byzantine", "2", "--dim", "4", "--rounds", "3", "--rules", "mean,median,nnm+trimmed_mean"]
BENCH = ["bench", "aggregators", "--nodes", "4", "--inbox", "5", "--dim", "16", "--rules", "mean,median", "--repeats", "1"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _listed(out, section):
    """The first word of each indented line under ``section``'s header."""
    lines = out.splitlines()
    start = lines.index(SECTIONS[section]) + 1
    names = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        names.append(line.split()[0])
    return names


def _table(out):
    """A Markdown table in ``out`` as a list of {column: cell} rows."""
    lines = [line for line in out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) <= {" ", ""}, lines[1]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


# --------------------------------------------------------------------------- list


def test_list_shows_every_section(capsys):
    code, out, err = run(capsys, "list")
    assert (code, err) == (0, "")
    assert [line for line in out.splitlines() if not line.startswith("  ")] == list(SECTIONS.values())
    assert _listed(out, "rules") == sorted(agg.AGGREGATORS)
    assert _listed(out, "topologies") == list(topologies.BUILDERS)
    assert _listed(out, "attacks") == sorted(attacks.ATTACKS)
    assert _listed(out, "placements") == list(topologies.STRATEGIES)
    assert _listed(out, "datasets") == list(DATASETS)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_list_one_section(capsys, section):
    code, out, err = run(capsys, "list", section)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == SECTIONS[section]
    assert sum(line in SECTIONS.values() for line in out.splitlines()) == 1


def test_list_rules_says_what_each_rule_is(capsys):
    _, out, _ = run(capsys, "list", "rules")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name, spec in agg.AGGREGATORS.items():
        tag = "[pre-aggregator]" if spec.preaggregator else f"[robustness: {spec.robustness}]"
        assert lines[name].endswith(tag), lines[name]
        assert getattr(agg, name).__doc__.strip().splitlines()[0] in lines[name]


def test_list_attacks_shows_the_variant_switches(capsys):
    _, out, _ = run(capsys, "list", "attacks")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["alie"].endswith("counts=inbox|global, center=honest_mean|own, scope=local|global]"), lines["alie"]
    assert lines["dissensus"].endswith("[optimal=false|true, weighted=true|false]"), lines["dissensus"]
    assert lines["zero"].endswith("m = 0."), lines["zero"]


def test_list_rules_as_a_subprocess():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "decentral.cli", "list", "rules"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[0] == SECTIONS["rules"]
    assert _listed(done.stdout, "rules") == sorted(agg.AGGREGATORS)


# --------------------------------------------------------------------------- demo and bench


def test_demo_at_a_tiny_size(capsys):
    code, out, err = run(capsys, *DEMO)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Robust gossip averaging (nodes=16, byzantine=2, dim=4, rounds=3, f=2, seed=0)."
    rows = {row["rule"]: row for row in _table(out)}
    assert list(rows) == ["mean", "median", "nnm+trimmed_mean"]
    for row in rows.values():
        assert int(row["f"]) == 2
        assert all(math.isfinite(float(row[column])) and float(row[column]) >= 0 for column in ("drift", "disagreement", "seconds"))
    # The demo's point: the pull attack drags the plain mean, the robust rules resist it.
    assert float(rows["median"]["drift"]) < float(rows["mean"]["drift"])
    assert float(rows["nnm+trimmed_mean"]["drift"]) < float(rows["mean"]["drift"])


def test_bench_aggregators_at_a_tiny_size(capsys):
    code, out, err = run(capsys, *BENCH)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith("n=4 nodes, K=5 rows, d=16, blocks of 4 nodes (")
    rows = {row["rule"]: row for row in _table(out)}
    assert {"mean", "median"} <= set(rows)
    assert rows["mean"]["x mean"] == "1.00"
    assert float(rows["median"]["x mean"]) > 0
    assert float(rows["median"]["ms / round"]) >= 0


def test_bench_times_an_ops_primitive_beside_the_rules(capsys):
    code, out, err = run(capsys, *BENCH[:-3], "mean,ops.centered_gram,filter", "--repeats", "1")
    assert (code, err) == (0, "")
    rows = {row["rule"]: row for row in _table(out)}
    assert rows["ops.centered_gram"]["note"] == "per node: [K, K]"
    assert float(rows["ops.centered_gram"]["x mean"]) > 0 and float(rows["filter"]["x mean"]) > 0


# --------------------------------------------------------------------------- errors


ERRORS = {
    "unknown-rule-demo": (["demo", "--rules", "mean,trimed_mean"], "error: Unknown aggregation rule 'trimed_mean'. Did you mean 'trimmed_mean'?"),
    "unknown-rule-bench": (["bench", "aggregators", "--rules", "krun"], "error: Unknown aggregation rule 'krun'. Did you mean 'krum'?"),
    "unknown-primitive-bench": (["bench", "aggregators", "--rules", "mean,ops.gram"], "error: decentral bench: unknown primitive 'ops.gram'; available: ops.centered_gram"),
    "bad-chain": (["demo", "--rules", "median+trimmed_mean"], "error: chain: 'median' is a rule, not a pre-aggregator"),
    "unknown-benchmark": (["bench", "nonsense"], "error: decentral bench: argument what: invalid choice: 'nonsense'"),
    "unknown-list": (["list", "nonsense"], "error: decentral list: argument what: invalid choice: 'nonsense'"),
    "missing-subcommand": ([], "error: decentral: the following arguments are required: command"),
    "unknown-subcommand": (["frobnicate"], "error: decentral: argument command: invalid choice: 'frobnicate'"),
    "bad-integer": (["demo", "--nodes", "ten"], "error: decentral demo: argument --nodes: invalid int value: 'ten'"),
    "bad-integer-bench": (["bench", "aggregators", "--repeats", "1.5"], "error: decentral bench: argument --repeats: invalid int value: '1.5'"),
    "nonpositive-size": (["bench", "aggregators", "--nodes", "0"], "error: decentral bench: --nodes must be >= 1, got 0"),
    "too-many-byzantine": (["demo", "--nodes", "16", "--byzantine", "20", "--rules", "mean"], "error: place: count=20 exceeds n=16 nodes."),
    "negative-f": (["demo", "--nodes", "16", "--rounds", "1", "--f", "-1", "--rules", "median"], "error: decentral demo: --f must be >= 0, got -1"),
}


def _assert_one_line_error(code, out, err, start):
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith(start), err


@pytest.mark.parametrize("case", list(ERRORS))
def test_usage_error(capsys, case):
    argv, start = ERRORS[case]
    _assert_one_line_error(*run(capsys, *argv), start)


def test_usage_error_as_a_subprocess():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "decentral.cli", "demo", "--rules", "trimed_mean"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    _assert_one_line_error(done.returncode, done.stdout, done.stderr, "error: Unknown aggregation rule 'trimed_mean'.")


# --------------------------------------------------------------------------- chains and pre-aggregators


def test_demo_rejects_a_lone_preaggregator(capsys):
    argv = ["demo", "--nodes", "16", "--rounds", "1", "--rules", "mean,nnm"]
    _assert_one_line_error(*run(capsys, *argv), "error: nnm is a pre-aggregator: chain it in front of a rule, e.g. nnm+trimmed_mean.")


def test_bench_accepts_a_chain(capsys):
    argv = ["bench", "aggregators", "--nodes", "4", "--inbox", "5", "--dim", "16", "--rules", "nnm+trimmed_mean", "--repeats", "1"]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    rows = {row["rule"]: row for row in _table(out)}
    assert "nnm+trimmed_mean" in rows and float(rows["nnm+trimmed_mean"]["x mean"]) > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--rules", ","], "names no rule"),
        (["demo", "--dim", "0"], "--dim must be >= 1"),
        (["demo", "--byzantine", "-1"], "--byzantine must be >= 0"),
        (["bench", "aggregators", "--f", "-1"], "--f must be >= 0"),
    ],
)
def test_out_of_range_options_are_usage_errors(argv, message, capsys):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_compilation_cache_location(monkeypatch, tmp_path):
    from decentral.compilation_cache import compilation_cache_dir

    monkeypatch.setenv("DECENTRAL_COMPILATION_CACHE", "off")
    assert compilation_cache_dir() is None
    monkeypatch.setenv("DECENTRAL_COMPILATION_CACHE", str(tmp_path))
    assert compilation_cache_dir() == str(tmp_path)
    monkeypatch.delenv("DECENTRAL_COMPILATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == str(tmp_path / "decentral" / "jax")


# --------------------------------------------------------------------------- threat-model warning

RING = (
    '[network]\ntopology = "ring"\nparams = { n = 8 }\n'
    '[run]\ntask = "averaging"\nrounds = 2\neval_every = 2\n'
)


def _warnings_of(tmp_path, monkeypatch, capsys, text, command="run"):
    """The ``warning:`` lines of ``decentral COMMAND`` on a scenario (its points validated
    and checked, but not run: the runner is replaced by one that runs nothing)."""
    from decentral import runner

    monkeypatch.setattr(runner, "execute_all", lambda *args, **kwargs: iter(()))
    path = tmp_path / "scenario.toml"
    path.write_text(RING + text)
    code, _, err = run(capsys, command, str(path), "--db", str(tmp_path / "r.sqlite"))
    assert code == 0, err
    return [line for line in err.splitlines() if line.startswith("warning:")], path


def test_a_node_over_its_f_is_warned_of_in_one_line(tmp_path, monkeypatch, capsys):
    lines, path = _warnings_of(
        tmp_path, monkeypatch, capsys, '[placement]\nstrategy = "manual"\ncount = 1\nparams = { ids = [0] }\n'
    )
    assert lines == [
        f"warning: {path}: 2 of 7 honest nodes have more Byzantine in-neighbours than their f "
        "(e.g. node 1: 1 Byzantine in-neighbours, f=0)."
    ]


def test_a_disconnected_honest_graph_is_warned_of(tmp_path, monkeypatch, capsys):
    lines, path = _warnings_of(
        tmp_path, monkeypatch, capsys,
        '[placement]\nstrategy = "manual"\ncount = 2\nparams = { ids = [0, 4] }\n'
        '[defense]\naggregator = "trimmed_mean"\nf = 1\n',
    )
    assert lines == [f"warning: {path}: the honest subgraph is disconnected (2 components)."]


def test_a_sweep_is_warned_of_in_one_line_naming_how_many_points(tmp_path, monkeypatch, capsys):
    lines, path = _warnings_of(
        tmp_path, monkeypatch, capsys,
        '[placement]\nstrategy = "manual"\ncount = 1\nparams = { ids = [0] }\n'
        '[defense]\naggregator = "trimmed_mean"\n[sweep]\n"defense.f" = [1, 0]\n"run.seed" = [0, 1, 2]\n',
        command="sweep",
    )
    assert lines == [
        f"warning: {path}: 3 of 6 points break the threat model; e.g. defense.f=0, run.seed=0: 2 of 7 honest nodes "
        "have more Byzantine in-neighbours than their f (e.g. node 1: 1 Byzantine in-neighbours, f=0) "
        "(every run's diagnostics: decentral export --what runs)."
    ]


def test_a_sound_scenario_is_not_warned_of(tmp_path, monkeypatch, capsys):
    lines, _ = _warnings_of(
        tmp_path, monkeypatch, capsys,
        '[placement]\nstrategy = "manual"\ncount = 1\nparams = { ids = [0] }\n[defense]\naggregator = "trimmed_mean"\nf = 1\n',
    )
    assert lines == []
