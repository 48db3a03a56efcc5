"""Did every trial's outcome reach both the results store and its Optuna study?

A study is COMPLETE only if it did; anything else is a problem to store and show. The
check compares, per method run, the stored trials with the trials of its Optuna study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from study._plan import optuna_study_name, plan_methods

if TYPE_CHECKING:
    from study._config import StudyConfig
    from study.store import ResultStore

_STATE = optuna.trial.TrialState
#: The Optuna state each finished trial status must have been told.
_TOLD = {"COMPLETE": _STATE.COMPLETE, "PRUNED": _STATE.PRUNED, "FAILED": _STATE.FAIL}


def search_problems(
    store: ResultStore, storage: optuna.storages.BaseStorage, config: StudyConfig
) -> list[str]:
    """One line per trial whose outcome Optuna does not hold as the store does."""
    problems = []
    for plan in plan_methods(config):
        name = optuna_study_name(config.name, plan.method, plan.seed)
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            continue  # the run never asked Optuna for a trial
        told = {t.number: t for t in storage.get_all_trials(study_id, deepcopy=False)}
        width = len(config.objectives_for(plan.method))
        for trial in store.trials_of(config.name, method=plan.method, seed=plan.seed):
            where = f"{plan.label} trial {trial.id}"
            if trial.search_error:
                problems.append(f"{where}: {trial.search_error}")
                continue
            if trial.optuna_trial_number is None:
                continue
            optuna_trial = told.get(trial.optuna_trial_number)
            expected = _TOLD.get(trial.status)
            if optuna_trial is None:
                problems.append(f"{where}: Optuna has no trial {trial.optuna_trial_number}")
            elif expected is None or optuna_trial.state != expected:
                problems.append(
                    f"{where} is {trial.status} but its Optuna trial "
                    f"{optuna_trial.number} is {optuna_trial.state.name}"
                )
            elif expected == _STATE.COMPLETE and len(optuna_trial.values or ()) != width:
                problems.append(
                    f"{where}: its Optuna trial holds {len(optuna_trial.values or ())} "
                    f"objective value(s), the search has {width}"
                )
        for optuna_trial in told.values():  # never finished, or asked for and never run
            if optuna_trial.state in (_STATE.RUNNING, _STATE.WAITING):
                state = optuna_trial.state.name
                problems.append(f"{plan.label}: Optuna trial {optuna_trial.number} is {state}")
    return problems
