"""The driver's Optuna storage: what it serves from memory is what the database holds."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from study._optuna_cache import DriverStorage
from study._runner import optuna_storage

STATE = optuna.trial.TrialState
DIRECTIONS = ["maximize", "maximize"]


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def _fields(trial: optuna.trial.FrozenTrial) -> tuple[object, ...]:
    return (
        trial.number,
        trial.state,
        trial.params,
        trial.distributions,
        trial.values,
        trial.user_attrs,
        trial.system_attrs,
        trial.intermediate_values,
        trial.datetime_start is None,
        trial.datetime_complete is None,
    )


def _from_database(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _study(storage: optuna.storages.BaseStorage, name: str = "s") -> optuna.Study:
    return optuna.create_study(
        study_name=name,
        storage=storage,
        directions=DIRECTIONS,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        load_if_exists=True,
    )


def _ask(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_categorical("optimizer", ["sgd", "adam"])
    trial.suggest_int("rounds", 1, 4)
    return trial


def test_every_trial_in_memory_equals_the_database(tmp_path: Path) -> None:
    storage = optuna_storage(_url(tmp_path))
    assert isinstance(storage, DriverStorage)
    study = _study(storage)
    study.enqueue_trial({"lr": 0.01})
    running = []
    for k in range(12):
        trial = _ask(study)
        trial.set_user_attr("seed", k)
        trial.storage.set_trial_system_attr(trial._trial_id, "route", {"method": "m", "k": k})
        running.append(trial)
        if k % 3 == 0:  # some finish while others run, as in a study
            done = running.pop(0)
            state = (STATE.COMPLETE, STATE.FAIL, STATE.PRUNED)[k % 9 // 3]
            values = [float(k), -float(k)] if state == STATE.COMPLETE else None
            study.tell(done, values, state=state)
    assert running  # some still running: those are what the cache now serves
    for k, trial in enumerate(running):
        trial.storage.set_trial_intermediate_value(trial._trial_id, 1, 0.1 * k)
    in_memory = study.get_trials()
    stored = _from_database(_url(tmp_path), "s")
    assert [_fields(t) for t in in_memory] == [_fields(t) for t in stored]
    assert in_memory[0].params["lr"] == 0.01  # the enqueued parameters
    for cached, read in zip(in_memory, stored, strict=True):
        for attribute in ("datetime_start", "datetime_complete"):
            mine, theirs = getattr(cached, attribute), getattr(read, attribute)
            assert mine is None or abs((mine - theirs).total_seconds()) < 2


def test_running_trials_are_not_read_back_from_the_database(tmp_path: Path) -> None:
    storage = optuna_storage(_url(tmp_path))
    study = _study(storage)
    reads = []
    backend = storage.backend
    original = backend._get_trials

    def counted(study_id, states, included_trial_ids, trial_id_greater_than):  # type: ignore[no-untyped-def]
        trials = original(study_id, states, included_trial_ids, trial_id_greater_than)
        reads.append(len(trials))
        return trials

    backend._get_trials = counted  # type: ignore[method-assign]
    running = [_ask(study) for _ in range(20)]
    study.get_trials()
    for trial in running:
        storage.get_trial(trial._trial_id)
    assert sum(reads) == 0, reads  # Optuna's own cache re-read every running trial


def test_trials_written_by_another_process_are_read_and_followed(tmp_path: Path) -> None:
    ours = _study(optuna_storage(_url(tmp_path)))
    _ask(ours)
    assert len(ours.get_trials()) == 1
    other_storage = optuna.storages.RDBStorage(_url(tmp_path))
    other = _study(other_storage)
    foreign = _ask(other)
    seen = ours.get_trials()
    assert [t.state for t in seen] == [STATE.RUNNING, STATE.RUNNING]
    other.tell(foreign, [1.0, 2.0])
    assert ours.get_trials()[1].state == STATE.COMPLETE  # an unfinished foreign one re-read
    assert ours.get_trials()[1].values == [1.0, 2.0]
    other_storage.engine.dispose()


def test_a_refused_write_changes_nothing_in_memory(tmp_path: Path) -> None:
    study = _study(optuna_storage(_url(tmp_path)))
    trial = _ask(study)
    study.tell(trial, [1.0, 1.0])
    with pytest.raises(RuntimeError):  # Optuna refuses changes to a finished trial
        study._storage.set_trial_user_attr(trial._trial_id, "late", 1)
    assert "late" not in study.get_trials()[0].user_attrs
    with pytest.raises(RuntimeError):
        study._storage.set_trial_state_values(trial._trial_id, STATE.FAIL)
    assert study.get_trials()[0].state == STATE.COMPLETE
    # a WAITING -> RUNNING change that lost (the trial is no longer waiting) returns False
    running = _ask(study)
    assert study._storage.set_trial_state_values(running._trial_id, STATE.RUNNING) is False
    assert study.get_trials()[1].state == STATE.RUNNING


def test_the_study_is_settled_on_what_the_database_holds_not_on_memory(tmp_path: Path) -> None:
    """A tell that the database lost must make the study INCOMPLETE, though the driver's
    memory of its trials says it was told."""
    import sqlite3

    from study._config import parse_config
    from study._plan import optuna_study_name
    from study._runner import StudyRunner
    from study.store import ResultStore

    url = _url(tmp_path)
    config = parse_config({"name": "s", "methods": [{"name": "magnitude"}]})
    store = ResultStore(url)
    store.create_study("s", config.public_dict(), config.objectives)
    runner = StudyRunner(config, store, url)
    study = _study(runner._optuna(), optuna_study_name("s", "magnitude", 0))
    trial = _ask(study)
    study.tell(trial, [1.0, 0.5])
    run = store.start_method_run("s", "magnitude", 0)
    store.add_trial(run, status="COMPLETE", optuna_trial_number=trial.number)
    assert runner.settle_status() == []
    assert store.get_study("s").status == "COMPLETE"

    with sqlite3.connect(tmp_path / "optuna.db") as database:  # the tell never landed
        database.execute("UPDATE trials SET state = 'RUNNING', datetime_complete = NULL")
    assert study.get_trials()[0].state == STATE.COMPLETE  # memory still says told
    problems = runner.settle_status()
    assert any("is COMPLETE but its Optuna trial 0 is RUNNING" in line for line in problems)
    assert store.get_study("s").status == "INCOMPLETE"
    store.close()
