"""Depth regression: masked L1 loss, absolute/relative error and delta accuracies."""

from __future__ import annotations

import torch

from trials.tasks._base import TASKS, Task, TaskMetrics
from trials.tasks._common import check_dense, check_style, infos, masked_mean, ratio

#: Thresholds of the delta accuracies, with the metric names reporting them.
DELTA_THRESHOLDS = {"delta_1.25": 1.25, "delta_1.25^2": 1.25**2, "delta_1.25^3": 1.25**3}


@TASKS.register("depth_zbuffer")
class DepthTask(Task):
    """Per-pixel depth; target pixels with depth 0 are invalid and ignored.

    Loss: mean absolute error over valid pixels. Metrics, summed over every valid pixel
    of the split then divided: ``abs_err`` (mean ``|p - g|``), ``rel_err`` (mean
    ``|p - g| / g``), and ``delta_1.25``, ``delta_1.25^2``, ``delta_1.25^3``: the percent
    of valid pixels with ``max(p / g, g / p)`` below the threshold (Eigen et al., NIPS
    2014); a prediction ``<= 0`` never passes a threshold. The ``taskonomy`` style reports
    ``abs_err`` only (Zamir et al., CVPR 2018). Values are NaN until a valid pixel is seen.
    """

    name = "depth_zbuffer"
    out_channels = 1

    def __init__(self, style: str = "nyu", num_classes: int = 0) -> None:
        self.style = check_style(self.name, style)
        names = ("abs_err", "rel_err", *DELTA_THRESHOLDS) if style == "nyu" else ("abs_err",)
        self.metric_infos = infos(*names)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_dense(self.name, prediction, target, 1)
        target = target.float()
        return masked_mean((prediction.float() - target).abs(), target > 0)

    def new_metrics(self) -> DepthMetrics:
        return DepthMetrics(self.style)


class DepthMetrics(TaskMetrics):
    """Sums of absolute and relative errors and delta-threshold hits over valid pixels."""

    def __init__(self, style: str = "nyu") -> None:
        self.style = style
        self.count = 0
        self.abs_sum = 0.0
        self.rel_sum = 0.0
        self.delta_hits = dict.fromkeys(DELTA_THRESHOLDS, 0)

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        check_dense(DepthTask.name, prediction, target, 1)
        valid = target > 0
        truth = target[valid].float()
        predicted = prediction[valid].float()
        error = (predicted - truth).abs()
        self.count += int(truth.numel())
        self.abs_sum += float(error.sum())
        if self.style != "nyu":
            return
        self.rel_sum += float((error / truth).sum())
        positive = predicted > 0
        tiny = torch.finfo(predicted.dtype).tiny
        spread = torch.where(
            positive,
            torch.maximum(predicted / truth, truth / predicted.clamp_min(tiny)),
            torch.full_like(predicted, float("inf")),
        )
        for name, threshold in DELTA_THRESHOLDS.items():
            self.delta_hits[name] += int((spread < threshold).sum())

    def compute(self) -> dict[str, float]:
        abs_err = ratio(self.abs_sum, self.count)
        if self.style != "nyu":
            return {"abs_err": abs_err}
        deltas = {
            name: ratio(float(hits), self.count, 100.0) for name, hits in self.delta_hits.items()
        }
        return {"abs_err": abs_err, "rel_err": ratio(self.rel_sum, self.count), **deltas}
