"""Scenarios: a frozen, validated description of one simulation, from Python or TOML.

A TOML scenario has the tables ``[network]``, ``[placement]``, ``[data]``, ``[model]``,
``[optimizer]``, ``[defense]``, ``[attack]``, ``[faults]``, ``[run]`` and optionally
``[sweep]``; every key is checked, and an unknown key is an error naming the table and the
closest valid key. Open-ended parameters (the graph builder's, the dataset's, the rule's,
the attack's, the optimizer's) go in each table's ``params`` sub-table, e.g.
``[defense.params]``, and are checked against the component they configure when the
simulation is built, before anything compiles.

``[sweep]`` lists explicit axes, ``"table.key" = [values]``; the scenario runs at every
combination of them, one after another. Nothing else is a sweep: a list elsewhere (a chain
of rules in ``defense.aggregator``) is a single value.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

from ._hints import did_you_mean


def _field(default, doc: str):
    return dataclasses.field(default=default, metadata={"doc": doc})


def _params():
    return dataclasses.field(default_factory=dict, metadata={"doc": "parameters of the component"})


@dataclasses.dataclass(frozen=True)
class NetworkSection:
    """The ``[network]`` table of a scenario."""

    topology: str = _field("random_regular", "a builder of `topologies` (decentral list topologies)")
    weights: Any = _field(
        None,
        "mixing weights: metropolis (undirected default), uniform (directed default), max_degree, "
        "edgelist (a weighted edge list's third column), or {matrix = 'W.npy'} (or .csv)",
    )
    byzantine_weight: float | None = _field(
        None, "delta in [0, 1): each honest node's Byzantine in-neighbours get delta in total (traced)"
    )
    params: dict = dataclasses.field(
        default_factory=lambda: {"n": 100, "degree": 10}, metadata={"doc": "the builder's arguments"}
    )


@dataclasses.dataclass(frozen=True)
class PlacementSection:
    """The ``[placement]`` table of a scenario."""

    strategy: str = _field("random", "a strategy of topologies.placed (decentral list placements)")
    count: int | float = _field(0, "Byzantine nodes: an int, or a float fraction of n (rounded down); attach: per target")
    params: dict = _params()


@dataclasses.dataclass(frozen=True)
class DataSection:
    """The ``[data]`` table of a scenario."""

    dataset: str = _field("digits", "digits, mnist5k, synthetic_regression, synthetic_classification, mnist, ...")
    partition: Any = _field("iid", "iid, or a table such as {name = 'dirichlet', alpha = 0.5}")
    batch_size: int = _field(32, "minibatch size of each local step")
    params: dict = _params()


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """The ``[model]`` table of a scenario."""

    name: str = _field("logistic", "linear, logistic, mlp or cnn")
    params: dict = _params()


@dataclasses.dataclass(frozen=True)
class OptimizerSection:
    """The ``[optimizer]`` table of a scenario."""

    name: str = _field("sgd", "any optax optimizer by name")
    learning_rate: float = _field(0.1, "the optimizer's learning rate (traced: changing it never recompiles)")
    params: dict = _params()


@dataclasses.dataclass(frozen=True)
class DefenseSection:
    """The ``[defense]`` table of a scenario."""

    aggregator: Any = _field("mean", "a rule name, or a list: pre-aggregators then a rule")
    f: Any = _field(0, "an int for every node, 'degree' (floor(rho * degree)) or 'true' (real Byzantine count)")
    rho: float = _field(0.0, "with f = 'degree': the assumed Byzantine fraction of each neighbourhood")
    params: dict = dataclasses.field(default_factory=dict, metadata={"doc": "the rule's hyperparameters"})


@dataclasses.dataclass(frozen=True)
class AttackSection:
    """The ``[attack]`` table of a scenario."""

    name: str = _field("none", "an attack of `attacks` (decentral list attacks)")
    params: dict = _params()


@dataclasses.dataclass(frozen=True)
class FaultsSection:
    """The ``[faults]`` table of a scenario."""

    message_loss: float = _field(0.0, "probability that each message is lost, per link and round")
    crashed: list = dataclasses.field(default_factory=list, metadata={"doc": "node ids that crash"})
    crash_round: int = _field(0, "from this round on, crashed nodes send nothing and stop updating")
    stragglers: list = dataclasses.field(default_factory=list, metadata={"doc": "node ids whose messages arrive late"})
    delay: int = _field(1, "rounds by which stragglers' messages are late (they carry stale parameters)")


@dataclasses.dataclass(frozen=True)
class RunSection:
    """The ``[run]`` table of a scenario."""

    seed: int = _field(0, "master seed; the seeds below default to values derived from it")
    repeats: int = _field(1, "replicates of the run (vmapped), each with its own derived seeds")
    rounds: int = _field(100, "communication rounds")
    eval_every: int = _field(10, "rounds between evaluations")
    task: str = _field("train", "train (local SGD steps + gossip) or averaging (gossip only)")
    order: str = _field("atc", "atc (adapt then combine) or cta (combine then adapt)")
    local_steps: int = _field(1, "local optimizer steps per round")
    gossip_steps: int = _field(1, "gossip rounds per step")
    gossip: str = _field("params", "what nodes exchange: params, or updates (the change of their local step)")
    dim: int = _field(32, "averaging task only: the dimension of the nodes' vectors")
    block: int = _field(0, "nodes per block in gossip (0: whole bucket); memory ~ block * K * d")
    optimization: int = _field(2, "XLA's CPU/GPU backend optimization level 0-3: 2 compiles 2-4x faster than 3 (XLA's default) for about the same speed")
    topology_seed: int | None = _field(None, "override the derived topology seed")
    placement_seed: int | None = _field(None, "override the derived placement seed")
    data_seed: int | None = _field(None, "override the derived data seed")
    init_seed: int | None = _field(None, "override the derived initialisation seed")
    attack_seed: int | None = _field(None, "override the derived attack seed")


SECTIONS = {
    "network": NetworkSection,
    "placement": PlacementSection,
    "data": DataSection,
    "model": ModelSection,
    "optimizer": OptimizerSection,
    "defense": DefenseSection,
    "attack": AttackSection,
    "faults": FaultsSection,
    "run": RunSection,
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One simulation, fully described. Build from Python or :func:`load_scenario`."""

    network: NetworkSection = dataclasses.field(default_factory=NetworkSection)
    placement: PlacementSection = dataclasses.field(default_factory=PlacementSection)
    data: DataSection = dataclasses.field(default_factory=DataSection)
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    optimizer: OptimizerSection = dataclasses.field(default_factory=OptimizerSection)
    defense: DefenseSection = dataclasses.field(default_factory=DefenseSection)
    attack: AttackSection = dataclasses.field(default_factory=AttackSection)
    faults: FaultsSection = dataclasses.field(default_factory=FaultsSection)
    run: RunSection = dataclasses.field(default_factory=RunSection)
    sweep: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        _check_values(self)
        for axis, values in self.sweep.items():
            _check_axis(axis, values)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with entries changed, by sweep axis: ``"table.key"`` (``{"run.rounds": 10}``),
        ``"table.params.name"`` (one parameter, e.g. ``{"attack.params.epsilon": 0.5}``) or
        ``"table"`` with a table of keys (``{"placement": {"strategy": "eclipse", "params": {...}}}``)."""
        sections = {name: getattr(self, name) for name in SECTIONS}
        for axis, value in changes.items():
            table, key, parameter = _split_axis(axis)
            section = sections[table]
            if parameter is not None:
                value = {**section.params, parameter: value}
            if key is None:
                _check_table_value(axis, table, value)
                sections[table] = dataclasses.replace(section, **value)
            else:
                sections[table] = dataclasses.replace(section, **{key: value})
        return Scenario(**sections, sweep=self.sweep)

    def points(self) -> list[tuple[dict, Scenario]]:
        """Every sweep point: ``(axis values, scenario without a sweep)``; one point if no sweep."""
        axes = list(self.sweep)
        base = dataclasses.replace(self, sweep={})
        points = []
        for values in itertools.product(*(self.sweep[axis] for axis in axes)):
            changes = dict(zip(axes, values))
            points.append((changes, base.replace(**changes)))
        return points

    def to_dict(self) -> dict:
        """The resolved scenario as plain data (for logs and result databases)."""
        return dataclasses.asdict(self)


#: The key that names a table's component, in the order looked for (``name`` first).
MAIN_KEYS = ("name", "strategy", "topology", "aggregator", "dataset")


def value_label(value, path: str | None = None, *, parameters: bool = True) -> str:
    """A sweep value as a short label: chains (lists of names) joined by '+', other lists
    in brackets (``[0,6]``); a table by its main key (name,
    strategy, topology, ...) with its other entries, ``params`` unpacked, in parentheses:
    ``{"name": "alie", "params": {"optimal": True}}`` -> ``alie(optimal=true)``,
    ``{"name": "dirichlet", "alpha": 0.5}`` -> ``dirichlet(alpha=0.5)``; a table without one
    as ``key=value`` pairs.

    Args:
        value: a config value (a sweep value, or what a results database stores at a path).
        path: the config path of ``value``; for a whole table (``"placement"``), its keys
            that hold the table's default (``count = 0``) are left out, and an empty
            ``params`` always is. Parameters are shown as given: the component's own
            defaults are not known here.
        parameters: False: only the main key's label (``alie``).
    """
    if isinstance(value, list) and all(isinstance(item, str | list) for item in value):
        return "+".join(value_label(item) for item in value)
    if not isinstance(value, dict):
        return _text(value)
    main = next((key for key in MAIN_KEYS if key in value), None)
    entries = _entries(value, path, skip=main)
    if main is None:
        return ",".join(entries)
    head = value_label(value[main])
    return f"{head}({','.join(entries)})" if parameters and entries else head


def _entries(table: dict, path: str | None, *, skip: str | None) -> list[str]:
    """``key=value`` for the entries of a table but ``skip``, ``params`` unpacked; a whole
    section's entries equal to the section's defaults left out."""
    defaults = {}
    if path in SECTIONS:
        defaults = {field.name: _default(field) for field in dataclasses.fields(SECTIONS[path])}
    entries = []
    for key, item in table.items():
        if key == skip or (key in defaults and item == defaults[key]):
            continue
        if key == "params" and isinstance(item, dict):
            entries += [f"{name}={_text(parameter)}" for name, parameter in item.items()]
        else:
            entries.append(f"{key}={value_label(item) if isinstance(item, dict) else _text(item)}")
    return entries


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _text(value) -> str:
    """A leaf as TOML writes it, unquoted: true, 0.5, [0,6], alie."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}={_text(item)}" for key, item in value.items()) + "}"
    return str(value)


def _split_axis(axis: str) -> tuple[str, str | None, str | None]:
    """``"table.key"`` -> (table, key, None); ``"table.params.name"`` -> (table, "params", name);
    ``"table"`` -> (table, None, None)."""
    table, _, rest = axis.partition(".")
    key, _, parameter = rest.partition(".")
    if table not in SECTIONS:
        raise ValueError(
            f"sweep axis {axis!r}: expected 'table', 'table.key' or 'table.params.name' with a table among "
            f"{', '.join(SECTIONS)}.{did_you_mean(table, SECTIONS)}"
        )
    if not key:
        return table, None, None
    known = [field.name for field in dataclasses.fields(SECTIONS[table])]
    if key not in known:
        raise ValueError(f"sweep axis {axis!r}: [{table}] has no key {key!r}.{did_you_mean(key, known)} Valid: {', '.join(known)}.")
    if parameter and key != "params":
        raise ValueError(f"sweep axis {axis!r}: only params sub-keys can be swept one by one ('{table}.params.NAME').")
    return table, key, parameter or None


def _check_table_value(axis: str, table: str, value) -> None:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"sweep axis {axis!r} sweeps the whole [{table}] table: each value must be a table of its keys, got {value!r}.")
    known = [field.name for field in dataclasses.fields(SECTIONS[table])]
    for key in value:
        if key not in known:
            raise ValueError(f"sweep axis {axis!r}: [{table}] has no key {key!r}.{did_you_mean(key, known)} Valid: {', '.join(known)}.")


def _check_axis(axis: str, values) -> None:
    table, key, _ = _split_axis(axis)
    if not isinstance(values, list) or not values:
        raise ValueError(f"[sweep] {axis!r} must be a non-empty list of values, got {values!r}.")
    if key is None:
        for value in values:
            _check_table_value(axis, table, value)


def _section_from_table(name: str, table: dict):
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise ValueError(f"[{name}] must be a table, got {table!r}.")
    known = [field.name for field in dataclasses.fields(cls)]
    for key in table:
        if key not in known:
            raise ValueError(f"[{name}] unknown key {key!r}.{did_you_mean(key, known)} Valid keys: {', '.join(known)}.")
    if "params" in table and not isinstance(table["params"], dict):
        raise ValueError(f"[{name}] params must be a table ([{name}.params]), got {table['params']!r}.")
    return cls(**table)


def scenario_from_dict(config: dict) -> Scenario:
    """Build a :class:`Scenario` from nested dicts (the shape of a TOML file)."""
    unknown = [key for key in config if key not in SECTIONS and key != "sweep"]
    if unknown:
        valid = [*SECTIONS, "sweep"]
        raise ValueError(f"unknown table [{unknown[0]}].{did_you_mean(unknown[0], valid)} Valid tables: {', '.join(valid)}.")
    sections = {name: _section_from_table(name, config[name]) for name in SECTIONS if name in config}
    return Scenario(**sections, sweep=dict(config.get("sweep", {})))


def load_scenario(path) -> Scenario:
    """Read a TOML scenario file; errors name the file and the offending table or key."""
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"scenario file {str(path)!r} not found.") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    try:
        return scenario_from_dict(_paths_relative_to(config, path.resolve().parent))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


def _paths_relative_to(config: dict, folder: Path) -> dict:
    """A relative ``path`` in ``[network.params]`` or ``[data.params]`` (an edge list, a data
    folder), a relative ``nodes`` in ``[network.params]`` (an edge list's node file) and a
    relative weight ``matrix`` (``[network] weights``, or the values of a
    ``"network.weights"`` sweep axis) are relative to the scenario file's folder, wherever
    the command runs from."""
    config = dict(config)
    for table, keys in (("network", ("path", "nodes")), ("data", ("path",))):
        section = config.get(table)
        if isinstance(section, dict) and isinstance(section.get("params"), dict):
            params = dict(section["params"])
            for key in keys:
                location = params.get(key)
                if isinstance(location, str) and not Path(location).expanduser().is_absolute():
                    params[key] = str(folder / location)
            config[table] = {**section, "params": params}
    network = config.get("network")
    if isinstance(network, dict) and "weights" in network:
        config["network"] = {**network, "weights": _matrix_relative_to(network["weights"], folder)}
    sweep = config.get("sweep")
    if isinstance(sweep, dict) and isinstance(sweep.get("network.weights"), list):
        values = [_matrix_relative_to(value, folder) for value in sweep["network.weights"]]
        config["sweep"] = {**sweep, "network.weights": values}
    return config


def _matrix_relative_to(weights, folder: Path):
    """``{matrix = PATH}`` with a relative PATH made relative to ``folder``; anything else as it is."""
    if isinstance(weights, dict) and isinstance(weights.get("matrix"), str):
        location = weights["matrix"]
        if not Path(location).expanduser().is_absolute():
            return {**weights, "matrix": str(folder / location)}
    return weights


# --------------------------------------------------------------------------- value checks


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_values(scenario: Scenario) -> None:
    """Checks that need no component: types and ranges of the fixed keys."""
    run = scenario.run
    for key in ("repeats", "rounds", "eval_every", "local_steps", "gossip_steps", "dim"):
        value = getattr(run, key)
        _require(_is_int(value) and value >= 1, f"[run] {key} must be an integer >= 1, got {value!r}.")
    _require(_is_int(run.seed), f"[run] seed must be an integer, got {run.seed!r}.")
    _require(_is_int(run.block) and run.block >= 0, f"[run] block must be an integer >= 0, got {run.block!r}.")
    _require(
        _is_int(run.optimization) and 0 <= run.optimization <= 3,
        f"[run] optimization must be an XLA backend optimization level 0, 1, 2 or 3, got {run.optimization!r}.",
    )
    _require(run.task in ("train", "averaging"), f"[run] task must be 'train' or 'averaging', got {run.task!r}.")
    _require(run.order in ("atc", "cta"), f"[run] order must be 'atc' or 'cta', got {run.order!r}.")
    _require(run.gossip in ("params", "updates"), f"[run] gossip must be 'params' or 'updates', got {run.gossip!r}.")
    _require(
        run.gossip == "params" or (run.task == "train" and run.order == "atc"),
        "[run] gossip = 'updates' needs task = 'train' and order = 'atc' (the update is the local step's change).",
    )
    faults = scenario.faults
    for key in ("crashed", "stragglers"):
        ids = getattr(faults, key)
        _require(
            isinstance(ids, list) and all(_is_int(i) and i >= 0 for i in ids) and len(set(ids)) == len(ids),
            f"[faults] {key} must be a list of distinct node ids, got {ids!r}.",
        )
    _require(_is_int(faults.crash_round) and faults.crash_round >= 0, f"[faults] crash_round must be an integer >= 0, got {faults.crash_round!r}.")
    _require(_is_int(faults.delay) and faults.delay >= 1, f"[faults] delay must be an integer >= 1, got {faults.delay!r}.")
    count = scenario.placement.count
    _require(
        (_is_int(count) and count >= 0) or (isinstance(count, float) and 0.0 <= count < 1.0),
        f"[placement] count must be an integer >= 0 or a fraction in [0, 1), got {count!r}.",
    )
    f = scenario.defense.f
    _require(
        (_is_int(f) and f >= 0) or f in ("degree", "true"),
        f"[defense] f must be an integer >= 0, 'degree' or 'true', got {f!r}.",
    )
    if f == "degree":
        _require(0.0 <= scenario.defense.rho < 1.0, f"[defense] rho must be in [0, 1), got {scenario.defense.rho!r}.")
    loss = scenario.faults.message_loss
    _require(
        isinstance(loss, int | float) and 0.0 <= loss < 1.0, f"[faults] message_loss must be in [0, 1), got {loss!r}."
    )
    _require(
        _is_int(scenario.data.batch_size) and scenario.data.batch_size >= 1,
        f"[data] batch_size must be an integer >= 1, got {scenario.data.batch_size!r}.",
    )
    _check_weights(scenario.network)
    rate = scenario.optimizer.learning_rate
    _require(isinstance(rate, int | float) and rate > 0, f"[optimizer] learning_rate must be > 0, got {rate!r}.")


def _check_weights(network: NetworkSection) -> None:
    """[network] weights is a name or a ``{matrix = PATH}`` table (the names and the
    matrix itself are checked against the graph when the plan is built); byzantine_weight
    is None or a number in [0, 1)."""
    weights = network.weights
    if isinstance(weights, dict):
        for key in weights:
            _require(key == "matrix", f"[network] weights has no key {key!r}.{did_you_mean(key, ['matrix'])} Write weights = {{ matrix = \"W.npy\" }}.")
        _require(
            isinstance(weights.get("matrix"), str),
            f"[network] weights = {{ matrix = PATH }} needs a .npy or .csv file name as a string, got {weights!r}.",
        )
    else:
        _require(
            weights is None or isinstance(weights, str),
            "[network] weights must be a name (metropolis, uniform, max_degree, edgelist) or a table "
            f"{{ matrix = \"W.npy\" }}, got {weights!r}.",
        )
    delta = network.byzantine_weight
    _require(
        delta is None or (isinstance(delta, int | float) and not isinstance(delta, bool) and 0.0 <= delta < 1.0),
        f"[network] byzantine_weight must be a number in [0, 1) (the total weight an honest node gives its "
        f"Byzantine in-neighbours), got {delta!r}.",
    )
