"""Live progress: the model's ETA, the terminal and quiet displays, the progress file, the
Tune callback, and what an in-trial progress report leaves alone (no Ray needed)."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from rich.console import Console

from study._live import (
    PROGRESS_FILE,
    StudyProgress,
    describe_duration,
    progress_lines,
    read_progress,
)
from study._progress import ProgressDisplay, ProgressView
from study._recorder import StoreRecorder
from study._samplers import build_sampler
from study._scheduler import MultiObjectiveASHA
from study._search import StudySearch
from study._tune_config import FINAL_KEY, PROGRESS_KEY, TrialRoute, encode
from study.store import ResultStore

ADAPMTL, DENSE = ("adapmtl", 0), ("dense", 0)
PROGRESS = {PROGRESS_KEY: {"iteration": 140, "iterations": 300, "loss": 1.5}}


class Clock:
    """A fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any]


def tune_trial(trial_id: str, method: str, iterations: int = 300) -> FakeTrial:
    route = TrialRoute(method, 0, reference=method == "dense")
    return FakeTrial(trial_id, encode({"method": method, "iterations": iterations}, route, {}))


def test_eta_is_what_is_left_over_the_measured_rate() -> None:
    clock = Clock()
    model = StudyProgress("s", clock)
    model.add_run(DENSE, "dense (seed 0)", 1, iterations=600)
    model.add_run(ADAPMTL, "adapmtl (seed 0)", 4, done=1, iterations=300)
    assert model.eta_s() is None  # nothing measured yet
    model.start(DENSE, "t1", 1, 600)
    clock.now = 12.0  # Ray, torch and the data took 12 s: not part of the rate
    model.step(DENSE, "t1", 20)
    assert model.rate() is None
    clock.now = 40.0
    model.step(DENSE, "t1", 300)
    assert model.rate() == pytest.approx(10.0)  # 280 iterations in 28 s
    # 300 left of the reference, 3 adapmtl trials of 300 not started: 1200 at 10 it/s
    assert model.remaining_iterations() == 1200
    assert model.eta_s() == pytest.approx(120.0)
    clock.now = 70.0
    assert model.finish(DENSE, "t1", iterations=600)
    assert not model.finish(DENSE, "t1")  # finished once
    model.start(ADAPMTL, "t2", 2)
    model.start(ADAPMTL, "t3", 3)
    clock.now = 85.0
    model.step(ADAPMTL, "t2", 150)
    assert (model.done, model.running, model.total) == (2, 2, 5)
    assert model.rate() == pytest.approx((750 - 20) / 73)
    assert model.eta_s() == pytest.approx((150 + 300 + 300) / model.rate())
    # two trials at once: the last minute's pace, not the reference's, sets the ETA
    clock.now = 145.0
    model.step(ADAPMTL, "t2", 300)
    model.step(ADAPMTL, "t3", 300)
    assert model.rate() == pytest.approx((1200 - 750) / 60)
    assert model.eta_s() == pytest.approx(300 / 7.5)
    snapshot = model.snapshot()
    assert snapshot["runs"][1]["running"][0] == {
        "trial": 2,
        "iteration": 300,
        "iterations": 300,
        "phase": "starting",
    }


def test_no_eta_without_known_iterations() -> None:
    clock = Clock()
    model = StudyProgress("s", clock)
    model.add_run(ADAPMTL, "adapmtl (seed 0)", 2, iterations=None)  # a seconds budget
    model.start(ADAPMTL, "t1", 1)
    clock.now = 5.0
    model.step(ADAPMTL, "t1", 25)
    clock.now = 10.0
    model.step(ADAPMTL, "t1", 50)
    assert model.rate() == pytest.approx(5.0) and model.eta_s() is None


def test_durations_read_at_a_glance() -> None:
    assert [describe_duration(s) for s in (None, 0.4, 42, 151, 3900)] == [
        "–",
        "0s",
        "42s",
        "2m31s",
        "1h05m",
    ]


def _display(clock: Clock, *, terminal: bool, width: int = 80, folder: Path | None = None):
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    display = ProgressDisplay("quickstart", folder, console, clock)
    bars = {DENSE: ("dense (seed 0)", 1, 0), ADAPMTL: ("adapmtl (seed 0)", 4, 0)}
    return display, bars, out


def _report(view: ProgressView, clock: Clock, steps: list[tuple[float, int]]) -> None:
    """Trial ``a`` of adapmtl reports ``(time, iteration)`` of 300 iterations."""
    for clock.now, iteration in steps:
        progress = {PROGRESS_KEY: {"iteration": iteration, "iterations": 300}}
        view.on_trial_result(0, [], tune_trial("a", "adapmtl"), progress)


def test_the_terminal_lines_show_in_trial_iterations_and_fit_80_columns() -> None:
    clock = Clock()
    display, bars, _ = _display(clock, terminal=True)
    view = ProgressView(display, bars, {DENSE: 600, ADAPMTL: 300}, trial_ids={"a": 7, "b": 8})
    view.on_trial_start(0, [], tune_trial("a", "adapmtl"))
    view.on_trial_start(0, [], tune_trial("b", "adapmtl"))
    _report(view, clock, [(4.0, 20), (12.0, 140)])
    text = display.snapshot_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert re.search(r"adapmtl \(seed 0\) .* 0/4 +0 failed +▸ #7 140/300 it, #8 starting", text)
    assert re.search(r"study .* 0/5 +ETA \d+m\d\ds · 2 running · 15\.0 it/s", text), text


def test_off_a_terminal_a_quiet_line_per_finished_trial_and_every_30_s() -> None:
    clock = Clock()
    display, bars, out = _display(clock, terminal=False)
    with display:
        view = ProgressView(display, bars, {DENSE: 600, ADAPMTL: 300}, trial_ids={"r": 1})
        view.on_trial_start(0, [], tune_trial("r", "dense", 600))
        for second in range(2, 60, 2):  # a report every 2 s: one progress line in 30 s
            clock.now = float(second)
            view.on_trial_result(
                0,
                [],
                tune_trial("r", "dense", 600),
                {PROGRESS_KEY: {"iteration": 10 * second, "iterations": 600}},
            )
        clock.now = 60.0
        final = {"delta_t": 0.0, "sparsity": 0.0, "iterations": 600}
        view.on_trial_result(0, [], tune_trial("r", "dense", 600), {FINAL_KEY: final})
        view.on_trial_complete(0, [], tune_trial("r", "dense", 600))  # counted once
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "[0s] study quickstart: 0/5 trials done in 2 method runs (a line per finished trial, "
        "progress every 30 s)"
    )
    assert re.fullmatch(
        r"\[30s\] 0/5 trials done · 1 running \(dense #1 300/600 it\) · 0 failed · "
        r"10\.0 it/s · ETA 2m30s",
        lines[1],
    ), lines
    assert lines[2] == (
        "[1m00s] dense (seed 0) #1 done: ΔT +0.00%, sparsity 0.0% · 1/5 trials done · "
        "0 running · ETA 2m00s"
    )
    assert len(lines) == 4 and lines[3].startswith("[1m00s] 1/5 trials done")


def test_the_progress_file_is_what_status_reads(tmp_path: Path) -> None:
    clock = Clock()
    display, bars, _ = _display(clock, terminal=False, folder=tmp_path)
    view = ProgressView(display, bars, {DENSE: 600, ADAPMTL: 300}, trial_ids={"a": 7})
    view.on_trial_start(0, [], tune_trial("a", "adapmtl"))
    _report(view, clock, [(3.0, 14), (12.0, 140)])
    data = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert data["study"] == "quickstart" and data["active"]
    snapshot = read_progress(tmp_path, "quickstart")
    assert snapshot is not None and read_progress(tmp_path, "another") is None
    later = snapshot.updated_at + timedelta(seconds=20)
    lines = progress_lines(snapshot, later)
    assert lines[0].startswith("in progress (driver's progress file, 20s ago): 0/5 trials done")
    assert "14.0 it/s" in lines[0] and lines[1] == "  adapmtl (seed 0): #7 140/300 it"
    assert snapshot.eta_now(later) == pytest.approx(snapshot.eta_s - 20, abs=1)
    (tmp_path / PROGRESS_FILE).write_text("{not json")
    assert read_progress(tmp_path) is None  # half a file never breaks status
    assert read_progress(tmp_path / "missing") is None


# -- an in-trial progress report leaves the store, the search and mo-asha alone -------------
def test_the_recorder_stores_nothing_of_a_progress_report(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path}/paretune.db")
    store.create_study("s", {}, [("delta_t", "maximize"), ("sparsity", "maximize")])
    runs = {ADAPMTL: store.start_method_run("s", "adapmtl", 0)}
    recorder = StoreRecorder(store, runs, router=None, versions={})
    trial = tune_trial("a", "adapmtl")
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_result(0, [], trial, {**PROGRESS, "training_iteration": 3})
    recorder.flush()
    assert recorder.writer.transactions == 1  # the trial's row, nothing of the report
    (stored,) = store.trials_of("s")
    assert stored.status == "RUNNING" and store.evaluations_of(stored.id) == []
    recorder.close()
    store.close()


def test_mo_asha_and_the_search_ignore_a_progress_report(tmp_path: Path) -> None:
    scheduler = MultiObjectiveASHA(
        [("delta_t", "max"), ("sparsity", "max")], max_t=300, grace_period=100
    )
    trial = Trial("stand-in", config={}, trial_id="a", stub=True)
    scheduler.on_trial_add(None, trial)
    result = {**PROGRESS, "training_iteration": 9}
    assert scheduler.on_trial_result(None, trial, result) == TrialScheduler.CONTINUE
    assert all(not scheduler.recorded(rung) for rung in scheduler.rungs)

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    search = StudySearch(
        space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
        metric=["delta_t", "sparsity"],
        mode=["max", "max"],
        sampler=build_sampler("random", 0),
        study_name="s/adapmtl/seed-0",
        storage=storage,
    )
    search.suggest("a")
    search.on_trial_result("a", result)
    search.on_trial_complete("a", {"delta_t": -2.0, "sparsity": 0.9})
    (told,) = optuna.load_study(study_name="s/adapmtl/seed-0", storage=storage).trials
    assert told.values == [-2.0, 0.9] and told.intermediate_values == {}
    assert search.problems == {}
