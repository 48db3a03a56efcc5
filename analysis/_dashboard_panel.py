"""The dashboard's trial panel: what one trial was, how it ended and how it got there.

:func:`trial_details` gathers a trial's facts from the analysis frames (an info object),
:func:`trial_curves_figure` draws its evaluations over training and
:func:`render_trial_panel` lays both out as Dash components.
"""

from __future__ import annotations

import html
import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc
from dash import html as dhtml
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis._figures import message_figure
from analysis._grouping import GroupingInfo, assignment_table, grouping_of, parse_grouping
from analysis._grouping_figures import grouping_heatmap_figure
from analysis._load import StudyFrames
from analysis._tables import MISSING
from study.store import redact_url

__all__ = [
    "CURVE_PANELS",
    "TrialDetails",
    "render_trial_panel",
    "replay_command",
    "trial_curves_figure",
    "trial_details",
    "trial_panel",
]

NO_EVALUATIONS = "No evaluations recorded for this trial"
#: Panels of the curves figure: (title, column prefix or exact column, scale to percent).
CURVE_PANELS: tuple[tuple[str, str, float], ...] = (
    ("Delta_T (%)", "delta_t", 1.0),
    ("sparsity (%)", "sparsity", 100.0),
    ("threshold g(s)", "threshold:", 1.0),
    ("task weight", "weight:", 1.0),
    ("training loss", "loss:", 1.0),
)
_CURVE_HEIGHT = 260
_PALETTE = qualitative.Plotly
_OVERALL_COLOR = "#444444"
_OVERALL_NAMES = {"delta_t": "Delta_T", "sparsity": "overall"}


def replay_command(study: str, trial_id: int, url: str) -> str:
    """The shell command re-running a stored trial, its database password hidden.

    Args:
        study: The study name.
        trial_id: The trial's store id.
        url: The results database URL (its password is replaced by ``***``).

    Returns:
        ``paretune replay STUDY TRIAL_ID --db URL`` with shell quoting where needed.
    """
    parts = ["paretune", "replay", study, str(trial_id), "--db", redact_url(url)]
    return shlex.join(parts)


@dataclass(frozen=True)
class TrialDetails:
    """Everything the trial panel shows about one trial.

    Attributes:
        study: The study name.
        trial_id: The trial's store id.
        method: Its method.
        status: COMPLETE, FAILED, RUNNING, PRUNED or WAITING.
        is_reference: Whether it is the study's dense reference.
        summary: ``(label, text)`` pairs: seed, Delta_T, sparsity, budget used, host...
        params: The searched hyperparameters.
        config: The full trial config (what replay runs).
        metrics: ``(task, metric, value)`` final metrics.
        tasks: ``(task, Delta_T_i, final weight)`` per task (NaN when unknown).
        components: ``(component, sparsity, threshold g(s))`` (NaN when unknown).
        error: The error text of a failed trial.
        replay: The replay command (password hidden).
    """

    study: str
    trial_id: int
    method: str
    status: str
    is_reference: bool
    summary: tuple[tuple[str, str], ...]
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[tuple[str, str, float], ...] = ()
    tasks: tuple[tuple[str, float, float], ...] = ()
    components: tuple[tuple[str, float, float], ...] = ()
    error: str | None = None
    replay: str = ""


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _fmt(value: float, spec: str = ".2f", suffix: str = "") -> str:
    return MISSING if not math.isfinite(value) else f"{value:{spec}}{suffix}"


def _suffixes(row: pd.Series, prefix: str) -> dict[str, float]:
    """``{rest: value}`` of the row's ``<prefix><rest>`` columns with a finite value."""
    out = {}
    for column, value in row.items():
        name = str(column)
        if name.startswith(prefix) and math.isfinite(_float(value)):
            out[name[len(prefix) :]] = _float(value)
    return out


def _summary(row: pd.Series) -> tuple[tuple[str, str], ...]:
    items = [
        ("seed", str(row.get("seed", MISSING))),
        ("status", str(row.get("status", MISSING))),
        ("Delta_T (%)", _fmt(_float(row.get("delta_t")), "+.2f")),
        ("sparsity (%)", _fmt(100.0 * _float(row.get("sparsity")), ".2f")),
        ("iterations", str(row.get("iterations", MISSING))),
        ("wall time (s)", _fmt(_float(row.get("wall_time_s")), ".1f")),
        ("device time (s)", _fmt(_float(row.get("device_s")), ".1f")),
    ]
    parameters = _float(row.get("parameters"))
    if math.isfinite(parameters):
        items.append(("parameters", f"{int(parameters):,}"))
    flops = _float(row.get("flops"))
    if math.isfinite(flops):
        items.append(("training FLOPs", f"{flops:.3g}"))
    where = " / ".join(str(row[k]) for k in ("host", "node_id") if isinstance(row.get(k), str))
    if where:
        items.append(("ran on", where))
    for key in ("started_at", "finished_at"):
        value = row.get(key)
        if isinstance(value, pd.Timestamp) and not pd.isna(value):
            items.append((key.replace("_", " "), value.strftime("%Y-%m-%d %H:%M:%S UTC")))
    return tuple(items)


def trial_details(frames: StudyFrames, trial_id: int, url: str) -> TrialDetails:
    """The facts of one trial of the loaded study.

    Args:
        frames: The loaded study (one study).
        trial_id: The trial's store id.
        url: The results database URL, for the replay command (password hidden).

    Returns:
        The trial's details.

    Raises:
        LookupError: the study has no trial ``trial_id``.
    """
    trials = frames.trials
    rows = trials[trials["trial_id"] == trial_id] if "trial_id" in trials.columns else trials
    study = str(frames.studies[0]["name"]) if frames.studies else ""
    if len(rows) == 0:
        raise LookupError(f"study {study!r} has no trial {trial_id}")
    row = rows.iloc[0]
    study = str(row.get("study", study))
    metrics = []
    for name, value in _suffixes(row, "metric:").items():
        task, _, metric = name.partition(":")
        metrics.append((task, metric, value))
    deltas, weights = _suffixes(row, "delta:"), _suffixes(row, "weight:")
    tasks = [
        (task, deltas.get(task, math.nan), weights.get(task, math.nan))
        for task in dict.fromkeys([*(t for t, _, _ in metrics), *deltas, *weights])
    ]
    sparsity, thresholds = _suffixes(row, "sparsity:"), _suffixes(row, "threshold:")
    components = [
        (name, sparsity.get(name, math.nan), thresholds.get(name, math.nan))
        for name in dict.fromkeys([*sparsity, *thresholds])
    ]
    error = row.get("error")
    params = row.get("params")
    config = row.get("config")
    return TrialDetails(
        study=study,
        trial_id=int(trial_id),
        method=str(row.get("method", "")),
        status=str(row.get("status", "")),
        is_reference=bool(row.get("is_reference", False)),
        summary=_summary(row),
        params=dict(params) if isinstance(params, dict) else {},
        config=dict(config) if isinstance(config, dict) else {},
        metrics=tuple(metrics),
        tasks=tuple(tasks),
        components=tuple(components),
        error=error if isinstance(error, str) and error.strip() else None,
        replay=replay_command(study, int(trial_id), url),
    )


def _curve_columns(evaluations: pd.DataFrame, key: str) -> list[str]:
    if key.endswith(":"):
        return [str(c) for c in evaluations.columns if str(c).startswith(key)]
    columns = [key] if key in evaluations.columns else []
    if key == "sparsity":  # the overall value, then each component
        columns += [str(c) for c in evaluations.columns if str(c).startswith("sparsity:")]
    return columns


def trial_curves_figure(evaluations: pd.DataFrame | None, trial_id: int) -> go.Figure:
    """One trial's periodic evaluations over training iterations.

    One subplot per quantity recorded (see :data:`CURVE_PANELS`): Delta_T, sparsity
    (overall and per component), learned thresholds ``g(s)``, task weights and task
    losses; one trace per column with ``meta={"kind": <column prefix>, "trial_id": ...}``.

    Args:
        evaluations: The evaluations frame (any number of trials).
        trial_id: The trial to draw.

    Returns:
        The figure, or a message figure when the trial has no evaluations.
    """
    title = f"Trial {trial_id} over training"
    if evaluations is None or len(evaluations) == 0 or "trial_id" not in evaluations.columns:
        return message_figure(NO_EVALUATIONS, title)
    rows = evaluations[evaluations["trial_id"] == trial_id].sort_values("iteration")
    panels: list[tuple[str, list[tuple[str, np.ndarray]]]] = []
    for panel_title, key, scale in CURVE_PANELS:
        series = []
        for column in _curve_columns(rows, key):
            values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float) * scale
            if np.isfinite(values).any():
                series.append((column, values))
        if series:
            panels.append((panel_title, series))
    if len(rows) == 0 or not panels:
        return message_figure(NO_EVALUATIONS, title)
    n_cols = min(2, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[t for t, _ in panels])
    iterations = rows["iteration"].to_numpy()
    colors: dict[str, str] = {}
    for k, (_, series) in enumerate(panels):
        row, col = k // n_cols + 1, k % n_cols + 1
        for column, values in series:
            kind, _, name = column.partition(":")
            # one colour per task (its head too) or component, the same in every subplot
            key = name.removeprefix("head:")
            color = (
                _OVERALL_COLOR
                if not name
                else colors.setdefault(key, _PALETTE[len(colors) % len(_PALETTE)])
            )
            fig.add_trace(
                go.Scatter(
                    x=iterations,
                    y=values,
                    mode="lines+markers",
                    name=html.escape(name or _OVERALL_NAMES.get(kind, kind)),
                    line={"color": color},
                    marker={"color": color},
                    legendgroup=kind,
                    legendgrouptitle_text=html.escape(kind),
                    customdata=[trial_id] * len(iterations),
                    meta={"kind": kind, "column": column, "trial_id": int(trial_id)},
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text="iteration", row=row, col=col)
    fig.update_layout(
        title=html.escape(title),
        template="plotly_white",
        height=_CURVE_HEIGHT * n_rows + 80,
        margin={"t": 70, "b": 40},
    )
    return fig


# --- rendering ---------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> dhtml.Table:
    return dhtml.Table(
        [
            dhtml.Thead(dhtml.Tr([dhtml.Th(h) for h in header])),
            dhtml.Tbody([dhtml.Tr([dhtml.Td(cell) for cell in row]) for row in rows]),
        ],
        id=table_id,
        className="panel-table",
    )


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _section(title: str, *children: Any) -> dhtml.Section:
    return dhtml.Section([dhtml.H3(title), *children], className="panel-section")


def _note(text: str) -> dhtml.P:
    return dhtml.P(text, className="note")


def _grouping_section(grouping: GroupingInfo) -> dhtml.Section:
    table = assignment_table(grouping)
    rows = [
        (str(task), str(row["branch"]), _fmt(float(row["probability"]), ".3f"), row.iloc[2])
        for task, row in table.iterrows()
    ]
    children: list[Any] = [
        _table(("task", "branch", "probability", "shares branch with"), rows, "trial-grouping")
    ]
    if grouping.probabilities is not None:
        fig = grouping_heatmap_figure(grouping)
        children.append(
            dcc.Graph(id="trial-grouping-heatmap", figure=fig, config={"displaylogo": False})
        )
    return _section("Task grouping", *children)


def trial_grouping(trials: pd.DataFrame, trial_id: int) -> GroupingInfo | None:
    """The task grouping recorded for ``trial_id`` (None when there is none or it is malformed)."""
    if "grouping" not in trials.columns:
        return None
    rows = trials[trials["trial_id"] == trial_id]
    value = grouping_of(rows["grouping"].iloc[0]) if len(rows) else None
    if value is None:
        return None
    try:
        return parse_grouping(value, trial_id, str(rows["method"].iloc[0]))
    except ValueError:
        return None


def render_trial_panel(
    details: TrialDetails,
    evaluations: pd.DataFrame | None,
    grouping: GroupingInfo | None = None,
) -> dhtml.Div:
    """The trial panel's components for ``details`` and its evaluations' curves.

    Args:
        details: What :func:`trial_details` found.
        evaluations: The evaluations frame (the trial's rows are picked out).
        grouping: The trial's task grouping (DMTG and grouped methods), if any.

    Returns:
        A Dash ``Div``.
    """
    role = " (dense reference)" if details.is_reference else ""
    children: list[Any] = [
        dhtml.H2(f"Trial {details.trial_id} · {details.method}{role}"),
        dhtml.Dl(
            [item for label, text in details.summary for item in (dhtml.Dt(label), dhtml.Dd(text))],
            className="summary",
        ),
    ]
    if details.error:
        children.append(_section("Error", dhtml.Pre(details.error, className="error")))
    children.append(
        _section(
            "Replay",
            dhtml.Pre(details.replay, id="replay-command"),
            _note("Re-runs the trial in this process from its stored config and seed."),
        )
    )
    params = (
        _table(
            ("parameter", "value"),
            [(name, _value_text(value)) for name, value in details.params.items()],
            "trial-params",
        )
        if details.params
        else _note("No searched hyperparameters (a fixed configuration).")
    )
    children.append(_section("Searched hyperparameters", params))
    metrics = (
        _table(
            ("task", "metric", "value"),
            [(task, metric, _fmt(value, ".4g")) for task, metric, value in details.metrics],
            "trial-metrics",
        )
        if details.metrics
        else _note("No final metrics recorded.")
    )
    children.append(_section("Final metrics", metrics))
    if details.tasks:
        children.append(
            _section(
                "Per task",
                _table(
                    ("task", "Delta_T_i (%)", "final task weight"),
                    [
                        (task, _fmt(delta, "+.2f"), _fmt(weight, ".4g"))
                        for task, delta, weight in details.tasks
                    ],
                    "trial-tasks",
                ),
            )
        )
    components = (
        _table(
            ("component", "sparsity (%)", "threshold g(s)"),
            [
                (name, _fmt(100.0 * value, ".2f"), _fmt(threshold, ".4g"))
                for name, value, threshold in details.components
            ],
            "trial-components",
        )
        if details.components
        else _note("No per-component sparsity recorded.")
    )
    children.append(_section("Sparsity per component", components))
    if grouping is not None:
        children.append(_grouping_section(grouping))
    curves = trial_curves_figure(evaluations, details.trial_id)
    children.append(
        _section(
            "Over training",
            dcc.Graph(
                id="trial-curves",
                figure=curves,
                config={"displaylogo": False},
                style={"height": f"{curves.layout.height or 320}px"},
            ),
        )
    )
    config_text = json.dumps(details.config, indent=2, sort_keys=True, default=str)
    children.append(_section("Full config", dhtml.Pre(config_text, id="trial-config")))
    return dhtml.Div(children, className="trial")


def trial_panel(frames: StudyFrames, trial_id: int, url: str) -> dhtml.Div:
    """The trial panel of ``trial_id``, or a one-line message if the study lacks it.

    Args:
        frames: The loaded study, evaluations included.
        trial_id: The trial's store id.
        url: The results database URL (shown in the replay command, password hidden).

    Returns:
        A Dash ``Div``.
    """
    try:
        details = trial_details(frames, trial_id, url)
    except LookupError as error:
        return dhtml.Div(dhtml.P(str(error), className="message"), className="trial")
    grouping = trial_grouping(frames.trials, trial_id)
    return render_trial_panel(details, frames.evaluations, grouping)
