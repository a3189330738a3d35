"""The command line answers ``--help``, ``list`` and usage errors without importing JAX or
matplotlib (that import is what makes a command take seconds), and its checks without
them (``decentral.catalogue``) give the registry's answers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from decentral import catalogue, cli

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "matplotlib")
# Runs the command line in-process, then writes which of HEAVY it imported to $LOADED_REPORT
# (also after argparse's SystemExit, as for --help).
WRAPPER = f"""
import os, sys
from decentral.cli import main
try:
    code = main(sys.argv[1:])
finally:
    with open(os.environ["LOADED_REPORT"], "w") as report:
        report.write(" ".join(name for name in {HEAVY!r} if name in sys.modules))
sys.exit(code)
"""

# argv -> how stdout starts (exit status 0) or stderr starts (exit status 2)
QUICK = {
    "help": (["--help"], 0, "usage: decentral"),
    "plot-help": (["plot", "--help"], 0, "usage: decentral plot"),
    "list": (["list"], 0, "Aggregation rules and pre-aggregators (decentral.aggregators):"),
    "list-rules": (["list", "rules"], 0, "Aggregation rules and pre-aggregators (decentral.aggregators):"),
    "list-datasets": (["list", "datasets"], 0, "Datasets (decentral.data):"),
    "missing-scenario": (["run", "no-such-file.toml"], 2, "error: scenario file 'no-such-file.toml' not found."),
    "unknown-command": (["frobnicate"], 2, "error: decentral: argument command: invalid choice: 'frobnicate'"),
    "unknown-option": (["demo", "--bogus"], 2, "error: decentral: unrecognized arguments: --bogus"),
    "misspelled-rule": (["demo", "--rules", "trimed_mean"], 2, "error: Unknown aggregation rule 'trimed_mean'. Did you mean 'trimmed_mean'?"),
    "misspelled-rule-bench": (["bench", "aggregators", "--rules", "krun"], 2, "error: Unknown aggregation rule 'krun'."),
    "lone-preaggregator": (["demo", "--rules", "nnm"], 2, "error: nnm is a pre-aggregator"),
    "out-of-range": (["demo", "--nodes", "0"], 2, "error: decentral demo: --nodes must be >= 1, got 0"),
    "missing-study": (["reproduce", "no_such_study"], 2, "error: decentral reproduce: no study 'no_such_study'"),
    "missing-database": (["plot", "curves", "--db", "no-such.sqlite", "--out", "x"], 2, "error: decentral plot curves: no results database at no-such.sqlite"),
    "place-search-help": (["place-search", "--help"], 0, "usage: decentral place-search"),
    "place-search-budget": (["place-search", "x.toml", "--budget", "0"], 2, "error: decentral place-search: --budget must be >= 1, got 0"),
    "missing-export": (["export", "--db", "no-such.sqlite"], 2, "error: decentral export: no results database at no-such.sqlite"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(QUICK))
def test_answers_without_jax_or_matplotlib(case, tmp_path):
    argv, code, start = QUICK[case]
    report = tmp_path / "loaded"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "LOADED_REPORT": str(report)}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert (done.stdout if code == 0 else done.stderr).startswith(start), (done.stdout, done.stderr)
    assert report.read_text() == "", f"{argv} imported {report.read_text()}"


# --------------------------------------------------------------------------- the checks of --rules


def _outcome(check, text, preaggregators_alone):
    """The error message of checking ``--rules text``, or None when it passes."""
    try:
        check(cli._rule_names(text), preaggregators_alone=preaggregators_alone)
    except cli.UsageError as error:
        return str(error)
    return None


def _with_catalogue_first(configs, *, preaggregators_alone):
    rest = cli._check_with_catalogue(configs, preaggregators_alone=preaggregators_alone)
    cli._check_with_registry(rest, preaggregators_alone=preaggregators_alone)


RULE_LISTS = [
    *catalogue.RULES,
    "trimed_mean", "krun", "mean,trimed_mean", "Mean", "nnm+trimed_mean", "nnm+", "+mean", "nnm+trimmed_mean",
    "nnm+arc+krum", "median+trimmed_mean", "krum+nnm", "nnm+nnm", "median+trimmed_mean,trimed_mean",
    "mean,nnm,krun", "no_such_module:rule", "nnm+no_such_module:rule", "decentral.catalogue:RULES", "mean, nnm+clip+median",
]  # fmt: skip


@pytest.mark.parametrize("preaggregators_alone", [False, True])
@pytest.mark.parametrize("text", RULE_LISTS)
def test_catalogue_checks_rules_as_the_registry_does(text, preaggregators_alone):
    expected = _outcome(cli._check_with_registry, text, preaggregators_alone)
    assert _outcome(_with_catalogue_first, text, preaggregators_alone) == expected


@pytest.mark.parametrize("text", ["mean,median,nnm+trimmed_mean", "nnm+arc+krum", "krum"])
def test_catalogue_passes_registered_rules_alone(text):
    assert cli._check_with_catalogue(cli._rule_names(text), preaggregators_alone=False) == []


@pytest.mark.parametrize("text", ["trimed_mean", "nnm", "mean,krun", "nnm+trimed_mean"])
def test_catalogue_reports_mistakes_alone(text):
    with pytest.raises(cli.UsageError):
        cli._check_with_catalogue(cli._rule_names(text), preaggregators_alone=False)
