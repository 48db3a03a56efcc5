"""Semantic segmentation: cross-entropy loss, confusion-matrix mIoU and pixel accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trials.data._base import IGNORE_INDEX
from trials.tasks._base import TASKS, Task, TaskMetrics
from trials.tasks._common import check_style, infos, ratio


def _check_inputs(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
    if target.dim() != 3:
        raise ValueError(
            f"segment_semantic target must have shape (B, H, W) but got {tuple(target.shape)}"
        )
    expected = (target.shape[0], num_classes, *target.shape[1:])
    if tuple(prediction.shape) != expected:
        raise ValueError(
            f"segment_semantic prediction must have shape {expected} (B, num_classes, H, W) "
            f"but got {tuple(prediction.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype.is_complex:
        raise ValueError(f"segment_semantic target must hold integer labels but got {target.dtype}")
    bad = (target != IGNORE_INDEX) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        raise ValueError(
            f"segment_semantic labels must lie in 0..{num_classes - 1} or be {IGNORE_INDEX} "
            f"(ignore) but got {sorted(set(target[bad].unique().tolist()))}"
        )


@TASKS.register("segment_semantic")
class SegmentationTask(Task):
    """Per-pixel classification into ``num_classes`` classes; label 255 is ignored.

    Loss: mean cross-entropy over non-ignored pixels. Metrics accumulate a confusion
    matrix over the whole split: ``miou`` is the mean, over classes whose union
    (ground-truth or predicted pixels) is non-empty, of intersection over union, and
    ``pixel_acc`` the fraction of correctly labelled non-ignored pixels, both in percent
    (NYUv2 protocol of Long et al., CVPR 2015, as used by MTAN, Liu et al., CVPR 2019).
    The ``taskonomy`` style reports the mean per-pixel ``cross_entropy`` and ``miou``
    (Zamir et al., CVPR 2018). Every value is NaN until a non-ignored pixel is seen.
    """

    name = "segment_semantic"

    def __init__(self, style: str = "nyu", num_classes: int = 0) -> None:
        self.style = check_style(self.name, style)
        if num_classes < 1:
            raise ValueError(
                f"segment_semantic needs num_classes >= 1 (from the data set) but got {num_classes}"
            )
        self.num_classes = num_classes
        self.out_channels = num_classes
        names = ("miou", "pixel_acc") if style == "nyu" else ("cross_entropy", "miou")
        self.metric_infos = infos(*names)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_inputs(prediction, target, self.num_classes)
        per_pixel = F.cross_entropy(
            prediction.float(), target.long(), ignore_index=IGNORE_INDEX, reduction="none"
        )
        valid = target != IGNORE_INDEX
        return per_pixel.sum() / valid.sum().clamp_min(1).to(per_pixel.dtype)

    def new_metrics(self) -> SegmentationMetrics:
        return SegmentationMetrics(self.num_classes, self.style)


class SegmentationMetrics(TaskMetrics):
    """Confusion matrix (rows: true class, columns: predicted) plus cross-entropy sums."""

    def __init__(self, num_classes: int, style: str = "nyu") -> None:
        self.num_classes = num_classes
        self.style = style
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.cross_entropy_sum = 0.0

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        _check_inputs(prediction, target, self.num_classes)
        target = target.long()
        valid = target != IGNORE_INDEX
        true = target[valid]
        predicted = prediction.argmax(dim=1)[valid]
        counts = torch.bincount(true * self.num_classes + predicted, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes).cpu()
        if self.style == "taskonomy":
            self.cross_entropy_sum += F.cross_entropy(
                prediction.float(), target, ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()

    def compute(self) -> dict[str, float]:
        confusion = self.confusion.double()
        total = float(confusion.sum())
        intersection = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - intersection
        seen = union > 0
        miou = (
            float((intersection[seen] / union[seen]).mean()) * 100.0
            if bool(seen.any())
            else float("nan")
        )
        if self.style == "nyu":
            return {"miou": miou, "pixel_acc": ratio(float(intersection.sum()), total, 100.0)}
        return {"cross_entropy": ratio(self.cross_entropy_sum, total), "miou": miou}
