"""kill -9 the driver mid-study; ``paretune resume`` finishes it, losing and doubling nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import optuna
import pytest

from study.store import ResultStore
from tests.integration.helpers import (
    PARETUNE,
    db_url,
    paretune,
    tiny_study,
    worker_env,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _complete(url: str, study: str) -> int:
    try:
        store = ResultStore(url)
    except Exception:
        return 0
    try:
        return sum(t.status == "COMPLETE" and not t.is_reference for t in store.trials_of(study))
    except Exception:
        return 0
    finally:
        store.close()


def test_resume_after_kill_9_completes_the_study(tmp_path):
    config = tiny_study(
        "killed",
        tmp_path,
        methods=[{"name": "dense"}, {"name": "magnitude"}, {"name": "random"}],
        budget={
            "trials_per_method": 3,
            "iterations": 40,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 10,
        },
    )
    url = db_url(config)
    driver = subprocess.Popen(
        [PARETUNE, "run", str(write_config(config, tmp_path))],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=worker_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while _complete(url, "killed") < 1:
        assert driver.poll() is None, "the study finished before it could be killed"
        assert time.monotonic() < deadline, "no trial completed in time"
        time.sleep(0.5)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()

    store = ResultStore(url)
    try:
        before = {t.id: t.status for t in store.trials_of("killed")}
    finally:
        store.close()
    assert "RUNNING" in before.values() or len(before) < 7

    paretune("resume", "killed", "--db", url, cwd=tmp_path)

    store = ResultStore(url)
    try:
        trials = store.trials_of("killed")
    finally:
        store.close()
    for method in ("magnitude", "random"):
        mine = [t for t in trials if t.method == method]
        complete = [t for t in mine if t.status == "COMPLETE"]
        assert len(complete) == 3, [(t.status, t.error) for t in mine]
        assert len({t.tune_trial_id for t in mine}) == len(mine)
        assert len({t.number for t in mine}) == len(mine)
        interrupted = [t for t in mine if t.status == "FAILED"]
        assert all("interrupted" in (t.error or "") for t in interrupted)
        study = optuna.load_study(study_name=f"killed/{method}/seed-0", storage=url)
        states = [t.state for t in study.trials]
        assert optuna.trial.TrialState.RUNNING not in states
        assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert sum(t.is_reference for t in trials) == 1
    for trial in trials:
        if trial.status == "COMPLETE":
            assert trial.metrics and trial.sparsity is not None
