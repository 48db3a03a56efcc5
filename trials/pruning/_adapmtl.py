"""AdapMTL: adaptive pruning of multi-task networks, and its two ablations.

Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning Model",
ACM Multimedia 2024.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from pydantic import Field
from torch import nn

from trials.pruning._base import PRUNERS, PrunerParams, prunable_parameters
from trials.pruning._soft_threshold import SoftThresholdParams, SoftThresholdPruner, ThresholdGroup

_HEAD_PREFIX = "head:"


class ComponentThresholdParams(SoftThresholdParams):
    """Knobs of AdapMTL's component-wise thresholds (``adapmtl-equal-weights`` uses these).

    The initial values ``s_init`` are calibrated for budgets of a few hundred iterations
    (``sigmoid(-4) ~ 0.018``, at the scale of default conv initialisations); the paper's
    -15 .. -30 belong to 20k-100k iteration budgets.

    Attributes:
        threshold_init_backbone: ``s_init`` of the backbone's threshold.
        threshold_init_heads: ``s_init`` of every head's threshold.
        threshold_init_tasks: per-task override of ``threshold_init_heads``.
    """

    threshold_init_backbone: float = -4.0
    threshold_init_heads: float = -4.0
    threshold_init_tasks: dict[str, float] | None = None

    def check_tasks(self, tasks: tuple[str, ...]) -> None:
        unknown = sorted(set(self.threshold_init_tasks or {}) - set(tasks))
        if unknown:
            raise ValueError(
                f"threshold_init_tasks names unknown task {unknown[0]!r}; "
                f"the model's tasks are: {', '.join(tasks)}"
            )


class AdapMTLParams(ComponentThresholdParams):
    """AdapMTL's knobs: component thresholds plus its adaptive task weighting.

    Attributes:
        temperature: softens (> 1) or sharpens (< 1) the adaptive weights; 1 is the paper.
        window: sliding window of the loss-robustness average (``None``: 2.5% of the
            budget, at least 5 iterations; the reference uses 500 of 20000).
        start_fraction: task weights stay 1 before this fraction of the budget (0.25 as
            in the reference, 5000 of 20000).
    """

    temperature: float = Field(1.0, gt=0)
    window: int | None = Field(None, gt=0)
    start_fraction: float = Field(0.25, ge=0, le=1)


class AdapMTLGlobalThresholdParams(SoftThresholdParams):
    """Knobs of the one-threshold ablation (adaptive weighting kept).

    Attributes:
        threshold_init: ``s_init`` of the single threshold shared by every layer.
        temperature: see :class:`AdapMTLParams`.
        window: see :class:`AdapMTLParams`.
        start_fraction: see :class:`AdapMTLParams`.
    """

    threshold_init: float = -4.0
    temperature: float = Field(1.0, gt=0)
    window: int | None = Field(None, gt=0)
    start_fraction: float = Field(0.25, ge=0, le=1)


def _components(model: nn.Module) -> dict[str, nn.Module]:
    return cast(dict[str, nn.Module], cast(Any, model).components())


def _adaptive_knobs(params: PrunerParams, weighting: str) -> dict[str, Any]:
    if weighting != "adaptive":
        return {}
    return {
        "temperature": params.temperature,  # type: ignore[attr-defined]
        "window": params.window,  # type: ignore[attr-defined]
        "start_fraction": params.start_fraction,  # type: ignore[attr-defined]
    }


class ComponentThresholdPruner(SoftThresholdPruner):
    """One learnable scalar threshold per component (Xiang et al., ACM MM 2024).

    One ``s`` is shared by every prunable layer of the backbone and one per task head
    (3 tasks: 4 scalars), on the soft-threshold reparameterization
    ``sign(W) * relu(|W| - sigmoid(s))``. Thresholds are named like the components.
    """

    Params: ClassVar[type[PrunerParams]] = ComponentThresholdParams

    def threshold_groups(self, model: nn.Module) -> dict[str, ThresholdGroup]:
        """One group per component named as the component (``backbone``, ``head:<task>``)."""
        params = self.params
        assert isinstance(params, ComponentThresholdParams)
        components = _components(model)
        tasks = [name[len(_HEAD_PREFIX) :] for name in components if name.startswith(_HEAD_PREFIX)]
        params.check_tasks(tuple(tasks))
        overrides = params.threshold_init_tasks or {}
        groups: dict[str, ThresholdGroup] = {}
        for name, component in components.items():
            if name.startswith(_HEAD_PREFIX):
                init = overrides.get(name[len(_HEAD_PREFIX) :], params.threshold_init_heads)
            else:
                init = params.threshold_init_backbone
            groups[name] = ThresholdGroup(init, list(prunable_parameters(component)))
        return groups


@PRUNERS.register("adapmtl")
class AdapMTLPruner(ComponentThresholdPruner):
    """AdapMTL (Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning
    Model", ACM MM 2024).

    Component-wise learnable soft thresholds (one for the backbone, one per task head)
    trained jointly with the weights under an L2 sparsity penalty that also decays the
    thresholds; thresholds freeze once overall sparsity reaches the target. The default
    task weighting is AdapMTL's adaptive weighting, whose knobs (``temperature``,
    ``window``, ``start_fraction``) live here and are handed to it through
    :meth:`weighting_params`.
    """

    Params: ClassVar[type[PrunerParams]] = AdapMTLParams
    default_weighting: ClassVar[str] = "adaptive"

    def weighting_params(self, weighting: str | None = None) -> dict[str, Any]:
        """``{"temperature", "window", "start_fraction"}`` for ``adaptive``, else ``{}``."""
        return _adaptive_knobs(self.params, weighting or self.default_weighting)


@PRUNERS.register("adapmtl-equal-weights")
class AdapMTLEqualWeightsPruner(ComponentThresholdPruner):
    """AdapMTL with equal task weights (the paper's ablation of its adaptive weighting).

    Same component-wise thresholds as ``adapmtl``; its ``Params`` omit the weighting knobs.
    """

    default_weighting: ClassVar[str] = "equal"


@PRUNERS.register("adapmtl-global-threshold")
class AdapMTLGlobalThresholdPruner(SoftThresholdPruner):
    """AdapMTL without adaptive thresholds: one threshold for the whole model.

    The paper's ablation (Xiang et al., ACM MM 2024): a single ``s`` shared by every
    prunable layer of every component, adaptive task weighting kept.
    """

    Params: ClassVar[type[PrunerParams]] = AdapMTLGlobalThresholdParams
    default_weighting: ClassVar[str] = "adaptive"

    def threshold_groups(self, model: nn.Module) -> dict[str, ThresholdGroup]:
        """A single group ``global`` with every prunable layer."""
        params = self.params
        assert isinstance(params, AdapMTLGlobalThresholdParams)
        layers = [
            (f"{name}.{layer_name}" if layer_name else name, layer)
            for name, component in _components(model).items()
            for layer_name, layer in prunable_parameters(component)
        ]
        return {"global": ThresholdGroup(params.threshold_init, layers)}

    def weighting_params(self, weighting: str | None = None) -> dict[str, Any]:
        """``{"temperature", "window", "start_fraction"}`` for ``adaptive``, else ``{}``."""
        return _adaptive_knobs(self.params, weighting or self.default_weighting)
