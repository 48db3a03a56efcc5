"""One-shot global magnitude pruning (Han et al., "Learning both Weights and Connections for
Efficient Neural Networks", NeurIPS 2015) as a paretune weight pruner, with its search space.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from search_spaces import Float, SearchSpace
from trials.pruning import (
    PrunerParams,
    PruningContext,
    WeightPruner,
    global_topk,
    keep_count,
    prunable_parameters,
)


class OneShotParams(PrunerParams):
    """Knobs of the one-shot pruner: the target and when to prune."""

    prune_at: float = Field(0.5, gt=0.0, lt=1.0)


#: The search space of the one-shot pruner (its ``paretune.search_spaces`` entry point).
SPACE = SearchSpace(
    (
        Float("target_sparsity", 0.5, 0.95, default=0.8),
        Float("prune_at", 0.2, 0.8, default=0.5),
    ),
    "one-shot",
)


class OneShotMagnitudePruner(WeightPruner):
    """One-shot global magnitude pruning: after ``prune_at`` of the budget, the smallest
    weights over all components are cut to the target and stay cut.

    ``search_space`` lets a study name this class as ``paretune_oneshot.pruner:
    OneShotMagnitudePruner`` without any entry point.
    """

    Params: ClassVar[type[PrunerParams]] = OneShotParams
    search_space: ClassVar[SearchSpace] = SPACE

    def attach(self, model: nn.Module, context: PruningContext) -> None:
        super().attach(model, context)
        params = self.params
        assert isinstance(params, OneShotParams)
        self.prune_after = max(1, round(params.prune_at * context.total_iterations))
        self.layers = {
            f"{component}/{name}": layer
            for component, module in model.components().items()  # type: ignore[operator]
            for name, layer in prunable_parameters(module)
        }
        self.masks: dict[str, torch.Tensor] = {}

    def before_step(self, iteration: int) -> None:
        for name, mask in self.masks.items():
            grad = self.layers[name].weight.grad
            if grad is not None:
                grad.mul_(mask)

    def after_step(self, iteration: int) -> None:
        if not self.masks and iteration + 1 >= self.prune_after:
            scores = {name: layer.weight.detach().abs() for name, layer in self.layers.items()}
            size = sum(score.numel() for score in scores.values())
            target = self.params.target_sparsity
            self.masks = global_topk(scores, keep_count(size, target))
        self._apply_masks()

    def finalize(self) -> nn.Module:
        self._apply_masks()
        return self._model()

    def _apply_masks(self) -> None:
        with torch.no_grad():
            for name, mask in self.masks.items():
                self.layers[name].weight.mul_(mask)


class LonelyPruner(OneShotMagnitudePruner):
    """The one-shot pruner once more, published without a search space."""

    search_space: ClassVar[None] = None  # type: ignore[assignment]
