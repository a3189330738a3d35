"""Running sweep points into a results database: crash-safe, resumable, in parallel.

:func:`execute` runs one point (skipping a finished one, resuming an interrupted one from
its checkpoint); :func:`execute_all` runs a sweep's points one after another or in a pool
of worker processes. The runner sits above both the engine (:mod:`decentral.engine`) and
the store (:mod:`decentral.results`), which know nothing of each other.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from . import engine
from . import results as store
from .semantics import SEMANTICS_VERSION


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
    ``checkpoint_seconds`` (0: at every evaluation) and at the end, with the threat-model
    diagnostics of the point's network (:func:`decentral.engine.threat_model`). A run whose
    honest parameters become non-finite stops at that evaluation and is stored as diverged
    there (``diverged_round``).

    Raises:
        ValueError: a bad scenario (nothing is written), or ``per_node`` not in ("final", "all").
    """
    if per_node not in store.PER_NODE:
        raise ValueError(f"per_node must be one of {store.PER_NODE}; got {per_node!r}.")
    config = store.config_of(scenario)
    key = store.run_id_of(scenario)
    connection = store.connect(path)
    try:
        status = connection.execute("SELECT status FROM runs WHERE id = ?", (key,)).fetchone()
        if status is not None and status[0] == "done" and not rerun:
            return Outcome(key, "skipped", store.summarize(connection, key), 0.0)
        plan = engine.build(scenario)  # validates: a bad scenario fails before anything is written
        began = time.time()
        start = None
        if status is not None and status[0] != "done":
            start = _resume_point(connection, plan, key)
        replacing = status is not None and status[0] == "done"
        if not replacing:
            store.begin(connection, key, config, axes or {}, keep_checkpoint=start is not None)
        honest = np.flatnonzero(~plan.network.byzantine)
        final_round = scenario.run.rounds
        pending: list[tuple] = []
        last_save = time.monotonic()
        diverged_round = None
        for round_index, states, metrics in engine.evaluations(plan, start=start, progress=progress):
            if engine.diverged(metrics):
                diverged_round = round_index
            last = round_index == final_round or diverged_round is not None
            stored = {name: values for name, values in metrics.items() if name != "diverged"}  # a column of runs
            pending += store.metric_rows(key, round_index, stored, honest, per_node=per_node == "all" or last)
            if last:
                break
            if not replacing and time.monotonic() - last_save >= checkpoint_seconds:
                store.save_checkpoint(connection, key, round_index, pending, engine.state_to_bytes(states))
                pending, last_save = [], time.monotonic()
        seconds = time.time() - began
        diagnostics = engine.threat_model(plan.network, plan.f_nodes).record()
        store.finish(connection, key, axes or {}, pending, seconds, replacing=replacing, diverged_round=diverged_round,
                     diagnostics=diagnostics)
        return Outcome(key, "resumed" if start is not None else "done", store.summarize(connection, key), seconds)
    except Exception as error:
        if not isinstance(error, ValueError) or connection.execute("SELECT 1 FROM runs WHERE id = ?", (key,)).fetchone():
            store.fail(connection, key, error)
        raise
    finally:
        connection.close()


def _resume_point(connection, plan, key):
    """``(round, states)`` of an unfinished run's checkpoint, or None (start afresh)."""
    stored = store.checkpoint(connection, key)
    if stored is None:
        return None
    round_index, state = stored
    return round_index, engine.state_from_bytes(plan, state)


def unique_points(points) -> list:
    """``points`` without those resolving to the same config as an earlier one (first kept)."""
    unique = {}
    for axes, scenario in points:
        unique.setdefault(store.run_id_of(scenario), (axes, scenario))
    return list(unique.values())


def _execute_quietly(path, scenario, axes, options) -> Outcome:
    """A worker process's entry point (``--jobs``)."""
    return execute(path, scenario, axes, **options)


#: How many times ``execute_all`` starts a fresh process pool for points whose worker died.
POOL_RESTARTS = 2

#: Points a ``--jobs`` worker process runs before it is replaced by a fresh one: each
#: point compiles its own programs, and a worker that had compiled ~150 of them died in
#: LLVM ("Cannot allocate memory") with 2.7 GB resident (the rules_vs_attacks study).
#: Workers are replaced by running the points in successive pools of ``jobs *
#: POINTS_PER_WORKER`` points, not with ``ProcessPoolExecutor(max_tasks_per_child=...)``:
#: that deadlocks on Python 3.11-3.13 once a worker exits at its limit with work still
#: queued (CPython gh-115634; it hung a 402-point study after exactly 2 x 40 points).
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
    _warn_of_other_semantics(path)
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


def _warn_of_other_semantics(path) -> None:
    """One warning when the database holds runs computed under another semantics version
    (they are kept, but never reused for a point of this version)."""
    if not Path(path).exists():
        return
    connection = store.connect(path)
    try:
        counts = store.semantics_versions(connection)
    finally:
        connection.close()
    other = {version: count for version, count in counts.items() if version != SEMANTICS_VERSION}
    if other:
        held = ", ".join(f"{count} of version {version}" for version, count in sorted(other.items()))
        warnings.warn(
            f"{path} holds runs of another semantics version ({held}; this is version {SEMANTICS_VERSION}): "
            "they are kept but not reused, so their points run again. See decentral.semantics.",
            stacklevel=3,
        )


def _run_in_pool(path, points, jobs, options):
    """Yield ``((axes, scenario), outcome or exception)`` from pools of ``jobs`` spawned
    processes, a fresh pool for every ``jobs * POINTS_PER_WORKER`` points."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    per_pool = jobs * POINTS_PER_WORKER
    for first in range(0, len(points), per_pool):
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_execute_quietly, path, scenario, axes, options): (axes, scenario)
                       for axes, scenario in points[first:first + per_pool]}
            for future in concurrent.futures.as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as error:
                    yield futures[future], error
