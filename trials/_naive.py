"""Constant predictors that a trained model must beat (majority class, mean depth, ...)."""

from __future__ import annotations

import torch

from trials.data import IGNORE_INDEX, MultiTaskDataset
from trials.tasks import Task


def _constant_prediction(task: str, train: MultiTaskDataset, num_classes: int) -> torch.Tensor:
    """A per-pixel constant, shaped ``(C, 1, 1)``, fitted on the training split."""
    batch = train.get_batch(torch.arange(len(train)))
    target = batch[task]
    if task == "segment_semantic":
        labels = target[target != IGNORE_INDEX]
        majority = int(torch.bincount(labels.flatten(), minlength=num_classes).argmax())
        logits = torch.full((num_classes, 1, 1), -10.0)
        logits[majority] = 10.0
        return logits
    if task == "depth_zbuffer":
        return target[target > 0].mean().reshape(1, 1, 1)
    if task == "normal":
        valid = target.abs().sum(dim=1, keepdim=True) > 0
        mean = (target * valid).sum(dim=(0, 2, 3)) / valid.sum().clamp(min=1)
        return (mean / mean.norm().clamp(min=1e-8)).reshape(3, 1, 1)
    return target.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)


def naive_metrics(
    tasks: dict[str, Task], train: MultiTaskDataset, held_out: MultiTaskDataset
) -> dict[str, dict[str, float]]:
    """Metrics on ``held_out`` of predicting, for every pixel, one constant per task."""
    results: dict[str, dict[str, float]] = {}
    batch = held_out.get_batch(torch.arange(len(held_out)))
    for name, task in tasks.items():
        constant = _constant_prediction(name, train, train.num_classes)
        target = batch[name]
        shape = (target.shape[0], constant.shape[0], *batch["image"].shape[-2:])
        metrics = task.new_metrics()
        metrics.update(constant.unsqueeze(0).expand(shape).contiguous(), target)
        results[name] = metrics.compute()
    return results
