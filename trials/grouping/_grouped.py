"""The grouped multi-task model: a shared stem, one branch per task group, one head per task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trials.grouping._spec import check_assignment, check_shared_stages
from trials.models import BACKBONES, MultiTaskModel, build_model


class GroupedMultiTaskModel(MultiTaskModel):
    """Tasks grouped onto branches: ``stem -> branch[assignment[task]] -> head[task]``.

    A :class:`~trials.models.MultiTaskModel` (the ``backbone`` attribute holds the shared
    stem, an ``nn.Sequential`` of the first backbone stages, empty when nothing is shared),
    so every weight pruner accepts it. Components, in order: ``stem`` (only when it has
    stages), ``branch:<k>`` for every branch that has tasks, ``head:<task>``. Branch
    indices keep the numbering of the search that produced them.

    Attributes:
        assignment: task -> branch index.
        shared_stages: number of backbone stages in the stem.
    """

    def __init__(
        self,
        stem: nn.Sequential,
        branches: Mapping[int, nn.Module],
        heads: Mapping[str, nn.Module],
        assignment: Mapping[str, int],
    ) -> None:
        super().__init__(stem, dict(heads))
        check_assignment(assignment, list(heads))
        unused = sorted(set(branches) - set(assignment.values()))
        missing = sorted(set(assignment.values()) - set(branches))
        if unused or missing:
            raise ValueError(
                f"branches {sorted(branches)} must be exactly the assigned ones "
                f"{sorted(set(assignment.values()))}"
            )
        self.branches = nn.ModuleDict({str(k): branches[k] for k in sorted(branches)})
        self.assignment = {task: int(assignment[task]) for task in heads}
        self.shared_stages = len(stem)

    def components(self) -> dict[str, nn.Module]:
        """``stem`` (if shared stages), ``branch:<k>``, then ``head:<task>``."""
        named: dict[str, nn.Module] = {}
        if self.shared_stages:
            named["stem"] = self.backbone
        named.update({f"branch:{k}": branch for k, branch in self.branches.items()})
        named.update({f"head:{task}": head for task, head in self.heads.items()})
        return named

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.backbone(x)
        features = {k: branch(shared) for k, branch in self.branches.items()}
        size = x.shape[-2:]
        return {
            task: F.interpolate(
                head(features[str(self.assignment[task])]),
                size=size,
                mode="bilinear",
                align_corners=False,
            )
            for task, head in self.heads.items()
        }

    def grouping(self) -> dict[str, Any]:
        """``{"tasks", "num_groups", "shared_stages", "assignment"}`` of this model."""
        return {
            "tasks": list(self.tasks),
            "num_groups": len(self.branches),
            "shared_stages": self.shared_stages,
            "assignment": dict(self.assignment),
        }


def build_grouped_model(
    backbone: str,
    head: str,
    task_channels: Mapping[str, int],
    assignment: Mapping[str, int],
    shared_stages: int,
    backbone_options: Mapping[str, Any] | None = None,
    head_options: Mapping[str, Any] | None = None,
) -> GroupedMultiTaskModel:
    """A freshly initialised grouped model for a stored ``assignment`` (group-then-prune).

    The stem is the first ``shared_stages`` stages of the registered ``backbone``; every
    branch that has tasks is the remaining stages of its own freshly built backbone.

    Raises:
        GroupingError: unknown or missing tasks in ``assignment``, or ``shared_stages``
            out of range for the backbone.
        UnknownNameError, ModelOptionError, ValueError: as :func:`trials.models.build_model`.
    """
    check_assignment(assignment, list(task_channels))
    template = build_model(backbone, head, task_channels, backbone_options, head_options)
    stages = list(template.backbone.stages)
    check_shared_stages(shared_stages, len(stages), backbone)
    branches: dict[int, nn.Module] = {}
    for index in sorted(set(assignment.values())):
        if branches:
            stages = list(BACKBONES.get(backbone)(**dict(backbone_options or {})).stages)
        branches[index] = nn.Sequential(*stages[shared_stages:])
    stem = nn.Sequential(*list(template.backbone.stages)[:shared_stages])
    return GroupedMultiTaskModel(stem, branches, dict(template.heads), assignment)
