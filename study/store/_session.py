"""The one scoped-session helper of the store: commit, roll back, translate, retry."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from study.store._engine import WRITE_OPTION
from study.store._errors import StoreError, TransientStoreError
from study.store._url import scrub

logger = logging.getLogger("paretune.store")

T = TypeVar("T")

_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """Whether retrying might help: a lost connection or a locked/busy database."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.OperationalError):
        original = error.orig
        if type(original).__module__.startswith("sqlite3"):
            return any(text in str(original).lower() for text in _SQLITE_TRANSIENT)
        return True  # PostgreSQL & co: connection lost, serialization failure, deadlock
    return False


def one_line(error: BaseException, password: str | None = None) -> str:
    """The driver's message of ``error`` on one line, without SQL, parameters or password."""
    original = getattr(error, "orig", None) or error
    text = " ".join(part.strip() for part in str(original).splitlines() if part.strip())
    text = text or type(original).__name__
    return scrub(text, password)


class SessionRunner:
    """Runs units of work in scoped sessions, retrying transient failures.

    Args:
        engine: the store's engine.
        label: the redacted database URL, for messages.
        password: the URL's password, scrubbed from every message.
        retry_timeout: total time spent retrying one unit of work (seconds).
        attempts: the most attempts of one unit of work (``None``: as many as fit in
            ``retry_timeout``, so that a database restart of a few seconds is waited out).
    """

    def __init__(
        self,
        engine: Engine,
        label: str,
        password: str | None = None,
        retry_timeout: float = 30.0,
        attempts: int | None = None,
    ) -> None:
        self.label = label
        self._password = password
        self.retry_timeout = retry_timeout
        self.attempts = attempts
        self._readers = sessionmaker(bind=engine, expire_on_commit=False)
        self._writers = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session that commits on success, rolls back on error and raises
        :class:`StoreError` (:class:`TransientStoreError` when retrying may help)."""
        session = (self._writers if write else self._readers)()
        try:
            yield session
            session.commit()
        except sa_exc.SQLAlchemyError as error:
            _rollback(session)
            kind = TransientStoreError if is_transient(error) else StoreError
            raise kind(
                f"database error on {self.label}: {one_line(error, self._password)}"
            ) from error
        except BaseException:
            _rollback(session)
            raise
        finally:
            session.close()

    def run(self, work: Callable[[Session], T], *, write: bool = False) -> T:
        """``work(session)`` in a scoped session, retried with exponential backoff on
        transient errors for at most :attr:`retry_timeout` seconds."""
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        attempt = 1
        while True:
            try:
                with self.session(write=write) as session:
                    return work(session)
            except TransientStoreError as error:
                out_of_attempts = self.attempts is not None and attempt >= self.attempts
                if out_of_attempts or time.monotonic() + delay > deadline:
                    raise StoreError(f"{error} (gave up after {attempt} attempts)") from error
                logger.warning(
                    "%s; retrying in %.2f s (attempt %d%s)",
                    error,
                    delay,
                    attempt,
                    "" if self.attempts is None else f" of {self.attempts}",
                )
                time.sleep(delay * random.uniform(1.0, 1.5))
                delay = min(delay * 2, 5.0)
                attempt += 1


def _rollback(session: Session) -> None:
    with contextlib.suppress(sa_exc.SQLAlchemyError):  # the connection may be gone
        session.rollback()
