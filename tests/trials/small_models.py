"""A small two-task model (depth, seg) and its losses, for pruner tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trials.models._base import MultiTaskModel


def small_model(seed: int = 0, norm_after_every_conv: bool = False) -> MultiTaskModel:
    """Backbone conv-BN-ReLU, conv(-BN)-ReLU; two conv heads. Seeded."""
    torch.manual_seed(seed)
    second_norm: list[nn.Module] = [nn.BatchNorm2d(16)] if norm_after_every_conv else []
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        *second_norm,
        nn.ReLU(),
    )
    heads = {
        "depth": nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1)),
        "seg": nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1)),
    }
    return MultiTaskModel(backbone, heads)


def losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = model(batch["image"])
    return {
        "depth": F.mse_loss(out["depth"], batch["depth"]),
        "seg": F.cross_entropy(out["seg"], batch["seg"]),
    }
