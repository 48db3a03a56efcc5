"""The reaper stops exactly a dead driver's descendants, even those that ignore SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from study._reaper import read_record, stop_recorded

#: A stand-in driver: starts two children (one ignores SIGTERM, as Ray's agents can) and a
#: reaper watching it, prints their pids, then waits to be killed.
DRIVER = r"""
import os, signal, subprocess, sys, time
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
children = [
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]),
    subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True),
]
reaper = subprocess.Popen(
    [sys.executable, "-I", "-m", "study._reaper", str(os.getpid()), sys.argv[1]],
    stdin=subprocess.PIPE, start_new_session=True,
)
print(" ".join(str(p.pid) for p in (*children, reaper)), flush=True)
time.sleep(600)
"""


def _start(session: Path) -> tuple[subprocess.Popen[str], list[int], int]:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(session)], stdout=subprocess.PIPE, text=True
    )
    assert driver.stdout is not None
    *children, reaper = (int(pid) for pid in driver.stdout.readline().split())
    deadline = time.monotonic() + 30
    while not set(children) <= set(read_record(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(children) <= set(read_record(session)), read_record(session)
    return driver, children, reaper


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
    driver, children, reaper = _start(session)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        driver.kill()
        driver.wait()
        assert _gone(children), "a descendant of the dead driver is still running"
        assert _gone([reaper])
        assert other.poll() is None  # not the driver's: untouched
        assert session.is_dir()  # Ray's logs would be kept
    finally:
        other.kill()


def test_the_next_driver_stops_what_a_killed_reaper_left(tmp_path: Path) -> None:
    session = tmp_path / "session"
    session.mkdir()
    driver, children, reaper = _start(session)
    psutil.Process(reaper).kill()
    driver.kill()
    driver.wait()
    time.sleep(1)
    assert all(psutil.pid_exists(p) for p in children)  # orphaned, still running
    assert stop_recorded(session) == 2
    assert _gone(children)
    assert stop_recorded(session) == 0  # nothing left; pids are matched with start times
