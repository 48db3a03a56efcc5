"""The driver's store writes, off Tune's event loop: one background thread, in order.

The recorder (a Tune callback) submits what to store as it happens; one thread writes it,
so that the event loop never waits for the database. Per trial, the writes keep their
order; the evaluations that queued up between two writes of a trial are stored in one
transaction. A write that fails for good stops the writer: the error is raised by the next
:meth:`StoreWriter.submit` or :meth:`StoreWriter.flush`, and nothing after it is written,
so the study stops as it would have with synchronous writes.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from study.store import ResultStore


@dataclass(frozen=True)
class AddTrial:
    """Store a new trial (the id of a Tune trial's row is known once this ran)."""

    tune_id: str
    run_id: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class AddEvaluation:
    tune_id: str
    evaluation: dict[str, Any]


@dataclass(frozen=True)
class UpdateTrial:
    tune_id: str
    fields: dict[str, Any]


Write = AddTrial | AddEvaluation | UpdateTrial


@dataclass
class _Batch:
    """Writes taken from the queue at once, applied in order per trial."""

    writes: list[Write]
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class StoreWriter:
    """Applies :data:`Write` s to a store on a background thread (see the module docstring).

    Attributes:
        trial_ids: Tune trial id -> stored trial id, for the trials added so far.
        transactions: how many store calls the writes took (evaluations batched).
    """

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.trial_ids: dict[str, int] = {}
        self.transactions = 0
        self._queue: queue.Queue[Write | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paretune-store", daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> None:
        """Queues ``write``; raises the error that stopped the writer, if one did."""
        self._raise()
        self._queue.put(write)

    def flush(self) -> None:
        """Waits until every queued write is stored; raises the error that stopped them."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Stores what is queued and stops the thread (errors are not raised here)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            writes = [first]
            while not self._queue.empty():
                writes.append(self._queue.get_nowait())
            stop = None in writes
            try:
                if self._error is None:
                    self._apply(_Batch([w for w in writes if w is not None]))
            except BaseException as error:  # kept for the event loop to raise
                self._error = error
            finally:
                for _ in writes:
                    self._queue.task_done()
            if stop:
                return

    def _apply(self, batch: _Batch) -> None:
        for write in batch.writes:
            if isinstance(write, AddEvaluation):
                batch.evaluations.setdefault(write.tune_id, []).append(write.evaluation)
                continue
            self._store_evaluations(batch, write.tune_id)  # this trial's earlier writes first
            if isinstance(write, AddTrial):
                if write.tune_id not in self.trial_ids:
                    self.trial_ids[write.tune_id] = self.store.add_trial(
                        write.run_id, **write.fields
                    )
                    self.transactions += 1
            else:
                self.store.update_trial(self.trial_ids[write.tune_id], **write.fields)
                self.transactions += 1
        for tune_id in list(batch.evaluations):
            self._store_evaluations(batch, tune_id)

    def _store_evaluations(self, batch: _Batch, tune_id: str) -> None:
        evaluations = batch.evaluations.pop(tune_id, None)
        if evaluations:
            self.store.add_evaluations(self.trial_ids[tune_id], evaluations)
            self.transactions += 1
