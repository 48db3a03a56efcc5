"""The reaper stops exactly a dead driver's Ray processes, even those that ignore SIGTERM,
and nothing else the driver started."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from study._reaper import read_record, stop_recorded

#: A stand-in driver: starts two "Ray servers" naming the session folder on their command
#: line (one ignores SIGTERM, as Ray's agents can; one has a "worker" below it that does
#: not name it), a bystander child of its own, and a reaper watching it; prints the pids
#: (Ray's, then the bystander, then the reaper) and waits to be killed.
DRIVER = r"""
import os, signal, subprocess, sys, time
session = sys.argv[1]
logs = os.path.join(session, "logs")
sleep = "import time; time.sleep(600)"
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
server = (
    "import subprocess, sys, time; w = subprocess.Popen([sys.executable, '-c', %r]);"
    " print(w.pid, flush=True); time.sleep(600)" % sleep
)
servers = [
    subprocess.Popen([sys.executable, "-c", server, logs], stdout=subprocess.PIPE, text=True),
    subprocess.Popen([sys.executable, "-c", stubborn, logs], start_new_session=True),
]
worker = int(servers[0].stdout.readline())
bystander = subprocess.Popen([sys.executable, "-c", sleep])
reaper = subprocess.Popen(
    [sys.executable, "-I", "-m", "study._reaper", str(os.getpid()), session],
    stdin=subprocess.PIPE, start_new_session=True,
)
pids = [p.pid for p in servers] + [worker, bystander.pid, reaper.pid]
print(" ".join(str(pid) for pid in pids), flush=True)
time.sleep(600)
"""


def _start(session: Path) -> tuple[subprocess.Popen[str], list[int], int, int]:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(session)], stdout=subprocess.PIPE, text=True
    )
    assert driver.stdout is not None
    *children, bystander, reaper = (int(pid) for pid in driver.stdout.readline().split())
    deadline = time.monotonic() + 30
    while not set(children) <= set(read_record(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(children) <= set(read_record(session)), read_record(session)
    return driver, children, bystander, reaper


def _gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
            return True
        time.sleep(0.2)
    return False


def test_a_killed_driver_takes_its_descendants_with_it(tmp_path: Path) -> None:
    session = tmp_path / "session"
    session.mkdir()
    driver, children, bystander, reaper = _start(session)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert bystander not in read_record(session)
        driver.kill()
        driver.wait()
        assert _gone(children), "a Ray process of the dead driver is still running"
        assert _gone([reaper])
        assert other.poll() is None  # not the driver's: untouched
        assert psutil.Process(bystander).status() != "zombie"  # the driver's, not Ray's
        assert session.is_dir()  # Ray's logs would be kept
    finally:
        other.kill()
        psutil.Process(bystander).kill()


def test_the_next_driver_stops_what_a_killed_reaper_left(tmp_path: Path) -> None:
    session = tmp_path / "session"
    session.mkdir()
    driver, children, bystander, reaper = _start(session)
    psutil.Process(reaper).kill()
    driver.kill()
    driver.wait()
    time.sleep(1)
    assert all(psutil.pid_exists(p) for p in children)  # orphaned, still running
    assert stop_recorded(session) == 3
    assert _gone(children)
    assert stop_recorded(session) == 0  # nothing left; pids are matched with start times
    assert psutil.pid_exists(bystander)
    psutil.Process(bystander).kill()
