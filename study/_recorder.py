"""Tune callbacks running in the driver: the single writer of the results store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study._trainable import ERROR_KEY, FINAL_KEY, FIXED_KEY, trial_fields

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from study._search import StudySearch
    from study.store import BaseResultStore

logger = logging.getLogger(__name__)


def searched_params(config: dict[str, Any]) -> dict[str, Any]:
    """The searcher's suggestions of a Tune config (the fixed part left out)."""
    return {name: value for name, value in config.items() if name != FIXED_KEY}


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
        "finished_at": datetime.now(UTC),
    }


class StoreRecorder(Callback):
    """Writes every Tune trial, evaluation and outcome of one method run to the store."""

    def __init__(
        self,
        store: BaseResultStore,
        method_run_id: int,
        *,
        search: StudySearch | None,
        cpus: float,
        gpus: float,
        versions: dict[str, str | None],
        is_reference: bool = False,
    ) -> None:
        self.store = store
        self.method_run_id = method_run_id
        self.search = search
        self.cpus = cpus
        self.gpus = gpus
        self.versions = versions
        self.is_reference = is_reference
        self.trial_ids: dict[str, int] = {}
        self.finished: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live store and searcher stay in this process."""
        return {**self.__dict__, "store": None, "search": None}

    def _trial_id(self, trial: Trial) -> int:
        known = self.trial_ids.get(trial.trial_id)
        if known is not None:
            return known
        fields = trial_fields(trial.config)
        number = self.search.optuna_number(trial.trial_id) if self.search else None
        trial_id = self.store.add_trial(
            self.method_run_id,
            params=searched_params(trial.config),
            config=fields,
            seed=fields.get("seed", 0),
            tune_trial_id=trial.trial_id,
            optuna_trial_number=number,
            is_reference=self.is_reference,
            versions=self.versions,
            started_at=datetime.now(UTC),
        )
        self.trial_ids[trial.trial_id] = trial_id
        return trial_id

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
        if FINAL_KEY in result:
            fields = final_fields(result[FINAL_KEY], self.cpus, self.gpus)
            if self.is_reference:  # the reference's Delta_T is 0 by definition
                fields["delta_t"] = 0.0
            self.store.update_trial(trial_id, **fields, **where)
            self.finished[trial.trial_id] = "COMPLETE"
        elif ERROR_KEY in result:
            self.store.update_trial(
                trial_id,
                status="FAILED",
                error=result[ERROR_KEY],
                finished_at=datetime.now(UTC),
                **where,
            )
            self.finished[trial.trial_id] = "FAILED"

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        logger.warning("trial %s lost its worker; Ray retries it", trial.trial_id)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        trial_id = self._trial_id(trial)
        self.store.update_trial(
            trial_id, status="FAILED", error=_error_text(trial), finished_at=datetime.now(UTC)
        )
        self.finished[trial.trial_id] = "FAILED"
