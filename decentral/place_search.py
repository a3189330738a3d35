"""``decentral place-search``: a worst-case Byzantine placement of a scenario, by simulated damage.

The search looks for ``count`` existing nodes whose being Byzantine hurts the honest
nodes most, every candidate scored by a short simulation of the scenario
(:mod:`decentral.place_score`: damage = 1 - final mean honest test accuracy, or the
honest test loss, or the averaging error; ``[run] rounds`` or ``--rounds``). Only sets
that respect ``max_per_neighborhood`` (from ``[placement] params`` or the flag) are ever
scored, and each set is scored once (scores are remembered).

- **greedy + local search** (the default): greedy adds one node at a time, the one whose
  addition scores the most damage (each step one batch over every feasible addition),
  then local search swaps one Byzantine node for an honest one while some swap strictly
  increases the damage (best swap first), and stops at a local optimum or when
  ``--budget`` candidate evaluations are spent. When the most damaging built-in strategy
  (the baseline below) beats that optimum, local search runs again from its set, and the
  better optimum is reported: greedy alone can stop at a poorer local optimum. The greedy pass may need
  n + (n - 1) + ... + (n - count + 1) evaluations, so the budget must cover that; local
  search spends the rest. A greedy step's sets have fewer Byzantine nodes than the final
  ones, so other shapes (the honest nodes, their data): each set size compiles once
  (``count`` compilations in all; local search reuses the last). When no feasible addition exists at some greedy step (the
  limit), local search starts from a feasible set found on the host instead, and the
  report says so.
- **exhaustive** (``--exhaustive``): every feasible set of ``count`` nodes, C(n, count)
  without a limit; the budget must cover them.

Only placements that choose existing nodes are searched: a scenario whose strategy is
``attach`` (which adds nodes) is refused. The search is compared with the built-in
strategies that choose ``count`` existing nodes, placed with the same count, limit,
placement seed (and ``center``, ``repair`` of the file's params) on the same graph and
scored by the same scorer; :data:`SKIPPED_STRATEGIES` says which are left out and why.

The results go to the scenario's results database (:func:`decentral.results.save_placement_search`),
and the report prints the ``[placement]`` table that makes ``decentral run`` reproduce
the found damage.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from pathlib import Path

import numpy as np

import topologies

from . import engine
from . import results as store
from .place_score import DAMAGE_METRICS, Scorer, manual_scenario
from .scenario import load_scenario

#: Built-in strategies the baseline leaves out, and why.
SKIPPED_STRATEGIES = {
    "manual": "places the ids it is given",
    "marked": "places the nodes the graph marks",
    "eclipse": "places one victim's neighbours, so its count is the victim's degree",
    "attach": "adds new nodes instead of choosing existing ones",
}

#: The most sets ``--exhaustive`` enumerates.
EXHAUSTIVE_LIMIT = 100_000

#: Default candidates per compiled batch: the graph's nodes, at most this many.
DEFAULT_BATCH = 64


@dataclasses.dataclass(frozen=True)
class Setup:
    """A search, checked before anything compiles (see :func:`prepare`)."""

    file: str
    scenario: object  # the scenario without a sweep, its rounds those of the short simulation
    graph: object
    count: int
    limit: int | None
    budget: int
    exhaustive: bool
    batch: int
    start: tuple  # a feasible set, built on the host


class Feasible:
    """Whether a set respects ``max_per_neighborhood`` (at most ``limit`` Byzantine
    in-neighbours at every honest node, as :func:`topologies.place` checks it)."""

    def __init__(self, graph, limit: int | None):
        self.n, self.limit = graph.number_of_nodes(), limit
        self.src, self.dst = topologies.inbox_links(graph)

    def __call__(self, ids) -> bool:
        if self.limit is None:
            return True
        byzantine = np.zeros(self.n, dtype=bool)
        byzantine[list(ids)] = True
        counts = np.bincount(self.dst[byzantine[self.src]], minlength=self.n)
        return bool(counts[~byzantine].max(initial=0) <= self.limit)


def prepare(file, *, budget: int, count=None, max_per_neighborhood=None, rounds=None, exhaustive=False, batch=None) -> Setup:
    """Read and check a search: every bad input raises ValueError here, before compiling.

    ``count`` and ``max_per_neighborhood`` default to the file's ``[placement] count`` and
    ``params.max_per_neighborhood`` (the flags override them); ``rounds`` to ``[run] rounds``.
    """
    if budget < 1:
        raise ValueError(f"--budget must be >= 1 (the most candidate sets scored), got {budget}.")
    scenario = load_scenario(file)
    if scenario.sweep:
        axis = next(iter(scenario.sweep))
        raise ValueError(f"{file}: [sweep] {axis!r}: place-search scores one scenario; remove the [sweep] table "
                         "(or set that key to one value).")
    placement = scenario.placement
    if placement.strategy in topologies.ADDING:
        raise ValueError(f"{file}: [placement] strategy {placement.strategy!r} adds new Byzantine nodes; place-search "
                         "chooses which existing nodes are Byzantine. Use a strategy that chooses existing nodes "
                         "(e.g. random), or search the graph with the attached nodes written out.")
    if rounds is not None:
        if rounds < 1:
            raise ValueError(f"--rounds must be >= 1, got {rounds}.")
        scenario = scenario.replace(**{"run.rounds": rounds, "run.eval_every": min(rounds, scenario.run.eval_every)})
    graph, _, _ = engine.graph_and_byzantine(scenario.replace(placement={"strategy": "random", "count": 0, "params": {}}))
    n = graph.number_of_nodes()
    count = _count(placement.count if count is None else count, n)
    limit = _limit(placement.params.get("max_per_neighborhood") if max_per_neighborhood is None else max_per_neighborhood)
    feasible = Feasible(graph, limit)
    start = _feasible_start(graph, count, limit, feasible)
    if exhaustive:
        total = math.comb(n, count)
        if total > EXHAUSTIVE_LIMIT:
            raise ValueError(f"--exhaustive would enumerate C({n}, {count}) = {total} sets (at most {EXHAUSTIVE_LIMIT}); "
                             "drop --exhaustive for the greedy and local search.")
        needed = sum(1 for ids in itertools.combinations(range(n), count) if feasible(ids))
        if budget < needed:
            raise ValueError(f"--exhaustive scores all {needed} feasible sets of {count} nodes; --budget is {budget}. "
                             f"Use --budget {needed} or more.")
    else:
        needed = sum(n - k for k in range(count))
        if budget < needed:
            raise ValueError(f"the greedy pass may score up to {needed} sets (n + (n-1) + ... for {count} nodes of {n}); "
                             f"--budget is {budget}. Use --budget {needed} or more.")
    batch = min(n, DEFAULT_BATCH) if batch is None else batch
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}.")
    scenario = scenario.replace(placement={"strategy": placement.strategy, "count": count, "params": placement.params})
    engine.build(manual_scenario(scenario, start, limit))  # a bad scenario fails here, before compiling
    return Setup(str(file), scenario, graph, count, limit, budget, exhaustive, batch, start)


def _count(count, n: int) -> int:
    if isinstance(count, float):
        count = math.floor(count * n)
    if count < 1:
        raise ValueError(f"[placement] count is {count}: give place-search at least one Byzantine node to place "
                         "(count in the file, or --count).")
    if count >= n:
        raise ValueError(f"count={count} Byzantine nodes leaves no honest node of the graph's {n}; use count <= {n - 1}.")
    return count


def _limit(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_per_neighborhood must be an integer >= 0, got {value!r}.")
    return value


def _feasible_start(graph, count: int, limit: int | None, feasible: Feasible) -> tuple:
    """A feasible set of ``count`` nodes: the first ids, repaired by
    :func:`topologies.repair_placement` under a limit; raise when none is found."""
    first = tuple(range(count))
    if feasible(first):
        return first
    try:
        ids, _ = topologies.repair_placement(graph, list(first), limit)
    except ValueError:
        ids = None
    if ids is None or not feasible(ids):
        raise ValueError(f"max_per_neighborhood={limit}: no placement of {count} nodes was found in which every honest "
                         f"node has at most {limit} Byzantine neighbours (the greedy repair is stuck). Raise the limit "
                         "or lower the count.")
    return tuple(sorted(ids))


class Evaluations:
    """Scores sets through a :class:`Scorer`, each once, at most ``budget`` of them;
    sets the plan refuses (e.g. the rule's requirement at a node) are never scored."""

    def __init__(self, scorer: Scorer, budget: int):
        self.scorer, self.budget = scorer, budget
        self.scores: dict[tuple, float] = {}
        self.rejected: dict[tuple, str] = {}
        self.given: set[tuple] = set()

    @property
    def spent(self) -> int:
        return len(self.scores) - len(self.given)

    def give(self, ids: tuple, damage: float) -> None:
        """Know a set scored outside the search (a built-in strategy's), spending no budget."""
        if ids not in self.scores:
            self.scores[ids] = damage
            self.given.add(ids)

    def evaluate(self, sets) -> tuple[dict, bool]:
        """``({set: damage}, complete)`` for ``sets`` (sorted tuples): those already known
        and as many new ones as the budget allows, in the given order; ``complete`` says
        whether every one that the plan accepts was scored."""
        new = list(dict.fromkeys(s for s in sets if s not in self.scores and s not in self.rejected))
        plans, chosen = [], []
        for ids in new:
            if len(chosen) == self.budget - self.spent:
                break
            try:
                plans.append(self.scorer.plan(ids))
            except ValueError as error:
                self.rejected[ids] = str(error)
                continue
            chosen.append(ids)
        if plans:
            self.scores.update(zip(chosen, self.scorer.score_plans(plans)))
        complete = all(s in self.scores or s in self.rejected for s in sets)
        return {s: self.scores[s] for s in sets if s in self.scores}, complete


def _best(scored: dict) -> tuple:
    """The set of most damage, ties to the smallest ids."""
    return min(scored, key=lambda ids: (-scored[ids], ids))


def greedy(nodes, count: int, feasible, evaluations: Evaluations) -> tuple:
    """Add the node of most damage ``count`` times; fewer nodes if no feasible addition is left."""
    chosen: tuple = ()
    for _ in range(count):
        options = [tuple(sorted((*chosen, v))) for v in nodes if v not in chosen]
        scored, _ = evaluations.evaluate([ids for ids in options if feasible(ids)])
        if not scored:
            break
        chosen = _best(scored)
    return chosen


def local_search(start: tuple, nodes, feasible, evaluations: Evaluations) -> tuple[tuple, str]:
    """Best-improvement swaps (one Byzantine node for one honest node) from ``start``:
    ``(set, why it stopped)``, "local optimum" or "budget"."""
    current = start
    scored, _ = evaluations.evaluate([current])
    if current not in scored:
        return current, "budget"
    while True:
        swaps = [tuple(sorted({*current} - {u} | {v})) for u in current for v in nodes if v not in current]
        scored, complete = evaluations.evaluate([ids for ids in swaps if feasible(ids)])
        better = {ids: value for ids, value in scored.items() if value > evaluations.scores[current]}
        if not better:
            return current, "local optimum" if complete else "budget"
        current = _best(better)


def exhaustive(nodes, count: int, feasible, evaluations: Evaluations) -> tuple:
    """The set of most damage among every feasible set of ``count`` nodes."""
    scored, _ = evaluations.evaluate([ids for ids in itertools.combinations(nodes, count) if feasible(ids)])
    return _best(scored)


@dataclasses.dataclass(frozen=True)
class Report:
    """A finished search and its baseline."""

    setup: Setup
    method: str
    metric: str  # what the damage measures (a value of DAMAGE_METRICS)
    nodes: tuple
    damage: float
    evaluations: int
    stopped: str
    rejected: dict  # set -> why the plan refused it
    strategies: list  # (name, nodes or None, damage or None, note)
    scored: dict  # every set the search scored -> its damage

    @property
    def best_strategy(self):
        """``(name, nodes, damage, note)`` of the most damaging built-in strategy, or None."""
        scored = [row for row in self.strategies if row[2] is not None]
        return max(scored, key=lambda row: row[2]) if scored else None


def search(setup: Setup) -> Report:
    """Run the search and score the baseline (compiles one batched program)."""
    scorer = Scorer(setup.scenario, batch=setup.batch, max_per_neighborhood=setup.limit, first=setup.start)
    evaluations = Evaluations(scorer, setup.budget)
    feasible = Feasible(setup.graph, setup.limit)
    nodes = list(range(setup.graph.number_of_nodes()))
    if setup.exhaustive:
        found, method, stopped = exhaustive(nodes, setup.count, feasible, evaluations), "exhaustive", "every feasible set"
    else:
        method = "greedy+local"
        start = greedy(nodes, setup.count, feasible, evaluations)
        note = ""
        if len(start) < setup.count or start not in evaluations.scores:
            start, note = setup.start, f"; greedy stopped at {len(start)} nodes, local search began at {list(setup.start)}"
        found, stopped = local_search(start, nodes, feasible, evaluations)
        stopped += note
    baseline = _baseline(setup, scorer, evaluations.scores)
    if not setup.exhaustive:
        found, stopped = _restart_from_best_strategy(found, stopped, baseline, nodes, feasible, evaluations)
    metric = DAMAGE_METRICS[scorer.metric]
    return Report(setup, method, metric, found, evaluations.scores[found], evaluations.spent, stopped,
                  dict(evaluations.rejected), baseline, dict(evaluations.scores))


def _restart_from_best_strategy(found, stopped, baseline, nodes, feasible, evaluations) -> tuple[tuple, str]:
    """Local search again from the most damaging built-in strategy's set, when that set
    beats the greedy start's local optimum (greedy can stop at a poorer local optimum:
    on digits a ``clustered`` set was the true maximum that greedy + local search missed);
    the better of the two optima, and why the search stopped. With no budget left the
    strategy's set itself is that optimum: a search never reports less damage than a
    built-in strategy it scored."""
    scored = [row for row in baseline if row[2] is not None]
    if not scored:
        return found, stopped
    name, ids, damage, _ = max(scored, key=lambda row: row[2])
    if damage <= evaluations.scores[found] or not feasible(ids):
        return found, stopped
    evaluations.give(ids, damage)  # so the result is never worse than it, budget left or not
    again, why = local_search(ids, nodes, feasible, evaluations)
    if again in evaluations.scores and evaluations.scores[again] > evaluations.scores[found]:
        return again, f"{why} (local search restarted from strategy {name}'s set)"
    return found, stopped


def _baseline(setup: Setup, scorer: Scorer, known: dict) -> list:
    """Every built-in strategy not in :data:`SKIPPED_STRATEGIES`, placed and scored."""
    params = setup.scenario.placement.params
    seed = engine.derive_seeds(setup.scenario.run)["placement"]
    rows, plans = [], {}
    for name in topologies.STRATEGIES:
        if name in SKIPPED_STRATEGIES:
            continue
        options = {"center": params["center"]} if "center" in params and name in ("clustered", "spread") else {}
        try:
            with warnings.catch_warnings(record=True) as caught:  # a repair (the file's repair = true) moves nodes
                warnings.simplefilter("always")
                ids = tuple(topologies.place(setup.graph, setup.count, name, seed=seed, max_per_neighborhood=setup.limit,
                                             repair=bool(params.get("repair", False)), **options))
            for warning in caught:  # said again, naming the strategy
                warnings.warn(f"baseline {name}: {warning.message}", stacklevel=2)
            if ids not in known:
                plans[ids] = plans.get(ids) or scorer.plan(ids)
        except ValueError as error:
            rows.append((name, None, None, " ".join(str(error).split())))
            continue
        rows.append((name, ids, None, ""))
    scores = dict(zip(plans, scorer.score_plans(list(plans.values())))) if plans else {}
    return [(name, ids, None if ids is None else {**known, **scores}[ids], note) for name, ids, _, note in rows]


def manual_snippet(report: Report) -> str:
    """The ``[placement]`` table (and ``[run]`` rounds) that reproduces the found damage."""
    ids = ", ".join(str(node) for node in report.nodes)
    limit = "" if report.setup.limit is None else f", max_per_neighborhood = {report.setup.limit}"
    run = report.setup.scenario.run
    return (f'[placement]\nstrategy = "manual"\ncount = {len(report.nodes)}\nparams = {{ ids = [{ids}]{limit} }}\n'
            f"# with [run] rounds = {run.rounds}, eval_every = {run.eval_every}")


def format_report(report: Report) -> str:
    """The table of the search and the built-in strategies, the comparison, and the snippet."""
    setup = report.setup
    limit = "none" if setup.limit is None else setup.limit
    lines = [
        f"{setup.file}: {setup.count} Byzantine of {setup.graph.number_of_nodes()} nodes, max_per_neighborhood={limit}, "
        f"{setup.scenario.run.rounds} rounds; damage = {report.metric}",
        "| placement | damage | nodes |", "|---|---:|---|",
        f"| search ({report.method}, {report.evaluations} evaluations, {report.stopped}) | {report.damage:.4f} | "
        f"{list(report.nodes)} |",
    ]
    for name, ids, damage, note in report.strategies:
        cell = f"{damage:.4f}" if damage is not None else f"skipped: {note}"
        lines.append(f"| {name} | {cell} | {'' if ids is None else list(ids)} |")
    best = report.best_strategy
    if best is None:
        lines.append("no built-in strategy placed a feasible set.")
    else:
        ratio = report.damage / best[2] if best[2] > 0 else math.inf
        lines.append(f"best built-in: {best[0]} ({best[2]:.4f}); search - best = {report.damage - best[2]:+.4f}, "
                     f"search / best = {ratio:.3f}")
    lines.append(f"skipped strategies: {', '.join(f'{name} ({why})' for name, why in SKIPPED_STRATEGIES.items())}")
    if report.rejected:
        ids, why = next(iter(report.rejected.items()))
        lines.append(f"{len(report.rejected)} set(s) refused by the plan, never scored (e.g. {list(ids)}: {why})")
    lines.append("to reproduce the found damage with decentral run, use:\n" + manual_snippet(report))
    return "\n".join(lines)


def save(report: Report, database) -> str:
    """Store the search and its baseline (see :func:`decentral.results.save_placement_search`);
    returns the search's id."""
    setup = report.setup
    config = store.config_of(setup.scenario)
    options = {"count": setup.count, "max_per_neighborhood": setup.limit, "method": report.method,
               "budget": setup.budget, "rounds": setup.scenario.run.rounds}
    key = store.run_id({"placement_search": options, "config": config})
    rows = [("search", list(report.nodes), report.damage, report.evaluations, report.stopped)]
    rows += [(f"strategy:{name}", None if ids is None else list(ids), damage, None, note)
             for name, ids, damage, note in report.strategies]
    connection = store.connect(database)
    try:
        store.save_placement_search(connection, key, config, options, report.metric, rows)
    finally:
        connection.close()
    return key


def default_database(file) -> Path:
    """Where ``decentral run`` of ``file`` writes: ``results.sqlite`` beside it."""
    return store.default_path(file)
