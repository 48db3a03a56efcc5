"""The local Ray of a study driver never outlives the driver.

``ray.init`` starts Ray's servers (GCS, raylet, dashboard and runtime-env agents, workers)
as descendants of the driver. When the driver is killed (``kill -9``, a lost terminal),
they are orphaned and keep running; ``ray stop`` would end them, and every other Ray on
the machine with them. Instead each driver that starts a local Ray also starts a reaper:
a small process in its own session that

* records, every second, the driver's Ray processes (pid and start time) in
  ``<session>/processes.json``: the descendants whose command line names the session
  folder (Ray's servers all do) and their own descendants (the workers). Anything else
  the driver started (a database server in a notebook, a browser) is not Ray's and is
  left alone;
* notices the driver is gone (the pipe it holds from the driver closes);
* then stops exactly the recorded processes still alive (SIGTERM, then SIGKILL). The
  session folder stays, with Ray's logs, as Ray's own ``/tmp/ray/session_*`` folders do.

If the reaper itself was killed too, the next ``run``/``resume`` of the same study finds
the folder in the stale driver lease and does the same with :func:`stop_recorded`.

Run as ``python -m study._reaper DRIVER_PID SESSION_DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path

RECORD_FILE = "processes.json"
POLL_S = 1.0
GRACE_S = 5.0


def _session_processes(pid: int, session: Path) -> dict[int, float]:
    """``{pid: start time}`` of the descendants of ``pid`` that belong to ``session``: those
    naming it on their command line and everything below them, except this process."""
    import psutil

    marker = str(session) + os.sep  # Ray's paths lie inside it
    found: dict[int, float] = {}
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return found
    for process in descendants:
        with contextlib.suppress(psutil.Error):
            if process.pid in found or marker not in " ".join(process.cmdline()):
                continue
            for member in (process, *process.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    found[member.pid] = member.create_time()
    found.pop(os.getpid(), None)
    return found


def _write_record(session: Path, processes: dict[int, float]) -> None:
    path = session / RECORD_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({str(pid): start for pid, start in processes.items()}))
    temporary.replace(path)


def read_record(session: Path) -> dict[int, float]:
    """The processes a reaper recorded for ``session`` (empty if none or unreadable)."""
    try:
        data = json.loads((session / RECORD_FILE).read_text())
        return {int(pid): float(start) for pid, start in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _alive(processes: dict[int, float]) -> list[int]:
    """The recorded processes that still run (same pid *and* start time)."""
    import psutil

    alive = []
    for pid, start in processes.items():
        try:
            process = psutil.Process(pid)
            same = abs(process.create_time() - start) < 1e-3 and process.is_running()
            if same and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            continue
    return alive


def _signal(pids: Iterable[int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)


def stop_processes(processes: dict[int, float], grace_s: float = GRACE_S) -> int:
    """SIGTERM the recorded processes still alive, SIGKILL what is left after ``grace_s``;
    returns how many were alive."""
    alive = _alive(processes)
    if not alive:
        return 0
    _signal(alive, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(processes):
        time.sleep(0.1)
    _signal(_alive(processes), signal.SIGKILL)
    return len(alive)


def stop_recorded(session: str | Path) -> int:
    """Stops what the reaper of ``session`` recorded; how many processes were still alive."""
    return stop_processes(read_record(Path(session)))


def watch(driver: int, session: Path, stream: int) -> int:
    """Records the driver's processes of ``session`` until ``stream`` closes or the driver
    is gone, then stops them; returns how many were still alive."""
    import psutil

    known: dict[int, float] = {}
    try:
        driver_start = psutil.Process(driver).create_time()
    except psutil.Error:
        driver_start = None
    while driver_start is not None and _alive({driver: driver_start}):
        current = _session_processes(driver, session)
        if any(known.get(pid) != start for pid, start in current.items()):
            known.update(current)
            _write_record(session, known)
        readable, _, _ = select.select([stream], [], [], POLL_S)
        if readable and not os.read(stream, 4096):
            break  # the driver closed its end: it exited or died
    return stop_processes(known)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m study._reaper DRIVER_PID SESSION_DIR", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the driver's terminal
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watch(int(argv[0]), Path(argv[1]), sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
