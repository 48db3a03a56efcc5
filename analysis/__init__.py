"""Analysis of paretune studies: Pareto fronts, hypervolume, comparisons, tables, figures.

The Pareto maths lives in :mod:`study._pareto` (the ``mo-asha`` scheduler needs it in the
Ray driver) and is published here. Importing the package loads every
``analysis/*_figures.py`` module, whose decorators register the report's figures.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from analysis._compare import (
    BUDGETS,
    DEFAULT_LEVELS,
    DEFAULT_OBJECTIVES,
    NATURAL_WORST,
    SeedSummary,
    best_at_sparsity_levels,
    check_objectives,
    completed_trials,
    hypervolume_vs_budget,
    hypervolume_within_noise,
    method_fronts,
    method_order,
    method_summary,
    objective_reference,
    seed_summary,
)
from analysis._figure_registry import FIGURES, FigureContext, ReportFigure
from analysis._figures import (
    NO_TRIALS,
    component_sparsity_figure,
    hypervolume_budget_figure,
    is_message_figure,
    message_figure,
    method_colors,
    parallel_coordinates_figure,
    pareto_front_figure,
    task_metrics_figure,
    trajectories_figure,
)
from analysis._grouping import (
    DMTG_METHOD,
    GroupingInfo,
    GroupingSnapshot,
    assignment_table,
    branch_probability_history,
    grouped_comparison,
    grouping_of,
    parse_grouping,
    select_grouping_trial,
)
from analysis._grouping_figures import (
    grouped_fronts_figure,
    grouping_heatmap_figure,
    grouping_history_figure,
)
from analysis._intervals import (
    Interval,
    bootstrap_interval,
    comparison_sentence,
    mean_interval,
    paired_difference,
)
from analysis._levels import (
    LevelComparison,
    SeedComparisons,
    compare_at_levels,
    compare_seeds,
    hypervolume_intervals,
    level_sentences,
    level_table,
)
from analysis._load import StudyFrames, load_study
from analysis._report import ReportPaths, build_report
from analysis._seed_figures import seed_fronts_figure
from analysis._seeds import (
    SeedBand,
    SeedComparison,
    SeedNoiseReport,
    seed_bands,
    seed_fronts,
    seed_noise_report,
)
from analysis._tables import (
    MISSING,
    format_cells,
    paper_table,
    select_at_sparsity,
    short_of_level,
    short_of_level_note,
    sparsity_level_table,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
)
from study._levels import LEVEL_TOLERANCE
from study._pareto import (
    as_minimization,
    crowding_distance,
    default_reference,
    hypervolume,
    hypervolume_trace,
    knee_point,
    non_dominated_sort,
    pareto_mask,
)

__all__ = [
    "BUDGETS",
    "DEFAULT_LEVELS",
    "DEFAULT_OBJECTIVES",
    "DMTG_METHOD",
    "FIGURES",
    "LEVEL_TOLERANCE",
    "MISSING",
    "NATURAL_WORST",
    "NO_TRIALS",
    "FigureContext",
    "GroupingInfo",
    "GroupingSnapshot",
    "Interval",
    "LevelComparison",
    "ReportFigure",
    "ReportPaths",
    "SeedBand",
    "SeedComparison",
    "SeedComparisons",
    "SeedNoiseReport",
    "SeedSummary",
    "StudyFrames",
    "as_minimization",
    "assignment_table",
    "best_at_sparsity_levels",
    "bootstrap_interval",
    "branch_probability_history",
    "build_report",
    "check_objectives",
    "compare_at_levels",
    "compare_seeds",
    "comparison_sentence",
    "completed_trials",
    "component_sparsity_figure",
    "crowding_distance",
    "default_reference",
    "format_cells",
    "grouped_comparison",
    "grouped_fronts_figure",
    "grouping_heatmap_figure",
    "grouping_history_figure",
    "grouping_of",
    "hypervolume",
    "hypervolume_budget_figure",
    "hypervolume_intervals",
    "hypervolume_trace",
    "hypervolume_vs_budget",
    "hypervolume_within_noise",
    "is_message_figure",
    "knee_point",
    "level_sentences",
    "level_table",
    "load_study",
    "mean_interval",
    "message_figure",
    "method_colors",
    "method_fronts",
    "method_order",
    "method_summary",
    "non_dominated_sort",
    "objective_reference",
    "paired_difference",
    "paper_table",
    "parallel_coordinates_figure",
    "pareto_front_figure",
    "pareto_mask",
    "parse_grouping",
    "seed_bands",
    "seed_fronts",
    "seed_fronts_figure",
    "seed_noise_report",
    "seed_summary",
    "select_at_sparsity",
    "select_grouping_trial",
    "short_of_level",
    "short_of_level_note",
    "sparsity_level_table",
    "task_metrics_figure",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
    "trajectories_figure",
]


def _load_figure_modules(package: str = __name__, path: Iterable[str] | None = None) -> list[str]:
    """Imports every ``*_figures`` module of ``package`` (this one by default); their
    decorators register the report's figures, so a new figure module is imported without
    an import added anywhere.

    Args:
        package: The package's dotted name.
        path: Its folders (default: this package's ``__path__``).

    Returns:
        The modules' dotted names.
    """
    folders = __path__ if path is None else path
    names = [
        f"{package}.{module.name}"
        for module in pkgutil.iter_modules(folders)
        if module.name.endswith("_figures")
    ]
    for name in names:
        importlib.import_module(name)
    return names


_load_figure_modules()
