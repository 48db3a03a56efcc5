"""Studies under faults: a lost worker node, a database outage, concurrent studies on one
database, a corrupt checkpoint and a store that stops accepting writes.

Each test prints the rows it expected and the rows it found. A driver killed with
``kill -9`` is covered by ``test_study_resume.py``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from study.store import ResultStore, TrialRecord
from tests.integration.cluster import RayCluster, require_network_namespaces
from tests.integration.helpers import (
    PARETUNE,
    db_url,
    paretune,
    tiny_study,
    worker_env,
    write_config,
)
from tests.postgres import PostgresServer, start_for_tests

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# --- fixtures and helpers ----------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with start_for_tests() as server:
        yield server


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> RayCluster:
    require_network_namespaces()
    made = RayCluster(tmp_path / "cluster-logs")
    made.root.mkdir()
    request.addfinalizer(made.close)
    return made.start()


def _study(name: str, folder: Path, trials: int, iterations: int, **changes: Any) -> dict:
    """A tiny study of the dense reference and ``random`` with ``trials`` trials."""
    return tiny_study(
        name,
        folder,
        methods=[{"name": "dense"}, {"name": "random"}],
        budget={
            "trials_per_method": trials,
            "iterations": iterations,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": iterations // 2,
        },
        **changes,
    )


def _trials(url: str, study: str) -> list[TrialRecord]:
    """The study's trials, or none while the database or the study is not there yet."""
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


def _wait_until(
    condition: Callable[[], bool], driver: subprocess.Popen[Any], what: str, timeout: float = 600
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert driver.poll() is None, f"the driver exited ({driver.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _start_driver(args: list[str], folder: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [PARETUNE, *args],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=worker_env(),
            start_new_session=True,
        )


def _report(label: str, expected: int, trials: list[TrialRecord]) -> int:
    complete = sum(t.status == "COMPLETE" for t in trials)
    print(f"{label}: rows expected {expected}, found {len(trials)}, COMPLETE {complete}")
    return complete


def _assert_evaluations_whole(url: str, trials: list[TrialRecord], iterations: int) -> None:
    """Every COMPLETE trial holds exactly its two evaluations (none lost, none doubled)."""
    with ResultStore(url, create=False) as store:
        for trial in trials:
            if trial.status == "COMPLETE":
                found = [e.iteration for e in store.evaluations_of(trial.id)]
                assert found == [iterations // 2, iterations], (trial.id, found)


def _optuna_states(url: str, study: str) -> list[optuna.trial.TrialState]:
    """The states of the Optuna study's trials (none while it does not exist yet)."""
    storage = optuna.storages.RDBStorage(url)
    try:
        return [t.state for t in optuna.load_study(study_name=study, storage=storage).trials]
    except KeyError:
        return []
    finally:
        storage.remove_session()
        storage.engine.dispose()


# --- a: a worker node dies mid-study ------------------------------------------------------
def test_lost_worker_node_trials_are_retried_and_the_study_completes(cluster, tmp_path):
    # Long enough that the kill lands in the middle of a trial: with init: dense the four
    # trials start together after the reference, so the second pair (one of them on the
    # worker) is the only window in which a trial has completed and another one trains.
    iterations = 600
    config = _study("lost-node", tmp_path, trials=4, iterations=iterations)
    config["resources"]["max_failures"] = 3
    url = db_url(config)
    log = tmp_path / "driver.log"
    driver = cluster.popen_in(
        cluster.head,
        [PARETUNE, "run", str(write_config(config, tmp_path)), "--address", cluster.address],
        log,
    )
    try:
        _wait_until(
            lambda: (
                any(
                    t.status == "COMPLETE" and not t.is_reference for t in _trials(url, "lost-node")
                )
                and _trial_running_on(cluster.worker)
            ),
            driver,
            "a trial ran on the worker node",
        )
        time.sleep(1.0)  # into its training
        killed = cluster.kill_node(cluster.worker)
        print(f"killed the worker node: {killed} processes")
        assert driver.wait(timeout=600) == 0, log.read_text()[-4000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    retried = log.read_text().count("lost its worker; Ray retries it")
    print(f"trials retried after the node was lost: {retried}")
    assert retried >= 1  # the kill hit a running trial
    trials = _trials(url, "lost-node")
    complete = _report("lost worker node", 5, trials)
    assert len(trials) == 5 and complete == 5, [(t.status, t.error) for t in trials]
    assert len(cluster.alive_nodes()) == 1
    _assert_evaluations_whole(url, trials, iterations)
    states = _optuna_states(url, "lost-node/random/seed-0")
    assert states == [optuna.trial.TrialState.COMPLETE] * 4


def _trial_running_on(node: Any) -> bool:
    """Whether a Ray Tune trial is training in ``node``'s namespace: its actor is busy
    (``ray::ImplicitFunc.train``); an idle actor kept for reuse is ``ray::ImplicitFunc``."""
    for pid in node.pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"ray::ImplicitFunc.train"):
            return True
    return False


# --- e: a corrupt trial checkpoint --------------------------------------------------------
#: What an earlier attempt of a trial left in its checkpoint, and what the retry should read.
CHECKPOINTS = {
    "truncated": ('{"evaluations": 1, "fin', None),
    "not-utf8": ("\udc80\udcfe\udcff", None),
    "not-a-mapping": ("[1, 2]", None),
    "missing": (None, None),
    "valid": (
        '{"evaluations": 1, "final": {"iterations": 12}}',
        {
            "evaluations": 1,
            "final": {"iterations": 12},
        },
    ),
}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _crash_then_restore(config: dict[str, Any]) -> None:
    """A Tune trainable: the first attempt saves ``config["progress"]`` as its checkpoint
    and dies; Tune restores the retry from that checkpoint, which reads it with
    paretune's own reader and reports what it got and the warnings logged."""
    from ray import tune

    from study._trainable import PROGRESS_FILE, TuneSession

    first = Path(config["folder"]) / f"{config['case']}.attempted"
    if not first.exists():
        first.touch()
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "written-by").write_text("attempt 1")
            if config["progress"] is not None:
                text = config["progress"].encode("utf-8", "surrogateescape")
                Path(folder, PROGRESS_FILE).write_bytes(text)
            tune.report({"attempt": 1}, checkpoint=tune.Checkpoint.from_directory(folder))
        raise RuntimeError("the first attempt dies after its checkpoint")
    collect = _Collect()
    reader_log = logging.getLogger("study._trainable")
    reader_log.addHandler(collect)
    try:
        progress = TuneSession().restore()
    finally:
        reader_log.removeHandler(collect)
    tune.report({"attempt": 2, "restored": progress, "warnings": collect.messages})


def test_corrupt_checkpoint_restarts_the_trial_from_scratch_with_a_warning(tmp_path, monkeypatch):
    import ray
    from ray import cloudpickle, tune

    from study._ray import start_ray

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # start_ray sets it; undone after
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    local = start_ray(None, num_cpus=2)
    try:
        tuner = tune.Tuner(
            _crash_then_restore,
            param_space={
                "case": tune.grid_search(sorted(CHECKPOINTS)),
                "progress": tune.sample_from(lambda spec: CHECKPOINTS[spec.config.case][0]),
                "folder": str(tmp_path),
            },
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(
                storage_path=str(tmp_path / "ray"),
                failure_config=tune.FailureConfig(max_failures=1),
                verbose=0,
            ),
        )
        results = tuner.fit()
    finally:
        if local is None:
            ray.shutdown()
        else:
            local.stop()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    found = {r.config["case"]: r for r in results}
    print(f"trials expected {len(CHECKPOINTS)}, found {len(found)}")
    assert sorted(found) == sorted(CHECKPOINTS)
    for case, (_, expected) in CHECKPOINTS.items():
        result = found[case]
        assert result.error is None, (case, result.error)
        assert result.metrics["attempt"] == 2, case  # restored once, after the crash
        assert result.metrics["restored"] == expected, case
        warnings = result.metrics["warnings"]
        if expected is None:
            assert len(warnings) == 1, (case, warnings)
            assert warnings[0].startswith("checkpoint of this trial is unreadable (")
            assert warnings[0].endswith("); restarting from scratch")
        else:
            assert warnings == [], case


# --- c: PostgreSQL stops for ~10 s mid-study -----------------------------------------------
#: How long the database stays down (seconds).
OUTAGE_S = 10.0


@pytest.mark.postgres
def test_database_outage_mid_study_loses_no_result(postgres, tmp_path):
    url = postgres.create_database("outage_study")
    config = _study("outage", tmp_path, trials=4, iterations=40, storage=url)
    log = tmp_path / "driver.log"
    driver = _start_driver(["run", str(write_config(config, tmp_path))], tmp_path, log)
    try:
        _wait_until(
            lambda: any(
                t.status == "COMPLETE" and not t.is_reference for t in _trials(url, "outage")
            ),
            driver,
            "a searched trial completed",
        )
        postgres.stop()
        began = time.monotonic()
        time.sleep(OUTAGE_S)
        postgres.start()
        print(f"database down for {time.monotonic() - began:.1f} s")
        assert driver.wait(timeout=600) == 0, log.read_text()[-4000:]
    finally:
        if not postgres.running:
            postgres.start()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    output = log.read_text()
    trials = _trials(url, "outage")
    complete = _report("database outage", 5, trials)
    assert len(trials) == 5 and complete == 5, [(t.status, t.error) for t in trials]
    _assert_evaluations_whole(url, trials, 40)
    assert _optuna_states(url, "outage/random/seed-0") == [optuna.trial.TrialState.COMPLETE] * 4
    retries = output.count("retrying in")
    print(f"writes retried during the outage: {retries}")
    assert retries >= 1  # the outage did hit the driver's writes
    assert "database is locked" not in output and postgres.password not in output


# --- d: concurrent studies on one database -------------------------------------------------
@pytest.mark.postgres
def test_concurrent_studies_on_one_database_keep_every_row(postgres, cluster, tmp_path):
    postgres.create_database("crowd_studies")
    sqlite = f"sqlite:///{tmp_path / 'shared' / 'paretune.db'}"
    urls = {f"pg-{i}": postgres.socket_url_of("crowd_studies") for i in range(4)}
    urls |= {f"lite-{i}": sqlite for i in range(2)}
    drivers = {}
    for name, url in urls.items():
        config = _study(name, tmp_path, trials=2, iterations=12, storage=url)
        path = write_config(config, tmp_path)
        drivers[name] = cluster.popen_in(
            cluster.head,
            [PARETUNE, "run", str(path), "--address", cluster.address],
            tmp_path / f"{name}.log",
        )
    try:
        codes = {name: driver.wait(timeout=600) for name, driver in drivers.items()}
    finally:
        for driver in drivers.values():
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in drivers}
    assert codes == dict.fromkeys(drivers, 0), {n: logs[n][-2000:] for n, c in codes.items() if c}
    for name, text in logs.items():
        assert "database is locked" not in text, name
    expected = found = 0
    for name in drivers:
        url = postgres.url_of("crowd_studies") if name.startswith("pg") else sqlite
        trials = _trials(url, name)
        expected, found = expected + 3, found + len(trials)
        assert len(trials) == 3 and all(t.status == "COMPLETE" for t in trials), name
        _assert_evaluations_whole(url, trials, 12)
        states = _optuna_states(url, f"{name}/random/seed-0")
        assert states == [optuna.trial.TrialState.COMPLETE] * 2, name
    print(f"6 concurrent studies: rows expected {expected}, found {found}")
    with ResultStore(postgres.url_of("crowd_studies"), create=False) as store:
        assert sorted(s.name for s in store.list_studies()) == [f"pg-{i}" for i in range(4)]


# --- f: the store stops accepting writes mid-study -----------------------------------------
REVOKE = "REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM paretune"
GRANT = "GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO paretune"
OPTUNA_REVOKED = "revoked/random/seed-0"


@pytest.mark.postgres
def test_store_refusing_writes_stops_the_study_cleanly_and_resume_finishes_it(postgres, tmp_path):
    database = "revoked_study"
    url = postgres.create_database(database)
    config = _study("revoked", tmp_path, trials=4, iterations=40, storage=url)
    log = tmp_path / "driver.log"
    driver = _start_driver(["run", str(write_config(config, tmp_path))], tmp_path, log)
    try:
        # Optuna is told a trial's outcome after the store has it: wait for both.
        _wait_until(
            lambda: optuna.trial.TrialState.COMPLETE in _optuna_states(url, OPTUNA_REVOKED),
            driver,
            "a searched trial completed",
        )
        postgres.execute(REVOKE, database=database)
        code = driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    output = log.read_text()
    before = _trials(url, "revoked")
    _report("writes refused, before resume", 5, before)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert len(errors) == 1 and "permission denied" in errors[0], output[-2000:]
    assert "paretune resume revoked" in errors[0]
    assert postgres.password not in output
    _assert_evaluations_whole(url, before, 40)

    postgres.execute(GRANT, database=database)
    resumed = paretune("resume", "revoked", "--db", url, cwd=tmp_path)
    trials = _trials(url, "revoked")
    searched = [t for t in trials if not t.is_reference]
    complete = _report("after resume", 5, trials)
    assert sum(t.status == "COMPLETE" for t in searched) == 4, [(t.status, t.error) for t in trials]
    assert all(t.status == "COMPLETE" or "interrupted" in (t.error or "") for t in trials), [
        (t.status, t.error) for t in trials
    ]
    assert complete == len(trials) - sum(t.status == "FAILED" for t in trials)
    assert len({t.number for t in searched}) == len(searched)
    _assert_evaluations_whole(url, trials, 40)
    states = _optuna_states(url, OPTUNA_REVOKED)
    print(f"optuna trials after resume: {[s.name for s in states]}")
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert postgres.password not in resumed.stdout + resumed.stderr


def _failed_write(password: str) -> BaseException:
    """What Optuna raises when its storage's commit fails: the database's error inside."""
    from sqlalchemy import exc as sa_exc

    denied = sa_exc.ProgrammingError(
        "INSERT INTO trial_params ...",
        {"password": password},
        Exception(f"permission denied for table trial_params\nDETAIL: role with {password}"),
    )
    try:
        try:
            raise denied
        except sa_exc.SQLAlchemyError as error:
            raise optuna.exceptions.StorageInternalError("commit failed") from error
    except optuna.exceptions.StorageInternalError as error:
        return error


def test_a_database_failure_becomes_one_line_naming_the_resume_command():
    from study._faults import stop_on_store_failure
    from study.store import StoreError

    url = "postgresql+psycopg://paretune:Sec-ret-42@db-host/paretune"
    with pytest.raises(StoreError) as caught, stop_on_store_failure("sweep", url):
        raise RuntimeError("Tune stopped") from _failed_write("Sec-ret-42")
    message = str(caught.value)
    assert message.startswith(
        "the results database postgresql+psycopg://paretune:***@db-host/paretune stopped "
        "accepting writes (permission denied for table trial_params DETAIL: role with ***)"
    )
    assert message.endswith(
        "'paretune resume sweep --db URL' finishes it once the database accepts writes again"
    )
    assert "Sec-ret-42" not in message and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_other_errors_pass_through_unchanged():
    from study._faults import stop_on_store_failure

    with (
        pytest.raises(ValueError, match=r"^not a database problem$"),
        stop_on_store_failure("sweep", "sqlite:///x.db"),
    ):
        raise ValueError("not a database problem")


@pytest.mark.postgres
def test_optuna_storage_waits_out_a_database_restart(postgres, caplog):
    import threading

    from sqlalchemy import exc as sa_exc

    from study._faults import RetryingRDBStorage

    caplog.set_level(logging.WARNING, logger="paretune.store")
    url = postgres.create_database("optuna_restart")
    plain = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    storage = RetryingRDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    study = optuna.create_study(storage=storage, study_name="s", directions=["maximize"])
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 1.0)
    postgres.stop()
    restart = threading.Timer(3.0, postgres.start)
    restart.start()
    try:
        with pytest.raises((optuna.exceptions.StorageInternalError, sa_exc.OperationalError)):
            plain.get_all_studies()  # Optuna's own storage gives up at once
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # waits
        study.tell(trial, 2.0)
    finally:
        restart.join()
    states = [t.state for t in study.trials]
    print(f"optuna trials expected 2 COMPLETE, found {[s.name for s in states]}")
    assert states == [optuna.trial.TrialState.COMPLETE] * 2
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and all(m.startswith("Optuna storage ") for m in retries)
    assert postgres.password not in "\n".join(retries)
    plain.engine.dispose()
    storage.engine.dispose()
