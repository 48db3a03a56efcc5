"""AdapMTL's adaptive task weighting, driven by how much each task's loss moves.

Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning Model",
ACM Multimedia 2024.
"""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

import torch
from pydantic import Field

from trials.weighting._base import WEIGHTINGS, TaskWeighting, WeightingParams

#: Floor for losses and robustness values (guards divisions and ``log(0)``).
EPSILON = 1e-12
#: Default window as a fraction of the budget (the reference: 500 of 20000 iterations).
DEFAULT_WINDOW_FRACTION = 0.025
#: Smallest default window.
MIN_WINDOW = 5


def resolve_window(window: int | None, total_iterations: int) -> int:
    """``window`` itself, or 2.5% of ``total_iterations`` (at least 5) when ``None``."""
    if window is not None:
        return window
    return max(MIN_WINDOW, round(DEFAULT_WINDOW_FRACTION * total_iterations))


def tempered_normalization(scores: list[float], temperature: float) -> list[float]:
    """``T * s_t^(1/tau) / sum_j s_j^(1/tau)`` computed as ``T * softmax(log(s) / tau)``.

    Scores below :data:`EPSILON` count as :data:`EPSILON`; the result sums to ``T``.
    """
    logits = torch.tensor(
        [math.log(max(score, EPSILON)) / temperature for score in scores], dtype=torch.float64
    )
    return (len(scores) * torch.softmax(logits, dim=0)).tolist()


def check_losses(weighting: TaskWeighting, losses: dict[str, torch.Tensor]) -> None:
    if not weighting.tasks:
        raise RuntimeError(f"{type(weighting).__name__} is not attached; call attach() first")
    missing = [task for task in weighting.tasks if task not in losses]
    if missing:
        raise ValueError(
            f"losses lack task {missing[0]!r}; expected tasks: {', '.join(weighting.tasks)}"
        )


def loss_values(losses: dict[str, torch.Tensor], tasks: tuple[str, ...]) -> dict[str, float]:
    """Detached loss values as floats (one device synchronisation for all tasks)."""
    values = torch.stack([losses[task].detach() for task in tasks]).cpu().double().tolist()
    return dict(zip(tasks, values, strict=True))


def weighted_sum(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``sum_t w_t * L_t`` with the weights as constants."""
    return torch.stack([weights[task] * losses[task] for task in weights]).sum()


class AdaptiveWeightingParams(WeightingParams):
    """Knobs of the adaptive weighting.

    Attributes:
        temperature: ``tau`` in ``w_t ∝ r_t^(1/tau)``; 1 is the paper, larger is flatter
            (``tau -> inf`` gives equal weights), smaller concentrates on the least robust
            task.
        window: iterations averaged by the sliding robustness window (``None``: 2.5% of
            the budget, at least 5).
        start_fraction: weights are 1 before ``start_fraction * total_iterations``.
    """

    temperature: float = Field(1.0, gt=0)
    window: int | None = Field(None, gt=0)
    start_fraction: float = Field(0.25, ge=0, le=1)


@WEIGHTINGS.register("adaptive")
class AdaptiveWeighting(TaskWeighting):
    """AdapMTL's adaptive weighting (Xiang et al., ACM MM 2024).

    Each iteration the (detached) task losses give a robustness sample
    ``d_t(i) = |L_t(i-1) - L_t(i)| / L_t(i)``; ``r_t`` is its mean over the last
    ``window`` iterations. From ``start_fraction`` of the budget on, the loss is
    ``sum_t w_t L_t`` with ``w_t = T * r_t^(1/tau) / sum_j r_j^(1/tau)`` (``T`` tasks,
    ``tau = 1`` is the paper's ``T * r_t / sum_j r_j``): a task whose loss moves more,
    i.e. one less robust to pruning, gets more weight. Before that all weights are 1.
    The current iteration's sample is included in the window. Non-finite losses are not
    recorded (the next finite loss starts a new difference).
    """

    Params: ClassVar[type[WeightingParams]] = AdaptiveWeightingParams

    def __init__(self, params: WeightingParams | None = None) -> None:
        super().__init__(params)
        self._previous: dict[str, float | None] = {}
        self._history: dict[str, deque[float]] = {}
        self._weights: dict[str, float] = {}

    def attach(self, tasks: tuple[str, ...], total_iterations: int) -> None:
        super().attach(tasks, total_iterations)
        params = self._params()
        window = resolve_window(params.window, total_iterations)
        self._previous = {task: None for task in self.tasks}
        self._history = {task: deque(maxlen=window) for task in self.tasks}
        self._weights = {task: 1.0 for task in self.tasks}

    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        check_losses(self, losses)
        self.record(loss_values(losses, self.tasks))
        params = self._params()
        started = iteration >= params.start_fraction * self.total_iterations
        if started and all(self._history[task] for task in self.tasks):
            self._weights = dict(
                zip(
                    self.tasks,
                    tempered_normalization(self.robustness(), params.temperature),
                    strict=True,
                )
            )
        else:
            self._weights = {task: 1.0 for task in self.tasks}
        return weighted_sum({task: losses[task] for task in self.tasks}, self._weights)

    def record(self, values: dict[str, float]) -> None:
        """Adds one iteration's loss values to the robustness windows."""
        for task in self.tasks:
            current = values[task]
            if not math.isfinite(current):
                self._previous[task] = None
                continue
            previous = self._previous[task]
            if previous is not None:
                self._history[task].append(abs(previous - current) / max(abs(current), EPSILON))
            self._previous[task] = current

    def robustness(self) -> list[float]:
        """``r_t``: mean of the windowed samples per task, in task order (0 if none)."""
        return [
            sum(self._history[task]) / len(self._history[task]) if self._history[task] else 0.0
            for task in self.tasks
        ]

    def weights(self) -> dict[str, float]:
        return dict(self._weights) if self._weights else {task: 1.0 for task in self.tasks}

    def _params(self) -> AdaptiveWeightingParams:
        assert isinstance(self.params, AdaptiveWeightingParams)
        return self.params
