"""Live progress of a study in the driver: one line per method run, updated within seconds.

Each method run's line shows its trials done, failed and running, the running trials'
iterations (``adapmtl (seed 0) ━━━━ 2/4 done  0 failed  ▸ #7 140/300 it``) and its best
Delta_T at >= 90% sparsity; a last line adds up the study with its measured iterations
per second and ETA (see :mod:`study._live`). On a terminal the lines redraw in place;
anywhere else (CI, a log file) the display prints one quiet line per finished trial and
a progress line every :data:`QUIET_EVERY_S` seconds. The display also saves the progress
to ``progress.json`` in the study folder for ``paretune status`` and the dashboard.

:class:`ProgressView` is the Tune callback that turns trial events into the display's
events: trials start and finish, and the in-trial progress every running trial reports
every few seconds under ``paretune_progress`` (see :mod:`study._trainable`).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from study._console import console as default_console
from study._levels import LEVEL_TOLERANCE
from study._live import (
    SAVE_EVERY_S,
    RunKey,
    StudyProgress,
    describe_duration,
    write_progress,
)
from study._tune_config import (
    ERROR_KEY,
    FINAL_KEY,
    FIXED_KEY,
    PROGRESS_KEY,
    planned_iterations,
    route_of,
)

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

QUIET_EVERY_S = 30.0
"""Off a terminal: seconds between progress lines while no trial finishes."""
BAR_WIDTH = 8
BEST_LEVEL = 0.9


class ProgressDisplay:
    """Draws a :class:`~study._live.StudyProgress` (see the module docstring).

    Use it as a context manager around the study's Tune runs; every event method is
    thread-safe (Tune's callbacks and the redraw thread share the model).

    Args:
        study: the study's name.
        folder: where ``progress.json`` is saved (None: nowhere).
        console: where it draws (default: paretune's console); a console that is not a
            terminal gets the quiet line-by-line output.
        clock: a monotonic clock (a test's fake clock).
    """

    def __init__(
        self,
        study: str = "",
        folder: str | Path | None = None,
        console: Console | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.console = console or default_console
        self.model = StudyProgress(study, clock)
        self.folder = Path(folder) if folder is not None else None
        self.clock = clock
        self.live = self.console.is_terminal
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._opened = clock()
        self._saved = -float("inf")
        self._said = clock()

    # -- context -------------------------------------------------------------------------
    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=2,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self.model.runs:
            self.say(self._study_line())
        self.save(force=True, active=False)

    # -- events (from the Tune callback) -------------------------------------------------
    def add_runs(
        self,
        bars: Mapping[RunKey, tuple[str, int, int]],
        iterations: Mapping[RunKey, int | None] | None = None,
    ) -> None:
        """Adds method runs: ``(label, total trials, trials done)`` and their trials'
        iterations."""
        with self._lock:
            for key, (label, total, done) in bars.items():
                self.model.add_run(key, label, total, done, (iterations or {}).get(key))
            if not self.live:
                name = f"study {self.model.study}" if self.model.study else "study"
                self.say(
                    f"{name}: {self.model.done}/{self.model.total} trials done in "
                    f"{len(self.model.runs)} method runs (a line per finished trial, "
                    f"progress every {QUIET_EVERY_S:.0f} s)"
                )
        self.save(force=True)

    def started(self, key: RunKey, trial: str, number: int | None, iterations: int | None) -> None:
        """A trial started."""
        with self._lock:
            self.model.start(key, trial, number, iterations)
        self.save()

    def stepped(
        self,
        key: RunKey,
        trial: str,
        iteration: int,
        iterations: int | None,
        number: int | None = None,
        phase: str | None = None,
    ) -> None:
        """A running trial reported its iteration (or its phase before the first)."""
        with self._lock:
            self.model.step(key, trial, iteration, iterations, number, phase)
            quiet_due = not self.live and self.clock() - self._said >= QUIET_EVERY_S
        if quiet_due:
            self.say(self._study_line())
        self.save()

    def finished(
        self,
        key: RunKey,
        trial: str,
        *,
        failed: bool = False,
        iterations: int | None = None,
        best: float | None = None,
        outcome: str = "",
    ) -> None:
        """A trial ended; ``outcome`` says how (printed off a terminal)."""
        with self._lock:
            run = self.model.runs.get(key)
            number = run.running[trial].number if run and trial in run.running else None
            if not self.model.finish(key, trial, failed=failed, iterations=iterations, best=best):
                return
        if run is not None:
            name = f"#{number}" if number is not None else "trial"
            state = "failed" if failed else "done"
            detail = f": {outcome}" if outcome else ""
            if not self.live:
                self.say(f"{run.label} {name} {state}{detail} · {self._study_line(short=True)}")
            elif failed:
                self.print(f"  [red]{escape(run.label)} {name} failed:[/] {escape(outcome)}")
        self.save(force=True)

    def print(self, message: str) -> None:
        """A line above the live display (or in the quiet output)."""
        self.console.print(message, highlight=False, soft_wrap=True, markup=True)

    def say(self, text: str) -> None:
        """One plain line of the quiet output, with the elapsed time."""
        self._said = self.clock()
        stamp = describe_duration(self.clock() - self._opened)
        self.console.print(f"[{stamp}] {text}", markup=False, highlight=False, soft_wrap=True)

    def save(self, *, force: bool = False, active: bool = True) -> None:
        """Writes ``progress.json`` (at most every :data:`SAVE_EVERY_S` unless ``force``)."""
        if self.folder is None:
            return
        with self._lock:
            now = self.clock()
            if not force and now - self._saved < SAVE_EVERY_S:
                return
            self._saved = now
            snapshot = self.model.snapshot(active=active)
        try:
            write_progress(self.folder, snapshot)
        except OSError:  # a full or read-only disk must not stop the study
            self.folder = None

    # -- drawing -------------------------------------------------------------------------
    def _study_line(self, short: bool = False) -> str:
        model = self.model
        parts = [f"{model.done}/{model.total} trials done", f"{model.running} running"]
        if not short:
            running = [
                f"{run.label.split(' (')[0]} {trial.text()}"
                for run in model.runs.values()
                for trial in run.running.values()
            ]
            if running:
                parts[-1] += f" ({', '.join(running)})"
            parts.append(f"{model.failed} failed")
            rate = model.rate()
            if rate is not None:
                parts.append(f"{rate:.1f} it/s")
        parts.append(_eta_text(model))
        return " · ".join(parts)

    def render(self) -> Table:
        """The live lines: one per method run, then the study's."""
        with self._lock:
            return self._render()

    def _render(self) -> Table:
        model = self.model
        width = max((len(run.label) for run in model.runs.values()), default=5)
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, min_width=min(width, 22), max_width=22)
        table.add_column(no_wrap=True, width=BAR_WIDTH)
        table.add_column(no_wrap=True, justify="right")
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        for run in model.runs.values():
            text = Text()
            text.append(f"{run.failed} failed", style="red" if run.failed else "dim")
            if run.running:
                text.append("  ▸ ", style="cyan")
                text.append(run.running_text(), style="cyan")
            elif run.waiting:
                text.append("  waiting", style="dim")
            if run.best is not None:
                text.append(f"  ΔT@{BEST_LEVEL:.0%} {run.best:+.2f}%")
            table.add_row(
                Text(run.label, style="bold", overflow="ellipsis"),
                ProgressBar(run.total or 1, run.done, width=BAR_WIDTH),
                Text(f"{run.done}/{run.total}", style="green"),
                text,
            )
        rate = model.rate()
        summary = Text(_eta_text(model), style="bold")
        summary.append(f" · {model.running} running", style="cyan")
        if rate is not None:
            summary.append(f" · {rate:.1f} it/s")
        elapsed = self.clock() - self._opened
        summary.append(f" · {describe_duration(elapsed)} elapsed", style="dim")
        table.add_row(
            Text("study", style="bold"),
            ProgressBar(model.total or 1, model.done, width=BAR_WIDTH),
            Text(f"{model.done}/{model.total}", style="green"),
            summary,
        )
        return table

    def snapshot_text(self) -> str:
        """The live lines as plain text (what a terminal shows now)."""
        capture = Console(width=self.console.width, record=True, file=io.StringIO())
        capture.print(Group(self.render()))
        return capture.export_text()


def _eta_text(model: StudyProgress) -> str:
    if model.total and model.done >= model.total:
        return "all done"
    return f"ETA {describe_duration(model.eta_s())}"


def study_progress(
    study: str = "", folder: str | Path | None = None, console: Console | None = None
) -> ProgressDisplay:
    """The progress display of a study's run (see :class:`ProgressDisplay`)."""
    return ProgressDisplay(study, folder, console)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ProgressView(Callback):
    """Feeds a :class:`ProgressDisplay` from Tune's trial events.

    Args:
        display: the display.
        bars: ``(method, seed)`` -> ``(label, total trials, trials done)`` of the method
            runs of this Tune run.
        iterations: ``(method, seed)`` -> training iterations of each of its trials.
        trial_ids: Tune trial id -> the trial's id in the results store (the recorder's
            live mapping; trials are shown by that id, as ``status`` and ``replay`` do).
    """

    def __init__(
        self,
        display: ProgressDisplay,
        bars: dict[RunKey, tuple[str, int, int]],
        iterations: Mapping[RunKey, int | None] | None = None,
        trial_ids: Mapping[str, int] | None = None,
    ) -> None:
        self.display = display
        self.trial_ids = trial_ids if trial_ids is not None else {}
        self.keys = set(bars)
        display.add_runs(bars, iterations)

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live display stays in this process."""
        return {**self.__dict__, "display": None, "trial_ids": {}}

    @staticmethod
    def _key(trial: Trial) -> RunKey:
        route = route_of(trial.config)
        return route.method, route.seed

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        key = self._key(trial)
        if key not in self.keys:
            return
        planned = planned_iterations(trial.config.get(FIXED_KEY) or {})
        self.display.started(key, trial.trial_id, self.trial_ids.get(trial.trial_id), planned)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        key = self._key(trial)
        if key not in self.keys:
            return
        number = self.trial_ids.get(trial.trial_id)
        if FINAL_KEY in result:
            final = result[FINAL_KEY]
            delta, sparsity = final.get("delta_t"), final.get("sparsity")
            counts = (
                delta is not None
                and sparsity is not None
                and sparsity >= BEST_LEVEL - LEVEL_TOLERANCE
            )
            outcome = ", ".join(
                text
                for text in (
                    f"ΔT {delta:+.2f}%" if isinstance(delta, int | float) else "",
                    f"sparsity {sparsity:.1%}" if isinstance(sparsity, int | float) else "",
                )
                if text
            )
            self.display.finished(
                key,
                trial.trial_id,
                iterations=_int(final.get("iterations")),
                best=delta if counts else None,
                outcome=outcome,
            )
        elif ERROR_KEY in result:
            lines = str(result[ERROR_KEY]).strip().splitlines() or ["error"]
            self.display.finished(key, trial.trial_id, failed=True, outcome=lines[-1])
        else:
            progress = result.get(PROGRESS_KEY)
            if not isinstance(progress, Mapping):
                progress = result.get("evaluation") if "evaluation" in result else None
            if isinstance(progress, Mapping) and _int(progress.get("iteration")) is not None:
                self.display.stepped(
                    key,
                    trial.trial_id,
                    int(progress["iteration"]),
                    _int(progress.get("iterations")),
                    number,
                    progress.get("phase") if isinstance(progress.get("phase"), str) else None,
                )

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial stopped early by the scheduler ends without a final result."""
        key = self._key(trial)
        if key in self.keys:
            self.display.finished(key, trial.trial_id, outcome="stopped early")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        key = self._key(trial)
        if key in self.keys:
            self.display.finished(key, trial.trial_id, failed=True, outcome="lost its worker")
