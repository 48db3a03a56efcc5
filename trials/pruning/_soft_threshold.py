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
from typing import Any, ClassVar, Literal, Self, cast

import numpy as np
import torch
from pydantic import Field, model_validator
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


#: Defaults of the soft-threshold knobs before reference defaults (``short-budget``): a
#: separate thresholds group at a fixed lr, a strong penalty, a periodic check after the
#: step with a permanent freeze that settles the zero pattern at the target, and the
#: budget guard. Measured to reach the target within a few hundred from-scratch steps.
SHORT_BUDGET_SOFT_THRESHOLD: dict[str, Any] = {
    "threshold_lr": 2e-2,
    "sparsity_penalty": 1e-2,
    "check": "periodic",
    "freeze": "mask",
    "budget_guard": True,
}


class SoftThresholdParams(PrunerParams):
    """Knobs common to every soft-threshold pruner.

    The defaults are AdapMTL's reference code (MitchellX/AdapMTL ``main/trainer.py:36``,
    ``:174-192``; ``args.py:14``): one Adam group for weights and thresholds with weight
    decay 1e-4 on all of them, and, every iteration before the optimizer step, the
    thresholds' gradients dropped for that step while overall sparsity is at or over the
    target. Only ``sparsity_count`` keeps paretune's exact count by default.
    ``short-budget`` restores :data:`SHORT_BUDGET_SOFT_THRESHOLD`.

    With Adam a threshold ``s`` moves by about its learning rate per step (the decay term
    ``wd * s`` has a constant sign, Adam normalises it away), whatever the penalty, until
    the task gradient balances the decay. From the reference ``s_init`` -30.5 at lr 1e-3
    it moves at most ~0.5 in 500 steps: ``sigmoid(s)`` stays ~1e-13 and nothing is cut.
    Short budgets need an ``s_init`` near the weights' scale, and for high targets a
    larger penalty or ``threshold_lr``. On the default trial (scenes-nyu, resnet-tiny, 500
    iterations, reference trainer) the defaults end at 0% sparsity, ``s_init`` -4.6 at
    38%, ``s_init`` -4 with ``threshold_lr`` 2e-2 and penalty 1e-2 at 83%; from -30.5 a
    ``threshold_lr`` of 0.15 reaches only 3%.

    Attributes:
        threshold_lr: learning rate of the thresholds. ``None`` (the reference): the
            thresholds are in the weights' optimizer group, with the weights' lr and
            schedule. A number: their own group at that lr (the trainer's lr schedule
            scales it too); a value equal to the weights' lr is the same single group.
            ``short-budget``: 2e-2.
        sparsity_penalty: L2 weight decay on every parameter *and* every threshold; decay
            pulls a negative ``s`` towards 0, so ``sigmoid(s)`` grows and more weights are
            cut (the reference code has no other sparsity term; its ``--weight_decay``,
            default 1e-4). It replaces the trial's ``weight_decay``. ``short-budget``:
            1e-2; with 1e-4 at a few hundred iterations the task gradient outweighs the
            decay and the backbone's threshold falls instead of rising. On the default
            trial (scenes-nyu, resnet-tiny, 500 iterations) a penalty of 1e-2 reaches 90%
            sparsity on its own, 5e-3 stops near 81% and leaves the rest to the budget
            guard, 2e-2 gets there after 30% of the budget.
        check: when overall sparsity (parameter-count weighted over every component,
            counted as ``sparsity_count`` says) is compared with the target.
            ``"every-step"`` (the reference): every iteration after ``backward`` and
            before the optimizer step; while it is at or over the target the thresholds'
            gradients are dropped for that step (Adam then skips them: no moment update,
            no decay) and the weights keep training; nothing is permanent,
            sparsity may keep growing past the target. ``"periodic"`` (``short-budget``):
            after the optimizer step, every ``check_every`` iterations and every iteration
            within 5 points of the target; the first time the target is reached the
            thresholds freeze for the rest of training (no gradient, lr 0 in their own
            group, values restored after each step), and a threshold initialised beyond
            the target freezes at attach.
        check_every: iterations between checks with ``check="periodic"`` (``None``: 1% of
            the budget); not allowed with ``"every-step"``.
        freeze: what reaching the target freezes. ``"threshold"`` (the reference): only
            the thresholds; weights that later fall under their frozen threshold are still
            cut, and since a cut weight gets no task gradient this mostly adds sparsity
            (at budgets of a few hundred Adam steps, tens of points past the target).
            ``"mask"`` (``short-budget``): the thresholds for good and the pattern of
            zeros, settled exactly at the target; the surviving weights keep training.
        sparsity_count: how the target check counts sparsity. ``"exact"`` (default): the
            exact fraction of zero effective weights (what :meth:`sparsity` reports).
            ``"reference"``: the reference's arithmetic (``main/trainer.py:175-180,
            220-236``): each layer's nonzeros re-derived from a float percentage and
            truncated by ``int()``, which overstates sparsity by up to one weight per layer
            and so can reach the target a step earlier.
        budget_guard: after the last iteration and in ``finalize``, cut the smallest
            effective weights of every threshold group (the same fraction of each group's
            survivors) if sparsity ended more than 1.5 points below the target. Not in the
            reference (``False``); ``short-budget``: ``True``.
        init_at_target: start every threshold at one value set from the weights the model
            has: ``sigmoid(s)`` = the ``init_at_target`` quantile of all prunable ``|W|``
            times the target (``1.0``: pruning starts at the target; ``0.5``: at half of
            it). An extension for models that start trained (``init: dense``), whose
            weight scale the reference's constant ``s_init`` does not know; ``None`` (the
            reference): the ``threshold_init`` values.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {"short-budget": SHORT_BUDGET_SOFT_THRESHOLD}

    threshold_lr: float | None = Field(None, gt=0)
    sparsity_penalty: float = Field(1e-4, ge=0)
    check: Literal["every-step", "periodic"] = "every-step"
    check_every: int | None = Field(None, gt=0)
    freeze: Literal["threshold", "mask"] = "threshold"
    sparsity_count: Literal["exact", "reference"] = "exact"
    budget_guard: bool = False
    init_at_target: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _check_every_needs_periodic(self) -> Self:
        if self.check_every is not None and self.check != "periodic":
            raise ValueError(
                f"check_every applies only to check='periodic' but check is {self.check!r}"
            )
        return self


def magnitude_quantile(magnitudes: torch.Tensor, level: float) -> float:
    """The ``level`` quantile (linear interpolation) of all of ``magnitudes``.

    ``torch.quantile`` refuses inputs above 2**24 elements, fewer than a deeplab-resnet34
    has weights; numpy's has no such limit and gives the same value below it.
    """
    return float(np.quantile(magnitudes.numpy(), level))


class SoftThresholdPruner(WeightPruner):
    """Learns sparsity through soft thresholds shared by groups of layers.

    Subclasses say how prunable layers map to thresholds (:meth:`threshold_groups`).
    Behaviour shared by all of them (see :class:`SoftThresholdParams` for each option):

    * **Optimizer groups**: with ``threshold_lr=None`` one group of every parameter,
      thresholds included (``lr = base_lr``, ``weight_decay = sparsity_penalty``, Adam
      ``betas = (0.5, 0.999)``), exactly as the AdapMTL reference code; otherwise the
      weights' group and a thresholds group at ``threshold_lr`` with the same decay and
      betas (SGD ignores ``betas``). The trial's own ``weight_decay`` is not used: the
      penalty is the decay.
    * **Target sparsity**: overall sparsity is parameter-count weighted over every
      component. With ``check="every-step"`` it is recounted before every optimizer step
      and the thresholds sit out each step taken at or over the target. With
      ``"periodic"`` it is recounted after the step on a schedule and reaching the target
      freezes the thresholds for the rest of training (values restored after each step
      so that neither the optimizer nor weight decay can move them).
    * With ``freeze="mask"`` reaching the target also fixes the pattern of zeros, settled
      exactly at the target: if the last step overshot, the weights cut last (closest
      under their thresholds) are kept with small values, as if every threshold had been
      lowered by one common amount. This freeze is always for good.
    * **Budget guard** (``budget_guard=True``): after the last iteration (and again in
      :meth:`finalize`), if sparsity is more than 1.5 points below the target (a short
      budget that never got there), every threshold group is cut further until the
      target is met exactly: each group keeps the same fraction of its surviving weights,
      its smallest effective weights going first (as if its threshold were raised), so the
      learned balance between groups is kept and no group is emptied.
    """

    Params: ClassVar[type[PrunerParams]] = SoftThresholdParams
    #: Adam betas of every group (AdapMTL's reference code, ``main/trainer.py:36``).
    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)

    def __init__(self, params: PrunerParams | None = None) -> None:
        super().__init__(params)
        self._thresholds: dict[str, nn.Parameter] = {}
        self._layers: dict[str, list[nn.Module]] = {}
        self._frozen_values: dict[str, torch.Tensor] = {}
        self._threshold_group: dict[str, Any] | None = None
        self._frozen_at: int | None = None
        self._permanent = False
        self._held_now = False
        self._held_steps = 0
        self._sparsity_at_freeze: float | None = None
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

        With ``check="periodic"``, thresholds initialised at or beyond the target freeze
        at once (and, with ``freeze="mask"``, are settled at the target); with
        ``"every-step"`` the first step's check handles them.
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
        common = self._init_at_target(groups)
        for name, group in groups.items():
            reference = _weight(group.layers[0][1])
            init = float(group.init) if common is None else common
            threshold = nn.Parameter(
                torch.tensor(init, dtype=reference.dtype, device=reference.device)
            )
            apply_soft_threshold((layer for _, layer in group.layers), threshold)
            self._thresholds[name] = threshold
            self._layers[name] = [layer for _, layer in group.layers]
        self._last_sparsity = self.sparsity().overall
        if (
            self.soft_params.check == "periodic"
            and self._last_sparsity >= self.soft_params.target_sparsity
        ):
            self._freeze(-1)

    def _init_at_target(self, groups: dict[str, ThresholdGroup]) -> float | None:
        """``logit`` of the |W| quantile at ``init_at_target`` x target (see the Params)."""
        fraction = self.soft_params.init_at_target
        if fraction is None:
            return None
        with torch.no_grad():
            magnitudes = torch.cat(
                [_weight(layer).detach().abs().flatten().float().cpu()
                 for group in groups.values() for _, layer in group.layers]
            )  # fmt: skip
        level = min(max(fraction * self.soft_params.target_sparsity, 1e-6), 1 - 1e-6)
        cut = magnitude_quantile(magnitudes, level) if len(magnitudes) else 0.0
        cut = min(max(cut, 1e-12), 1 - 1e-6)
        return math.log(cut / (1 - cut))

    def optimizer_groups(self, base_lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """The optimizer's groups; each parameter appears exactly once.

        One group of every parameter when ``threshold_lr`` is ``None`` or equals
        ``base_lr`` (the reference); otherwise the weights' group then the thresholds'.
        ``weight_decay`` (the trial's) is not used: ``sparsity_penalty`` is the decay.
        """
        params = self.soft_params
        threshold_ids = {id(t) for t in self._thresholds.values()}
        separate = params.threshold_lr is not None and params.threshold_lr != base_lr
        seen: set[int] = set()
        weights: list[nn.Parameter] = []
        for parameter in self._model().parameters():
            if id(parameter) in seen or (separate and id(parameter) in threshold_ids):
                continue
            seen.add(id(parameter))
            weights.append(parameter)
        groups: list[dict[str, Any]] = [
            {
                "params": weights,
                "lr": base_lr,
                "weight_decay": params.sparsity_penalty,
                "betas": self.betas,
            }
        ]
        self._threshold_group = None
        if separate:
            self._threshold_group = {
                "params": list(self._thresholds.values()),
                "lr": 0.0 if self._permanent else params.threshold_lr,
                "weight_decay": params.sparsity_penalty,
                "betas": self.betas,
            }
            groups.append(self._threshold_group)
        return groups

    def before_step(self, iteration: int) -> None:
        """Drops the thresholds' gradients when they are frozen for this step.

        With ``check="every-step"`` the target is checked here, on the effective weights
        this iteration's forward pass used (the reference checks after ``backward`` and
        before ``optimizer.step``, ``main/trainer.py:174-192``).
        """
        self._held_now = False
        params = self.soft_params
        if not self._permanent and params.check == "every-step":
            self._last_sparsity = self._target_sparsity_count()
            if self._last_sparsity >= params.target_sparsity:
                if self._frozen_at is None:
                    self._frozen_at = iteration
                    self._sparsity_at_freeze = self._last_sparsity
                if params.freeze == "mask":
                    self._freeze(iteration)
                else:
                    self._held_now = True
                    self._held_steps += 1
        if self._permanent or self._held_now:
            for threshold in self._thresholds.values():
                threshold.grad = None

    def after_step(self, iteration: int) -> None:
        """Restores frozen thresholds; a periodic check when due; the guard at the end."""
        params = self.soft_params
        if self._permanent:
            self._restore_frozen()
        elif params.check == "periodic":
            near = (
                self._last_sparsity is not None
                and self._last_sparsity >= params.target_sparsity - NEAR_TARGET
            )
            if near or iteration % self._check_every() == 0:
                self._last_sparsity = self._target_sparsity_count()
                if self._last_sparsity >= params.target_sparsity:
                    self._freeze(iteration)
        total = self.context.total_iterations if self.context is not None else None
        if params.budget_guard and total is not None and iteration >= total - 1:
            self.enforce_budget()

    def thresholds(self) -> dict[str, float]:
        """``sigmoid(s)`` of every threshold by name (the last values after :meth:`finalize`)."""
        return {name: float(torch.sigmoid(t.detach())) for name, t in self._thresholds.items()}

    def finalize(self) -> nn.Module:
        """Applies the budget guard if enabled, then removes the parametrizations (exact
        zeros stay)."""
        model = self._model()
        if not self._finalized:
            if self.soft_params.budget_guard:
                self.enforce_budget()
            remove_soft_thresholds(model)
            self._finalized = True
        return model

    # -- helpers ------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """Whether the thresholds are frozen now: for good, or for the current step."""
        return self._permanent or self._held_now

    @property
    def frozen_for_good(self) -> bool:
        """Whether the thresholds are frozen for the rest of training."""
        return self._permanent

    @property
    def frozen_at(self) -> int | None:
        """Iteration at which the target was first reached (-1: at attach), or ``None``.

        With ``check="periodic"`` the thresholds froze for good after that iteration's
        step; with ``"every-step"`` that iteration's step was the first without them.
        """
        return self._frozen_at

    @property
    def held_steps(self) -> int:
        """Optimizer steps the thresholds sat out under ``check="every-step"``."""
        return self._held_steps

    @property
    def sparsity_at_freeze(self) -> float | None:
        """Overall sparsity that first reached the target, before settling, or ``None``."""
        return self._sparsity_at_freeze

    @property
    def budget_guard_applied(self) -> bool:
        """Whether the budget guard had to cut weights."""
        return self._guarded

    def threshold_parameters(self) -> dict[str, nn.Parameter]:
        """The learnable scalars ``s`` by name (distinct objects)."""
        return dict(self._thresholds)

    def enforce_budget(self) -> float:
        """The budget guard: cuts more weights if sparsity is far below the target.

        Called by the pruner only with ``budget_guard=True``; callable directly.

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

    def _target_sparsity_count(self) -> float:
        """Overall sparsity as the target check counts it (``sparsity_count``)."""
        if self.soft_params.sparsity_count == "exact":
            return self.sparsity().overall
        components = cast(dict[str, nn.Module], cast(Any, self._model()).components())
        return reference_sparsity_count(
            [[_weight(layer) for _, layer in prunable_parameters(c)] for c in components.values()]
        )

    def _check_every(self) -> int:
        every = self.soft_params.check_every
        if every is not None:
            return every
        total = self.context.total_iterations if self.context is not None else 100
        return max(1, total // 100)

    def _freeze(self, iteration: int) -> None:
        """Freezes the thresholds for good (and, with ``freeze="mask"``, the zeros)."""
        if self._frozen_at is None:
            self._frozen_at = iteration
            self._sparsity_at_freeze = self._last_sparsity
        self._permanent = True
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


def reference_sparsity_count(components: list[list[torch.Tensor]]) -> float:
    """Overall sparsity with AdapMTL's arithmetic (MitchellX/AdapMTL ``main/trainer.py``
    ``:175-180`` and ``store_sparsity`` ``:220-236``, ``getSparsity`` in
    ``models/Deeplab_ResNet34.py:50-54``).

    Per layer ``p = 100 - mean(W != 0) * 100`` and ``nonzeros = int((100 - p) / 100 * n)``
    (a float round trip, then truncation); per component ``s_c = 100 - 100 * nonzeros / t_c``;
    overall ``sum_c s_c * t_c / 100 / sum_c t_c``. ``components`` lists each component's
    effective weights; empty components are skipped.
    """
    parts: list[tuple[float, int]] = []
    with torch.no_grad():
        for weights in components:
            nonzeros, count = 0, 0
            for weight in weights:
                percent = 100 - float((weight != 0).float().mean()) * 100
                nonzeros += int(((100 - percent) / 100) * weight.numel())
                count += weight.numel()
            if count:
                parts.append((100 - (100 * nonzeros / count), count))
    total = sum(count for _, count in parts)
    return sum(s * t for s, t in parts) / 100.0 / total if total else 0.0


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
