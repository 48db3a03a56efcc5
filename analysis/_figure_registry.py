"""Report figures by id: one decorator registers a figure for the report and the dashboard.

A figure is a builder taking a :class:`FigureContext` (the loaded study and the report's
settings) and returning a plotly figure, several :class:`ReportFigure` (for example one
per method) or ``None`` (nothing to show). Registering one takes a decorator in its own
module::

    @FIGURES.figure("fig-my-figure", "My figure", order=70)
    def _my_figure(context: FigureContext) -> go.Figure:
        return my_figure(context.trials, context.objectives)

Every ``analysis/*_figures.py`` module is imported with the package (see
``analysis/__init__.py``), so a new figure module needs no other edit: the report draws
the registered figures in ``order`` (then id) under "Figures", and the dashboard offers
them in its figure list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis._compare import (
    DEFAULT_OBJECTIVES,
    Objectives,
    check_objectives,
    completed_trials,
    objective_reference,
)
from trials.registry import Registry

__all__ = [
    "FIGURES",
    "FigureBuilder",
    "FigureContext",
    "FigureRegistry",
    "FigureSpec",
    "ReportFigure",
    "unique_slug",
]


class ReportFigure(NamedTuple):
    """One drawn figure: its ``<div>`` id, its heading and the plotly figure."""

    div_id: str
    title: str
    figure: go.Figure


@dataclass(frozen=True)
class FigureContext:
    """What a registered figure is built from.

    Attributes:
        trials: The trials frame (may be empty).
        evaluations: The evaluations frame (None when not loaded).
        objectives: The study's validated ``(column, direction)`` pairs.
        sparsity: The level the report's per-level figures and tables look at.
        budget: The budget axis of budget curves (``"trials"``, ``"iterations"``, ...).
        reference: The study-wide hypervolume reference point (None without a completed
            trial).
        levels: The levels methods are compared at (the study's ``sparsity_levels``).
    """

    trials: pd.DataFrame
    evaluations: pd.DataFrame | None
    objectives: tuple[tuple[str, str], ...]
    sparsity: float = 0.9
    budget: str = "trials"
    reference: np.ndarray | None = None
    levels: tuple[float, ...] = ()

    @classmethod
    def of(
        cls,
        trials: pd.DataFrame | None,
        evaluations: pd.DataFrame | None = None,
        objectives: Objectives = DEFAULT_OBJECTIVES,
        sparsity: float = 0.9,
        budget: str = "trials",
        levels: Sequence[float] = (),
    ) -> FigureContext:
        """The context of a loaded study, with the reference point every figure shares.

        Args:
            trials: The trials frame (None: no trials).
            evaluations: The evaluations frame.
            objectives: ``(column, direction)`` pairs (validated here).
            sparsity: See :attr:`sparsity`.
            budget: See :attr:`budget`.
            levels: See :attr:`levels`.
        """
        pairs = check_objectives(objectives)
        frame = pd.DataFrame() if trials is None else trials
        done = len(completed_trials(frame, pairs)) > 0
        reference = objective_reference(frame, pairs) if done else None
        return cls(frame, evaluations, pairs, sparsity, budget, reference, tuple(levels))


FigureBuilder = Callable[[FigureContext], go.Figure | Iterable[ReportFigure] | None]


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure.

    Attributes:
        id: The ``<div>`` id of its figure (multi-figure builders derive theirs from it).
        title: Its heading.
        order: Position in the report (lower first; equal orders go by id).
        build: The builder.
    """

    id: str
    title: str
    order: float
    build: FigureBuilder

    def figures(self, context: FigureContext) -> list[ReportFigure]:
        """The figures built for ``context``: none, this entry's one, or the builder's."""
        built = self.build(context)
        if built is None:
            return []
        if isinstance(built, go.Figure):
            return [ReportFigure(self.id, self.title, built)]
        return [ReportFigure(*figure) for figure in built]


class FigureRegistry(Registry[FigureSpec]):
    """Report figures by id, in report order. Registering an id twice raises."""

    def figure(self, id: str, title: str, order: float) -> Callable[[FigureBuilder], FigureBuilder]:
        """Decorator registering a builder under ``id`` (see the module docstring).

        Args:
            id: The figure's ``<div>`` id, ``fig-`` followed by lower-case words.
            title: Its heading in the report and its name in the dashboard's list.
            order: Its position (the built-in figures use 10, 20, ... 60).
        """
        if not re.fullmatch(r"fig-[a-z0-9]+(-[a-z0-9]+)*", id):
            raise ValueError(f"figure id must look like 'fig-some-name'; got {id!r}")

        def decorator(build: FigureBuilder) -> FigureBuilder:
            self.register(id)(FigureSpec(id, title, order, build))
            return build

        return decorator

    def unregister(self, id: str) -> FigureSpec:
        """Removes and returns the figure ``id`` (a test's throwaway figure, a plugin's)."""
        spec = self.get(id)
        del self._entries[id]
        return spec

    def ordered(self) -> list[FigureSpec]:
        """Every registered figure in report order."""
        return sorted((self.get(name) for name in self.names()), key=lambda s: (s.order, s.id))

    def build(self, context: FigureContext) -> list[ReportFigure]:
        """Every registered figure's figures for ``context``, in report order.

        Raises:
            ValueError: two built figures have the same ``<div>`` id.
        """
        figures = [figure for spec in self.ordered() for figure in spec.figures(context)]
        ids = [figure.div_id for figure in figures]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"figure ids must be unique in a report; repeated: {repeated}")
        return figures


FIGURES = FigureRegistry("report figure")
"""The report's and the dashboard's figures (``analysis/*_figures.py`` register theirs)."""


def unique_slug(text: str, taken: set[str], default: str = "method") -> str:
    """``text`` as a lower-case id part, made unique against ``taken`` (which it joins)."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or default
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug
