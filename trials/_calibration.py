"""Calibrations: named sets of defaults for a method's parameters and the trainer.

``reference`` (the default) is every default as the method's reference code has it (see
``docs/methods.md``). Other calibrations change some defaults for a stated reason, e.g.
``short-budget``: the values paretune measured to work when a model trains from scratch
for a few hundred iterations. A value set explicitly always wins over a calibration.

A parameters class opts in by listing its presets::

    class MyParams(Calibrated, BaseModel):
        presets: ClassVar[dict[str, dict[str, Any]]] = {"short-budget": {"lr_scale": 10.0}}
        lr_scale: float = 1.0

    MyParams.calibrated("short-budget")  # lr_scale 10.0; MyParams() keeps 1.0
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from trials.registry import UnknownNameError, unknown_name_message

CALIBRATIONS: dict[str, str] = {
    "reference": "every default as in the method's reference code",
    "short-budget": (
        "defaults measured to work for budgets of a few hundred iterations trained from "
        "scratch (the values paretune used before reference defaults)"
    ),
}
"""Calibration name -> what it means."""

DEFAULT_CALIBRATION = "reference"


def check_calibration(name: str) -> str:
    """``name`` if it is a calibration; otherwise an error listing the valid ones."""
    if name not in CALIBRATIONS:
        raise UnknownNameError(unknown_name_message("calibration", name, list(CALIBRATIONS)))
    return name


class Calibrated:
    """Mixin of a pydantic parameters class with named presets of its defaults."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, calibration: str) -> dict[str, Any]:
        """The defaults ``calibration`` changes (empty for ``reference``)."""
        return dict(cls.presets.get(check_calibration(calibration), {}))

    @classmethod
    def calibrated(cls, calibration: str = DEFAULT_CALIBRATION, **params: Any) -> Self:
        """An instance with ``calibration``'s defaults, then ``params``."""
        return cls(**{**cls.preset(calibration), **params})
