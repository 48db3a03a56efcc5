"""A whole study through the CLI: local Ray, Optuna, SQLite; export, status, replay."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, tiny_study, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("study")
    config = tiny_study("e2e", folder)
    run = paretune("run", str(write_config(config, folder)), cwd=folder)
    return {"config": config, "folder": folder, "run": run}


def test_every_trial_and_evaluation_is_stored(finished_study):
    config = finished_study["config"]
    store = ResultStore(db_url(config))
    try:
        trials = store.trials_of("e2e")
        by_method = pd.Series([t.method for t in trials]).value_counts().to_dict()
        assert by_method == {"dense": 1, "magnitude": 2, "adapmtl": 2}
        assert all(t.status == "COMPLETE" for t in trials), [(t.method, t.error) for t in trials]
        for trial in trials:
            iterations = [e.iteration for e in store.evaluations_of(trial.id)]
            assert iterations == [6, 12]
            assert trial.host and trial.node_id
            assert trial.versions.get("torch") and trial.versions.get("optuna")
        reference = [t for t in trials if t.is_reference]
        assert len(reference) == 1 and reference[0].method == "dense"
        pruned = [t for t in trials if t.method != "dense"]
        assert all(t.delta_t is not None and t.sparsity > 0.3 for t in pruned)
        assert all("target_sparsity" in t.params for t in pruned)
    finally:
        store.close()


def test_optuna_study_shows_the_same_trials(finished_study):
    url = db_url(finished_study["config"])
    for method in ("magnitude", "adapmtl"):
        study = optuna.load_study(study_name=f"e2e/{method}/seed-0", storage=url)
        states = [t.state for t in study.trials]
        assert states == [optuna.trial.TrialState.COMPLETE] * 2
        assert len(study.directions) == 2


def test_run_prints_a_per_method_summary(finished_study):
    out = finished_study["run"].stdout
    for method in ("dense", "magnitude", "adapmtl"):
        assert method in out
    assert "pareto" in out


def test_status_ls_and_export(finished_study, tmp_path):
    url = db_url(finished_study["config"])
    status = paretune("status", "e2e", "--db", url).stdout
    assert "magnitude" in status and "adapmtl" in status
    listing = paretune("ls", "--db", url).stdout
    assert "e2e" in listing
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"trials.{fmt}"
        paretune("export", "e2e", "--db", url, "--format", fmt, "--out", str(out))
        frame = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt](out)
        assert len(frame) == 5
        assert frame["on_front"].any()
        assert {"method", "delta_t", "sparsity", "on_front"} <= set(frame.columns)


def test_replay_reproduces_the_stored_metrics(finished_study):
    url = db_url(finished_study["config"])
    store = ResultStore(url)
    try:
        trial = next(t for t in store.trials_of("e2e") if t.method == "adapmtl")
    finally:
        store.close()
    out = paretune("replay", "e2e", str(trial.id), "--db", url).stdout
    assert "identical to the stored metrics" in out, out


def test_a_second_run_of_the_same_study_is_refused(finished_study):
    folder = finished_study["folder"]
    run = paretune("run", str(folder / "e2e.yaml"), cwd=folder, check=False)
    assert run.returncode == 2
    assert "already" in run.stderr and "resume" in run.stderr


def test_failed_trials_are_stored_and_the_study_goes_on(tmp_path):
    config = tiny_study(
        "nan",
        tmp_path,
        methods=[
            {"name": "dense"},
            {"name": "magnitude", "params": {"lr": 1.0e30}},
            {"name": "random"},
        ],
    )
    paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path)
    store = ResultStore(db_url(config))
    try:
        trials = store.trials_of("nan")
    finally:
        store.close()
    failed = [t for t in trials if t.method == "magnitude"]
    assert len(failed) == 2 and all(t.status == "FAILED" for t in failed)
    assert all("training loss became nan" in (t.error or "") for t in failed)
    others = [t for t in trials if t.method != "magnitude"]
    assert all(t.status == "COMPLETE" for t in others) and len(others) == 3
    study = optuna.load_study(study_name="nan/magnitude/seed-0", storage=db_url(config))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    assert json.loads(json.dumps(trials[0].config))["dataset"] == "scenes-nyu"


def test_paretune_code_is_used_even_when_the_folder_shadows_it(tmp_path):
    for package in ("study", "trials", "analysis", "search_spaces"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(
            f"raise ImportError('the shadowing {package} package was imported')\n"
        )
    config = tiny_study(
        "shadow", tmp_path, methods=[{"name": "dense"}, {"name": "random"}], study_dir="runs/shadow"
    )
    path = write_config(config, tmp_path)
    paretune("run", path.name, cwd=tmp_path)
    store = ResultStore(f"sqlite:///{tmp_path / 'runs/shadow/paretune.db'}")
    try:
        trials = store.trials_of("shadow")
    finally:
        store.close()
    assert len(trials) == 3 and all(t.status == "COMPLETE" for t in trials)
    assert Path(tmp_path / "runs/shadow").is_dir()
