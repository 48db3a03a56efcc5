"""A routed trial's reports, with a fake Tune session and reference (no Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from study._outcome import OUTCOME_COLUMNS
from study._trainable import ProgressTicker, run_routed_trial
from study._tune_config import ERROR_KEY, FINAL_KEY, PROGRESS_KEY, TrialRoute, encode

TINY = {
    "dataset": "scenes-nyu",
    "dataset_options": {"resolution": 32, "num_train": 48, "num_val": 16, "num_test": 16},
    "iterations": 4,
    "eval_every": 2,
    "batch_size": 4,
    "threads": 1,
    "seed": 0,
}
OBJECTIVES = ("delta_t", "sparsity")


@dataclass
class FakeSession:
    """Collects what a trial reports; ``saved`` is what an earlier attempt left."""

    saved: dict[str, Any] | None = None
    reports: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)

    def where(self) -> dict[str, str]:
        return {"host": "here", "node_id": "n1"}

    def restore(self) -> dict[str, Any] | None:
        return self.saved

    def report(self, metrics: dict[str, Any], progress: dict[str, Any]) -> None:
        self.reports.append((metrics, progress))

    def tick(self, metrics: dict[str, Any]) -> None:
        self.ticks.append(metrics)


@dataclass
class FakeReference:
    """Reference metrics that become known once ``known_after`` peeks have happened."""

    metrics: dict[str, Any] | None
    known_after: int = 0
    peeks: int = 0

    def peek(self) -> dict[str, Any] | None:
        self.peeks += 1
        return self.metrics if self.peeks > self.known_after else None

    def wait(self) -> dict[str, Any] | None:
        return self.metrics


def tune_config(method: str, params: dict[str, Any], *, reference: bool = False) -> dict:
    route = TrialRoute(method, 0, reference=reference, objectives=OBJECTIVES, device_share=2.0)
    return encode({**TINY, "method": method}, route, params)


@pytest.fixture(scope="module")
def dense_metrics() -> dict[str, Any]:
    session = FakeSession()
    run_routed_trial(tune_config("dense", {}, reference=True), session, FakeReference(None))
    return session.reports[-1][0][FINAL_KEY]["metrics"]


def test_a_reference_reports_each_evaluation_then_its_outcome_scoring_zero() -> None:
    session = FakeSession()
    run_routed_trial(tune_config("dense", {}, reference=True), session, FakeReference(None))
    *evaluations, (final, progress) = session.reports
    assert [m["iteration"] for m, _ in evaluations] == [2, 4]  # the last one is the final's
    assert [p for _, p in evaluations] == [{"evaluations": 1}, {"evaluations": 2}]
    outcome = final[FINAL_KEY]
    assert set(outcome) == set(OUTCOME_COLUMNS)
    assert (outcome["delta_t"], outcome["delta_m"], outcome["iterations"]) == (0.0, 0.0, 4)
    assert outcome["device_s"] == pytest.approx(2.0 * outcome["wall_time_s"])
    assert (final["delta_t"], final["sparsity"]) == (0.0, 0.0)  # the objectives, by name
    assert (final["host"], final["node_id"]) == ("here", "n1")
    assert progress == {"final": outcome}


def test_a_pruning_trial_is_scored_once_its_reference_is_known(dense_metrics: dict) -> None:
    session = FakeSession()
    reference = FakeReference(dense_metrics, known_after=1)  # unknown at the first evaluation
    run_routed_trial(tune_config("magnitude", {"target_sparsity": 0.5}), session, reference)
    (first, _), (last, _), (final, _) = session.reports
    assert first["evaluation"]["delta_t"] is None and "delta_t" not in first
    assert first["sparsity"] == first["evaluation"]["sparsity"]
    assert last["delta_t"] == last["evaluation"]["delta_t"] is not None
    outcome = final[FINAL_KEY]
    assert outcome["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert outcome["delta_t"] == final["delta_t"] and outcome["delta_t"] is not None
    assert set(outcome["delta_t_per_task"]) == set(dense_metrics)


def test_a_trial_that_raises_reports_its_error_instead_of_raising() -> None:
    session = FakeSession()
    config = tune_config("magnitude", {"target_sparsity": 0.5, "no_such_option": 1})
    run_routed_trial(config, session, FakeReference(None))
    ((report, progress),) = session.reports
    assert "no_such_option" in report[ERROR_KEY]
    assert "Traceback" in report["traceback"] and FINAL_KEY not in report
    assert progress == {"final": None, "error": report[ERROR_KEY]}


def test_a_retried_trial_that_had_finished_reports_its_outcome_again_without_training() -> None:
    outcome = {"delta_t": -2.0, "sparsity": 0.9, "metrics": {}}
    session = FakeSession(saved={"final": outcome})
    config = tune_config("magnitude", {"target_sparsity": 0.9})
    config["paretune"]["dataset"] = "no-such-dataset"  # training would fail at once
    run_routed_trial(config, session, FakeReference(None))
    ((report, progress),) = session.reports
    assert report[FINAL_KEY] == outcome and report["delta_t"] == -2.0
    assert progress == {"final": outcome}


def test_in_trial_progress_is_reported_without_a_checkpoint() -> None:
    session = FakeSession()
    config = tune_config("magnitude", {"target_sparsity": 0.5})
    run_routed_trial(config, session, FakeReference(None), progress_every_s=0.0)
    setup, *steps = session.ticks
    assert setup[PROGRESS_KEY] == {"iteration": 0, "iterations": 4, "phase": "setting up"}
    assert [tick[PROGRESS_KEY]["iteration"] for tick in steps] == [1, 2, 3, 4]
    for tick in session.ticks:  # nothing the recorder, the search or mo-asha would read
        assert set(tick) == {PROGRESS_KEY}
        assert tick[PROGRESS_KEY]["iterations"] == 4
    assert all(tick[PROGRESS_KEY]["loss"] > 0 for tick in steps)
    assert len(session.reports) == 3  # the two evaluations and the outcome, as before


def test_the_ticker_reports_the_first_step_then_at_most_once_per_interval() -> None:
    now = [0.0]
    session = FakeSession()
    ticker = ProgressTicker(session, 300, every_s=2.0, clock=lambda: now[0])
    for iteration in range(1, 301):
        now[0] = iteration / 16  # 16 steps per second, 18.75 s in all
        ticker(iteration, 1.25)
    ticks = [t[PROGRESS_KEY]["iteration"] for t in session.ticks]
    assert ticks == [1, 33, 65, 97, 129, 161, 193, 225, 257, 289]
    assert ticker.reports == len(ticks)
    ticker(301, float("nan"))  # not yet due
    now[0] = 100.0
    ticker(302, float("nan"))
    assert session.ticks[-1][PROGRESS_KEY] == {"iteration": 302, "iterations": 300, "loss": None}
