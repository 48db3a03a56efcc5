"""Dense single-channel regression scored by L1: keypoint heatmaps and texture edges."""

from __future__ import annotations

import torch

from trials.tasks._base import TASKS, Task, TaskMetrics
from trials.tasks._common import check_dense, check_style, infos, ratio


class DenseL1Task(Task):
    """A ``(B, 1, H, W)`` map in ``[0, 1]`` regressed with L1 loss over every pixel.

    The metric ``l1`` (lower is better) is the mean absolute error over all pixels of
    the split, the same in both styles (Taskonomy, Zamir et al., CVPR 2018). It is NaN
    until a batch is added.
    """

    out_channels = 1

    def __init__(self, style: str = "nyu", num_classes: int = 0) -> None:
        self.style = check_style(self.name, style)
        self.metric_infos = infos("l1")

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_dense(self.name, prediction, target, 1)
        return (prediction.float() - target.float()).abs().mean()

    def new_metrics(self) -> DenseL1Metrics:
        return DenseL1Metrics(self.name)


@TASKS.register("keypoints2d")
class Keypoints2dTask(DenseL1Task):
    """2D keypoint heatmaps (Taskonomy's ``keypoints2d``)."""

    name = "keypoints2d"


@TASKS.register("edge_texture")
class EdgeTextureTask(DenseL1Task):
    """Texture edge strength (Taskonomy's ``edge_texture``)."""

    name = "edge_texture"


class DenseL1Metrics(TaskMetrics):
    """Sum of absolute errors and pixel count."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.count = 0
        self.abs_sum = 0.0

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        check_dense(self.task, prediction, target, 1)
        self.abs_sum += float((prediction.float() - target.float()).abs().sum())
        self.count += int(target.numel())

    def compute(self) -> dict[str, float]:
        return {"l1": ratio(self.abs_sum, self.count)}
