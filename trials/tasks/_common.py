"""Helpers shared by the task modules: argument checks and masked reductions."""

from __future__ import annotations

import torch

from trials.metrics import METRICS, MetricInfo

STYLES = ("nyu", "taskonomy")


def check_style(task: str, style: str) -> str:
    """Returns ``style`` if it is a known metric family, else raises naming the task."""
    if style not in STYLES:
        raise ValueError(f"{task} metric style must be 'nyu' or 'taskonomy' but got {style!r}")
    return style


def infos(*names: str) -> tuple[MetricInfo, ...]:
    """The :class:`MetricInfo` entries of ``names`` (all defined in ``trials.metrics``)."""
    return tuple(METRICS[name] for name in names)


def check_dense(task: str, prediction: torch.Tensor, target: torch.Tensor, channels: int) -> None:
    """Checks a ``(B, channels, H, W)`` prediction against a same-shaped target."""
    expected = (*target.shape[:1], channels, *target.shape[2:])
    if target.dim() != 4 or target.shape[1] != channels:
        raise ValueError(
            f"{task} target must have shape (B, {channels}, H, W) but got {tuple(target.shape)}"
        )
    if tuple(prediction.shape) != expected:
        raise ValueError(
            f"{task} prediction must have shape {expected} to match the target but got "
            f"{tuple(prediction.shape)}"
        )


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``valid``; a differentiable 0 when nothing is valid.

    Invalid entries are replaced (not multiplied) so a non-finite prediction there
    cannot leak into the result or its gradient.
    """
    kept = torch.where(valid, values, torch.zeros_like(values))
    return kept.sum() / valid.sum().clamp_min(1).to(kept.dtype)


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float:
    """``scale * numerator / denominator``, or NaN when the denominator is 0."""
    return scale * numerator / denominator if denominator > 0 else float("nan")
