"""The results store against a real PostgreSQL server under faults: a bad address, a
server stopped mid-run, several processes writing at once."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from study.store import ResultStore, StoreError
from study.store._models import EvaluationRow, MethodRunRow, TrialRow
from tests.postgres import PostgresServer, PostgresUnavailableError, find_binaries, free_port

pytestmark = pytest.mark.postgres

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
#: How long the server stays down in the outage test (seconds).
OUTAGE_S = 10.0


def _evaluation(iteration: int) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "metrics": {"segment_semantic": {"miou": 20.0 + iteration / 1000}},
        "losses": {"segment_semantic": 1.0},
        "sparsity": iteration / 1000,
        "delta_t": -1.0,
        "images_seen": iteration * 16,
    }


def _count(store: ResultStore, table: type) -> int:
    assert isinstance(store, ResultStore)
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(table))) or 0)


def _texts(records: list[logging.LogRecord]) -> str:
    """Everything a log handler could print: messages, arguments and tracebacks."""
    parts = []
    for record in records:
        parts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def _chain(error: BaseException) -> str:
    """The text of ``error`` and of every exception it was raised from."""
    return "".join(traceback.format_exception(error))


def test_missing_binaries_say_how_to_install_them(tmp_path: Path):
    (tmp_path / "13" / "bin").mkdir(parents=True)  # a folder without the server programs
    with pytest.raises(
        PostgresUnavailableError,
        match=r"no PostgreSQL server binaries \(initdb, pg_ctl\) in .*; run `make test`",
    ):
        find_binaries(str(tmp_path / "*" / "bin"))
    with pytest.raises(PostgresUnavailableError, match=r"run `make test`"):
        PostgresServer(binaries=tmp_path / "13" / "bin")


def test_server_listens_only_on_loopback(postgres_server: PostgresServer):
    assert postgres_server.execute("SHOW listen_addresses") == [("127.0.0.1",)]
    assert make_url(postgres_server.url).host == "127.0.0.1"
    assert postgres_server.execute("SHOW password_encryption") == [("scram-sha-256",)]


def test_unreachable_server_errors_hide_the_password(postgres_server: PostgresServer):
    wrong = postgres_server.url.replace(postgres_server.password, "Wr0ng-Secret-pw")
    with pytest.raises(StoreError, match=r"password authentication failed") as bad_password:
        ResultStore(wrong)
    closed = f"postgresql+psycopg://paretune:Cl0sed-Port-pw@127.0.0.1:{free_port()}/paretune"
    with pytest.raises(StoreError, match=r"cannot connect to database .*refused") as refused:
        ResultStore(closed)
    url = postgres_server.create_database("unreachable")
    postgres_server.stop()
    try:
        with pytest.raises(StoreError, match=r"cannot connect to database") as stopped:
            ResultStore(url)
    finally:
        postgres_server.start()
        postgres_server.drop_database("unreachable")
    for caught, password in (
        (bad_password, "Wr0ng-Secret-pw"),
        (refused, "Cl0sed-Port-pw"),
        (stopped, postgres_server.password),
    ):
        message = str(caught.value)
        assert message.startswith("cannot connect to database postgresql+psycopg://paretune:***@")
        assert password not in message and "\n" not in message
        assert caught.value.__cause__ is None  # the driver's error (and its DSN) is dropped


class _Writer(threading.Thread):
    """Keeps adding trials, each with two evaluations, until told to stop."""

    def __init__(self, store: ResultStore, run: int) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.run_id = run
        self.done: list[int] = []  # trial ids whose trial and evaluations were stored
        self.slowest_s = 0.0
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        number = 0
        try:
            while not self.halt.is_set():
                began = time.monotonic()
                trial = self.store.add_trial(
                    self.run_id, params={"i": number}, tune_trial_id=f"writer-{number}"
                )
                self.store.add_evaluations(trial, [_evaluation(100), _evaluation(200)])
                self.store.update_trial(trial, status="COMPLETE", sparsity=number / 1000)
                self.slowest_s = max(self.slowest_s, time.monotonic() - began)
                self.done.append(trial)
                number += 1
                time.sleep(0.01)
        except BaseException as error:  # inspected by the test
            self.error = error

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.mark.slow
def test_writes_survive_a_server_outage(
    postgres_server: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    store = ResultStore(postgres_url)  # the default retry budget covers the outage
    store.create_study("outage", {}, OBJECTIVES)
    run = store.start_method_run("outage", "random", 0)
    impatient = ResultStore(postgres_url, retry_timeout=1.0)
    writer = _Writer(store, run)
    writer.start()
    try:
        writer.wait_for(15, timeout=10)
        postgres_server.stop()
        down = time.monotonic()
        before = len(writer.done)
        with pytest.raises(
            StoreError, match=r"Connection refused.* \(gave up after \d+ attempts\)$"
        ) as refused:
            impatient.add_trial(run, tune_trial_id="impatient")
        gave_up_s = time.monotonic() - down
        time.sleep(max(0.0, OUTAGE_S - gave_up_s))
        during = len(writer.done) - before
        postgres_server.start()
        writer.wait_for(len(writer.done) + 15, timeout=OUTAGE_S + 20)
    finally:
        writer.halt.set()
        writer.join(timeout=OUTAGE_S + 30)
        if not postgres_server.running:
            postgres_server.start()
    impatient.close()
    assert writer.error is None, _chain(writer.error)
    assert 0.5 <= gave_up_s <= 3.0  # a short retry budget is honoured
    assert during == 0  # nothing could be written while the server was down ...
    assert writer.slowest_s >= OUTAGE_S * 0.8  # ... so one write waited out the outage
    expected = len(writer.done)
    with ResultStore(postgres_url, create=False) as reader:
        trials = reader.trials_of("outage")
        assert sorted(t.id for t in trials) == sorted(writer.done)
        assert [t.number for t in trials] == list(range(expected))
        assert all(t.status == "COMPLETE" for t in trials)
        assert _count(reader, TrialRow) == expected
        assert _count(reader, EvaluationRow) == 2 * expected
    store.close()
    retries = [r for r in caplog.records if r.name == "paretune.store" and "retrying" in r.msg]
    assert retries, "the outage caused no retry"
    assert all(r.levelno == logging.WARNING for r in retries)
    assert postgres_server.password not in _texts(caplog.records)
    assert postgres_server.password not in _chain(refused.value)


def _worker(url: str, worker: int, count: int, log: str, start: Any) -> None:
    """One writing process: opens the store itself (racing the others to create the
    tables, the study and the method runs), then adds ``count`` trials + evaluations."""
    logging.basicConfig(filename=log, level=logging.DEBUG, force=True)
    try:
        start.wait(timeout=60)
        with ResultStore(url) as store:
            store.create_study("crowd", {"workers": 4}, OBJECTIVES, exist_ok=True)
            run = store.start_method_run("crowd", "random", seed=worker % 2)
            for i in range(count):
                trial = store.add_trial(
                    run, params={"worker": worker, "i": i}, tune_trial_id=f"w{worker}-{i}"
                )
                store.add_evaluations(trial, [_evaluation(100 + i), _evaluation(1000 + i)])
    except BaseException:
        logging.getLogger("worker").exception("worker %d failed", worker)
        raise


@pytest.mark.slow
def test_four_processes_write_concurrently(postgres_url: str, tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    logs = [tmp_path / f"worker-{w}.log" for w in range(4)]
    workers = [
        context.Process(target=_worker, args=(postgres_url, w, 50, str(logs[w]), start))
        for w in range(4)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=90)
    written = "\n".join(log.read_text() for log in logs if log.exists())
    password = make_url(postgres_url).password
    assert isinstance(password, str) and password not in written
    assert [p.exitcode for p in workers] == [0, 0, 0, 0], written[-3000:]
    with ResultStore(postgres_url, create=False) as store:
        assert [s.name for s in store.list_studies()] == ["crowd"]
        runs = store.method_runs_of("crowd")
        assert [(r.method, r.seed) for r in runs] == [("random", 0), ("random", 1)]
        trials = store.trials_of("crowd")
        assert {(t.params["worker"], t.params["i"]) for t in trials} == {
            (w, i) for w in range(4) for i in range(50)
        }
        for seed in (0, 1):
            numbers = sorted(t.number for t in trials if t.seed == seed)
            assert numbers == list(range(100))  # two writers per run, no gap, no clash
        assert _count(store, TrialRow) == 200
        assert _count(store, EvaluationRow) == 400
        assert _count(store, MethodRunRow) == 2
