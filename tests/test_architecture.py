"""The layers of the house, read from the source with ``ast`` (every import, lazy ones too).

From the bottom up (docs/architecture.md draws the same picture):

1. ``topologies`` and ``attacks``: leaves, they import nothing of ``decentral``
   (``topologies`` not even ``attacks``);
2. the components: ``decentral.semantics``, ``decentral.summaries``, ``decentral._hints``, ``decentral.aggregators``,
   ``decentral.network``, ``decentral.data``, ``decentral.models``, ``decentral.scenario``;
3. the engine (``decentral.engine``) and, beside it and knowing nothing of it, the results
   store (``decentral.results``);
4. the runner (``decentral.runner``) and the placement search (``decentral.place_score``,
   ``decentral.place_search``), above both;
5. the experiment workflow: studies, figures, plots, export, the CLI, the demo, the
   benchmarks and the contract suites.

A module may import its own layer and those below, never one above, and no import circle
exists between modules. Nothing imports the ``experiments/`` folder.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("decentral", "attacks", "topologies")

#: Layer of each module prefix (the longest matching prefix wins).
LAYERS = {
    "topologies": 1,
    "attacks": 1,
    "decentral": 5,  # the package's __init__ only points lazily at the entry points
    "decentral.semantics": 2,
    "decentral._hints": 2,
    "decentral.summaries": 2,
    "decentral.aggregators": 2,
    "decentral.network": 2,
    "decentral.data": 2,
    "decentral.models": 2,
    "decentral.scenario": 2,
    "decentral.engine": 3,
    "decentral.results": 3,
    "decentral.runner": 4,
    "decentral.place_score": 4,
    "decentral.place_search": 4,
    "decentral.study": 5,
    "decentral.figures": 5,
    "decentral.figure_text": 5,
    "decentral.plots": 5,
    "decentral.plot_style": 5,
    "decentral.plot_checks": 5,
    "decentral.export": 5,
    "decentral.cli": 5,
    "decentral.catalogue": 5,
    "decentral.demo": 5,
    "decentral.bench": 5,
    "decentral.testing": 5,
}

#: Files allowed past the size limit: one cohesive table each.
LONG_TABLES = {"attacks/_attacks.py": "the catalogue of attacks, one class per published attack"}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every name ``path`` imports, absolute (``from x import y`` gives x.y, which
    :func:`_ours` reads as module x.y when there is one, else as x)."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.update(f"{target}.{alias.name}" for alias in node.names)  # x.y, or x when y is a name
    return found


MODULES = {_module_name(path): path for path in _source_files()}


def _ours(name: str) -> str | None:
    """The module of ours that an imported name refers to (the longest matching one)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


GRAPH = {module: {ours for name in _imports(path) if (ours := _ours(name)) and ours != module} for module, path in MODULES.items()}


def _layer(module: str) -> int:
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not prefixes:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in tests/test_architecture.py and docs/architecture.md")
    return LAYERS[max(prefixes, key=len)]


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_layer(module):
    upward = sorted(target for target in GRAPH[module] if _layer(target) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward} from a layer above"


def test_the_leaves_import_nothing_of_decentral():
    for module, targets in GRAPH.items():
        if module.split(".")[0] in ("attacks", "topologies"):
            assert not [t for t in targets if t.startswith("decentral")], module
        if module.split(".")[0] == "topologies":
            assert not [t for t in targets if t.startswith("attacks")], module


def test_the_results_store_imports_nothing_of_the_engine_or_the_runner():
    assert not [t for t in GRAPH["decentral.results"] if t.startswith(("decentral.engine", "decentral.runner"))]
    assert not [t for t in _reachable("decentral.results") if t.startswith(("decentral.engine", "decentral.runner"))]


def _reachable(start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in GRAPH[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_no_import_circle_between_modules():
    """A package's __init__ re-exporting its own submodules is not a circle; any other
    chain of imports that leads from a module back to itself is."""
    edges = {
        module: {t for t in targets if not (MODULES[module].name == "__init__.py" and t.startswith(module + "."))}
        for module, targets in GRAPH.items()
    }
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(edges[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(MODULES):
        visit(module)


def test_nothing_imports_the_experiments_folder():
    for path in _source_files():
        assert not [name for name in _imports(path) if name.split(".")[0] == "experiments"], path


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in _source_files()))
def test_each_file_is_under_the_size_limit_unless_a_table(path):
    lines = len((ROOT / path).read_text().splitlines())
    assert lines <= MAX_LINES or path in LONG_TABLES, f"{path} has {lines} lines (limit {MAX_LINES}): split it by idea"


def test_no_file_cites_notes_outside_the_repository():
    tests = [path for path in sorted((ROOT / "tests").glob("*.py")) if path.name != "test_architecture.py"]
    for path in [*_source_files(), *tests, ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text and "STYLE.md" not in text, path
