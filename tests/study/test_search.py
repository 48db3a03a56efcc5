"""Optuna trials a killed driver left RUNNING are settled on resume (real SQLite storage)."""

from __future__ import annotations

from pathlib import Path

import optuna

from study._search import fail_running_trials


def test_running_trials_get_their_stored_values_or_fail(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(
        study_name="s/magnitude/seed-0", storage=storage, directions=["maximize", "maximize"]
    )
    stored, lost, done = study.ask(), study.ask(), study.ask()
    study.tell(done, [1.0, 0.5])
    changed = fail_running_trials(storage, "s/magnitude/seed-0", {stored.number: [-2.5, 0.9]})
    assert changed == 2
    trials = {t.number: t for t in optuna.load_study(study_name="s/magnitude/seed-0",
                                                     storage=storage).trials}  # fmt: skip
    assert trials[stored.number].state == optuna.trial.TrialState.COMPLETE
    assert trials[stored.number].values == [-2.5, 0.9]
    assert trials[lost.number].state == optuna.trial.TrialState.FAIL
    assert trials[done.number].values == [1.0, 0.5]
    assert fail_running_trials(storage, "no-such-study") == 0
