"""A study is COMPLETE only if every stored outcome is also its Optuna study's."""

from __future__ import annotations

from pathlib import Path

import optuna

from study._audit import search_problems
from study._config import parse_config
from study._plan import optuna_study_name
from study.store import ResultStore


def _setup(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/paretune.db"
    config = parse_config({"name": "s", "methods": [{"name": "dense"}, {"name": "magnitude"}]})
    store = ResultStore(url)
    store.create_study("s", config.public_dict(), config.objectives)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        study_name=optuna_study_name("s", "magnitude", 0),
        storage=storage,
        directions=["maximize", "maximize"],
    )
    run = store.start_method_run("s", "magnitude", 0)
    return config, store, storage, study, run


def _add(store, run, study, status: str, tell=None, **fields):
    trial = study.ask()
    if tell is not None:
        study.tell(trial, **tell)
    store.add_trial(run, status=status, optuna_trial_number=trial.number, **fields)
    return trial.number


def test_a_consistent_study_has_no_problems(tmp_path: Path) -> None:
    config, store, storage, study, run = _setup(tmp_path)
    _add(store, run, study, "COMPLETE", {"values": [1.0, 0.9]})
    _add(store, run, study, "FAILED", {"state": optuna.trial.TrialState.FAIL})
    _add(store, run, study, "PRUNED", {"state": optuna.trial.TrialState.PRUNED})
    ref = store.start_method_run("s", "dense", 0)
    store.add_trial(ref, status="COMPLETE", is_reference=True)  # never told: not searched
    assert search_problems(store, storage, config) == []
    store.close()


def test_every_disagreement_is_one_line(tmp_path: Path) -> None:
    config, store, storage, study, run = _setup(tmp_path)
    left = _add(store, run, study, "COMPLETE")  # result stored, never told
    failed = _add(store, run, study, "COMPLETE", {"state": optuna.trial.TrialState.FAIL})
    _add(
        store,
        run,
        study,
        "COMPLETE",
        {"state": optuna.trial.TrialState.FAIL},
        search_error="the trial reported no value for objective 'delta_t'",
    )
    store.add_trial(run, status="COMPLETE", optuna_trial_number=99)
    study.enqueue_trial({"target_sparsity": 0.9})  # a level placed, never asked for
    waiting = len(study.trials) - 1
    problems = search_problems(store, storage, config)
    assert problems == [
        f"magnitude (seed 0) trial 1 is COMPLETE but its Optuna trial {left} is RUNNING",
        f"magnitude (seed 0) trial 2 is COMPLETE but its Optuna trial {failed} is FAIL",
        "magnitude (seed 0) trial 3: the trial reported no value for objective 'delta_t'",
        "magnitude (seed 0) trial 4: Optuna has no trial 99",
        f"magnitude (seed 0): Optuna trial {left} is RUNNING",
        f"magnitude (seed 0): Optuna trial {waiting} is WAITING",
    ]
    store.close()
