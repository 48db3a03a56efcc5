"""The one trial entry point: a weight-pruning trial or an architecture search."""

from __future__ import annotations

import time
from typing import Any

from trials._config import TrialConfig, TrialResult
from trials._trainer import EvaluationCallback, StepCallback, Trainer, build_setup
from trials.grouping import is_architecture_search, run_architecture_search


def run_trial(
    config: TrialConfig | dict[str, Any],
    on_evaluation: EvaluationCallback | None = None,
    on_step: StepCallback | None = None,
) -> TrialResult:
    """Trains, prunes and evaluates one multi-task model; the one trial entry point.

    A method registered in :data:`trials.grouping.ARCHITECTURE_SEARCHES` (``dmtg``)
    searches the model itself; every other method is a weight pruner run by
    :class:`trials._trainer.Trainer`.

    Args:
        config: a :class:`TrialConfig` or a dict validated into one.
        on_evaluation: called with every periodic :class:`Evaluation`.
        on_step: called with ``(iteration, loss)`` after every optimizer step.

    Raises:
        TrialDiverged: the loss became NaN or infinite.
    """
    started = time.perf_counter()
    if not isinstance(config, TrialConfig):
        config = TrialConfig.model_validate(config)
    if is_architecture_search(config.method):  # e.g. dmtg: searches the model itself
        return run_architecture_search(
            config, on_evaluation=on_evaluation, on_step=on_step, started=started
        )
    trainer = Trainer(build_setup(config), on_evaluation=on_evaluation, on_step=on_step)
    return trainer.train(started=started)
