"""Figures from a results database (``decentral plot``, ``decentral reproduce``).

Runs are selected with ``where`` (config paths to values, e.g. ``{"attack.name": "alie"}``)
and grouped by config paths (``group``, ``rows``, ``columns``, ``x``). Runs that fall in the
same group or cell (e.g. several seeds) are pooled: their repeats are stacked, so bands
and error bars span every replicate of every matching run; when pooled runs differ in a
config path other than the seeds that the figure neither groups nor selects, a warning
names it. Every figure has axis labels and, unless told otherwise, a title saying what
its selection fixes (:func:`decentral.figure_text.default_title`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import plots, results
from . import figure_text as text
from .scenario import value_label as label

#: What ``versus`` can put on x besides a numeric config path (e.g. ``network.params.n``).
DERIVED_X = {
    "byzantine_fraction": "Byzantine nodes / n",
    "nodes": "number of nodes n",
    "spectral_gap": "spectral gap of the honest mixing matrix",
    "algebraic_connectivity": "algebraic connectivity of the honest subgraph",
}


def select(connection, where: dict | None = None, ids: Sequence[str] | None = None) -> list[results.StoredRun]:
    """Finished runs whose config matches every ``where`` entry (a value or its label).

    ``ids``: only the runs with these ids, in this order (a study's points in sweep order,
    so a figure neither depends on which of parallel runs started first nor shows runs
    that are no longer the study's); None: every finished run, in the order they started."""
    stored = results.runs(connection)
    if ids is not None:
        position = {key: index for index, key in enumerate(ids)}
        stored = sorted((run for run in stored if run.id in position), key=lambda run: position[run.id])
    return _matching(stored, where)


def _matching(runs, where: dict | None) -> list[results.StoredRun]:
    """The runs whose config matches every ``where`` entry, in their order."""
    return [run for run in runs if all(_matches(run, path, value) for path, value in (where or {}).items())]


def _matches(run: results.StoredRun, path: str, wanted) -> bool:
    """The value at ``path`` is ``wanted``, or has its label, with parameters
    (``alie(optimal=true)``) or without (``alie``)."""
    value = _value(run, path)
    return value == wanted or label(wanted, path) in (label(value, path), label(value, path, parameters=False))


def _value(run: results.StoredRun, path: str):
    try:
        return run.value(path)
    except KeyError:
        raise ValueError(f"no config key {path!r} in the runs (e.g. defense.aggregator, attack.name)") from None


def _groups(runs, path: str | None) -> dict[str, list[results.StoredRun]]:
    """Runs by the label of their value at ``path`` (in the order first seen); one group if None."""
    groups: dict[str, list[results.StoredRun]] = {}
    for run in runs:
        key = label(_value(run, path), path) if path else "all runs"
        groups.setdefault(key, []).append(run)
    return groups


def _pooled_series(connection, runs, name: str, stat: str):
    """rounds [E] and values [E, sum of repeats] of several runs (their repeats stacked);
    a run that diverged stopped early, so its missing rounds are NaN."""
    loaded = [results.series(connection, run.id, name, stat) for run in runs]
    rounds = max((these for these, _ in loaded), key=len)
    blocks = []
    for run, (these, values) in zip(runs, loaded, strict=True):
        early = run.diverged_round is not None and np.array_equal(these, rounds[: these.size])
        if not early and not np.array_equal(rounds, these):
            raise ValueError(f"runs grouped together evaluate at different rounds ({run.id}); select with --where.")
        padded = np.full((rounds.size, values.shape[1]), np.nan)
        padded[: these.size] = values
        blocks.append(padded)
    return rounds, np.concatenate(blocks, axis=1)


def _diverged_label(key: str, runs) -> str:
    """A legend entry, saying when some of its runs diverged (and the first round)."""
    rounds = [run.diverged_round for run in runs if run.diverged_round is not None]
    if not rounds:
        return key
    return f"{key} (diverged at round {min(rounds)})" if len(rounds) == len(runs) else (
        f"{key} ({len(rounds)} of {len(runs)} runs diverged)")


def _final(connection, runs, name: str = "test_accuracy", stat: str = "mean") -> np.ndarray:
    """The metric at each run's final evaluation, repeats of all runs stacked."""
    return np.concatenate([results.series(connection, run.id, name, stat)[1][-1] for run in runs])


class NoRuns(ValueError):
    """No finished run matches a figure's selection."""


def _need(runs, what: str):
    if not runs:
        raise NoRuns(f"no finished run matches the selection for the {what} figure.")
    return runs


def make(kind: str, database, stem, *, where=None, group=None, rows=None, columns=None, x=None,
         metric: str = "test_accuracy", stat: str = "mean", mark: str = "row", log_x: bool = False, title=None,
         vmin=None, vmax=None, chance="auto", worst_over=None, formats=("png", "svg"), log_y: bool = False,
         ids: Sequence[str] | None = None) -> list[Path]:
    """Draw one figure of ``kind`` (see :data:`KINDS`) from ``database``; returns the files written.

    ``ids``: draw only these runs, in this order (see :func:`select`); None: every finished run.

    ``stat`` (heatmap, versus): which summary over honest nodes of a per-node metric, e.g.
    "mean" or "min" (the worst honest node); "value" for a scalar metric such as
    averaged_accuracy. ``mark`` (heatmap): outline the worst cell of each "row", each
    "column", or "none". ``log_x``, ``log_y`` (versus): a logarithmic x or y axis. ``title``: None for
    the default (what the selection fixes), "" for none. ``vmin``/``vmax`` (heatmap): the
    colour range, 0 and 1 for an accuracy unless given, else the data's. ``chance``
    (heatmap): the chance level marked on the colour bar: "auto" (1 / classes of the runs'
    dataset, for an accuracy), "none", or a number in (0, 1). ``worst_over`` (heatmap): a
    config path, e.g. "attack": each cell shows the worst, over that path's values, of the
    mean of the cell's runs with that value (the lowest for an accuracy, the highest for
    any other metric), as ByzFL's benchmark shows the accuracy under the worst attack."""
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; available: {', '.join(KINDS)}.")
    if worst_over is not None and (kind != "heatmap" or not isinstance(worst_over, str) or not worst_over):
        raise ValueError(f"worst_over is a heatmap option naming a config path (e.g. \"attack\"); got {worst_over!r} "
                         f"for a {kind} figure.")
    if not Path(database).is_file():
        raise ValueError(f"no results database at {database}")
    for name, value in (("vmin", vmin), ("vmax", vmax)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{name} must be a number; got {value!r}.")
    connection = results.connect(database)
    try:
        everything = select(connection, None, ids)
        runs = _need(_matching(everything, where), kind)
        chance = text.chance_level(runs, chance, metric)
        if title is None:
            shown = [path for path in (group, rows, columns, x, worst_over) if path]
            title = text.default_title(everything, runs, where or {}, shown) or None
        return _DRAWERS[kind](connection, runs, stem, group=group, rows=rows, columns=columns, x=x, metric=metric,
                              stat=stat, mark=mark, log_x=log_x, log_y=log_y, title=title or None, formats=formats,
                              where=where or {}, vmin=vmin, vmax=vmax, chance=chance, worst_over=worst_over)
    finally:
        connection.close()


def _shown(where, *paths) -> tuple:
    """The paths a figure groups or selects by: pooled runs may differ only outside them."""
    return tuple(where) + tuple(path for path in paths if path)


def _curves(connection, runs, stem, *, group, metric, title, formats, where, **_):
    """Learning curves of honest accuracy (mean and worst node), one line per --group value."""
    curves = []
    pools = _groups(runs, group)
    text.warn_pooled(pools, _shown(where, group), "the curve")
    for key, members in pools.items():
        try:
            rounds, mean = _pooled_series(connection, members, metric, "mean")
            _, low = _pooled_series(connection, members, metric, "min")
        except KeyError:  # a metric stored once per replicate (averaged_accuracy) has no worst node: no band
            (rounds, mean), low = _pooled_series(connection, members, metric, "value"), None
        curves.append(plots.Curve(_diverged_label(key, members), rounds, mean, low))
    return plots.learning_curves(curves, stem, metric=metric.removeprefix("test_").replace("_", " "), title=title,
                                 legend_title=_legend_title(group), formats=formats)


def _legend_title(group) -> str | None:
    return text.short(group) if group else None


def _consensus(connection, runs, stem, *, group, title, formats, where, **_):
    """Consensus distance over rounds (log scale), one line per --group value."""
    curves = []
    pools = _groups(runs, group)
    text.warn_pooled(pools, _shown(where, group), "the curve")
    for key, members in pools.items():
        rounds, values = _pooled_series(connection, members, "consensus_distance", "value")
        curves.append(plots.Curve(_diverged_label(key, members), rounds, np.maximum(values, 1e-30)))
    return plots.learning_curves(curves, stem, metric="consensus distance", title=title, log=True,
                                 legend_title=_legend_title(group), formats=formats)


def _heatmap(connection, runs, stem, *, rows, columns, metric, stat, mark, title, formats, where, vmin, vmax, chance,
             worst_over=None, **_):
    """Final honest accuracy, --rows x --columns, the worst cell of each row (--mark) outlined, a diverged cell marked."""
    if mark not in ("row", "column", "none"):
        raise ValueError(f"mark must be row, column or none; got {mark!r}.")
    if not rows or not columns:
        raise ValueError("a heatmap needs --rows and --columns (config paths, e.g. defense.aggregator and attack.name).")
    by_row = _groups(runs, rows)
    column_labels = list(_groups(runs, columns))
    values = np.full((len(by_row), len(column_labels)), np.nan)
    notes = [[None] * len(column_labels) for _ in by_row]
    cells = {}
    for i, (row, members) in enumerate(by_row.items()):
        for key, cell in _groups(members, columns).items():
            j = column_labels.index(key)
            cells[f"{row} x {key}"] = cell
            if any(run.diverged_round is not None for run in cell):
                notes[i][j] = "diverged"
            else:
                values[i, j] = cell_value(connection, cell, metric, stat, worst_over)
    text.warn_pooled(cells, _shown(where, rows, columns, worst_over), "the cell")
    label = _metric_label(metric, stat) + (f", worst {text.short(worst_over)}" if worst_over else "")
    return plots.heatmap(values, list(by_row), column_labels, stem, title=title, mark_worst=None if mark == "none" else mark,
                         metric=label, xlabel=text.short(columns), ylabel=text.short(rows),
                         **_limits(metric, vmin, vmax), chance=chance, notes=notes, formats=formats)


def cell_value(connection, cell, metric: str, stat: str, worst_over: str | None = None) -> float:
    """A heatmap cell: the mean final metric of its runs (repeats pooled); with
    ``worst_over`` a config path, the worst of those means over the path's values (the
    lowest for an accuracy, the highest for any other metric)."""
    if worst_over is None:
        return float(_final(connection, cell, metric, stat).mean())
    means = [_final(connection, members, metric, stat).mean() for members in _groups(cell, worst_over).values()]
    return float(min(means) if text.is_accuracy(metric) else max(means))


def _limits(metric: str, vmin, vmax) -> dict:
    """A heatmap's colour range: as given; an end not given is 0 or 1 for an accuracy, else the data's."""
    if text.is_accuracy(metric):
        vmin, vmax = 0.0 if vmin is None else vmin, 1.0 if vmax is None else vmax
    return {"vmin": vmin, "vmax": vmax}


def _metric_label(metric: str, stat: str) -> str:
    name = metric.removeprefix("test_").replace("_", " ")
    return {"mean": f"final honest {name}", "min": f"final {name}, worst node", "value": f"final {name}"}.get(
        stat, f"final {name} ({stat} of nodes)")


def _scenario_from(config: dict):
    from .scenario import scenario_from_dict

    return scenario_from_dict({key: value for key, value in config.items() if key != "sweep"})


def _graph_of(run: results.StoredRun):
    """The run's graph and Byzantine nodes, rebuilt from its config (seeded, so exact)."""
    return _graph_from_config(json.dumps(run.config, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _graph_from_config(config: str):
    """Cached: several figures of one study ask for the same graphs, and a placement with
    repair on 10,000 nodes takes seconds."""
    from .engine import graph_and_byzantine

    table = json.loads(config)
    graph, byzantine, _ = graph_and_byzantine(_scenario_from(table))
    return graph, byzantine


def x_value(run: results.StoredRun, x: str) -> float:
    """A run's value on a ``versus`` figure's x axis (see :data:`DERIVED_X`)."""
    if x in ("byzantine_fraction", "nodes", "spectral_gap", "algebraic_connectivity"):
        graph, byzantine = _graph_of(run)
        if x == "nodes":
            return float(graph.number_of_nodes())
        if x == "byzantine_fraction":
            return len(byzantine) / graph.number_of_nodes()
        import topologies

        from .engine.plan import network_weights

        weights = network_weights(_scenario_from(run.config).network)
        report = topologies.analyze(graph, byzantine, kind=weights["weights"], byzantine_weight=weights["byzantine_weight"])
        return float(getattr(report, x))
    value = _value(run, x)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"--x {x!r} is not numeric ({value!r}); use a numeric config path or one of {', '.join(DERIVED_X)}.")
    return float(value)


def _y_values(connection, runs, metric: str, stat: str) -> np.ndarray:
    if metric == "seconds":
        return np.asarray([run.seconds for run in runs], dtype=float)
    return _final(connection, runs, metric, stat)


def _versus(connection, runs, stem, *, group, x, metric, stat, log_x, log_y, title, formats, where, **_):
    """Final honest accuracy (or --metric seconds) against --x, one line per --group value."""
    if not x:
        raise ValueError(f"a versus figure needs --x: a numeric config path or one of {', '.join(DERIVED_X)}.")
    series = []
    for key, members in _groups(runs, group).items():
        by_x: dict[float, list] = {}
        for run in members:
            by_x.setdefault(x_value(run, x), []).append(run)
        text.warn_pooled({f"{key} at {x}={value:g}": by_x[value] for value in by_x}, _shown(where, group, x), "the point")
        xs = sorted(by_x)
        ys = [_y_values(connection, by_x[value], metric, stat) for value in xs]
        width = min(len(values) for values in ys)  # the same number of replicates at every x
        ordered = x not in ("spectral_gap", "algebraic_connectivity")  # a swept quantity, not a measured one
        series.append(plots.Series(key, np.asarray(xs), np.stack([values[:width] for values in ys]), connect=ordered))
    ylabel = "wall time (s)" if metric == "seconds" else _metric_label(metric, stat)
    return plots.versus(series, stem, xlabel=DERIVED_X.get(x, text.short(x)), ylabel=ylabel, title=title, log_x=log_x,
                        legend_title=_legend_title(group), formats=formats, log_y=log_y)


def _communities(connection, runs, stem, *, group, metric, title, formats, where, vmin, vmax, chance, **_):
    """Final honest accuracy in each community of the graph and overall, one row per --group value."""
    rows, table = [], []
    columns = None
    pools = _groups(runs, group)
    text.warn_pooled(pools, _shown(where, group), "the row")
    for key, members in pools.items():
        sums: dict = {}
        for run in members:
            graph, _ = _graph_of(run)
            community = dict(graph.nodes(data="community"))
            if any(value is None for value in community.values()):
                raise ValueError(f"run {run.id}'s graph has no communities (a node without a 'community' attribute).")
            nodes, values = results.per_node(connection, run.id, metric)
            for node, value in zip(nodes, values.mean(axis=0)):
                for name in (f"community {community[int(node)]}", "all honest"):
                    sums.setdefault(name, []).append(value)
        names = sorted(name for name in sums if name != "all honest") + ["all honest"]
        if columns is not None and names != columns:
            raise ValueError("runs grouped together have different communities; select with --where.")
        columns = names
        rows.append(key)
        table.append([np.mean(sums[name]) for name in names])
    return plots.heatmap(np.asarray(table), rows, columns, stem, title=title, mark_worst=None,
                         metric=_metric_label(metric, "mean"), xlabel="community", ylabel=_legend_title(group),
                         **_limits(metric, vmin, vmax), chance=chance, formats=formats)


def _graph(connection, runs, stem, *, metric, title, formats, **_):
    """The graph coloured by each node's final accuracy, Byzantine nodes marked (one run)."""
    if len(runs) != 1:
        raise ValueError(f"a graph figure shows one run; {len(runs)} match: narrow the selection with --where.")
    (run,) = runs
    if run.diverged_round is not None:
        raise ValueError(f"the graph figure colours nodes by their final {metric}, and run {run.id} diverged at "
                         f"round {run.diverged_round} (its models are non-finite): select another run with --where.")
    graph, byzantine = _graph_of(run)
    nodes, values = results.per_node(connection, run.id, metric)
    accuracy = np.full(graph.number_of_nodes(), np.nan)
    accuracy[nodes] = values.mean(axis=0)
    return plots.graph_accuracy(graph, accuracy, byzantine, stem, title=title, formats=formats)


_DRAWERS = {
    "curves": _curves, "consensus": _consensus, "heatmap": _heatmap, "versus": _versus,
    "communities": _communities, "graph": _graph,
}
#: Figure kind -> what it shows (its drawer's docstring).
KINDS = {kind: draw.__doc__.rstrip(".") for kind, draw in _DRAWERS.items()}
