"""Task weightings: how per-task losses combine into one training loss."""

from trials.weighting._adaptive import (
    SHORT_BUDGET_ADAPTIVE,
    AdaptiveWeighting,
    AdaptiveWeightingKnobs,
    AdaptiveWeightingParams,
    resolve_window,
    tempered_normalization,
)
from trials.weighting._base import WEIGHTINGS, TaskWeighting, WeightingParams, build_weighting
from trials.weighting._simple import (
    DWAParams,
    DWAWeighting,
    EqualWeighting,
    UncertaintyWeighting,
    UncertaintyWeightingParams,
)

__all__ = [
    "SHORT_BUDGET_ADAPTIVE",
    "WEIGHTINGS",
    "AdaptiveWeighting",
    "AdaptiveWeightingKnobs",
    "AdaptiveWeightingParams",
    "DWAParams",
    "DWAWeighting",
    "EqualWeighting",
    "TaskWeighting",
    "UncertaintyWeighting",
    "UncertaintyWeightingParams",
    "WeightingParams",
    "build_weighting",
    "resolve_window",
    "tempered_normalization",
]
