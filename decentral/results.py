"""The results database: one SQLite file per study, crash-safe and resumable.

Tables:

- ``runs``: one row per sweep point, keyed by ``id``, the SHA-256 of the resolved scenario
  as canonical JSON, the semantics version and the source files of the plug-ins it names
  (so the same point always has the same id, and a point computed under other semantics
  or with another version of a plug-in's module is never taken for this one: see
  :mod:`decentral.semantics` and :func:`plugin_sources`). Columns: ``config`` (the
  scenario as JSON), ``axes`` (the point's sweep values as JSON), ``status``
  (``running``, ``done`` or ``failed``), ``started``/``finished`` (Unix times),
  ``seconds`` (wall time), ``versions`` (package versions and the semantics version as JSON), ``git_commit`` (of the
  source tree, when it is a git checkout), ``error``, and ``diverged_round``: NULL, or
  the evaluation round at which the run's honest parameters became non-finite. A
  diverged run is finished (status ``done``: it stopped there and is never run again by
  a sweep); every reader shows it as diverged, never as its NaN metrics. (A column
  rather than a status, so that databases made before it need no rebuild of the status
  constraint: :func:`connect` adds the column to them.)
- ``metrics``: long form, one value per row: ``(run, repeat, round, node, stat, name,
  value)``. Metrics measured per honest node are stored as their summaries over honest
  nodes at every evaluation (``node = -1``, ``stat`` in mean/min/max/q10/q50/q90) and as
  per-node values (``node`` = the node id, ``stat = "value"``) at the final evaluation,
  or at every evaluation with ``per_node="all"`` (millions of rows at 10,000 nodes).
  Scalar metrics (consensus distance, the averaged model's accuracy) have ``node = -1``
  and ``stat = "value"``. A unique index forbids duplicates.
- ``checkpoints``: the last checkpoint of each unfinished run (its round and its state).
- ``diagnostics``: ``(run, key, value)``, the threat-model diagnostics of a finished run's
  network (honest nodes over their f, Byzantine counts and weights, honest connectivity,
  spectral gap: see ``decentral.engine.diagnostics``), as plain numbers.
- ``placement_searches``: what ``decentral place-search`` found (``decentral.place_search``),
  one row per entry of a search: ``search`` (its id: the hash of the scenario and the
  search's options), ``entry`` (``search`` for the found set, ``strategy:NAME`` for each
  built-in strategy of the baseline), ``nodes`` (the Byzantine ids as JSON, NULL for a
  strategy that placed nothing), ``damage`` (NULL when not scored), ``evaluations`` (sets
  the search scored), ``note`` (why it stopped; why a strategy was skipped), ``metric``
  (what the damage measures), ``options`` (count, max_per_neighborhood, method, budget,
  rounds as JSON), ``config`` (the scenario as JSON), ``created``, ``versions``. The same
  search run again replaces its rows.

Every write is one transaction: an evaluation's metrics are written together with the
checkpoint that follows them, and a run's last metrics together with ``status = done``.
A process killed at any moment (even with SIGKILL) therefore leaves each run either
finished, or resumable from its last checkpoint with exactly the metrics up to it.

This module is the store alone: it knows nothing of the engine. Running points into it is
:mod:`decentral.runner`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from .semantics import SEMANTICS_VERSION
from .summaries import honest_summaries

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    axes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    started REAL,
    finished REAL,
    seconds REAL,
    versions TEXT,
    git_commit TEXT,
    error TEXT,
    diverged_round INTEGER
);
CREATE TABLE IF NOT EXISTS metrics (
    run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    repeat INTEGER NOT NULL,
    round INTEGER NOT NULL,
    node INTEGER NOT NULL,
    stat TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS metrics_key ON metrics (run, name, stat, node, round, repeat);
CREATE TABLE IF NOT EXISTS checkpoints (
    run TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    round INTEGER NOT NULL,
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS diagnostics (
    run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS placement_searches (
    search TEXT NOT NULL,
    entry TEXT NOT NULL,
    nodes TEXT,
    damage REAL,
    evaluations INTEGER,
    note TEXT,
    metric TEXT NOT NULL,
    options TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    versions TEXT,
    PRIMARY KEY (search, entry)
);
"""

#: Where per-node values are stored: at the final evaluation only, or at every one.
PER_NODE = ("final", "all")


def connect(path) -> sqlite3.Connection:
    """Open (creating if needed) a results database; WAL journal, waits up to 60 s for a lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    _add_column(connection, "runs", "diverged_round", "INTEGER")
    return connection


def _add_column(connection: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """Add a column that a database made by an older version lacks (two processes may
    race to add it: the loser finds it there)."""
    if any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})")):
        return
    try:
        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.OperationalError as error:
        if "duplicate column" not in str(error):
            raise


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection):
    """One atomic write (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


# --------------------------------------------------------------------------- identity


def config_of(scenario) -> dict:
    """The resolved scenario as plain JSON-able data (its sweep removed)."""
    return json.loads(json.dumps(dataclasses.replace(scenario, sweep={}).to_dict(), sort_keys=True, default=_plain))


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a results database")


def run_id(config: dict, semantics: int = SEMANTICS_VERSION, plugins: dict | None = None) -> str:
    """The run's key (16 hex digits): SHA-256 of the canonical JSON of its resolved config,
    the semantics version and, when it names plug-ins, their sources (``plugins``, as
    :func:`plugin_sources` gives them). Empty ``plugins`` are left out, so that a config
    without plug-ins keeps the id it had before plug-in sources counted."""
    identity = {"config": config, "semantics": semantics}
    if plugins:
        identity["plugins"] = plugins
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_id_of(scenario) -> str:
    """The run id of a scenario: :func:`run_id` of its config and of the sources of the
    plug-ins it names (read from disk now: an edited plug-in gives its points new ids)."""
    config = config_of(scenario)
    return run_id(config, plugins=plugin_sources(config))


#: The config keys whose value may name plug-ins (``"package.module:Name"``): a name, a
#: table with a ``name``, or a list of those (a chain of rules, whose items may be chains).
PLUGIN_KEYS = (("defense", "aggregator"), ("attack", "name"), ("network", "topology"))


def plugin_sources(config: dict) -> dict[str, str]:
    """``{plug-in path: SHA-256 of its module's file}`` for every plug-in ``config`` names
    (see :data:`PLUGIN_KEYS`); empty for a config of built-in components only.

    Only the file of the module named by the path counts (``mylab/rules.py`` for
    ``"mylab.rules:shrunk"``, ``mylab/__init__.py`` for ``"mylab:shrunk"``), not the
    other modules it imports: editing those does not change a run's id.

    Raises:
        ValueError: a plug-in whose module cannot be found, naming the config key.
    """
    sources = {}
    for table, key in PLUGIN_KEYS:
        for path in _plugin_paths(config.get(table, {}).get(key)):
            sources[path] = _source_hash(path, f"[{table}] {key}")
    return sources


def _plugin_paths(value) -> list[str]:
    """The plug-in paths (names with a ``:``) in a component's config value."""
    if isinstance(value, str):
        return [value] if ":" in value else []
    if isinstance(value, dict):
        return _plugin_paths(value.get("name"))
    if isinstance(value, list):
        return [path for item in value for path in _plugin_paths(item)]
    return []


def _source_hash(path: str, where: str) -> str:
    """SHA-256 (hex) of the file of the module of plug-in ``path``, found as ``import``
    would find it (its parent packages are imported; the module itself is not imported here)."""
    module = path.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise ValueError(f"{where}: cannot find the module of plug-in {path!r}: {error}.") from None
    if spec is None or not spec.has_location or spec.origin is None:
        raise ValueError(
            f"{where}: cannot find the source file of plug-in {path!r}: no module {module!r} with a file on the "
            "import path (install it, or put its folder on PYTHONPATH)."
        )
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def package_versions() -> dict:
    """Versions of the packages a result depends on and the semantics version (read once
    per process)."""
    from importlib import metadata

    versions = {"semantics": SEMANTICS_VERSION}
    for package in ("decentral", "jax", "jaxlib", "optax", "numpy", "networkx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source tree this package runs from, or None when not a git checkout
    (asked of git once per process, not at every write)."""
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# --------------------------------------------------------------------------- rows


def metric_rows(run: str, round_index: int, metrics: dict, honest: np.ndarray, *, per_node: bool) -> list[tuple]:
    """Long-form rows of one evaluation's metrics (see the module docstring)."""
    rows = []
    for name, values in metrics.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:  # [repeats]: a scalar metric
            rows += [(run, r, round_index, -1, "value", name, _number(v)) for r, v in enumerate(values)]
            continue
        for stat, summary in honest_summaries(values).items():
            rows += [(run, r, round_index, -1, stat, name, _number(v)) for r, v in enumerate(summary)]
        if per_node:
            for r, row in enumerate(values):
                rows += [(run, r, round_index, int(node), "value", name, _number(v)) for node, v in zip(honest, row)]
    return rows


def _number(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None  # SQLite REAL has no NaN; inf is stored as NULL too


# --------------------------------------------------------------------------- queries


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One row of ``runs``, decoded."""

    id: str
    config: dict
    axes: dict
    status: str
    seconds: float | None
    error: str | None
    diverged_round: int | None = None

    @property
    def outcome(self) -> str:
        """``diverged`` for a run that diverged, else its status."""
        return "diverged" if self.diverged_round is not None else self.status

    def value(self, path: str) -> Any:
        """A config value by dotted path, e.g. ``run.value("defense.aggregator")``."""
        node: Any = self.config
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no {path!r} in run {self.id}'s config")
            node = node[part]
        return node


def runs(connection: sqlite3.Connection, *, status: str | None = "done") -> list[StoredRun]:
    """The runs of a database (only finished ones by default), in the order they started."""
    query = "SELECT id, config, axes, status, seconds, error, diverged_round FROM runs"
    args: tuple = ()
    if status is not None:
        query += " WHERE status = ?"
        args = (status,)
    rows = connection.execute(query + " ORDER BY started, id", args).fetchall()
    return [StoredRun(i, json.loads(c), json.loads(a), s, sec, e, d) for i, c, a, s, sec, e, d in rows]


def diagnostics(connection: sqlite3.Connection) -> dict[str, dict[str, float]]:
    """Every run's stored diagnostics, ``{run: {key: value}}`` (NULL reads as NaN; a run
    stored before diagnostics were has none)."""
    out: dict[str, dict[str, float]] = {}
    for run, key, value in connection.execute("SELECT run, key, value FROM diagnostics ORDER BY run, rowid"):
        out.setdefault(run, {})[key] = float("nan") if value is None else value
    return out


def series(connection: sqlite3.Connection, run: str, name: str, stat: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """``(rounds int[E], values f64[E, repeats])`` of one metric of one run over evaluations
    (``stat`` "value" for scalar metrics, a summary for per-node ones); NULL reads as NaN."""
    rows = connection.execute(
        "SELECT round, repeat, value FROM metrics WHERE run = ? AND name = ? AND stat = ? AND node = -1 ORDER BY round, repeat",
        (run, name, stat),
    ).fetchall()
    if not rows:
        raise KeyError(f"run {run} has no metric {name!r} with stat {stat!r}")
    return _grid(rows)


def per_node(connection: sqlite3.Connection, run: str, name: str, round_index: int | None = None):
    """``(nodes int[H], values f64[repeats, H])``: a per-node metric at one evaluation (the last stored by default)."""
    if round_index is None:
        found = connection.execute(
            "SELECT MAX(round) FROM metrics WHERE run = ? AND name = ? AND node >= 0", (run, name)
        ).fetchone()[0]
        if found is None:
            raise KeyError(f"run {run} has no per-node values of {name!r}")
        round_index = found
    rows = connection.execute(
        "SELECT node, repeat, value FROM metrics WHERE run = ? AND name = ? AND round = ? AND node >= 0 ORDER BY node, repeat",
        (run, name, round_index),
    ).fetchall()
    if not rows:
        raise KeyError(f"run {run} has no per-node values of {name!r} at round {round_index}")
    nodes, values = _grid(rows)
    return nodes, values.T


def _grid(rows) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted({row[0] for row in rows})
    repeats = max(row[1] for row in rows) + 1
    values = np.full((len(keys), repeats), np.nan)
    position = {key: i for i, key in enumerate(keys)}
    for key, repeat, value in rows:
        values[position[key], repeat] = np.nan if value is None else value
    return np.asarray(keys), values


def placement_searches(connection: sqlite3.Connection) -> list[dict]:
    """Every stored entry of ``placement_searches`` (see the module docstring), JSON
    decoded, in the order stored (each search's found set first)."""
    query = ("SELECT search, entry, nodes, damage, evaluations, note, metric, options, config, created "
             "FROM placement_searches ORDER BY created, search, rowid")
    names = ("search", "entry", "nodes", "damage", "evaluations", "note", "metric", "options", "config", "created")
    out = []
    for row in connection.execute(query):
        entry = dict(zip(names, row))
        for key in ("nodes", "options", "config"):
            entry[key] = None if entry[key] is None else json.loads(entry[key])
        out.append(entry)
    return out


def semantics_versions(connection: sqlite3.Connection) -> dict[int, int]:
    """How many runs of each semantics version the database holds (1: runs stored before
    versions were recorded)."""
    counts: dict[int, int] = {}
    for (versions,) in connection.execute("SELECT versions FROM runs"):
        version = json.loads(versions or "{}").get("semantics", 1)
        counts[version] = counts.get(version, 0) + 1
    return counts


def summarize(connection: sqlite3.Connection, key: str) -> dict:
    """A finished run's final figures over honest nodes and repeats (the CLI's table row);
    ``diverged_round`` is None, or the round the run diverged at (its figures then NaN)."""
    final = connection.execute("SELECT MAX(round) FROM metrics WHERE run = ?", (key,)).fetchone()[0]

    def final_value(function: str, name: str, stat: str):
        """``function`` (AVG, MIN, MAX) over repeats of a metric at the final evaluation."""
        return connection.execute(
            f"SELECT {function}(value) FROM metrics WHERE run = ? AND name = ? AND stat = ? AND node = -1 AND round = ?",
            (key, name, stat, final),
        ).fetchone()[0]

    def has(name: str) -> bool:  # by its rows, not their values: a diverged run's are NULL
        return connection.execute(
            "SELECT 1 FROM metrics WHERE run = ? AND name = ? AND round = ? LIMIT 1", (key, name, final)
        ).fetchone() is not None

    out = {}
    if has("test_accuracy"):
        out["accuracy_mean"] = final_value("AVG", "test_accuracy", "mean")
        out["accuracy_min"] = final_value("MIN", "test_accuracy", "min")
        out["accuracy_max"] = final_value("MAX", "test_accuracy", "max")
        out["averaged_accuracy"] = final_value("AVG", "averaged_accuracy", "value")
    if has("drift"):
        out["drift"] = final_value("AVG", "drift", "value")
    out["consensus_distance"] = final_value("AVG", "consensus_distance", "value")
    stored = connection.execute("SELECT seconds, diverged_round FROM runs WHERE id = ?", (key,)).fetchone()
    out["seconds"] = stored[0] if stored else None
    out = {name: (float("nan") if value is None else value) for name, value in out.items()}
    out["diverged_round"] = stored[1] if stored else None
    return out


# --------------------------------------------------------------------------- writes


def begin(connection, key, config, axes, *, keep_checkpoint: bool) -> None:
    """Mark a run as running (a fresh start forgets the rows of an earlier failed or killed attempt)."""
    with transaction(connection):
        if not keep_checkpoint:  # a fresh start: forget rows of an earlier failed or killed attempt
            connection.execute("DELETE FROM metrics WHERE run = ?", (key,))
            connection.execute("DELETE FROM checkpoints WHERE run = ?", (key,))
        connection.execute(
            "INSERT INTO runs (id, config, axes, status, started, versions, git_commit) VALUES (?, ?, ?, 'running', ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = 'running', error = NULL",
            (key, json.dumps(config, sort_keys=True), json.dumps(axes, sort_keys=True), time.time(),
             json.dumps(package_versions()), git_commit()),
        )


def checkpoint(connection, key) -> tuple[int, bytes] | None:
    """``(round, state bytes)`` of an unfinished run's checkpoint, or None."""
    row = connection.execute("SELECT round, state FROM checkpoints WHERE run = ?", (key,)).fetchone()
    return None if row is None else (row[0], row[1])


def save_checkpoint(connection, key, round_index, rows, state: bytes) -> None:
    """Metrics so far and the checkpoint after them, in one transaction."""
    with transaction(connection):
        connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute(
            "INSERT INTO checkpoints (run, round, state) VALUES (?, ?, ?) "
            "ON CONFLICT(run) DO UPDATE SET round = excluded.round, state = excluded.state",
            (key, round_index, state),
        )


def finish(connection, key, axes, rows, seconds, *, replacing: bool, diverged_round: int | None = None,
           diagnostics: dict | None = None) -> None:
    """A run's last metrics, ``status = done`` (with the round it diverged at, if it did)
    and its diagnostics (``{key: number}``), in one transaction (``replacing``: a rerun of
    a finished point, whose old metrics go only now)."""
    with transaction(connection):
        if replacing:
            connection.execute("DELETE FROM metrics WHERE run = ?", (key,))
        connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute("DELETE FROM checkpoints WHERE run = ?", (key,))
        connection.execute("DELETE FROM diagnostics WHERE run = ?", (key,))
        connection.executemany(
            "INSERT INTO diagnostics (run, key, value) VALUES (?, ?, ?)",
            [(key, name, _number(value)) for name, value in (diagnostics or {}).items()],
        )
        connection.execute(
            "UPDATE runs SET status = 'done', finished = ?, seconds = ?, axes = ?, versions = ?, git_commit = ?, "
            "error = NULL, diverged_round = ? WHERE id = ?",
            (time.time(), seconds, json.dumps(axes, sort_keys=True), json.dumps(package_versions()), git_commit(),
             diverged_round, key),
        )


def save_placement_search(connection, search: str, config: dict, options: dict, metric: str, rows) -> None:
    """One search's entries ``(entry, nodes or None, damage or None, evaluations or None,
    note)``, replacing any stored under the same ``search`` id, in one transaction."""
    created = time.time()
    with transaction(connection):
        connection.execute("DELETE FROM placement_searches WHERE search = ?", (search,))
        connection.executemany(
            "INSERT INTO placement_searches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(search, entry, None if nodes is None else json.dumps(nodes), None if damage is None else _number(damage),
              evaluations, note, metric, json.dumps(options, sort_keys=True), json.dumps(config, sort_keys=True), created,
              json.dumps(package_versions())) for entry, nodes, damage, evaluations, note in rows],
        )


def fail(connection, key, error) -> None:
    """Record a run as failed, with the error (a finished run stays done)."""
    with contextlib.suppress(sqlite3.Error), transaction(connection):
        connection.execute(
            "UPDATE runs SET status = 'failed', error = ? WHERE id = ? AND status != 'done'",
            (f"{type(error).__name__}: {error}", key),
        )


def default_path(scenario_file) -> Path:
    """Where a scenario file's results go by default: ``results.sqlite`` beside it."""
    return Path(os.fspath(scenario_file)).resolve().parent / "results.sqlite"
