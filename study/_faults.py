"""A study whose results database stops accepting writes: one line, exit 2, resume later.

The driver writes to the database from Tune callbacks (the results store) and from the
searcher (Optuna's storage). When either write fails for good (privileges revoked, disk
full, a database down for longer than the store's retry budget), the Tune run stops with
that error buried in a traceback. :func:`stop_on_store_failure` turns it into one
:class:`~study.store.StoreError` naming the cause and how to finish the study; the CLI
prints it on one line and exits with code 2. Nothing half-written is left: every write is
one transaction, and ``paretune resume`` marks the trials the stop interrupted FAILED and
runs what is missing.

:class:`RetryingRDBStorage` gives Optuna's storage the results store's retries, so that a
short database outage does not stop a study at its next ``ask`` or ``tell``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import optuna
from sqlalchemy import exc as sa_exc

from study.store import StoreError, redact_url
from study.store._engine import parse_url
from study.store._session import is_transient, one_line

T = TypeVar("T")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it was raised from or while handling, once each."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.append(current.__cause__)
        if not current.__suppress_context__:  # ``raise ... from None`` hides the context
            pending.append(current.__context__)


def store_failure(error: BaseException, study: str, url: str) -> StoreError | None:
    """The one-line error of a study stopped by its database, or None when ``error`` has
    no database failure in its chain.

    Args:
        error: what the Tune run raised.
        study: the study's name (for the resume command).
        url: the database URL (its password never appears in the message).
    """
    parsed = parse_url(url)
    password = parsed.password if isinstance(parsed.password, str) else None
    reason = None
    for cause in _causes(error):
        if isinstance(cause, sa_exc.SQLAlchemyError):
            reason = one_line(cause, password)
            break
        if isinstance(cause, StoreError) and reason is None:
            reason = one_line(cause, password)
    if reason is None:
        return None
    return StoreError(
        f"the results database {redact_url(parsed)} stopped accepting writes ({reason}); "
        f"study {study!r} stopped, and 'paretune resume {study} --db URL' finishes it once "
        "the database accepts writes again"
    )


@contextmanager
def stop_on_store_failure(study: str, url: str) -> Iterator[None]:
    """Runs the block; a database failure inside it becomes :func:`store_failure`'s error.

    Raises:
        StoreError: the database stopped accepting writes.
    """
    try:
        yield
    except Exception as error:
        failure = store_failure(error, study, url)
        if failure is None:
            raise
        raise failure from None


# --- Optuna's storage: the same retries as the results store --------------------------------
#: RDBStorage methods (and the private ones Optuna's cache calls) that retry transient errors.
RETRIED_STORAGE_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
)

logger = logging.getLogger("paretune.store")
_DEPTH = threading.local()  # a retried call inside another retries only at the outside


def is_transient_storage_error(error: BaseException) -> bool:
    """Whether an Optuna storage error is worth retrying: its database cause is a lost
    connection, a locked SQLite file or a session left unusable by one."""
    for cause in _causes(error):
        if isinstance(cause, sa_exc.PendingRollbackError):
            return True
        if isinstance(cause, sa_exc.SQLAlchemyError):
            return is_transient(cause)
    return False


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose operations retry transient database errors with
    exponential backoff for at most ``retry_timeout`` seconds, like the results store.

    Optuna's own storage gives up at the first lost connection, so a database restart of a
    few seconds would stop a study at its next ``ask`` or ``tell``. Each operation is one
    transaction: a failed one wrote nothing and is run again on a fresh session.

    Args:
        url: the database URL.
        retry_timeout: seconds one operation keeps retrying.
        **kwargs: passed to :class:`optuna.storages.RDBStorage`.
    """

    def __init__(self, url: str, *, retry_timeout: float = 30.0, **kwargs: Any) -> None:
        self.retry_timeout = retry_timeout
        for attempt in range(1, 6):
            try:
                super().__init__(url, **kwargs)
                return
            except sa_exc.SQLAlchemyError as error:
                # Studies starting together on a new database race to create Optuna's
                # tables; the loser finds them made by the winner on its next try.
                if attempt == 5 or not _creation_race(error):
                    raise
                time.sleep(0.2 * attempt * random.uniform(1.0, 1.5))

    def _retry(self, name: str, call: Callable[[], T]) -> T:
        if getattr(_DEPTH, "active", False):
            return call()
        deadline = time.monotonic() + self.retry_timeout
        delay, attempt = 0.05, 1
        _DEPTH.active = True
        try:
            while True:
                try:
                    return call()
                except Exception as error:
                    if not is_transient_storage_error(error) or time.monotonic() + delay > deadline:
                        raise
                    password = parse_url(self.url).password
                    logger.warning(
                        "Optuna storage %s failed (%s); retrying in %.2f s (attempt %d)",
                        name,
                        one_line(next(_database_causes(error), error), password),
                        delay,
                        attempt,
                    )
                    self.scoped_session.remove()  # drop a session left mid-transaction
                    time.sleep(delay * random.uniform(1.0, 1.5))
                    delay, attempt = min(delay * 2, 5.0), attempt + 1
        finally:
            _DEPTH.active = False


def _creation_race(error: BaseException) -> bool:
    """A schema being created by another process at the same moment."""
    text = str(error).lower()
    return isinstance(error, sa_exc.IntegrityError) or "already exists" in text


def _database_causes(error: BaseException) -> Iterator[BaseException]:
    return (c for c in _causes(error) if isinstance(c, sa_exc.SQLAlchemyError))


def _retried(name: str) -> Callable[..., Any]:
    def method(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        parent = getattr(super(RetryingRDBStorage, self), name)
        return self._retry(name, lambda: parent(*args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"``RDBStorage.{name}`` with retries of transient errors."
    return method


for _name in RETRIED_STORAGE_METHODS:
    setattr(RetryingRDBStorage, _name, _retried(_name))
