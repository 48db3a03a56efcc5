"""The SQL results store against real SQLite files (and an unreachable PostgreSQL URL)."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from study.store import (
    SCHEMA_VERSION,
    ResultStore,
    SessionRunner,
    StoreError,
    TransientStoreError,
    create_store_engine,
    redact_url,
)

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]

EVALUATION = {
    "iteration": 100,
    "metrics": {"segment_semantic": {"miou": 21.5, "pixel_acc": 50.0}},
    "losses": {"segment_semantic": 1.25},
    "sparsity": 0.5,
    "components": {"backbone": 0.6, "head:segment_semantic": 0.2},
    "thresholds": {"backbone": 0.02},
    "task_weights": {"segment_semantic": 1.0},
    "delta_t": -1.5,
    "elapsed_s": 12.0,
    "images_seen": 1600,
}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/runs/paretune.db"


@pytest.fixture
def store(url: str):
    with ResultStore(url) as opened:
        yield opened


def test_study_round_trip(store: ResultStore):
    config = {"name": "demo", "budget": {"iterations": 300}}
    study_id = store.create_study(
        "demo", config, OBJECTIVES, versions={"paretune": "0.1.0", "torch": None}
    )
    record = store.get_study("demo")
    assert record.id == study_id and record.config == config
    assert record.objectives == OBJECTIVES
    assert record.status == "CREATED"
    assert record.versions["paretune"] == "0.1.0" and record.versions["torch"] is None
    assert record.created_at is not None and record.created_at.tzinfo is not None
    assert store.create_study("demo", {}, OBJECTIVES, exist_ok=True) == study_id
    with pytest.raises(StoreError, match=r"study 'demo' already exists in sqlite:///"):
        store.create_study("demo", {}, OBJECTIVES)
    store.create_study("other", {}, [("parameters", "minimize")])
    assert [s.name for s in store.list_studies()] == ["demo", "other"]
    store.set_study_status("demo", "RUNNING")
    assert store.get_study("demo").status == "RUNNING"
    with pytest.raises(StoreError, match=r"unknown run status 'DONE'; choose one of"):
        store.set_study_status("demo", "DONE")
    with pytest.raises(
        StoreError,
        match=r"unknown study 'dmeo'; choose one of: demo, other "
        r"\(did you mean 'demo'\?\)",
    ):
        store.get_study("dmeo")
    with pytest.raises(StoreError, match=r"direction of objective 'x' must be 'maximize'"):
        store.create_study("bad", {}, [("x", "up")])


def test_method_runs_are_get_or_create(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    space = {"target_sparsity": {"type": "float", "low": 0.5, "high": 0.99}}
    first = store.start_method_run(
        "demo", "magnitude", 0, search_space=space, optuna_study_name="demo/magnitude/0"
    )
    assert store.start_method_run("demo", "magnitude", 0) == first
    second = store.start_method_run("demo", "magnitude", 1)
    store.finish_method_run(first, "COMPLETE")
    runs = {(r.method, r.seed): r for r in store.method_runs_of("demo")}
    assert runs["magnitude", 0].search_space == space
    assert runs["magnitude", 0].optuna_study_name == "demo/magnitude/0"
    assert runs["magnitude", 0].status == "COMPLETE" and runs["magnitude", 0].finished_at
    assert runs["magnitude", 1].id == second and runs["magnitude", 1].status == "RUNNING"
    with pytest.raises(StoreError, match=r"unknown method run 999"):
        store.finish_method_run(999)


def test_trial_round_trip_and_updates(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    run = store.start_method_run("demo", "adapmtl", 7)
    trial = store.add_trial(
        run,
        params={"target_sparsity": 0.9},
        config={"lr": 1e-3},
        tune_trial_id="abc_00001",
        optuna_trial_number=4,
        host="node-a",
    )
    assert store.add_trial(run, tune_trial_id="abc_00001") == trial  # reported twice
    finished = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.update_trial(
        trial,
        status="COMPLETE",
        finished_at=finished,
        sparsity=0.91,
        delta_t=float("nan"),
        metrics={"segment_semantic": {"miou": 20.1, "pixel_acc": float("inf")}},
        components={"backbone": 0.95},
        thresholds={"backbone": 0.03},
        task_weights={"segment_semantic": 1.2},
        delta_t_per_task={"segment_semantic": 0.8},
        iterations=300,
        wall_time_s=33.0,
        device_s=33.0,
        flops=1.5e12,
        parameters=123456,
        versions={"torch": "2.13"},
        node_id="n1",
    )
    record = store.get_trial(trial)
    assert (record.study, record.method, record.seed, record.number) == ("demo", "adapmtl", 7, 0)
    assert record.status == "COMPLETE" and record.params == {"target_sparsity": 0.9}
    assert record.config == {"lr": 1e-3} and record.optuna_trial_number == 4
    assert record.finished_at == finished and record.started_at is not None
    assert record.delta_t is None  # NaN is stored as NULL
    assert record.metrics == {"segment_semantic": {"miou": 20.1, "pixel_acc": None}}
    assert record.sparsity == 0.91 and record.components == {"backbone": 0.95}
    assert record.parameters == 123456 and record.flops == 1.5e12
    assert (record.host, record.node_id) == ("node-a", "n1")
    second = store.add_trial(run, status="WAITING")
    assert store.get_trial(second).number == 1 and store.get_trial(second).started_at is None
    with pytest.raises(
        StoreError,
        match=r"unknown trial field 'sparsty'; choose one of: .*"
        r"\(did you mean 'sparsity'\?\)",
    ):
        store.update_trial(trial, sparsty=0.5)
    with pytest.raises(StoreError, match=r"unknown trial status 'DONE'; choose one of"):
        store.update_trial(trial, status="DONE")
    with pytest.raises(StoreError, match=r"sparsity must be a number \(got 'high'\)"):
        store.update_trial(trial, sparsity="high")
    with pytest.raises(StoreError, match=r"trial number 0 already exists in method run"):
        store.add_trial(run, number=0)
    with pytest.raises(StoreError, match=r"unknown trial 999"):
        store.update_trial(999, status="FAILED")


def test_bulk_trials_counts_and_reference(store: ResultStore):
    store.create_study("demo", {}, OBJECTIVES)
    dense = store.start_method_run("demo", "dense", 0)
    magnitude = store.start_method_run("demo", "magnitude", 0)
    reference = store.add_trial(
        dense, is_reference=True, status="COMPLETE", metrics={"segment_semantic": {"miou": 20.0}}
    )
    ids = store.add_trials(
        magnitude,
        [
            {"params": {"target_sparsity": 0.5 + i / 10}, "status": status}
            for i, status in enumerate(["COMPLETE", "COMPLETE", "FAILED", "RUNNING", "WAITING"])
        ],
    )
    assert len(ids) == 5 and ids == sorted(ids)
    assert [store.get_trial(i).number for i in ids] == [0, 1, 2, 3, 4]
    assert store.count_trials("demo") == 6
    assert store.count_trials("demo", method="magnitude", status="COMPLETE") == 2
    assert store.count_trials("demo", status=["RUNNING", "WAITING"]) == 2
    assert store.count_trials("demo", is_reference=True) == 1
    assert [t.id for t in store.trials_of("demo", method="magnitude")] == ids
    assert store.reference_trial("demo").id == reference
    assert store.reference_trial("demo", seed=3) is None
    # resume reconciliation: the trials of a dead driver become FAILED
    assert store.mark_running_as_failed("demo", "driver stopped; trial abandoned") == 2
    failed = store.trials_of("demo", status="FAILED")
    assert len(failed) == 3
    abandoned = [t for t in failed if t.error == "driver stopped; trial abandoned"]
    assert len(abandoned) == 2 and all(t.finished_at for t in abandoned)
    assert store.count_trials("demo", status=["RUNNING", "WAITING"]) == 0


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
    with pytest.raises(StoreError, match=r"unknown evaluation field 'lossses'"):
        store.add_evaluation(trial, {"iteration": 300, "lossses": {}})
    with pytest.raises(StoreError, match=r"an evaluation needs an 'iteration'"):
        store.add_evaluation(trial, {"sparsity": 0.1})
    with pytest.raises(StoreError, match=r"unknown trial 999"):
        store.add_evaluation(999, EVALUATION)


def test_artifacts_and_delete_cascade(store: ResultStore, tmp_path: Path):
    store.create_study("demo", {}, OBJECTIVES)
    trial = store.add_trial(store.start_method_run("demo", "snip", 0))
    store.add_evaluation(trial, EVALUATION)
    model = tmp_path / "model.pt"
    model.write_bytes(b"x" * 10)
    artifact = store.add_artifact(trial, "model", str(model))
    (record,) = store.artifacts_of(trial)
    assert (record.id, record.kind, record.path, record.size) == (artifact, "model", str(model), 10)
    store.delete_study("demo")
    assert store.list_studies() == []
    with sqlite3.connect(store.url.removeprefix("sqlite:///")) as raw:
        for table in ("trials", "evaluations", "artifacts", "method_runs"):
            assert raw.execute(f"SELECT COUNT(*) FROM paretune_{table}").fetchone() == (0,)


def test_sqlite_file_uses_wal_and_foreign_keys(store: ResultStore, url: str):
    with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_schema_version_mismatch(url: str):
    ResultStore(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE paretune_schema_info SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(
        StoreError,
        match=rf"has results schema version {SCHEMA_VERSION + 1} but "
        rf"this paretune uses version {SCHEMA_VERSION}",
    ):
        ResultStore(url)


def test_missing_database_is_not_created_for_reading(tmp_path: Path):
    missing = tmp_path / "none.db"
    with pytest.raises(StoreError, match=r"database file .*none\.db does not exist"):
        ResultStore(f"sqlite:///{missing}", create=False)
    assert not missing.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(StoreError, match=r"holds no paretune results"):
        ResultStore(f"sqlite:///{other}", create=False)


def test_unreachable_postgres_message_hides_password():
    url = "postgresql+psycopg://user:s3cret-pw@127.0.0.1:1/db"
    with pytest.raises(StoreError) as caught:
        ResultStore(url)
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to database postgresql+psycopg://user:***@127.0.0.1:1/db: "
    )
    assert "s3cret-pw" not in message and "\n" not in message
    assert "refused" in message.lower() or "failed" in message.lower()


def test_sqlite_in_an_impossible_location(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(
        StoreError,
        match=r"cannot create the folder .*a-file/sub for database "
        r"sqlite:///.*",
    ):
        ResultStore(f"sqlite:///{blocker}/sub/paretune.db")
    with pytest.raises(
        StoreError,
        match=r"cannot connect to database sqlite:///.*: "
        r"unable to open database file",
    ):
        ResultStore(f"sqlite:///{tmp_path}")  # a folder, not a file


def test_malformed_url_hides_password():
    with pytest.raises(StoreError, match=r"invalid database URL") as caught:
        create_store_engine("postgresql://me:pa55word@host:notaport/db")
    assert "pa55word" not in str(caught.value)
    assert redact_url("postgresql://me:pa55word@host:notaport/db") == (
        "postgresql://me:***@host:notaport/db"
    )


def test_stored_configs_never_hold_passwords(store: ResultStore):
    config = {"storage": "postgresql+psycopg://user:hunter22@db/x", "nested": ["a://u:pw@h"]}
    store.create_study("demo", config, OBJECTIVES)
    stored = store.get_study("demo").config
    assert "hunter22" not in str(stored) and ":pw@" not in str(stored)
    assert stored["storage"] == "postgresql+psycopg://user:***@db/x"


def test_transient_errors_are_retried_and_logged_without_password(
    store: ResultStore, caplog: pytest.LogCaptureFixture
):
    runner = SessionRunner(
        store.engine, "sqlite:///x.db", password="hunter22", retry_timeout=5.0, attempts=4
    )
    calls = []

    def flaky(session):
        calls.append(1)
        if len(calls) < 3:
            raise sa_exc.OperationalError(
                "INSERT ...", {}, sqlite3.OperationalError("database is locked (hunter22)")
            )
        return session.connection().exec_driver_sql("SELECT 41 + 1").scalar()

    with caplog.at_level(logging.WARNING, logger="paretune.store"):
        assert runner.run(flaky, write=True) == 42
    assert len(calls) == 3
    assert len(caplog.records) == 2
    assert all("database is locked" in r.getMessage() for r in caplog.records)
    assert all("hunter22" not in r.getMessage() for r in caplog.records)

    def always_locked(session):
        raise sa_exc.OperationalError("X", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(
        StoreError,
        match=r"database error on sqlite:///x\.db: database is "
        r"locked \(gave up after 4 attempts\)",
    ) as caught:
        runner.run(always_locked)
    assert not isinstance(caught.value, TransientStoreError)

    def broken(session):
        raise sa_exc.OperationalError("X", {}, sqlite3.OperationalError("no such table: t"))

    calls.clear()
    with pytest.raises(StoreError, match=r"no such table: t$"):
        runner.run(lambda s: calls.append(1) or broken(s))
    assert len(calls) == 1  # not transient: no retry


def _add_trials(url: str, run: int, worker: int, count: int) -> None:
    with ResultStore(url) as store:
        for i in range(count):
            trial = store.add_trial(
                run, params={"worker": worker, "i": i}, tune_trial_id=f"w{worker}-{i}"
            )
            store.add_evaluation(trial, {**EVALUATION, "iteration": i})


def test_two_processes_write_concurrently_without_losses(url: str):
    with ResultStore(url) as store:
        store.create_study("demo", {}, OBJECTIVES)
        run = store.start_method_run("demo", "random", 0)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_trials, args=(url, run, w, 50)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    with ResultStore(url) as store:
        trials = store.trials_of("demo")
        assert len(trials) == 100
        assert sorted(t.number for t in trials) == list(range(100))
        assert {(t.params["worker"], t.params["i"]) for t in trials} == {
            (w, i) for w in range(2) for i in range(50)
        }
        assert sum(len(store.evaluations_of(t.id)) for t in trials) == 100


def test_the_study_version_changes_with_every_kind_of_change(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path}/v.db")
    store.create_study("s", {}, OBJECTIVES)
    store.create_study("other", {}, OBJECTIVES)
    versions = [store.study_version("s")]
    run = store.start_method_run("s", "magnitude", 0)
    trial = store.add_trial(run, params={"target_sparsity": 0.5})
    versions.append(store.study_version("s"))
    store.add_evaluation(trial, EVALUATION)
    versions.append(store.study_version("s"))
    store.update_trial(trial, status="COMPLETE", finished_at=datetime.now(UTC))
    versions.append(store.study_version("s"))
    store.set_study_status("s", "COMPLETE")
    versions.append(store.study_version("s"))
    assert len(set(versions)) == len(versions)
    other = store.start_method_run("other", "snip", 0)  # another study's trials
    store.add_evaluation(store.add_trial(other), EVALUATION)
    assert store.study_version("s") == versions[-1]


def test_trial_columns_reads_the_columns_asked_for(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path}/c.db")
    store.create_study("s", {}, OBJECTIVES)
    store.add_trial(store.start_method_run("s", "snip", 0), params={"a": 1}, delta_t=-2.0)
    columns = store.trial_columns(["s"], ["delta_t", "params"])
    assert columns == {
        "study": ["s"],
        "method": ["snip"],
        "trial_id": [1],
        "number": [0],
        "delta_t": [-2.0],
        "params": [{"a": 1}],
    }
    with pytest.raises(StoreError, match="unknown trial field 'delta'"):
        store.trial_columns(["s"], ["delta"])
