"""The results-store contract."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from study.store._records import (
    ArtifactRecord,
    EvaluationRecord,
    MethodRunRecord,
    StudyRecord,
    TrialRecord,
)


class BaseResultStore(abc.ABC):
    """Where a study's trials, evaluations and artifacts are recorded.

    Contract:
        * **Units of work.** Every method is one atomic transaction: it either fully
          happens or raises :class:`~study.store.StoreError` having changed nothing.
          Transient failures (a lost connection, a locked SQLite file) are retried with
          backoff for a bounded time before raising.
        * **Errors.** Every failure raises :class:`~study.store.StoreError` with a
          one-line message naming the database by its URL with the password hidden. The
          password never appears in a message, a log record or a stored value.
        * **Identity.** Study names are unique in a store. A method run is identified by
          ``(study, method, seed)``, a trial by its id (unique across the store) and by
          ``(method run, number)``; a trial's ``tune_trial_id`` is unique per method run,
          and an evaluation by ``(trial, iteration)``.
        * **Idempotence.** Re-adding a trial with a known ``tune_trial_id``, an evaluation
          of a known iteration or starting a known method run returns the existing row
          (nothing is overwritten), so a re-reported result is stored once.
        * **Time.** Timestamps are stored and returned as timezone-aware UTC.
        * **Concurrency.** An instance may be used from several threads. Processes open
          their own instance (never share one across ``fork``); several processes may
          write to one store at the same time. The study driver is the intended writer.
        * **Values.** JSON values are dicts/lists of plain scalars; NaN and infinities
          are stored as null (NULL for float columns).
    """

    # --- studies -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_study(
        self,
        name: str,
        config: Mapping[str, Any],
        objectives: Sequence[Sequence[str]],
        *,
        versions: Mapping[str, str | None] | None = None,
        exist_ok: bool = False,
    ) -> int:
        """Records a new study and returns its id.

        Raises:
            StoreError: the name exists and ``exist_ok`` is false.
        """

    @abc.abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; an unknown name raises listing the known ones."""

    @abc.abstractmethod
    def list_studies(self) -> list[StudyRecord]:
        """Every study, oldest first."""

    @abc.abstractmethod
    def set_study_status(self, name: str, status: str) -> None:
        """Sets a study's status (a :class:`~study.store.RunStatus` value)."""

    @abc.abstractmethod
    def set_study_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Replaces a study's stored config (``resume --config`` extending the budget)."""

    @abc.abstractmethod
    def delete_study(self, name: str) -> None:
        """Removes a study with its method runs, trials, evaluations and artifact rows."""

    # --- method runs ---------------------------------------------------------------------
    @abc.abstractmethod
    def start_method_run(
        self,
        study: str,
        method: str,
        seed: int,
        *,
        search_space: Mapping[str, Any] | None = None,
        optuna_study_name: str | None = None,
    ) -> int:
        """Marks the run of ``method`` with ``seed`` RUNNING, creating it if new; its id."""

    @abc.abstractmethod
    def finish_method_run(self, method_run_id: int, status: str = "COMPLETE") -> None:
        """Marks a method run finished with ``status``."""

    @abc.abstractmethod
    def method_runs_of(self, study: str) -> list[MethodRunRecord]:
        """The method runs of a study, by method then seed."""

    # --- trials --------------------------------------------------------------------------
    @abc.abstractmethod
    def add_trial(
        self,
        method_run_id: int,
        *,
        params: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        number: int | None = None,
        status: str = "RUNNING",
        tune_trial_id: str | None = None,
        **fields: Any,
    ) -> int:
        """Records a trial and returns its id (the next free ``number`` if not given).

        ``fields`` are further trial columns (see :meth:`update_trial`). A trial whose
        ``tune_trial_id`` is already stored in the method run is not added again: its
        existing id is returned.
        """

    @abc.abstractmethod
    def add_trials(self, method_run_id: int, trials: Sequence[Mapping[str, Any]]) -> list[int]:
        """Records many trials at once (each a mapping of :meth:`add_trial`'s arguments);
        their ids in order."""

    @abc.abstractmethod
    def update_trial(self, trial_id: int, **fields: Any) -> None:
        """Sets trial columns (an unknown column name raises listing the valid ones)."""

    @abc.abstractmethod
    def get_trial(self, trial_id: int) -> TrialRecord:
        """One trial by id."""

    @abc.abstractmethod
    def trials_of(
        self,
        study: str,
        *,
        method: str | None = None,
        seed: int | None = None,
        status: str | Iterable[str] | None = None,
    ) -> list[TrialRecord]:
        """The trials of a study, optionally filtered, in insertion order."""

    @abc.abstractmethod
    def count_trials(
        self,
        study: str,
        *,
        method: str | None = None,
        seed: int | None = None,
        status: str | Iterable[str] | None = None,
        is_reference: bool | None = None,
    ) -> int:
        """How many trials match."""

    @abc.abstractmethod
    def reference_trial(self, study: str, seed: int | None = None) -> TrialRecord | None:
        """The latest COMPLETE dense reference trial (for ``seed`` if given), if any."""

    @abc.abstractmethod
    def mark_running_as_failed(self, study: str, reason: str) -> int:
        """Marks the study's WAITING and RUNNING trials FAILED with ``reason`` as error
        (their driver is gone); returns how many changed. Used when resuming."""

    # --- evaluations and artifacts -------------------------------------------------------
    @abc.abstractmethod
    def add_evaluation(self, trial_id: int, evaluation: Mapping[str, Any]) -> bool:
        """Records one evaluation (the fields of ``trials.Evaluation``); False if that
        iteration was already stored (then nothing changes)."""

    @abc.abstractmethod
    def add_evaluations(self, trial_id: int, evaluations: Iterable[Mapping[str, Any]]) -> int:
        """Records several evaluations, skipping stored iterations; how many were new."""

    @abc.abstractmethod
    def evaluations_of(self, trial_id: int) -> list[EvaluationRecord]:
        """A trial's evaluations by iteration."""

    @abc.abstractmethod
    def add_artifact(self, trial_id: int, kind: str, path: str, size: int | None = None) -> int:
        """Records a file a trial produced; its id."""

    @abc.abstractmethod
    def artifacts_of(self, trial_id: int) -> list[ArtifactRecord]:
        """A trial's artifacts, oldest first."""

    # --- lifetime ------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Releases connections; the store is not used afterwards."""

    def __enter__(self) -> BaseResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
