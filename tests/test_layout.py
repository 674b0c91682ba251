"""The package's import graph, read from the source with `ast`: no circles, no upward imports.

Every import counts, at module level or inside a function, under `TYPE_CHECKING` or not: a
lazy import is still a dependency. The levels are the ones docs/ARCHITECTURE.md draws.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "clearpipe"

# Lowest first. A module may import its own level or below, never above.
LEVELS: list[tuple[str, ...]] = [
    ("errors",),
    (
        "inputs",
        "tokens",
        "preprocess",
        "forward",
        "postprocess",
        "longtext",
        "loading",
        "bases",
        "pooled",
    ),  # the stages
    ("engine",),
    ("trace", "contract"),  # records the stages; the shape of a classifier the front ends drive
    (
        "classifier",
        "zeroshot",
        "entities",
        "pipeline",
        "__init__",
        "lite",
    ),  # `__init__`: the package's lazy public names
    ("onnx", "tables", "training"),
    ("bulk", "server"),
    ("cli", "__main__"),
]
LEVEL = {unit: rank for rank, units in enumerate(LEVELS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def unit(module: str) -> str:
    """The unit a module belongs to: its top-level module or subpackage."""
    return module.split(".")[0]


def resolve(name: str) -> str | None:
    """The project module an imported dotted name refers to (None: not this project's)."""
    if name == "clearpipe":
        return "__init__"
    if not name.startswith("clearpipe."):
        return None
    dotted = name.removeprefix("clearpipe.")
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]  # `from clearpipe.x import name`: a name inside x
    return dotted or "__init__"


def imports(module: str) -> set[str]:
    """Project modules that `module` imports anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = ["clearpipe", *[p for p in package.split(".") if p and p != "__init__"]]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from clearpipe.engine import packing` imports the submodule where one exists, and
            # `from clearpipe.errors import InputError` the module that defines the name.
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_unit_has_a_level():
    assert {unit(m) for m in MODULES} <= set(LEVEL), "add the new module or package to LEVELS"


def test_no_module_imports_one_above_it():
    upward = [
        f"{module} (level {LEVEL[unit(module)]}) imports {target} (level {LEVEL[unit(target)]})"
        for module, targets in GRAPH.items()
        for target in targets
        if LEVEL[unit(target)] > LEVEL[unit(module)]
    ]
    assert upward == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circles_between_modules():
    assert cycles(GRAPH) == []


def test_no_import_circles_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    assert cycles(packages) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    (tmp_path / "engine" / "packing.py").write_text("")
    (tmp_path / "classifier.py").write_text(
        "def f():\n    from clearpipe.engine import packing\n    from . import errors\n"
    )
    (tmp_path / "errors.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {module_name(p): p for p in tmp_path.rglob("*.py")})
    assert imports("classifier") == {"engine.packing", "errors"}


@pytest.mark.parametrize("package", sorted({m for m in MODULES if (PACKAGE / m.replace(".", "/")).is_dir()}))
def test_every_package_says_what_it_owns(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package.replace(".", "/") / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 12, f"{package}/__init__.py needs a docstring saying what it owns"


def test_importing_the_package_stays_lazy():
    code = "import sys, clearpipe; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_test_modules_have_unique_names():
    # pytest imports test files by basename (tests/ holds no packages): two test_x.py collide.
    names = [p.name for p in Path(__file__).parent.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
