"""Binary image-level attributes (CelebA-style) predicted by dense heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trials.tasks._base import NAMED_TASK_STYLES, Task, TaskMetrics
from trials.tasks._common import infos, ratio

#: Metric style of data sets whose tasks are binary attributes with data-set-chosen names.
ATTRIBUTE_STYLE = "attributes"


def attribute_logits(prediction: torch.Tensor) -> torch.Tensor:
    """One logit per image: the mean of a ``(B, 1, ...)`` map (global average pooling).

    A ``(B,)`` or ``(B, 1)`` prediction is taken as the logits themselves.
    """
    if prediction.dim() < 1 or (prediction.dim() > 1 and prediction.shape[1] != 1):
        raise ValueError(
            f"attribute prediction must have shape (B,), (B, 1) or (B, 1, H, W) but got "
            f"{tuple(prediction.shape)}"
        )
    return prediction.float().reshape(prediction.shape[0], -1).mean(dim=1)


def _labels(task: str, target: torch.Tensor, batch: int) -> torch.Tensor:
    if target.numel() != batch:
        raise ValueError(
            f"{task} target must hold one 0/1 label per image ({batch}) but has shape "
            f"{tuple(target.shape)}"
        )
    return target.reshape(batch).float()


class AttributeTask(Task):
    """A binary attribute of the whole image (e.g. CelebA's ``Wearing_Hat``).

    The head stays dense: its ``(B, 1, h, w)`` map is averaged to one logit per image
    (global average pooling), trained with binary cross-entropy on logits. Targets are
    0/1 floats, one per image (``(B,)`` or ``(B, 1)``). The metric ``accuracy`` (higher is
    better) is the percentage of images whose logit has the target's sign (logit > 0
    predicts 1), exact over the split; NaN until a batch is added.
    """

    out_channels = 1

    def __init__(self, name: str, num_classes: int = 0) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an attribute task needs a non-empty name but got {name!r}")
        self.name = name
        self.metric_infos = infos("accuracy")

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = attribute_logits(prediction)
        return F.binary_cross_entropy_with_logits(
            logits, _labels(self.name, target, logits.shape[0])
        )

    def new_metrics(self) -> AttributeMetrics:
        return AttributeMetrics(self.name)


class AttributeMetrics(TaskMetrics):
    """Correct predictions and image count."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.correct = 0
        self.count = 0

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        logits = attribute_logits(prediction)
        labels = _labels(self.task, target, logits.shape[0])
        self.correct += int(((logits > 0).float() == labels).sum())
        self.count += int(labels.numel())

    def compute(self) -> dict[str, float]:
        return {"accuracy": ratio(self.correct, self.count, 100.0)}


NAMED_TASK_STYLES.register(ATTRIBUTE_STYLE)(AttributeTask)
