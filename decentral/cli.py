"""The ``decentral`` command line.

Usage and configuration errors print one line to stderr and exit with status 2; no
traceback ever reaches the user for them. Parsing, ``list`` and the checks that need no
engine (files, rule names) read :mod:`decentral.catalogue`, so they answer before JAX or
matplotlib is imported; each command imports what it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from . import catalogue
from .compilation_cache import use_compilation_cache as _use_compilation_cache
from ._hints import did_you_mean


class UsageError(Exception):
    """A mistake in the command line or a config: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _rule_names(text: str) -> list:
    """``"mean,krum,nnm+trimmed_mean"`` -> ``["mean", "krum", ["nnm", "trimmed_mean"]]``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--rules {text!r} names no rule; give e.g. --rules mean,trimmed_mean")
    return [name.split("+") if "+" in name else name for name in names]


def _at_least(command: str, minimum: int, **values) -> None:
    for name, value in values.items():
        if value < minimum:
            raise UsageError(f"{command}: --{name} must be >= {minimum}, got {value}")


def _check_rules(configs, *, preaggregators_alone: bool = False) -> None:
    """Usage errors for the rules of ``--rules``: the catalogue decides without JAX; what it
    cannot vouch for goes to the registry, whose messages are the real ones. Once the
    registry is loaded (rules may have been registered in this process), it decides alone."""
    if "decentral.aggregators" not in sys.modules:
        configs = _check_with_catalogue(configs, preaggregators_alone=preaggregators_alone)
    _check_with_registry(configs, preaggregators_alone=preaggregators_alone)


def _check_with_catalogue(configs, *, preaggregators_alone: bool) -> list:
    """Raise the registry's error for the first unknown rule name or lone pre-aggregator;
    return the configs from the first one the catalogue cannot vouch for (a plug-in path,
    a chain out of order) on, for the registry to check."""
    for index, config in enumerate(configs):
        steps = config if isinstance(config, list) else [config]
        for step in steps:
            if step not in catalogue.RULES:
                if ":" in step:
                    return configs[index:]
                raise UsageError(_unknown_rule(step))
        *pre, last = (catalogue.RULES[step] for step in steps)
        if not all(rule.preaggregator for rule in pre) or (pre and last.preaggregator):
            return configs[index:]
        if last.preaggregator and not preaggregators_alone:
            raise UsageError(_lone_preaggregator(config))
    return []


def _unknown_rule(name: str) -> str:
    """The registry's message for an unknown rule name (``decentral.aggregators.resolve``).

    tests/test_cli_speed.py holds the two messages equal."""
    valid = catalogue.RULES
    return f"Unknown aggregation rule {name!r}.{did_you_mean(name, valid)} Valid names: {', '.join(sorted(valid))}."


def _lone_preaggregator(name: str) -> str:
    return f"{name} is a pre-aggregator: chain it in front of a rule, e.g. {name}+trimmed_mean."


def _check_with_registry(configs, *, preaggregators_alone: bool) -> None:
    if not configs:
        return
    from . import aggregators as agg

    for config in configs:
        try:
            spec = agg.resolve(config)
        except ValueError as error:
            raise UsageError(str(error)) from None
        if spec.preaggregator and not preaggregators_alone:
            raise UsageError(_lone_preaggregator(spec.name))


def _demo(args) -> int:
    rules = _rule_names(args.rules) if args.rules is not None else None
    if rules is not None:
        _check_rules(rules)
    _at_least("decentral demo", 1, nodes=args.nodes, dim=args.dim, rounds=args.rounds)
    _at_least("decentral demo", 0, byzantine=args.byzantine, f=args.f)
    _use_compilation_cache()
    from .demo import DEMO_RULES, format_demo, run_demo

    if rules is None:
        rules = list(DEMO_RULES)
    scenario = dict(nodes=args.nodes, byzantine=args.byzantine, dim=args.dim, rounds=args.rounds, f=args.f, seed=args.seed)
    try:
        rows = run_demo(rules=rules, **scenario)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(format_demo(rows, **scenario))
    return 0


def _load_points(file, rounds=None):
    from .scenario import load_scenario

    try:
        scenario = load_scenario(file)
        if rounds is not None:
            scenario = scenario.replace(**{"run.rounds": rounds, "run.eval_every": min(rounds, scenario.run.eval_every)})
        return scenario.points()
    except (ValueError, TypeError, OSError) as error:
        raise UsageError(str(error)) from None


def _label(axes: dict) -> str:
    from .scenario import value_label

    return ", ".join(f"{axis}={value_label(value, axis)}" for axis, value in axes.items()) or "(single run)"


def _execute(args, *, jobs: int, rerun: bool) -> int:
    """Run a scenario file's points into its results database, then print the table."""
    _at_least(f"decentral {args.command}", 1, jobs=jobs)
    if args.rounds is not None:
        _at_least(f"decentral {args.command}", 1, rounds=args.rounds)
    if args.checkpoint_seconds < 0:
        raise UsageError(f"decentral {args.command}: --checkpoint-seconds must be >= 0, got {args.checkpoint_seconds}")
    loaded = _load_points(args.file, args.rounds)
    from . import results, runner

    try:
        points = runner.unique_points(loaded)  # their run ids: a plug-in whose module is missing fails here
    except ValueError as error:
        raise UsageError(f"{args.file}: {_one_line(error)}") from None
    _use_compilation_cache()
    _validate(args.file, points)
    database = args.db or results.default_path(args.file)
    options = dict(per_node=args.per_node, checkpoint_seconds=args.checkpoint_seconds, rerun=rerun)
    print(f"{len(points)} point(s) -> {database}", file=sys.stderr, flush=True)
    outcomes = runner.execute_all(database, points, jobs=jobs, progress=sys.stderr.isatty() and jobs == 1, **options)
    rows, failures = _report(outcomes, len(points))
    if rows:
        print(_summary_table(rows))
    if failures:
        if all(isinstance(error, ValueError) for _, error in failures):
            label, error = failures[0]
            more = f" (and {len(failures) - 1} more point(s) failed)" if len(failures) > 1 else ""
            raise UsageError(f"{args.file}: {label}: {_one_line(error)}{more}")
        return _failed(failures)
    return 0


def _report(outcomes, total: int) -> tuple[list, list]:
    """Print one progress line per finished point; ``(rows, failures)``: (label, summary) of
    the points that ran or were skipped, (label, exception) of those that failed."""
    rows, failures = [], []
    for done, (axes, outcome) in enumerate(outcomes, start=1):
        label = _label(axes)
        if isinstance(outcome, Exception):
            failures.append((label, outcome))
            state = f"failed: {_one_line(outcome)}"
        else:
            rows.append((label, outcome.summary))
            state = outcome.status
            if outcome.summary.get("diverged_round") is not None:
                state += f" (diverged at round {outcome.summary['diverged_round']})"
        print(f"[{done}/{total}] {label}: {state}", file=sys.stderr, flush=True)
    return rows, failures


def _failed(failures) -> int:
    print(f"error: {len(failures)} point(s) failed; finished points are kept, rerun to retry.", file=sys.stderr)
    return 1


def _validate(file, points) -> None:
    """Build every point (no compilation) so that a bad one is reported before anything
    runs, then warn of the points whose threat model is broken (see :func:`_threat_warning`)."""
    from .engine import build, threat_model

    broken = []
    for axes, point in points:
        try:
            plan = build(point)
        except (ValueError, TypeError) as error:
            raise UsageError(f"{file}: {_label(axes)}: {_one_line(error)}") from None
        problems = threat_model(plan.network, plan.f_nodes).problems()
        if problems:
            broken.append((axes, problems))
    if broken:
        warnings.warn(_threat_warning(file, broken, len(points)), stacklevel=2)


def _threat_warning(file, broken, total: int) -> str:
    """One line for the whole sweep, however many of its points are broken: how many, and
    the first one's problems (a 300-point sweep would otherwise print 300 lines before
    its progress). Each run's diagnostics are in the database for the rest."""
    axes, problems = broken[0]
    if total == 1:
        return f"{file}: {problems}."
    return (
        f"{file}: {len(broken)} of {total} points break the threat model; e.g. {_label(axes)}: {problems} "
        "(every run's diagnostics: decentral export --what runs)."
    )


def _one_line(error: Exception) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split()) or type(error).__name__


def _run(args) -> int:
    return _execute(args, jobs=1, rerun=args.rerun)


def _sweep(args) -> int:
    return _execute(args, jobs=args.jobs, rerun=False)


def _formats(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _parse_where(items, option: str = "--where") -> dict:
    """``["attack.name=alie", "placement.count=3"]`` -> ``{"attack.name": "alie", "placement.count": 3}``
    (values parsed as JSON when they are JSON, else kept as text)."""
    where = {}
    for item in items or ():
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"{option} {item!r}: expected PATH=VALUE, e.g. attack.name=alie")
        try:
            where[path.strip()] = json.loads(text)
        except json.JSONDecodeError:
            where[path.strip()] = text.strip()
    return where


def _plot(args) -> int:
    try:
        written = _draw(args)
    except (ValueError, KeyError) as error:
        raise UsageError(f"decentral plot {args.kind}: {_one_line(error)}") from None
    for path in written:
        print(path)
    return 0


def _draw(args) -> list:
    """The files of ``decentral plot``; the options and the database are checked before
    matplotlib is imported."""
    where = _parse_where(args.where, option="--where")
    if not Path(args.db).is_file():
        raise ValueError(f"no results database at {args.db}")
    from . import figures

    return figures.make(
        args.kind, args.db, args.out, where=where, group=args.group, rows=args.rows,
        columns=args.columns, x=args.x, metric=args.metric, stat=args.stat, mark=args.mark, log_x=args.log_x, log_y=args.log_y,
        title=args.title, vmin=args.vmin, vmax=args.vmax, chance=_chance(args.chance), worst_over=args.worst_over,
        formats=_formats(args.format),
    )


def _chance(text: str):
    """``--chance``: "auto", "none" or a number (checked by the figure)."""
    try:
        return float(text)
    except ValueError:
        return text.strip().lower()


def _reproduce(args) -> int:
    from . import study

    try:
        changes = _parse_where(args.set, option="--set")
        chosen = study.load(args.study, args.studies)
        from . import runner

        points = runner.unique_points(chosen.points(quick=args.quick, changes=changes))
    except (ValueError, TypeError, OSError) as error:
        raise UsageError(f"decentral reproduce: {_one_line(error)}") from None
    _at_least("decentral reproduce", 1, jobs=args.jobs)
    _use_compilation_cache()
    _validate(chosen.folder / "study.toml", points)
    database = chosen.database(quick=args.quick, changes=changes)
    mode = ("quick" if args.quick else "full") + (f", with {changes}" if changes else "")
    print(f"{chosen.title} ({mode}): {len(points)} point(s) -> {database}", file=sys.stderr, flush=True)
    _, failures = _report(runner.execute_all(database, points, jobs=args.jobs, progress=False), len(points))
    if failures:
        return _failed(failures)
    try:
        written, skipped = study.draw(chosen, quick=args.quick, changes=changes, out=args.out, formats=_formats(args.format))
    except (ValueError, KeyError) as error:
        raise UsageError(f"decentral reproduce: {_one_line(error)}") from None
    for path in written:
        print(path)
    if skipped:
        print(f"not in the quick sweep, so not drawn: {', '.join(skipped)}", file=sys.stderr)
    return 0


def _export(args) -> int:
    database = Path(args.db)
    if not database.is_file():
        raise UsageError(f"decentral export: no results database at {database}")
    from .export import export_csv

    count = export_csv(database, args.out, what=args.what)
    print(f"{count} rows -> {args.out}", file=sys.stderr)
    return 0


def _place_search(args) -> int:
    """``decentral place-search``: checked (``prepare``) before anything compiles."""
    _at_least("decentral place-search", 1, budget=args.budget)
    _at_least("decentral place-search", 1, **{k: v for k, v in (("rounds", args.rounds), ("batch", args.batch)) if v is not None})
    from . import place_search as ps

    try:
        setup = ps.prepare(args.file, budget=args.budget, count=args.count, max_per_neighborhood=args.max_per_neighborhood,
                           rounds=args.rounds, exhaustive=args.exhaustive, batch=args.batch)
    except (ValueError, TypeError, OSError) as error:
        raise UsageError(f"decentral place-search: {_one_line(error)}") from None
    _use_compilation_cache()
    report = ps.search(setup)
    database = args.db or ps.default_database(args.file)
    key = ps.save(report, database)
    print(ps.format_report(report))
    print(f"stored as search {key} -> {database} (decentral export --db {database} --what searches)", file=sys.stderr)
    return 0


def _summary_table(rows) -> str:
    """The points' final figures; a diverged point's figures read ``diverged@ROUND``."""
    columns = list(dict.fromkeys(key for _, summary in rows for key in summary if key != "diverged_round"))
    lines = ["| point | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for label, summary in rows:
        diverged = summary.get("diverged_round")
        cells = [
            "" if key not in summary else
            f"diverged@{diverged}" if diverged is not None and key != "seconds" else f"{summary[key]:.4g}"
            for key in columns
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bench(args) -> int:
    if args.what != "aggregators":
        raise UsageError(f"decentral bench: unknown benchmark {args.what!r}; available: aggregators")
    rules = _rule_names(args.rules) if args.rules is not None else None
    if rules:
        primitives = [name for name in rules if isinstance(name, str) and name.startswith("ops.")]
        for name in primitives:
            if name not in catalogue.BENCH_PRIMITIVES:
                raise UsageError(f"decentral bench: unknown primitive {name!r}; available: {', '.join(catalogue.BENCH_PRIMITIVES)}.")
        _check_rules([name for name in rules if name not in primitives], preaggregators_alone=True)
    _at_least("decentral bench", 1, nodes=args.nodes, inbox=args.inbox, dim=args.dim, repeats=args.repeats)
    _at_least("decentral bench", 0, f=args.f, block=args.block)
    block = args.block or args.nodes
    _use_compilation_cache()
    from .bench import bench_aggregators, format_table

    timings = bench_aggregators(
        nodes=args.nodes, inbox=args.inbox, dim=args.dim, rules=rules, f=args.f, block=block, repeats=args.repeats
    )
    print(format_table(timings, nodes=args.nodes, inbox=args.inbox, dim=args.dim, block=block))
    return 0


def _robustness(args) -> int:
    rules = _rule_names(args.rules)
    _check_rules(rules)
    _use_compilation_cache()
    from . import robustness

    try:
        results = robustness.measure(
            rules, inbox=args.inbox, fs=args.f, dims=args.dims, attack_names=args.attacks,
            distribution=args.distribution, trials=args.trials, seed=args.seed,
        )  # fmt: skip
    except ValueError as error:
        raise UsageError(f"decentral robustness: {error}") from None
    print(robustness.format_table(results, by_attack=args.by_attack))
    return 0


def _list(args) -> int:
    what = args.what
    if what in ("rules", "all"):
        print("Aggregation rules and pre-aggregators (decentral.aggregators):")
        for name, rule in sorted(catalogue.RULES.items()):
            kind = "pre-aggregator" if rule.preaggregator else f"robustness: {rule.robustness}"
            print(f"  {name:18s} {rule.summary}  [{kind}]")
    if what in ("topologies", "all"):
        print("Topologies (topologies):")
        for name, summary in catalogue.TOPOLOGIES.items():
            print(f"  {name:18s} {summary}")
    if what in ("attacks", "all"):
        print("Attacks (attacks):")
        for name, summary in sorted(catalogue.ATTACKS.items()):
            options = f"  [{catalogue.ATTACK_OPTIONS[name]}]" if name in catalogue.ATTACK_OPTIONS else ""
            print(f"  {name:22s} {summary}{options}")
    if what in ("placements", "all"):
        print("Placement strategies (topologies.place):")
        for name, summary in catalogue.PLACEMENTS.items():
            print(f"  {name:22s} {summary}")
    if what in ("datasets", "all"):
        print("Datasets (decentral.data):")
        for name, summary in catalogue.DATASETS.items():
            print(f"  {name:26s} {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="decentral", description="Byzantine-robust decentralized learning, vectorized in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a scenario file's points one after another into its results database")
    sweep = commands.add_parser("sweep", help="run a scenario's grid, resumable (skips finished points), --jobs in parallel")
    for command in (run, sweep):
        command.add_argument("file", help="a TOML scenario, e.g. experiments/quickstart.toml")
        command.add_argument("--db", help="results database (default: results.sqlite beside FILE)")
        command.add_argument("--rounds", type=int, help="override [run] rounds (e.g. a quick check)")
        command.add_argument(
            "--per-node", choices=["final", "all"], default="final",
            help="keep per-node values at the final evaluation only (default) or at every evaluation",
        )
        command.add_argument(
            "--checkpoint-seconds", type=float, default=60.0,
            help="write metrics and a resumable checkpoint at most this often (default 60; 0: every evaluation)",
        )
    run.add_argument("--rerun", action="store_true", help="recompute points already in the database")
    run.set_defaults(run=_run)
    sweep.add_argument("--jobs", type=int, default=1, help="points run at once, one process each (memory permitting)")
    sweep.set_defaults(run=_sweep)

    plot = commands.add_parser(
        "plot", help="draw a figure from a results database",
        epilog="kinds: " + "; ".join(f"{kind}: {what}" for kind, what in catalogue.PLOT_KINDS.items()),
    )
    plot.add_argument("kind", choices=list(catalogue.PLOT_KINDS), help="which figure")
    plot.add_argument("--db", required=True, help="results database")
    plot.add_argument("--out", required=True, help="output path without suffix, e.g. figures/mine/curves")
    plot.add_argument("--where", action="append", metavar="PATH=VALUE", help="select runs, e.g. attack.name=alie (repeatable)")
    plot.add_argument("--group", help="config path giving one line per value, e.g. defense.aggregator")
    plot.add_argument("--rows", help="heatmap rows (config path)")
    plot.add_argument("--columns", help="heatmap columns (config path)")
    plot.add_argument("--x", help="versus: a numeric config path (network.params.n) or byzantine_fraction, nodes, "
                      "spectral_gap, algebraic_connectivity")
    plot.add_argument("--metric", default="test_accuracy", help="metric name (default test_accuracy; versus: also seconds)")
    plot.add_argument("--stat", default="mean", help="heatmap/versus: mean, min (worst honest node), max, q10, q50, q90, or value")
    plot.add_argument("--mark", choices=["row", "column", "none"], default="row", help="heatmap: outline the worst cell per row or column")
    plot.add_argument("--log-x", action="store_true", help="versus: a logarithmic x axis (e.g. for the number of nodes)")
    plot.add_argument("--log-y", action="store_true", help="versus: a logarithmic y axis (e.g. for an averaging error)")
    plot.add_argument("--title", help="the title (default: what the selection fixes, e.g. 'attack=alie, "
                      "placement.count=4'; '' for none)")
    plot.add_argument("--vmin", type=float, help="heatmap: the value of the lowest colour (default 0 for an accuracy, "
                      "else the smallest value)")
    plot.add_argument("--vmax", type=float, help="heatmap: the value of the highest colour (default 1 for an accuracy, "
                      "else the largest value)")
    plot.add_argument("--chance", default="auto", help="heatmap: the chance level marked on the colour bar: auto "
                      "(1 / classes of the runs' dataset, for an accuracy), none, or a number")
    plot.add_argument("--worst-over", metavar="PATH", help="heatmap: each cell the worst over this config path's values "
                      "(e.g. attack: the accuracy under the worst attack)")
    plot.add_argument("--format", default="png,svg", help="comma-separated: png, svg, pdf")
    plot.set_defaults(run=_plot)

    reproduce = commands.add_parser("reproduce", help="run a study's sweep, then draw its figures")
    reproduce.add_argument("study", help="a study name (e.g. dumbbell) under --studies, or a study folder")
    reproduce.add_argument(
        "--studies", default="experiments",
        help="the folder holding the studies by name (default: experiments, i.e. the checkout's when run from its root)",
    )
    reproduce.add_argument("--quick", action="store_true", help="the study's small version (minutes), into <study>/quick/")
    reproduce.add_argument("--jobs", type=int, default=1, help="points run at once, one process each")
    reproduce.add_argument(
        "--set", action="append", metavar="PATH=VALUE",
        help="change every point, e.g. --set data.dataset=mnist --set data.params.path=/data/mnist "
        "--set model.name=cnn (results and figures go to <study>/variant-<hash>/)",
    )
    reproduce.add_argument("--out", help="figure folder (default figures/<study>, or <study>/quick/figures)")
    reproduce.add_argument("--format", default="png,svg", help="comma-separated: png, svg, pdf")
    reproduce.set_defaults(run=_reproduce)

    export = commands.add_parser("export", help="write a results database's metrics (or runs) as CSV")
    export.add_argument("--db", required=True, help="results database")
    export.add_argument("--out", default="-", help="CSV file (default: standard output)")
    export.add_argument("--what", choices=["metrics", "runs", "searches"], default="metrics",
                        help="searches: what place-search stored")
    export.set_defaults(run=_export)

    search = commands.add_parser(
        "place-search", help="search the Byzantine set of most simulated damage (greedy + local search, or exhaustive) "
        "and compare it with the built-in placements",
    )
    search.add_argument("file", help="a TOML scenario without [sweep]; its strategy must choose existing nodes")
    search.add_argument("--budget", type=int, default=500, help="the most candidate sets scored (default 500)")
    search.add_argument("--count", type=int, help="Byzantine nodes (default: [placement] count)")
    search.add_argument("--max-per-neighborhood", type=int,
                        help="most Byzantine neighbours of any honest node (default: [placement] params)")
    search.add_argument("--rounds", type=int, help="rounds of each short simulation (default: [run] rounds)")
    search.add_argument("--exhaustive", action="store_true", help="score every feasible set (small graphs)")
    search.add_argument("--batch", type=int, help="candidates per compiled batch (default: n, at most 64)")
    search.add_argument("--db", help="results database (default: results.sqlite beside FILE)")
    search.set_defaults(run=_place_search)

    demo = commands.add_parser("demo", help="robust gossip averaging on a small-world graph, rule by rule")
    demo.add_argument("--rules", help="comma-separated rules, '+' for chains (e.g. mean,krum,nnm+trimmed_mean)")
    demo.add_argument("--nodes", type=int, default=64)
    demo.add_argument("--byzantine", type=int, default=8, help="number of Byzantine nodes (placed at random)")
    demo.add_argument("--dim", type=int, default=32)
    demo.add_argument("--rounds", type=int, default=30)
    demo.add_argument("--f", type=int, default=2, help="Byzantine rows each honest node's rule tolerates")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    bench = commands.add_parser("bench", help="benchmarks; speeds as ratios to mean gossip in the same run")
    bench.add_argument("what", choices=["aggregators"], help="which benchmark")
    bench.add_argument("--nodes", type=int, default=1000)
    bench.add_argument("--inbox", type=int, default=11, help="rows per inbox (K)")
    bench.add_argument("--dim", type=int, default=10_000)
    bench.add_argument("--rules", help="comma-separated rules or ops primitives, e.g. mean,filter,ops.centered_gram (default: all)")
    bench.add_argument("--f", type=int, default=2)
    bench.add_argument("--block", type=int, default=0, help="nodes per block (default: all at once)")
    bench.add_argument("--repeats", type=int, default=3)
    bench.set_defaults(run=_bench)

    robust = commands.add_parser("robustness", help="empirical (f, kappa)-robustness of rules under every attack")
    robust.add_argument("--rules", required=True, help="comma-separated rules, '+' for chains (e.g. trimmed_mean,filter)")
    robust.add_argument("--inbox", type=int, default=11, help="rows per inbox (K), the receiver's own included")
    robust.add_argument("--f", default="1,2", help="comma-separated numbers of Byzantine rows")
    robust.add_argument("--dims", default="10,100,1000", help="comma-separated dimensions d")
    robust.add_argument("--attacks", help="comma-separated attacks (default: every attack that writes messages)")
    robust.add_argument("--distribution", default="gaussian", choices=["gaussian", "heavy_tailed", "clustered"], help="the honest rows")
    robust.add_argument("--trials", type=int, default=32, help="honest draws per setting; kappa is the largest ratio")
    robust.add_argument("--seed", type=int, default=0)
    robust.add_argument("--by-attack", action="store_true", help="one column per attack")
    robust.set_defaults(run=_robustness)

    listing = commands.add_parser("list", help="list rules, attacks, topologies, placements or datasets, one line each")
    listing.add_argument(
        "what", nargs="?", default="all", choices=["all", "rules", "attacks", "topologies", "placements", "datasets"]
    )
    listing.set_defaults(run=_list)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line on stderr (``warning: ...``), without the source line."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``decentral`` console script."""
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
