"""Tune callbacks running in the driver: the single writer of the results store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study._trainable import ERROR_KEY, FINAL_KEY, FIXED_KEY, ROUTE_KEY, trial_fields

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from study._router import RoutedScheduler, StudyRouter
    from study.store import BaseResultStore

logger = logging.getLogger(__name__)


def searched_params(config: dict[str, Any]) -> dict[str, Any]:
    """The searcher's suggestions of a Tune config (the fixed part left out)."""
    return {name: value for name, value in config.items() if name not in (FIXED_KEY, ROUTE_KEY)}


def route_of(config: dict[str, Any]) -> tuple[str, int, bool]:
    """``(method, seed, is_reference)`` of a Tune trial's config."""
    route = config.get(ROUTE_KEY) or {}
    fixed = config.get(FIXED_KEY) or {}
    method = route.get("method", fixed.get("method", ""))
    return method, int(route.get("seed", fixed.get("seed", 0))), bool(route.get("reference"))


def _error_text(trial: Trial) -> str:
    """The last line of the error a Tune trial died with."""
    path = trial.error_file
    if path and Path(path).is_file():
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1][:2000]
    return "trial failed in Ray (worker or node lost)"


def final_fields(final: dict[str, Any], cpus: float, gpus: float) -> dict[str, Any]:
    """Store columns of a finished trial from its ``TrialResult`` dict."""
    sparsity = final["sparsity"]
    wall = float(final["wall_time_s"])
    return {
        "status": "COMPLETE",
        "metrics": final["metrics"],
        "sparsity": sparsity["overall"],
        "components": sparsity["components"],
        "thresholds": final.get("thresholds") or {},
        "task_weights": final.get("task_weights") or {},
        "delta_t": final.get("delta_t"),
        "delta_t_per_task": final.get("delta_t_per_task") or {},
        "iterations": final["iterations"],
        "wall_time_s": wall,
        "device_s": wall * (gpus if gpus > 0 else cpus),
        "parameters": final.get("parameters"),
        "flops": final.get("flops"),
        "grouping": final.get("grouping") or {},
        "finished_at": datetime.now(UTC),
    }


class StoreRecorder(Callback):
    """Writes every Tune trial, evaluation and outcome of a study's run to the store.

    ``runs`` maps ``(method, seed)`` to the method run id trials are stored under. When a
    dense reference finishes, its metrics are posted on the reference ``board`` (see
    :mod:`study._board`) so that the other trials of its seed can be scored.
    """

    def __init__(
        self,
        store: BaseResultStore,
        runs: dict[tuple[str, int], int],
        *,
        router: StudyRouter | None,
        cpus: float,
        gpus: float,
        versions: dict[str, str | None],
        board: Any = None,
        scheduler: RoutedScheduler | None = None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.last_evaluation: dict[str, dict[str, Any]] = {}
        self.runs = runs
        self.router = router
        self.cpus = cpus
        self.gpus = gpus
        self.versions = versions
        self.board = board
        self.trial_ids: dict[str, int] = {}
        self.finished: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live store, searcher and board stay here."""
        return {**self.__dict__, "store": None, "router": None, "board": None, "scheduler": None}

    def _trial_id(self, trial: Trial) -> int:
        known = self.trial_ids.get(trial.trial_id)
        if known is not None:
            return known
        fields = trial_fields(trial.config)
        method, seed, is_reference = route_of(trial.config)
        number = self.router.optuna_number(trial.trial_id) if self.router else None
        trial_id = self.store.add_trial(
            self.runs[(method, seed)],
            params=searched_params(trial.config),
            config=fields,
            seed=seed,
            tune_trial_id=trial.trial_id,
            optuna_trial_number=number,
            is_reference=is_reference,
            versions=self.versions,
            started_at=datetime.now(UTC),
        )
        self.trial_ids[trial.trial_id] = trial_id
        return trial_id

    def _post_reference(self, trial: Trial, metrics: dict[str, Any] | None, error: str) -> None:
        _, seed, is_reference = route_of(trial.config)
        if not is_reference or self.board is None:
            return
        if metrics is None:
            self.board.fail.remote(seed, error)
        else:
            self.board.post.remote(seed, metrics)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._trial_id(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        trial_id = self._trial_id(trial)
        where = {"host": result.get("host"), "node_id": result.get("node_id")}
        if "evaluation" in result:
            self.store.add_evaluation(trial_id, result["evaluation"])
            self.last_evaluation[trial.trial_id] = result["evaluation"]
        if FINAL_KEY in result:
            fields = final_fields(result[FINAL_KEY], self.cpus, self.gpus)
            if route_of(trial.config)[2]:  # the reference's Delta_T is 0 by definition
                fields["delta_t"] = 0.0
            self.store.update_trial(trial_id, **fields, **where)
            self.finished[trial.trial_id] = "COMPLETE"
            self._post_reference(trial, fields["metrics"], "")
        elif ERROR_KEY in result:
            self.store.update_trial(
                trial_id,
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
        trial_id = self._trial_id(trial)
        error = _error_text(trial)
        self.store.update_trial(
            trial_id, status="FAILED", error=error, finished_at=datetime.now(UTC)
        )
        self.finished[trial.trial_id] = "FAILED"
        self._post_reference(trial, None, error)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial the scheduler stopped early is stored PRUNED with its last evaluation."""
        if trial.trial_id in self.finished or self.scheduler is None:
            return
        rung = self.scheduler.stopped_rung(trial.trial_id)
        if rung is None:
            return
        fields: dict[str, Any] = {"status": "PRUNED", "rung": rung}
        last = self.last_evaluation.get(trial.trial_id)
        if last is not None:
            elapsed = float(last["elapsed_s"])
            fields.update(
                metrics=last["metrics"],
                sparsity=last["sparsity"],
                components=last["components"],
                thresholds=last.get("thresholds") or {},
                task_weights=last.get("task_weights") or {},
                delta_t=last.get("delta_t"),
                iterations=last["iteration"],
                wall_time_s=elapsed,
                device_s=elapsed * (self.gpus if self.gpus > 0 else self.cpus),
            )
        self.store.update_trial(self._trial_id(trial), **fields, finished_at=datetime.now(UTC))
        self.finished[trial.trial_id] = "PRUNED"
