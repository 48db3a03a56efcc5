"""The driver's background store writer: order, batched evaluations, failures raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from study._writer import AddEvaluation, AddTrial, StoreWriter, UpdateTrial, _Batch
from study.store import ResultStore, StoreError


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    store = ResultStore(f"sqlite:///{tmp_path}/paretune.db")
    store.create_study("s", {}, [("delta_t", "maximize")])
    return store


def evaluation(iteration: int) -> dict:
    return {"iteration": iteration, "sparsity": iteration / 100, "delta_t": -1.0}


def test_writes_land_in_order_with_queued_evaluations_in_one_transaction(
    store: ResultStore,
) -> None:
    run = store.start_method_run("s", "magnitude", 0)
    writer = StoreWriter(store)
    queued = [
        AddTrial("t0", run, {"seed": 0, "params": {"a": 1}}),
        *(AddEvaluation("t0", evaluation(k)) for k in (10, 20, 30)),
        UpdateTrial("t0", {"status": "COMPLETE", "iterations": 30}),
        AddTrial("t1", run, {"seed": 0}),
        AddEvaluation("t1", evaluation(10)),
    ]
    writer._apply(_Batch(queued))  # what the thread does with writes taken at once
    writer.flush()
    t0, t1 = store.trials_of("s")
    assert (t0.status, t0.iterations, t0.params) == ("COMPLETE", 30, {"a": 1})
    assert [e.iteration for e in store.evaluations_of(t0.id)] == [10, 20, 30]
    assert [e.iteration for e in store.evaluations_of(t1.id)] == [10]
    assert writer.transactions == 5  # 2 trials, 1 update, 2 batches of evaluations
    writer.close()


def test_a_failed_write_stops_the_writer_and_is_raised(store: ResultStore) -> None:
    run = store.start_method_run("s", "magnitude", 0)
    writer = StoreWriter(store)
    writer.submit(AddTrial("t0", run, {"seed": 0}))
    writer.submit(UpdateTrial("t0", {"no_such_column": 1}))
    writer.submit(UpdateTrial("t0", {"status": "COMPLETE"}))
    with pytest.raises(StoreError, match="no_such_column"):
        writer.flush()
    with pytest.raises(StoreError, match="no_such_column"):
        writer.submit(UpdateTrial("t0", {"status": "FAILED"}))
    (trial,) = store.trials_of("s")
    assert trial.status == "RUNNING"  # nothing after the failed write was stored
    writer.close()


def test_close_stores_what_is_queued(store: ResultStore) -> None:
    run = store.start_method_run("s", "magnitude", 0)
    writer = StoreWriter(store)
    writer.submit(AddTrial("t0", run, {"seed": 0}))
    writer.submit(AddEvaluation("t0", evaluation(5)))
    writer.close()
    (trial,) = store.trials_of("s")
    assert [e.iteration for e in store.evaluations_of(trial.id)] == [5]
    assert not writer._thread.is_alive()
