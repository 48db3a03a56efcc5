"""Seed noise: hypervolume and fronts aggregated across seeds, and plain-words verdicts.

A study with several seeds runs each method's search once per seed. The numbers here say
how much a method's hypervolume moves from seed to seed and whether the difference between
two methods is larger than that movement (:func:`analysis.hypervolume_within_noise`).
Reference trials (the dense model Delta_T is measured against) take no part.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis._compare import (
    DEFAULT_OBJECTIVES,
    Objectives,
    SeedSummary,
    _best_at_levels,
    _points,
    check_objectives,
    completed_trials,
    hypervolume_within_noise,
    method_order,
    objective_reference,
    seed_summary,
    without_reference,
)
from study._levels import LEVEL_TOLERANCE
from study._pareto import pareto_mask

__all__ = [
    "SeedBand",
    "SeedComparison",
    "SeedNoiseReport",
    "seed_bands",
    "seed_fronts",
    "seed_noise_report",
]


VALUE_LABELS = {"delta_t": "Delta_T"}


def _num(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class SeedComparison:
    """Two methods' mean hypervolumes against their seed noise.

    Attributes:
        higher: The method with the larger mean hypervolume.
        lower: The other method.
        difference: ``mean(higher) - mean(lower)`` (never negative).
        spread: ``sqrt(std_higher**2 + std_lower**2)``, the seed noise of the difference.
        within_noise: ``difference <= spread``.
    """

    higher: str
    lower: str
    difference: float
    spread: float
    within_noise: bool

    def sentence(self) -> str:
        """The verdict in words, e.g. ``"a vs b: hypervolume difference 0.8 is within ..."``."""
        head = f"{self.higher} vs {self.lower}: hypervolume difference {_num(self.difference)}"
        if self.within_noise:
            return f"{head} is within seed noise (spread {_num(self.spread)})."
        return (
            f"{head} exceeds seed noise (spread {_num(self.spread)}): "
            f"{self.higher} is ahead across seeds."
        )


@dataclass(frozen=True)
class SeedNoiseReport:
    """What the report says about seeds.

    Attributes:
        seeds: The distinct seeds of the searched (non-reference) trials, sorted.
        table: One row per method with at least one completed trial: ``seeds``, hypervolume
            ``mean``/``std``/``min``/``max`` and the best value at the report's sparsity
            (mean/std/min/max); empty with fewer than two seeds.
        comparisons: Every pair of methods that both have two or more seeds, higher mean
            first, ordered by the higher method's mean hypervolume.
        message: Why there is no noise estimate (one seed, no completed trials), else None.
        notes: Methods left out of the comparisons and why.
        summary: The underlying :class:`analysis.SeedSummary` (None without an estimate).
    """

    seeds: tuple[int, ...]
    table: pd.DataFrame
    comparisons: tuple[SeedComparison, ...] = ()
    message: str | None = None
    notes: tuple[str, ...] = ()
    summary: SeedSummary | None = field(default=None, repr=False)

    def statements(self) -> list[str]:
        """The message, the notes and one sentence per comparison."""
        return [*([self.message] if self.message else []), *self.notes] + [
            c.sentence() for c in self.comparisons
        ]


def _seeds_of(trials: pd.DataFrame) -> tuple[int, ...]:
    if "seed" not in trials.columns:
        return ()
    values = pd.to_numeric(trials["seed"], errors="coerce").dropna()
    return tuple(sorted(int(v) for v in pd.unique(values)))


def _table(summary: SeedSummary, level_label: str, value_label: str) -> pd.DataFrame:
    per_method = summary.per_method
    table = pd.DataFrame(index=per_method.index)
    table["seeds"] = per_method["n_seeds"].astype(int)
    for stat in ("mean", "std", "min", "max"):
        table[f"hypervolume {stat}"] = per_method[f"hypervolume_{stat}"]
    for stat in ("mean", "std", "min", "max"):
        table[f"{value_label} {stat}"] = per_method[f"{level_label}_{stat}"]
    return table


def seed_noise_report(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    sparsity: float = 0.9,
    reference: Sequence[float] | np.ndarray | None = None,
    value: str = "delta_t",
) -> SeedNoiseReport:
    """Hypervolume spread across seeds per method and the noise verdict for each pair.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.
        sparsity: Level of the "best value at or above" columns.
        reference: Hypervolume reference point; defaults to
            :func:`analysis.objective_reference` of all trials (the report's point).
        value: Column reported at ``sparsity``.

    Returns:
        A :class:`SeedNoiseReport`; with fewer than two seeds it holds only a message.
    """
    pairs = check_objectives(objectives)
    searched = without_reference(trials)
    seeds = _seeds_of(searched)
    empty = pd.DataFrame()
    if len(seeds) < 2:
        which = f"one seed ({seeds[0]})" if seeds else "no seed"
        return SeedNoiseReport(
            seeds,
            empty,
            message=(
                f"This study ran {which}: no estimate of seed noise is possible, so "
                "differences between methods may be luck; list two or more seeds in "
                "budget.seeds to measure it."
            ),
        )
    if len(completed_trials(searched, pairs)) == 0:
        return SeedNoiseReport(seeds, empty, message="No completed trials yet: no seed statistics.")
    if reference is None:
        reference = objective_reference(trials, pairs)
    summary = seed_summary(searched, pairs, (sparsity,), reference, value)
    done = set(method_order(completed_trials(searched, pairs)))
    per_method = summary.per_method.loc[[m for m in summary.per_method.index if m in done]]
    summary = SeedSummary(summary.per_seed, per_method, summary.reference)
    level_label = f"best_at_{sparsity:g}"
    value_label = f"best {VALUE_LABELS.get(value, value)} at >= {sparsity * 100:g}%"
    notes = tuple(
        f"{method} has {int(n)} seed: left out of the noise comparisons."
        for method, n in per_method["n_seeds"].items()
        if n < 2
    )
    ranked = per_method[per_method["n_seeds"] >= 2].sort_values(
        "hypervolume_mean", ascending=False, kind="stable"
    )
    comparisons = []
    mean, std = ranked["hypervolume_mean"], ranked["hypervolume_std"]
    for a, b in itertools.combinations(ranked.index, 2):
        comparisons.append(
            SeedComparison(
                higher=str(a),
                lower=str(b),
                difference=float(mean[a] - mean[b]),
                spread=math.hypot(float(std[a]), float(std[b])),
                within_noise=hypervolume_within_noise(summary, str(a), str(b)),
            )
        )
    if not comparisons:
        notes += ("Fewer than two methods have two or more seeds: no pair to compare.",)
    return SeedNoiseReport(
        seeds,
        _table(summary, level_label, value_label),
        tuple(comparisons),
        None,
        notes,
        summary,
    )


def seed_fronts(trials: pd.DataFrame, objectives: Objectives = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """Completed searched trials flagged ``on_seed_front``: on the front of its method and seed.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.

    Returns:
        The completed non-reference trials with a boolean ``on_seed_front`` column.
    """
    pairs = check_objectives(objectives)
    frame = completed_trials(without_reference(trials), pairs)
    flags = np.zeros(len(frame), dtype=bool)
    if len(frame) and "seed" in frame.columns:
        keys = frame["method"].astype(str) + "\x00" + frame["seed"].astype(str)
        codes = keys.to_numpy()
        points = _points(frame, pairs)
        directions = [d for _, d in pairs]
        for key in pd.unique(codes):
            rows = np.flatnonzero(codes == key)
            flags[rows] = pareto_mask(points[rows], directions)
    frame["on_seed_front"] = flags
    return frame


@dataclass(frozen=True)
class SeedBand:
    """One method's best value at or above each sparsity level, across seeds.

    Attributes:
        method: The method.
        levels: Sparsity levels (the method's completed trials' sparsities, ascending, up
            to the highest sparsity every seed reaches).
        mean: Mean over seeds of the best value at or above each level.
        low: Smallest over seeds.
        high: Largest over seeds.
        n_seeds: How many seeds the band is made of.
    """

    method: str
    levels: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def seed_bands(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    value: str = "delta_t",
    direction: str = "maximize",
) -> list[SeedBand]:
    """The fronts aggregated across seeds: a band of "best ``value`` at sparsity >= level".

    Only methods with two or more seeds get a band.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs (trials need finite values in them).
        value: The column on the band's y axis.
        direction: Whether ``value`` is maximised or minimised.

    Returns:
        One :class:`SeedBand` per method with two or more seeds, in method order.
    """
    frame = completed_trials(without_reference(trials), objectives)
    bands = []
    for method in method_order(frame):
        sub = frame[frame["method"].astype(str) == method]
        seeds = _seeds_of(sub)
        if len(seeds) < 2:
            continue
        sparsity = sub["sparsity"].to_numpy(dtype=float)
        reach = min(float(sparsity[sub["seed"].to_numpy() == s].max()) for s in seeds)
        levels = np.unique(sparsity[sparsity <= reach])
        curves = np.vstack(
            [
                _best_at_levels(
                    sparsity[sub["seed"].to_numpy() == s],
                    sub.loc[sub["seed"] == s, value].to_numpy(dtype=float),
                    levels.tolist(),
                    direction == "maximize",
                    LEVEL_TOLERANCE,
                )
                for s in seeds
            ]
        )
        bands.append(
            SeedBand(
                method,
                levels,
                curves.mean(axis=0),
                curves.min(axis=0),
                curves.max(axis=0),
                len(seeds),
            )
        )
    return bands
