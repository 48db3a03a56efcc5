"""Methods compared level by level: per seed the best value at or above each sparsity
level, then over seeds a mean with its interval, and for each pair of methods the paired
difference (both measured on the same seeds) with the sentence that states it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis._compare import (
    DEFAULT_LEVELS,
    DEFAULT_OBJECTIVES,
    Objectives,
    seed_summary,
    without_reference,
)
from analysis._intervals import (
    Interval,
    comparison_sentence,
    mean_interval,
    paired_difference,
)

__all__ = [
    "LevelComparison",
    "SeedComparisons",
    "compare_at_levels",
    "compare_seeds",
    "hypervolume_intervals",
    "level_sentences",
    "level_table",
]


@dataclass(frozen=True)
class LevelComparison:
    """The methods at one sparsity level.

    Attributes:
        level: the sparsity level, in ``[0, 1]``.
        methods: per method reaching the level in some seed, the interval of its per-seed
            best value (t interval over seeds).
        pairs: ``(first, second, paired difference first - second)`` over the seeds where
            both reach the level (``n == 0``: no such seed); first is the method with the
            higher mean (maximised value) or the lower one (minimised).
        short: methods with trials but none at or above the level in any seed.
    """

    level: float
    methods: dict[str, Interval]
    pairs: list[tuple[str, str, Interval]]
    short: list[str]

    def sentences(self, unit: str = "") -> list[str]:
        """One sentence per pair, e.g. ``adapmtl beats magnitude at 90% by +4.10 (95% CI
        1.02..7.18, n=3)`` or ``... are not distinguishable at 90% ...``."""
        where = f"at {self.level:.0%}"
        return [
            comparison_sentence(a, b, d, where, unit)
            if d.n
            else f"{a} vs {b} {where}: no seed in which both reach the level"
            for a, b, d in self.pairs
        ]


@dataclass(frozen=True)
class SeedComparisons:
    """What :func:`compare_seeds` finds: the methods level by level, and each method's
    hypervolume over seeds (t interval, one reference point)."""

    levels: list[LevelComparison]
    hypervolumes: dict[str, Interval]


def compare_seeds(
    trials: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    value: str = "delta_t",
    reference: Sequence[float] | np.ndarray | None = None,
) -> SeedComparisons:
    """Every method at every level and its hypervolume, across seeds, from one
    :func:`analysis.seed_summary` (reference trials left out).

    Args:
        trials: The trials frame (``method``, ``seed``, ``status``, ``sparsity``, ``value``).
        levels: Sparsity levels.
        objectives: ``(column, direction)`` pairs; ``value``'s direction is read there
            (maximised when not listed).
        value: The column compared (Delta_T by default).
        reference: The hypervolume reference point (default:
            :func:`analysis.objective_reference` of the trials).
    """
    trials = without_reference(trials)
    if not len(trials):
        return SeedComparisons([], {})
    per_seed = seed_summary(trials, objectives, levels, reference, value).per_seed
    maximize = dict(objectives).get(value, "maximize") == "maximize"
    methods = [str(m) for m in pd.unique(per_seed["method"])]
    comparisons = []
    for level in levels:
        column = f"best_at_{float(level):g}"
        table = per_seed.pivot_table(index="seed", columns="method", values=column, sort=False)
        reached = [m for m in methods if m in table and np.isfinite(table[m]).any()]
        intervals = {m: mean_interval(table[m].dropna().tolist()) for m in reached}
        ranked = sorted(reached, key=lambda m: intervals[m].mean, reverse=maximize)
        pairs = []
        for first, second in itertools.combinations(ranked, 2):
            a, b = table[first].to_numpy(float), table[second].to_numpy(float)
            difference = paired_difference(a, b) if maximize else paired_difference(b, a)
            pairs.append((first, second, difference))
        short = [m for m in methods if m not in reached]
        comparisons.append(LevelComparison(float(level), intervals, pairs, short))
    hypervolumes = {
        str(method): mean_interval(group["hypervolume"].astype(float).tolist())
        for method, group in per_seed.groupby("method", sort=False)
    }
    return SeedComparisons(comparisons, hypervolumes)


def compare_at_levels(
    trials: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    value: str = "delta_t",
) -> list[LevelComparison]:
    """Every method at every level, across seeds (see :func:`compare_seeds`)."""
    return compare_seeds(trials, levels, objectives, value).levels


def level_sentences(comparisons: Sequence[LevelComparison], unit: str = "") -> list[str]:
    """Per level, what was compared and how it came out, for ``status`` and the report.

    With one seed every pair says that more seeds are needed to tell it from noise."""
    lines = []
    for comparison in comparisons:
        at = f"at {comparison.level:.0%}"
        if not comparison.methods:
            lines.append(f"{at}: no method has a trial at or above the level")
            continue
        lines += comparison.sentences(unit)
        if len(comparison.methods) == 1:
            (only,) = comparison.methods
            lines.append(f"{at}: only {only} has a trial at or above the level")
        if comparison.short:
            lines.append(f"{at}: no trial at or above the level for {', '.join(comparison.short)}")
    return lines


def level_table(comparisons: Sequence[LevelComparison]) -> pd.DataFrame:
    """One row per level and method: seeds, mean and the 95% interval's bounds."""
    rows = [
        {
            "method": method,
            "level (%)": comparison.level * 100,
            "seeds": interval.n,
            "mean": interval.mean,
            "CI low": interval.low,
            "CI high": interval.high,
        }
        for comparison in comparisons
        for method, interval in comparison.methods.items()
    ]
    columns = ["method", "level (%)", "seeds", "mean", "CI low", "CI high"]
    return pd.DataFrame(rows, columns=columns).set_index("method")


def hypervolume_intervals(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    reference: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Interval]:
    """Per method (not the reference), the mean over seeds of its hypervolume with a 95% t
    interval; one reference point for all (see :func:`compare_seeds`)."""
    return compare_seeds(trials, (), objectives, reference=reference).hypervolumes
