"""Multi-task models: registered backbones and heads, built into hard-sharing models."""

from trials.models import _heads, _mobilenet, _resnet  # noqa: F401  (register plugins)
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

__all__ = [
    "BACKBONES",
    "DEFAULT_TASK_CHANNELS",
    "HEADS",
    "Backbone",
    "Head",
    "ModelOptionError",
    "MultiTaskModel",
    "build_model",
    "count_parameters",
    "describe_models",
]
