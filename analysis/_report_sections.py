"""Optional sections of the report: seed noise and DMTG task grouping.

Each builder returns a :class:`Section` (or None when the study has nothing for it) that
:func:`analysis.build_report` renders: sentences, tables and figures under one heading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis._compare import Objectives
from analysis._grouping import assignment_table, grouped_comparison, select_grouping_trial
from analysis._grouping_figures import (
    grouped_fronts_figure,
    grouping_heatmap_figure,
    grouping_history_figure,
)
from analysis._seed_figures import seed_fronts_figure
from analysis._seeds import seed_noise_report

__all__ = ["Section", "grouping_section", "seed_section"]


@dataclass(frozen=True)
class Section:
    """One report section.

    Attributes:
        title: The heading.
        sentences: Statements shown as a list (plain text, escaped when rendered).
        tables: Title -> table; ``files`` names the tables also written to ``tables/``.
        figures: ``(div id, title, figure)``.
        files: Table title -> file stem under ``tables/``.
    """

    title: str
    sentences: tuple[str, ...] = ()
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: tuple[tuple[str, str, go.Figure], ...] = ()
    files: dict[str, str] = field(default_factory=dict)


def seed_section(
    trials: pd.DataFrame,
    objectives: Objectives,
    sparsity: float,
    reference: np.ndarray | None,
) -> Section:
    """Seeds: spread of hypervolume across seeds and which differences are within noise."""
    report = seed_noise_report(trials, objectives, sparsity, reference)
    if len(report.table) == 0:
        return Section("Seeds", tuple(report.statements()))
    title = (
        f"Per method: hypervolume and best Delta_T (%) at or above {sparsity:.0%} sparsity "
        f"over its {len(report.seeds)} seeds"
    )
    return Section(
        "Seeds",
        tuple(report.statements()),
        {title: report.table},
        (("fig-seed-fronts", "Fronts per seed", seed_fronts_figure(trials, objectives)),),
        {title: "seeds"},
    )


def grouping_section(trials: pd.DataFrame, objectives: Objectives) -> Section | None:
    """Task grouping: the chosen dmtg trial's probabilities and grouped-vs-ungrouped fronts.

    Returns:
        None when the study has neither a dmtg trial with a grouping nor grouped methods.
    """
    info = select_grouping_trial(trials, objectives)
    has_grouped = len(grouped_comparison(trials)) > 0
    if info is None and not has_grouped:
        return None
    sentences: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    figures: list[tuple[str, str, go.Figure]] = []
    if info is None:
        sentences.append("No completed dmtg trial recorded a task grouping.")
    else:
        stages = "" if info.shared_stages is None else f", {info.shared_stages} shared stage(s)"
        sentences.append(
            f"dmtg trial {info.trial_id}: {len(info.tasks)} tasks in {info.num_groups} "
            f"branches{stages}; the best completed dmtg trial by Delta_T."
        )
        title = f"Per task: its branch in dmtg trial {info.trial_id} and who shares it"
        tables[title] = assignment_table(info)
        files[title] = "grouping"
        figures.append(
            ("fig-grouping-heatmap", "Task x branch probabilities", grouping_heatmap_figure(info))
        )
        if info.history:
            figures.append(
                ("fig-grouping-history", "Grouping over training", grouping_history_figure(info))
            )
    if has_grouped:
        fronts = grouped_fronts_figure(trials, objectives)
        figures.append(("fig-grouped-fronts", "Grouped vs ungrouped", fronts))
    return Section("Task grouping (DMTG)", tuple(sentences), tables, tuple(figures), files)
