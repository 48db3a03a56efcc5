"""Plotly figures of DMTG task grouping (the numbers come from :mod:`analysis._grouping`)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis._compare import DEFAULT_OBJECTIVES, Objectives, check_objectives, method_fronts
from analysis._figures import (
    NO_TRIALS,
    PALETTE,
    _axes,
    _front_layout,
    _hover,
    _label,
    _reference_label,
    _scale,
    is_delta,
    message_figure,
)
from analysis._front_view import frame_fronts
from analysis._grouping import GroupingInfo, branch_probability_history, grouped_comparison

__all__ = ["grouped_fronts_figure", "grouping_heatmap_figure", "grouping_history_figure"]


def _branch_labels(info: GroupingInfo) -> list[str]:
    return [f"branch {k}" for k in range(info.num_groups)]


def grouping_heatmap_figure(info: GroupingInfo | None) -> go.Figure:
    """Task x branch heatmap of the final probabilities; a slider steps through training.

    The assigned branch of each task is marked with a cross (``meta={"kind":
    "assignment"}``). With a history, the slider's steps restyle the heatmap with each
    recorded matrix, the last step being the final probabilities.

    Args:
        info: The trial's grouping (None: nothing to show).

    Returns:
        The figure.
    """
    title = "Task grouping: probability of each branch per task"
    if info is None:
        return message_figure("No DMTG trial with a recorded grouping", title)
    title += f" (trial {info.trial_id})" if info.trial_id is not None else ""
    if info.probabilities is None:
        return message_figure("This grouping records no learned probabilities", title)
    branches = _branch_labels(info)
    tasks = [html.escape(t) for t in info.tasks]
    fig = go.Figure(
        go.Heatmap(
            z=info.probabilities,
            x=branches,
            y=tasks,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=np.round(info.probabilities, 2),
            texttemplate="%{text}",
            colorbar={"title": {"text": "probability"}},
            hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>",
            meta={"kind": "probabilities", "trial_id": info.trial_id},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[branches[info.assignment[t]] for t in info.tasks],
            y=tasks,
            mode="markers",
            marker={"symbol": "x-thin", "size": 14, "line": {"width": 2, "color": "#d62728"}},
            name="assigned branch",
            hoverinfo="skip",
            meta={"kind": "assignment"},
        )
    )
    frames: list[tuple[int | None, np.ndarray]] = [
        (s.iteration, s.probabilities) for s in info.history
    ]
    if frames:
        frames.append((None, info.probabilities))
        steps = [
            {
                "method": "restyle",
                "args": [{"z": [matrix], "text": [np.round(matrix, 2)]}, [0]],
                "label": "final" if iteration is None else str(iteration),
            }
            for iteration, matrix in frames
        ]
        fig.update_layout(
            sliders=[
                {
                    "active": len(steps) - 1,
                    "currentvalue": {"prefix": "iteration: "},
                    "pad": {"t": 40},
                    "steps": steps,
                }
            ]
        )
    fig.update_layout(
        title=html.escape(title),
        xaxis_title="branch",
        yaxis={"title": "task", "autorange": "reversed"},
        template="plotly_white",
        showlegend=False,
    )
    return fig


def grouping_history_figure(info: GroupingInfo | None) -> go.Figure:
    """Per task, the probability of its final branch over training (one line per task)."""
    title = "Task grouping over training: probability of each task's final branch"
    if info is None:
        return message_figure("No DMTG trial with a recorded grouping", title)
    table = branch_probability_history(info)
    if len(table) == 0:
        return message_figure("This grouping records no history", title)
    fig = go.Figure()
    for k, task in enumerate(table.columns):
        branch = info.assignment[str(task)]
        fig.add_trace(
            go.Scatter(
                x=table.index.to_numpy(),
                y=table[task].to_numpy(dtype=float),
                mode="lines+markers",
                line={"color": PALETTE[k % len(PALETTE)]},
                name=html.escape(f"{task} -> branch {branch}"),
                meta={"kind": "branch_probability", "task": str(task), "branch": branch},
            )
        )
    fig.add_hline(y=1.0 / info.num_groups, line_dash="dot", line_color="#888")
    fig.update_layout(
        title=html.escape(title),
        xaxis_title="iteration",
        yaxis={"title": "probability", "range": [0, 1.02]},
        template="plotly_white",
    )
    return fig


def grouped_fronts_figure(
    trials: pd.DataFrame, objectives: Objectives = DEFAULT_OBJECTIVES
) -> go.Figure:
    """Fronts of methods on the grouped architecture against the same methods ungrouped.

    One colour per base method; the grouped front is dashed with diamonds
    (``meta={"kind": "front", "method": "<base>@grouped", "grouped": True}``), the ungrouped
    one solid. The y-range fits the fronts (see :func:`analysis._front_view.frame_fronts`).

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs (at least two).

    Returns:
        The figure.
    """
    title = "Grouped vs ungrouped Pareto fronts"
    pairs = check_objectives(objectives)
    frame = grouped_comparison(trials)
    if len(frame) == 0:
        return message_figure("No methods were run on a grouped architecture", title)
    if len(pairs) < 2:
        return message_figure("The front figure needs two objectives", title)
    x_name, y_name = _axes(pairs)
    fronts = method_fronts(frame, pairs)
    fronts = fronts[fronts["on_front"]]
    if len(fronts) == 0:
        return message_figure(NO_TRIALS, title)
    bases = list(dict.fromkeys(frame["base_method"]))
    colors = {b: PALETTE[k % len(PALETTE)] for k, b in enumerate(bases)}
    fig = go.Figure()
    for (base, grouped), sub in fronts.groupby(["base_method", "grouped"], sort=False):
        sub = sub.sort_values([x_name, y_name])
        x = sub[x_name].to_numpy(dtype=float) * _scale(x_name)
        y = sub[y_name].to_numpy(dtype=float) * _scale(y_name)
        method = str(sub["method"].iloc[0])
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                line={"color": colors[base], "dash": "dash" if grouped else "solid"},
                marker={
                    "color": colors[base],
                    "size": 8,
                    "symbol": "diamond" if grouped else "circle",
                },
                name=html.escape(method),
                legendgroup=str(base),
                customdata=sub["trial_id"].to_numpy(),
                hovertext=_hover(sub, [(_label(x_name), x), (_label(y_name), y)]),
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"kind": "front", "method": method, "grouped": bool(grouped)},
            )
        )
    _front_layout(fig, title, x_name, y_name)
    return frame_fronts(
        fig,
        y_label=_label(y_name),
        reference_y=0.0 if is_delta(y_name) else None,
        reference_label=_reference_label(y_name, 0.0),
        x_is_sparsity=x_name == "sparsity",
    )
