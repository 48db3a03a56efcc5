"""Compact live progress of a study in the terminal (Ray's tables only on request)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from study._console import console
from study._levels import LEVEL_TOLERANCE
from study._tune_config import ERROR_KEY, FINAL_KEY, route_of

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
    """Updates one progress bar per method run from Tune's trial events.

    ``bars`` maps ``(method, seed)`` to ``(description, total, done)``.
    """

    def __init__(
        self, progress: Progress, bars: dict[tuple[str, int], tuple[str, int, int]]
    ) -> None:
        self.progress = progress
        self.bars = {
            key: progress.add_task(
                description, total=total, completed=done, running=0, failed=0, best="–"
            )
            for key, (description, total, done) in bars.items()
        }
        self.running: dict[tuple[str, int], set[str]] = {key: set() for key in bars}
        self.failed = dict.fromkeys(bars, 0)
        self.best: dict[tuple[str, int], float] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config; the live display stays in this process."""
        return {**self.__dict__, "progress": None}

    @staticmethod
    def _key(trial: Trial) -> tuple[str, int]:
        route = route_of(trial.config)
        return route.method, route.seed

    def _refresh(self, key: tuple[str, int]) -> None:
        best = self.best.get(key)
        self.progress.update(
            self.bars[key],
            running=len(self.running[key]),
            failed=self.failed[key],
            best="–" if best is None else f"{best:+.2f}%",
        )

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        key = self._key(trial)
        if key in self.bars:
            self.running[key].add(trial.trial_id)
            self._refresh(key)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        key = self._key(trial)
        if FINAL_KEY in result:
            final = result[FINAL_KEY]
            delta = final.get("delta_t")
            if delta is not None and final["sparsity"] >= 0.9 - LEVEL_TOLERANCE:
                self.best[key] = max(delta, self.best.get(key, delta))
            self._finish(key, trial, failed=False)
        elif ERROR_KEY in result:
            self.progress.console.print(
                f"  [red]trial failed:[/] {escape(result[ERROR_KEY])}", markup=True, highlight=False
            )
            self._finish(key, trial, failed=True)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A trial stopped early by the scheduler ends without a final result."""
        self._finish(self._key(trial), trial, failed=False)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._finish(self._key(trial), trial, failed=True)

    def _finish(self, key: tuple[str, int], trial: Trial, failed: bool) -> None:
        if key not in self.bars or trial.trial_id not in self.running[key]:
            return
        self.running[key].discard(trial.trial_id)
        self.failed[key] += int(failed)
        self.progress.advance(self.bars[key])
        self._refresh(key)
