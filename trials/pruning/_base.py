"""The weight-pruner contract shared by AdapMTL and every baseline."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from trials._calibration import DEFAULT_CALIBRATION, Calibrated
from trials.registry import Registry

#: Layer types whose ``weight`` is prunable (biases and norm layers never are).
PRUNABLE_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class PrunerParams(Calibrated, BaseModel):
    """Typed hyperparameters of a pruner; subclasses add their own knobs.

    Defaults are the method's reference code's; ``presets`` (see :mod:`trials._calibration`)
    name other sets of defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_sparsity: float = Field(0.9, ge=0.0, lt=1.0)

    def check_tasks(self, tasks: tuple[str, ...]) -> None:
        """Raises ``ValueError`` if a parameter names a task the data set does not have."""


@dataclass
class PruningContext:
    """What the trainer gives a pruner when it attaches.

    Attributes:
        total_iterations: the trial's training budget in optimizer steps.
        tasks: task names in model order.
        draw_batch: returns a fresh training batch (already on the model's device).
        task_losses: ``(model, batch) -> {task: scalar loss}``, differentiable.
        seed: the trial's seed, for pruners that draw random masks.
        next_batch: the batch the next training iteration will use (drawn now if needed,
            then trained on: it does not change the sequence of training batches); None
            when the caller trains on no fixed sequence.
    """

    total_iterations: int
    tasks: tuple[str, ...]
    draw_batch: Callable[[], dict[str, torch.Tensor]]
    task_losses: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    seed: int = 0
    next_batch: Callable[[], dict[str, torch.Tensor]] | None = None


@dataclass(frozen=True)
class SparsityReport:
    """Fractions of exactly-zero prunable weights, overall and per component.

    ``overall`` is weighted by parameter count: ``zeros / total`` over all components.
    """

    overall: float
    components: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def prunable_parameters(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yields ``(qualified_name, layer)`` for every layer whose ``weight`` is prunable."""
    for name, layer in module.named_modules():
        if isinstance(layer, PRUNABLE_LAYERS):
            yield name, layer


def measure_sparsity(components: dict[str, nn.Module]) -> SparsityReport:
    """Counts exact zeros of the effective prunable weights of each component."""
    fractions: dict[str, float] = {}
    counts: dict[str, int] = {}
    total_zeros = 0
    total = 0
    with torch.no_grad():
        for name, component in components.items():
            zeros = size = 0
            for _, layer in prunable_parameters(component):
                weight = layer.weight  # effective weight, also under a parametrization
                zeros += int((weight == 0).sum())
                size += weight.numel()
            fractions[name] = zeros / size if size else 0.0
            counts[name] = size
            total_zeros += zeros
            total += size
    return SparsityReport(total_zeros / total if total else 0.0, fractions, counts)


class WeightPruner(abc.ABC):
    """Makes a multi-task model sparse during training.

    Lifecycle, driven by the trainer:
        1. ``attach(model, context)`` once, before the optimizer exists (may reparametrize
           weights, score connections on a few batches, or draw masks).
        2. ``optimizer_groups(base_lr, weight_decay)`` builds the optimizer's param groups
           (the default: every model parameter in one group).
        3. Each iteration: forward/backward, ``before_step(i)`` (may edit gradients),
           ``optimizer.step()``, ``after_step(i)`` (may apply masks, run schedules; ``i``
           counts from 0 to ``total_iterations - 1``).
        4. ``sparsity()`` at any time; ``thresholds()`` where the method learns them.
        5. ``finalize()`` returns the model with plain weights holding exact zeros (no
           parametrizations, no masks); the pruner is not used afterwards.
    Before all this, when the trial is built, ``weighting_params()`` gives the knobs the
    pruner hands to its ``default_weighting``. Subclasses declare ``Params`` (their typed
    knobs) and cite their paper.
    """

    Params: ClassVar[type[PrunerParams]] = PrunerParams
    #: Task weighting used when the trial does not choose one.
    default_weighting: ClassVar[str] = "equal"

    def __init__(self, params: PrunerParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.model: nn.Module | None = None
        self.context: PruningContext | None = None

    def attach(self, model: nn.Module, context: PruningContext) -> None:
        """Binds the pruner to ``model``; subclasses call ``super().attach`` first."""
        self.model = model
        self.context = context

    def optimizer_groups(self, base_lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer param groups; override to give some parameters their own settings."""
        return [
            {
                "params": list(self._model().parameters()),
                "lr": base_lr,
                "weight_decay": weight_decay,
            }
        ]

    def before_step(self, iteration: int) -> None:
        """Called after ``backward`` and before ``optimizer.step``."""

    def after_step(self, iteration: int) -> None:
        """Called after ``optimizer.step``."""

    def sparsity(self) -> SparsityReport:
        """Exact-zero fraction of the effective prunable weights."""
        return measure_sparsity(self._model().components())  # type: ignore[operator]

    def thresholds(self) -> dict[str, float]:
        """Learned thresholds (``sigmoid(s)``) by component or layer; empty if none."""
        return {}

    def weighting_params(self, weighting: str | None = None) -> dict[str, Any]:
        """Parameters this pruner hands to task weighting ``weighting`` (default: its
        ``default_weighting``); the trial's own ``weighting_params`` override them.

        The default is ``{}``; a method that searches a weighting's knobs together with its
        own (AdapMTL's temperature) returns them for that weighting only.
        """
        return {}

    @abc.abstractmethod
    def finalize(self) -> nn.Module:
        """The model with plain weights holding exact zeros."""

    def _model(self) -> nn.Module:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a model")
        return self.model


PRUNERS: Registry = Registry("method", plugins=__package__)
"""``WeightPruner`` subclasses by method name. Every module of :mod:`trials.pruning` is
imported on the first lookup: a new pruner is its module plus its search space."""


def build_pruner(
    method: str, calibration: str = DEFAULT_CALIBRATION, **params: Any
) -> WeightPruner:
    """Instantiates method ``method`` with its typed, validated ``params`` (on top of the
    defaults of ``calibration``)."""
    cls = PRUNERS.get(method)
    return cls(cls.Params.calibrated(calibration, **params))
