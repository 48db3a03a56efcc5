"""The public API: what each package's ``__all__`` publishes, and a CLI that uses nothing else.

The CLI (``study.cli``, ``study._commands`` and the modules only they import) may import
from ``trials``, ``search_spaces`` and ``analysis`` only names those packages publish: a
name in the ``__all__`` of a module or package whose dotted path has no ``_`` part (or,
for a public module without ``__all__``, a name without a leading ``_``).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_import_graph import MODULES, _owner, imports_of, probe_module
from trials.lazy import type_checking_imports

ROOT = Path(__file__).resolve().parents[1]
#: The command line's own modules; the modules only they import are found below.
CLI_ROOTS = ("study.cli", "study._commands")
OTHER_PACKAGES = ("trials", "search_spaces", "analysis")
#: Packages and modules whose ``__all__`` is the public API.
PUBLIC = (
    "trials",
    "trials.data",
    "trials.grouping",
    "trials.models",
    "trials.pruning",
    "trials.tasks",
    "trials.weighting",
    "search_spaces",
    "study",
    "study.store",
    "analysis",
)


def cli_modules() -> set[str]:
    """``CLI_ROOTS`` plus every module of ``study`` imported only by CLI modules."""
    importers: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for target, _, _ in imports_of(module):
            importers[target].add(module)
    found = set(CLI_ROOTS)
    grown = True
    while grown:
        grown = False
        for module, by in importers.items():
            if module.startswith("study.") and module not in found and by and by <= found:
                found.add(module)
                grown = True
    return found


def exported(module: str) -> set[str] | None:
    """The literal ``__all__`` of one of our modules (None when it has none)."""
    tree = ast.parse(MODULES[module].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                assert node.value is not None
                return set(ast.literal_eval(node.value))
    return None


def is_public(module: str, name: str | None) -> bool:
    """Whether ``from module import name`` (``import module`` for None) is public."""
    if any(part.startswith("_") for part in module.split(".")):
        return False
    if name is None:
        return True
    if f"{module}.{name}" in MODULES:  # a submodule
        return not name.startswith("_")
    names = exported(module)
    return name in names if names is not None else not name.startswith("_")


def private_imports(module: str) -> Iterator[str]:
    """``line: statement`` of every import of a non-public name of another package."""
    path = MODULES[module]
    own = module.split(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            pairs = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for target, name in pairs:
            package = target.split(".")[0]
            if package == own or package not in OTHER_PACKAGES:
                continue
            if not is_public(target, name):
                shown = f"from {target} import {name}" if name else f"import {target}"
                yield f"{module}:{node.lineno}: {shown}"


def test_the_cli_modules_are_found() -> None:
    found = cli_modules()
    assert {"study.cli", "study._commands", "study._trial_command", "study._check"} <= found
    assert "study._runner" not in found and "study._api" not in found  # used by others too


def test_the_cli_imports_no_private_name_of_another_package() -> None:
    offenders = [line for module in sorted(cli_modules()) for line in private_imports(module)]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from trials._validate import validate_data\n", ["from trials._validate"]),
        ("def f():\n    from analysis._dashboard import serve\n", ["from analysis._dashboard"]),
        ("from trials import _hidden\n", ["from trials import _hidden"]),
        ("from trials import not_published\n", ["from trials import not_published"]),
        ("from trials.data import CACHE_ENV\n", []),
        ("from trials.registry import unknown_name_message\n", []),
        ("from trials import pruning\n", []),
        ("import trials._run\n", ["import trials._run"]),
        ("from study._config import load_config\n", []),  # the CLI's own package
    ],
)
def test_the_check_sees_private_imports(
    source: str, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = list(private_imports(probe_module(source, tmp_path, monkeypatch)))
    assert len(found) == len(expected)
    for line, part in zip(found, expected, strict=True):
        assert part in line


@pytest.mark.parametrize("module", PUBLIC)
def test_every_published_name_exists(module: str) -> None:
    names = exported(module)
    assert names, f"{module} has no __all__"
    package = importlib.import_module(module)
    missing = [name for name in sorted(names) if not hasattr(package, name)]
    assert missing == []
    assert all(_owner(f"{module}.{name}") for name in names)


def test_the_lazy_packages_list_what_they_load() -> None:
    """``trials`` and ``analysis`` load their names on use: the imports under their
    ``TYPE_CHECKING`` are their ``__all__``, and ``dir()`` shows every public name."""
    for module in ("trials", "analysis"):
        package = importlib.import_module(module)
        assert set(type_checking_imports(MODULES[module])) == set(package.__all__)
        assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="module 'analysis' has no attribute 'nothing'"):
        importlib.import_module("analysis").nothing  # noqa: B018


def test_importing_analysis_loads_no_plotting_library(repo_root: Path) -> None:
    code = (
        "import sys, analysis\n"
        "from analysis import load_study, method_summary, compare_seeds\n"
        "loaded = [m for m in ('plotly', 'dash', 'torch') if m in sys.modules]\n"
        "assert loaded == [], loaded\n"
        "assert analysis.FIGURES.names(), 'reading FIGURES registers the figures'\n"
        "assert 'plotly' in sys.modules and 'dash' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
