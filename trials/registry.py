"""A small typed registry: decorator registration, loud on duplicates and typos.

Entries come from three places, all looked at on the first lookup:

- the modules of the registry's own package (``plugins``), which register themselves
  with the :meth:`Registry.register` decorator;
- installed plugin packages, through an entry point group (``group``, e.g.
  ``paretune.pruners``); see :meth:`Registry.load_entry_points` for the contract;
- ``module:attribute`` references (``my_pkg.pruners:MyPruner``), imported when such a
  name is looked up and registered under that name.

This module imports nothing heavy so that every package (including the torch-free
``study``, ``search_spaces`` and ``analysis``) can use it.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata
import pkgutil
import re
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from trials.errors import ParetuneError

T = TypeVar("T")

#: Entry point groups of paretune's plugin registries, by registry.
ENTRY_POINT_GROUPS = {
    "pruners": "paretune.pruners",
    "weightings": "paretune.weightings",
    "datasets": "paretune.datasets",
    "backbones": "paretune.backbones",
    "heads": "paretune.heads",
    "architecture_searches": "paretune.architecture_searches",
    "search_spaces": "paretune.search_spaces",
    "figures": "paretune.figures",
}

_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class UnknownNameError(ParetuneError, KeyError, ValueError):
    """Raised when a name is not registered; the message lists the valid choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(ParetuneError, ValueError):
    """A plugin cannot be used: its entry point or ``module:attribute`` reference does not
    import, or names something of another kind; the message names the plugin."""


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    """``unknown method 'adapmt'; choose one of: a, b (did you mean 'adapmtl'?)``."""
    message = f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


def is_reference(name: str) -> bool:
    """Whether ``name`` is a ``module:attribute`` reference (``my_pkg.pruners:MyPruner``)."""
    return _REFERENCE.fullmatch(name) is not None


def import_reference(reference: str) -> Any:
    """The object a ``module:attribute`` reference names (the module is imported).

    Raises:
        PluginError: the module does not import or has no such attribute.
    """
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise PluginError(
            f"{reference!r}: cannot import module {module_name!r} ({error})"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise PluginError(
                f"{reference!r}: module {module_name!r} has no attribute {attribute!r}"
            )
        target = getattr(target, part)
    return target


def subclass_of(base: type, what: str) -> Callable[[str, object], Any]:
    """An ``adapt`` hook for :class:`Registry` accepting only subclasses of ``base``.

    Args:
        base: The contract's base class.
        what: How an error names the kind (``"weight pruner"``).
    """

    def adapt(name: str, obj: object) -> Any:
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
            return obj
        raise PluginError(
            f"{what} {name!r}: {_describe(obj)} is not a subclass of {base.__module__}."
            f"{base.__qualname__}"
        )

    return adapt


def callable_entry(what: str) -> Callable[[str, object], Any]:
    """An ``adapt`` hook for registries of factories: any callable but a module."""

    def adapt(name: str, obj: object) -> Any:
        if callable(obj) and not isinstance(obj, types.ModuleType):
            return obj
        raise PluginError(f"{what} {name!r}: {_describe(obj)} is not callable (a factory)")

    return adapt


def _describe(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"{type(obj).__name__} object {obj!r}"[:120]


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    if dist is None:
        return "an unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


class Registry(Generic[T]):
    """Maps names to objects (classes or factories) of one kind.

    With ``plugins`` (a package name), the first lookup (``get``, ``names``, ``in``,
    iteration, ``len``) imports every module of that package, in name order, so a module
    there that registers an entry needs no import anywhere else. With ``group`` (an entry
    point group), that first lookup then loads the group's entry points
    (:meth:`load_entry_points`), and a ``module:attribute`` name is imported when looked
    up and registered under that name. ``adapt(name, obj)`` checks (and may convert) what
    an entry point or a reference names, raising :class:`PluginError` when it is of
    another kind.

    Example:
        >>> MODELS: Registry[type] = Registry("model")
        >>> @MODELS.register("tiny")
        ... class Tiny: ...
        >>> MODELS.get("tiny") is Tiny
        True
    """

    def __init__(
        self,
        kind: str,
        plugins: str | None = None,
        *,
        group: str | None = None,
        adapt: Callable[[str, object], T] | None = None,
    ) -> None:
        self.kind = kind
        self.plugins = plugins
        self.group = group
        self._adapt = adapt
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._entry_points_done: set[tuple[str, str]] = set()
        self._empty_modules: set[tuple[str, str]] = set()
        self._loaded = plugins is None and group is None

    # -- discovery ------------------------------------------------------------------------
    def _load(self) -> None:
        """Imports the ``plugins`` package's modules, then the group's entry points, once."""
        if self._loaded:
            return
        self._loaded = True  # a module may look names up while it is imported
        try:
            self._import_plugins()
            self.load_entry_points()
        except BaseException:
            self._loaded = False
            raise

    def _import_plugins(self) -> None:
        """Imports every module of the ``plugins`` package (they register themselves)."""
        if self.plugins is None:
            return
        package = importlib.import_module(self.plugins)
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            importlib.import_module(f"{self.plugins}.{module.name}")

    def load_entry_points(self) -> list[str]:
        """Registers the installed plugins of the registry's entry point ``group``.

        The contract: an entry point names an object (``name = my_pkg.pruners:MyPruner``)
        or a module (``name = my_pkg.figures``). Its module is imported; an object is
        then registered under the entry point's name (unless importing its module
        already registered that very object there), a module must register its entries
        itself with :meth:`register` while it is imported (a module imported before needs
        nothing more). Called by the first lookup; entry points already loaded are not
        loaded again.

        Returns:
            The names registered.

        Raises:
            PluginError: an entry point does not import, names something of another kind,
                takes a name that is already registered, or is a module that registered
                nothing. The message names the entry point and its distribution.
        """
        if self.group is None:
            return []
        added: list[str] = []
        for entry_point in sorted(
            importlib.metadata.entry_points(group=self.group), key=lambda e: e.name
        ):
            key = (entry_point.name, entry_point.value)
            if key in self._entry_points_done:
                continue
            added += self._load_entry_point(entry_point)
            self._entry_points_done.add(key)
        return added

    def _load_entry_point(self, entry_point: importlib.metadata.EntryPoint) -> list[str]:
        name, source = entry_point.name, _distribution(entry_point)
        where = f"plugin {source}: entry point {name!r} = {entry_point.value!r} in {self.group}"
        before = dict(self._entries)
        key = (entry_point.name, entry_point.value)
        imported = entry_point.module in sys.modules and key not in self._empty_modules
        try:
            obj = entry_point.load()
        except Exception as error:
            raise PluginError(f"{where} failed to load: {type(error).__name__}: {error}") from None
        new = [n for n in self._entries if n not in before]
        for added in new:
            self._origins[added] = source
        if isinstance(obj, types.ModuleType):
            if not new and not imported:
                self._empty_modules.add(key)
                raise PluginError(
                    f"{where}: module {obj.__name__} registered no {self.kind} while imported"
                )
            return new
        if name in new or (name in before and before[name] is obj):  # its module registered it
            self._origins[name] = source
            return new
        if name in before:
            raise PluginError(
                f"{where}: {self.kind} {name!r} is already registered "
                f"(by {self.origin(name) or 'paretune'})"
            )
        self._add(name, self._adapted(name, obj, where), source)
        return [*new, name]

    def _adapted(self, name: str, obj: object, where: str | None = None) -> T:
        if self._adapt is None:
            return obj  # type: ignore[return-value]
        try:
            return self._adapt(name, obj)
        except PluginError as error:
            raise PluginError(f"{where}: {error}" if where else str(error)) from None

    def _resolve(self, name: str) -> None:
        """Registers the object a ``module:attribute`` name refers to under that name."""
        if self.group is None or name in self._entries or not is_reference(name):
            return
        obj = import_reference(name)
        if name not in self._entries:  # importing the module may have registered it
            self._add(name, self._adapted(name, obj), name)

    def _add(self, name: str, obj: T, origin: str | None) -> None:
        self.register(name)(obj)
        if origin is not None:
            self._origins[name] = origin

    # -- registering ----------------------------------------------------------------------
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
        self._origins.pop(name, None)
        return entry

    # -- looking up -----------------------------------------------------------------------
    def get(self, name: str) -> T:
        """Returns the entry for ``name`` or raises :class:`UnknownNameError`.

        A ``module:attribute`` name of a registry with an entry point group is imported
        and registered first.

        Raises:
            UnknownNameError: ``name`` is not registered (the message lists the choices).
            PluginError: ``name`` is a ``module:attribute`` reference that does not import
                or names something of another kind.
        """
        self._load()
        self._resolve(name)
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, list(self._entries))
            ) from None

    def origin(self, name: str) -> str | None:
        """Where ``name`` came from: the plugin distribution (``"my-plugin 0.1"``) of an
        entry point, the reference of a ``module:attribute`` name, else None (registered
        in code, paretune's own entries included)."""
        self._load()
        return self._origins.get(name)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load()
        if isinstance(name, str):
            try:
                self._resolve(name)
            except PluginError:
                return False
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
