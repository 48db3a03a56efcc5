"""The results-store contract on both backends: a SQLite file and a PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import make_url

import analysis
from study.store import SCHEMA_VERSION, ResultStore, StoreError
from study.store._engine import sqlite_path
from study.store._models import (
    ArtifactRow,
    EvaluationRow,
    MethodRunRow,
    SchemaInfo,
    StudyRow,
    TrialRow,
)

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
EVALUATION = {
    "iteration": 100,
    "metrics": {"segment_semantic": {"miou": 21.5, "pixel_acc": 50.0}, "depth": {"rmse": 0.7}},
    "losses": {"segment_semantic": 1.25, "depth": 0.5},
    "sparsity": 0.5,
    "components": {"backbone": 0.6, "head:segment_semantic": 0.2},
    "thresholds": {"backbone": 0.02},
    "task_weights": {"segment_semantic": 1.0, "depth": 0.5},
    "delta_t": -1.5,
    "elapsed_s": 12.0,
    "images_seen": 1600,
}
PAPER_TABLES = {
    "paretune_schema_info",
    "paretune_studies",
    "paretune_method_runs",
    "paretune_trials",
    "paretune_evaluations",
    "paretune_artifacts",
}


@pytest.fixture
def store(store_url: str):
    with ResultStore(store_url) as opened:
        yield opened


def _password(url: str) -> str | None:
    password = make_url(url).password
    return password if isinstance(password, str) else None


def _count(store: ResultStore, table: type) -> int:
    assert isinstance(store, ResultStore)
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(table))) or 0)


def test_backend_is_the_one_asked_for(store: ResultStore, store_url: str):
    assert store.dialect == make_url(store_url).get_backend_name()
    assert set(inspect(store.engine).get_table_names()) >= PAPER_TABLES
    password = _password(store_url)
    assert password is None or (password not in store.url and password not in repr(store))


def test_study_round_trip(store: ResultStore):
    config = {"name": "demo", "budget": {"iterations": 300}, "methods": ["dense", "snip"]}
    study_id = store.create_study(
        "demo", config, OBJECTIVES, versions={"paretune": "0.1.0", "torch": None}
    )
    record = store.get_study("demo")
    assert record.id == study_id and record.config == config
    assert record.objectives == OBJECTIVES and record.status == "CREATED"
    assert record.versions == {"paretune": "0.1.0", "torch": None, "ray": None, "optuna": None}
    assert store.create_study("demo", {}, OBJECTIVES, exist_ok=True) == study_id
    with pytest.raises(StoreError, match=r"study 'demo' already exists in (sqlite|postgresql)"):
        store.create_study("demo", {}, OBJECTIVES)
    store.create_study("other", {}, [("parameters", "minimize")])
    assert [s.name for s in store.list_studies()] == ["demo", "other"]
    store.set_study_status("demo", "RUNNING")
    assert store.get_study("demo").status == "RUNNING"
    with pytest.raises(StoreError, match=r"unknown run status 'DONE'; choose one of"):
        store.set_study_status("demo", "DONE")


def test_unknown_study_names_the_stored_ones(store: ResultStore, store_url: str):
    with pytest.raises(StoreError, match=r"unknown study 'demo'; .* holds no studies$") as empty:
        store.get_study("demo")
    store.create_study("demo", {}, OBJECTIVES)
    store.create_study("other", {}, OBJECTIVES)
    with pytest.raises(
        StoreError,
        match=r"unknown study 'dmeo'; choose one of: demo, other \(did you mean 'demo'\?\)",
    ):
        store.trials_of("dmeo")
    with pytest.raises(StoreError, match=r"unknown study 'nope'"):
        store.start_method_run("nope", "dense", 0)
    password = _password(store_url)
    assert password is None or password not in str(empty.value)
    assert "***" in str(empty.value) or password is None


def test_method_runs_are_get_or_create(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    space = {"target_sparsity": {"type": "float", "low": 0.5, "high": 0.99, "log": False}}
    first = store.start_method_run(
        "demo", "magnitude", 0, search_space=space, optuna_study_name="demo/magnitude/0"
    )
    assert store.start_method_run("demo", "magnitude", 0) == first
    second = store.start_method_run("demo", "magnitude", 1)
    other = store.start_method_run("demo", "adapmtl", 0)
    store.finish_method_run(first, "COMPLETE")
    runs = {(r.method, r.seed): r for r in store.method_runs_of("demo")}
    assert list(runs) == [("adapmtl", 0), ("magnitude", 0), ("magnitude", 1)]
    assert runs["magnitude", 0].search_space == space
    assert runs["magnitude", 0].optuna_study_name == "demo/magnitude/0"
    assert runs["magnitude", 0].status == "COMPLETE"
    assert runs["magnitude", 0].finished_at is not None
    assert runs["magnitude", 1].id == second and runs["magnitude", 1].status == "RUNNING"
    assert runs["adapmtl", 0].id == other
    assert store.start_method_run("demo", "magnitude", 0) == first  # resumed: RUNNING again
    assert {r.status for r in store.method_runs_of("demo")} == {"RUNNING"}
    with pytest.raises(StoreError, match=r"unknown method run 999"):
        store.finish_method_run(999)


def test_trial_round_trip_and_idempotent_re_add(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    run = store.start_method_run("demo", "adapmtl", 7)
    trial = store.add_trial(
        run,
        params={"target_sparsity": np.float64(0.9), "depth": np.int64(4)},
        config={"lr": 1e-3},
        tune_trial_id="abc_00001",
        optuna_trial_number=4,
        host="node-a",
    )
    assert store.add_trial(run, tune_trial_id="abc_00001", host="elsewhere") == trial
    assert store.count_trials("demo") == 1
    assert store.get_trial(trial).host == "node-a"  # the re-report overwrote nothing
    finished = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    store.update_trial(
        trial,
        status="COMPLETE",
        finished_at=finished,
        sparsity=np.float32(0.5),
        delta_t=float("nan"),
        wall_time_s=float("inf"),
        metrics={"segment_semantic": {"miou": 20.1, "pixel_acc": float("inf")}},
        iterations=np.int64(300),
        flops=1.5e12,
        parameters=12_345_678_901,
        node_id="n1",
    )
    record = store.get_trial(trial)
    assert (record.study, record.method, record.seed, record.number) == ("demo", "adapmtl", 7, 0)
    assert record.status == "COMPLETE" and record.tune_trial_id == "abc_00001"
    assert record.params == {"target_sparsity": 0.9, "depth": 4}
    assert record.config == {"lr": 1e-3} and record.optuna_trial_number == 4
    assert record.finished_at == finished and record.started_at is not None
    assert record.delta_t is None and record.wall_time_s is None  # NaN/inf are NULL
    assert record.metrics == {"segment_semantic": {"miou": 20.1, "pixel_acc": None}}
    assert record.sparsity == 0.5 and record.iterations == 300
    assert record.parameters == 12_345_678_901 and record.flops == 1.5e12
    assert store.add_trial(run, tune_trial_id="abc_00002") != trial
    assert store.add_trial(run, tune_trial_id="abc_00001") == trial
    assert [t.number for t in store.trials_of("demo")] == [0, 1]
    with pytest.raises(StoreError, match=r"trial number 0 already exists in method run"):
        store.add_trial(run, number=0)
    with pytest.raises(StoreError, match=r"unknown trial field 'sparsty'; choose one of: .*"):
        store.update_trial(trial, sparsty=0.5)
    with pytest.raises(StoreError, match=r"unknown trial 999"):
        store.update_trial(999, status="FAILED")
    with pytest.raises(StoreError, match=r"unknown method run 999"):
        store.add_trial(999)


def test_timestamps_are_aware_utc(store: ResultStore):
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.create_study("demo", {}, OBJECTIVES)
    trial = store.add_trial(store.start_method_run("demo", "dense", 0))
    india = timezone(timedelta(hours=5, minutes=30))
    started = datetime(2031, 6, 1, 12, 0, 0, tzinfo=india)
    store.update_trial(trial, started_at=started, finished_at=started + timedelta(minutes=3))
    store.add_artifact(trial, "log", "/nowhere/trial.log", size=3)
    record = store.get_trial(trial)
    stamps = [
        store.get_study("demo").created_at,
        store.method_runs_of("demo")[0].started_at,
        record.started_at,
        record.finished_at,
        store.artifacts_of(trial)[0].created_at,
    ]
    aware = [stamp for stamp in stamps if stamp is not None]
    assert len(aware) == 5 and all(stamp.utcoffset() == timedelta(0) for stamp in aware)
    assert aware[2] == started  # the same instant ...
    assert (aware[2].hour, aware[2].minute) == (6, 30)  # ... shown in UTC
    assert aware[3] - aware[2] == timedelta(minutes=3)
    assert before <= aware[0] <= datetime.now(UTC) + timedelta(seconds=5)
    assert before <= aware[4] <= datetime.now(UTC) + timedelta(seconds=5)
    with pytest.raises(StoreError, match=r"started_at must be a datetime \(got '2031-06-01'\)"):
        store.update_trial(trial, started_at="2031-06-01")


def test_json_values_round_trip(store: ResultStore):
    config = {
        "nested": {"deep": {"deeper": {"list": [1, 2.5, "three", None, True, {"k": [[]]}]}}},
        "unicode": "héllo → 世界 'quoted' \"double\" \\ back",
        "big": 2**53 + 1,
        "negative": -0.0,
        "tiny": 1e-300,
        "empty": {},
        "flags": [True, False],
    }
    store.create_study("demo", config, OBJECTIVES)
    assert store.get_study("demo").config == config
    trial = store.add_trial(
        store.start_method_run("demo", "dmtg", 0, search_space={"layers": {"choices": [1, 2]}}),
        params={"arch": {"cells": [{"op": "conv3x3", "skip": True}, {"op": "none"}]}},
        thresholds={"backbone": {"layer1": float("nan"), "layer2": -4.0}},
        task_weights={"a": [float("inf"), 1.0]},
    )
    record = store.get_trial(trial)
    assert record.params == {"arch": {"cells": [{"op": "conv3x3", "skip": True}, {"op": "none"}]}}
    assert record.thresholds == {"backbone": {"layer1": None, "layer2": -4.0}}
    assert record.task_weights == {"a": [None, 1.0]}
    assert store.method_runs_of("demo")[0].search_space == {"layers": {"choices": [1, 2]}}
    store.add_evaluation(trial, {**EVALUATION, "losses": {"depth": float("nan")}})
    (evaluation,) = store.evaluations_of(trial)
    assert evaluation.losses == {"depth": None} and evaluation.metrics == EVALUATION["metrics"]
    with pytest.raises(StoreError, match=r"metrics must be a mapping \(got list\)"):
        store.update_trial(trial, metrics=[1, 2])


def test_bulk_trials_counts_reference_and_resume(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    dense = store.start_method_run("demo", "dense", 0)
    dense_1 = store.start_method_run("demo", "dense", 1)
    magnitude = store.start_method_run("demo", "magnitude", 0)
    old_reference = store.add_trial(dense, is_reference=True, status="COMPLETE")
    reference = store.add_trial(dense, is_reference=True, status="COMPLETE")
    store.add_trial(dense, is_reference=True, status="FAILED")
    seed_1 = store.add_trial(dense_1, is_reference=True, status="COMPLETE")
    statuses = ["COMPLETE", "COMPLETE", "FAILED", "RUNNING", "WAITING", "PRUNED"]
    ids = store.add_trials(
        magnitude,
        [
            {"params": {"target_sparsity": 0.5 + i / 10}, "status": s}
            for i, s in enumerate(statuses)
        ],
    )
    assert len(ids) == 6 and ids == sorted(ids)
    assert [store.get_trial(i).number for i in ids] == [0, 1, 2, 3, 4, 5]
    assert store.count_trials("demo") == 10
    assert store.count_trials("demo", method="magnitude", status="COMPLETE") == 2
    assert store.count_trials("demo", status=["RUNNING", "WAITING"]) == 2
    assert store.count_trials("demo", is_reference=True) == 4
    assert store.count_trials("demo", is_reference=False) == 6
    assert store.count_trials("demo", seed=1) == 1
    assert [t.id for t in store.trials_of("demo", method="magnitude")] == ids
    latest, seed_0 = store.reference_trial("demo"), store.reference_trial("demo", seed=0)
    assert latest is not None and latest.id == seed_1  # the latest COMPLETE reference
    assert seed_0 is not None and seed_0.id == reference != old_reference
    assert store.reference_trial("demo", seed=5) is None
    assert store.mark_running_as_failed("demo", "driver stopped; trial abandoned") == 2
    abandoned = [t for t in store.trials_of("demo", status="FAILED") if t.error]
    assert sorted(t.id for t in abandoned) == [ids[3], ids[4]]
    assert all(t.error == "driver stopped; trial abandoned" for t in abandoned)
    assert all(t.finished_at is not None for t in abandoned)
    assert store.count_trials("demo", status=["RUNNING", "WAITING"]) == 0
    assert store.mark_running_as_failed("demo", "again") == 0


def test_evaluations_are_idempotent(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    trial = store.add_trial(store.start_method_run("demo", "adapmtl", 0))
    assert store.add_evaluation(trial, EVALUATION) is True
    assert store.add_evaluation(trial, {**EVALUATION, "sparsity": 0.99}) is False
    later = {**EVALUATION, "iteration": 200, "sparsity": 0.8}
    assert store.add_evaluations(trial, [EVALUATION, later, later]) == 1
    evaluations = store.evaluations_of(trial)
    assert [e.iteration for e in evaluations] == [100, 200]
    first = evaluations[0]
    assert first.sparsity == 0.5  # the re-report did not overwrite
    assert first.metrics == EVALUATION["metrics"] and first.losses == EVALUATION["losses"]
    assert first.images_seen == 1600 and first.delta_t == -1.5
    assert _count(store, EvaluationRow) == 2
    with pytest.raises(StoreError, match=r"unknown evaluation field 'lossses'"):
        store.add_evaluation(trial, {"iteration": 300, "lossses": {}})
    with pytest.raises(StoreError, match=r"unknown trial 999"):
        store.add_evaluation(999, EVALUATION)


def test_artifacts_and_delete_study_cascade(store: ResultStore, tmp_path: Path):
    for name in ("doomed", "kept"):
        store.create_study(name, {}, OBJECTIVES)
        trial = store.add_trial(store.start_method_run(name, "snip", 0))
        store.add_evaluations(trial, [EVALUATION, {**EVALUATION, "iteration": 200}])
        model = tmp_path / f"{name}.pt"
        model.write_bytes(b"x" * 10)
        artifact = store.add_artifact(trial, "model", str(model))
        (record,) = store.artifacts_of(trial)
        assert (record.id, record.kind, record.size) == (artifact, "model", 10)
    store.delete_study("doomed")
    assert [s.name for s in store.list_studies()] == ["kept"]
    counts = {
        table.__tablename__: _count(store, table)
        for table in (StudyRow, MethodRunRow, TrialRow, EvaluationRow, ArtifactRow)
    }
    assert counts == {
        "paretune_studies": 1,
        "paretune_method_runs": 1,
        "paretune_trials": 1,
        "paretune_evaluations": 2,
        "paretune_artifacts": 1,
    }
    with pytest.raises(StoreError, match=r"unknown study 'doomed'; choose one of: kept"):
        store.delete_study("doomed")


def test_schema_version_is_checked(store_url: str):
    path = sqlite_path(make_url(store_url))
    if path is not None:  # an existing but empty SQLite file, like a fresh PostgreSQL db
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    with pytest.raises(StoreError, match=r"holds no paretune results"):
        ResultStore(store_url, create=False)
    ResultStore(store_url).close()
    reopened = ResultStore(store_url, create=False)
    assert reopened.list_studies() == []
    reopened.run(
        lambda s: s.execute(update(SchemaInfo).values(version=SCHEMA_VERSION + 1)), write=True
    )
    reopened.close()
    with pytest.raises(
        StoreError,
        match=rf"has results schema version {SCHEMA_VERSION + 1} but "
        rf"this paretune uses version {SCHEMA_VERSION}",
    ) as caught:
        ResultStore(store_url)
    password = _password(store_url)
    assert password is None or password not in str(caught.value)


def test_threads_share_one_store(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    run = store.start_method_run("demo", "random", 0)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(12):
                trial = store.add_trial(
                    run, params={"w": worker, "i": i}, tune_trial_id=f"{worker}-{i}"
                )
                store.add_evaluation(trial, {**EVALUATION, "iteration": i})
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    trials = store.trials_of("demo")
    assert sorted(t.number for t in trials) == list(range(48))
    assert {(t.params["w"], t.params["i"]) for t in trials} == {
        (w, i) for w in range(4) for i in range(12)
    }
    assert _count(store, EvaluationRow) == 48


def test_optuna_storage_shares_the_database(store: ResultStore, store_url: str):
    store.create_study("demo", {}, OBJECTIVES)
    run = store.start_method_run("demo", "adapmtl", 0, optuna_study_name="demo/adapmtl/0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(store_url)
    try:
        created = optuna.create_study(
            study_name="demo/adapmtl/0", storage=storage, directions=["maximize", "maximize"]
        )
        for value in (0.5, 0.9):
            trial = created.ask()
            sparsity = trial.suggest_float("target_sparsity", 0.4, 0.99)
            created.tell(trial, [value, sparsity])
            store.add_trial(
                run, params={"target_sparsity": sparsity}, optuna_trial_number=trial.number
            )
    finally:
        storage.remove_session()
        storage.engine.dispose()
    loaded = optuna.load_study(study_name="demo/adapmtl/0", storage=store_url)
    assert [t.values[0] for t in loaded.trials] == [0.5, 0.9]
    assert len(loaded.best_trials) >= 1
    tables = set(inspect(store.engine).get_table_names())
    assert tables >= PAPER_TABLES
    assert {"studies", "trials", "trial_params", "trial_values"} <= tables  # Optuna's own
    with ResultStore(store_url, create=False) as reopened:
        trials = reopened.trials_of("demo")
        assert [t.optuna_trial_number for t in trials] == [0, 1]
        assert [t.params["target_sparsity"] for t in trials] == [
            t.params["target_sparsity"] for t in loaded.trials
        ]
        assert reopened.method_runs_of("demo")[0].optuna_study_name == loaded.study_name


def fill_study(url: str) -> None:
    """A small study with fixed values and timestamps: two methods, references, evaluations."""
    start = datetime(2030, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)
    with ResultStore(url) as store:
        store.create_study("paper", {"seed": 0}, OBJECTIVES, versions={"paretune": "1.0"})
        dense = store.start_method_run("paper", "dense", 0)
        store.add_trial(
            dense,
            is_reference=True,
            status="COMPLETE",
            started_at=start,
            finished_at=start + timedelta(seconds=40),
            metrics={"segment_semantic": {"miou": 30.0}, "depth": {"rmse": 0.6}},
            sparsity=0.0,
            delta_t=0.0,
            iterations=300,
            parameters=1000,
        )
        adapmtl = store.start_method_run("paper", "adapmtl", 0)
        for i in range(3):
            trial = store.add_trial(
                adapmtl,
                params={"target_sparsity": 0.5 + 0.2 * i, "warmup": "linear"},
                config={"lr": 0.001, "nested": {"a": i}},
                status="COMPLETE" if i < 2 else "FAILED",
                started_at=start + timedelta(minutes=i),
                finished_at=start + timedelta(minutes=i, seconds=30) if i < 2 else None,
                metrics={"segment_semantic": {"miou": 29.0 - i}, "depth": {"rmse": 0.6 + i / 10}},
                components={"backbone": 0.5 + 0.2 * i, "head:depth": 0.1 * i},
                thresholds={"backbone": -4.0 + i},
                task_weights={"segment_semantic": 1.0, "depth": 0.5 * i},
                delta_t=-1.0 * i if i < 2 else float("nan"),
                delta_t_per_task={"segment_semantic": -0.5 * i, "depth": -1.5 * i},
                sparsity=0.5 + 0.2 * i,
                iterations=300,
                wall_time_s=30.0 + i,
                flops=1e9 * (3 - i),
                parameters=1000 - 200 * i,
                host="node-a",
                error="diverged" if i == 2 else None,
            )
            store.add_evaluations(
                trial,
                [
                    {**EVALUATION, "iteration": step, "sparsity": 0.1 * step / 100 + i / 10}
                    for step in (100, 200, 300)
                ],
            )


@pytest.mark.postgres
def test_analysis_frames_match_across_backends(sqlite_url: str, postgres_url: str):
    frames = {}
    for name, url in (("sqlite", sqlite_url), ("postgres", postgres_url)):
        fill_study(url)
        frames[name] = analysis.load_study(url, "paper")
    lite, pg = frames["sqlite"], frames["postgres"]
    assert list(lite.trials.columns) == list(pg.trials.columns)
    assert list(lite.evaluations.columns) == list(pg.evaluations.columns)
    assert {"metric:depth:rmse", "sparsity:backbone", "param:target_sparsity"} <= set(
        pg.trials.columns
    )
    assert "loss:segment_semantic" in pg.evaluations.columns
    pd.testing.assert_frame_equal(lite.trials, pg.trials)
    pd.testing.assert_frame_equal(lite.evaluations, pg.evaluations)
    assert len(pg.trials) == 4 and len(pg.evaluations) == 9
    assert pg.trials["started_at"].iloc[0] == pd.Timestamp("2030-05-06 07:08:09.25", tz="UTC")
    assert pg.trials["delta_t"].isna().tolist() == [False, False, False, True]
    assert pg.objectives == OBJECTIVES == lite.objectives
    for key in ("name", "status", "objectives", "config", "versions"):
        assert [s[key] for s in lite.studies] == [s[key] for s in pg.studies]
