"""Multi-task models: registered backbones and heads, built into hard-sharing models, and
the grouped architecture of a stored task grouping.

Backbones and heads register themselves in :data:`BACKBONES` and :data:`HEADS`; every
module of this package is imported on their first lookup.
"""

from trials.models._base import (
    BACKBONES,
    HEADS,
    Backbone,
    Head,
    ModelOptionError,
    MultiTaskModel,
)
from trials.models._build import (
    DEFAULT_TASK_CHANNELS,
    build_model,
    count_parameters,
    describe_models,
)
from trials.models._grouped import (
    GroupedMultiTaskModel,
    GroupingError,
    GroupingSpec,
    build_grouped_model,
    check_assignment,
    check_shared_stages,
    parse_grouping,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_TASK_CHANNELS",
    "HEADS",
    "Backbone",
    "GroupedMultiTaskModel",
    "GroupingError",
    "GroupingSpec",
    "Head",
    "ModelOptionError",
    "MultiTaskModel",
    "build_grouped_model",
    "build_model",
    "check_assignment",
    "check_shared_stages",
    "count_parameters",
    "describe_models",
    "parse_grouping",
]
