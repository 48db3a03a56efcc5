"""Weight pruners: AdapMTL, its ablations and the baselines, plus sparse checkpoints.

Every pruner is registered in :data:`PRUNERS` by method name; build one with
:func:`build_pruner` (``build_pruner("magnitude", target_sparsity=0.9)``).
"""

from trials.pruning._adapmtl import (
    AdapMTLEqualWeightsPruner,
    AdapMTLGlobalThresholdParams,
    AdapMTLGlobalThresholdPruner,
    AdapMTLParams,
    AdapMTLPruner,
    ComponentThresholdParams,
    ComponentThresholdPruner,
)
from trials.pruning._base import (
    PRUNABLE_LAYERS,
    PRUNERS,
    PrunerParams,
    PruningContext,
    SparsityReport,
    WeightPruner,
    build_pruner,
    measure_sparsity,
    prunable_parameters,
)
from trials.pruning._dense import DenseParams, DensePruner
from trials.pruning._disparse import (
    REFERENCE_KEEP_RATIOS,
    DisparseDynamicParams,
    DisparseDynamicPruner,
    DisparseParams,
    DisparsePruner,
    agreement_masks,
    agreement_masks_at_sparsity,
    density_prune,
    reference_keep_ratio,
    threshold_regrowth,
    union_regrowth,
)
from trials.pruning._export import checkpoint_size, load_sparse, save_sparse
from trials.pruning._imp import ImpParams, ImpPruner, LthParams, LthPruner
from trials.pruning._magnitude import MagnitudeParams, MagnitudePruner
from trials.pruning._masked import (
    MaskedPruner,
    erk_densities,
    global_topk,
    keep_count,
    layerwise_topk,
)
from trials.pruning._random import RandomParams, RandomPruner
from trials.pruning._snip import SnipParams, SnipPruner
from trials.pruning._soft_threshold import (
    SoftThreshold,
    SoftThresholdParams,
    SoftThresholdPruner,
    ThresholdGroup,
    apply_soft_threshold,
    remove_soft_thresholds,
    soft_threshold_of,
)
from trials.pruning._str import STRParams, STRPruner

__all__ = [
    "PRUNABLE_LAYERS",
    "PRUNERS",
    "REFERENCE_KEEP_RATIOS",
    "AdapMTLEqualWeightsPruner",
    "AdapMTLGlobalThresholdParams",
    "AdapMTLGlobalThresholdPruner",
    "AdapMTLParams",
    "AdapMTLPruner",
    "ComponentThresholdParams",
    "ComponentThresholdPruner",
    "DenseParams",
    "DensePruner",
    "DisparseDynamicParams",
    "DisparseDynamicPruner",
    "DisparseParams",
    "DisparsePruner",
    "ImpParams",
    "ImpPruner",
    "LthParams",
    "LthPruner",
    "MagnitudeParams",
    "MagnitudePruner",
    "MaskedPruner",
    "PrunerParams",
    "PruningContext",
    "RandomParams",
    "RandomPruner",
    "STRParams",
    "STRPruner",
    "SnipParams",
    "SnipPruner",
    "SoftThreshold",
    "SoftThresholdParams",
    "SoftThresholdPruner",
    "SparsityReport",
    "ThresholdGroup",
    "WeightPruner",
    "agreement_masks",
    "agreement_masks_at_sparsity",
    "apply_soft_threshold",
    "build_pruner",
    "checkpoint_size",
    "density_prune",
    "erk_densities",
    "global_topk",
    "keep_count",
    "layerwise_topk",
    "load_sparse",
    "measure_sparsity",
    "prunable_parameters",
    "reference_keep_ratio",
    "remove_soft_thresholds",
    "save_sparse",
    "soft_threshold_of",
    "threshold_regrowth",
    "union_regrowth",
]
