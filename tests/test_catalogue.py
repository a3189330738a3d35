"""``decentral.catalogue`` holds what the registries hold: every rule, attack, topology,
placement, dataset and figure kind with the one line ``decentral list`` (or ``plot --help``)
shows for it. A registry entry without its line fails here, naming the line to write."""

import dataclasses
import json

import pytest

import attacks
import decentral.aggregators as agg
import topologies
from decentral import catalogue, figures
from decentral.data import DATASET_SUMMARIES


def _first_line(obj) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _options(spec) -> str:
    """An attack's variant switches as ``decentral list attacks`` shows them: every field
    with choices (default first, TOML spelling) except the common ones of ``attacks.Attack``."""
    common = {field.name for field in dataclasses.fields(attacks.Attack)}
    shown = []
    for field in dataclasses.fields(spec):
        choices = field.metadata.get("choices")
        if field.name in common or not choices:
            continue
        ordered = [field.default, *(c for c in choices if c != field.default)]
        shown.append(f"{field.name}=" + "|".join(c if isinstance(c, str) else json.dumps(c) for c in ordered))
    return ", ".join(shown)


def _rule(name, spec) -> catalogue.Rule:
    return catalogue.Rule(None if spec.preaggregator else spec.robustness, _first_line(getattr(agg, name, spec)))


def _literal(item) -> str:
    """``item`` as decentral/catalogue.py writes it: None, or a double-quoted string."""
    return "None" if item is None else json.dumps(item, ensure_ascii=False)


def _render(key, value) -> str:
    """The table line for ``key``, as it is written in decentral/catalogue.py."""
    if isinstance(value, catalogue.Rule):
        return f"    {_literal(key)}: Rule({_literal(value.robustness)}, {_literal(value.summary)}),"
    return f"    {_literal(key)}: {_literal(value)},"


# table name -> (the registry it mirrors, what the table should hold, whether its order is the registry's)
MIRRORS = {
    "RULES": ("decentral.aggregators.AGGREGATORS", lambda: {name: _rule(name, spec) for name, spec in sorted(agg.AGGREGATORS.items())}, False),
    "TOPOLOGIES": ("topologies.BUILDERS", lambda: {name: _first_line(builder) for name, builder in topologies.BUILDERS.items()}, True),
    "ATTACKS": ("attacks.ATTACKS", lambda: {name: _first_line(spec) for name, spec in sorted(attacks.ATTACKS.items())}, False),
    "ATTACK_OPTIONS": ("attacks.ATTACKS", lambda: {name: _options(spec) for name, spec in sorted(attacks.ATTACKS.items()) if _options(spec)}, False),
    "PLACEMENTS": ("topologies.STRATEGY_SUMMARIES", lambda: {name: topologies.STRATEGY_SUMMARIES[name] for name in topologies.STRATEGIES}, True),
    "DATASETS": ("decentral.data.DATASET_SUMMARIES", lambda: dict(DATASET_SUMMARIES), True),
    "PLOT_KINDS": ("decentral.figures.KINDS", lambda: dict(figures.KINDS), True),
}  # fmt: skip


@pytest.mark.parametrize("table", list(MIRRORS))
def test_table_mirrors_its_registry(table):
    registry, expected, ordered = MIRRORS[table]
    expected, held = expected(), getattr(catalogue, table)
    problems = []
    for key, value in expected.items():
        if key not in held:
            problems.append(f"{registry} has {key!r}: add to {table}:\n{_render(key, value)}")
        elif held[key] != value:
            problems.append(f"{registry}[{key!r}] changed: replace its line in {table} with:\n{_render(key, value)}")
    problems += [f"{registry} has no {key!r}: remove its line from {table}" for key in held if key not in expected]
    if not problems and ordered and list(held) != list(expected):
        problems.append(f"{table} must list its lines in the order of {registry}: {', '.join(map(repr, expected))}")
    assert not problems, "decentral/catalogue.py is out of date:\n" + "\n".join(problems)



def test_bench_primitives_mirror_the_benchmark():
    from decentral import bench

    assert catalogue.BENCH_PRIMITIVES == tuple(bench.PRIMITIVES), "decentral/catalogue.py BENCH_PRIMITIVES must list bench.PRIMITIVES in order"
