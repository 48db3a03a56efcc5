"""One Ray Tune searcher for a whole study: it routes each trial to its method run.

A study runs every method and seed in a single Tune run, so that no core idles while one
method's last trial finishes and Ray starts once. Each method run keeps its own Optuna
study (and sampler); the router asks them in turn, dense references first, and sends every
result back to the searcher that suggested the trial. In the study's last rounds it picks
instead the run that lets the study end soonest (:mod:`study._ordering`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from study._ordering import ENDGAME_ROUNDS, soonest_end
from study._tune_config import ERROR_KEY, TrialRoute, encode, route_of

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


@dataclass
class Route:
    """The trials one method run still needs.

    Attributes:
        method: the method's name (``dense`` for a reference).
        seed: the run's seed.
        fields: the fixed ``TrialConfig`` fields of its trials.
        remaining: trials still to start.
        search: the method's Optuna searcher (None for a reference: nothing to search).
        board: the name of the reference board trials read.
        objectives: what its trials report by name (its search's objectives).
        device_share: CPUs or GPUs one trial holds (for ``device_s``).
        waits_for_reference: its trials start from their seed's trained dense reference,
            so none is suggested before that reference has finished.
        durations: seconds its finished trials took, from suggestion to completion.
    """

    method: str
    seed: int
    fields: dict[str, Any]
    remaining: int
    search: Any = None
    board: str = ""
    objectives: tuple[str, ...] = ()
    device_share: float = 1.0
    waits_for_reference: bool = False
    durations: list[float] = field(default_factory=list)

    @property
    def is_reference(self) -> bool:
        return self.search is None

    @property
    def expected_s(self) -> float | None:
        """How long its next trial should take (None before one has finished)."""
        return statistics.fmean(self.durations) if self.durations else None

    def trial_route(self) -> TrialRoute:
        """What its trials carry in their Tune config."""
        return TrialRoute(
            self.method,
            self.seed,
            reference=self.is_reference,
            board=self.board,
            objectives=self.objectives,
            device_share=self.device_share,
        )


#: What :meth:`StudyRouter.suggest` returns while every open method run waits for its
#: seed's reference: no trial now, ask again later.
WAIT = None


class StudyRouter(Searcher):
    """Suggests trials for several method runs; references first, then in turn, and in
    the last rounds the run that lets the study end soonest (:mod:`study._ordering`).

    ``ready_seeds`` are the seeds whose dense reference has finished (given for a resumed
    study, added as references finish); a route that waits for its reference is
    suggested only once its seed is ready. ``clock`` times trials (monotonic seconds).
    """

    def __init__(
        self,
        routes: list[Route],
        metric: list[str],
        mode: list[str],
        stopped: Callable[[str], int | None] | None = None,
        ready_seeds: set[int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(metric=metric, mode=mode)  # type: ignore[arg-type]
        self.routes = sorted(routes, key=lambda r: not r.is_reference)
        self.stopped = stopped
        self.clock = clock
        self.owner: dict[str, Route] = {}
        self.started: dict[str, float] = {}  # running trials: when they were suggested
        self.failed_seeds: set[int] = set()
        self.ready_seeds: set[int] = set(ready_seeds or ())
        self._turn = 0

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its config: the live searchers (and their storage URL) stay here."""
        return {**self.__dict__, "routes": [], "owner": {}, "stopped": None}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return True  # every method run brings its own space, metrics and modes

    def _next_route(self) -> Route | str | None:
        """The route to suggest for, :data:`Searcher.FINISHED` or :data:`WAIT`."""
        open_ = [r for r in self.routes if r.remaining > 0 and r.seed not in self.failed_seeds]
        if not open_:
            return Searcher.FINISHED
        references = [r for r in open_ if r.is_reference]
        if references:
            return references[0]
        ready = [r for r in open_ if not r.waits_for_reference or r.seed in self.ready_seeds]
        if not ready:
            return WAIT
        turn = self._turn % len(ready)
        in_turn = ready[turn:] + ready[:turn]
        self._turn += 1
        return in_turn[self._soonest_ending(in_turn)]

    def _soonest_ending(self, candidates: list[Route]) -> int:
        """Which of ``candidates`` (in turn order) a free slot serves: the first, unless it
        is the study's last rounds and every run involved has a finished trial to go by."""
        if sum(r.remaining for r in candidates) > ENDGAME_ROUNDS * (len(self.started) + 1):
            return 0
        running = [(self.owner[t], start) for t, start in self.started.items()]
        now = self.clock()
        expected, ends = [], []
        for route in candidates:
            if route.expected_s is None:
                return 0
            expected.append(route.expected_s)
        for route, start in running:
            if route.expected_s is None:
                return 0
            ends.append(max(now, start + route.expected_s))
        return soonest_end(now, ends, expected, [r.remaining for r in candidates])

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        route = self._next_route()
        if not isinstance(route, Route):
            return route
        params: dict[str, Any] = {}
        if route.search is not None:
            suggested = route.search.suggest(trial_id)
            if not isinstance(suggested, dict):
                return None
            params = suggested
        route.remaining -= 1
        self.owner[trial_id] = route
        self.started[trial_id] = self.clock()
        return encode(route.fields, route.trial_route(), params)

    def route_of(self, trial_id: str) -> Route | None:
        """The method run a trial belongs to."""
        return self.owner.get(trial_id)

    def optuna_number(self, trial_id: str) -> int | None:
        """The Optuna trial number behind a Tune trial id (None for references)."""
        route = self.owner.get(trial_id)
        if route is None or route.search is None:
            return None
        return route.search.optuna_number(trial_id)

    def search_problem(self, trial_id: str) -> str | None:
        """Why a trial's outcome did not reach its Optuna study as a result (None: it did)."""
        route = self.owner.get(trial_id)
        if route is None or route.search is None:
            return None
        return route.search.problems.get(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        route = self.owner.get(trial_id)
        if route is not None and route.search is not None:
            route.search.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        route = self.owner.get(trial_id)
        if route is None:
            return
        started = self.started.pop(trial_id, None)
        if started is not None:
            route.durations.append(self.clock() - started)
        if route.search is not None:
            if self.stopped is not None and self.stopped(trial_id) is not None:
                route.search.on_trial_pruned(trial_id)
            else:
                route.search.on_trial_complete(trial_id, result=result, error=error)
        elif error or result is None or ERROR_KEY in result:
            self.failed_seeds.add(route.seed)
        else:
            self.ready_seeds.add(route.seed)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: a resumed study re-plans from the results store."""

    def restore(self, checkpoint_path: str) -> None:
        """See :meth:`save`."""


class RoutedScheduler(FIFOScheduler):
    """Early stopping per method run: one scheduler for each (method, seed), built on first use.

    Trials of different methods never compete at a rung, and references are never stopped.
    ``factory(method)`` returns the scheduler of one method run (None: run to the end).
    """

    def __init__(self, factory: Callable[[str], TrialScheduler | None]) -> None:
        super().__init__()
        self.factory = factory
        self.schedulers: dict[tuple[str, int], TrialScheduler | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its config; the factory (bound to the live runner) stays here."""
        return {**self.__dict__, "factory": None}

    def _scheduler(self, trial: Trial) -> TrialScheduler | None:
        route = route_of(trial.config)
        if route.reference:
            return None
        key = (route.method, route.seed)
        if key not in self.schedulers:
            self.schedulers[key] = self.factory(route.method)
        return self.schedulers[key]

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        scheduler = self._scheduler(trial)
        if scheduler is None:
            return TrialScheduler.CONTINUE
        return scheduler.on_trial_result(tune_controller, trial, result)

    def _first(self, query: str, trial_id: str) -> int | None:
        for scheduler in self.schedulers.values():
            answer = getattr(scheduler, query, None)
            value = answer(trial_id) if answer is not None else None
            if value is not None:
                return int(value)
        return None

    def stopped_rung(self, trial_id: str) -> int | None:
        """The rung a trial was stopped at (None: it was not stopped)."""
        return self._first("stopped_rung", trial_id)

    def stopped_iteration(self, trial_id: str) -> int | None:
        """The iteration a stopped trial had reached (None: it was not stopped)."""
        return self._first("stopped_iteration", trial_id)
