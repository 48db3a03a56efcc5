"""How a front figure frames its data, so that fronts read at a glance.

The maths (which y-range, which points are far off, sparsity as a compression ratio) is
plain numpy; :func:`frame_fronts` applies it to a drawn front figure:

* The dense reference is a horizontal line (at Delta_T = 0 by definition), never a
  point at 0% sparsity that squeezes the x-axis.
* The y-range is fitted to the fronts: Tukey's far-out fences (``FENCE`` times the
  interquartile range beyond the quartiles of the front points) tell far-off values
  apart; every point inside the fences is in range. A point outside is drawn at the edge
  with a triangle pointing off the chart, its hover tells its value, and a note under
  the plot counts them.
* The study's sparsity levels are dotted vertical guides.
* The x-axis shows sparsity in percent or the compression ratio ``1 / (1 - sparsity)``
  on a log axis, where 90, 95 and 99% lie 2x apart instead of crowding the right edge.
  A self-contained figure (the report) carries buttons switching between both.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "X_AXES",
    "AxisFit",
    "compression_ratio",
    "fit_axis",
    "frame_fronts",
]

X_AXES = ("sparsity", "compression")
"""The x-axes a front figure can show: sparsity in percent, or the compression ratio."""
FENCE = 3.0
PAD = 0.06
MIN_SPAN = 1.0
MAX_SPARSITY = 0.9999  # 10,000x: the ratio of a fully pruned model is infinite
COMPRESSION_TICKS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
GUIDE_COLOR = "#888888"
REFERENCE_COLOR = "#444444"
OFF_CHART_SIZE = 11


@dataclass(frozen=True)
class AxisFit:
    """A fitted axis range and what falls outside it."""

    low: float
    high: float

    def clip(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values clipped to the range, below, above)`` (NaN stays NaN)."""
        values = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            below, above = values < self.low, values > self.high
        return np.clip(values, self.low, self.high), below, above


def fit_axis(
    fronts: np.ndarray,
    others: np.ndarray | None = None,
    anchors: Sequence[float] = (),
    fence: float = FENCE,
) -> AxisFit | None:
    """The range showing ``fronts`` (and ``others``, ``anchors``) without far-off values.

    Values of ``fronts`` or ``others`` beyond ``fence`` interquartile ranges from the
    quartiles of ``fronts`` (at least :data:`MIN_SPAN` wide) are far off and left out of
    the range; ``anchors`` (the reference line) are always in it. The range is padded by
    :data:`PAD` of its span on both sides.

    Returns:
        The fit, or None without a finite front value.
    """
    front = np.asarray(fronts, dtype=float)
    front = front[np.isfinite(front)]
    if not len(front):
        return None
    q1, q3 = np.percentile(front, [25, 75])
    spread = max(q3 - q1, MIN_SPAN)
    low_fence, high_fence = q1 - fence * spread, q3 + fence * spread
    pool = np.concatenate([front, np.asarray(others if others is not None else [], float)])
    pool = pool[np.isfinite(pool) & (pool >= low_fence) & (pool <= high_fence)]
    pool = np.concatenate([pool, np.asarray(list(anchors), dtype=float)])
    low, high = float(pool.min()), float(pool.max())
    pad = max(high - low, MIN_SPAN) * PAD
    return AxisFit(low - pad, high + pad)


def compression_ratio(sparsity_percent: np.ndarray | Sequence[float]) -> np.ndarray:
    """``1 / (1 - sparsity)`` of sparsities given in percent (at most 10,000x)."""
    fraction = np.asarray(sparsity_percent, dtype=float) / 100.0
    return 1.0 / (1.0 - np.clip(fraction, 0.0, MAX_SPARSITY))


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.3g}×"


def _guides(
    levels: Sequence[float], compression: bool, reference_y: float | None, reference_label: str
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Shapes and annotations: a dotted line per level, the reference's horizontal line."""
    shapes: list[dict[str, object]] = []
    notes: list[dict[str, object]] = []
    for level in levels:
        ratio = float(compression_ratio([level * 100])[0])
        x = ratio if compression else level * 100
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": x,
                "x1": x,
                "y0": 0,
                "y1": 1,
                "line": {"color": GUIDE_COLOR, "width": 1.5, "dash": "dot"},
                "layer": "below",
                "name": f"level {level:.0%}",
            }
        )
        notes.append(
            {
                "x": math.log10(x) if compression else x,  # on a log axis, in log10
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "yanchor": "bottom",
                "text": f"{level:.0%}" + (f" ({_ratio_text(ratio)})" if compression else ""),
                "showarrow": False,
                "font": {"size": 11, "color": GUIDE_COLOR},
            }
        )
    if reference_y is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": reference_y,
                "y1": reference_y,
                "line": {"color": REFERENCE_COLOR, "width": 2, "dash": "dash"},
                "layer": "below",
                "name": "dense reference",
            }
        )
        notes.append(
            {
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": reference_y,
                "yref": "y",
                "yanchor": "bottom",
                "text": html.escape(reference_label),
                "showarrow": False,
                "font": {"size": 11, "color": REFERENCE_COLOR},
            }
        )
    return shapes, notes


def _x_axis(compression: bool, title: str) -> dict[str, object]:
    if not compression:
        return {"type": "linear", "title": {"text": title}, "autorange": True}
    return {
        "type": "log",
        "title": {"text": "compression ratio 1 / (1 − sparsity) (log scale)"},
        "tickvals": list(COMPRESSION_TICKS),
        "ticktext": [f"{t}×" for t in COMPRESSION_TICKS],
        "autorange": True,
    }


def frame_fronts(
    fig: go.Figure,
    *,
    y_label: str,
    front_kinds: Sequence[str] = ("front",),
    reference_y: float | None = None,
    reference_label: str = "dense reference",
    levels: Sequence[float] = (),
    x_is_sparsity: bool = True,
    x_axis: str = "sparsity",
    toggle: bool = False,
) -> go.Figure:
    """Frames a drawn front figure in place (see the module docstring) and returns it.

    Args:
        fig: Scatter traces with x in percent sparsity (when ``x_is_sparsity``); traces
            whose ``meta["kind"]`` is in ``front_kinds`` are the fronts the y-range fits.
        y_label: What y shows, for the hover of far-off points.
        front_kinds: The ``meta["kind"]`` of the front traces.
        reference_y: Where the dense reference's line goes (None: no line).
        reference_label: Its label.
        levels: Sparsity levels (fractions) drawn as guides.
        x_is_sparsity: Whether x is sparsity (otherwise levels and the compression axis
            do not apply).
        x_axis: ``"sparsity"`` or ``"compression"``.
        toggle: Add buttons switching the x-axis (for a self-contained page).
    """
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    scatters = [t for t in fig.data if isinstance(t, go.Scatter | go.Scattergl)]
    kinds = set(front_kinds)
    fronts = [t for t in scatters if isinstance(t.meta, dict) and t.meta.get("kind") in kinds]
    values = [np.asarray(t.y, dtype=float) for t in fronts if t.y is not None]
    others = [np.asarray(t.y, dtype=float) for t in scatters if t.y is not None]
    fit = fit_axis(
        np.concatenate(values) if values else np.array([]),
        np.concatenate(others) if others else None,
        () if reference_y is None else (reference_y,),
    )
    off: set[str] = set()
    if fit is not None:
        for trace in scatters:
            off |= _clip_trace(trace, fit, y_label)
        fig.update_yaxes(range=[fit.low, fit.high], autorange=False)
    notes = []
    if off:
        notes.append(
            {
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": 0,
                "yref": "paper",
                "yanchor": "bottom",
                "text": f"▲▼ {len(off)} trial(s) beyond the axis, drawn at its edge",
                "showarrow": False,
                "font": {"size": 11, "color": REFERENCE_COLOR},
                "bgcolor": "rgba(255,255,255,0.8)",
            }
        )
    if not x_is_sparsity:
        shapes, guides = _guides((), False, reference_y, reference_label)
        fig.update_layout(shapes=shapes, annotations=[*fig.layout.annotations, *guides, *notes])
        return fig
    title = fig.layout.xaxis.title.text or "sparsity (%)"
    sparsity_x = [None if t.x is None else np.asarray(t.x, dtype=float) for t in scatters]
    ratio_x = [None if x is None else compression_ratio(x) for x in sparsity_x]
    compression = x_axis == "compression"
    kept = list(fig.layout.annotations)
    layouts = {}
    for mode in (False, True):
        shapes, guides = _guides(levels, mode, reference_y, reference_label)
        layouts[mode] = {
            "xaxis": _x_axis(mode, title),
            "shapes": shapes,
            "annotations": [*kept, *guides, *notes],
        }
    for trace, x in zip(scatters, ratio_x if compression else sparsity_x, strict=True):
        trace.x = x
    fig.update_layout(
        xaxis=layouts[compression]["xaxis"],
        shapes=layouts[compression]["shapes"],
        annotations=layouts[compression]["annotations"],
    )
    if toggle:
        indices = [k for k, t in enumerate(fig.data) if isinstance(t, go.Scatter | go.Scattergl)]
        buttons = [
            {
                "label": label,
                "method": "update",
                "args": [
                    {"x": [list(x) if x is not None else None for x in xs]},
                    layouts[mode],
                    indices,
                ],
            }
            for label, mode, xs in (
                ("x: sparsity (%)", False, sparsity_x),
                ("x: compression ratio", True, ratio_x),
            )
        ]
        fig.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "buttons": buttons,
                    "active": int(compression),
                    "x": 1,
                    "xanchor": "right",
                    "y": 1.1,
                    "yanchor": "bottom",
                    "showactive": True,
                    "pad": {"r": 4, "t": 0},
                }
            ]
        )
    return fig


def _clip_trace(trace: go.Scatter | go.Scattergl, fit: AxisFit, y_label: str) -> set[str]:
    """Moves the trace's far-off points to the axis edge and marks them; returns the
    trials (``customdata``, else the point's index) moved."""
    if trace.y is None:
        return set()
    y = np.asarray(trace.y, dtype=float)
    clipped, below, above = fit.clip(y)
    outside = below | above
    if not outside.any():
        return set()
    trace.y = clipped
    if trace.fill:  # a band: clipping its outline is enough
        return set()
    trace.cliponaxis = False  # the whole triangle shows at the edge
    count = len(y)
    ids = list(trace.customdata) if trace.customdata is not None else []
    moved = {
        str(ids[k]) if len(ids) == count else f"{trace.name}:{k}" for k in np.flatnonzero(outside)
    }
    symbol = trace.marker.symbol
    symbols = list(symbol) if isinstance(symbol, list | tuple) else [symbol or "circle"] * count
    size = trace.marker.size
    sizes = list(size) if isinstance(size, list | tuple) else [size or 6] * count
    for k in np.flatnonzero(outside):
        symbols[k] = "triangle-down" if below[k] else "triangle-up"
        sizes[k] = OFF_CHART_SIZE
    trace.marker.symbol = symbols
    trace.marker.size = sizes
    if "markers" not in (trace.mode or "markers"):
        trace.mode = f"{trace.mode}+markers"
    hover = trace.hovertext
    if isinstance(hover, list | tuple) and len(hover) == count:
        texts = list(hover)
        for k in np.flatnonzero(outside):
            texts[k] = f"{texts[k]}<br><i>off the chart: {html.escape(y_label)} {y[k]:.2f}</i>"
        trace.hovertext = texts
    return moved
