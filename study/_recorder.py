"""Tune callbacks running in the driver: the single writer of the results store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study._outcome import evaluation_outcome
from study._tune_config import ERROR_KEY, FINAL_KEY, route_of, searched_params, trial_fields
from study._writer import AddEvaluation, AddTrial, StoreWriter, UpdateTrial

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from study._router import RoutedScheduler, StudyRouter
    from study.store import ResultStore

logger = logging.getLogger(__name__)


def _error_text(trial: Trial) -> str:
    """The last line of the error a Tune trial died with."""
    path = trial.error_file
    if path and Path(path).is_file():
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1][:2000]
    return "trial failed in Ray (worker or node lost)"


class StoreRecorder(Callback):
    """Writes every Tune trial, evaluation and outcome of a study's run to the store.

    ``runs`` maps ``(method, seed)`` to the method run id trials are stored under. When a
    dense reference finishes, its metrics are posted on the reference ``board`` (see
    :mod:`study._board`) so that the other trials of its seed can be scored. An outcome
    that did not reach the trial's Optuna study is stored as the trial's ``search_error``.

    The writes run in order on a background thread (:class:`~study._writer.StoreWriter`);
    :meth:`flush` waits for them and raises the first that failed.
    """

    def __init__(
        self,
        store: ResultStore,
        runs: dict[tuple[str, int], int],
        *,
        router: StudyRouter | None,
        versions: dict[str, str | None],
        board: Any = None,
        scheduler: RoutedScheduler | None = None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.last_evaluation: dict[str, dict[str, Any]] = {}
        self.runs = runs
        self.router = router
        self.versions = versions
        self.board = board
        self.writer = StoreWriter(store)
        self.seen: set[str] = set()
        self.finished: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live store, searcher and board stay here."""
        live = ("store", "router", "board", "scheduler", "writer")
        return {**self.__dict__, **dict.fromkeys(live)}

    def flush(self) -> None:
        """Waits until everything recorded so far is stored (raises a failed write)."""
        self.writer.flush()

    def close(self) -> None:
        """Stores what is queued and stops the writer thread."""
        self.writer.close()

    def _add(self, trial: Trial) -> str:
        """Queues the trial's row on first sight; its Tune id."""
        if trial.trial_id not in self.seen:
            self.seen.add(trial.trial_id)
            route = route_of(trial.config)
            number = self.router.optuna_number(trial.trial_id) if self.router else None
            fields = {
                "params": searched_params(trial.config),
                "config": trial_fields(trial.config),
                "seed": route.seed,
                "tune_trial_id": trial.trial_id,
                "optuna_trial_number": number,
                "is_reference": route.reference,
                "versions": self.versions,
                "started_at": datetime.now(UTC),
            }
            self.writer.submit(
                AddTrial(trial.trial_id, self.runs[(route.method, route.seed)], fields)
            )
        return trial.trial_id

    def _update(self, trial: Trial, **fields: Any) -> None:
        self.writer.submit(UpdateTrial(self._add(trial), fields))

    def _post_reference(self, trial: Trial, metrics: dict[str, Any] | None, error: str) -> None:
        route = route_of(trial.config)
        if not route.reference or self.board is None:
            return
        if metrics is None:
            self.board.fail.remote(route.seed, error)
        else:
            self.board.post.remote(route.seed, metrics)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._add(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        tune_id = self._add(trial)
        where = {"host": result.get("host"), "node_id": result.get("node_id")}
        if "evaluation" in result:
            self.writer.submit(AddEvaluation(tune_id, result["evaluation"]))
            self.last_evaluation[tune_id] = result["evaluation"]
        if FINAL_KEY in result:
            outcome = result[FINAL_KEY]
            self._update(
                trial, status="COMPLETE", **outcome, finished_at=datetime.now(UTC), **where
            )
            self.finished[trial.trial_id] = "COMPLETE"
            self._post_reference(trial, outcome["metrics"], "")
        elif ERROR_KEY in result:
            self._update(
                trial,
                status="FAILED",
                error=result[ERROR_KEY],
                finished_at=datetime.now(UTC),
                **where,
            )
            self.finished[trial.trial_id] = "FAILED"
            self._post_reference(trial, None, result[ERROR_KEY])

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        logger.warning("trial %s lost its worker; Ray retries it", trial.trial_id)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        error = _error_text(trial)
        self.last_evaluation.pop(trial.trial_id, None)
        self._update(trial, status="FAILED", error=error, finished_at=datetime.now(UTC))
        self.finished[trial.trial_id] = "FAILED"
        self._post_reference(trial, None, error)
        self._store_search_problem(trial)

    def _store_search_problem(self, trial: Trial) -> None:
        """Stores why the trial's outcome did not reach Optuna, if it did not."""
        problem = self.router.search_problem(trial.trial_id) if self.router else None
        if problem:
            self._update(trial, search_error=problem)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Stores a failed ``tell``; a trial the scheduler stopped early is stored PRUNED
        with its last evaluation."""
        self._store_search_problem(trial)
        last = self.last_evaluation.pop(trial.trial_id, None)  # kept for running trials only
        if trial.trial_id in self.finished or self.scheduler is None:
            return
        rung = self.scheduler.stopped_rung(trial.trial_id)
        if rung is None:
            return
        fields: dict[str, Any] = {"status": "PRUNED", "rung": rung}
        if last is not None:
            fields.update(evaluation_outcome(last, route_of(trial.config).device_share))
        self._update(trial, **fields, finished_at=datetime.now(UTC))
        self.finished[trial.trial_id] = "PRUNED"
