"""Binary-mask machinery shared by the mask-based baseline weight pruners."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar

import torch
from torch import nn

from trials.pruning._base import PrunerParams, PruningContext, WeightPruner, prunable_parameters


def keep_count(size: int, sparsity: float) -> int:
    """How many of ``size`` weights survive at ``sparsity`` (rounded to the nearest)."""
    return min(size, max(0, round((1.0 - sparsity) * size)))


def global_topk(scores: Mapping[str, torch.Tensor], keep: int) -> dict[str, torch.Tensor]:
    """Boolean masks keeping exactly the ``keep`` highest scores over all tensors.

    Ties are broken by position (a stable sort), so the count is exact and the result
    deterministic.

    Args:
        scores: layer name -> score tensor (any shape).
        keep: number of entries to keep over all tensors together.
    """
    names = list(scores)
    flat = torch.cat([scores[name].detach().reshape(-1).float().cpu() for name in names])
    if not 0 <= keep <= flat.numel():
        raise ValueError(f"keep must be between 0 and {flat.numel()} but got {keep}")
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    order = torch.argsort(flat, descending=True, stable=True)
    chosen[order[:keep]] = True
    masks: dict[str, torch.Tensor] = {}
    start = 0
    for name in names:
        tensor = scores[name]
        size = tensor.numel()
        masks[name] = chosen[start : start + size].view(tensor.shape).to(tensor.device)
        start += size
    return masks


def layerwise_topk(
    scores: Mapping[str, torch.Tensor], sparsity: float | Mapping[str, float]
) -> dict[str, torch.Tensor]:
    """Per-layer masks keeping each layer's highest scores.

    Args:
        scores: layer name -> score tensor.
        sparsity: one sparsity for every layer (layer-wise uniform) or one per layer.
    """
    masks: dict[str, torch.Tensor] = {}
    for name, score in scores.items():
        layer_sparsity = sparsity if isinstance(sparsity, float | int) else sparsity[name]
        keep = keep_count(score.numel(), float(layer_sparsity))
        masks[name] = global_topk({name: score}, keep)[name]
    return masks


class MaskedPruner(WeightPruner):
    """A weight pruner that keeps one binary mask per prunable layer weight.

    Masks are keyed by the layer's qualified name in the model (``backbone.0``,
    ``heads.depth.1``). Weights are plain parameters throughout: masked entries are
    zeroed in place after every optimizer step (so optimizer momentum cannot bring them
    back) and their gradients are zeroed before the step. ``finalize`` applies the masks
    and returns the model as is.

    Subclasses decide the masks: at ``attach`` (``_initial_masks``), during training
    (``update_masks``), and what ``finalize`` still owes the schedule
    (``_complete_schedule``). Sparsity is always counted over every prunable weight of
    every component (parameter-weighted), as the contract's ``sparsity()`` does.
    """

    Params: ClassVar[type[PrunerParams]] = PrunerParams

    def __init__(self, params: PrunerParams | None = None) -> None:
        if params is not None and not isinstance(params, self.Params):
            raise TypeError(
                f"{type(self).__name__} needs {self.Params.__name__} params "
                f"but got {type(params).__name__}"
            )
        super().__init__(params)
        self.masks: dict[str, torch.Tensor] = {}
        self.layers: dict[str, nn.Module] = {}
        self.component_of: dict[str, str] = {}
        self._weights: dict[str, torch.Tensor] = {}

    # -- lifecycle -------------------------------------------------------------------
    def attach(self, model: nn.Module, context: PruningContext) -> None:
        """Collects the prunable layers by component and draws the initial masks."""
        super().attach(model, context)
        components = getattr(model, "components", None)
        if not callable(components):
            raise TypeError(
                f"{type(self).__name__} needs a MultiTaskModel with components() "
                f"but got {type(model).__name__}"
            )
        qualified = {id(module): name for name, module in model.named_modules()}
        self.layers = {}
        self.component_of = {}
        self._weights = {}
        for component_name, component in components().items():
            for _, layer in prunable_parameters(component):
                name = qualified[id(layer)]
                weight = layer.weight
                if name in self.layers:
                    continue
                if not isinstance(weight, nn.Parameter):
                    raise ValueError(
                        f"{type(self).__name__} needs plain weights but layer {name!r} has a "
                        f"{type(weight).__name__} weight (a parametrization?)"
                    )
                self.layers[name] = layer
                self.component_of[name] = component_name
                self._weights[name] = weight
        self.masks = {
            name: torch.ones_like(weight, dtype=torch.bool)
            for name, weight in self._weights.items()
        }
        initial = self._initial_masks()
        if initial is not None:
            self.set_masks(initial)

    def before_step(self, iteration: int) -> None:
        """Zeroes the gradients of masked weights."""
        for name, weight in self._weights.items():
            grad = weight.grad
            if grad is not None:
                grad.masked_fill_(~self.masks[name], 0.0)

    def after_step(self, iteration: int) -> None:
        """Runs the mask schedule, then zeroes every masked weight."""
        self.update_masks(iteration)
        self.apply_masks()

    def finalize(self) -> nn.Module:
        """Completes the schedule, applies the masks and returns the plain model."""
        self._complete_schedule()
        self.apply_masks()
        return self._model()

    # -- hooks for subclasses ------------------------------------------------------------
    def _initial_masks(self) -> dict[str, torch.Tensor] | None:
        """Masks to start from (``None`` keeps everything)."""
        return None

    def update_masks(self, iteration: int) -> None:
        """Changes masks after optimizer step ``iteration`` (default: never)."""

    def _complete_schedule(self) -> None:
        """Reaches the final target if training stopped before the schedule did."""

    # -- helpers ---------------------------------------------------------------------
    @property
    def target_sparsity(self) -> float:
        return float(self.params.target_sparsity)

    def set_masks(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replaces the masks of the named layers and zeroes what they drop."""
        for name, mask in masks.items():
            weight = self._weights[name]
            if mask.shape != weight.shape:
                raise ValueError(
                    f"mask for layer {name!r} must have shape {tuple(weight.shape)} "
                    f"but got {tuple(mask.shape)}"
                )
            self.masks[name] = mask.to(device=weight.device, dtype=torch.bool)
        self.apply_masks()

    def apply_masks(self) -> None:
        """Zeroes every masked weight in place."""
        with torch.no_grad():
            for name, weight in self._weights.items():
                weight.masked_fill_(~self.masks[name], 0.0)

    def weights(self, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Layer name -> weight parameter, for ``names`` or every prunable layer."""
        if names is None:
            return dict(self._weights)
        return {name: self._weights[name] for name in names}

    def layer_names(self, component: str | None = None) -> list[str]:
        """Prunable layer names in model order, optionally of one component."""
        return [n for n in self.layers if component is None or self.component_of[n] == component]

    def total_weights(self) -> int:
        """Number of prunable weights over all components."""
        return sum(weight.numel() for weight in self._weights.values())

    def mask_density(self) -> float:
        """Fraction of prunable weights the masks keep."""
        kept = sum(int(mask.sum()) for mask in self.masks.values())
        total = self.total_weights()
        return kept / total if total else 1.0

    def prune_global_magnitude(self, sparsity: float) -> None:
        """Global magnitude pruning to ``sparsity``; pruned weights never come back."""
        alive = sum(int(mask.sum()) for mask in self.masks.values())
        keep = min(alive, keep_count(self.total_weights(), sparsity))
        if keep == alive:
            return
        scores = {
            name: torch.where(self.masks[name], weight.detach().abs(), -1.0)
            for name, weight in self._weights.items()
        }
        self.set_masks(global_topk(scores, keep))

    @contextlib.contextmanager
    def scoring_pass(self) -> Iterator[None]:
        """Restores the model's buffers (norm running statistics) after scoring passes."""
        model = self._model()
        saved = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
        try:
            yield
        finally:
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(saved[name])

    def task_gradients(
        self,
        batch: dict[str, torch.Tensor],
        names: Mapping[str, list[str]],
        model: nn.Module | None = None,
        weights: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Per-task weight gradients on ``batch``, from one forward pass.

        One forward and one ``autograd.grad`` per task equals one forward per task (what
        DiSparse's reference does) as long as the forward is deterministic: norm layers in
        train mode use the same batch statistics each time; dropout would draw new masks.

        Args:
            batch: a training batch from ``context.draw_batch()``.
            names: task -> layer names whose weight gradient that task needs.
            model: the network to differentiate (default: the attached model), e.g. a
                re-initialised copy of it.
            weights: layer name -> that network's weight tensors (default: the attached
                model's prunable weights).

        Returns:
            task -> layer name -> ``dL_task / dW`` (zeros where the loss does not reach).
        """
        context = self._context()
        model = self._model() if model is None else model
        weights = self._weights if weights is None else weights
        losses = context.task_losses(model, batch)
        grads: dict[str, dict[str, torch.Tensor]] = {}
        tasks = list(names)
        for position, task in enumerate(tasks):
            layer_weights = [weights[n] for n in names[task]]
            found = torch.autograd.grad(
                losses[task],
                layer_weights,
                retain_graph=position < len(tasks) - 1,
                allow_unused=True,
            )
            grads[task] = {
                n: torch.zeros_like(w) if g is None else g.detach()
                for n, w, g in zip(names[task], layer_weights, found, strict=True)
            }
        return grads

    def _context(self) -> PruningContext:
        if self.context is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a model")
        return self.context


def erk_densities(
    shapes: Mapping[str, tuple[int, ...] | torch.Size], density: float, power: float = 1.0
) -> dict[str, float]:
    """Erdős–Rényi-Kernel layer densities (Evci et al., ICML 2020, "Rigging the Lottery").

    Each layer's density is proportional to ``(sum(shape) / prod(shape)) ** power``,
    scaled so that the parameter-weighted mean density equals ``density``; while the
    largest of them would exceed 1, the layers with that largest raw value are made dense
    and the rest rescaled. ``power`` 1 is RigL's ERK; DiSparse's reference uses 0.9
    (``erk_power_scale``, DS dynamic_prune.py:80,154-157), which softens the differences.

    Args:
        shapes: layer name -> weight shape.
        density: overall fraction of weights to keep, in ``(0, 1]``.
        power: exponent of the raw Erdős–Rényi ratio (``>= 0``; 0 gives uniform).
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1] but got {density}")
    if not power >= 0.0:
        raise ValueError(f"power must be at least 0 but got {power}")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: (sum(shape) / sizes[name]) ** power for name, shape in shapes.items()}
    dense: set[str] = set()
    epsilon = 0.0
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        divisor = sum(raw[n] * sizes[n] for n in raw if n not in dense)
        if divisor == 0:
            break
        epsilon = budget / divisor
        over = [n for n in raw if n not in dense and raw[n] * epsilon > 1.0]
        if not over:
            break
        highest = max(raw[n] for n in over)
        dense.update(n for n in over if raw[n] == highest)
    return {name: 1.0 if name in dense else raw[name] * epsilon for name in shapes}
