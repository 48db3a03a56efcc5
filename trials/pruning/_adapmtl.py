"""AdapMTL: adaptive pruning of multi-task networks, and its two ablations.

Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning Model",
ACM Multimedia 2024.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from torch import nn

from trials.pruning._base import PRUNERS, PrunerParams, prunable_parameters
from trials.pruning._soft_threshold import (
    SHORT_BUDGET_SOFT_THRESHOLD,
    SoftThresholdParams,
    SoftThresholdPruner,
    ThresholdGroup,
)
from trials.weighting import SHORT_BUDGET_ADAPTIVE, AdaptiveWeightingKnobs

_HEAD_PREFIX = "head:"


#: The reference ``s_init`` (AdapMTL ``args.py:13``, ``--sInit_value``), one for all.
REFERENCE_THRESHOLD_INIT = -30.5
#: ``short-budget``'s ``s_init``: ``sigmoid(-4) ~ 0.018``, at the scale of PyTorch's
#: default conv initialisations, so that a few hundred steps can prune.
SHORT_BUDGET_THRESHOLD_INIT = -4.0


class ComponentThresholdParams(SoftThresholdParams):
    """Knobs of AdapMTL's component-wise thresholds (``adapmtl-equal-weights`` uses these).

    The reference code initialises every threshold to one constant, ``--sInit_value``
    (default -30.5, AdapMTL ``args.py:12-13``, ``models/Deeplab_ResNet34.py:16-20``); its
    README and logged runs also use -10 .. -20 (and -100, -1000) on 20k-100k iteration
    budgets. ``short-budget`` uses -4.0 (``sigmoid(-4) ~ 0.018``, at the scale of default
    conv initialisations) with its other soft-threshold presets.

    Attributes:
        threshold_init: ``s_init`` of every threshold (the reference's one constant).
        threshold_init_backbone: ``s_init`` of the backbone's threshold (``None``:
            ``threshold_init``); a paretune extension.
        threshold_init_heads: ``s_init`` of every head's threshold (``None``:
            ``threshold_init``); a paretune extension.
        threshold_init_tasks: per-task override of the head init; a paretune extension.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            **SHORT_BUDGET_SOFT_THRESHOLD,
            "threshold_init": SHORT_BUDGET_THRESHOLD_INIT,
        }
    }

    threshold_init: float = REFERENCE_THRESHOLD_INIT
    threshold_init_backbone: float | None = None
    threshold_init_heads: float | None = None
    threshold_init_tasks: dict[str, float] | None = None

    def check_tasks(self, tasks: tuple[str, ...]) -> None:
        unknown = sorted(set(self.threshold_init_tasks or {}) - set(tasks))
        if unknown:
            raise ValueError(
                f"threshold_init_tasks names unknown task {unknown[0]!r}; "
                f"the model's tasks are: {', '.join(tasks)}"
            )

    def backbone_init(self) -> float:
        """The backbone threshold's ``s_init``."""
        if self.threshold_init_backbone is not None:
            return self.threshold_init_backbone
        return self.threshold_init

    def head_init(self, task: str) -> float:
        """The ``s_init`` of task ``task``'s head threshold."""
        overrides = self.threshold_init_tasks or {}
        if task in overrides:
            return overrides[task]
        if self.threshold_init_heads is not None:
            return self.threshold_init_heads
        return self.threshold_init


class AdapMTLParams(AdaptiveWeightingKnobs, ComponentThresholdParams):
    """AdapMTL's knobs: component thresholds plus its adaptive task weighting.

    The weighting's knobs (``AdaptiveWeightingKnobs`` of ``trials/weighting/_adaptive.py``:
    ``temperature``, ``window``, ``start_fraction``, ``record_from``, ``adapt_after``,
    ``weight_sum``) are handed to the adaptive weighting; ``short-budget`` sets the
    presets of both.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            **ComponentThresholdParams.presets["short-budget"],
            **SHORT_BUDGET_ADAPTIVE,
        }
    }


class AdapMTLGlobalThresholdParams(AdaptiveWeightingKnobs, SoftThresholdParams):
    """Knobs of the one-threshold ablation (adaptive weighting kept).

    Attributes:
        threshold_init: ``s_init`` of the single threshold shared by every layer (the
            reference constant -30.5; ``short-budget``: -4.0).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            **SHORT_BUDGET_SOFT_THRESHOLD,
            "threshold_init": SHORT_BUDGET_THRESHOLD_INIT,
            **SHORT_BUDGET_ADAPTIVE,
        }
    }

    threshold_init: float = REFERENCE_THRESHOLD_INIT


def _components(model: nn.Module) -> dict[str, nn.Module]:
    return cast(dict[str, nn.Module], cast(Any, model).components())


def _adaptive_knobs(params: PrunerParams, weighting: str) -> dict[str, Any]:
    if weighting != "adaptive":
        return {}
    assert isinstance(params, AdaptiveWeightingKnobs)
    return {name: getattr(params, name) for name in AdaptiveWeightingKnobs.model_fields}


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
        groups: dict[str, ThresholdGroup] = {}
        for name, component in components.items():
            if name.startswith(_HEAD_PREFIX):
                init = params.head_init(name[len(_HEAD_PREFIX) :])
            else:
                init = params.backbone_init()
            groups[name] = ThresholdGroup(init, list(prunable_parameters(component)))
        return groups


@PRUNERS.register("adapmtl")
class AdapMTLPruner(ComponentThresholdPruner):
    """AdapMTL (Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask Learning
    Model", ACM MM 2024).

    Component-wise learnable soft thresholds (one for the backbone, one per task head)
    trained jointly with the weights under an L2 sparsity penalty that also decays the
    thresholds; the thresholds sit out every step taken at or over the target sparsity
    (MitchellX/AdapMTL ``main/trainer.py:174-192``). The default task weighting is
    AdapMTL's adaptive weighting, whose knobs (``temperature``, ``window``,
    ``start_fraction``, ``record_from``, ``adapt_after``, ``weight_sum``) live here and are
    handed to it through :meth:`weighting_params`.
    """

    Params: ClassVar[type[PrunerParams]] = AdapMTLParams
    default_weighting: ClassVar[str] = "adaptive"

    def weighting_params(self, weighting: str | None = None) -> dict[str, Any]:
        """The adaptive weighting's knobs for ``adaptive``, else ``{}``."""
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
        """The adaptive weighting's knobs for ``adaptive``, else ``{}``."""
        return _adaptive_knobs(self.params, weighting or self.default_weighting)
