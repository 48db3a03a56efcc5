"""Backend-neutral search-space parameters: ranges, choices and fixed values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


class SearchSpaceError(ValueError):
    """A search space or an override of it is invalid; the message names the parameter."""


Scalar = bool | int | float | str | None
_SCALARS = (bool, int, float, str, type(None))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise SearchSpaceError(f"parameter name must be an identifier (got {name!r})")


def _check_range(name: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SearchSpaceError(f"range for {name!r} must be finite (got [{low}, {high}])")
    if low > high:
        raise SearchSpaceError(f"range for {name!r} has low {low} > high {high}")
    if log and low <= 0:
        raise SearchSpaceError(f"log range for {name!r} needs low > 0 (got low {low})")


def _check_default(name: str, default: float, low: float, high: float) -> None:
    if not low <= default <= high:
        raise SearchSpaceError(
            f"default for {name!r} is {default} but must be within [{low}, {high}]"
        )


@dataclass(frozen=True)
class Float:
    """A real-valued parameter searched in ``[low, high]`` (log-uniformly if ``log``).

    ``default`` (the value used when nothing is searched) is the midpoint of the range
    (the geometric midpoint for a log range) when not given.
    """

    name: str
    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if not _is_number(value):
                raise SearchSpaceError(f"{bound} of {self.name!r} must be a number (got {value!r})")
            object.__setattr__(self, bound, float(value))
        _check_range(self.name, self.low, self.high, self.log)
        if self.default is None:
            middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
            object.__setattr__(self, "default", middle)
        elif not _is_number(self.default):
            raise SearchSpaceError(
                f"default for {self.name!r} must be a number (got {self.default!r})"
            )
        object.__setattr__(self, "default", float(self.default))  # type: ignore[arg-type]
        _check_default(self.name, self.default, self.low, self.high)  # type: ignore[arg-type]

    def to_optuna(self) -> BaseDistribution:
        """The equivalent ``optuna.distributions.FloatDistribution``."""
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        """A JSON description (see :meth:`SearchSpace.from_dict`)."""
        return {
            "type": "float",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "default": self.default,
        }


@dataclass(frozen=True)
class Int:
    """An integer parameter searched in ``[low, high]`` (both included)."""

    name: str
    low: int
    high: int
    log: bool = False
    default: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        for bound in ("low", "high"):
            value = getattr(self, bound)
            object.__setattr__(self, bound, _as_int(self.name, bound, value))
        _check_range(self.name, self.low, self.high, self.log)
        if self.default is None:
            middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
            object.__setattr__(self, "default", min(self.high, max(self.low, round(middle))))
        object.__setattr__(self, "default", _as_int(self.name, "default", self.default))
        _check_default(self.name, self.default, self.low, self.high)  # type: ignore[arg-type]

    def to_optuna(self) -> BaseDistribution:
        """The equivalent ``optuna.distributions.IntDistribution``."""
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        """A JSON description (see :meth:`SearchSpace.from_dict`)."""
        return {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "default": self.default,
        }


def _as_int(name: str, what: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SearchSpaceError(f"{what} of {name!r} must be an integer (got {value!r})")
    return value


@dataclass(frozen=True)
class Categorical:
    """A parameter chosen among ``choices`` (scalars); ``default`` is the first choice."""

    name: str
    choices: tuple[Scalar, ...]
    default: Scalar = field(default=None)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, list | tuple):
            raise SearchSpaceError(
                f"choices for {self.name!r} must be a list (got {self.choices!r})"
            )
        choices = tuple(self.choices)
        if not choices:
            raise SearchSpaceError(f"choices for {self.name!r} must not be empty")
        for choice in choices:
            if not isinstance(choice, _SCALARS):
                raise SearchSpaceError(
                    f"choices for {self.name!r} must be numbers, strings, booleans or null "
                    f"(got {choice!r})"
                )
        if len(set(map(repr, choices))) != len(choices):
            raise SearchSpaceError(f"choices for {self.name!r} repeat a value (got {choices!r})")
        object.__setattr__(self, "choices", choices)
        if self.default is None and None not in choices:
            object.__setattr__(self, "default", choices[0])
        if self.default not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise SearchSpaceError(
                f"default for {self.name!r} is {self.default!r} but must be one of: {listed}"
            )

    def to_optuna(self) -> BaseDistribution:
        """The equivalent ``optuna.distributions.CategoricalDistribution``."""
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def to_dict(self) -> dict[str, Any]:
        """A JSON description (see :meth:`SearchSpace.from_dict`)."""
        return {"type": "categorical", "choices": list(self.choices), "default": self.default}


@dataclass(frozen=True)
class Fixed:
    """A parameter held at ``value``: part of every configuration, never searched."""

    name: str
    value: Any

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def default(self) -> Any:
        """The fixed value."""
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON description (see :meth:`SearchSpace.from_dict`)."""
        return {"type": "fixed", "value": self.value}


Param = Float | Int | Categorical | Fixed
"""Any parameter of a :class:`~search_spaces.SearchSpace`."""

Searched = Float | Int | Categorical
"""A parameter that a sampler varies."""
