"""Surface normals: cosine loss, angle-error statistics and cosine similarity."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trials.tasks._base import TASKS, Task, TaskMetrics
from trials.tasks._common import check_dense, check_style, infos, masked_mean, ratio

#: Angle thresholds (degrees) of the ``within_*`` metrics, with their names.
WITHIN_THRESHOLDS = {"within_11.25": 11.25, "within_22.5": 22.5, "within_30": 30.0}


def _unit_vectors(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Normalised prediction and target ``(B, 3, H, W)`` and the valid mask ``(B, H, W)``."""
    valid = target.abs().sum(dim=1) > 0
    return F.normalize(prediction.float(), dim=1), F.normalize(target.float(), dim=1), valid


def angle_degrees(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Angle between unit vectors along dim 1, in degrees (``atan2`` form, exact near 0).

    A zero prediction (no direction) is 90 degrees from everything, consistent with its
    cosine similarity of 0.
    """
    cosine = (prediction * target).sum(dim=1)
    sine = torch.linalg.vector_norm(torch.linalg.cross(prediction, target, dim=1), dim=1)
    angle = torch.rad2deg(torch.atan2(sine, cosine))
    has_direction = prediction.abs().sum(dim=1) > 0
    return torch.where(has_direction, angle, torch.full_like(angle, 90.0))


@TASKS.register("normal")
class NormalTask(Task):
    """Per-pixel surface normals; all-zero target vectors are invalid and ignored.

    The raw 3-channel prediction is normalised inside the loss and the metrics. Loss:
    mean ``1 - cos(p, g)`` over valid pixels. ``nyu`` metrics (Eigen & Fergus, ICCV
    2015; Fouhey et al., ICCV 2013): ``angle_mean`` and ``angle_median`` in degrees, the
    median exact over every valid pixel of the split (angles kept as float32 on the CPU,
    4 bytes per valid pixel), and ``within_11.25``, ``within_22.5``, ``within_30``: percent
    of valid pixels with angle error below the threshold. ``taskonomy`` metrics (Zamir et
    al., CVPR 2018): mean ``cosine`` similarity and ``angle_mean``. Values are NaN until
    a valid pixel is seen.
    """

    name = "normal"
    out_channels = 3

    def __init__(self, style: str = "nyu", num_classes: int = 0) -> None:
        self.style = check_style(self.name, style)
        if style == "nyu":
            self.metric_infos = infos("angle_mean", "angle_median", *WITHIN_THRESHOLDS)
        else:
            self.metric_infos = infos("cosine", "angle_mean")

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_dense(self.name, prediction, target, 3)
        predicted, truth, valid = _unit_vectors(prediction, target)
        return masked_mean(1.0 - (predicted * truth).sum(dim=1), valid)

    def new_metrics(self) -> NormalMetrics:
        return NormalMetrics(self.style)


class NormalMetrics(TaskMetrics):
    """Sums of angles, cosines and threshold hits; every angle for the exact median."""

    def __init__(self, style: str = "nyu") -> None:
        self.style = style
        self.count = 0
        self.angle_sum = 0.0
        self.cosine_sum = 0.0
        self.within_hits = dict.fromkeys(WITHIN_THRESHOLDS, 0)
        self.angles: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        check_dense(NormalTask.name, prediction, target, 3)
        predicted, truth, valid = _unit_vectors(prediction, target)
        angle = angle_degrees(predicted, truth)[valid]
        self.count += int(angle.numel())
        self.angle_sum += float(angle.sum())
        if self.style == "nyu":
            for name, threshold in WITHIN_THRESHOLDS.items():
                self.within_hits[name] += int((angle < threshold).sum())
            self.angles.append(angle.cpu())
        else:
            cosine = (predicted * truth).sum(dim=1)[valid]
            self.cosine_sum += float(cosine.sum())

    def compute(self) -> dict[str, float]:
        angle_mean = ratio(self.angle_sum, self.count)
        if self.style != "nyu":
            return {"cosine": ratio(self.cosine_sum, self.count), "angle_mean": angle_mean}
        within = {
            name: ratio(float(hits), self.count, 100.0) for name, hits in self.within_hits.items()
        }
        return {"angle_mean": angle_mean, "angle_median": self._median(), **within}

    def _median(self) -> float:
        """Exact median (mean of the two middle values for an even count)."""
        if self.count == 0:
            return math.nan
        angles = torch.cat(self.angles)
        self.angles = [angles]
        middle = angles.numel() // 2
        upper = float(angles.kthvalue(middle + 1).values)
        if angles.numel() % 2:
            return upper
        return (float(angles.kthvalue(middle).values) + upper) / 2.0
