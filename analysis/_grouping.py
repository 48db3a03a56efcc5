"""Task grouping (DMTG): the learned task-to-branch probabilities and grouped fronts.

Trials of method ``dmtg`` carry a ``grouping`` dict (the trials frame's ``grouping``
column)::

    {"tasks": [task, ...], "num_groups": K, "shared_stages": s,
     "assignment": {task: branch}, "probabilities": N x K (rows in ``tasks`` order),
     "history": [{"iteration": i, "probabilities": N x K}, ...]}

Methods run on a grouped architecture are stored under names like ``magnitude@grouped``
and their trial ``config`` has a non-null ``grouping``; their ``grouping`` holds only
``assignment`` and ``shared_stages``. Everything here is plain pandas/numpy; the figures
live in :mod:`analysis._grouping_figures`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis._compare import DEFAULT_OBJECTIVES, Objectives, check_objectives, completed_trials

__all__ = [
    "DMTG_METHOD",
    "GROUPED_SEPARATOR",
    "GroupingInfo",
    "GroupingSnapshot",
    "assignment_table",
    "branch_probability_history",
    "grouped_comparison",
    "grouping_of",
    "parse_grouping",
    "select_grouping_trial",
]

DMTG_METHOD = "dmtg"
GROUPED_SEPARATOR = "@"
"""``magnitude@grouped``: the method before the separator, run on a grouped architecture."""


def grouping_of(value: Any) -> dict[str, Any] | None:
    """A stored grouping as a dict, or None for a missing or empty one."""
    if isinstance(value, Mapping) and value:
        return dict(value)
    return None


@dataclass(frozen=True)
class GroupingSnapshot:
    """The task x branch probabilities at one training iteration."""

    iteration: int
    probabilities: np.ndarray


@dataclass(frozen=True)
class GroupingInfo:
    """One trial's task grouping, validated.

    Attributes:
        trial_id: The trial (None when parsed from a bare dict).
        method: The trial's method.
        tasks: Task names, the rows of every probability matrix.
        num_groups: Number of branches K.
        shared_stages: Backbone stages shared before the branches (None if not recorded).
        assignment: Task -> branch index of the final architecture.
        probabilities: Final N x K probabilities (None for group-then-prune trials).
        history: Probabilities over training, by iteration.
    """

    trial_id: int | None
    method: str
    tasks: tuple[str, ...]
    num_groups: int
    shared_stages: int | None
    assignment: dict[str, int]
    probabilities: np.ndarray | None
    history: tuple[GroupingSnapshot, ...] = ()


def _matrix(value: Any, n_tasks: int, n_groups: int, where: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"grouping {where} must be a numeric matrix; got {value!r}") from None
    if matrix.shape != (n_tasks, n_groups):
        raise ValueError(
            f"grouping {where} must be {n_tasks} tasks x {n_groups} groups; "
            f"got shape {matrix.shape}"
        )
    return matrix


def parse_grouping(
    value: Mapping[str, Any], trial_id: int | None = None, method: str = DMTG_METHOD
) -> GroupingInfo:
    """Validates a stored ``grouping`` dict.

    Args:
        value: The dict (see the module docstring).
        trial_id: The trial it belongs to.
        method: The trial's method.

    Returns:
        The :class:`GroupingInfo`.

    Raises:
        ValueError: the dict breaks the contract (one sentence naming the field).
    """
    grouping = grouping_of(value)
    if grouping is None:
        raise ValueError(f"grouping of trial {trial_id} is empty")
    raw_assignment = grouping.get("assignment")
    if not isinstance(raw_assignment, Mapping) or not raw_assignment:
        raise ValueError(f"grouping of trial {trial_id} has no task -> branch 'assignment'")
    assignment = {str(task): int(branch) for task, branch in raw_assignment.items()}
    tasks = tuple(str(t) for t in grouping.get("tasks") or assignment)
    missing = [t for t in tasks if t not in assignment]
    if missing:
        raise ValueError(f"grouping of trial {trial_id} assigns no branch to task {missing[0]!r}")
    n_groups = int(grouping.get("num_groups") or max(assignment.values()) + 1)
    bad = {t: b for t, b in assignment.items() if not 0 <= b < n_groups}
    if bad:
        task, branch = next(iter(bad.items()))
        raise ValueError(
            f"grouping of trial {trial_id} assigns task {task!r} to branch {branch}, "
            f"outside 0..{n_groups - 1}"
        )
    probabilities = None
    if grouping.get("probabilities") is not None:
        probabilities = _matrix(grouping["probabilities"], len(tasks), n_groups, "probabilities")
    history = []
    for k, entry in enumerate(grouping.get("history") or []):
        if not isinstance(entry, Mapping) or "probabilities" not in entry:
            raise ValueError(
                f"grouping history entry {k} must hold 'iteration' and 'probabilities'"
            )
        matrix = _matrix(entry["probabilities"], len(tasks), n_groups, f"history[{k}]")
        history.append(GroupingSnapshot(int(entry.get("iteration", k)), matrix))
    history.sort(key=lambda snapshot: snapshot.iteration)
    stages = grouping.get("shared_stages")
    return GroupingInfo(
        trial_id=trial_id,
        method=method,
        tasks=tasks,
        num_groups=n_groups,
        shared_stages=None if stages is None else int(stages),
        assignment=assignment,
        probabilities=probabilities,
        history=tuple(history),
    )


def _groupings(trials: pd.DataFrame) -> pd.Series:
    if "grouping" not in trials.columns:
        return pd.Series([None] * len(trials), index=trials.index, dtype=object)
    return trials["grouping"].map(grouping_of)


def select_grouping_trial(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    trial_id: int | None = None,
    value: str = "delta_t",
) -> GroupingInfo | None:
    """The DMTG trial to show: ``trial_id``, else the best completed ``dmtg`` trial.

    "Best" is the best ``value`` (in its objective's direction, maximised when it is not an
    objective) among completed ``dmtg`` trials with a recorded grouping; trials with
    learned probabilities come first, ties go to the lower trial id.

    Args:
        trials: The trials frame (a ``grouping`` column; missing means no grouping).
        objectives: ``(column, direction)`` pairs.
        trial_id: A specific trial with a grouping.
        value: The column that ranks the trials.

    Returns:
        The trial's :class:`GroupingInfo`, or None when no dmtg trial has a grouping.
    """
    pairs = check_objectives(objectives)
    groupings = _groupings(trials)
    if trial_id is not None:
        rows = trials[(trials["trial_id"] == trial_id) & groupings.notna()]
        if len(rows) == 0:
            raise ValueError(f"trial {trial_id} has no recorded task grouping")
        row = rows.iloc[0]
        return parse_grouping(groupings[rows.index[0]], int(trial_id), str(row["method"]))
    done = completed_trials(trials, pairs)
    done = done[(done["method"].astype(str) == DMTG_METHOD) & groupings.loc[done.index].notna()]
    if len(done) == 0:
        return None
    sign = -1.0 if dict(pairs).get(value) == "minimize" else 1.0
    values = done[value] if value in done.columns else pd.Series(math.nan, index=done.index)
    score = (sign * pd.to_numeric(values, errors="coerce")).fillna(-math.inf)
    learned = groupings.loc[done.index].map(lambda g: g.get("probabilities") is not None)
    order = pd.DataFrame(
        {"learned": learned, "score": score, "trial_id": done["trial_id"]}, index=done.index
    ).sort_values(["learned", "score", "trial_id"], ascending=[False, False, True])
    best = order.index[0]
    return parse_grouping(groupings[best], int(done.loc[best, "trial_id"]), DMTG_METHOD)


def assignment_table(info: GroupingInfo) -> pd.DataFrame:
    """The final architecture: one row per task.

    Returns:
        Index ``task``; columns ``branch`` (argmax of the probabilities), ``probability`` (of
        that branch; NaN without learned probabilities) and ``shares branch with`` (the other
        tasks of the same branch, comma-separated, or ``"-"``).
    """
    rows = []
    for i, task in enumerate(info.tasks):
        branch = info.assignment[task]
        mates = [t for t in info.tasks if t != task and info.assignment[t] == branch]
        probability = math.nan if info.probabilities is None else info.probabilities[i, branch]
        rows.append((task, branch, float(probability), ", ".join(mates) or "-"))
    table = pd.DataFrame(rows, columns=["task", "branch", "probability", "shares branch with"])
    return table.set_index("task")


def branch_probability_history(info: GroupingInfo) -> pd.DataFrame:
    """Probability of each task's final branch over training.

    Returns:
        Index ``iteration`` (the history's, then the final values at the last iteration + 1
        when the history does not end with them); one column per task. Empty without a
        history.
    """
    snapshots = list(info.history)
    if not snapshots:
        return pd.DataFrame(columns=list(info.tasks), index=pd.Index([], name="iteration"))
    columns = [info.assignment[t] for t in info.tasks]
    rows = np.array([s.probabilities[np.arange(len(info.tasks)), columns] for s in snapshots])
    iterations = [s.iteration for s in snapshots]
    final = info.probabilities
    if final is not None and not np.allclose(snapshots[-1].probabilities, final):
        rows = np.vstack([rows, final[np.arange(len(info.tasks)), columns]])
        iterations.append(iterations[-1] + 1)
    table = pd.DataFrame(rows, columns=list(info.tasks), index=pd.Index(iterations))
    table.index.name = "iteration"
    return table


def grouped_comparison(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials of methods run on a grouped architecture and of the same methods ungrouped.

    A trial is grouped when its ``config`` has a non-null ``grouping`` or its method name
    has a ``@`` suffix (``magnitude@grouped``); its base method is the name before ``@``.
    Only bases with grouped trials are kept, with the ungrouped trials of the same base.

    Returns:
        Those rows with columns ``base_method``, ``grouped`` (bool) and ``method`` relabelled
        ``<base>@grouped`` / ``<base>`` (an empty frame when nothing was grouped).
    """
    if len(trials) == 0 or "method" not in trials.columns:
        return trials.iloc[0:0].copy()
    methods = trials["method"].astype(str)
    configs = trials["config"] if "config" in trials.columns else pd.Series(None, trials.index)
    in_config = configs.map(lambda c: isinstance(c, Mapping) and c.get("grouping") is not None)
    grouped = in_config | methods.str.contains(GROUPED_SEPARATOR, regex=False)
    base = methods.str.split(GROUPED_SEPARATOR, n=1).str[0]
    bases = set(base[grouped])
    keep = base.isin(bases) & (base != DMTG_METHOD)
    if "is_reference" in trials.columns:
        keep &= ~trials["is_reference"].fillna(False).astype(bool)
    frame = trials.loc[keep].copy()
    frame["base_method"] = base[keep]
    frame["grouped"] = grouped[keep].astype(bool)
    suffix = GROUPED_SEPARATOR + "grouped"
    labels = np.where(frame["grouped"], frame["base_method"] + suffix, frame["base_method"])
    frame["method"] = labels
    return frame
