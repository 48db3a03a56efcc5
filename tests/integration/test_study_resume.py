"""kill -9 the driver mid-study, at three points; ``paretune resume`` finishes the study,
repeating no finished configuration and losing none, and the dead driver's Ray is gone."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from pathlib import Path

import optuna
import psutil
import pytest

from study.store import ResultStore, TrialRecord
from tests.integration.helpers import db_url, paretune, start_driver, tiny_study

pytestmark = [pytest.mark.integration, pytest.mark.slow]

METHODS = ("magnitude", "random")
#: Per method: enough that the driver, killed after 5 finished trials, still has several to
#: run (a study about to end releases its lease while the second driver starts).
TRIALS = 6


def _trials(url: str, study: str) -> list[TrialRecord]:
    try:
        store = ResultStore(url, create=False, retry_timeout=1.0)
    except Exception:
        return []
    try:
        return store.trials_of(study)
    except Exception:
        return []
    finally:
        store.close()


def _complete(trials: list[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.status == "COMPLETE" and not t.is_reference]


def _params(trials: list[TrialRecord]) -> list[str]:
    return [json.dumps([t.method, t.params], sort_keys=True) for t in _complete(trials)]


def _ray_processes(driver: int) -> dict[int, float]:
    """The driver's descendants (its local Ray and the reaper), pid -> start time."""
    found = {}
    for child in psutil.Process(driver).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            found[child.pid] = child.create_time()
    return found


def _alive(processes: dict[int, float]) -> list[int]:
    alive = []
    for pid, start in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == start and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def _reaper(processes: dict[int, float]) -> int:
    for pid in _alive(processes):
        if "study._reaper" in " ".join(psutil.Process(pid).cmdline()):
            return pid
    raise AssertionError("the driver started no reaper")


@pytest.mark.parametrize(
    ("kill_after", "with_reaper"), [(1, False), (5, False), (3, True)], ids=str
)
def test_resume_after_kill_9_repeats_nothing_and_loses_nothing(
    tmp_path: Path, kill_after: int, with_reaper: bool
) -> None:
    name = f"killed{kill_after}"
    config = tiny_study(
        name,
        tmp_path,
        methods=[{"name": "dense"}, *({"name": m} for m in METHODS)],
        budget={
            "trials_per_method": TRIALS,
            "iterations": 80,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 10,
        },
        sampler={"name": "random", "seed": 0},
    )
    url = db_url(config)
    driver = start_driver(config, tmp_path)
    deadline = time.monotonic() + 600
    processes: dict[int, float] = {}
    while len(_complete(_trials(url, name))) < kill_after:
        assert driver.poll() is None, "the study finished before it could be killed"
        assert time.monotonic() < deadline, "no trial completed in time"
        processes.update(_ray_processes(driver.pid))
        time.sleep(0.3)
    processes.update(_ray_processes(driver.pid))
    assert len(processes) >= 4, processes  # GCS, raylet, agents, workers, the reaper

    reaper = _reaper(processes)

    # A live driver holds the study: a second one is refused, naming it.
    second = paretune("resume", name, "--db", url, cwd=tmp_path, check=False)
    assert second.returncode == 2
    assert f"is being driven by host {os.uname().nodename}, pid {driver.pid}" in second.stderr
    assert driver.poll() is None, "the study finished before it could be killed"
    if with_reaper:  # first, or it would start stopping the Ray
        os.kill(reaper, signal.SIGKILL)
        time.sleep(0.5)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = _trials(url, name)
    running = sum(t.status == "RUNNING" for t in before)

    status = paretune("status", name, "--db", url, cwd=tmp_path)
    text = " ".join(status.stdout.split())
    assert re.search(rf"driver not running since .* run 'paretune resume {name}'", text), text

    if not with_reaper:  # the reaper stops the dead driver's Ray by itself
        deadline = time.monotonic() + 30
        while _alive(processes) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _alive(processes) == [], "the local Ray outlived its driver"
    orphans = _alive(processes)  # without a reaper, some of Ray's agents outlive the driver

    resumed = paretune("resume", name, "--db", url, cwd=tmp_path)
    if running:
        assert f"marked {running} interrupted trial(s) FAILED" in resumed.stdout
    else:
        assert "interrupted trial(s)" not in resumed.stdout
    stopped = re.search(r"stopped (\d+) process\(es\) of the local Ray", resumed.stdout)
    print(f"orphans before resume: {len(orphans)}; resume stopped: {stopped and stopped[1]}")
    assert (int(stopped[1]) if stopped else 0) <= len(orphans)  # only what was left
    assert _alive(processes) == []

    after = _trials(url, name)
    finished = _params(after)
    assert len(finished) == len(set(finished)), "a finished configuration ran twice"
    assert set(_params(before)) <= set(finished), "a finished trial was lost"
    for method in METHODS:
        mine = [t for t in after if t.method == method]
        assert len(_complete(mine)) == TRIALS, [(t.status, t.error) for t in mine]
        assert len({t.tune_trial_id for t in mine}) == len(mine)
        failed = [t for t in mine if t.status == "FAILED"]
        assert all("interrupted" in (t.error or "") for t in failed)
        study = optuna.load_study(study_name=f"{name}/{method}/seed-0", storage=url)
        states = [t.state for t in study.trials]
        assert optuna.trial.TrialState.RUNNING not in states
        assert states.count(optuna.trial.TrialState.COMPLETE) == TRIALS
    assert sum(t.is_reference for t in after) == 1
    with ResultStore(url) as store:
        assert store.get_study(name).status == "COMPLETE"
        assert store.driver_lease(name) is None
