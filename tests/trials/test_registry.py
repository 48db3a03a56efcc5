"""Registries: plugin discovery on first lookup, unregistering, and the real plugin packages."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trials.data import DATASETS
from trials.grouping import ARCHITECTURE_SEARCHES
from trials.models import BACKBONES, HEADS
from trials.pruning import PRUNERS
from trials.registry import Registry, UnknownNameError
from trials.tasks import NAMED_TASK_STYLES, TASKS
from trials.weighting import WEIGHTINGS

PACKAGE = "registry_plugins_under_test"


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package whose ``__init__`` holds a registry and imports none of its modules."""
    root = tmp_path / PACKAGE
    (root / "_nested").mkdir(parents=True)
    (root / "__init__.py").write_text(
        "from trials.registry import Registry\n"
        "WIDGETS = Registry('widget', plugins=__name__)\n"
        "ORDER = []\n"
    )
    for name, widgets in (("_b", ("b",)), ("_a", ("a", "c"))):
        body = f"from {PACKAGE} import ORDER, WIDGETS\nORDER.append({name!r})\n"
        body += "".join(f"WIDGETS.register({w!r})({w!r})\n" for w in widgets)
        (root / f"{name}.py").write_text(body)
    (root / "_nested" / "__init__.py").write_text(
        f"from {PACKAGE} import ORDER, WIDGETS\n"
        "ORDER.append('_nested')\n"
        "SEEN = WIDGETS.names()  # a lookup while discovery runs sees what is there\n"
        "WIDGETS.register('d')('d')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for module in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[module]


def test_first_lookup_imports_every_module_of_the_package(plugin_package: Path) -> None:
    package = importlib.import_module(PACKAGE)
    assert package.ORDER == [] and f"{PACKAGE}._a" not in sys.modules
    assert package.WIDGETS.get("c") == "c"
    assert package.ORDER == ["_a", "_b", "_nested"]  # name order, subpackages included
    assert package.WIDGETS.names() == ["a", "b", "c", "d"]
    assert sys.modules[f"{PACKAGE}._nested"].SEEN == ["a", "b", "c"]
    package.WIDGETS.names()
    assert package.ORDER == ["_a", "_b", "_nested"]  # once


LOOKUPS: dict[str, tuple[Any, Any]] = {
    "get": (lambda widgets: widgets.get("d"), "d"),
    "names": (lambda widgets: widgets.names(), ["a", "b", "c", "d"]),
    "in": (lambda widgets: "d" in widgets, True),
    "iter": (lambda widgets: list(widgets), ["a", "b", "c", "d"]),
    "len": (lambda widgets: len(widgets), 4),
}


@pytest.mark.parametrize("lookup", sorted(LOOKUPS))
def test_every_kind_of_lookup_discovers(plugin_package: Path, lookup: str) -> None:
    look, expected = LOOKUPS[lookup]
    assert look(importlib.import_module(PACKAGE).WIDGETS) == expected


def test_a_module_that_fails_to_import_fails_the_lookup_and_the_next_retries(
    plugin_package: Path,
) -> None:
    broken = plugin_package / "_zz.py"
    broken.write_text("raise RuntimeError('plugin _zz is broken')\n")
    widgets = importlib.import_module(PACKAGE).WIDGETS
    with pytest.raises(RuntimeError, match="plugin _zz is broken"):
        widgets.names()
    broken.unlink()
    importlib.invalidate_caches()
    assert "d" in widgets


def test_unregister_removes_one_entry_and_knows_no_unknown_name() -> None:
    widgets: Registry[int] = Registry("widget")
    widgets.register("one")(1)
    widgets.register("two")(2)
    assert widgets.unregister("one") == 1
    assert widgets.names() == ["two"]
    with pytest.raises(UnknownNameError, match="unknown widget 'one'; choose one of: two"):
        widgets.unregister("one")
    widgets.register("one")(11)  # the name is free again
    assert widgets.get("one") == 11


REGISTRIES = {
    "trials.pruning": [PRUNERS],
    "trials.weighting": [WEIGHTINGS],
    "trials.models": [BACKBONES, HEADS],
    "trials.data": [DATASETS],
    "trials.tasks": [TASKS, NAMED_TASK_STYLES],
    "trials.grouping": [ARCHITECTURE_SEARCHES],
}


@pytest.mark.parametrize("package", sorted(REGISTRIES))
def test_plugin_registries_cover_their_package(package: str) -> None:
    """Every module of the package is imported after a lookup, and every registered
    class lives in one of them."""
    for registry in REGISTRIES[package]:
        assert registry.plugins == package
        assert registry.names()
        modules = {
            f"{package}.{info.name}"
            for info in pkgutil.iter_modules(importlib.import_module(package).__path__)
        }
        assert modules <= set(sys.modules)
        for name in registry.names():
            entry = registry.get(name)
            if isinstance(entry, type):
                assert entry.__module__ in modules, (name, entry.__module__)


def test_every_pruner_module_is_discovered(repo_root: Path) -> None:
    files = {path.stem for path in (repo_root / "trials" / "pruning").glob("*.py")}
    files.discard("__init__")
    assert len(files) >= 10
    assert {f"trials.pruning.{stem}" for stem in files} <= set(sys.modules)
    owners = {PRUNERS.get(name).__module__.rsplit(".", 1)[1] for name in PRUNERS.names()}
    assert owners <= files


def test_backbones_load_on_first_lookup_without_an_import(repo_root: Path) -> None:
    """``trials.models`` imports none of its backbone modules; the lookup finds them."""
    code = (
        "import sys\n"
        "from trials.models import BACKBONES\n"
        "assert 'trials.models._resnet' not in sys.modules\n"
        "assert 'resnet-tiny' in BACKBONES\n"
        "assert 'trials.models._resnet' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
