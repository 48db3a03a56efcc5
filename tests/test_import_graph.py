"""Imports run one way: trials <- search_spaces <- study <- analysis, with no circles.

Every ``import`` of every module counts, wherever it stands: at module level, inside a
function or under ``TYPE_CHECKING``. The only edge from ``study`` up to ``analysis`` is the
CLI's rendering commands, which import it inside their functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The packages, lowest first: a package may import only those before it.
LAYERS = ("trials", "search_spaces", "study", "analysis")
#: Modules of ``study`` that may import ``analysis``, inside functions only.
RENDERING = ("study.cli", "study._commands")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    modules = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _owner(name: str) -> str | None:
    """The module of ours that importing ``name`` loads (its longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> Iterator[tuple[str, int, bool]]:
    """``(imported module, line, outside functions)`` for every import of ours in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_functions = {
        id(inner)
        for outer in ast.walk(tree)
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(outer)
    }
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            owner = _owner(name)
            if owner is not None and owner != module:
                yield owner, node.lineno, id(node) not in in_functions


def edges() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in imports_of(module)} for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_every_package_is_found() -> None:
    assert {module.split(".")[0] for module in MODULES} == set(LAYERS)
    assert len(MODULES) > 80


def test_no_import_circle() -> None:
    assert cycles(edges()) == []


def test_imports_run_one_way() -> None:
    upward = []
    for module in MODULES:
        for target, line, top in imports_of(module):
            if layer(target) <= layer(module):
                continue
            if module in RENDERING and target.split(".")[0] == "analysis" and not top:
                continue
            where = "module level" if top else "in a function"
            upward.append(f"{module}:{line} imports {target} ({where})")
    assert upward == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import study._plan\n", {"study._plan"}),
        ("from study import _plan\n", {"study._plan"}),
        ("from study._plan import plan_methods\n", {"study._plan"}),
        ("def f():\n    from analysis import load_study\n", {"analysis"}),
        ("from . import _plan\n", {"study._plan"}),
    ],
)
def test_the_parser_sees_every_kind_of_import(
    source: str, expected: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "study._probe", probe)
    assert {target for target, _, _ in imports_of("study._probe")} == expected


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
