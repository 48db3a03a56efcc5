"""Driver leases: which process drives a study, so a dead driver is visible and two
drivers never work on one study at once."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from study.store._errors import StoreError
from study.store._models import DriverLeaseRow, StudyRow, utcnow
from study.store._records import DriverLease, as_utc

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from study.store._session import SessionRunner


class DriverRunning(StoreError):
    """Another driver holds a live lease on the study."""


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def lease_alive(
    host: str, pid: int, heartbeat_at: datetime, stale_after_s: float, now: datetime
) -> bool:
    """A recent heartbeat, and (on this host) a process that still exists."""
    if (now - heartbeat_at).total_seconds() > stale_after_s:
        return False
    return host != socket.gethostname() or process_exists(pid)


def _lease(row: DriverLeaseRow, study: str) -> DriverLease:
    heartbeat = as_utc(row.heartbeat_at)
    started = as_utc(row.started_at)
    assert heartbeat is not None and started is not None
    return DriverLease(
        study=study,
        token=row.token,
        host=row.host,
        pid=row.pid,
        started_at=started,
        heartbeat_at=heartbeat,
        stale_after_s=row.stale_after_s,
        ray_session=row.ray_session,
        alive=lease_alive(row.host, row.pid, heartbeat, row.stale_after_s, utcnow()),
    )


class DriverLeases:
    """The lease methods of :class:`~study.store.ResultStore` (one row per study)."""

    _runner: SessionRunner

    def _study_id(self, session: Session, name: str) -> int:
        raise NotImplementedError

    def acquire_lease(
        self, study: str, *, stale_after_s: float, ray_session: str | None = None
    ) -> tuple[DriverLease, DriverLease | None]:
        """Makes this process the study's driver.

        Returns:
            ``(the new lease, the stale lease it took over or None)``.

        Raises:
            DriverRunning: a live lease is held by another driver (the message names its
                host and pid).
        """
        token = uuid.uuid4().hex
        host, pid = socket.gethostname(), os.getpid()

        def work(session: Session) -> tuple[DriverLease, DriverLease | None]:
            study_id = self._study_id(session, study)
            row = session.get(DriverLeaseRow, study_id)
            previous = None if row is None else _lease(row, study)
            if previous is not None and previous.alive:
                raise DriverRunning(
                    f"study {study!r} is being driven by {previous.describe()} (last "
                    f"heartbeat {previous.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); wait for it "
                    f"to finish or stop that process first"
                )
            now = utcnow()
            values = {
                "token": token,
                "host": host,
                "pid": pid,
                "started_at": now,
                "heartbeat_at": now,
                "stale_after_s": float(stale_after_s),
                "ray_session": ray_session,
            }
            if row is None:
                session.add(DriverLeaseRow(study_id=study_id, **values))
            else:
                taken = session.execute(
                    update(DriverLeaseRow)
                    .where(DriverLeaseRow.study_id == study_id)
                    .where(DriverLeaseRow.token == row.token)
                    .values(**values),
                    execution_options={"synchronize_session": False},
                )
                if getattr(taken, "rowcount", 1) != 1:
                    raise DriverRunning(f"another driver took study {study!r} just now")
            session.flush()
            lease = session.get(DriverLeaseRow, study_id)
            assert lease is not None
            session.refresh(lease)
            return _lease(lease, study), previous

        return self._runner.run(work, write=True)

    def renew_lease(self, study: str, token: str, *, ray_session: str | None = None) -> bool:
        """A heartbeat; False when the lease is no longer this driver's."""
        values: dict[str, object] = {"heartbeat_at": utcnow()}
        if ray_session is not None:
            values["ray_session"] = ray_session

        def work(session: Session) -> bool:
            study_id = self._study_id(session, study)
            result = session.execute(
                update(DriverLeaseRow)
                .where(DriverLeaseRow.study_id == study_id, DriverLeaseRow.token == token)
                .values(**values),
                execution_options={"synchronize_session": False},
            )
            return bool(getattr(result, "rowcount", 0))

        return self._runner.run(work, write=True)

    def release_lease(self, study: str, token: str) -> None:
        """Ends this driver's lease (nothing happens if it is not the holder)."""

        def work(session: Session) -> None:
            study_id = self._study_id(session, study)
            session.execute(
                delete(DriverLeaseRow).where(
                    DriverLeaseRow.study_id == study_id, DriverLeaseRow.token == token
                )
            )

        self._runner.run(work, write=True)

    def driver_lease(self, study: str) -> DriverLease | None:
        """The study's lease (live or stale), if a driver has held one."""

        def work(session: Session) -> DriverLease | None:
            row = session.scalar(
                select(DriverLeaseRow)
                .join(StudyRow, StudyRow.id == DriverLeaseRow.study_id)
                .where(StudyRow.name == study)
            )
            return None if row is None else _lease(row, study)

        return self._runner.run(work)
