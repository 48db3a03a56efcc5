"""Everything that runs inside one trial: data, models, tasks, weight pruners, trainer.

The public entry points are :func:`run_trial` (one trial from a :class:`TrialConfig` or a
dict), the checks a study runs before any trial starts (:func:`validate_trial_config`,
:func:`validate_data`, :func:`validate_tasks`), the :class:`Trainer` with the
:class:`TrialSetup` it trains (:func:`build_setup`), :func:`time_trial` and
:func:`visible_gpus`. Plugins live
in the registries of the subpackages (:data:`trials.pruning.PRUNERS`,
:data:`trials.weighting.WEIGHTINGS`, :data:`trials.data.DATASETS`,
:data:`trials.models.BACKBONES`, :data:`trials.models.HEADS`), see :mod:`trials.registry`.

Importing this package is cheap and does not import torch; the entry points load on first
use, so torch-free packages can import ``trials.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trials.lazy import lazy_exports

if TYPE_CHECKING:
    from trials._config import Evaluation, LoaderOptions, TrialConfig, TrialResult
    from trials._device import visible_gpus
    from trials._run import run_trial
    from trials._timing import TrialTiming, time_trial
    from trials._trainer import Trainer, TrialDiverged, TrialSetup, build_setup
    from trials._validate import (
        TrialConfigError,
        validate_data,
        validate_tasks,
        validate_trial_config,
    )

__all__ = [
    "Evaluation",
    "LoaderOptions",
    "Trainer",
    "TrialConfig",
    "TrialConfigError",
    "TrialDiverged",
    "TrialResult",
    "TrialSetup",
    "TrialTiming",
    "build_setup",
    "run_trial",
    "time_trial",
    "validate_data",
    "validate_tasks",
    "validate_trial_config",
    "visible_gpus",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
