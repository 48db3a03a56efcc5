"""The multi-task model contract: one shared backbone, one head per task."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import nn

from trials._options import parse_options as _parse_options
from trials.errors import ParetuneError
from trials.registry import Registry


class Backbone(nn.Module, abc.ABC):
    """A feature extractor made of sequential stages.

    Contract: ``stages`` is an ``nn.ModuleList`` applied in order (the architecture search
    shares the first few stages and copies the rest); ``out_channels`` is the channel count
    of the last stage's output; ``output_stride`` is input size / feature size.
    """

    stages: nn.ModuleList
    out_channels: int
    output_stride: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


class Head(nn.Module, abc.ABC):
    """Maps backbone features ``(B, in_channels, h, w)`` to ``(B, out_channels, h, w)``."""


class MultiTaskModel(nn.Module):
    """Hard parameter sharing: ``backbone`` feeds one head per task.

    Components are addressable by name (``backbone``, ``head:<task>``) so weight pruners
    can treat them separately. ``forward`` returns task -> prediction at input resolution.
    """

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def components(self) -> dict[str, nn.Module]:
        """Named components in a stable order: ``backbone`` then ``head:<task>``."""
        named: dict[str, nn.Module] = {"backbone": self.backbone}
        named.update({f"head:{task}": head for task, head in self.heads.items()})
        return named

    def grouping(self) -> dict[str, Any] | None:
        """The task grouping of a grouped architecture (``TrialResult.grouping``); None
        for plain hard sharing."""
        return None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        size = x.shape[-2:]
        return {
            task: F.interpolate(head(features), size=size, mode="bilinear", align_corners=False)
            for task, head in self.heads.items()
        }


BACKBONES: Registry = Registry("backbone", plugins=__package__)
"""Factories ``(**options) -> Backbone``."""

HEADS: Registry = Registry("head", plugins=__package__)
"""Factories ``(in_channels: int, out_channels: int, **options) -> Head``."""


class ModelOptionError(ParetuneError, TypeError, ValueError):
    """A backbone or head got an unknown option or a bad value; the message names it."""


P = TypeVar("P", bound=BaseModel)


def parse_options(params_type: type[P], owner: str, options: Mapping[str, Any]) -> P:
    """Validates keyword ``options`` of ``owner``; errors raise :class:`ModelOptionError`."""
    return _parse_options(params_type, owner, options, ModelOptionError)
