"""The results database: one SQLite file per study, crash-safe and resumable.

Tables:

- ``runs``: one row per sweep point, keyed by ``id``, the SHA-256 of the resolved scenario
  as canonical JSON (so the same point always has the same id). Columns: ``config`` (the
  scenario as JSON), ``axes`` (the point's sweep values as JSON), ``status``
  (``running``, ``done`` or ``failed``), ``started``/``finished`` (Unix times),
  ``seconds`` (wall time), ``versions`` (package versions as JSON), ``git_commit`` (of the
  source tree, when it is a git checkout), ``error``.
- ``metrics``: long form, one value per row: ``(run, repeat, round, node, stat, name,
  value)``. Metrics measured per honest node are stored as their summaries over honest
  nodes at every evaluation (``node = -1``, ``stat`` in mean/min/max/q10/q50/q90) and as
  per-node values (``node`` = the node id, ``stat = "value"``) at the final evaluation,
  or at every evaluation with ``per_node="all"`` (millions of rows at 10,000 nodes).
  Scalar metrics (consensus distance, the averaged model's accuracy) have ``node = -1``
  and ``stat = "value"``. A unique index forbids duplicates.
- ``checkpoints``: the last checkpoint of each unfinished run (its round and its state).

Every write is one transaction: an evaluation's metrics are written together with the
checkpoint that follows them, and a run's last metrics together with ``status = done``.
A process killed at any moment (even with SIGKILL) therefore leaves each run either
finished, or resumable from its last checkpoint with exactly the metrics up to it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sqlite3
import subprocess
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

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
    error TEXT
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
"""

def honest_summaries(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """A per-node metric summarised over its last axis (the honest nodes): ``{"mean",
    "min", "max", "q10", "q50", "q90"}``. What the database stores at every evaluation,
    and :meth:`decentral.simulation.Result.over_honest`."""
    values = np.asarray(values)
    out = {"mean": values.mean(axis=-1), "min": values.min(axis=-1), "max": values.max(axis=-1)}
    for q in quantiles:
        out[f"q{round(q * 100)}"] = np.quantile(values, q, axis=-1)
    return out


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
    return connection


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


def run_id(config: dict) -> str:
    """The run's key: SHA-256 of the canonical JSON of its resolved config (16 hex digits)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def package_versions() -> dict:
    """Versions of the packages a result depends on (read once per process)."""
    from importlib import metadata

    versions = {}
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
class Run:
    """One row of ``runs``, decoded."""

    id: str
    config: dict
    axes: dict
    status: str
    seconds: float | None
    error: str | None

    def value(self, path: str) -> Any:
        """A config value by dotted path, e.g. ``run.value("defense.aggregator")``."""
        node: Any = self.config
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no {path!r} in run {self.id}'s config")
            node = node[part]
        return node


def runs(connection: sqlite3.Connection, *, status: str | None = "done") -> list[Run]:
    """The runs of a database (only finished ones by default), in the order they started."""
    query = "SELECT id, config, axes, status, seconds, error FROM runs"
    args: tuple = ()
    if status is not None:
        query += " WHERE status = ?"
        args = (status,)
    rows = connection.execute(query + " ORDER BY started, id", args).fetchall()
    return [Run(i, json.loads(c), json.loads(a), s, sec, e) for i, c, a, s, sec, e in rows]


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


def metric_names(connection: sqlite3.Connection) -> list[str]:
    """Every metric name stored."""
    return [row[0] for row in connection.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]


# --------------------------------------------------------------------------- running


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`execute` did with one point."""

    id: str
    status: str  # "done" (ran now), "skipped" (already done), "resumed" (from a checkpoint, then done)
    summary: dict
    seconds: float


def execute(
    path,
    scenario,
    axes: dict | None = None,
    *,
    per_node: str = "final",
    checkpoint_seconds: float = 60.0,
    rerun: bool = False,
    progress: bool = False,
) -> Outcome:
    """Run one sweep point into the database at ``path``, crash-safely.

    A finished point is skipped (``rerun=True`` recomputes it; the old results stay until
    the new ones are complete). An unfinished one resumes from its last checkpoint.
    Metrics are buffered and written with a checkpoint at most every
    ``checkpoint_seconds`` (0: at every evaluation) and at the end.

    Raises:
        ValueError: a bad scenario (nothing is written), or ``per_node`` not in ("final", "all").
    """
    from . import simulation

    if per_node not in PER_NODE:
        raise ValueError(f"per_node must be one of {PER_NODE}; got {per_node!r}.")
    config = config_of(scenario)
    key = run_id(config)
    connection = connect(path)
    try:
        status = connection.execute("SELECT status FROM runs WHERE id = ?", (key,)).fetchone()
        if status is not None and status[0] == "done" and not rerun:
            return Outcome(key, "skipped", summarize(connection, key), 0.0)
        plan = simulation.build(scenario)  # validates: a bad scenario fails before anything is written
        began = time.time()
        start = None
        if status is not None and status[0] != "done":
            start = _checkpoint(connection, plan, key)
        replacing = status is not None and status[0] == "done"
        if not replacing:
            _begin(connection, key, config, axes or {}, keep_checkpoint=start is not None)
        honest = np.flatnonzero(~plan.network.byzantine)
        final_round = scenario.run.rounds
        pending: list[tuple] = []
        last_save = time.monotonic()
        for round_index, states, metrics in simulation.evaluations(plan, start=start, progress=progress):
            last = round_index == final_round
            pending += metric_rows(key, round_index, metrics, honest, per_node=per_node == "all" or last)
            if last:
                break
            if not replacing and time.monotonic() - last_save >= checkpoint_seconds:
                _save_checkpoint(connection, key, round_index, pending, simulation.state_to_bytes(states))
                pending, last_save = [], time.monotonic()
        seconds = time.time() - began
        _finish(connection, key, axes or {}, pending, seconds, replacing=replacing)
        return Outcome(key, "resumed" if start is not None else "done", summarize(connection, key), seconds)
    except Exception as error:
        if not isinstance(error, ValueError) or connection.execute("SELECT 1 FROM runs WHERE id = ?", (key,)).fetchone():
            _fail(connection, key, error)
        raise
    finally:
        connection.close()


def _begin(connection, key, config, axes, *, keep_checkpoint: bool) -> None:
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


def _checkpoint(connection, plan, key):
    """``(round, states)`` of an unfinished run's checkpoint, or None (start afresh)."""
    from . import simulation

    row = connection.execute("SELECT round, state FROM checkpoints WHERE run = ?", (key,)).fetchone()
    if row is None:
        return None
    return row[0], simulation.state_from_bytes(plan, row[1])


def _save_checkpoint(connection, key, round_index, rows, state: bytes) -> None:
    with transaction(connection):
        connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute(
            "INSERT INTO checkpoints (run, round, state) VALUES (?, ?, ?) "
            "ON CONFLICT(run) DO UPDATE SET round = excluded.round, state = excluded.state",
            (key, round_index, state),
        )


def _finish(connection, key, axes, rows, seconds, *, replacing: bool) -> None:
    with transaction(connection):
        if replacing:
            connection.execute("DELETE FROM metrics WHERE run = ?", (key,))
        connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute("DELETE FROM checkpoints WHERE run = ?", (key,))
        connection.execute(
            "UPDATE runs SET status = 'done', finished = ?, seconds = ?, axes = ?, versions = ?, git_commit = ?, "
            "error = NULL WHERE id = ?",
            (time.time(), seconds, json.dumps(axes, sort_keys=True), json.dumps(package_versions()), git_commit(), key),
        )


def _fail(connection, key, error) -> None:
    with contextlib.suppress(sqlite3.Error), transaction(connection):
        connection.execute(
            "UPDATE runs SET status = 'failed', error = ? WHERE id = ? AND status != 'done'",
            (f"{type(error).__name__}: {error}", key),
        )


def summarize(connection: sqlite3.Connection, key: str) -> dict:
    """A finished run's final figures over honest nodes and repeats (the CLI's table row)."""
    final = connection.execute("SELECT MAX(round) FROM metrics WHERE run = ?", (key,)).fetchone()[0]

    def final_value(function: str, name: str, stat: str):
        """``function`` (AVG, MIN, MAX) over repeats of a metric at the final evaluation."""
        return connection.execute(
            f"SELECT {function}(value) FROM metrics WHERE run = ? AND name = ? AND stat = ? AND node = -1 AND round = ?",
            (key, name, stat, final),
        ).fetchone()[0]

    out = {}
    if final_value("AVG", "test_accuracy", "mean") is not None:
        out["accuracy_mean"] = final_value("AVG", "test_accuracy", "mean")
        out["accuracy_min"] = final_value("MIN", "test_accuracy", "min")
        out["accuracy_max"] = final_value("MAX", "test_accuracy", "max")
        out["averaged_accuracy"] = final_value("AVG", "averaged_accuracy", "value")
    if final_value("AVG", "drift", "value") is not None:
        out["drift"] = final_value("AVG", "drift", "value")
    out["consensus_distance"] = final_value("AVG", "consensus_distance", "value")
    seconds = connection.execute("SELECT seconds FROM runs WHERE id = ?", (key,)).fetchone()
    out["seconds"] = seconds[0] if seconds else None
    return {name: (float("nan") if value is None else value) for name, value in out.items()}


def default_path(scenario_file) -> Path:
    """Where a scenario file's results go by default: ``results.sqlite`` beside it."""
    return Path(os.fspath(scenario_file)).resolve().parent / "results.sqlite"


def unique_points(points) -> list:
    """``points`` without those resolving to the same config as an earlier one (first kept)."""
    unique = {}
    for axes, scenario in points:
        unique.setdefault(run_id(config_of(scenario)), (axes, scenario))
    return list(unique.values())


def _execute_quietly(path, scenario, axes, options) -> Outcome:
    """A worker process's entry point (``--jobs``)."""
    return execute(path, scenario, axes, **options)


#: How many times ``execute_all`` starts a fresh process pool for points whose worker died.
POOL_RESTARTS = 2

#: Points a ``--jobs`` worker process runs before it is replaced by a fresh one: each
#: point compiles its own programs, and a worker that had compiled ~150 of them died in
#: LLVM ("Cannot allocate memory") with 2.7 GB resident (the rules_vs_attacks study).
POINTS_PER_WORKER = 40


def execute_all(path, points, *, jobs: int = 1, **options):
    """Run sweep points into one database, ``jobs`` processes at a time.

    Yields ``(axes, outcome or exception)`` as points finish (in order for ``jobs=1``).
    A failing point does not stop the others; finished points are skipped on a rerun. Points
    that resolve to the same config (the same run id) run once. When a worker process dies
    (a crash in native code, the out-of-memory killer), the pool cannot tell which point
    killed it and fails every point still pending: those are run again in a fresh pool (up
    to ``POOL_RESTARTS`` times; an interrupted point resumes from its checkpoint).
    """
    points = unique_points(points)
    if jobs <= 1:
        for axes, scenario in points:
            try:
                yield axes, execute(path, scenario, axes, **options)
            except Exception as error:  # reported by the caller, recorded as failed in the database
                yield axes, error
        return
    options = {**options, "progress": False}
    for attempt in range(POOL_RESTARTS + 1):
        orphans = []
        for (axes, scenario), outcome in _run_in_pool(path, points, jobs, options):
            if isinstance(outcome, BrokenProcessPool) and attempt < POOL_RESTARTS:
                orphans.append((axes, scenario))
            else:
                yield axes, outcome
        if not orphans:
            return
        warnings.warn(
            f"a worker process died (a crash in native code or out of memory); running the "
            f"{len(orphans)} unfinished point(s) again in a fresh pool.",
            stacklevel=2,
        )
        points = orphans


def _run_in_pool(path, points, jobs, options):
    """Yield ``((axes, scenario), outcome or exception)`` from a pool of ``jobs`` spawned processes."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, max_tasks_per_child=POINTS_PER_WORKER
    ) as pool:
        futures = {pool.submit(_execute_quietly, path, scenario, axes, options): (axes, scenario) for axes, scenario in points}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:
                yield futures[future], error
