"""STR: soft threshold weight reparameterization with one threshold per layer.

Kusupati et al., "Soft Threshold Weight Reparameterization for Learnable Sparsity",
ICML 2020.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn

from trials.pruning._base import PRUNERS, PrunerParams, prunable_parameters
from trials.pruning._soft_threshold import SoftThresholdParams, SoftThresholdPruner, ThresholdGroup


class STRParams(SoftThresholdParams):
    """STR's knobs.

    None of the reference repositories (AdapMTL, DiSparse, DMTG) has STR code, so STR
    keeps paretune's values in every calibration: the ``short-budget`` soft-threshold
    path (:data:`~trials.pruning._soft_threshold.SHORT_BUDGET_SOFT_THRESHOLD`: own
    thresholds group at lr 2e-2, penalty 1e-2, periodic check with a permanent freeze that
    settles the zeros at the target, budget guard) is its default, and its presets are
    empty.

    Attributes:
        threshold_init: ``s_init`` of every layer's threshold (``sigmoid(-4) ~ 0.018``,
            calibrated like AdapMTL's ``short-budget`` for budgets of a few hundred
            iterations).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    threshold_lr: float | None = Field(2e-2, gt=0)
    sparsity_penalty: float = Field(1e-2, ge=0)
    check: Literal["every-step", "periodic"] = "periodic"
    freeze: Literal["threshold", "mask"] = "mask"
    budget_guard: bool = True
    threshold_init: float = -4.0


@PRUNERS.register("str")
class STRPruner(SoftThresholdPruner):
    """STR (Kusupati et al., ICML 2020): one learnable threshold per prunable layer.

    Every conv/linear weight gets its own scalar ``s``; thresholds are named by the layer's
    qualified name in the model (``backbone.stages.0.0``, ``heads.depth.1``). Same
    soft-threshold machinery as AdapMTL (optimizer groups, target check and freeze,
    budget guard; see :class:`STRParams` for its defaults), so that the comparison with
    AdapMTL under equal options isolates how thresholds are shared.
    """

    Params: ClassVar[type[PrunerParams]] = STRParams

    def threshold_groups(self, model: nn.Module) -> dict[str, ThresholdGroup]:
        """One group per prunable layer, named by its qualified name."""
        params = self.params
        assert isinstance(params, STRParams)
        qualified = {id(module): name for name, module in model.named_modules()}
        groups: dict[str, ThresholdGroup] = {}
        for component in model.components().values():  # type: ignore[operator]
            for name, layer in prunable_parameters(component):
                key = qualified.get(id(layer), name)
                groups[key] = ThresholdGroup(params.threshold_init, [(key, layer)])
        return groups
