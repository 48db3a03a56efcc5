"""Everything that runs inside one trial: data, models, tasks, weight pruners, trainer.

Importing this package is cheap and does not import torch; the heavy entry points load
on first use, so torch-free packages can import ``trials.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trials._config import Evaluation, TrialConfig, TrialResult
    from trials._run import run_trial
    from trials._trainer import TrialDiverged

__all__ = ["Evaluation", "TrialConfig", "TrialDiverged", "TrialResult", "run_trial"]

_LAZY = {
    "Evaluation": "trials._config",
    "TrialConfig": "trials._config",
    "TrialResult": "trials._config",
    "TrialDiverged": "trials._trainer",
    "run_trial": "trials._run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trials' has no attribute {name!r}")
