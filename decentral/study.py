"""Studies (``decentral reproduce STUDY``): a folder of scenario files and the figures drawn from them.

A study folder holds ``study.toml``::

    title = "Where do attackers hurt most?"
    scenarios = ["small_world.toml", "scale_free.toml"]   # relative to the folder

    [quick]                              # what --quick changes (at most ~3 minutes on 2 cores)
    set = { "run.rounds" = 20 }          # scenario keys set on every point
    sweep = { "placement.strategy" = ["random", "max_degree"] }   # axes replaced
    scenarios = ["small_world.toml"]     # optional: only these of the files (default: all)

    [[figures]]
    name = "heatmap"                     # file stem under the output folder
    kind = "heatmap"                     # see decentral.figures.KINDS
    rows = "defense.aggregator"
    columns = "placement.strategy"
    where = { "network.topology" = "watts_strogatz" }
    title = "..."
    # also: group, x, metric, stat, mark, log_x, log_y, vmin, vmax, chance, worst_over: the options of ``decentral plot``

The full study writes its database to ``<folder>/results.sqlite`` and its figures to
``figures/<study name>/`` of the repository; ``--quick`` uses ``<folder>/quick/`` for both,
and ``--set PATH=VALUE`` (e.g. MNIST instead of the digits) a ``variant-<hash>/`` folder,
so neither ever touches the full results or the committed figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from pathlib import Path

from . import catalogue
from .scenario import load_scenario

FIGURE_KEYS = ("name", "kind", "where", "group", "rows", "columns", "x", "metric", "stat", "mark", "log_x", "log_y", "title",
               "vmin", "vmax", "chance", "worst_over")
STUDY_KEYS = ("title", "scenarios", "quick", "figures")


@dataclasses.dataclass(frozen=True)
class Study:
    """A parsed ``study.toml``."""

    name: str
    folder: Path
    title: str
    scenarios: tuple[Path, ...]
    quick_set: dict
    quick_sweep: dict
    figures: tuple[dict, ...]
    quick_scenarios: tuple[Path, ...] = ()  # empty: every scenario file

    def points(self, *, quick: bool = False, changes: dict | None = None) -> list[tuple[dict, object]]:
        """Every sweep point of every scenario file, with the quick changes when asked and
        ``changes`` (``{"data.dataset": "mnist", ...}``, as ``--set``) on every point."""
        out = []
        files = (self.quick_scenarios or self.scenarios) if quick else self.scenarios
        for path in files:
            scenario = load_scenario(path)
            if quick:
                sweep = {**scenario.sweep, **{axis: values for axis, values in self.quick_sweep.items() if axis in scenario.sweep}}
                scenario = dataclasses.replace(scenario.replace(**self.quick_set), sweep=sweep)
            if changes:
                for path_set in changes:
                    for axis in scenario.sweep:
                        if _overlaps(path_set, axis):
                            raise ValueError(
                                f"--set {path_set}: {path.name} sweeps {axis!r}, so one value for every point would be "
                                "overwritten by the sweep; copy the study and edit its sweep instead."
                            )
                scenario = scenario.replace(**changes)
            out += scenario.points()
        return out

    def home(self, *, quick: bool = False, changes: dict | None = None) -> Path:
        """The folder of a run's database: the study folder; ``quick/`` in it for --quick;
        ``variant-<hash>/`` for runs with ``--set`` changes (never mixed with the study's own)."""
        folder = self.folder / "quick" if quick else self.folder
        if changes:
            digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:8]
            folder = folder / f"variant-{digest}"
        return folder

    def database(self, *, quick: bool = False, changes: dict | None = None) -> Path:
        return self.home(quick=quick, changes=changes) / "results.sqlite"

    def output(self, *, quick: bool = False, changes: dict | None = None) -> Path:
        """Where figures go: ``figures/<name>`` beside ``experiments/`` for the full study
        in an ``experiments`` folder, else ``figures/`` in :meth:`home`."""
        if not quick and not changes and self.folder.parent.name == "experiments":
            return self.folder.parent.parent / "figures" / self.name
        return self.home(quick=quick, changes=changes) / "figures"


def _overlaps(first: str, second: str) -> bool:
    """Whether two config paths touch the same key (one is the other or contains it)."""
    return first == second or first.startswith(second + ".") or second.startswith(first + ".")


#: Where ``decentral reproduce NAME`` looks for study NAME unless told (``--studies``): the
#: ``experiments`` folder of the current directory, i.e. of a checkout run from its root.
DEFAULT_STUDIES = Path("experiments")


def find(name_or_path, studies=DEFAULT_STUDIES) -> Path:
    """A study folder: a path to one, or the name of one under ``studies``."""
    studies = Path(studies)
    for candidate in (Path(name_or_path), studies / str(name_or_path)):
        if (candidate / "study.toml").is_file():
            return candidate.resolve()
    available = sorted(p.parent.name for p in studies.glob("*/study.toml"))
    raise ValueError(
        f"no study {str(name_or_path)!r} (a folder with a study.toml) in {studies}; "
        f"available: {', '.join(available) or 'none'}. Give a study folder, or --studies DIR."
    )


def load(name_or_path, studies=DEFAULT_STUDIES) -> Study:
    """Parse and check a study folder's ``study.toml`` (scenario files are checked too);
    a name is looked up under ``studies`` (see :func:`find`)."""
    folder = find(name_or_path, studies)
    where = folder / "study.toml"
    try:
        with open(where, "rb") as handle:
            table = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{where}: {error}") from None
    _known(where, "", table, STUDY_KEYS)
    scenarios = tuple(folder / name for name in table.get("scenarios", ()))
    if not scenarios:
        raise ValueError(f"{where}: 'scenarios' lists no scenario file.")
    for path in scenarios:
        if not path.is_file():
            raise ValueError(f"{where}: scenario file {path.name!r} is not in {folder}.")
    quick = table.get("quick", {})
    _known(where, "[quick] ", quick, ("set", "sweep", "scenarios"))
    quick_scenarios = tuple(folder / name for name in quick.get("scenarios", ()))
    for path in quick_scenarios:
        if path not in scenarios:
            raise ValueError(f"{where}: [quick] scenarios lists {path.name!r}, which is not in 'scenarios' "
                             f"({', '.join(p.name for p in scenarios)}); --quick runs a subset of the study's files.")
    specs = tuple(table.get("figures", ()))
    for spec in specs:
        _known(where, "[[figures]] ", spec, FIGURE_KEYS)
        if "name" not in spec or "kind" not in spec:
            raise ValueError(f"{where}: every [[figures]] entry needs a name and a kind; got {spec}.")
        if spec["kind"] not in catalogue.PLOT_KINDS:
            raise ValueError(f"{where}: figure {spec['name']!r} has unknown kind {spec['kind']!r}; available: {', '.join(catalogue.PLOT_KINDS)}.")
        for key in ("log_x", "log_y"):
            if not isinstance(spec.get(key, False), bool):
                raise ValueError(f"{where}: figure {spec['name']!r}: {key} must be true or false, got {spec[key]!r}.")
        for key in ("vmin", "vmax"):
            if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], int | float)):
                raise ValueError(f"{where}: figure {spec['name']!r}: {key} must be a number, got {spec[key]!r}.")
        if "worst_over" in spec and (spec["kind"] != "heatmap" or not isinstance(spec["worst_over"], str)):
            raise ValueError(f"{where}: figure {spec['name']!r}: worst_over is a heatmap option naming a config path "
                             f"(e.g. \"attack\"), got {spec['worst_over']!r} for a {spec['kind']} figure.")
        chance = spec.get("chance", "auto")
        if chance not in ("auto", "none") and (isinstance(chance, bool) or not isinstance(chance, int | float) or not 0 < chance < 1):
            raise ValueError(f"{where}: figure {spec['name']!r}: chance must be \"auto\", \"none\" or a number in (0, 1), "
                             f"got {chance!r}.")
    study = Study(folder.name, folder, table.get("title", folder.name), scenarios, quick.get("set", {}),
                  quick.get("sweep", {}), specs, quick_scenarios)
    study.points(quick=True)  # the quick changes name real keys
    return study


def _known(where, prefix, table, keys) -> None:
    for key in table:
        if key not in keys:
            raise ValueError(f"{where}: {prefix}unknown key {key!r}; valid: {', '.join(keys)}.")


def draw(study: Study, *, quick: bool = False, changes: dict | None = None, out: Path | None = None,
         formats=("png", "svg")) -> tuple[list[Path], list[str]]:
    """Every figure of the study from its database: ``(files written, figures skipped)``.

    Only the study's own points are drawn, in the order of its sweep (a database may hold
    runs of points since removed from the study, and parallel runs finish in any order).
    With ``quick``, a figure whose selection the quick sweep does not cover is skipped
    (named in the second list); in a full study it is an error."""
    from . import figures
    from . import results as store

    out = Path(out) if out is not None else study.output(quick=quick, changes=changes)
    database = study.database(quick=quick, changes=changes)
    ids = [store.run_id_of(scenario) for _, scenario in study.points(quick=quick, changes=changes)]
    written, skipped = [], []
    for spec in study.figures:
        options = {key: spec[key] for key in FIGURE_KEYS[2:] if key in spec}
        try:
            written += figures.make(spec["kind"], database, out / spec["name"], formats=formats, ids=ids, **options)
        except figures.NoRuns:
            if not quick:
                raise
            skipped.append(spec["name"])
    return written, skipped
