"""An ordered set of parameters with defaults, overrides and conversion to Optuna."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search_spaces._params import (
    _SCALARS,
    Categorical,
    Fixed,
    Float,
    Int,
    Param,
    Searched,
    SearchSpaceError,
)
from trials.registry import unknown_name_message

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

_RANGE_KEYS = frozenset({"low", "high", "log", "default"})
_CHOICE_KEYS = frozenset({"choices", "default"})


class BaseSearchSpace(abc.ABC):
    """The contract of a search space: what a study needs to sample configurations.

    A space is immutable; :meth:`override` returns a new one. :meth:`defaults` holds a
    value for every parameter (searched and fixed), :meth:`to_optuna` only the searched
    ones, so a configuration is ``{**space.defaults(), **sampled}``.
    """

    @abc.abstractmethod
    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter, in order."""

    @abc.abstractmethod
    def to_optuna(self) -> dict[str, BaseDistribution]:
        """Optuna distributions of the searched parameters, in order."""

    @abc.abstractmethod
    def override(self, overrides: Mapping[str, Any]) -> BaseSearchSpace:
        """A copy with some parameters' ranges, choices or values replaced."""


@dataclass(frozen=True)
class SearchSpace(BaseSearchSpace):
    """The hyperparameters of one method: ordered, named, each with a default.

    Attributes:
        params: the parameters, in the order samplers see them.
        method: the method the space belongs to (used in error messages).

    Example:
        >>> space = SearchSpace((Float("target_sparsity", 0.5, 0.99, default=0.9),), "snip")
        >>> space.override({"target_sparsity": [0.8, 0.95]}).defaults()
        {'target_sparsity': 0.9}
    """

    params: tuple[Param, ...] = ()
    method: str | None = None

    def __post_init__(self) -> None:
        params = tuple(self.params)
        for param in params:
            if not isinstance(param, Float | Int | Categorical | Fixed):
                raise SearchSpaceError(f"not a search-space parameter: {param!r}")
        names = [p.name for p in params]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SearchSpaceError(f"parameter {repeated[0]!r} appears twice in {self._label}")
        object.__setattr__(self, "params", params)

    # --- reading -------------------------------------------------------------------------
    @property
    def _label(self) -> str:
        return f"the search space of {self.method!r}" if self.method else "the search space"

    @property
    def names(self) -> list[str]:
        """Parameter names, in order."""
        return [p.name for p in self.params]

    @property
    def searched(self) -> tuple[Searched, ...]:
        """The parameters a sampler varies."""
        return tuple(p for p in self.params if not isinstance(p, Fixed))

    def fixed(self) -> dict[str, Any]:
        """The parameters held at one value."""
        return {p.name: p.value for p in self.params if isinstance(p, Fixed)}

    def defaults(self) -> dict[str, Any]:
        """The default of every searched parameter and the value of every fixed one."""
        return {p.name: p.default for p in self.params}

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise SearchSpaceError(self._unknown(name))

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def _unknown(self, name: str) -> str:
        if not self.params:
            owner = f"method {self.method!r}" if self.method else "this search space"
            return f"{owner} has no parameters (got {name!r})"
        kind = f"{self.method} parameter" if self.method else "parameter"
        return unknown_name_message(kind, name, self.names)

    # --- conversion ----------------------------------------------------------------------
    def to_optuna(self) -> dict[str, BaseDistribution]:
        """``{name: optuna distribution}`` of the searched parameters, in order."""
        return {p.name: p.to_optuna() for p in self.searched}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON description, ``{name: {"type": ..., ...}}``, kept in the results store."""
        return {p.name: p.to_dict() for p in self.params}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Mapping[str, Any]], method: str | None = None
    ) -> SearchSpace:
        """Rebuilds a space from :meth:`to_dict`'s output."""
        params: list[Param] = []
        for name, spec in data.items():
            fields = {k: v for k, v in spec.items() if k != "type"}
            kind = spec.get("type")
            if kind == "float":
                params.append(Float(name, **fields))
            elif kind == "int":
                params.append(Int(name, **fields))
            elif kind == "categorical":
                params.append(Categorical(name, tuple(fields["choices"]), fields.get("default")))
            elif kind == "fixed":
                params.append(Fixed(name, fields["value"]))
            else:
                raise SearchSpaceError(
                    f"parameter {name!r} has unknown type {kind!r}; "
                    "choose one of: categorical, fixed, float, int"
                )
        return cls(tuple(params), method)

    # --- overriding ----------------------------------------------------------------------
    def override(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """A copy with parameters replaced; names must already be in the space.

        Each override value may be:
            * a scalar (number, string, boolean): the parameter is fixed to it;
            * a two-item list ``[low, high]`` for a numeric parameter, or a list of
              choices for a categorical one;
            * a mapping with ``low``/``high``/``log``/``default`` (numeric parameters; the
              missing keys keep their current values), ``choices``/``default`` (turns any
              parameter into a categorical one) or ``value`` (fixes it).

        Raises:
            SearchSpaceError: an unknown parameter name (the message lists the valid
                ones) or an invalid range, choice or value.
        """
        if not isinstance(overrides, Mapping):
            raise SearchSpaceError(f"overrides must be a mapping (got {overrides!r})")
        for name in overrides:
            if name not in self:
                raise SearchSpaceError(self._unknown(str(name)))
        params = tuple(
            _override(p, overrides[p.name]) if p.name in overrides else p for p in self.params
        )
        return SearchSpace(params, self.method)


def _override(param: Param, spec: Any) -> Param:
    name = param.name
    if spec is None:
        raise SearchSpaceError(
            f"override for {name!r} is empty; give a value, a [low, high] range, a list "
            "of choices or a mapping"
        )
    if isinstance(spec, _SCALARS):
        return _fixed(param, spec)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return _from_list(param, list(spec))
    if isinstance(spec, Mapping):
        return _from_mapping(param, dict(spec))
    raise SearchSpaceError(
        f"override for {name!r} must be a value, a list or a mapping (got {spec!r})"
    )


def _fixed(param: Param, value: Any) -> Fixed:
    if isinstance(param, Float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise SearchSpaceError(f"fixed value of {param.name!r} must be a number (got {value!r})")
    if isinstance(param, Int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SearchSpaceError(
                f"fixed value of {param.name!r} must be an integer (got {value!r})"
            )
    return Fixed(param.name, value)


def _from_list(param: Param, items: list[Any]) -> Param:
    if isinstance(param, Float | Int):
        if len(items) != 2:
            raise SearchSpaceError(f"range for {param.name!r} must be [low, high] (got {items!r})")
        return _ranged(param, {"low": items[0], "high": items[1]})
    return Categorical(param.name, tuple(items), _keep_default(param, items))


def _from_mapping(param: Param, spec: dict[str, Any]) -> Param:
    name = param.name
    if set(spec) == {"value"}:
        return _fixed(param, spec["value"])
    if "choices" in spec:
        _check_keys(name, spec, _CHOICE_KEYS)
        choices = spec["choices"]
        if not isinstance(choices, list | tuple):
            raise SearchSpaceError(f"choices for {name!r} must be a list (got {choices!r})")
        default = spec["default"] if "default" in spec else _keep_default(param, list(choices))
        return Categorical(name, tuple(choices), default)
    if isinstance(param, Float | Int):
        _check_keys(name, spec, _RANGE_KEYS)
        return _ranged(param, spec)
    if isinstance(param, Categorical):
        _check_keys(name, spec, _CHOICE_KEYS)
        return Categorical(name, param.choices, spec.get("default", param.default))
    raise SearchSpaceError(
        f"override for fixed parameter {name!r} needs 'choices' or 'value' (got {spec!r})"
    )


def _check_keys(name: str, spec: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in spec:
        if key not in allowed:
            raise SearchSpaceError(
                f"override for {name!r} has unknown key {key!r}; "
                f"choose one of: {', '.join(sorted(allowed))}"
            )


def _ranged(param: Float | Int, spec: Mapping[str, Any]) -> Float | Int:
    low = spec.get("low", param.low)
    high = spec.get("high", param.high)
    log = spec.get("log", param.log)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"log of {param.name!r} must be true or false (got {log!r})")
    default: Any = spec.get("default")
    if default is None:
        keep = param.default
        fits = _is_ordered(low, keep, high) and (not log or (keep is not None and keep > 0))
        default = keep if fits else None
    if isinstance(param, Int):
        return Int(param.name, low, high, log, default)
    return Float(param.name, low, high, log, default)


def _is_ordered(low: Any, value: Any, high: Any) -> bool:
    try:
        return bool(low <= value <= high)
    except TypeError:
        return False


def _keep_default(param: Param, choices: list[Any]) -> Any:
    return param.default if param.default in choices else (choices[0] if choices else None)
