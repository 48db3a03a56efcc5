"""The Ray driver's study modules load neither analysis, plotly nor pandas of their own."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PARETUNE = ("study", "search_spaces", "trials", "analysis")
DRIVER_MODULES = (
    "study._runner",
    "study._scheduler",
    "study._progress",
    "study._router",
    "study._recorder",
    "study._pareto",
    "study._levels",
)
#: The CLI command modules that render analysis output and the public API's study handle,
#: which reads results through analysis; they import it inside functions.
RENDERING_COMMANDS = ("_api.py", "cli.py", "_commands.py")

# Runs in a fresh interpreter: imports the modules named on the command line and prints
# which heavy packages ended up loaded and which modules imported them (every ``import``
# statement goes through ``builtins.__import__``, even for a module loaded already).
PROBE = """
import builtins, importlib, json, sys

heavy = ("pandas", "plotly", "analysis")
importers = {}
original = builtins.__import__

def watch(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split(".")[0]
    if level == 0 and top in heavy:
        importers.setdefault(top, set()).add((globals or {}).get("__name__"))
    return original(name, globals, locals, fromlist, level)

builtins.__import__ = watch
for module in sys.argv[1:]:
    importlib.import_module(module)
loaded = [name for name in heavy if name in sys.modules]
by = {name: sorted(map(str, modules)) for name, modules in importers.items()}
print(json.dumps({"loaded": loaded, "importers": by}))
"""


def _probe(repo_root: Path, *modules: str) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_import_study_loads_neither_pandas_nor_plotly(repo_root: Path) -> None:
    found = _probe(repo_root, "study")
    assert found == {"loaded": [], "importers": {}}


def test_driver_modules_load_no_analysis_plotly_or_pandas_of_their_own(repo_root: Path) -> None:
    found = _probe(repo_root, *DRIVER_MODULES)
    assert "plotly" not in found["loaded"] and "analysis" not in found["loaded"]
    importers = found["importers"]
    assert isinstance(importers, dict)
    assert "plotly" not in importers and "analysis" not in importers
    # Ray Tune imports pandas itself (ray/tune/__init__.py checks its requirements); no
    # module of ours may.
    ours = [name for name in importers.get("pandas", []) if name.split(".")[0] in PARETUNE]
    assert ours == []


def _analysis_imports(path: Path) -> list[tuple[int, bool]]:
    """``(line, at module level)`` of every import of ``analysis`` in a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    lazy = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, functions)
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name.split(".")[0] == "analysis" for name in names):
            found.append((node.lineno, id(node) not in lazy))
    return found


def test_only_the_rendering_modules_import_analysis_and_only_lazily(repo_root: Path) -> None:
    study = repo_root / "study"
    offenders = []
    lazy_in = set()
    for path in sorted(study.rglob("*.py")):
        for line, at_top in _analysis_imports(path):
            where = f"{path.relative_to(repo_root)}:{line}"
            if path.parent != study or path.name not in RENDERING_COMMANDS or at_top:
                offenders.append(where)
            else:
                lazy_in.add(path.name)
    assert offenders == []
    assert lazy_in == set(RENDERING_COMMANDS)  # the check sees the imports that exist


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import analysis\n", [(1, True)]),
        ("if True:\n    from analysis._figures import x\n", [(2, True)]),
        ("def f():\n    from analysis import y\n", [(2, False)]),
        ("class A:\n    def f(self):\n        if x:\n            import analysis\n", [(4, False)]),
        ("try:\n    import analysis.x\nexcept ImportError:\n    pass\n", [(2, True)]),
        ("import analytics\nfrom study import analysis\n", []),
    ],
)
def test_the_import_scan_sees_every_level(
    tmp_path: Path, source: str, expected: list[tuple[int, bool]]
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source, encoding="utf-8")
    assert _analysis_imports(path) == expected


def test_the_cli_starts_without_the_config_models_the_store_or_pandas(repo_root: Path) -> None:
    """``paretune status`` and the other read commands load what they need when they run:
    starting the CLI loads none of it (a study name is checked without the config models)."""
    probe = (
        "import sys, study, study.cli\n"
        "from study._api import check_study_name\n"
        "check_study_name('a-study')\n"
        "heavy = ('study._config', 'search_spaces', 'sqlalchemy', 'pandas', 'numpy')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
