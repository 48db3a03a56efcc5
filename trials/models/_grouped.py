"""The grouped multi-task model: a shared stem, one branch per task group, one head per task.

A stored task grouping (``TrialConfig.grouping``, e.g. found by ``dmtg``) names each task's
branch; :func:`build_grouped_model` builds the architecture for it, so any weight pruner
can prune it (group-then-prune). The search that finds groupings lives in
:mod:`trials.grouping`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from trials._options import parse_options
from trials.errors import ParetuneError
from trials.models._base import BACKBONES, MultiTaskModel
from trials.models._build import build_model
from trials.registry import unknown_name_message


class GroupingError(ParetuneError, ValueError):
    """A task grouping or a DMTG parameter does not fit the tasks or the backbone."""


class GroupingSpec(BaseModel):
    """A stored task grouping: ``TrialConfig.grouping`` for group-then-prune trials.

    Attributes:
        assignment: task -> index of its group branch (indices need not be contiguous).
        shared_stages: leading backbone stages shared by every group.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    assignment: dict[str, int] = Field(min_length=1)
    shared_stages: int = Field(1, ge=0)


def parse_grouping(grouping: Mapping[str, Any]) -> GroupingSpec:
    """Validates a ``TrialConfig.grouping`` mapping; errors raise :class:`GroupingError`."""
    return parse_options(GroupingSpec, "grouping", grouping, GroupingError)


def check_shared_stages(shared_stages: int, num_stages: int, backbone: str) -> None:
    """The stem may take every stage but the last: each group branch needs one."""
    if not 0 <= shared_stages <= num_stages - 1:
        raise GroupingError(
            f"shared_stages must be between 0 and {num_stages - 1} (backbone {backbone!r} has "
            f"{num_stages} stages and each group branch needs at least one) but got "
            f"{shared_stages}"
        )


def check_assignment(assignment: Mapping[str, int], tasks: Sequence[str]) -> None:
    """Every task gets exactly one branch index >= 0, and only known tasks appear."""
    for task, branch in assignment.items():
        if task not in tasks:
            raise GroupingError(unknown_name_message("task in the grouping", task, list(tasks)))
        if isinstance(branch, bool) or not isinstance(branch, int) or branch < 0:
            raise GroupingError(
                f"grouping assignment of task {task!r} must be a branch index >= 0 "
                f"but got {branch!r}"
            )
    missing = [task for task in tasks if task not in assignment]
    if missing:
        raise GroupingError(
            f"grouping assignment has no branch for task{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}"
        )


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
