"""Comparisons of methods on the trials frame: fronts, best-at-sparsity, budgets, seeds.

All functions take the trials frame described by the store/analysis contract (one row per
trial; ``method``, ``trial_id``, ``seed``, ``status`` and the objective columns) and the
study's objectives as ``(column, direction)`` pairs. Only ``COMPLETE`` trials with finite
values in every objective column take part in fronts and hypervolumes.

Hypervolumes of different methods are only comparable with one reference point; every
function here therefore computes it once from all methods' completed trials
(:func:`objective_reference`) unless one is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study._levels import LEVEL_TOLERANCE
from study._pareto import (
    DEFAULT_MARGIN,
    DIRECTIONS,
    default_reference,
    hypervolume,
    hypervolume_trace,
    pareto_mask,
)

__all__ = [
    "BUDGETS",
    "DEFAULT_LEVELS",
    "DEFAULT_OBJECTIVES",
    "NATURAL_WORST",
    "SeedSummary",
    "best_at_sparsity_levels",
    "check_objectives",
    "completed_trials",
    "hypervolume_vs_budget",
    "hypervolume_within_noise",
    "method_fronts",
    "method_order",
    "method_summary",
    "objective_reference",
    "seed_summary",
]

Objectives = Sequence[tuple[str, str]]

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (
    ("delta_t", "maximize"),
    ("sparsity", "maximize"),
)
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
BUDGETS: tuple[str, ...] = ("trials", "iterations", "wall_time_s", "device_s", "flops")
FINISHED = ("COMPLETE", "FAILED", "PRUNED")
SEED_STATS: tuple[str, ...] = ("mean", "std", "min", "max")
NATURAL_WORST: dict[str, dict[str, float]] = {"sparsity": {"maximize": 0.0}}
"""Objectives whose worst possible value is known: a maximised sparsity is never below 0."""


def check_objectives(objectives: Objectives) -> tuple[tuple[str, str], ...]:
    """Validate ``(column, direction)`` pairs and return them as a tuple.

    Args:
        objectives: The study's objectives, e.g. ``[("delta_t", "maximize"), ...]``.

    Returns:
        The same pairs as a tuple of tuples.
    """
    pairs = tuple(tuple(pair) for pair in objectives)
    if not pairs:
        raise ValueError("objectives must name at least one (column, direction) pair; got none")
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise ValueError(f"objectives[{i}] must be a (column, direction) pair; got {pair!r}")
        if pair[1] not in DIRECTIONS:
            raise ValueError(
                f"objectives[{i}] direction must be 'maximize' or 'minimize'; got {pair[1]!r}"
            )
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"objectives must name each column once; got {names}")
    return pairs  # type: ignore[return-value]


def _require(trials: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Return ``trials`` with ``columns`` present; an empty frame gets them added."""
    missing = [c for c in columns if c not in trials.columns]
    if not missing:
        return trials
    if len(trials) == 0:
        trials = trials.copy()
        for column in missing:
            trials[column] = pd.Series(dtype=object if column in ("method", "status") else float)
        return trials
    raise ValueError(
        f"the trials frame has no column {missing[0]!r} (needed for {what}); "
        f"columns: {', '.join(map(str, trials.columns))}"
    )


def without_reference(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials that are not a study's dense reference (``is_reference``)."""
    if "is_reference" not in trials.columns:
        return trials
    return trials[~trials["is_reference"].fillna(False).astype(bool)]


def method_order(trials: pd.DataFrame) -> list[str]:
    """Method names in order of first appearance in the frame."""
    if "method" not in trials.columns or len(trials) == 0:
        return []
    return [str(m) for m in pd.unique(trials["method"].astype(str))]


def completed_trials(
    trials: pd.DataFrame, objectives: Objectives = DEFAULT_OBJECTIVES
) -> pd.DataFrame:
    """``COMPLETE`` trials with a finite value in every objective column.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.

    Returns:
        The matching rows (a copy, original index kept).
    """
    pairs = check_objectives(objectives)
    names = [name for name, _ in pairs]
    trials = _require(trials, ["method", "status", *names], "the objectives")
    values = trials[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    keep = (trials["status"].astype(str) == "COMPLETE").to_numpy() & np.all(
        np.isfinite(values), axis=1
    )
    return trials.loc[keep].copy()


def _points(frame: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    return frame[[name for name, _ in pairs]].to_numpy(dtype=float).reshape(len(frame), len(pairs))


def objective_reference(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """The study-wide hypervolume reference point, shared by all methods.

    Rule: an objective listed in :data:`NATURAL_WORST` for its direction uses that value (a
    maximised sparsity uses 0, the dense model); every other objective uses the worst value
    among all methods' completed trials moved further by ``margin`` times the observed range
    (see :func:`analysis.default_reference`). For the default objectives this is
    ``(min Delta_T - 10% of its range, 0)``.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.
        margin: Fraction of the observed range added beyond the worst value.

    Returns:
        The reference point in the objectives' own directions.
    """
    pairs = check_objectives(objectives)
    frame = completed_trials(trials, pairs)
    if len(frame) == 0:
        raise ValueError(
            "cannot derive a hypervolume reference: no COMPLETE trial has values for "
            f"{[name for name, _ in pairs]}"
        )
    reference = default_reference(_points(frame, pairs), [d for _, d in pairs], margin)
    for j, (name, direction) in enumerate(pairs):
        natural = NATURAL_WORST.get(name, {}).get(direction)
        if natural is not None:
            reference[j] = natural
    return reference


def method_fronts(
    trials: pd.DataFrame, objectives: Objectives = DEFAULT_OBJECTIVES
) -> pd.DataFrame:
    """Completed trials flagged with their Pareto membership.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.

    Returns:
        The completed trials (see :func:`completed_trials`) with two boolean columns:
        ``on_front`` (on its own method's front, all seeds pooled) and ``on_front_overall``
        (on the front of all methods together).
    """
    pairs = check_objectives(objectives)
    directions = [d for _, d in pairs]
    frame = completed_trials(trials, pairs)
    frame["on_front"] = False
    frame["on_front_overall"] = False
    if len(frame) == 0:
        return frame
    points = _points(frame, pairs)
    frame["on_front_overall"] = pareto_mask(points, directions)
    on_front = np.zeros(len(frame), dtype=bool)
    methods = frame["method"].astype(str).to_numpy()
    for method in pd.unique(methods):
        rows = np.flatnonzero(methods == method)
        on_front[rows] = pareto_mask(points[rows], directions)
    frame["on_front"] = on_front
    return frame


def _best_at_levels(
    sparsity: np.ndarray,
    values: np.ndarray,
    levels: Sequence[float],
    maximize: bool,
    tolerance: float,
) -> np.ndarray:
    """Best value among points with sparsity >= level, per level (NaN when none)."""
    keep = np.isfinite(sparsity) & np.isfinite(values)
    sparsity, values = sparsity[keep], values[keep]
    out = np.full(len(levels), np.nan)
    if len(sparsity) == 0:
        return out
    order = np.argsort(-sparsity, kind="stable")
    descending = sparsity[order]
    accumulate = np.maximum.accumulate if maximize else np.minimum.accumulate
    best = accumulate(values[order])
    counts = np.searchsorted(-descending, -(np.asarray(levels, dtype=float) - tolerance), "right")
    has = counts > 0
    out[has] = best[counts[has] - 1]
    return out


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(level) for level in levels)
    for level in levels:
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"sparsity levels must lie in [0, 1]; got {level}")
    return levels


def best_at_sparsity_levels(
    trials: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    value: str = "delta_t",
    direction: str = "maximize",
    tolerance: float = LEVEL_TOLERANCE,
) -> pd.DataFrame:
    """Best ``value`` per method among its ``COMPLETE`` trials at or above each sparsity.

    Args:
        trials: The trials frame.
        levels: Sparsity levels in ``[0, 1]``.
        value: Column to optimise (Delta_T by default).
        direction: ``"maximize"`` or ``"minimize"`` for ``value``.
        tolerance: A trial counts for a level when ``sparsity >= level - tolerance``.

    Returns:
        Rows = methods (every method in the frame), columns = levels, NaN when no completed
        trial of the method reaches the level.
    """
    levels = _check_levels(levels)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'maximize' or 'minimize'; got {direction!r}")
    trials = _require(trials, ["method", "status", "sparsity", value], "best_at_sparsity_levels")
    done = trials[trials["status"].astype(str) == "COMPLETE"]
    rows = {}
    for method in method_order(trials):
        sub = done[done["method"].astype(str) == method]
        rows[method] = _best_at_levels(
            pd.to_numeric(sub["sparsity"], errors="coerce").to_numpy(dtype=float),
            pd.to_numeric(sub[value], errors="coerce").to_numpy(dtype=float),
            levels,
            direction == "maximize",
            tolerance,
        )
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(levels))
    table = table.reindex(columns=list(levels)).astype(float)
    table.index.name = "method"
    table.columns.name = "sparsity >="
    return table


def hypervolume_vs_budget(
    trials: pd.DataFrame,
    budget: str = "trials",
    objectives: Objectives = DEFAULT_OBJECTIVES,
    reference: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Hypervolume of each method's completed trials as its budget is spent.

    Trials are taken in finish order (``finished_at``, then ``trial_id``); every finished
    trial (``COMPLETE``, ``FAILED``, ``PRUNED``) spends budget, only completed ones add
    hypervolume. A missing budget value counts as 0.

    Args:
        trials: The trials frame.
        budget: One of ``trials``, ``iterations``, ``wall_time_s``, ``device_s``, ``flops``.
        objectives: ``(column, direction)`` pairs.
        reference: Reference point; defaults to :func:`objective_reference`.

    Returns:
        Long frame with columns ``method``, ``trial_id``, ``status``, ``budget`` (cumulative),
        ``hypervolume`` (so far), ``n_complete`` (so far); one row per finished trial.
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    pairs = check_objectives(objectives)
    names = [name for name, _ in pairs]
    directions = [d for _, d in pairs]
    needed = ["method", "status", "trial_id", *names]
    if budget != "trials":
        needed.append(budget)
    trials = _require(trials, needed, "hypervolume_vs_budget")
    columns = ["method", "trial_id", "status", "budget", "hypervolume", "n_complete"]
    finished = trials[trials["status"].astype(str).isin(FINISHED)].copy()
    if len(finished) == 0:
        return pd.DataFrame(columns=columns)
    if budget != "trials":
        spent = pd.to_numeric(finished[budget], errors="coerce")
        if spent.isna().all():
            raise ValueError(
                f"budget {budget!r} is not recorded for any finished trial; "
                f"choose one of {', '.join(BUDGETS)}"
            )
        finished["_spent"] = spent.fillna(0.0).to_numpy(dtype=float)
    else:
        finished["_spent"] = 1.0
    has_reference = reference is not None
    if not has_reference and len(completed_trials(trials, pairs)):
        reference = objective_reference(trials, pairs)
    sort_keys = ["finished_at", "trial_id"] if "finished_at" in finished.columns else ["trial_id"]
    finished = finished.sort_values(sort_keys, kind="stable", na_position="last")
    parts = []
    for method in method_order(finished):
        sub = finished[finished["method"].astype(str) == method]
        values = sub[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        valid = (sub["status"].astype(str) == "COMPLETE").to_numpy() & np.all(
            np.isfinite(values), axis=1
        )
        hv = np.zeros(len(sub))
        if valid.any() and reference is not None:
            trace = hypervolume_trace(values[valid], directions, reference)
            filled = np.full(len(sub), np.nan)
            filled[valid] = trace
            hv = pd.Series(filled).ffill().fillna(0.0).to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "method": method,
                    "trial_id": sub["trial_id"].to_numpy(),
                    "status": sub["status"].astype(str).to_numpy(),
                    "budget": np.cumsum(sub["_spent"].to_numpy(dtype=float)),
                    "hypervolume": hv,
                    "n_complete": np.cumsum(valid),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]


def _level_label(level: float) -> str:
    return f"best_at_{level:g}"


@dataclass(frozen=True)
class SeedSummary:
    """Per-seed results and their spread across seeds.

    Attributes:
        per_seed: One row per (method, seed): ``n_complete``, ``hypervolume`` and
            ``best_at_<level>`` columns.
        per_method: One row per method: ``n_seeds``, then ``<column>_mean``,
            ``<column>_std`` (sample standard deviation, NaN with a single seed),
            ``<column>_min`` and ``<column>_max`` for ``hypervolume`` and each
            ``best_at_<level>`` (NaN where no seed reaches the level).
        reference: The reference point used for every hypervolume (None without completed
            trials).
    """

    per_seed: pd.DataFrame
    per_method: pd.DataFrame
    reference: tuple[float, ...] | None


def seed_summary(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    levels: Sequence[float] = DEFAULT_LEVELS,
    reference: Sequence[float] | np.ndarray | None = None,
    value: str = "delta_t",
) -> SeedSummary:
    """Hypervolume and best-at-levels per method and seed, then mean and std across seeds.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.
        levels: Sparsity levels for the ``best_at_<level>`` columns.
        reference: Reference point; defaults to :func:`objective_reference` of all trials.
        value: Column optimised by ``best_at_<level>`` (its direction comes from
            ``objectives`` when listed there, else maximised).

    Returns:
        A :class:`SeedSummary`.
    """
    pairs = check_objectives(objectives)
    levels = _check_levels(levels)
    directions = [d for _, d in pairs]
    direction = dict(pairs).get(value, "maximize")
    trials = _require(trials, ["method", "seed", "status", "sparsity", value], "seed_summary")
    frame = completed_trials(trials, pairs)
    if reference is None and len(frame):
        reference = objective_reference(trials, pairs)
    ref = None if reference is None else np.asarray(reference, dtype=float)
    labels = [_level_label(level) for level in levels]
    records = []
    for method in method_order(trials):
        method_rows = trials[trials["method"].astype(str) == method]
        for seed in sorted(pd.unique(method_rows["seed"].dropna())):
            sub = frame[(frame["method"].astype(str) == method) & (frame["seed"] == seed)]
            hv = 0.0 if ref is None else hypervolume(_points(sub, pairs), directions, ref)
            best = _best_at_levels(
                sub["sparsity"].to_numpy(dtype=float),
                sub[value].to_numpy(dtype=float),
                levels,
                direction == "maximize",
                LEVEL_TOLERANCE,
            )
            records.append(
                {
                    "method": method,
                    "seed": seed,
                    "n_complete": len(sub),
                    "hypervolume": hv,
                    **dict(zip(labels, best, strict=True)),
                }
            )
    per_seed = pd.DataFrame(
        records, columns=["method", "seed", "n_complete", "hypervolume", *labels]
    )
    stats = ["hypervolume", *labels]
    rows = {}
    for method, group in per_seed.groupby("method", sort=False):
        row: dict[str, float] = {"n_seeds": float(len(group))}
        for column in stats:
            series = group[column].astype(float)
            row[f"{column}_mean"] = float(series.mean())
            row[f"{column}_std"] = float(series.std(ddof=1)) if len(series) > 1 else math.nan
            row[f"{column}_min"] = float(series.min())
            row[f"{column}_max"] = float(series.max())
        rows[method] = row
    per_method = pd.DataFrame.from_dict(
        rows,
        orient="index",
        columns=["n_seeds", *[f"{c}_{s}" for c in stats for s in SEED_STATS]],
    )
    per_method["n_seeds"] = per_method["n_seeds"].astype(int)
    per_method.index.name = "method"
    return SeedSummary(
        per_seed=per_seed,
        per_method=per_method,
        reference=None if ref is None else tuple(float(v) for v in ref),
    )


def hypervolume_within_noise(summary: SeedSummary, method_a: str, method_b: str) -> bool:
    """Whether two methods' mean hypervolumes differ by no more than seed noise.

    Rule: ``|mean_a - mean_b| <= sqrt(std_a**2 + std_b**2)``, the standard deviations being
    the sample standard deviations across seeds (the spread of a difference of two
    independent draws). This is a screening rule, not a significance test.

    Args:
        summary: Output of :func:`seed_summary`.
        method_a: First method name.
        method_b: Second method name.

    Returns:
        True when the difference is within the combined standard deviation.
    """
    table = summary.per_method
    for method in (method_a, method_b):
        if method not in table.index:
            raise ValueError(
                f"unknown method {method!r}; choose one of: {', '.join(map(str, table.index))}"
            )
        if table.loc[method, "n_seeds"] < 2:
            raise ValueError(
                f"method {method!r} has {int(table.loc[method, 'n_seeds'])} seed(s); "
                "at least 2 are needed to estimate seed noise"
            )
    a, b = table.loc[method_a], table.loc[method_b]
    diff = abs(float(a["hypervolume_mean"]) - float(b["hypervolume_mean"]))
    combined = math.hypot(float(a["hypervolume_std"]), float(b["hypervolume_std"]))
    return diff <= combined


def method_summary(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    sparsity: float = 0.9,
    reference: Sequence[float] | np.ndarray | None = None,
    value: str = "delta_t",
) -> pd.DataFrame:
    """One row per method: trial counts, Pareto set size, hypervolume, best value at a level.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.
        sparsity: Level for ``best_<value>`` (best among completed trials with sparsity at or
            above it).
        reference: Reference point; defaults to :func:`objective_reference`.
        value: Column reported at the sparsity level.

    Returns:
        Columns ``n_trials``, ``n_complete``, ``n_failed``, ``n_pruned``, ``n_running``
        (running or waiting), ``pareto_size``, ``hypervolume``, ``best_<value>``.
    """
    pairs = check_objectives(objectives)
    directions = [d for _, d in pairs]
    direction = dict(pairs).get(value, "maximize")
    trials = _require(trials, ["method", "status", "sparsity", value], "method_summary")
    fronts = method_fronts(trials, pairs)
    if reference is None and len(fronts):
        reference = objective_reference(trials, pairs)
    best = best_at_sparsity_levels(trials, (sparsity,), value, direction)
    columns = [
        "n_trials",
        "n_complete",
        "n_failed",
        "n_pruned",
        "n_running",
        "pareto_size",
        "hypervolume",
        f"best_{value}",
    ]
    rows = {}
    for method in method_order(trials):
        status = trials.loc[trials["method"].astype(str) == method, "status"].astype(str)
        sub = fronts[fronts["method"].astype(str) == method]
        points = _points(sub, pairs)
        hv = (
            math.nan
            if reference is None
            else hypervolume(points, directions, np.asarray(reference, dtype=float))
        )
        rows[method] = [
            len(status),
            int((status == "COMPLETE").sum()),
            int((status == "FAILED").sum()),
            int((status == "PRUNED").sum()),
            int(status.isin(["RUNNING", "WAITING"]).sum()),
            int(sub["on_front"].sum()),
            hv,
            float(best.loc[method].iloc[0]),
        ]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    for column in columns[:6]:
        table[column] = table[column].astype(int)
    table.index.name = "method"
    return table
