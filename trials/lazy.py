"""Packages whose public names load their modules on first use (PEP 562).

A package lists its public names once, as imports under ``if TYPE_CHECKING:`` (which type
checkers and the documentation read) and in ``__all__``; :func:`lazy_exports` turns those
imports into the package's ``__getattr__``, so importing the package imports none of its
modules. This module imports nothing heavy: every package can use it.

Example (a package's ``__init__.py``)::

    from typing import TYPE_CHECKING

    from trials.lazy import lazy_exports

    if TYPE_CHECKING:
        from my_package._core import run

    __all__ = ["run"]
    __getattr__, __dir__ = lazy_exports(__name__, __file__)
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def type_checking_imports(path: str | Path) -> dict[str, tuple[str, str]]:
    """``{public name: (module, name in that module)}`` of the ``from ... import ...``
    statements under ``if TYPE_CHECKING:`` at the top level of the file ``path``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    table: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        table[alias.asname or alias.name] = (statement.module, alias.name)
    return table


def lazy_exports(
    package: str, path: str | Path
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of a package whose public names are its
    ``TYPE_CHECKING`` imports (see the module docstring).

    ``__getattr__(name)`` imports the name's module, keeps the value in the package (later
    reads do not come back) and returns it; an unknown name raises ``AttributeError``.

    Args:
        package: The package's ``__name__``.
        path: Its ``__file__``, whose ``TYPE_CHECKING`` imports are read on first use.
    """
    table: dict[str, tuple[str, str]] = {}

    def names() -> dict[str, tuple[str, str]]:
        if not table:
            table.update(type_checking_imports(path))
        return table

    def __getattr__(name: str) -> Any:
        if name not in names():
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, original = table[name]
        value = getattr(importlib.import_module(module), original)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names()})

    return __getattr__, __dir__
