"""Plotly figure of fronts across seeds (the numbers come from :mod:`analysis._seeds`)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis._compare import DEFAULT_OBJECTIVES, Objectives, check_objectives, method_order
from analysis._figures import (
    NO_TRIALS,
    _axes,
    _front_layout,
    _label,
    _reference_label,
    _scale,
    is_delta,
    message_figure,
    method_colors,
)
from analysis._front_view import frame_fronts
from analysis._seeds import seed_bands, seed_fronts

__all__ = ["seed_fronts_figure"]

SEED_DASHES = ("dot", "dash", "dashdot", "longdash", "longdashdot")
BAND_OPACITY = 0.15


def _rgba(color: str, alpha: float) -> str:
    value = color.lstrip("#")
    if len(value) != 6:
        return color
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def seed_fronts_figure(
    trials: pd.DataFrame, objectives: Objectives = DEFAULT_OBJECTIVES
) -> go.Figure:
    """Each method's front per seed (thin dashed lines) over its band across seeds.

    The band (``meta={"kind": "seed_band", ...}``) spans the smallest to the largest over
    seeds of the best Delta_T at or above each sparsity, with the mean as a solid line
    (``"seed_mean"``); every seed's own front is a dashed trace (``"seed_front"``, with
    ``seed`` in ``meta``). Reference trials are left out: a Delta's reference is the
    dashed line at 0, and the y-range fits the fronts (see
    :func:`analysis._front_view.frame_fronts`).

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.

    Returns:
        The figure (a message figure without completed trials or with a single seed).
    """
    title = "Pareto fronts per seed, with the band across seeds"
    pairs = check_objectives(objectives)
    if len(pairs) < 2:
        return message_figure("The seed fronts need two objectives", title)
    x_name, y_name = _axes(pairs)
    fronts = seed_fronts(trials, pairs)
    if len(fronts) == 0:
        return message_figure(NO_TRIALS, title)
    if fronts["seed"].nunique() < 2:
        return message_figure("Only one seed: nothing to compare across seeds", title)
    colors = method_colors(method_order(trials))
    fig = go.Figure()
    if (x_name, y_name) == ("sparsity", "delta_t"):
        direction = dict(pairs)["delta_t"]
        for band in seed_bands(trials, pairs, "delta_t", direction):
            x = band.levels * 100.0
            color = colors.get(band.method, "#636efa")
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([x, x[::-1]]),
                    y=np.concatenate([band.high, band.low[::-1]]),
                    fill="toself",
                    fillcolor=_rgba(color, BAND_OPACITY),
                    line={"width": 0},
                    hoverinfo="skip",
                    name=html.escape(f"{band.method} (min-max over {band.n_seeds} seeds)"),
                    legendgroup=band.method,
                    showlegend=False,
                    meta={"kind": "seed_band", "method": band.method},
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=band.mean,
                    mode="lines",
                    line={"color": color, "width": 3},
                    name=html.escape(f"{band.method} (mean of {band.n_seeds} seeds)"),
                    legendgroup=band.method,
                    meta={"kind": "seed_mean", "method": band.method},
                )
            )
    on_front = fronts[fronts["on_seed_front"]]
    for method in method_order(on_front):
        sub = on_front[on_front["method"].astype(str) == method]
        for k, seed in enumerate(sorted(pd.unique(sub["seed"]))):
            rows = sub[sub["seed"] == seed].sort_values([x_name, y_name])
            fig.add_trace(
                go.Scatter(
                    x=rows[x_name].to_numpy(dtype=float) * _scale(x_name),
                    y=rows[y_name].to_numpy(dtype=float) * _scale(y_name),
                    mode="lines+markers",
                    line={"color": colors.get(method), "width": 1, "dash": SEED_DASHES[k % 5]},
                    marker={"color": colors.get(method), "size": 5},
                    name=html.escape(f"{method} seed {seed}"),
                    legendgroup=method,
                    customdata=rows["trial_id"].to_numpy(),
                    meta={"kind": "seed_front", "method": method, "seed": int(seed)},
                )
            )
    _front_layout(fig, title, x_name, y_name)
    return frame_fronts(
        fig,
        y_label=_label(y_name),
        front_kinds=("seed_front", "seed_mean"),
        reference_y=0.0 if is_delta(y_name) else None,
        reference_label=_reference_label(y_name, 0.0),
        x_is_sparsity=x_name == "sparsity",
    )
