"""Driver leases and schema migration, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from study.store import SCHEMA_VERSION, DriverRunning, ResultStore
from study.store._models import DriverLeaseRow, utcnow

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]


@pytest.fixture
def store(store_url: str):
    with ResultStore(store_url) as opened:
        opened.create_study("demo", {}, OBJECTIVES)
        yield opened


def _dead_pid() -> int:
    """The pid of a process that has just exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _set_lease(store: ResultStore, **values: object) -> None:
    store.run(lambda session: session.execute(update(DriverLeaseRow).values(**values)), write=True)


def test_a_live_lease_refuses_a_second_driver(store: ResultStore) -> None:
    lease, previous = store.acquire_lease("demo", stale_after_s=30)
    assert previous is None and lease.alive
    assert (lease.host, lease.pid) == (socket.gethostname(), os.getpid())
    with pytest.raises(DriverRunning, match=rf"being driven by host .*, pid {os.getpid()}"):
        store.acquire_lease("demo", stale_after_s=30)
    assert store.renew_lease("demo", lease.token, ray_session="/tmp/x")
    assert store.driver_lease("demo").ray_session == "/tmp/x"
    assert not store.renew_lease("demo", "someone-else")
    store.release_lease("demo", "someone-else")  # not the holder: nothing happens
    assert store.driver_lease("demo") is not None
    store.release_lease("demo", lease.token)
    assert store.driver_lease("demo") is None


def test_a_lease_of_a_dead_process_is_stale_at_once(store: ResultStore) -> None:
    lease, _ = store.acquire_lease("demo", stale_after_s=30, ray_session="/tmp/ray-of-dead")
    _set_lease(store, pid=_dead_pid())
    assert not store.driver_lease("demo").alive
    taken, previous = store.acquire_lease("demo", stale_after_s=30)
    assert previous is not None and previous.ray_session == "/tmp/ray-of-dead"
    assert taken.token != lease.token and taken.alive
    assert not store.renew_lease("demo", lease.token)  # the old driver lost it


def test_an_old_heartbeat_from_another_host_is_stale(store: ResultStore) -> None:
    store.acquire_lease("demo", stale_after_s=30)
    _set_lease(store, host="elsewhere", heartbeat_at=utcnow() - timedelta(seconds=10))
    assert store.driver_lease("demo").alive  # another host: only the heartbeat tells
    _set_lease(store, heartbeat_at=utcnow() - timedelta(seconds=31))
    assert not store.driver_lease("demo").alive
    _, previous = store.acquire_lease("demo", stale_after_s=30)
    assert previous is not None and previous.host == "elsewhere"


def test_deleting_a_study_deletes_its_lease(store: ResultStore) -> None:
    store.acquire_lease("demo", stale_after_s=30)
    store.delete_study("demo")
    store.create_study("demo", {}, OBJECTIVES)
    assert store.driver_lease("demo") is None


def test_a_version_2_database_is_migrated_keeping_its_results(store_url: str) -> None:
    with ResultStore(store_url) as store:
        store.create_study("old", {"name": "old"}, OBJECTIVES)
        run = store.start_method_run("old", "magnitude", 0)
        trial = store.add_trial(run, params={"target_sparsity": 0.9}, delta_t=-3.0)
        store.add_evaluation(trial, {"iteration": 5, "sparsity": 0.4})

        def downgrade(session) -> None:  # what schema version 2 had
            session.execute(text("DROP TABLE paretune_driver_leases"))
            session.execute(text("ALTER TABLE paretune_trials DROP COLUMN search_error"))
            for column in ("delta_t_per_task", "flops", "parameters"):
                session.execute(text(f"ALTER TABLE paretune_evaluations DROP COLUMN {column}"))
            session.execute(text("UPDATE paretune_schema_info SET version = 2"))

        store.run(downgrade, write=True)
    with ResultStore(store_url) as store:
        assert store.run(lambda s: s.execute(text("SELECT version FROM paretune_schema_info"))
                         .scalar()) == SCHEMA_VERSION  # fmt: skip
        (stored,) = store.trials_of("old")
        assert stored.delta_t == -3.0 and stored.search_error is None
        store.update_trial(stored.id, search_error="told twice")
        assert store.get_trial(stored.id).search_error == "told twice"
        (evaluation,) = store.evaluations_of(stored.id)
        assert evaluation.sparsity == 0.4 and evaluation.flops is None
        store.add_evaluation(stored.id, {"iteration": 9, "flops": 2e9, "parameters": 10})
        assert store.evaluations_of(stored.id)[1].flops == 2e9
        store.acquire_lease("old", stale_after_s=30)


def test_a_newer_database_is_refused(sqlite_url: str) -> None:
    with ResultStore(sqlite_url) as store:
        store.run(
            lambda s: s.execute(text("UPDATE paretune_schema_info SET version = 99")), write=True
        )
    with pytest.raises(Exception, match="schema version 99 but this paretune uses version"):
        ResultStore(sqlite_url)
