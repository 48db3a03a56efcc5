"""The driver lease: one live driver per study, visible to ``status``, ``ls`` and the
dashboard, and cleaned up after when it dies.

``paretune run`` and ``resume`` take the study's lease in the results store before they
touch anything and renew it every :data:`HEARTBEAT_S` seconds from a background thread. A
second driver is refused while the lease is live; a lease whose heartbeat is older than
:data:`STALE_AFTER_S` (or whose process is gone, seen from the same host) is taken over,
and the local Ray the dead driver had started is stopped first.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from study._console import console

if TYPE_CHECKING:
    from study.store import DriverLease, ResultStore, StudyRecord

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0


class Driver:
    """This process's lease on a study, renewed by a heartbeat thread."""

    def __init__(self, store: ResultStore, lease: DriverLease) -> None:
        self.store = store
        self.lease = lease
        self.ray_session: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="paretune-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def uses_ray_session(self, session: Path) -> None:
        """Records the local Ray's session folder in the lease (for cleanup after a crash)."""
        self.ray_session = str(session)
        self._renew()

    def _renew(self) -> None:
        try:
            held = self.store.renew_lease(
                self.lease.study, self.lease.token, ray_session=self.ray_session
            )
        except Exception as error:  # a database outage: the next beat tries again
            logger.warning("driver heartbeat failed: %s", error)
            return
        if not held:
            logger.error("study %s: another driver took over the lease", self.lease.study)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._renew()

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S + 5)
        try:
            self.store.release_lease(self.lease.study, self.lease.token)
        except Exception as error:
            logger.warning("could not release the driver lease: %s", error)


def clean_up_after(previous: DriverLease) -> None:
    """Stops the local Ray a dead driver left behind (only on the host it ran on)."""
    from study._reaper import stop_recorded

    if not previous.ray_session:
        return
    if previous.host != socket.gethostname():
        console.print(
            f"[yellow]note:[/] the previous driver ran on {previous.host}; if it started a "
            f"local Ray there, stop it on that host (see docs/recovery.md)"
        )
        return
    stopped = stop_recorded(previous.ray_session)
    if stopped:
        console.print(
            f"stopped {stopped} process(es) of the local Ray left by the previous driver "
            f"(pid {previous.pid})"
        )


@contextmanager
def driving(store: ResultStore, study: str) -> Iterator[Driver]:
    """Holds the study's driver lease for the block (see the module docstring).

    Raises:
        study.store.DriverRunning: another driver holds a live lease.
    """
    lease, previous = store.acquire_lease(study, stale_after_s=STALE_AFTER_S)
    if previous is not None:
        clean_up_after(previous)
    driver = Driver(store, lease)
    driver.start()
    try:
        yield driver
    finally:
        driver.release()


def driver_note(store: ResultStore, record: StudyRecord) -> str | None:
    """What to tell about a study's driver: None when none should be running or it is."""
    if record.status != "RUNNING":
        return None
    lease = store.driver_lease(record.name)
    if lease is not None and lease.alive:
        return None
    since = lease.heartbeat_at if lease is not None else record.created_at
    when = f" since {since.astimezone():%Y-%m-%d %H:%M %Z} (last heartbeat)" if since else ""
    return f"driver not running{when}; run 'paretune resume {record.name}'"
