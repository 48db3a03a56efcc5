"""Task grouping: DMTG's one-shot search for a grouped multi-task architecture.

``dmtg`` (Gao et al., ICML 2024) trains a :class:`DMTGSearchModel` (shared stem, K group
branches, K x N heads, grouping logits ``Theta``) with Gumbel-softmax relaxed
assignments, extracts the argmax grouping as a :class:`GroupedMultiTaskModel` and
fine-tunes it. The grouped model is a plain ``MultiTaskModel`` of :mod:`trials.models`
(components ``stem``, ``branch:<k>``, ``head:<task>``), so every weight pruner runs on it:
a trial whose ``TrialConfig.grouping`` holds a stored assignment builds one with
:func:`build_grouped_model` (group-then-prune). The search builds on the trainer
(:mod:`trials._trainer`); the trainer never imports this package.
"""

from trials.grouping._registry import (
    ARCHITECTURE_SEARCHES,
    ArchitectureSearch,
    is_architecture_search,
    method_params_type,
    run_architecture_search,
)
from trials.grouping._relax import (
    gradient_scales,
    gumbel_softmax,
    joint_loss,
    load_imbalance,
    row_entropy,
    scale_gradient,
    shared_gradient_scale,
    task_objectives,
    temperature_at,
)
from trials.grouping._search_model import (
    DMTGSearchModel,
    build_search_model,
    extract_grouped_model,
)
from trials.grouping._spec import (
    GRADIENT_SCALINGS,
    DMTGParams,
    check_num_groups,
    parse_dmtg_params,
)
from trials.grouping._trial import (
    DMTGSearch,
    DMTGTrainer,
    validate_grouping,
    validate_method_grouping,
)
from trials.models import (
    GroupedMultiTaskModel,
    GroupingError,
    GroupingSpec,
    build_grouped_model,
    check_assignment,
    check_shared_stages,
    parse_grouping,
)

__all__ = [
    "ARCHITECTURE_SEARCHES",
    "GRADIENT_SCALINGS",
    "ArchitectureSearch",
    "DMTGParams",
    "DMTGSearch",
    "DMTGSearchModel",
    "DMTGTrainer",
    "GroupedMultiTaskModel",
    "GroupingError",
    "GroupingSpec",
    "build_grouped_model",
    "build_search_model",
    "check_assignment",
    "check_num_groups",
    "check_shared_stages",
    "extract_grouped_model",
    "gradient_scales",
    "gumbel_softmax",
    "is_architecture_search",
    "joint_loss",
    "load_imbalance",
    "method_params_type",
    "parse_dmtg_params",
    "parse_grouping",
    "row_entropy",
    "run_architecture_search",
    "scale_gradient",
    "shared_gradient_scale",
    "task_objectives",
    "temperature_at",
    "validate_grouping",
    "validate_method_grouping",
]
