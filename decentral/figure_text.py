"""The words of a figure, read from the configs of its runs: short names of config paths,
the default title (what the selection fixes), the chance level of an accuracy, and the
warning when runs pooled into one cell or curve differ in something not shown.

Pure functions over :class:`decentral.results.StoredRun` lists; nothing here draws.
"""

from __future__ import annotations

import json
import numbers
import warnings

from .scenario import value_label

#: Config paths that differ between replicates by design: pooling over them is the point.
SEED_PATHS = frozenset(
    f"run.{name}" for name in ("seed", "topology_seed", "placement_seed", "data_seed", "init_seed", "attack_seed")
)

#: Classes of each classification dataset (``decentral.data.DATASETS``), for the chance
#: level 1 / classes; ``synthetic_classification`` reads its ``num_classes`` parameter.
#: tests/test_figure_text.py holds it equal to the datasets.
NUM_CLASSES = {"digits": 10, "mnist5k": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10,
               "synthetic_classification": 10}

_MAIN = {"defense.aggregator": "aggregator", "network.topology": "topology", "data.dataset": "dataset",
         "placement.strategy": "placement", "data.partition": "partition"}


def short(path: str) -> str:
    """A config path as a figure shows it: ``attack.name`` -> ``attack``,
    ``defense.aggregator`` -> ``aggregator``, ``network.params.n`` -> ``network.n``,
    ``attack.params.epsilon`` -> ``attack.epsilon``, ``placement.count`` unchanged."""
    parts = [part for part in path.split(".") if part != "params"]
    if len(parts) > 1 and parts[-1] == "name":
        parts.pop()
    joined = ".".join(parts)
    return _MAIN.get(joined, ".".join(parts[-2:]))


_UNSET = object()


def _inside(path: str, shown) -> bool:
    """Whether ``path`` is one of the ``shown`` paths or inside one."""
    return any(path == other or path.startswith(other + ".") for other in shown)


def _overlap(path: str, other: str) -> bool:
    return path == other or path.startswith(other + ".") or other.startswith(path + ".")


def differences(runs, shown=()) -> dict[str, tuple[str, str]]:
    """Config paths on which ``runs`` disagree, each with two of its values as JSON (``unset``
    where a run lacks it): the deepest path where the runs still all hold tables, so a
    differing parameter is named itself (``attack.params.optimal``). Seeds, the ``sweep``
    table and the paths in ``shown`` or inside them are left out."""
    found: dict[str, tuple[str, str]] = {}
    _compare([run.config for run in runs], "", tuple(shown), found)
    return found


def _compare(tables: list[dict], prefix: str, shown: tuple, found: dict) -> None:
    for key in dict.fromkeys(key for table in tables for key in table):
        path = prefix + key
        if path == "sweep" or path in SEED_PATHS or _inside(path, shown):
            continue
        values = [table.get(key, _UNSET) for table in tables]
        if all(isinstance(value, dict) for value in values):
            _compare(values, path + ".", shown, found)
        elif not any(other.startswith(path + ".") for other in shown):
            texts = list(dict.fromkeys("unset" if v is _UNSET else json.dumps(v, sort_keys=True) for v in values))
            if len(texts) > 1:
                found[path] = (texts[0], texts[1])


def warn_pooled(pools: dict[str, list], shown, what: str) -> None:
    """Warn, once per path, when the runs pooled in one of ``pools`` (label -> runs) differ
    in a config path that the figure neither groups nor selects (``shown``) and that is no
    seed: their replicates would be averaged as if they were one setting."""
    reported = set()
    for label, runs in pools.items():
        for path, (first, second) in differences(runs, shown).items():
            if path in reported:
                continue
            reported.add(path)
            warnings.warn(
                f"the runs pooled in {what} {label!r} differ in {path} ({first} and {second}); "
                f"group by it or select one value with --where {path}=VALUE.",
                stacklevel=3,
            )


def default_title(everything, chosen, where: dict, shown=()) -> str:
    """What the selection fixes, as ``short(path)=label`` joined by ", ": the ``where``
    entries, then each config path that differs among ``everything`` (the database's runs;
    seeds aside) but has one value among ``chosen``; paths in ``shown`` (grouped) left out."""
    parts = {short(path): value_label(value, path) for path, value in where.items()}
    varying = differences(everything, shown=tuple(shown) + tuple(where))
    fixed = differences(chosen)
    for path in varying:
        value = _at(chosen[0].config, path)
        if value is not _UNSET and not any(_overlap(path, other) for other in fixed):
            parts.setdefault(short(path), value_label(value, path))
    return ", ".join(f"{name}={label}" for name, label in parts.items())


def _at(config: dict, path: str):
    node = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def is_accuracy(metric: str) -> bool:
    """Whether a metric is an accuracy (a share in [0, 1]): its name ends in ``accuracy``."""
    return metric.endswith("accuracy")


def chance_level(runs, chance="auto", metric: str = "test_accuracy") -> float | None:
    """The chance accuracy to mark: ``chance`` when a number in (0, 1); None for "none";
    for "auto", 1 / classes of the runs' dataset (:data:`NUM_CLASSES`) when ``metric`` is an
    accuracy and every run has the same one, else None.

    Raises:
        ValueError: ``chance`` neither "auto", "none" nor a number in (0, 1).
    """
    if chance is None or chance == "none":
        return None
    if isinstance(chance, numbers.Real) and not isinstance(chance, bool):
        if not 0 < chance < 1:
            raise ValueError(f"chance must lie in (0, 1) (1 / number of classes); got {chance!r}.")
        return float(chance)
    if chance != "auto":
        raise ValueError(f"chance must be 'auto', 'none' or a number in (0, 1); got {chance!r}.")
    if not is_accuracy(metric):
        return None
    levels = {_dataset_chance(run) for run in runs}
    return levels.pop() if len(levels) == 1 else None


def _dataset_chance(run) -> float | None:
    name = run.config.get("data", {}).get("dataset")
    params = run.config.get("data", {}).get("params", {})
    classes = params.get("num_classes", NUM_CLASSES.get(name)) if name in NUM_CLASSES else None
    return None if classes is None else 1.0 / classes
