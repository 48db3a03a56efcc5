"""``paretune run`` under a pseudo-terminal: in-trial progress shows within seconds."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.integration.helpers import PARETUNE, paretune, tiny_study, worker_env, write_config

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
SCHEDULED = re.compile(r"▸ #(\d+) starting")
STARTED = re.compile(r"▸ #(\d+) setting up")
IN_TRIAL = re.compile(r"▸ #(\d+) ([1-9]\d*)/(\d+) it")
ETA = re.compile(r"ETA (\d+m\d\ds|\d+s)")
ITERATIONS = 900  # a few seconds of a tiny model: room for in-trial updates
WITHIN_S = 15.0


def _run_in_terminal(args: list[str], cwd: Path, timeout: float) -> tuple[str, dict[str, float]]:
    """Runs ``args`` on a pseudo-terminal (100 x 40); returns its output without escape
    codes and when (seconds after start) the first running trial and the first in-trial
    progress showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**worker_env(), "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        args,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    raw = b""
    seen: dict[str, float] = {}
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                raw += chunk
                text = ANSI.sub("", raw.decode(errors="replace"))
                now = time.monotonic() - start
                if "scheduled" not in seen and SCHEDULED.search(text):
                    seen["scheduled"] = now
                if "started" not in seen and STARTED.search(text):
                    seen["started"] = now
                if "in_trial" not in seen and IN_TRIAL.search(text):
                    seen["in_trial"] = now
            elif process.poll() is not None:
                break
        process.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        os.close(leader)
    assert process.returncode == 0, ANSI.sub("", raw.decode(errors="replace"))[-4000:]
    return ANSI.sub("", raw.decode(errors="replace")), seen


def test_run_shows_in_trial_progress_and_an_eta_on_a_terminal(tmp_path: Path) -> None:
    config = tiny_study(
        "live",
        tmp_path,
        methods=[{"name": "dense"}, {"name": "magnitude", "trials": 1}],
        budget={
            "trials_per_method": 1,
            "iterations": ITERATIONS,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": ITERATIONS // 3,
        },
        init="scratch",
    )
    path = write_config(config, tmp_path)
    text, seen = _run_in_terminal([PARETUNE, "run", str(path)], tmp_path, timeout=600)
    print(f"seconds after 'paretune run' started: {seen}")  # shown with pytest -s
    assert "started" in seen, text[-3000:]
    assert "in_trial" in seen, f"no in-trial progress line:\n{text[-3000:]}"
    assert seen["in_trial"] - seen["started"] <= WITHIN_S, seen
    progress = [(int(m[2]), int(m[3])) for m in IN_TRIAL.finditer(text)]
    assert all(0 < done <= total == ITERATIONS for done, total in progress)
    assert len({done for done, _ in progress}) >= 2  # it moves
    assert ETA.search(text), text[-3000:]
    assert "study" in text and "1/1" in text  # the method lines ended done

    # status of the finished study: no stale progress; the file says the driver is done
    status = paretune("status", "live", "--db", f"sqlite:///{tmp_path}/live/paretune.db")
    assert "in progress" not in status.stdout
    assert (tmp_path / "live" / "progress.json").is_file()
