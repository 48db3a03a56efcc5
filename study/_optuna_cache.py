"""Optuna's RDB storage for the study driver, the one writer of its Optuna studies.

Optuna wraps an RDB storage in ``_CachedStorage``, which keeps finished trials in memory
but reads every unfinished one back from the database on each ``get_all_trials`` and
``get_trial``: with tens of trials running, every ``ask`` and ``tell`` rebuilt them from
SQL (two thirds of the driver's time at 64 trials at once). A study's driver holds its
lease, so it alone writes its Optuna trials: :class:`DriverStorage` writes each change to
the database first, as before, then to the trial it keeps in memory, and reads the trials
it created from memory. Trials it did not create (left running by a driver that stopped,
or written by another process) are read from the database as Optuna does.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence
from typing import Any

from optuna import distributions
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
from optuna.trial import FrozenTrial, TrialState


class DriverStorage(_CachedStorage):
    """``_CachedStorage`` that also serves the unfinished trials this process created
    from memory (write-through: the database is written first; a failed write changes
    nothing in memory).

    Args:
        backend: the RDB storage to write through to.
    """

    def __init__(self, backend: RDBStorage) -> None:
        super().__init__(backend)
        #: Trial ids created through this storage: their every change passes here.
        self._owned: set[int] = set()
        #: Per study id, the highest trial id read or created.
        self._newest: dict[int, int] = {}

    @property
    def backend(self) -> RDBStorage:
        """The wrapped RDB storage."""
        return self._backend

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        with self._lock:
            self._owned.add(trial_id)
            self._newest[study_id] = max(self._newest.get(study_id, -1), trial_id)
        return trial_id

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
    ) -> None:
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        with self._lock:
            if (trial := self._owned_trial(trial_id)) is not None:
                trial._params[param_name] = distribution.to_external_repr(param_value_internal)
                trial._distributions[param_name] = distribution

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        with self._lock:
            trial = self._owned_trial(trial_id)
            if trial is None:
                return changed
            if changed:
                if values is not None:
                    trial._values = [float(v) for v in values]
                trial.state = state
                if state == TrialState.RUNNING:
                    trial.datetime_start = datetime.datetime.now()
                if state.is_finished():
                    trial.datetime_complete = datetime.datetime.now()
        return changed

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        with self._lock:
            if (trial := self._owned_trial(trial_id)) is not None:
                trial.intermediate_values[step] = intermediate_value

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_user_attr(trial_id, key, value)
        with self._lock:
            if (trial := self._owned_trial(trial_id)) is not None:
                trial._user_attrs[key] = copy.deepcopy(value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        with self._lock:
            if (trial := self._owned_trial(trial_id)) is not None:
                trial._system_attrs[key] = copy.deepcopy(value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            trial = self._owned_trial(trial_id)
            if trial is not None and not trial.state.is_finished():
                return copy.deepcopy(trial)  # the caller's copy: later writes stay ours
        return super().get_trial(trial_id)

    def _owned_trial(self, trial_id: int) -> FrozenTrial | None:
        if trial_id not in self._owned:
            return None
        study_id, number = self._trial_id_to_study_id_and_number[trial_id]
        return self._studies[study_id].trials[number]

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        """Reads trials newer than any known and the unfinished ones not created here."""
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyInfo())
            trials = self._backend._get_trials(
                study_id,
                states=None,
                included_trial_ids=study.unfinished_trial_ids - self._owned,
                trial_id_greater_than=self._newest.get(study_id, -1),
            )
            if not trials:
                return
            self._add_trials_to_cache(study_id, trials)
            for trial in trials:
                self._newest[study_id] = max(self._newest.get(study_id, -1), trial._trial_id)
                if trial.state.is_finished():
                    study.unfinished_trial_ids.discard(trial._trial_id)
                else:
                    study.unfinished_trial_ids.add(trial._trial_id)
