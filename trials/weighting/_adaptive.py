"""AdapMTL's adaptive task weighting, driven by how much each task's loss moves.

Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning Model",
ACM Multimedia 2024.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

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


def tempered_normalization(
    scores: list[float], temperature: float, weight_sum: float | None = None
) -> list[float]:
    """``N * s_t^(1/tau) / sum_j s_j^(1/tau)``, with ``N = weight_sum`` or the number of scores.

    At ``tau = 1`` this is the reference arithmetic ``s_t * N / sum_j s_j`` (AdapMTL
    ``main/trainer.py:148-150``, bit for bit); other temperatures compute
    ``N * softmax(log(s) / tau)`` (stable for small ``tau``). Scores below
    :data:`EPSILON` count as :data:`EPSILON`; the result sums to ``N``.
    """
    floored = [max(score, EPSILON) for score in scores]
    norm = float(len(scores)) if weight_sum is None else weight_sum
    if temperature == 1.0:
        total = sum(floored)
        return [score * norm / total for score in floored]
    logits = torch.tensor([math.log(score) / temperature for score in floored], dtype=torch.float64)
    return (norm * torch.softmax(logits, dim=0)).tolist()


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


#: Knob values of the adaptive weighting before reference defaults (``short-budget``):
#: samples from the first iteration on, adaptive weights from the start iteration on.
SHORT_BUDGET_ADAPTIVE: dict[str, Any] = {"record_from": "first-iteration", "adapt_after": "start"}


class AdaptiveWeightingKnobs(BaseModel):
    """The adaptive weighting's knobs, shared by its params and by AdapMTL's pruners.

    The defaults are AdapMTL's reference code (MitchellX/AdapMTL
    ``main/trainer.py:54-58,125-156``: begin 5000 and window 500 of 20000 iterations,
    here as fractions of the budget; the first sample at begin + 1; the weights change at
    begin + window + 1), except that the weights sum to the number of tasks (the
    reference's hard-coded 3 only for 3 tasks; ``weight_sum=3`` for the literal).

    Attributes:
        temperature: ``tau`` in ``w_t ∝ r_t^(1/tau)``; 1 is the paper and the reference
            code, larger is flatter (``tau -> inf`` gives equal weights), smaller
            concentrates on the least robust task.
        window: samples averaged by the sliding robustness window (``None``: 2.5% of the
            budget, at least 5; the reference: 500 of 20000).
        start_fraction: the adaptive phase starts at ``start_fraction * total_iterations``
            (the reference: 5000 of 20000).
        record_from: when robustness samples are recorded. ``"start"`` (the reference):
            from the start iteration on; the previous loss is first kept there, so the
            first sample is at start + 1 and the window holds only samples from the
            adaptive phase. ``"first-iteration"`` (``short-budget``): from iteration 1
            on, so the window is already full of pre-start samples at the start.
        adapt_after: when the weights first change. ``"full-window"`` (the reference):
            once every task has recorded more than ``window`` samples (the reference's
            ``len > sliding_window`` then ``pop``), i.e. at start + window + 1 with
            ``record_from="start"``. ``"start"`` (``short-budget``): at the start
            iteration, as soon as every task has a sample.
        weight_sum: what the weights sum to. ``None`` (default): the number of tasks
            ``T``, which is the reference's hard-coded 3 for its 3 NYUv2 tasks. ``3.0`` is
            the reference literally for any ``T``: with 5 tasks its weights are 0.6 each
            before the change and sum to 3 after it. Before the change every weight is
            ``weight_sum / T`` (1 by default).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(1.0, gt=0)
    window: int | None = Field(None, gt=0)
    start_fraction: float = Field(0.25, ge=0, le=1)
    record_from: Literal["start", "first-iteration"] = "start"
    adapt_after: Literal["full-window", "start"] = "full-window"
    weight_sum: float | None = Field(None, gt=0)


class AdaptiveWeightingParams(AdaptiveWeightingKnobs, WeightingParams):
    """Knobs of the adaptive weighting (see :class:`AdaptiveWeightingKnobs`).

    ``short-budget`` restores :data:`SHORT_BUDGET_ADAPTIVE`.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {"short-budget": SHORT_BUDGET_ADAPTIVE}


@WEIGHTINGS.register("adaptive")
class AdaptiveWeighting(TaskWeighting):
    """AdapMTL's adaptive weighting (Xiang et al., ACM MM 2024).

    Each iteration the (detached) task losses give a robustness sample
    ``d_t(i) = |L_t(i-1) - L_t(i)| / L_t(i)``; ``r_t`` is its mean over the last
    ``window`` samples. In the adaptive phase the loss is ``sum_t w_t L_t`` with
    ``w_t = N * r_t^(1/tau) / sum_j r_j^(1/tau)`` (``N`` = ``weight_sum``, by default the
    number of tasks ``T``; ``tau = 1`` is the paper's ``T * r_t / sum_j r_j``): a task
    whose loss moves more, i.e. one less robust to pruning, gets more weight. Before that
    every weight is ``N / T`` (1 by default). The current iteration's sample is included
    in the window. When samples start and when the weights first change follow the
    reference by default (``record_from``, ``adapt_after``). Non-finite losses are not
    recorded (the next finite loss starts a new difference).
    """

    Params: ClassVar[type[WeightingParams]] = AdaptiveWeightingParams

    def __init__(self, params: WeightingParams | None = None) -> None:
        super().__init__(params)
        self._previous: dict[str, float | None] = {}
        self._history: dict[str, deque[float]] = {}
        self._recorded: dict[str, int] = {}
        self._window = 0
        self._weights: dict[str, float] = {}

    def attach(self, tasks: tuple[str, ...], total_iterations: int) -> None:
        super().attach(tasks, total_iterations)
        params = self._params()
        self._window = resolve_window(params.window, total_iterations)
        self._previous = {task: None for task in self.tasks}
        self._history = {task: deque(maxlen=self._window) for task in self.tasks}
        self._recorded = {task: 0 for task in self.tasks}
        self._weights = self._initial_weights()

    def combine(self, losses: dict[str, torch.Tensor], iteration: int) -> torch.Tensor:
        check_losses(self, losses)
        params = self._params()
        started = iteration >= params.start_fraction * self.total_iterations
        if started or params.record_from == "first-iteration":
            self.record(loss_values(losses, self.tasks))
        if started and self._ready():
            self._weights = dict(
                zip(
                    self.tasks,
                    tempered_normalization(
                        self.robustness(), params.temperature, params.weight_sum
                    ),
                    strict=True,
                )
            )
        else:
            self._weights = self._initial_weights()
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
                self._recorded[task] += 1
            self._previous[task] = current

    def robustness(self) -> list[float]:
        """``r_t``: mean of the windowed samples per task, in task order (0 if none)."""
        return [
            sum(self._history[task]) / len(self._history[task]) if self._history[task] else 0.0
            for task in self.tasks
        ]

    def weights(self) -> dict[str, float]:
        return dict(self._weights) if self._weights else self._initial_weights()

    def _ready(self) -> bool:
        """Whether every task has enough samples for adaptive weights."""
        if self._params().adapt_after == "full-window":
            return all(self._recorded[task] > self._window for task in self.tasks)
        return all(self._history[task] for task in self.tasks)

    def _initial_weights(self) -> dict[str, float]:
        weight_sum = self._params().weight_sum
        if weight_sum is None or not self.tasks:
            return {task: 1.0 for task in self.tasks}
        return {task: weight_sum / len(self.tasks) for task in self.tasks}

    def _params(self) -> AdaptiveWeightingParams:
        assert isinstance(self.params, AdaptiveWeightingParams)
        return self.params
