"""Compact live progress of a study in the terminal (Ray's tables only on request)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from study._console import console
from study._trainable import ERROR_KEY, FINAL_KEY

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def study_progress() -> Progress:
    """One bar per method run: trials finished, running, failed and the best Delta_T."""
    return Progress(
        TextColumn("[bold]{task.description:<20}"),
        BarColumn(bar_width=10),
        MofNCompleteColumn(),
        TextColumn("run {task.fields[running]} fail {task.fields[failed]}"),
        TextColumn("ΔT@90% {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class ProgressView(Callback):
    """Updates one progress bar from Tune's trial events."""

    def __init__(self, progress: Progress, description: str, total: int, done: int = 0) -> None:
        self.progress = progress
        self.bar = progress.add_task(
            description, total=total, completed=done, running=0, failed=0, best="–"
        )
        self.running: set[str] = set()
        self.best: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live display stays in this process."""
        return {**self.__dict__, "progress": None}

    def _refresh(self, **changes: Any) -> None:
        best = "–" if self.best is None else f"{self.best:+.2f}%"
        self.progress.update(self.bar, running=len(self.running), best=best, **changes)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.running.add(trial.trial_id)
        self._refresh()

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if FINAL_KEY in result:
            final = result[FINAL_KEY]
            delta = final.get("delta_t")
            if delta is not None and final["sparsity"]["overall"] >= 0.9:
                self.best = delta if self.best is None else max(self.best, delta)
            self._finish(trial, failed=False)
        elif ERROR_KEY in result:
            self.progress.console.print(
                f"  [red]trial failed:[/] {escape(result[ERROR_KEY])}", markup=True, highlight=False
            )
            self._finish(trial, failed=True)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._finish(trial, failed=True)

    def _finish(self, trial: Trial, failed: bool) -> None:
        if trial.trial_id not in self.running:
            return
        self.running.discard(trial.trial_id)
        task = self.progress.tasks[self.bar]
        failed_count = int(task.fields["failed"]) + int(failed)
        self.progress.advance(self.bar)
        self._refresh(failed=failed_count)
