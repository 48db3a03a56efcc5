"""Soft-threshold reparameterization and the pruners built on it.

A prunable weight ``W`` is used as ``sign(W) * relu(|W| - sigmoid(s))`` with a learnable
scalar ``s`` (STR, Kusupati et al., "Soft Threshold Weight Reparameterization for
Learnable Sparsity", ICML 2020). Weights with ``|W| < sigmoid(s)`` are exactly zero and
gradients reach both ``W`` and ``s``. One ``s`` may be shared by many layers: the pruners
here differ only in how layers map to thresholds (one per layer for STR, one per component
for AdapMTL, one for the whole model for its ablation).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize

from trials.pruning._base import (
    PrunerParams,
    PruningContext,
    WeightPruner,
    prunable_parameters,
)

#: Sparsity may end this far below the target before the budget guard cuts more weights.
BUDGET_GUARD_SLACK = 0.015
#: Within this distance of the target, overall sparsity is recounted every iteration.
NEAR_TARGET = 0.05


class SoftThreshold(nn.Module):
    """Parametrization ``W -> sign(W) * relu(|W| - sigmoid(s))`` with a shared scalar ``s``.

    After :meth:`fix_mask` it becomes ``W -> mask * W``: the pattern of zeros is fixed and
    the surviving weights train as plain weights (used when the target is reached).

    Args:
        threshold: the scalar ``s``; the same Parameter object may be given to several
            layers, which then share one threshold (``model.parameters()`` lists it once).
    """

    mask: torch.Tensor | None

    def __init__(self, threshold: nn.Parameter) -> None:
        super().__init__()
        if threshold.dim() != 0:
            raise ValueError(
                f"threshold must be a scalar parameter; got shape {tuple(threshold.shape)}"
            )
        self.threshold = threshold
        self.register_buffer("mask", None)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.mask is not None:
            return weight * self.mask
        cut = torch.sigmoid(self.threshold).to(weight.dtype)
        return torch.sign(weight) * torch.relu(weight.abs() - cut)

    @torch.no_grad()
    def fix_mask(self, original: torch.Tensor) -> None:
        """Stores the current effective values in ``original`` and fixes their zero pattern.

        The effective weight is unchanged by the call; afterwards it no longer depends on
        the threshold.
        """
        if self.mask is not None:
            return
        effective = self(original)
        self.mask = (effective != 0).to(original.dtype)
        original.copy_(effective)


def soft_threshold_of(layer: nn.Module) -> SoftThreshold | None:
    """The :class:`SoftThreshold` on ``layer.weight``, or ``None``."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    for parametrization in _parametrizations(layer):
        if isinstance(parametrization, SoftThreshold):
            return parametrization
    return None


def apply_soft_threshold(layers: Iterable[nn.Module], threshold: nn.Parameter) -> int:
    """Reparametrizes ``weight`` of every layer in ``layers`` with the shared ``threshold``.

    Returns:
        The number of layers reparametrized.

    Raises:
        ValueError: a layer already carries a soft threshold.
    """
    count = 0
    for layer in layers:
        if soft_threshold_of(layer) is not None:
            raise ValueError(f"layer {layer!r} already has a soft threshold on its weight")
        parametrize.register_parametrization(layer, "weight", SoftThreshold(threshold))
        count += 1
    return count


def apply_soft_threshold_to_module(module: nn.Module, threshold: nn.Parameter) -> int:
    """Reparametrizes every prunable layer (conv/linear) of ``module`` with ``threshold``."""
    return apply_soft_threshold((layer for _, layer in prunable_parameters(module)), threshold)


def remove_soft_thresholds(module: nn.Module) -> int:
    """Removes every soft threshold under ``module``, keeping the effective weights.

    Afterwards each layer's ``weight`` is a plain Parameter holding its effective value
    (``sign(W) * relu(|W| - sigmoid(s))``, or ``mask * W`` once fixed) with its exact
    zeros. Any other parametrization of the same weight is baked in as well.

    Returns:
        The number of layers changed.
    """
    layers = [layer for layer in module.modules() if soft_threshold_of(layer) is not None]
    for layer in layers:
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return len(layers)


def _parametrizations(layer: nn.Module) -> nn.ModuleList:
    """The parametrization list of ``layer.weight`` (a ``ParametrizationList``)."""
    return cast(nn.ModuleDict, layer.parametrizations)["weight"]  # type: ignore[return-value]


def _original_weight(layer: nn.Module) -> torch.Tensor:
    return cast(torch.Tensor, _parametrizations(layer).original)


def _weight(layer: nn.Module) -> torch.Tensor:
    """The effective ``weight`` of a conv/linear layer."""
    return cast(torch.Tensor, layer.weight)


@dataclass
class ThresholdGroup:
    """Layers sharing one learnable threshold, and its initial value ``s_init``."""

    init: float
    layers: list[tuple[str, nn.Module]]


class SoftThresholdParams(PrunerParams):
    """Knobs common to every soft-threshold pruner.

    Attributes:
        threshold_lr: learning rate of the thresholds' own optimizer group (with Adam a
            threshold moves by about this much per step).
        sparsity_penalty: L2 weight decay on every parameter *and* every threshold; decay
            pulls a negative ``s`` towards 0, so ``sigmoid(s)`` grows and more weights are
            cut (the reference code has no other sparsity term). It replaces the trial's
            ``weight_decay``. The defaults (``threshold_lr`` 2e-2, penalty 1e-2) are set
            for budgets of a few hundred iterations: with the reference's 1e-4 the task
            gradient outweighs the decay and the backbone's threshold falls instead of
            rising. On the default trial (scenes-nyu, resnet-tiny, 500 iterations) a
            penalty of 1e-2 reaches 90% sparsity on its own, 5e-3 stops near 81% and
            leaves the rest to the budget guard, 2e-2 gets there after 30% of the budget.
        check_every: recount overall sparsity against the target every this many
            iterations while far from it (``None``: 1% of the budget); within
            5 percentage points of the target it is recounted every iteration.
        freeze: what reaching the target freezes. ``"mask"`` (default): the thresholds
            and the pattern of zeros; surviving weights keep training. ``"threshold"``:
            only the thresholds, as in the reference code; weights that later fall
            under their frozen threshold are still cut, and since a cut weight gets no
            gradient this only ever adds sparsity (at budgets of a few hundred Adam
            steps, tens of points past the target).
    """

    threshold_lr: float = Field(2e-2, gt=0)
    sparsity_penalty: float = Field(1e-2, ge=0)
    check_every: int | None = Field(None, gt=0)
    freeze: Literal["mask", "threshold"] = "mask"


class SoftThresholdPruner(WeightPruner):
    """Learns sparsity through soft thresholds shared by groups of layers.

    Subclasses say how prunable layers map to thresholds (:meth:`threshold_groups`).
    Behaviour shared by all of them:

    * **Optimizer groups**: all model weights (``lr = base_lr``) and the thresholds
      (``lr = threshold_lr``), both with ``weight_decay = sparsity_penalty`` and Adam
      ``betas = (0.5, 0.999)`` as in the AdapMTL reference code (SGD ignores ``betas``).
      The trial's own ``weight_decay`` is not used: the penalty is the decay.
    * **Target sparsity**: overall sparsity (parameter-count weighted) is recounted every
      ``check_every`` iterations, and every iteration once within 5 points of the target.
      When it reaches ``target_sparsity`` the thresholds freeze for the rest of training
      (no gradient, learning rate 0, values restored after each step so that neither the
      optimizer nor weight decay can move them); the weights keep training. With
      ``freeze="mask"`` (default) the pattern of zeros freezes too, settled exactly at the
      target: if the last step overshot, the weights cut last (closest under their
      thresholds) are kept with small values, as if every threshold had been lowered by
      one common amount. Thresholds initialised beyond the target freeze at attach time
      and are settled the same way. With ``freeze="threshold"`` nothing is settled and
      sparsity can keep growing (see :class:`SoftThresholdParams`).
    * **Budget guard**: after the last iteration (and again in :meth:`finalize`), if
      sparsity is more than 1.5 points below the target (a short budget that never got
      there), every threshold group is cut further until the target is met exactly: each
      group keeps the same fraction of its surviving weights, its smallest effective
      weights going first (as if its threshold were raised), so the learned balance
      between groups is kept and no group is emptied.
    """

    Params: ClassVar[type[PrunerParams]] = SoftThresholdParams
    #: Adam betas of both groups (AdapMTL's reference code).
    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)

    def __init__(self, params: PrunerParams | None = None) -> None:
        super().__init__(params)
        self._thresholds: dict[str, nn.Parameter] = {}
        self._layers: dict[str, list[nn.Module]] = {}
        self._frozen_values: dict[str, torch.Tensor] = {}
        self._threshold_group: dict[str, Any] | None = None
        self._frozen_at: int | None = None
        self._last_sparsity: float | None = None
        self._guarded = False
        self._finalized = False

    @property
    def soft_params(self) -> SoftThresholdParams:
        """The typed parameters."""
        assert isinstance(self.params, SoftThresholdParams)
        return self.params

    @abc.abstractmethod
    def threshold_groups(self, model: nn.Module) -> dict[str, ThresholdGroup]:
        """Maps each threshold's name to the layers it prunes and its initial value."""

    # -- lifecycle ----------------------------------------------------------------------
    def attach(self, model: nn.Module, context: PruningContext) -> None:
        """Creates the thresholds and reparametrizes every prunable weight.

        Thresholds initialised at or beyond the target freeze at once (and, with
        ``freeze="mask"``, are settled at the target).
        """
        if not callable(getattr(model, "components", None)):
            raise TypeError(
                f"{type(self).__name__} needs a multi-task model with components(); "
                f"got {type(model).__name__}"
            )
        super().attach(model, context)
        groups = {name: g for name, g in self.threshold_groups(model).items() if g.layers}
        if not groups:
            raise ValueError(f"{type(self).__name__}: the model has no prunable conv/linear layer")
        for name, group in groups.items():
            reference = _weight(group.layers[0][1])
            threshold = nn.Parameter(
                torch.tensor(float(group.init), dtype=reference.dtype, device=reference.device)
            )
            apply_soft_threshold((layer for _, layer in group.layers), threshold)
            self._thresholds[name] = threshold
            self._layers[name] = [layer for _, layer in group.layers]
        self._last_sparsity = self.sparsity().overall
        if self._last_sparsity >= self.soft_params.target_sparsity:
            self._freeze(-1)

    def optimizer_groups(self, base_lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Weights group and thresholds group; each parameter appears exactly once.

        ``weight_decay`` (the trial's) is not used: ``sparsity_penalty`` is the decay.
        """
        params = self.soft_params
        threshold_ids = {id(t) for t in self._thresholds.values()}
        seen: set[int] = set()
        weights: list[nn.Parameter] = []
        for parameter in self._model().parameters():
            if id(parameter) in threshold_ids or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            weights.append(parameter)
        self._threshold_group = {
            "params": list(self._thresholds.values()),
            "lr": 0.0 if self.frozen else params.threshold_lr,
            "weight_decay": params.sparsity_penalty,
            "betas": self.betas,
        }
        return [
            {
                "params": weights,
                "lr": base_lr,
                "weight_decay": params.sparsity_penalty,
                "betas": self.betas,
            },
            self._threshold_group,
        ]

    def before_step(self, iteration: int) -> None:
        """Drops the thresholds' gradients once they are frozen."""
        if self.frozen:
            for threshold in self._thresholds.values():
                threshold.grad = None

    def after_step(self, iteration: int) -> None:
        """Recounts sparsity when due, freezes at the target, guards the budget at the end."""
        if self.frozen:
            self._restore_frozen()
        else:
            params = self.soft_params
            near = (
                self._last_sparsity is not None
                and self._last_sparsity >= params.target_sparsity - NEAR_TARGET
            )
            if near or iteration % self._check_every() == 0:
                self._last_sparsity = self.sparsity().overall
                if self._last_sparsity >= params.target_sparsity:
                    self._freeze(iteration)
        total = self.context.total_iterations if self.context is not None else None
        if total is not None and iteration >= total - 1:
            self.enforce_budget()

    def thresholds(self) -> dict[str, float]:
        """``sigmoid(s)`` of every threshold by name (the last values after :meth:`finalize`)."""
        return {name: float(torch.sigmoid(t.detach())) for name, t in self._thresholds.items()}

    def finalize(self) -> nn.Module:
        """Applies the budget guard, then removes the parametrizations (exact zeros stay)."""
        model = self._model()
        if not self._finalized:
            self.enforce_budget()
            remove_soft_thresholds(model)
            self._finalized = True
        return model

    # -- helpers ------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """Whether the target was reached and the thresholds stopped learning."""
        return self._frozen_at is not None

    @property
    def frozen_at(self) -> int | None:
        """Iteration after which the thresholds froze (-1: at attach), or ``None``."""
        return self._frozen_at

    @property
    def sparsity_at_freeze(self) -> float | None:
        """Overall sparsity that triggered the freeze, before settling, or ``None``."""
        return self._last_sparsity if self.frozen else None

    @property
    def budget_guard_applied(self) -> bool:
        """Whether the budget guard had to cut weights."""
        return self._guarded

    def threshold_parameters(self) -> dict[str, nn.Parameter]:
        """The learnable scalars ``s`` by name (distinct objects)."""
        return dict(self._thresholds)

    def weighting_params(self, weighting: str | None = None) -> dict[str, Any]:
        """Knobs this pruner carries for task weighting ``weighting`` (default: its own).

        Empty unless a subclass searches the weighting's knobs together with its own.
        """
        return {}

    def enforce_budget(self) -> float:
        """The budget guard: cuts more weights if sparsity is far below the target.

        Returns:
            Overall sparsity afterwards.
        """
        target = self.soft_params.target_sparsity
        sparsity = self.sparsity().overall
        if self._finalized or sparsity >= target - BUDGET_GUARD_SLACK:
            return sparsity
        with torch.no_grad():
            effective = {
                name: [_weight(layer).detach().abs().flatten() for layer in layers]
                for name, layers in self._layers.items()
            }
            total = sum(flat.numel() for flats in effective.values() for flat in flats)
            alive = {
                name: sum(int((flat != 0).sum()) for flat in flats)
                for name, flats in effective.items()
            }
            keep = _proportional_keep(alive, math.floor((1.0 - target) * total + 1e-9))
            for name, layers in self._layers.items():
                cut = alive[name] - keep[name]
                if cut > 0:
                    _cut_smallest(layers, effective[name], cut)
                    self._guarded = True
        return self.sparsity().overall

    def _check_every(self) -> int:
        every = self.soft_params.check_every
        if every is not None:
            return every
        total = self.context.total_iterations if self.context is not None else 100
        return max(1, total // 100)

    def _freeze(self, iteration: int) -> None:
        self._frozen_at = iteration
        for name, threshold in self._thresholds.items():
            threshold.requires_grad_(False)
            threshold.grad = None
            self._frozen_values[name] = threshold.detach().clone()
        if self._threshold_group is not None:
            self._threshold_group["lr"] = 0.0
        if self.soft_params.freeze == "mask":
            self._fix_masks_at_target()

    def _fix_masks_at_target(self) -> None:
        """Fixes every zero pattern, keeping just enough weights to sit at the target.

        A step can carry sparsity past the target. The weights cut last lie just under
        their thresholds; the ones closest (largest ``|W| - sigmoid(s)``, over all groups)
        are kept, with the small values they would have if every threshold were lowered
        by the same amount, until sparsity equals the target.
        """
        layers = [
            (layer, parametrization)
            for group in self._layers.values()
            for layer in group
            if (parametrization := soft_threshold_of(layer)) is not None
            and parametrization.mask is None
        ]
        with torch.no_grad():
            originals = [_original_weight(layer).detach().flatten() for layer, _ in layers]
            margins = torch.cat(
                [
                    original.abs() - torch.sigmoid(parametrization.threshold).to(original.dtype)
                    for original, (_, parametrization) in zip(originals, layers, strict=True)
                ]
            )
            signs = torch.cat([torch.sign(original) for original in originals])
            zeros = int((margins <= 0).sum())
            allowed = math.ceil(self.soft_params.target_sparsity * margins.numel() - 1e-9)
            keep = zeros - allowed
            values = torch.zeros_like(margins)
            chosen = torch.zeros(margins.numel(), dtype=torch.bool, device=margins.device)
            if keep > 0:
                below = torch.where(margins <= 0, margins, torch.full_like(margins, -torch.inf))
                top = torch.topk(below, min(keep + 1, zeros))
                floor = top.values[keep] if keep < zeros else top.values[-1] - 1e-6
                chosen[top.indices[:keep]] = True
                values = signs * (margins - floor)
            offset = 0
            for (layer, parametrization), original in zip(layers, originals, strict=True):
                size = original.numel()
                parametrization.fix_mask(_original_weight(layer))
                assert parametrization.mask is not None
                revive = chosen[offset : offset + size].view_as(parametrization.mask)
                revived = values[offset : offset + size].view_as(parametrization.mask)
                _original_weight(layer).copy_(torch.where(revive, revived, _original_weight(layer)))
                parametrization.mask.copy_(
                    torch.where(
                        revive, (revived != 0).to(parametrization.mask.dtype), parametrization.mask
                    )
                )
                offset += size

    def _restore_frozen(self) -> None:
        with torch.no_grad():
            for name, threshold in self._thresholds.items():
                threshold.copy_(self._frozen_values[name])


def _proportional_keep(alive: dict[str, int], budget: int) -> dict[str, int]:
    """Splits ``budget`` surviving weights over groups in proportion to ``alive``.

    Largest-remainder rounding: the parts sum to ``min(budget, sum(alive))`` exactly.
    """
    total = sum(alive.values())
    if total <= budget:
        return dict(alive)
    shares = {name: count * budget / total for name, count in alive.items()}
    keep = {name: math.floor(share) for name, share in shares.items()}
    remainder = budget - sum(keep.values())
    for name in sorted(shares, key=lambda n: keep[n] - shares[n])[:remainder]:
        keep[name] += 1
    return keep


def _cut_smallest(layers: list[nn.Module], magnitudes: list[torch.Tensor], count: int) -> None:
    """Zeroes the ``count`` smallest non-zero effective weights over ``layers``."""
    flat = torch.cat(magnitudes)
    ranked = torch.where(flat == 0, torch.full_like(flat, torch.inf), flat)
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(ranked, count, largest=False).indices] = True
    offset = 0
    for layer, part in zip(layers, magnitudes, strict=True):
        mask = chosen[offset : offset + part.numel()].view_as(_weight(layer))
        offset += part.numel()
        parametrization = soft_threshold_of(layer)
        if parametrization is None:
            _weight(layer).masked_fill_(mask, 0.0)
            continue
        # A zero original stays zero under both forms: sign(0) * relu(-g) and mask * 0.
        _original_weight(layer).masked_fill_(mask, 0.0)
        if parametrization.mask is not None:
            parametrization.mask.masked_fill_(mask, 0.0)
