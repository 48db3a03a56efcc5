"""Plotly figures of a study: compute a small info object from the frames, then draw it.

Every ``*_figure`` function takes the analysis frames and returns a
:class:`plotly.graph_objects.Figure`; with nothing to show it returns a figure holding a
one-line message instead of raising. Traces that show trials carry the trial ids in
``customdata`` (so a click can be resolved to a trial) and ``meta`` tells what a trace is:
``{"kind": "front" | "all_trials" | ..., "method": ...}``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis._compare import (
    BUDGETS,
    DEFAULT_OBJECTIVES,
    Objectives,
    check_objectives,
    completed_trials,
    hypervolume_vs_budget,
    method_fronts,
    method_order,
    without_reference,
)
from analysis._figure_registry import FIGURES, FigureContext, ReportFigure, unique_slug
from analysis._front_view import REFERENCE_COLOR, X_AXES, frame_fronts
from analysis._tables import select_at_sparsity

__all__ = [
    "NO_TRIALS",
    "component_sparsity_figure",
    "hypervolume_budget_figure",
    "is_delta",
    "is_message_figure",
    "message_figure",
    "method_colors",
    "parallel_coordinates_figure",
    "pareto_front_figure",
    "task_metrics_figure",
    "trajectories_figure",
]

NO_TRIALS = "No completed trials yet"
LEVEL_PARAM = "target_sparsity"
PALETTE = qualitative.Plotly
MAX_HOVER_PARAMS = 12
FADED_OPACITY = 0.25
BUDGET_LABELS = {
    "trials": "trials finished",
    "iterations": "training iterations",
    "wall_time_s": "wall time (s)",
    "device_s": "device time (s)",
    "flops": "training FLOPs",
}
OBJECTIVE_LABELS = {"delta_t": "Delta_T (%)", "sparsity": "sparsity (%)"}


def message_figure(message: str, title: str = "") -> go.Figure:
    """A blank figure showing ``message`` in its centre.

    Args:
        message: The text to show (escaped).
        title: Optional figure title.

    Returns:
        The figure.
    """
    fig = go.Figure()
    fig.add_annotation(
        text=html.escape(message),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16},
    )
    fig.update_layout(
        title=html.escape(title),
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"message": message},
        template="plotly_white",
    )
    return fig


def is_message_figure(fig: go.Figure) -> bool:
    """Whether ``fig`` is a :func:`message_figure` (nothing to show)."""
    meta = fig.layout.meta
    return isinstance(meta, dict) and "message" in meta


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """A stable colour per method (plotly's qualitative palette, cycled)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def _scale(name: str) -> float:
    return 100.0 if name == "sparsity" or name.startswith("sparsity:") else 1.0


def _label(name: str) -> str:
    if name in OBJECTIVE_LABELS:
        return OBJECTIVE_LABELS[name]
    if name.startswith("sparsity:"):
        return f"sparsity {name.split(':', 1)[1]} (%)"
    return name


def _params_of(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The searched hyperparameters of each row (``params`` dicts, else ``param:*``)."""
    if "params" in frame.columns:
        return [p if isinstance(p, dict) else {} for p in frame["params"].tolist()]
    columns = [c for c in frame.columns if str(c).startswith("param:")]
    records = frame[columns].to_dict("records") if columns else [{} for _ in range(len(frame))]
    return [{str(k).split(":", 1)[1]: v for k, v in r.items() if not _missing(v)} for r in records]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def _hover(frame: pd.DataFrame, lines: Sequence[tuple[str, np.ndarray]]) -> list[str]:
    """Hover text per row: trial id, method, seed, sparsity level (a study with
    ``sparsity_levels`` gives each trial its ``target_sparsity``), the given values and
    the searched parameters."""
    ids = frame["trial_id"].tolist()
    methods = frame["method"].astype(str).tolist()
    seeds = frame["seed"].tolist() if "seed" in frame.columns else [None] * len(frame)
    params = _params_of(frame)
    out = []
    for i in range(len(frame)):
        head = f"<b>trial {html.escape(str(ids[i]))}</b> · {html.escape(methods[i])}"
        if seeds[i] is not None and not _missing(seeds[i]):
            head += f" · seed {html.escape(str(seeds[i]))}"
        level = params[i].get(LEVEL_PARAM)
        if isinstance(level, int | float) and not isinstance(level, bool):
            head += f" · level {float(level):.0%}"
        parts = [head]
        parts += [f"{html.escape(label)}: {values[i]:.2f}" for label, values in lines]
        items = list(params[i].items())
        parts += [
            f"{html.escape(str(k))} = {html.escape(_fmt(v))}" for k, v in items[:MAX_HOVER_PARAMS]
        ]
        if len(items) > MAX_HOVER_PARAMS:
            parts.append(f"… {len(items) - MAX_HOVER_PARAMS} more")
        out.append("<br>".join(parts))
    return out


@dataclass(frozen=True)
class PointSet:
    """Points of one trace: coordinates, trial ids and hover text."""

    x: np.ndarray
    y: np.ndarray
    trial_ids: np.ndarray
    hover: list[str]


@dataclass(frozen=True)
class MethodFront:
    """One method's Pareto front and all its completed trials."""

    method: str
    color: str
    front: PointSet
    trials: PointSet


@dataclass(frozen=True)
class ParetoFrontInfo:
    """What the front overlay shows."""

    x_label: str
    y_label: str
    connect: bool
    methods: tuple[MethodFront, ...] = field(default_factory=tuple)
    x_name: str = "sparsity"
    y_name: str = "delta_t"
    reference: float | None = None


def _axes(pairs: Sequence[tuple[str, str]]) -> tuple[str, str]:
    names = [n for n, _ in pairs]
    x = "sparsity" if "sparsity" in names else names[min(1, len(names) - 1)]
    y = "delta_t" if "delta_t" in names and x != "delta_t" else next(n for n in names if n != x)
    return x, y


def _pareto_front_info(trials: pd.DataFrame, objectives: Objectives) -> ParetoFrontInfo:
    pairs = check_objectives(objectives)
    if len(pairs) < 2:
        raise ValueError(f"the front overlay needs at least two objectives; got {list(pairs)}")
    x_name, y_name = _axes(pairs)
    fronts = method_fronts(without_reference(trials), pairs)  # the reference is a line
    colors = method_colors(method_order(trials))
    methods = []
    for method in method_order(fronts):
        sub = fronts[fronts["method"].astype(str) == method]
        x = sub[x_name].to_numpy(dtype=float) * _scale(x_name)
        y = sub[y_name].to_numpy(dtype=float) * _scale(y_name)
        hover = _hover(sub, [(_label(x_name), x), (_label(y_name), y)])
        ids = sub["trial_id"].to_numpy()
        on = sub["on_front"].to_numpy(dtype=bool)
        order = np.flatnonzero(on)[np.lexsort((y[on], x[on]))]
        methods.append(
            MethodFront(
                method=method,
                color=colors[method],
                front=PointSet(x[order], y[order], ids[order], [hover[i] for i in order]),
                trials=PointSet(x, y, ids, hover),
            )
        )
    return ParetoFrontInfo(
        _label(x_name),
        _label(y_name),
        len(pairs) == 2,
        tuple(methods),
        x_name,
        y_name,
        _reference_value(trials, pairs, y_name),
    )


def is_delta(name: str) -> bool:
    """Whether objective ``name`` is scored against the dense reference (0 for it)."""
    return name in ("delta_t", "delta_m") or name.startswith("delta:")


def _reference_value(
    trials: pd.DataFrame, pairs: Sequence[tuple[str, str]], name: str
) -> float | None:
    """Where the dense reference lies on objective ``name``: 0 for a Delta, else the mean
    of the completed reference trials (None without one)."""
    if is_delta(name):
        return 0.0
    if "is_reference" not in trials.columns:
        return None
    done = completed_trials(trials, pairs)
    references = done[done["is_reference"].fillna(False).astype(bool)]
    values = pd.to_numeric(references[name], errors="coerce").dropna()
    return float(values.mean()) * _scale(name) if len(values) else None


def _reference_label(name: str, value: float) -> str:
    if is_delta(name):
        return f"dense reference ({_label(name).split(' (')[0]} = 0)"
    return f"dense reference ({_label(name)} {value:.4g})"


def _front_layout(fig: go.Figure, title: str, x_name: str, y_name: str, **extra: object) -> None:
    """The common layout of figures drawing fronts: objective axes, white template."""
    fig.update_layout(
        title=title,
        xaxis_title=_label(x_name),
        yaxis_title=_label(y_name),
        template="plotly_white",
        hovermode="closest",
        **extra,
    )


def _scatter(n_points: int) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if n_points > 5000 else go.Scatter


def pareto_front_figure(
    trials: pd.DataFrame,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    *,
    levels: Sequence[float] = (),
    x_axis: str = "sparsity",
    toggle: bool = False,
) -> go.Figure:
    """Every method's Pareto front overlaid, with all its completed trials faded behind.

    x is sparsity in percent (or the compression ratio) and y is Delta_T for the default
    objectives (otherwise the first two objectives). Each method has one front trace
    (lines and markers, named after the method, ``meta={"kind": "front", ...}``) and one
    faded trace of all its trials (named ``"<method> (all trials)"``, hidden from the
    legend, ``meta={"kind": "all_trials", ...}``). With three or more objectives the fronts
    are drawn as markers only (their points are not ordered along a curve). The dense
    reference trials are no points: the reference is a dashed horizontal line (Delta_T =
    0); the y-range fits the fronts, with far-off points drawn at its edge as triangles;
    ``levels`` are dotted guides (see :func:`analysis._front_view.frame_fronts`). Hovering
    a point shows its trial, method, seed, level and searched parameters.

    Args:
        trials: The trials frame.
        objectives: ``(column, direction)`` pairs.
        levels: Sparsity levels (fractions) drawn as guides, e.g. the study's
            ``sparsity_levels``.
        x_axis: ``"sparsity"`` (percent) or ``"compression"`` (``1 / (1 - sparsity)``, log
            scale); only when x is sparsity.
        toggle: Add buttons switching the x-axis in the figure itself (the report).

    Returns:
        The figure.
    """
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    title = "Pareto fronts per method"
    info = _pareto_front_info(trials, objectives)
    if not info.methods:
        return message_figure(NO_TRIALS, title)
    fig = go.Figure()
    for entry in info.methods:
        cls = _scatter(len(entry.trials.x))
        fig.add_trace(
            cls(
                x=entry.trials.x,
                y=entry.trials.y,
                mode="markers",
                name=f"{html.escape(entry.method)} (all trials)",
                legendgroup=entry.method,
                showlegend=False,
                opacity=FADED_OPACITY,
                marker={"color": entry.color, "size": 5},
                customdata=entry.trials.trial_ids,
                hovertext=entry.trials.hover,
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"kind": "all_trials", "method": entry.method},
            )
        )
    for entry in info.methods:
        fig.add_trace(
            go.Scatter(
                x=entry.front.x,
                y=entry.front.y,
                mode="lines+markers" if info.connect else "markers",
                line={"shape": "linear", "color": entry.color},
                marker={"color": entry.color, "size": 8},
                name=html.escape(entry.method),
                legendgroup=entry.method,
                customdata=entry.front.trial_ids,
                hovertext=entry.front.hover,
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"kind": "front", "method": entry.method},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=info.x_label,
        yaxis_title=info.y_label,
        template="plotly_white",
        hovermode="closest",
        legend_title_text="method (front)",
        margin={"t": 110},
    )
    reference = info.reference
    return frame_fronts(
        fig,
        y_label=info.y_label,
        reference_y=reference,
        reference_label="" if reference is None else _reference_label(info.y_name, reference),
        levels=levels,
        x_is_sparsity=info.x_name == "sparsity",
        x_axis=x_axis,
        toggle=toggle,
    )


@dataclass(frozen=True)
class TaskMetricsInfo:
    """Metric columns to plot and the completed trials that carry them."""

    metrics: tuple[str, ...]
    frame: pd.DataFrame
    colors: dict[str, str]


def _metric_columns(trials: pd.DataFrame) -> list[str]:
    """The first ``metric:<task>:*`` column of each task, in column order."""
    seen: dict[str, str] = {}
    for column in trials.columns:
        name = str(column)
        if name.startswith("metric:") and name.count(":") >= 2:
            seen.setdefault(name.split(":")[1], name)
    return list(seen.values())


def task_metrics_figure(
    trials: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    objectives: Objectives = DEFAULT_OBJECTIVES,
) -> go.Figure:
    """Per-task metric against sparsity, one subplot per metric and one trace per method;
    the dense reference's value is a dashed line in each subplot.

    Args:
        trials: The trials frame.
        metrics: ``metric:<task>:<metric>`` columns; defaults to the first metric of each
            task.
        objectives: ``(column, direction)`` pairs (trials need finite values in them).

    Returns:
        The figure.
    """
    title = "Task metrics vs sparsity"
    frame = completed_trials(trials, objectives)
    if len(frame) == 0:
        return message_figure(NO_TRIALS, title)
    columns = list(metrics) if metrics is not None else _metric_columns(frame)
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ValueError(
            f"metrics must be columns of the trials frame; {unknown[0]!r} is not one "
            f"(available: {', '.join(_metric_columns(frame)) or 'none'})"
        )
    columns = [c for c in columns if frame[c].notna().any()]
    if not columns:
        return message_figure("No per-task metrics recorded", title)
    colors = method_colors(method_order(trials))
    is_reference = (
        frame["is_reference"].fillna(False).astype(bool)
        if "is_reference" in frame.columns
        else pd.Series(False, index=frame.index)
    )
    references, frame = frame[is_reference], frame[~is_reference]
    info = TaskMetricsInfo(tuple(columns), frame, colors)
    n_cols = min(3, len(info.metrics))
    n_rows = math.ceil(len(info.metrics) / n_cols)
    titles = [html.escape(" · ".join(c.split(":")[1:])) for c in info.metrics]
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles)
    for k, column in enumerate(info.metrics):
        row, col = k // n_cols + 1, k % n_cols + 1
        for method in method_order(info.frame):
            sub = info.frame[info.frame["method"].astype(str) == method]
            sub = sub[sub[column].notna()].sort_values("sparsity")
            x = sub["sparsity"].to_numpy(dtype=float) * 100.0
            y = sub[column].to_numpy(dtype=float)
            fig.add_trace(
                _scatter(len(sub))(
                    x=x,
                    y=y,
                    mode="markers",
                    name=html.escape(method),
                    legendgroup=method,
                    showlegend=k == 0,
                    marker={"color": info.colors[method], "size": 6},
                    customdata=sub["trial_id"].to_numpy(),
                    hovertext=_hover(sub, [("sparsity (%)", x), (column, y)]),
                    hovertemplate="%{hovertext}<extra></extra>",
                    meta={"kind": "metric", "method": method, "metric": column},
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text="sparsity (%)", row=row, col=col)
        value = pd.to_numeric(references[column], errors="coerce").mean()
        if math.isfinite(value):  # the dense reference: a line, not a point at 0%
            fig.add_hline(
                y=float(value),
                row=row,
                col=col,
                line={"color": REFERENCE_COLOR, "dash": "dash", "width": 1.5},
                annotation_text="dense",
                annotation_position="top left",
                annotation_font={"size": 10, "color": REFERENCE_COLOR},
            )
    fig.update_layout(title=title, template="plotly_white", height=350 * n_rows)
    return fig


def component_sparsity_figure(
    trials: pd.DataFrame,
    trial_ids: Sequence[int] | None = None,
    sparsity: float = 0.9,
    objectives: Objectives = DEFAULT_OBJECTIVES,
) -> go.Figure:
    """Per-component sparsity of selected trials as grouped bars (the allocation view).

    Args:
        trials: The trials frame.
        trial_ids: Trials to show; defaults to each method's front trial at ``sparsity``
            (see :func:`analysis.select_at_sparsity`).
        sparsity: Level used to pick the default trials.
        objectives: ``(column, direction)`` pairs defining the fronts.

    Returns:
        The figure: x = component, one bar trace per trial.
    """
    title = f"Sparsity per component (front trials near {sparsity * 100:g}% sparsity)"
    frame = completed_trials(trials, objectives)
    if len(frame) == 0:
        return message_figure(NO_TRIALS, title)
    components = [c for c in frame.columns if str(c).startswith("sparsity:")]
    if trial_ids is None:
        chosen = select_at_sparsity(frame, sparsity, objectives, closest=True)
    else:
        wanted = list(trial_ids)
        chosen = frame[frame["trial_id"].isin(wanted)]
        missing = sorted(set(wanted) - set(chosen["trial_id"].tolist()))
        if missing:
            raise ValueError(f"trial_ids must name completed trials; trial {missing[0]} is not one")
        title = "Sparsity per component"
    if not components or len(chosen) == 0:
        return message_figure("No per-component sparsity recorded", title)
    colors = method_colors(method_order(trials))
    labels = [html.escape(str(c).split(":", 1)[1]) for c in components]
    fig = go.Figure()
    for _, row in chosen.iterrows():
        method = str(row["method"])
        values = pd.to_numeric(row[components], errors="coerce").to_numpy(dtype=float) * 100
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=html.escape(f"{method} #{row['trial_id']} ({float(row['sparsity']):.1%})"),
                marker={"color": colors.get(method, PALETTE[0])},
                customdata=[row["trial_id"]] * len(labels),
                hovertemplate="%{x}: %{y:.2f}%<extra>%{fullData.name}</extra>",
                meta={"kind": "components", "method": method, "trial_id": int(row["trial_id"])},
            )
        )
    fig.update_layout(
        title=html.escape(title),
        barmode="group",
        xaxis_title="component",
        yaxis_title="sparsity (%)",
        yaxis_range=[0, 100],
        template="plotly_white",
    )
    return fig


def hypervolume_budget_figure(
    trials: pd.DataFrame,
    budget: str = "trials",
    objectives: Objectives = DEFAULT_OBJECTIVES,
    reference: Sequence[float] | np.ndarray | None = None,
) -> go.Figure:
    """Hypervolume of each method's completed trials against budget spent (a step curve).

    Args:
        trials: The trials frame.
        budget: One of ``trials``, ``iterations``, ``wall_time_s``, ``device_s``, ``flops``.
        objectives: ``(column, direction)`` pairs.
        reference: Reference point; defaults to :func:`analysis.objective_reference`.

    Returns:
        The figure, one trace per method.
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    title = f"Hypervolume vs budget ({BUDGET_LABELS[budget]})"
    if len(completed_trials(trials, objectives)) == 0:
        return message_figure(NO_TRIALS, title)
    if budget != "trials" and (
        budget not in trials.columns or pd.to_numeric(trials[budget], errors="coerce").isna().all()
    ):
        return message_figure(f"Budget {budget!r} is not recorded", title)
    curves = hypervolume_vs_budget(trials, budget, objectives, reference)
    colors = method_colors(method_order(trials))
    fig = go.Figure()
    for method in method_order(curves):
        sub = curves[curves["method"] == method]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([[0.0], sub["budget"].to_numpy(dtype=float)]),
                y=np.concatenate([[0.0], sub["hypervolume"].to_numpy(dtype=float)]),
                mode="lines",
                line={"shape": "hv", "color": colors[method]},
                name=html.escape(method),
                customdata=np.concatenate([[-1], sub["trial_id"].to_numpy()]),
                meta={"kind": "hypervolume", "method": method},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=BUDGET_LABELS[budget],
        yaxis_title="hypervolume",
        template="plotly_white",
    )
    return fig


def _trajectory_columns(evaluations: pd.DataFrame) -> tuple[list[str], list[str]]:
    thresholds = [str(c) for c in evaluations.columns if str(c).startswith("threshold:")]
    weights = [str(c) for c in evaluations.columns if str(c).startswith("weight:")]
    return thresholds, weights


def trajectories_figure(
    evaluations: pd.DataFrame | None,
    trial_ids: Sequence[int] | None = None,
    max_trials: int = 4,
) -> go.Figure:
    """Learned thresholds ``g(s)`` and task weights over iterations (AdapMTL's dynamics).

    Args:
        evaluations: The evaluations frame (``threshold:<component>``, ``weight:<task>``).
        trial_ids: Trials to show; defaults to the first ``max_trials`` trials (by id) with
            any threshold or weight recorded.
        max_trials: Cap for the default selection.

    Returns:
        The figure: thresholds on the left, task weights on the right, one trace per
        (trial, component or task).
    """
    title = "Thresholds and task weights over training"
    empty = "No threshold or task-weight trajectories recorded"
    if evaluations is None or len(evaluations) == 0 or "trial_id" not in evaluations.columns:
        return message_figure(empty, title)
    thresholds, weights = _trajectory_columns(evaluations)
    columns = thresholds + weights
    if not columns:
        return message_figure(empty, title)
    has_values = evaluations[columns].notna().any(axis=1)
    candidates = sorted(pd.unique(evaluations.loc[has_values, "trial_id"]).tolist())
    if trial_ids is None:
        selected = candidates[:max_trials]
    else:
        selected = [t for t in trial_ids if t in set(candidates)]
    if not selected:
        return message_figure(empty, title)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["threshold g(s) per component", "task weight per task"]
    )
    for k, trial_id in enumerate(selected):
        rows = evaluations[evaluations["trial_id"] == trial_id].sort_values("iteration")
        method = str(rows["method"].iloc[0]) if "method" in rows.columns else ""
        dash = ["solid", "dash", "dot", "dashdot"][k % 4]
        for col, group in ((1, thresholds), (2, weights)):
            for column in group:
                values = rows[column].to_numpy(dtype=float)
                if not np.isfinite(values).any():
                    continue
                name = column.split(":", 1)[1]
                fig.add_trace(
                    go.Scatter(
                        x=rows["iteration"].to_numpy(),
                        y=values,
                        mode="lines+markers",
                        line={"dash": dash},
                        name=html.escape(f"#{trial_id} {method} {name}"),
                        legendgroup=str(trial_id),
                        customdata=[trial_id] * len(rows),
                        meta={"kind": column.split(":", 1)[0], "trial_id": int(trial_id)},
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text="iteration")
    fig.update_layout(title=title, template="plotly_white")
    return fig


def _parcoords_dimension(label: str, values: pd.Series) -> dict[str, object]:
    numeric = pd.to_numeric(values, errors="coerce")
    if values.dtype != bool and numeric.notna().all():
        return {"label": html.escape(label), "values": numeric.to_numpy(dtype=float)}
    text = values.astype(str)
    categories = sorted(pd.unique(text).tolist())
    codes = text.map({c: i for i, c in enumerate(categories)}).to_numpy(dtype=float)
    return {
        "label": html.escape(label),
        "values": codes,
        "tickvals": list(range(len(categories))),
        "ticktext": [html.escape(c) for c in categories],
    }


def parallel_coordinates_figure(
    trials: pd.DataFrame,
    method: str | None = None,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    color: str = "delta_t",
) -> go.Figure:
    """Parallel coordinates of the searched hyperparameters, coloured by Delta_T.

    Uses the ``param:*`` columns recorded for every completed trial shown (a parameter
    missing on some trials is left out), followed by the objectives.

    Args:
        trials: The trials frame.
        method: Restrict to one method (parameters differ between methods).
        objectives: ``(column, direction)`` pairs, appended as the last axes.
        color: Column colouring the lines.

    Returns:
        The figure.
    """
    pairs = check_objectives(objectives)
    title = "Hyperparameters" + (f" of {method}" if method else "")
    frame = completed_trials(trials, pairs)
    if method is not None:
        frame = frame[frame["method"].astype(str) == method]
    if len(frame) == 0:
        return message_figure(NO_TRIALS, title)
    params = [c for c in frame.columns if str(c).startswith("param:") and frame[c].notna().all()]
    if not params:
        return message_figure("No searched hyperparameters recorded", title)
    dimensions = [_parcoords_dimension(str(c).split(":", 1)[1], frame[c]) for c in params]
    for name, _ in pairs:
        dimensions.append(_parcoords_dimension(_label(name), frame[name] * _scale(name)))
    colour = pd.to_numeric(frame.get(color, pd.Series(np.nan, index=frame.index)))
    line: dict[str, object] = {"color": colour.to_numpy(dtype=float), "colorscale": "Viridis"}
    line["showscale"] = True
    line["colorbar"] = {"title": {"text": html.escape(_label(color))}}
    fig = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line=line,
            customdata=frame["trial_id"].to_numpy(),
            meta={"kind": "parcoords", "method": method},
        )
    )
    fig.update_layout(title=html.escape(title), template="plotly_white")
    return fig


# --- the report's figures ------------------------------------------------------------------
@FIGURES.figure("fig-overlay", "Pareto fronts", order=10)
def _overlay(context: FigureContext) -> go.Figure:
    return pareto_front_figure(
        context.trials, context.objectives, levels=context.levels, toggle=True
    )


@FIGURES.figure("fig-task-metrics", "Task metrics", order=20)
def _task_metrics(context: FigureContext) -> go.Figure:
    return task_metrics_figure(context.trials, objectives=context.objectives)


@FIGURES.figure("fig-components", "Sparsity allocation", order=30)
def _components(context: FigureContext) -> go.Figure:
    return component_sparsity_figure(
        context.trials, sparsity=context.sparsity, objectives=context.objectives
    )


@FIGURES.figure("fig-hv-budget", "Hypervolume vs budget", order=40)
def _hypervolume_budget(context: FigureContext) -> go.Figure:
    return hypervolume_budget_figure(
        context.trials, context.budget, context.objectives, context.reference
    )


@FIGURES.figure("fig-trajectories", "Thresholds and task weights", order=50)
def _trajectories(context: FigureContext) -> go.Figure:
    """The trials closest to the report's level; any trials when those learn no thresholds."""
    trials, evaluations = context.trials, context.evaluations
    chosen = (
        select_at_sparsity(trials, context.sparsity, context.objectives, closest=True)
        if len(trials)
        else None
    )
    ids = None if chosen is None or len(chosen) == 0 else chosen["trial_id"].tolist()
    figure = trajectories_figure(evaluations, ids)
    if ids is not None and is_message_figure(figure):
        figure = trajectories_figure(evaluations)
    return figure


@FIGURES.figure("fig-parcoords", "Hyperparameters", order=60)
def _parallel_coordinates(context: FigureContext) -> list[ReportFigure]:
    """One figure per method with searched hyperparameters (``fig-parcoords-<method>``);
    ``fig-parcoords`` alone when no method has any."""
    taken: set[str] = set()
    figures = []
    for method in method_order(completed_trials(context.trials, context.objectives)):
        figure = parallel_coordinates_figure(context.trials, method, context.objectives)
        if not is_message_figure(figure):
            div_id = f"fig-parcoords-{unique_slug(method, taken)}"
            figures.append(ReportFigure(div_id, f"Hyperparameters of {method}", figure))
    if figures:
        return figures
    figure = parallel_coordinates_figure(context.trials, None, context.objectives)
    return [ReportFigure("fig-parcoords", "Hyperparameters", figure)]
