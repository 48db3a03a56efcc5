"""The task-weighting contract: how per-task losses combine into one training loss."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from trials._calibration import DEFAULT_CALIBRATION, Calibrated
from trials.registry import Registry


class WeightingParams(Calibrated, BaseModel):
    """Typed knobs of a task weighting; subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskWeighting(abc.ABC):
    """Combines ``{task: loss}`` into one scalar each iteration.

    Contract: ``attach(tasks, total_iterations)`` once before training; ``parameters()``
    lists learnable tensors the trainer adds to the optimizer (empty for most);
    ``combine(losses, iteration)`` returns the weighted scalar loss for iteration
    ``iteration`` (0-based) and may record the losses it sees; ``weights()`` returns the
    weights used last, as plain floats, keyed by task.
    """

    Params: ClassVar[type[WeightingParams]] = WeightingParams

    def __init__(self, params: WeightingParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.tasks: tuple[str, ...] = ()
        self.total_iterations = 0

    def attach(self, tasks: tuple[str, ...], total_iterations: int) -> None:
        self.tasks = tuple(tasks)
        self.total_iterations = total_iterations

    def parameters(self) -> list[nn.Parameter]:
        return []

    @abc.abstractmethod
    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        """The weighted training loss."""

    @abc.abstractmethod
    def weights(self) -> dict[str, float]:
        """Current task weights."""


WEIGHTINGS: Registry = Registry("task weighting", plugins=__package__)
"""``TaskWeighting`` subclasses by name. Every module of :mod:`trials.weighting` is imported
on the first lookup: a new weighting is its module."""


def build_weighting(
    name: str, calibration: str = DEFAULT_CALIBRATION, **params: Any
) -> TaskWeighting:
    """Instantiates weighting ``name`` with validated ``params`` (on top of the defaults of
    ``calibration``)."""
    cls = WEIGHTINGS.get(name)
    return cls(cls.Params.calibrated(calibration, **params))
