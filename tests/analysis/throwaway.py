"""A throwaway report figure, registered the way a figure module registers one."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis import FIGURES, FigureContext, completed_trials, method_order

THROWAWAY_ID = "fig-throwaway"
THROWAWAY_TITLE = "Throwaway: completed trials per method"


def throwaway_counts(context: FigureContext) -> dict[str, int]:
    """What the throwaway figure draws: completed trials per method."""
    done = completed_trials(context.trials, context.objectives)
    methods = done["method"].astype(str)
    return {method: int((methods == method).sum()) for method in method_order(done)}


def register_throwaway() -> str:
    """Registers the throwaway figure (one decorator, as in a figure module); its id."""

    @FIGURES.figure(THROWAWAY_ID, THROWAWAY_TITLE, order=65)
    def _throwaway(context: FigureContext) -> go.Figure:
        counts = throwaway_counts(context)
        figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), meta={"kind": "bar"}))
        return figure.update_layout(title=THROWAWAY_TITLE)

    return THROWAWAY_ID
