"""Lazy public names: a package's ``TYPE_CHECKING`` imports load on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "lazy_package_under_test"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from trials.lazy import lazy_exports\n"
        "if TYPE_CHECKING:\n"
        f"    from {PACKAGE}._core import answer, ask as question\n"
        "__all__ = ['answer', 'question']\n"
        "__getattr__, __dir__ = lazy_exports(__name__, __file__)\n"
    )
    (root / "_core.py").write_text("answer = 42\ndef ask():\n    return answer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for module in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[module]


def test_a_name_loads_its_module_on_first_use(package: object) -> None:
    assert f"{PACKAGE}._core" not in sys.modules
    assert package.answer == 42  # type: ignore[attr-defined]
    assert f"{PACKAGE}._core" in sys.modules
    assert "answer" in vars(package)  # kept: later reads do not come back
    assert package.question() == 42  # type: ignore[attr-defined]  (imported "as")
    assert {"answer", "question"} <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error(package: object) -> None:
    with pytest.raises(AttributeError, match=f"module '{PACKAGE}' has no attribute 'ask'"):
        package.ask  # type: ignore[attr-defined]  # noqa: B018
