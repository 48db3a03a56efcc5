"""The store recorder with fake Tune trials and a real SQLite store (no Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from study._outcome import OUTCOME_COLUMNS, evaluation_outcome, result_outcome
from study._recorder import StoreRecorder
from study._tune_config import ERROR_KEY, FINAL_KEY, TrialRoute, encode
from study.store import ResultStore

METRICS = {"segment_semantic": {"miou": 0.5}, "depth_zbuffer": {"abs_err": 0.2}}
EVALUATION = {
    "iteration": 20,
    "metrics": METRICS,
    "losses": {"segment_semantic": 1.0, "depth_zbuffer": 0.5},
    "sparsity": 0.8,
    "components": {"backbone": 0.8},
    "thresholds": {},
    "task_weights": {"segment_semantic": 1.0, "depth_zbuffer": 1.0},
    "delta_t": -3.0,
    "delta_t_per_task": {"segment_semantic": -1.0, "depth_zbuffer": -5.0},
    "delta_m": -2.5,
    "elapsed_s": 4.0,
    "images_seen": 320,
    "flops": 1e9,
    "parameters": 1000,
}
RESULT = {
    "method": "magnitude",
    "seed": 0,
    "iterations": 40,
    "metrics": METRICS,
    "sparsity": {"overall": 0.9, "components": {"backbone": 0.9}},
    "thresholds": {},
    "task_weights": {},
    "delta_t": -4.0,
    "delta_t_per_task": {"segment_semantic": -2.0, "depth_zbuffer": -6.0},
    "delta_m": -3.5,
    "wall_time_s": 8.0,
    "flops": 2e9,
    "parameters": 900,
    "grouping": None,
    "checkpoint": None,
}


@dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any]
    error_file: str | None = None


@dataclass
class Remote:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def remote(self, *args: Any) -> None:
        self.calls.append(args)


@dataclass
class FakeBoard:
    post: Remote = field(default_factory=Remote)
    fail: Remote = field(default_factory=Remote)


class FakeRouter:
    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def optuna_number(self, trial_id: str) -> int | None:
        return int(trial_id[1:]) + 10

    def search_problem(self, trial_id: str) -> str | None:
        return self.problems.get(trial_id)


class FakeScheduler:
    def __init__(self, stopped: dict[str, int]) -> None:
        self.stopped = stopped

    def stopped_rung(self, trial_id: str) -> int | None:
        return self.stopped.get(trial_id)


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    store = ResultStore(f"sqlite:///{tmp_path}/paretune.db")
    store.create_study("s", {}, [("delta_t", "maximize"), ("sparsity", "maximize")])
    return store


def tune_trial(trial_id: str, method: str, *, reference: bool = False, share: float = 2.0):
    route = TrialRoute(method, 0, reference=reference, board="b", device_share=share)
    fields = {"method": method, "seed": 0, "iterations": 40}
    params = {} if reference else {"target_sparsity": 0.9}
    return FakeTrial(trial_id, encode(fields, route, params))


def recorder(store: ResultStore, **changes: Any) -> tuple[StoreRecorder, dict[str, Any]]:
    runs = {
        (method, 0): store.start_method_run("s", method, 0) for method in ("dense", "magnitude")
    }
    parts = {"router": FakeRouter(), "board": FakeBoard(), "scheduler": FakeScheduler({})}
    parts.update(changes)
    return StoreRecorder(store, runs, versions={"paretune": "0"}, **parts), parts


def test_a_started_trial_is_stored_once_with_its_config_and_route(store: ResultStore) -> None:
    callback, _ = recorder(store)
    trial = tune_trial("t3", "magnitude")
    callback.on_trial_start(0, [], trial)
    callback.on_trial_start(0, [], trial)  # Tune may start a retried trial again
    callback.flush()
    (stored,) = store.trials_of("s")
    assert (stored.method, stored.status, stored.is_reference) == ("magnitude", "RUNNING", False)
    assert stored.params == {"target_sparsity": 0.9}
    assert stored.config["method_params"] == {"target_sparsity": 0.9}
    assert (stored.tune_trial_id, stored.optuna_trial_number) == ("t3", 13)
    assert stored.versions == {"paretune": "0"} and stored.started_at is not None


def test_evaluations_then_the_final_outcome(store: ResultStore) -> None:
    callback, parts = recorder(store)
    trial = tune_trial("t0", "magnitude")
    where = {"host": "node-a", "node_id": "abc"}
    callback.on_trial_result(0, [], trial, {"evaluation": EVALUATION, **where})
    final = result_outcome(RESULT, 2.0)
    callback.on_trial_result(0, [], trial, {FINAL_KEY: final, "delta_t": -4.0, **where})
    callback.flush()
    (stored,) = store.trials_of("s")
    assert stored.status == "COMPLETE" and stored.finished_at is not None
    assert (stored.host, stored.node_id) == ("node-a", "abc")
    assert (stored.sparsity, stored.components) == (0.9, {"backbone": 0.9})
    assert (stored.delta_t, stored.delta_m, stored.iterations) == (-4.0, -3.5, 40)
    assert (stored.wall_time_s, stored.device_s) == (8.0, 16.0)  # 2 CPUs held
    assert [e.iteration for e in store.evaluations_of(stored.id)] == [20]
    assert parts["board"].post.calls == []  # not a reference


def test_a_finished_reference_is_posted_on_the_board(store: ResultStore) -> None:
    callback, parts = recorder(store)
    trial = tune_trial("r0", "dense", reference=True)
    callback.on_trial_result(0, [], trial, {FINAL_KEY: result_outcome(RESULT, 1.0)})
    assert parts["board"].post.calls == [(0, METRICS)]
    callback.flush()
    assert store.trials_of("s")[0].is_reference


def test_a_trial_that_reports_an_error_is_stored_failed(store: ResultStore) -> None:
    callback, parts = recorder(store)
    trial = tune_trial("r0", "dense", reference=True)
    callback.on_trial_result(0, [], trial, {ERROR_KEY: "TrialDiverged: loss nan"})
    callback.flush()
    (stored,) = store.trials_of("s")
    assert (stored.status, stored.error) == ("FAILED", "TrialDiverged: loss nan")
    assert parts["board"].fail.calls == [(0, "TrialDiverged: loss nan")]


def test_a_trial_lost_in_ray_is_stored_failed_with_its_error_and_search_problem(
    store: ResultStore, tmp_path: Path
) -> None:
    router = FakeRouter()
    callback, _ = recorder(store, router=router)
    error_file = tmp_path / "error.txt"
    error_file.write_text("Traceback ...\n  frame\nray.exceptions.NodeDiedError: node gone\n\n")
    trial = tune_trial("t1", "magnitude")
    trial.error_file = str(error_file)
    router.problems["t1"] = "Optuna was told nothing: storage unreachable"
    callback.on_trial_error(0, [], trial)
    callback.flush()
    (stored,) = store.trials_of("s")
    assert stored.status == "FAILED"
    assert stored.error == "ray.exceptions.NodeDiedError: node gone"
    assert stored.search_error == "Optuna was told nothing: storage unreachable"


def test_an_unreadable_error_file_still_fails_the_trial(store: ResultStore) -> None:
    callback, _ = recorder(store)
    trial = tune_trial("t1", "magnitude")
    trial.error_file = "/nonexistent/error.txt"
    callback.on_trial_error(0, [], trial)
    callback.flush()
    assert store.trials_of("s")[0].error == "trial failed in Ray (worker or node lost)"


def test_a_trial_stopped_early_is_stored_pruned_with_its_last_evaluation(
    store: ResultStore,
) -> None:
    callback, _ = recorder(store, scheduler=FakeScheduler({"t2": 1}))
    trial = tune_trial("t2", "magnitude", share=0.5)
    callback.on_trial_result(0, [], trial, {"evaluation": EVALUATION})
    callback.on_trial_complete(0, [], trial)
    callback.flush()
    (stored,) = store.trials_of("s")
    assert (stored.status, stored.rung) == ("PRUNED", 1)
    assert (stored.iterations, stored.wall_time_s, stored.device_s) == (20, 4.0, 2.0)
    assert (stored.sparsity, stored.delta_t, stored.metrics) == (0.8, -3.0, METRICS)
    assert callback.last_evaluation == {}  # held for running trials only


def test_a_completed_trial_is_not_pruned_and_a_problem_is_kept(store: ResultStore) -> None:
    router = FakeRouter()
    callback, _ = recorder(store, router=router, scheduler=FakeScheduler({"t0": 0}))
    trial = tune_trial("t0", "magnitude")
    callback.on_trial_result(0, [], trial, {FINAL_KEY: result_outcome(RESULT, 2.0)})
    router.problems["t0"] = "tell failed"
    callback.on_trial_complete(0, [], trial)
    callback.flush()
    (stored,) = store.trials_of("s")
    assert (stored.status, stored.rung, stored.search_error) == ("COMPLETE", None, "tell failed")


def test_outcomes_of_a_result_and_of_an_evaluation_fill_the_same_columns() -> None:
    from_result = result_outcome(RESULT, 2.0)
    from_evaluation = evaluation_outcome(EVALUATION, 2.0)
    assert set(from_result) == set(from_evaluation) == set(OUTCOME_COLUMNS)
    assert from_result["device_s"] == 16.0 and from_evaluation["device_s"] == 8.0


def test_pickling_leaves_the_live_parts_behind(store: ResultStore) -> None:
    import pickle

    callback, _ = recorder(store)
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.store is None and copy.router is None and copy.board is None
