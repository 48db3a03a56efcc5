"""The DMTG search model: a shared stem, K group branches, K x N heads, grouping logits."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trials.grouping._relax import gradient_scales, scale_gradient
from trials.grouping._spec import GradientScaling, check_num_groups
from trials.models import GroupedMultiTaskModel, build_model, check_shared_stages


class DMTGSearchModel(nn.Module):
    """One-shot task grouping (Gao et al., "DMTG: One-Shot Differentiable Multi-Task
    Grouping", ICML 2024).

    ``stem`` (the first ``shared_stages`` backbone stages) feeds ``K`` copies of the
    remaining stages (``branches``); each branch feeds its own head for every task
    (``heads[k][task]``, K x N heads). ``logits`` is ``Theta`` (N x K, zeros = uniform):
    row ``n`` is task ``n``'s categorical distribution over the groups.

    ``gradient_scaling`` (:func:`~trials.grouping.gradient_scales`) scales the gradient
    each branch sends into the stem by ``stem_gradient_scale`` and the gradient each head
    sends into its branch by ``branch_gradient_scale``, as DMTG's group and task
    regulators do (ethanygao/DMTG models/learnToGroup.py:52-62); the default
    ``dmtg-taskonomy`` gives the stem x``1/K`` and the branches x``1/sqrt(K)``.

    ``forward_all(x)`` gives every branch's prediction of every task (training: the trial
    weighs the ``(N, K)`` losses by Gumbel-softmax samples of ``Theta``); ``forward(x)``
    gives each task's prediction on its argmax branch (evaluation), as a plain
    multi-task model would.
    """

    def __init__(
        self,
        stem: nn.Sequential,
        branch: nn.Module,
        heads: list[Mapping[str, nn.Module]],
        gradient_scaling: GradientScaling = "dmtg-taskonomy",
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a DMTG search model needs at least one group of heads")
        self.stem = stem
        self.branches = nn.ModuleList(
            [branch] + [copy.deepcopy(branch) for _ in range(len(heads) - 1)]
        )
        self.heads = nn.ModuleList(nn.ModuleDict(dict(group)) for group in heads)
        self.task_names = tuple(heads[0])
        self.logits = nn.Parameter(torch.zeros(len(self.task_names), len(heads)))
        self.gradient_scaling = gradient_scaling
        self.stem_gradient_scale, self.branch_gradient_scale = gradient_scales(
            gradient_scaling, len(self.task_names), len(heads)
        )

    @property
    def num_groups(self) -> int:
        return len(self.branches)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.task_names

    @property
    def shared_stages(self) -> int:
        return len(self.stem)

    def probabilities(self) -> torch.Tensor:
        """``softmax(Theta)`` per task row, detached, ``(N, K)``."""
        return torch.softmax(self.logits.detach(), dim=1)

    def assignment(self) -> dict[str, int]:
        """Task -> its argmax group."""
        chosen = self.logits.detach().argmax(dim=1).tolist()
        return dict(zip(self.task_names, (int(k) for k in chosen), strict=True))

    def network_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the grouping logits."""
        return [p for name, p in self.named_parameters() if name != "logits"]

    def _shared(self, x: torch.Tensor) -> torch.Tensor:
        """The stem's features, their gradient scaled (DMTG's group regulator, which DMTG
        applies once per branch: the same sum)."""
        return scale_gradient(self.stem(x), self.stem_gradient_scale)

    def _branch(self, k: int, shared: torch.Tensor) -> torch.Tensor:
        """Branch ``k``'s features, their gradient scaled (DMTG's task regulator, which DMTG
        applies once per head: the same sum)."""
        return scale_gradient(self.branches[k](shared), self.branch_gradient_scale)

    def _predict(self, head: nn.Module, features: torch.Tensor, size: Any) -> torch.Tensor:
        return F.interpolate(head(features), size=size, mode="bilinear", align_corners=False)

    def forward_all(
        self, x: torch.Tensor, gradient_weights: torch.Tensor | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """``[k][task]``: every branch's prediction of every task at input resolution.

        With ``gradient_weights`` (``(N, K)``, e.g. the detached assignment ``z``), the
        gradient that head ``[k][n]`` sends into branch ``k`` (and through it the stem) is
        scaled by ``gradient_weights[n, k]``; the heads themselves get their full gradient.
        """
        if gradient_weights is not None and gradient_weights.shape != self.logits.shape:
            raise ValueError(
                f"gradient_weights must have the (tasks, groups) shape "
                f"{tuple(self.logits.shape)} but got {tuple(gradient_weights.shape)}"
            )
        weights = None if gradient_weights is None else gradient_weights.detach().tolist()
        shared = self._shared(x)
        size = x.shape[-2:]
        outputs = []
        for k, heads in enumerate(self.heads):
            features = self._branch(k, shared)
            outputs.append(
                {
                    task: self._predict(
                        head,
                        features if weights is None else scale_gradient(features, weights[n][k]),
                        size,
                    )
                    for n, (task, head) in enumerate(heads.items())
                }
            )
        return outputs

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's prediction on its argmax branch (branches without tasks are skipped)."""
        shared = self._shared(x)
        size = x.shape[-2:]
        assignment = self.assignment()
        features = {k: self._branch(k, shared) for k in sorted(set(assignment.values()))}
        return {
            task: self._predict(self.heads[k][task], features[k], size)
            for task, k in assignment.items()
        }

    def components(self) -> dict[str, nn.Module]:
        """``stem`` (if shared stages), ``branch:<k>`` for all K, ``head:<task>`` (argmax)."""
        named: dict[str, nn.Module] = {"stem": self.stem} if len(self.stem) else {}
        named.update({f"branch:{k}": branch for k, branch in enumerate(self.branches)})
        named.update({f"head:{task}": self.heads[k][task] for task, k in self.assignment().items()})
        return named


def build_search_model(
    backbone: str,
    head: str,
    task_channels: Mapping[str, int],
    num_groups: int,
    shared_stages: int,
    backbone_options: Mapping[str, Any] | None = None,
    head_options: Mapping[str, Any] | None = None,
    gradient_scaling: GradientScaling = "dmtg-taskonomy",
) -> DMTGSearchModel:
    """A DMTG search model over the registered ``backbone`` and ``head``.

    The branches are deep copies of the backbone's stages after ``shared_stages`` (same
    initial weights); so are a task's K heads (heads of different tasks are initialised
    independently), so at the start no branch is favoured by a luckier head.
    ``gradient_scaling`` is as :class:`DMTGSearchModel`'s.

    Raises:
        GroupingError: ``num_groups`` outside ``1..N`` or ``shared_stages`` out of range.
        UnknownNameError, ModelOptionError, ValueError: as :func:`trials.models.build_model`;
            ValueError also for an unknown ``gradient_scaling``.
    """
    template = build_model(backbone, head, task_channels, backbone_options, head_options)
    check_num_groups(num_groups, list(template.tasks))
    stages = list(template.backbone.stages)
    check_shared_stages(shared_stages, len(stages), backbone)
    first: Mapping[str, nn.Module] = dict(template.heads)
    heads = [first] + [copy.deepcopy(first) for _ in range(num_groups - 1)]
    return DMTGSearchModel(
        nn.Sequential(*stages[:shared_stages]),
        nn.Sequential(*stages[shared_stages:]),
        heads,
        gradient_scaling=gradient_scaling,
    )


def extract_grouped_model(search_model: DMTGSearchModel) -> GroupedMultiTaskModel:
    """The final architecture of a search: each task keeps its argmax branch and that
    branch's head for it (K x N heads -> N), branches without tasks are dropped; weights
    are copied (the search model is left unchanged).

    In eval mode the result's outputs equal ``search_model(x)``.
    """
    assignment = search_model.assignment()
    branches = {
        k: copy.deepcopy(search_model.branches[k]) for k in sorted(set(assignment.values()))
    }
    heads = {task: copy.deepcopy(search_model.heads[k][task]) for task, k in assignment.items()}
    return GroupedMultiTaskModel(copy.deepcopy(search_model.stem), branches, heads, assignment)
