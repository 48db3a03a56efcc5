"""A small typed registry: decorator registration, loud on duplicates and typos.

This module imports nothing heavy so that every package (including the torch-free
``study``, ``search_spaces`` and ``analysis``) can use it.
"""

from __future__ import annotations

import difflib
import fnmatch
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

    Example:
        >>> MODELS: Registry[type] = Registry("model")
        >>> @MODELS.register("tiny")
        ... class Tiny: ...
        >>> MODELS.get("tiny") is Tiny
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a second registration raises."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Returns the entry for ``name`` or raises :class:`UnknownNameError`."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, list(self._entries))
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
