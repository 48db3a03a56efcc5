"""The task contract: a loss for training and accumulating metrics for evaluation."""

from __future__ import annotations

import abc

import torch

from trials.metrics import MetricInfo  # defined torch-free so ``trials.metrics`` stays light
from trials.registry import Registry


class TaskMetrics(abc.ABC):
    """Accumulates a task's metrics over batches (exact over the whole split)."""

    @abc.abstractmethod
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Adds one batch (raw model output and the data set's target)."""

    @abc.abstractmethod
    def compute(self) -> dict[str, float]:
        """Metric name -> value over everything added so far."""


class Task(abc.ABC):
    """One prediction task.

    Contract: ``out_channels`` is what the model's head for this task must output;
    ``loss(prediction, target)`` is a scalar tensor, differentiable in ``prediction``,
    ignoring invalid pixels as the data set marks them (see ``MultiTaskDataset``);
    ``metric_infos`` lists exactly the keys ``new_metrics().compute()`` returns.
    """

    name: str
    out_channels: int
    metric_infos: tuple[MetricInfo, ...]

    @abc.abstractmethod
    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of one batch."""

    @abc.abstractmethod
    def new_metrics(self) -> TaskMetrics:
        """A fresh metric accumulator."""


TASKS: Registry = Registry("task", plugins=__package__)
"""Factories ``(style: str, num_classes: int) -> Task``; ``style`` is ``nyu`` or ``taskonomy``."""


NAMED_TASK_STYLES: Registry = Registry("metric style", plugins=__package__)
"""Factories ``(name: str, num_classes: int) -> Task`` of metric styles whose task names
the data set chooses (``attributes``: any name is a binary attribute)."""


def build_task(name: str, style: str = "nyu", num_classes: int = 0) -> Task:
    """The task ``name`` evaluated with the metric family ``style``."""
    if style in NAMED_TASK_STYLES:
        return NAMED_TASK_STYLES.get(style)(name=name, num_classes=num_classes)
    if style not in ("nyu", "taskonomy"):
        raise ValueError(f"metric style must be 'nyu' or 'taskonomy' but got {style!r}")
    return TASKS.get(name)(style=style, num_classes=num_classes)
