"""STR: soft threshold weight reparameterization with one threshold per layer.

Kusupati et al., "Soft Threshold Weight Reparameterization for Learnable Sparsity",
ICML 2020.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from trials.pruning._base import PRUNERS, PrunerParams, prunable_parameters
from trials.pruning._soft_threshold import SoftThresholdParams, SoftThresholdPruner, ThresholdGroup


class STRParams(SoftThresholdParams):
    """STR's knobs.

    Attributes:
        threshold_init: ``s_init`` of every layer's threshold (``sigmoid(-4) ~ 0.018``,
            calibrated like AdapMTL's for budgets of a few hundred iterations).
    """

    threshold_init: float = -4.0


@PRUNERS.register("str")
class STRPruner(SoftThresholdPruner):
    """STR (Kusupati et al., ICML 2020): one learnable threshold per prunable layer.

    Every conv/linear weight gets its own scalar ``s``; thresholds are named by the layer's
    qualified name in the model (``backbone.stages.0.0``, ``heads.depth.1``). Same
    optimizer groups, target freeze and budget guard as the other soft-threshold pruners,
    so that the comparison with AdapMTL isolates how thresholds are shared.
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
