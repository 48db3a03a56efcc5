"""Optuna as Ray Tune's searcher: seeded samplers, RDB storage, every outcome told.

Ray's ``OptunaSearch`` swallows a failed ``tell`` with a log line and tells a result
without objective values as PRUNED; both leave a search that learned nothing while the
study looks fine. :class:`StudySearch` tells Optuna exactly what happened and keeps every
``tell`` that did not go through, so the study can store it and refuse to call itself
COMPLETE.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from study._config import LEVEL_PARAM
from study._tune_config import ERROR_KEY

logger = logging.getLogger(__name__)

#: How often a suggestion that repeats a finished configuration is drawn again.
MAX_REDRAWS = 10
_STATE = optuna.trial.TrialState


def stored_trial_count(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Trials the Optuna study ``study_name`` already holds (0 if it does not exist)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


@dataclass
class LevelPlan:
    """Where a method run's next trial goes: the sparsity level with the fewest trials so
    far (the first such level in order), so that the trials spread evenly over the levels.

    Attributes:
        levels: the ``target_sparsity`` values, in order.
        counts: trials placed at each level so far (finished ones, then each suggestion).
    """

    levels: tuple[float, ...]
    counts: dict[float, int] = field(default_factory=dict)

    @classmethod
    def of(cls, levels: Sequence[float], finished: Iterable[Mapping[str, Any]]) -> LevelPlan | None:
        """The plan of a run with ``levels`` whose finished trials had the parameters
        ``finished`` (None without levels)."""
        if not levels:
            return None
        plan = cls(tuple(levels), dict.fromkeys(levels, 0))
        for params in finished:
            level = params.get(LEVEL_PARAM)
            if level in plan.counts:
                plan.counts[level] += 1
        return plan

    def next_level(self) -> float:
        return min(self.levels, key=lambda level: self.counts[level])

    def place(self, level: float) -> None:
        self.counts[level] += 1


def _finite_values(names: Sequence[str], result: Mapping[str, Any]) -> tuple[list[float], str]:
    """The objective values of a result, or ``([], problem)`` naming a missing one."""
    values = []
    for name in names:
        value = result.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [], f"the trial reported no value for objective {name!r}"
        if not math.isfinite(value):
            return [], f"the trial reported {value} for objective {name!r}"
        values.append(float(value))
    return values, ""


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


class StudySearch(OptunaSearch):
    """``OptunaSearch`` that tells Optuna every outcome and records the ``tell``s that fail.

    * A finished trial is told COMPLETE with the values of every objective, read from the
      trial's result by name; a trial that raised, or reported no finite value for some
      objective, is told FAIL.
    * :attr:`problems` maps a Tune trial id to why its outcome did not reach Optuna as a
      result (a missing objective, or the ``tell`` itself failing).
    * A suggestion repeating the parameters of a COMPLETE trial of the same Optuna study
      (a resumed sampler, a small discrete space) is told FAIL with the user attribute
      ``duplicate_of`` and drawn again, up to :data:`MAX_REDRAWS` times.
    * With ``levels`` (a :class:`LevelPlan`), each suggestion's ``target_sparsity`` is the
      plan's next level, given to Optuna as a fixed parameter of the trial (an enqueued
      trial): the sampler chooses the other parameters, learning across levels.
    """

    def __init__(self, *args: Any, levels: LevelPlan | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.problems: dict[str, str] = {}
        self.levels = levels
        #: Parameters of the study's COMPLETE trials -> the first such trial's number.
        self._complete: dict[tuple[tuple[str, Any], ...], int] | None = None

    @property
    def _study(self) -> optuna.Study:
        assert self._ot_study is not None, "the searcher has no Optuna study yet"
        return self._ot_study

    @property
    def objectives(self) -> list[str]:
        metric = self.metric
        return list(metric) if isinstance(metric, list | tuple) else [str(metric)]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        level = None if self.levels is None else self.levels.next_level()
        for attempt in range(MAX_REDRAWS + 1):
            if level is not None and trial_id not in self._ot_trials:  # ask() takes it next
                self._study.enqueue_trial({LEVEL_PARAM: level}, skip_if_exists=False)
            params = super().suggest(trial_id)
            ot_trial = self._ot_trials[trial_id]
            twin = self._finished_twin(ot_trial.params)
            if twin is not None and attempt < MAX_REDRAWS:
                ot_trial.set_user_attr("duplicate_of", twin)
                self._study.tell(ot_trial, state=_STATE.FAIL)
                del self._ot_trials[trial_id]
                continue
            if twin is not None:
                logger.warning(
                    "%s: trial %s repeats the parameters of finished trial %s (no new "
                    "configuration after %d draws)",
                    self._study.study_name,
                    ot_trial.number,
                    twin,
                    MAX_REDRAWS,
                )
            if self.levels is not None and level is not None:
                self.levels.place(level)
            return params
        return None  # unreachable: the last draw returns

    def _finished_twin(self, params: dict[str, Any]) -> int | None:
        """The number of a COMPLETE trial with exactly ``params`` (None: no such trial)."""
        searched = set(params) - ({LEVEL_PARAM} if self.levels is not None else set())
        if not searched:
            return None  # nothing searched (but the level): repeated trials are the point
        if self._complete is None:  # read once; every COMPLETE tell adds to it
            trials = self._study.get_trials(deepcopy=False, states=(_STATE.COMPLETE,))
            self._complete = {}
            for trial in reversed(trials):  # the first trial of equal ones wins
                self._complete[_key(trial.params)] = trial.number
        return self._complete.get(_key(params))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        values: list[float] = []
        if not error and result is not None and ERROR_KEY not in result:
            values, problem = _finite_values(self.objectives, result)
            if problem:
                self.problems[trial_id] = problem
        state = _STATE.COMPLETE if values else _STATE.FAIL
        self._tell(trial_id, values or None, state)

    def on_trial_pruned(self, trial_id: str) -> None:
        """Tells Optuna PRUNED for a trial an early-stopping scheduler stopped."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._tell(trial_id, None, _STATE.PRUNED)

    def _tell(self, trial_id: str, values: list[float] | None, state: Any) -> None:
        ot_trial = self._ot_trials[trial_id]
        try:
            self._study.tell(ot_trial, values, state=state)
            if state == _STATE.COMPLETE and self._complete is not None:
                self._complete.setdefault(_key(ot_trial.params), ot_trial.number)
        except Exception as error:  # a storage failure or a rejected value: keep it
            reason = f"Optuna did not take the result ({type(error).__name__}: {error})"
            previous = self.problems.get(trial_id)
            self.problems[trial_id] = f"{previous}; {reason}" if previous else reason
            logger.warning("%s: %s", self._study.study_name, reason)
        self._completed_trials.add(trial_id)

    def optuna_number(self, trial_id: str) -> int | None:
        """The Optuna trial number behind a Tune trial id, once suggested."""
        trial = self._ot_trials.get(trial_id)
        return None if trial is None else trial.number


def settle_running_trials(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    finished: dict[int, list[float]] | None = None,
) -> tuple[int, int]:
    """Settles Optuna trials left RUNNING by a stopped driver.

    A trial whose number is in ``finished`` (its result reached the results store) is
    told those objective values; every other one becomes FAIL.

    Returns:
        ``(told COMPLETE, told FAIL)``.
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0, 0
    stale = storage.get_all_trials(study_id, deepcopy=False, states=(_STATE.RUNNING,))
    complete = 0
    for trial in stale:
        values = (finished or {}).get(trial.number)
        state = _STATE.COMPLETE if values else _STATE.FAIL
        storage.set_trial_state_values(trial._trial_id, state, values)
        complete += state == _STATE.COMPLETE
    return complete, len(stale) - complete
