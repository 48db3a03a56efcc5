"""A small typed registry: decorator registration, loud on duplicates and typos.

This module imports nothing heavy so that every package (including the torch-free
``study``, ``search_spaces`` and ``analysis``) can use it.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from trials.errors import ParetuneError

T = TypeVar("T")


class UnknownNameError(ParetuneError, KeyError, ValueError):
    """Raised when a name is not registered; the message lists the valid choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    """``unknown method 'adapmt'; choose one of: a, b (did you mean 'adapmtl'?)``."""
    message = f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


class Registry(Generic[T]):
    """Maps names to objects (classes or factories) of one kind.

    With ``plugins`` (a package name), the first lookup (``get``, ``names``, ``in``,
    iteration, ``len``) imports every module of that package, in name order, so a module
    there that registers an entry needs no import anywhere else.

    Example:
        >>> MODELS: Registry[type] = Registry("model")
        >>> @MODELS.register("tiny")
        ... class Tiny: ...
        >>> MODELS.get("tiny") is Tiny
        True
    """

    def __init__(self, kind: str, plugins: str | None = None) -> None:
        self.kind = kind
        self.plugins = plugins
        self._entries: dict[str, T] = {}
        self._loaded = plugins is None

    def _load(self) -> None:
        """Imports every module of the ``plugins`` package once (they register themselves)."""
        if self._loaded:
            return
        self._loaded = True  # a module may look names up while it is imported
        assert self.plugins is not None
        try:
            package = importlib.import_module(self.plugins)
            for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                importlib.import_module(f"{self.plugins}.{module.name}")
        except BaseException:
            self._loaded = False
            raise

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a second registration raises."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def unregister(self, name: str) -> T:
        """Removes and returns the entry for ``name`` (for throwaway test plugins).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        entry = self.get(name)
        del self._entries[name]
        return entry

    def get(self, name: str) -> T:
        """Returns the entry for ``name`` or raises :class:`UnknownNameError`."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, list(self._entries))
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
