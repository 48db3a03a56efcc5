"""Optuna as Ray Tune's searcher: seeded samplers, RDB storage, failures told as FAIL."""

from __future__ import annotations

from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from study._trainable import ERROR_KEY

SAMPLERS = ("tpe", "nsga2", "gp", "random")


def build_sampler(name: str, seed: int, options: dict[str, Any] | None = None) -> Any:
    """A seeded Optuna sampler; samplers are not persisted, so resume re-creates them."""
    options = dict(options or {})
    if name == "tpe":
        options.setdefault("multivariate", True)
        return optuna.samplers.TPESampler(seed=seed, **options)
    if name == "nsga2":
        options.setdefault("population_size", 8)
        return optuna.samplers.NSGAIISampler(seed=seed, **options)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **options)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)} but got {name!r}")


class StudySearch(OptunaSearch):
    """``OptunaSearch`` that tells Optuna FAIL when a trial reports ``paretune_error``.

    Ray's adapter would otherwise ``tell`` a result without objective values, which Optuna
    rejects, leaving the Optuna trial RUNNING forever.
    """

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result is not None and ERROR_KEY in result:
            result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)

    def on_trial_pruned(self, trial_id: str) -> None:
        """Tells Optuna PRUNED for a trial an early-stopping scheduler stopped."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._ot_study.tell(self._ot_trials[trial_id], state=optuna.trial.TrialState.PRUNED)
        self._completed_trials.add(trial_id)

    def optuna_number(self, trial_id: str) -> int | None:
        """The Optuna trial number behind a Tune trial id, once suggested."""
        trial = self._ot_trials.get(trial_id)
        return None if trial is None else trial.number


def fail_running_trials(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    finished: dict[int, list[float]] | None = None,
) -> int:
    """Settles Optuna trials left RUNNING by a killed driver; returns how many.

    A trial whose number is in ``finished`` (its result reached the results store) is
    told those objective values; every other one becomes FAIL.
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    stale = storage.get_all_trials(
        study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
    )
    for trial in stale:
        values = (finished or {}).get(trial.number)
        state = optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.FAIL
        storage.set_trial_state_values(trial._trial_id, state, values)
    return len(stale)
