"""Classic task weightings: equal, uncertainty (Kendall et al.) and DWA (Liu et al.)."""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from trials.weighting._adaptive import (
    EPSILON,
    check_losses,
    loss_values,
    resolve_window,
    weighted_sum,
)
from trials.weighting._base import WEIGHTINGS, TaskWeighting, WeightingParams


@WEIGHTINGS.register("equal")
class EqualWeighting(TaskWeighting):
    """Every task weighs 1: the loss is ``sum_t L_t``."""

    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        check_losses(self, losses)
        return weighted_sum({task: losses[task] for task in self.tasks}, self.weights())

    def weights(self) -> dict[str, float]:
        return {task: 1.0 for task in self.tasks}


class UncertaintyWeightingParams(WeightingParams):
    """Knobs of the uncertainty weighting.

    Attributes:
        log_variance_init: initial ``s_t = log sigma_t^2`` of every task.
    """

    log_variance_init: float = 0.0


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(TaskWeighting):
    """Homoscedastic uncertainty weighting (Kendall et al., "Multi-Task Learning Using
    Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018).

    Learns ``s_t = log sigma_t^2`` per task; the loss is ``sum_t exp(-s_t) L_t + s_t``.
    That is twice the paper's regression form ``L_t / (2 sigma_t^2) + log sigma_t`` (same
    minimiser, the common implementation for regression and classification alike).
    ``weights()`` reports ``exp(-s_t)``. The trainer adds :meth:`parameters` to its
    optimizer.
    """

    Params: ClassVar[type[WeightingParams]] = UncertaintyWeightingParams

    def __init__(self, params: WeightingParams | None = None) -> None:
        super().__init__(params)
        self.log_variances: dict[str, nn.Parameter] = {}

    def attach(self, tasks: tuple[str, ...], total_iterations: int) -> None:
        super().attach(tasks, total_iterations)
        assert isinstance(self.params, UncertaintyWeightingParams)
        init = self.params.log_variance_init
        self.log_variances = {task: nn.Parameter(torch.tensor(float(init))) for task in self.tasks}

    def parameters(self) -> list[nn.Parameter]:
        return list(self.log_variances.values())

    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        check_losses(self, losses)
        terms = []
        for task in self.tasks:
            loss = losses[task]
            log_variance = self.log_variances[task].to(device=loss.device, dtype=loss.dtype)
            terms.append(torch.exp(-log_variance) * loss + log_variance)
        return torch.stack(terms).sum()

    def weights(self) -> dict[str, float]:
        return {task: math.exp(-float(s.detach())) for task, s in self.log_variances.items()}


class DWAParams(WeightingParams):
    """Knobs of dynamic weight average.

    Attributes:
        temperature: softmax temperature (2.0 in the paper).
        window: iterations standing in for an "epoch" (``None``: 2.5% of the budget,
            at least 5).
    """

    temperature: float = Field(2.0, gt=0)
    window: int | None = Field(None, gt=0)


@WEIGHTINGS.register("dwa")
class DWAWeighting(TaskWeighting):
    """Dynamic weight average (Liu et al., "End-to-End Multi-Task Learning with Attention",
    CVPR 2019, MTAN).

    ``w_t = T * softmax_t(ratio_t / temperature)`` with ``ratio_t = L_t(i-1) / L_t(i-2)``.
    Epoch-free variant: ``L_t(i-1)`` is the mean loss of the last ``window`` iterations
    and ``L_t(i-2)`` the mean of the ``window`` before those (sliding, current iteration
    excluded), so a task whose loss falls more slowly (ratio nearer 1) weighs more.
    Weights are 1 until two full windows have been seen.
    """

    Params: ClassVar[type[WeightingParams]] = DWAParams

    def __init__(self, params: WeightingParams | None = None) -> None:
        super().__init__(params)
        self.window = 0
        self._history: dict[str, deque[float]] = {}
        self._weights: dict[str, float] = {}

    def attach(self, tasks: tuple[str, ...], total_iterations: int) -> None:
        super().attach(tasks, total_iterations)
        assert isinstance(self.params, DWAParams)
        self.window = resolve_window(self.params.window, total_iterations)
        self._history = {task: deque(maxlen=2 * self.window) for task in self.tasks}
        self._weights = {task: 1.0 for task in self.tasks}

    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        check_losses(self, losses)
        assert isinstance(self.params, DWAParams)
        if all(len(self._history[task]) == 2 * self.window for task in self.tasks):
            ratios = []
            for task in self.tasks:
                values = list(self._history[task])
                older = sum(values[: self.window]) / self.window
                recent = sum(values[self.window :]) / self.window
                ratios.append(recent / max(older, EPSILON))
            logits = torch.tensor(ratios, dtype=torch.float64) / self.params.temperature
            scaled = (len(self.tasks) * torch.softmax(logits, dim=0)).tolist()
            self._weights = dict(zip(self.tasks, scaled, strict=True))
        else:
            self._weights = {task: 1.0 for task in self.tasks}
        for task, value in loss_values(losses, self.tasks).items():
            if math.isfinite(value):
                self._history[task].append(value)
        return weighted_sum({task: losses[task] for task in self.tasks}, self._weights)

    def weights(self) -> dict[str, float]:
        return dict(self._weights) if self._weights else {task: 1.0 for task in self.tasks}
