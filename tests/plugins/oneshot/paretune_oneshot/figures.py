"""A report figure of the plugin: completed trials per method, as bars."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis import FIGURES, FigureContext, completed_trials, method_order

FIGURE_ID = "fig-oneshot-trials"


@FIGURES.figure(FIGURE_ID, "Completed trials per method", order=90)
def trials_per_method(context: FigureContext) -> go.Figure:
    """One bar per method: its completed trials."""
    done = completed_trials(context.trials, context.objectives)
    methods = method_order(done)
    counts = [int((done["method"] == method).sum()) for method in methods]
    return go.Figure(go.Bar(x=methods, y=counts)).update_layout(title="Completed trials")
