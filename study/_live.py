"""What a running study is doing: trials done, running and failed per method run, the
running trials' iterations and a study-wide ETA.

:class:`StudyProgress` is the plain model the driver's progress view feeds with Tune's
trial events (no Ray, no terminal: unit-tested with a fake clock). The driver saves
:meth:`StudyProgress.snapshot` as ``progress.json`` in the study folder (at most every
:data:`SAVE_EVERY_S` seconds, replaced atomically); ``paretune status`` and the dashboard
read it back with :func:`read_progress` to show a running study's in-trial progress, which
the results store does not hold (it stores evaluations and outcomes only).

The ETA divides the iterations still to train (trials not started times their iterations,
plus what the running trials have left) by the study's measured throughput: the
iterations all trials trained in the last :data:`RATE_WINDOW_S` seconds, over those
seconds (measured from the first trained iteration, so Ray's and the first worker's
start-up do not count). Trials setting up, evaluating and waiting in between count as they
happen, and a change of pace (a dense reference alone, then several trials at once) shows
within the window. Without a known iteration count (a FLOPs or seconds budget sets it
inside the trial) there is no ETA.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "PROGRESS_FILE",
    "ProgressSnapshot",
    "RunProgress",
    "StudyProgress",
    "TrialProgress",
    "describe_duration",
    "progress_lines",
    "read_progress",
    "write_progress",
]

PROGRESS_FILE = "progress.json"
SAVE_EVERY_S = 1.0
#: Seconds of measured training before an ETA is shown.
MIN_MEASURED_S = 3.0
#: The throughput behind the ETA is measured over this many recent seconds.
RATE_WINDOW_S = 60.0
MAX_SHOWN_TRIALS = 3

RunKey = tuple[str, int]


def describe_duration(seconds: float | None) -> str:
    """``2m31s``, ``1h05m``, ``40s`` (``–`` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class TrialProgress:
    """One running trial: its store id (None until known) and where its training is."""

    number: int | None
    iterations: int | None
    iteration: int = 0
    phase: str = "starting"

    def text(self) -> str:
        """``#7 140/300 it`` (``#7 140 it`` without a known total; before its first step
        its phase: ``#7 starting``, ``#7 setting up``)."""
        name = f"#{self.number}" if self.number is not None else "trial"
        if self.iteration <= 0:
            return f"{name} {self.phase}"
        total = f"/{self.iterations}" if self.iterations else ""
        return f"{name} {self.iteration}{total} it"


@dataclass
class RunProgress:
    """One method run (a method and seed, or a seed's dense reference).

    Attributes:
        label: how the run is named on screen (``adapmtl (seed 0)``).
        total: the trials the run needs.
        done: trials finished (complete, stopped early or failed), earlier ones included.
        iterations: the training iterations of each of its trials (None: unknown).
        failed: trials failed in this session.
        running: the running trials by Tune trial id.
        best: the best Delta_T at >= 90% sparsity seen in this session.
    """

    label: str
    total: int
    done: int = 0
    iterations: int | None = None
    failed: int = 0
    running: dict[str, TrialProgress] = field(default_factory=dict)
    best: float | None = None

    @property
    def waiting(self) -> int:
        """Trials not started yet."""
        return max(0, self.total - self.done - len(self.running))

    def remaining_iterations(self) -> int | None:
        """Iterations its unfinished trials still have to train (None: unknown)."""
        left = 0
        for trial in self.running.values():
            if trial.iterations is None:
                return None
            left += max(0, trial.iterations - trial.iteration)
        if self.waiting:
            if self.iterations is None:
                return None
            left += self.waiting * self.iterations
        return left

    def running_text(self, limit: int = MAX_SHOWN_TRIALS) -> str:
        """``#7 140/300 it, #8 20/300 it`` (and ``+2 more``)."""
        trials = [t.text() for t in self.running.values()]
        more = f", +{len(trials) - limit} more" if len(trials) > limit else ""
        return ", ".join(trials[:limit]) + more


class StudyProgress:
    """The live state of a study's run (see the module docstring).

    Args:
        study: the study's name.
        clock: seconds of a monotonic clock (a test's fake clock).
    """

    def __init__(self, study: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.study = study
        self.clock = clock
        self.runs: dict[RunKey, RunProgress] = {}
        self.started: float | None = None  # when the first trial of this session started
        self.trained = 0  # iterations of trials finished in this session
        self._samples: deque[tuple[float, int]] = deque()  # (time, iterations trained)

    # -- events ------------------------------------------------------------------------
    def add_run(
        self, key: RunKey, label: str, total: int, done: int = 0, iterations: int | None = None
    ) -> RunProgress:
        """Adds (or replaces) a method run."""
        run = RunProgress(label, total, done, iterations)
        self.runs[key] = run
        return run

    def start(
        self, key: RunKey, trial: str, number: int | None = None, iterations: int | None = None
    ) -> None:
        """A trial of run ``key`` started (``iterations``: its planned iterations)."""
        run = self.runs.get(key)
        if run is None:
            return
        if self.started is None:
            self.started = self.clock()
        planned = iterations if iterations is not None else run.iterations
        known = run.running.get(trial)
        if known is None:
            run.running[trial] = TrialProgress(number, planned)
        elif number is not None:
            known.number = number

    def step(
        self,
        key: RunKey,
        trial: str,
        iteration: int,
        iterations: int | None = None,
        number: int | None = None,
        phase: str | None = None,
    ) -> None:
        """A running trial reported that it trained ``iteration`` iterations (of
        ``iterations``; ``number``: its store id, if it was not known at its start;
        ``phase``: what it does before its first step)."""
        run = self.runs.get(key)
        progress = run.running.get(trial) if run is not None else None
        if progress is None:
            return
        progress.iteration = max(progress.iteration, int(iteration))
        if phase:
            progress.phase = phase
        self._sample()
        if iterations:
            progress.iterations = int(iterations)
        if number is not None:
            progress.number = number

    def finish(
        self,
        key: RunKey,
        trial: str,
        *,
        failed: bool = False,
        iterations: int | None = None,
        best: float | None = None,
    ) -> bool:
        """A trial ended (``iterations``: those it trained, when known; ``best``: its
        Delta_T when it counts for the run's best). Returns False for a trial not running."""
        run = self.runs.get(key)
        if run is None or trial not in run.running:
            return False
        progress = run.running.pop(trial)
        reached = iterations if iterations is not None else progress.iteration
        self.trained += max(int(reached or 0), progress.iteration)
        self._sample()
        run.done += 1
        run.failed += int(failed)
        if best is not None and math.isfinite(best):
            run.best = best if run.best is None else max(run.best, best)
        return True

    # -- what it adds up to --------------------------------------------------------------
    @property
    def total(self) -> int:
        return sum(run.total for run in self.runs.values())

    @property
    def done(self) -> int:
        return sum(run.done for run in self.runs.values())

    @property
    def running(self) -> int:
        return sum(len(run.running) for run in self.runs.values())

    @property
    def failed(self) -> int:
        return sum(run.failed for run in self.runs.values())

    def elapsed(self) -> float | None:
        """Seconds since the first trial of this session started."""
        return None if self.started is None else self.clock() - self.started

    def trained_iterations(self) -> int:
        """Iterations trained in this session (finished trials and running ones so far)."""
        running = sum(t.iteration for run in self.runs.values() for t in run.running.values())
        return self.trained + running

    def _sample(self) -> None:
        """Records the iterations trained so far (from the first trained iteration on)."""
        trained = self.trained_iterations()
        if trained <= 0:
            return
        now = self.clock()
        self._samples.append((now, trained))
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW_S:
            self._samples.popleft()  # keep one sample at or before the window's start

    def rate(self) -> float | None:
        """Iterations per second of the whole study over the last :data:`RATE_WINDOW_S`
        seconds (None: not measured for :data:`MIN_MEASURED_S` seconds yet)."""
        if not self._samples:
            return None
        now = self.clock()
        since, base = self._samples[0]
        for when, trained in self._samples:  # the latest sample at or before the window
            if when > now - RATE_WINDOW_S:
                break
            since, base = when, trained
        span = now - since
        gained = self.trained_iterations() - base
        if span < MIN_MEASURED_S or gained <= 0:
            return None
        return gained / span

    def remaining_iterations(self) -> int | None:
        """Iterations every unfinished trial still has to train (None: some unknown)."""
        total = 0
        for run in self.runs.values():
            left = run.remaining_iterations()
            if left is None:
                return None
            total += left
        return total

    def eta_s(self) -> float | None:
        """Seconds until every trial has finished, at the measured rate (None: unknown)."""
        rate, left = self.rate(), self.remaining_iterations()
        if left == 0 and self.done >= self.total:
            return 0.0
        if rate is None or left is None:
            return None
        return left / rate

    def snapshot(self, *, active: bool = True) -> dict[str, Any]:
        """JSON-able state for ``progress.json`` (see :class:`ProgressSnapshot`)."""
        rate = self.rate()
        return {
            "study": self.study,
            "active": active,
            "pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(),
            "elapsed_s": self.elapsed(),
            "rate": rate,
            "eta_s": self.eta_s() if active else 0.0,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "runs": [
                {
                    "method": key[0],
                    "seed": key[1],
                    "label": run.label,
                    "total": run.total,
                    "done": run.done,
                    "failed": run.failed,
                    "running": [
                        {
                            "trial": t.number,
                            "iteration": t.iteration,
                            "iterations": t.iterations,
                            "phase": t.phase,
                        }
                        for t in run.running.values()
                    ],
                }
                for key, run in self.runs.items()
            ],
        }


def write_progress(folder: str | Path, snapshot: Mapping[str, Any]) -> Path:
    """Writes ``snapshot`` to ``folder/progress.json`` atomically (readers never see half)."""
    path = Path(folder) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as sink:
            json.dump(snapshot, sink)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class ProgressSnapshot:
    """What a study's driver last wrote to ``progress.json``.

    Attributes:
        study: the study's name.
        active: the driver was running the study when it wrote this.
        updated_at: when it was written.
        rate: the study's iterations per second (None: not measured yet).
        eta_s: seconds left at that rate (None: unknown).
        runs: per method run, ``label``, ``total``, ``done``, ``failed`` and ``running``
            (``trial``, ``iteration``, ``iterations`` of each running trial).
    """

    study: str
    active: bool
    updated_at: datetime
    rate: float | None
    eta_s: float | None
    done: int
    total: int
    runs: tuple[dict[str, Any], ...]

    def age_s(self, now: datetime | None = None) -> float:
        """Seconds since it was written."""
        return ((now or datetime.now(UTC)) - self.updated_at).total_seconds()

    def eta_now(self, now: datetime | None = None) -> float | None:
        """The ETA counted down to ``now``."""
        return None if self.eta_s is None else max(0.0, self.eta_s - self.age_s(now))

    def running(self) -> list[tuple[str, TrialProgress]]:
        """``(run label, trial)`` of every running trial."""
        return [
            (
                str(run.get("label", "")),
                TrialProgress(
                    t.get("trial"),
                    t.get("iterations"),
                    int(t.get("iteration") or 0),
                    str(t.get("phase") or "starting"),
                ),
            )
            for run in self.runs
            for t in run.get("running") or ()
        ]


def read_progress(folder: str | Path | None, study: str | None = None) -> ProgressSnapshot | None:
    """The snapshot in ``folder/progress.json`` (None: none, unreadable, or of another
    study)."""
    if folder is None:
        return None
    path = Path(folder) / PROGRESS_FILE
    try:
        data = json.loads(path.read_text())
        updated = datetime.fromisoformat(str(data["updated_at"]))
        if study is not None and data.get("study") != study:
            return None
        return ProgressSnapshot(
            study=str(data.get("study", "")),
            active=bool(data.get("active")),
            updated_at=updated if updated.tzinfo else updated.replace(tzinfo=UTC),
            rate=_number(data.get("rate")),
            eta_s=_number(data.get("eta_s")),
            done=int(data.get("done") or 0),
            total=int(data.get("total") or 0),
            runs=tuple(r for r in data.get("runs") or () if isinstance(r, dict)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def progress_lines(snapshot: ProgressSnapshot, now: datetime | None = None) -> list[str]:
    """Lines describing a running study's progress (``status``, the dashboard)."""
    age = describe_duration(snapshot.age_s(now))
    head = (
        f"in progress (driver's progress file, {age} ago): {snapshot.done}/{snapshot.total} "
        f"trials done"
    )
    if snapshot.rate is not None:
        head += f" · {snapshot.rate:.1f} it/s"
    head += f" · ETA {describe_duration(snapshot.eta_now(now))}"
    lines = [head]
    for label, trial in snapshot.running():
        lines.append(f"  {label}: {trial.text()}")
    return lines
