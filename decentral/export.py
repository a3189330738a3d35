"""``decentral export``: a results database as CSV (one row per stored value, or per run)."""

from __future__ import annotations

import contextlib
import csv
import json
import sys

from . import results


def _axis_columns(runs: list[results.StoredRun]) -> list[str]:
    columns: list[str] = []
    for run in runs:
        columns += [axis for axis in run.axes if axis not in columns]
    return columns


def _cell(value) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


#: What ``export_csv`` writes.
WHAT = ("metrics", "runs", "searches")
SEARCH_COLUMNS = ("search", "entry", "nodes", "damage", "evaluations", "note", "metric", "options")


def _export_searches(connection, out) -> int:
    entries = results.placement_searches(connection)
    with _open(out) as handle:
        writer = csv.writer(handle)
        writer.writerow(SEARCH_COLUMNS)
        for entry in entries:
            writer.writerow([_cell(entry[column]) for column in SEARCH_COLUMNS])
    return len(entries)


@contextlib.contextmanager
def _open(out):
    if out in (None, "-"):
        yield sys.stdout
        return
    with open(out, "w", newline="") as handle:
        yield handle


def export_csv(database, out="-", *, what: str = "metrics") -> int:
    """Write ``what`` ("metrics": every stored value; "runs": one row per run;
    "searches": one row per entry of each ``decentral place-search``) as CSV to
    ``out`` (a path, or "-" for standard output). Each row carries the run's id and its
    sweep axes as columns. Returns the number of data rows written.

    A run's row gives its ``status`` (running, done, failed, or ``diverged``: finished,
    its honest parameters non-finite from ``diverged_round`` on), then one column per
    threat-model diagnostic (``decentral.engine.diagnostics``: ``over_f_nodes``,
    ``honest_connected``, ``spectral_gap``, ...; empty for runs stored before them).
    A search's rows: its id, the entry (``search`` or ``strategy:NAME``), the Byzantine
    ids, the damage, evaluations, note, what the damage measures, and the options."""
    if what not in WHAT:
        raise ValueError(f"export: what must be one of {', '.join(WHAT)}; got {what!r}.")
    connection = results.connect(database)
    try:
        if what == "searches":
            return _export_searches(connection, out)
        runs = results.runs(connection, status=None)
        axes = _axis_columns(runs)
        by_id = {run.id: run for run in runs}
        count = 0
        with _open(out) as handle:
            writer = csv.writer(handle)
            if what == "runs":
                found = results.diagnostics(connection)
                keys = list(dict.fromkeys(key for values in found.values() for key in values))
                writer.writerow(["run", *axes, "status", "diverged_round", "seconds", *keys, "error", "config"])
                for run in runs:
                    mine = found.get(run.id, {})
                    writer.writerow([run.id, *(_cell(run.axes.get(a)) for a in axes), run.outcome,
                                     _cell(run.diverged_round), _cell(run.seconds), *(_cell(mine.get(k)) for k in keys),
                                     _cell(run.error), json.dumps(run.config, sort_keys=True)])
                    count += 1
                return count
            writer.writerow(["run", *axes, "repeat", "round", "node", "stat", "name", "value"])
            rows = connection.execute(
                "SELECT run, repeat, round, node, stat, name, value FROM metrics ORDER BY run, name, stat, node, round, repeat"
            )
            for run, repeat, round_index, node, stat, name, value in rows:
                point = by_id[run].axes
                writer.writerow([run, *(_cell(point.get(a)) for a in axes), repeat, round_index,
                                 "" if node < 0 else node, stat, name, _cell(value)])
                count += 1
        return count
    finally:
        connection.close()
