"""``decentral place-search``: the worst-case placement by simulated damage.

The search logic (greedy, local search, exhaustive, the budget, feasibility) is checked
with a plain-Python damage, no compilation; the simulated damage on a 12-node averaging
scenario (one compilation, shared by the searches and the CLI) and on a tiny digits one
(the vmapped scorer against plain ``simulate`` runs of the manual placements)."""

import itertools
import math

import numpy as np
import pytest

import topologies
from decentral import cli, engine, results
from decentral import place_search as ps
from decentral.place_score import Scorer, damage_of_result, manual_scenario
from decentral.scenario import scenario_from_dict

AVERAGING = """
[network]
topology = "barabasi_albert"
params = { n = 12, m = 2 }
[placement]
strategy = "random"
count = 2
[attack]
name = "dissensus"
[run]
task = "averaging"
dim = 4
rounds = 6
eval_every = 3
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "scenario.toml"
    path.write_text(AVERAGING)
    return path


@pytest.fixture(scope="module")
def searched(scenario_file):
    """The greedy + local search and the exhaustive search of the averaging scenario."""
    greedy = ps.search(ps.prepare(scenario_file, budget=100))
    exhaustive = ps.search(ps.prepare(scenario_file, budget=100, exhaustive=True))
    return greedy, exhaustive


# --------------------------------------------------------------------------- the search logic


class FakeScorer:
    """A damage without simulation: a fixed number per set; ``refuse`` sets the plan rejects."""

    def __init__(self, damage, refuse=()):
        self.damage, self.refuse, self.scored = damage, set(refuse), []

    def plan(self, ids):
        if ids in self.refuse:
            raise ValueError(f"refused {ids}")
        return ids

    def score_plans(self, plans):
        self.scored += plans
        return [self.damage(ids) for ids in plans]


def _pairwise(n, seed=0):
    """A damage with pair interactions, so that greedy alone can miss the optimum."""
    rng = np.random.default_rng(seed)
    single, pair = rng.normal(size=n), rng.normal(size=(n, n))
    return lambda ids: float(sum(single[i] for i in ids) + sum(pair[i, j] for i, j in itertools.combinations(ids, 2)))


def test_greedy_adds_the_node_of_most_damage_and_local_search_swaps_to_better_sets():
    damage = lambda ids: 10 * (0 in ids) + 5 * (3 in ids) + (7 in ids)  # noqa: E731
    evaluations = ps.Evaluations(FakeScorer(damage), budget=100)
    nodes = range(8)
    assert ps.greedy(nodes, 2, lambda ids: True, evaluations) == (0, 3)
    assert evaluations.spent == 8 + 7
    assert ps.local_search((1, 2), nodes, lambda ids: True, ps.Evaluations(FakeScorer(damage), budget=100)) == (
        (0, 3), "local optimum")


def test_a_better_built_in_set_restarts_local_search_and_the_better_optimum_wins():
    # two basins: greedy climbs to {0, 1} (damage 3), while {4, 5} (damage 10) is only
    # reached from a start near it, such as a built-in strategy's {4, 6}
    table = {(0, 1): 3.0, (4, 5): 10.0, (4, 6): 4.0, (5, 6): 4.0}
    damage = lambda ids: table.get(ids, float((0 in ids) + (1 in ids)))  # noqa: E731
    nodes, feasible = range(8), lambda ids: True
    evaluations = ps.Evaluations(FakeScorer(damage), budget=200)
    found, stopped = ps.local_search(ps.greedy(nodes, 2, feasible, evaluations), nodes, feasible, evaluations)
    assert found == (0, 1) and stopped == "local optimum"
    baseline = [("random", (2, 3), 0.0, ""), ("clustered", (4, 6), 4.0, ""), ("fiedler", None, None, "skipped")]
    again, why = ps._restart_from_best_strategy(found, stopped, baseline, nodes, feasible, evaluations)
    assert again == (4, 5) and evaluations.scores[again] == 10.0
    assert why == "local optimum (local search restarted from strategy clustered's set)"
    # a built-in set no better than the optimum found changes nothing
    assert ps._restart_from_best_strategy((4, 5), "local optimum", baseline, nodes, feasible, evaluations) == (
        (4, 5), "local optimum")


def test_with_the_budget_spent_a_better_built_in_set_is_still_the_result():
    table = {(0, 1): 3.0, (4, 6): 4.0}
    damage = lambda ids: table.get(ids, float((0 in ids) + (1 in ids)))  # noqa: E731
    nodes, feasible = range(8), lambda ids: True
    evaluations = ps.Evaluations(FakeScorer(damage), budget=15)  # greedy's 8 + 7 sets, nothing left
    found, stopped = ps.local_search(ps.greedy(nodes, 2, feasible, evaluations), nodes, feasible, evaluations)
    assert found == (0, 1) and stopped == "budget" and evaluations.spent == 15
    baseline = [("clustered", (4, 6), 4.0, "")]
    again, why = ps._restart_from_best_strategy(found, stopped, baseline, nodes, feasible, evaluations)
    assert again == (4, 6) and evaluations.scores[again] == 4.0 and evaluations.spent == 15  # no budget spent on it
    assert why == "budget (local search restarted from strategy clustered's set)"


def test_local_search_stops_on_the_budget_and_never_scores_more():
    scorer = FakeScorer(_pairwise(10))
    evaluations = ps.Evaluations(scorer, budget=13)
    found, stopped = ps.local_search((0, 1), range(10), lambda ids: True, evaluations)
    assert stopped == "budget" and evaluations.spent == 13 == len(scorer.scored) == len(set(scorer.scored))
    assert found in evaluations.scores


def test_infeasible_and_refused_sets_are_never_scored():
    graph = topologies.star(6)
    feasible = ps.Feasible(graph, 1)
    scorer = FakeScorer(_pairwise(6), refuse={(0, 2)})
    evaluations = ps.Evaluations(scorer, budget=100)
    best = ps.exhaustive(range(6), 2, feasible, evaluations)
    # two leaves would give the honest hub 2 Byzantine neighbours: only sets with the hub are feasible
    assert sorted(scorer.scored) == [(0, 1), (0, 3), (0, 4), (0, 5)] and best in scorer.scored
    assert evaluations.rejected == {(0, 2): "refused (0, 2)"}


def test_feasibility_is_the_limit_of_topologies_place():
    graph = topologies.barabasi_albert(12, 2, seed=0)
    feasible = ps.Feasible(graph, 1)
    for ids in itertools.combinations(range(12), 2):
        try:
            topologies.place(graph, None, "manual", ids=list(ids), max_per_neighborhood=1)
            allowed = True
        except ValueError:
            allowed = False
        assert feasible(ids) == allowed, ids


# --------------------------------------------------------------------------- simulated damage


def test_greedy_and_local_search_reach_the_exhaustive_maximum(searched):
    greedy, exhaustive = searched
    assert exhaustive.method == "exhaustive" and greedy.method == "greedy+local"
    assert set(exhaustive.scored) == set(itertools.combinations(range(12), 2))
    assert exhaustive.evaluations == math.comb(12, 2)
    assert greedy.nodes == exhaustive.nodes and greedy.damage == pytest.approx(exhaustive.damage, rel=1e-6)
    assert greedy.damage == pytest.approx(max(exhaustive.scored.values()), rel=1e-6)
    assert greedy.stopped == "local optimum" and greedy.evaluations < exhaustive.evaluations
    for _, ids, damage, _ in greedy.strategies:  # the baseline's sets are scored by the same scorer
        if ids is not None:
            assert damage == pytest.approx(exhaustive.scored[ids], rel=1e-6)


def test_under_a_limit_only_the_feasible_sets_are_scored(scenario_file, searched):
    greedy, _ = searched
    limited = ps.search(ps.prepare(scenario_file, budget=100, max_per_neighborhood=1, exhaustive=True))
    feasible = ps.Feasible(greedy.setup.graph, 1)
    expected = {ids for ids in itertools.combinations(range(12), 2) if feasible(ids)}
    assert set(limited.scored) == expected and 0 < len(expected) < math.comb(12, 2)
    assert limited.nodes in expected and "max_per_neighborhood = 1" in ps.manual_snippet(limited)
    for _, ids, _, note in limited.strategies:  # a strategy over the limit is skipped, saying why
        assert ids in expected or (ids is None and "max_per_neighborhood=1" in note)


def test_a_second_batch_of_the_same_size_does_not_recompile(searched):
    greedy, _ = searched
    scorer = Scorer(greedy.setup.scenario, batch=greedy.setup.batch, first=(0, 1))
    compiled = scorer.compiled._cache_size()
    # both searches and the baseline ran through one compilation per set size: the greedy's
    # first step scores single nodes (11 honest nodes, other shapes), every other batch pairs
    assert compiled == 2
    scorer.score([(2, 3), (4, 5)])
    assert scorer.compiled._cache_size() == compiled


def test_the_vmapped_damage_is_the_damage_of_a_plain_simulate_run(searched):
    greedy, exhaustive = searched
    for ids in (greedy.nodes, (0, 1), (5, 9)):
        result = engine.simulate(manual_scenario(greedy.setup.scenario, ids))
        assert damage_of_result(result) == pytest.approx(exhaustive.scored[ids], rel=1e-5, abs=1e-7), ids


def test_the_vmapped_damage_equals_simulate_on_training_with_set_dependent_inputs():
    """Digits, a poisoning attack (poisoned data), f = 'true' (f per node) and
    byzantine_weight (weights of the set): every placement-dependent input stacked."""
    scenario = scenario_from_dict({
        "network": {"topology": "barabasi_albert", "params": {"n": 8, "m": 2}, "byzantine_weight": 0.2},
        "placement": {"count": 2},
        "data": {"dataset": "digits", "batch_size": 8},
        "attack": {"name": "label_flip"},
        "defense": {"aggregator": "trimmed_mean", "f": "true"},
        "run": {"rounds": 2, "eval_every": 2},
    })
    sets = [(0, 1), (2, 6), (4, 7)]
    scores = Scorer(scenario, batch=3, first=sets[0]).score(sets)
    for ids, score in zip(sets, scores):
        result = engine.simulate(manual_scenario(scenario, ids))
        assert 0 < score < 1 and damage_of_result(result) == pytest.approx(score, rel=1e-5, abs=1e-7), ids
    assert len(set(scores)) == len(scores)


# --------------------------------------------------------------------------- the command line


def test_the_command_prints_the_table_stores_the_rows_and_reproduces(scenario_file, searched, tmp_path, capsys):
    greedy, _ = searched
    database = tmp_path / "r.sqlite"
    code = cli.main(["place-search", str(scenario_file), "--budget", "100", "--db", str(database)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "| placement | damage | nodes |" in out and f"{list(greedy.nodes)} |" in out
    assert f"params = {{ ids = [{', '.join(map(str, greedy.nodes))}] }}" in out
    assert "best built-in:" in out and "eclipse (" in out
    connection = results.connect(database)
    try:
        stored = results.placement_searches(connection)
    finally:
        connection.close()
    entries = {entry["entry"]: entry for entry in stored}
    strategies = [name for name in topologies.STRATEGIES if name not in ps.SKIPPED_STRATEGIES]
    assert set(entries) == {"search", *(f"strategy:{name}" for name in strategies)}
    assert entries["search"]["nodes"] == list(greedy.nodes)
    assert entries["search"]["damage"] == pytest.approx(greedy.damage)
    assert entries["search"]["options"]["method"] == "greedy+local"
    code = cli.main(["export", "--db", str(database), "--what", "searches"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.splitlines()[0].startswith("search,entry,nodes,damage") and len(out.splitlines()) == 1 + len(entries)
    # the printed [placement] table, run with decentral run, measures the found damage
    snippet = ps.manual_snippet(greedy)
    manual = tmp_path / "manual.toml"
    manual.write_text(AVERAGING.replace('[placement]\nstrategy = "random"\ncount = 2\n', snippet + "\n"))
    assert cli.main(["run", str(manual), "--db", str(tmp_path / "manual.sqlite")]) == 0, capsys.readouterr()
    connection = results.connect(tmp_path / "manual.sqlite")
    try:
        (run,) = results.runs(connection)
        summary = results.summarize(connection, run.id)
    finally:
        connection.close()
    assert run.value("placement.params.ids") == list(greedy.nodes)
    assert summary["consensus_distance"] + summary["drift"] ** 2 == pytest.approx(greedy.damage, rel=1e-5)


@pytest.mark.parametrize(
    "text, options, message",
    [
        (AVERAGING, ["--budget", "0"], "--budget must be >= 1"),
        (AVERAGING, ["--budget", "10"], "the greedy pass may score up to 23 sets"),
        (AVERAGING, ["--budget", "50", "--exhaustive"], "--exhaustive scores all 66 feasible sets"),
        (AVERAGING, ["--count", "12"], "leaves no honest node"),
        (AVERAGING, ["--count", "0"], "at least one Byzantine node"),
        (AVERAGING, ["--max-per-neighborhood", "0"], "max_per_neighborhood=0: no placement of 2 nodes"),
        (AVERAGING, ["--max-per-neighborhood", "-1"], "max_per_neighborhood must be an integer >= 0"),
        (AVERAGING, ["--rounds", "0"], "--rounds must be >= 1"),
        (AVERAGING, ["--batch", "0"], "--batch must be >= 1"),
        (AVERAGING + '[sweep]\n"run.seed" = [0, 1]\n', [], "[sweep] 'run.seed'"),
        (AVERAGING.replace('strategy = "random"', 'strategy = "attach"'), [], "strategy 'attach' adds new Byzantine nodes"),
    ],
)
def test_bad_input_is_one_error_line_before_compiling(text, options, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ps, "search", lambda setup: pytest.fail("searched despite bad input"))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = cli.main(["place-search", str(path), "--db", str(tmp_path / "r.sqlite"), *options])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: decentral place-search:") and len(err.splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "r.sqlite").exists()
