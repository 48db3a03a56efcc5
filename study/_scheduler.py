"""Multi-objective asynchronous successive halving (``mo-asha``) as a Ray Tune scheduler.

Ray Tune's schedulers and Optuna's pruners stop trials on one objective only. This one
keeps, per rung, the objective vectors of every trial that reached it and lets a trial go
on only while it is in the best ``1/eta`` of them, ranked by non-dominated front then
crowding distance (NSGA-II order). Like ASHA (Li et al., "A system for massively parallel
hyperparameter tuning", MLSys 2020) it never waits for a rung to fill: each trial is judged
against the trials recorded at that rung so far.

References:
    Schmucker, Donini, Zafar, Archambeau, Seeger, "Multi-objective asynchronous successive
    halving", arXiv:2106.12639, 2021 (the NSGA-II ranking variant used here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from study._pareto import crowding_distance, non_dominated_sort
from trials.registry import Registry

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from study._config import SchedulerSpec

__all__ = [
    "SCHEDULERS",
    "MultiObjectiveASHA",
    "ahead_of",
    "build_scheduler",
    "crowding_distance",
    "nondominated_rank",
    "objective_value",
    "rung_order",
]

_DIRECTIONS = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}

SchedulerFactory = Callable[
    ["SchedulerSpec", Sequence[tuple[str, str]], int], "TrialScheduler | None"
]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")
"""Trial schedulers by the name used in a study config's ``scheduler.name``."""


def nondominated_rank(
    values: np.ndarray | Sequence[Sequence[float]], modes: Sequence[str]
) -> np.ndarray:
    """Front rank per point: 0 for the non-dominated points, 1 once those are removed, ...

    Args:
        values: Objective values, shape ``(n_points, n_objectives)``.
        modes: ``"max"``/``"min"`` (or ``"maximize"``/``"minimize"``) per objective.

    Returns:
        Integer rank per point; identical points share a rank.
    """
    directions = []
    for mode in modes:
        if mode not in _DIRECTIONS:
            raise ValueError(f"mode must be one of max, min; got {mode!r}")
        directions.append(_DIRECTIONS[mode])
    return non_dominated_sort(values, directions)


def rung_order(values: np.ndarray | Sequence[Sequence[float]], modes: Sequence[str]) -> np.ndarray:
    """How many points are strictly ahead of each point in NSGA-II order.

    Points are ordered by front rank (lower first), then within a front by crowding
    distance (larger first; a front's extremes are infinite). Tied points have the same
    count, so a tie at a cut-off keeps every tied point.

    Args:
        values: Objective values, shape ``(n_points, n_objectives)``.
        modes: ``"max"``/``"min"`` per objective.

    Returns:
        Integer count per point (0 = nobody is ahead).
    """
    array = np.asarray(values, dtype=float)
    ranks = nondominated_rank(array, modes)
    crowding = np.zeros(len(array))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(array[members])
    ahead = (ranks[None, :] < ranks[:, None]) | (
        (ranks[None, :] == ranks[:, None]) & (crowding[None, :] > crowding[:, None])
    )
    return ahead.sum(axis=1)


def ahead_of(
    values: np.ndarray | Sequence[Sequence[float]], modes: Sequence[str], index: int
) -> int:
    """``rung_order(values, modes)[index]`` without ordering every point: one front sort
    and the crowding distance of the point's own front (what a rung needs per report)."""
    array = np.asarray(values, dtype=float)
    ranks = nondominated_rank(array, modes)
    front = np.flatnonzero(ranks == ranks[index])
    crowding = crowding_distance(array[front])
    mine = crowding[np.searchsorted(front, index)]
    return int((ranks < ranks[index]).sum() + (crowding > mine).sum())


def objective_value(result: Mapping[str, Any], name: str) -> float | None:
    """The value of objective ``name`` in a Tune result, or ``None`` when not reported.

    ``delta_t`` and ``sparsity`` are top-level keys of every evaluation the trainable
    reports; ``metric:<task>:<metric>`` is read from the reported evaluation record (Tune
    flattens it to ``evaluation/metrics/<task>/<metric>``).
    """
    keys: list[str | tuple[str, ...]] = [name]
    if name.startswith("metric:"):
        _, task, metric = name.split(":", 2)
        keys = [f"evaluation/metrics/{task}/{metric}", ("evaluation", "metrics", task, metric)]
    for key in keys:
        value: Any = result
        for part in (key,) if isinstance(key, str) else key:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return float(value)
    return None


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving on several objectives (see the module docstring).

    Rungs sit at ``grace_period * eta**k`` iterations, every one below ``max_t``. When a
    trial reports an ``iteration`` at or first past a rung, its objective vector is recorded
    for that rung; the trial continues only if fewer than ``ceil(n / eta)`` (at least 1) of
    the ``n`` vectors recorded there are strictly ahead of it in NSGA-II order (see
    :func:`rung_order`), otherwise it is stopped. A report passing several rungs at once is
    recorded at each of them and judged at the highest. Reports at or beyond ``max_t`` are
    recorded but never stopped: the trial is finishing anyway and its final result must
    reach the study.

    Args:
        objectives: ``(result key, mode)`` pairs, mode ``"max"`` or ``"min"`` (also
            ``"maximize"``/``"minimize"``).
        max_t: The trials' training iterations.
        grace_period: Iterations before the first rung.
        eta: Reduction factor: about one trial in ``eta`` passes each rung.
        time_attr: The result key counting iterations.
    """

    def __init__(
        self,
        objectives: Sequence[tuple[str, str]],
        max_t: int,
        grace_period: int = 80,
        eta: int = 3,
        time_attr: str = "iteration",
    ) -> None:
        if not objectives:
            raise ValueError("mo-asha needs at least one objective")
        for name, mode in objectives:
            if mode not in _DIRECTIONS:
                raise ValueError(f"objective {name!r}: mode must be max or min; got {mode!r}")
        if eta < 2:
            raise ValueError(f"eta must be >= 2; got {eta}")
        if not 0 < grace_period < max_t:
            raise ValueError(f"grace_period must be > 0 and < max_t ({max_t}); got {grace_period}")
        super().__init__()
        self.objectives = [(name, _DIRECTIONS[mode]) for name, mode in objectives]
        self.max_t = max_t
        self.grace_period = grace_period
        self.eta = eta
        self.time_attr = time_attr
        self.rungs: list[int] = []
        milestone = grace_period
        while milestone < max_t:
            self.rungs.append(milestone)
            milestone *= eta
        self._recorded: dict[int, dict[str, np.ndarray]] = {rung: {} for rung in self.rungs}
        self._stopped: dict[str, tuple[int, int]] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accepts Tune's single metric/mode only when none is given: ours are the objectives."""
        return metric is None and mode is None

    def recorded(self, rung: int) -> dict[str, np.ndarray]:
        """The objective vectors recorded at ``rung`` (iterations), by trial id."""
        return dict(self._recorded[rung])

    def stopped_rung(self, trial_id: str) -> int | None:
        """The rung (in iterations) at which the trial was stopped, ``None`` if it was not."""
        stopped = self._stopped.get(trial_id)
        return None if stopped is None else stopped[0]

    def stopped_iteration(self, trial_id: str) -> int | None:
        """The iteration the trial reported when it was stopped, ``None`` if it was not."""
        stopped = self._stopped.get(trial_id)
        return None if stopped is None else stopped[1]

    def _vector(self, result: Mapping[str, Any]) -> np.ndarray | None:
        values = [objective_value(result, name) for name, _ in self.objectives]
        if any(value is None or not math.isfinite(value) for value in values):
            return None
        return np.array(values, dtype=float)

    def _keeps(self, rung: int, trial_id: str) -> bool:
        recorded = self._recorded[rung]
        ids = list(recorded)
        values = np.stack([recorded[i] for i in ids])
        ahead = ahead_of(values, [m for _, m in self.objectives], ids.index(trial_id))
        return ahead < max(1, math.ceil(len(ids) / self.eta))

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        iteration = result.get(self.time_attr)
        vector = self._vector(result)
        if iteration is None or vector is None:
            return TrialScheduler.CONTINUE
        trial_id = trial.trial_id
        passed = [r for r in self.rungs if iteration >= r and trial_id not in self._recorded[r]]
        if not passed:
            return TrialScheduler.CONTINUE
        for rung in passed:
            self._recorded[rung][trial_id] = vector
        if iteration >= self.max_t or self._keeps(passed[-1], trial_id):
            return TrialScheduler.CONTINUE
        self._stopped[trial_id] = (passed[-1], int(iteration))
        return TrialScheduler.STOP

    def debug_string(self) -> str:
        counts = ", ".join(f"{rung}: {len(self._recorded[rung])}" for rung in self.rungs)
        return f"mo-asha: trials recorded per rung {{{counts}}}, {len(self._stopped)} stopped"


@SCHEDULERS.register("fifo")
def _fifo(spec: SchedulerSpec, objectives: Sequence[tuple[str, str]], max_t: int) -> None:
    """No early stopping: Tune's default FIFO scheduler runs every trial to the end."""
    return None


@SCHEDULERS.register("mo-asha")
def _mo_asha(
    spec: SchedulerSpec, objectives: Sequence[tuple[str, str]], max_t: int
) -> MultiObjectiveASHA:
    return MultiObjectiveASHA(objectives, max_t, grace_period=spec.grace_period, eta=spec.eta)


def build_scheduler(
    spec: SchedulerSpec, objectives: Sequence[tuple[str, str]], max_t: int
) -> TrialScheduler | None:
    """The Tune scheduler of a study's ``scheduler`` spec (``None``: Tune's FIFO).

    Args:
        spec: The validated ``scheduler`` section of the study config.
        objectives: The study's ``(name, direction)`` objectives.
        max_t: The trials' training iterations (``budget.iterations``).
    """
    return SCHEDULERS.get(spec.name)(spec, objectives, max_t)
