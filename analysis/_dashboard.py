"""A browsable dashboard of a results store (Dash), refreshing while a study runs.

The page holds a study dropdown (every study of the database, or of every
``paretune-runs/*`` folder), a methods checklist and an x-axis choice (sparsity or
compression ratio), the driver's state (id ``status``: running with its trials'
iterations and ETA, not running, or finished), the Pareto front overlay of
:func:`analysis.pareto_front_figure` (id ``overlay``), a trial panel (id ``trial-panel``)
filled by clicking a point or a row of the trial table, the methods compared level by
level (id ``levels``), the sortable trial table filtered by method and state (id
``trials-table``, paged on the server), and a list of the report's registered figures
(id ``figure``, see :mod:`analysis._figure_registry`) drawing the chosen one (id
``figure-view``). A ``dcc.Interval`` reloads the study every few seconds; the figures keep
their zoom across reloads (``uirevision``).

Every callback is a thin wrapper around plain functions (:func:`study_choices`,
:func:`overlay_view`, :func:`refresh_overlay`, :func:`study_view`, :func:`show_trial`,
:func:`figure_choices`, :func:`refresh_figure`, and :mod:`analysis._dashboard_tables`), so
the logic is tested without a browser. Dash serves its own scripts (``serve_locally``):
the page loads nothing from another host.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from analysis._compare import completed_trials, method_order, without_reference
from analysis._dashboard_panel import trial_panel
from analysis._dashboard_tables import (
    DriverState,
    LevelView,
    TrialPage,
    driver_lines,
    frame_table,
    level_view,
    sort_of,
    trial_page,
    trials_grid,
)
from analysis._figure_registry import FIGURES, FigureContext, ReportFigure
from analysis._figures import (
    is_message_figure,
    message_figure,
    method_colors,
    pareto_front_figure,
)
from analysis._front_view import X_AXES
from analysis._load import StudyFrames, list_studies, load_study
from study.store import ResultStore, StoreError, redact_url

__all__ = [
    "DEFAULT_REFRESH_S",
    "NO_METHODS",
    "OverlayView",
    "StudyCatalog",
    "StudySource",
    "StudyView",
    "TableQuery",
    "clicked_trial_id",
    "create_app",
    "figure_choices",
    "figure_view",
    "overlay_view",
    "refresh_figure",
    "refresh_overlay",
    "serve",
    "show_trial",
    "study_choices",
    "study_message",
    "study_view",
]

DEFAULT_REFRESH_S = 5.0
NO_METHODS = "Select at least one method"
CLICK_HINT = "Click a point of the overlay or a row of the trial table to see its trial."
OVERLAY_TITLE = "Pareto fronts per method"
OVERLAY_HEIGHT = 520
OVERLAY_FIGURE = "fig-overlay"
"""The registered figure the overlay shows interactively: the figure list leaves it out."""
NO_FIGURES = "No figures registered"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { margin: 0 0 0.8rem; font-size: 1.5rem; }
.controls { display: flex; gap: 2rem; align-items: center; flex-wrap: wrap; }
.controls label.title { font-weight: 600; margin-right: 0.5rem; }
#study { min-width: 18rem; }
#methods label { margin-right: 1rem; }
#status { color: #555; font-size: 0.9rem; margin: 0.6rem 0; }
.message { background: #fff6d6; border-left: 4px solid #e0b400; padding: 0.6rem 1rem; }
.note { color: #555; font-size: 0.9rem; }
.trial h2 { margin-bottom: 0.3rem; }
.summary { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 1rem;
           font-size: 0.9rem; }
.summary dt { color: #555; } .summary dd { margin: 0; }
.panel-table { border-collapse: collapse; font-size: 0.9rem; }
.panel-table th, .panel-table td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem;
                                   text-align: left; }
pre { background: #f6f6f6; padding: 0.6rem; overflow: auto; max-height: 24rem; }
pre.error { background: #fdecea; }
#status .driver { color: #333; }
#status .progress { color: #555; font-family: ui-monospace, monospace; font-size: 0.85rem; }
section.block { margin-top: 1.8rem; }
section.block h2 { font-size: 1.2rem; margin-bottom: 0.4rem; }
.table-wrap { max-width: 100%; overflow-x: auto; }
#levels table { border-collapse: collapse; font-size: 0.9rem; }
#levels th, #levels td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
#levels .num { text-align: right; font-variant-numeric: tabular-nums; }
.filters { display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: 0.5rem; }
.filters > div { min-width: 16rem; }
.pager { display: flex; gap: 1rem; align-items: center; margin-top: 0.5rem; }
#figures { margin-top: 2rem; }
#figure { max-width: 28rem; }
"""

_INDEX = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>@CSS@</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>""".replace("@CSS@", _CSS)

T = TypeVar("T")


class StudySource:
    """Reads a results store for the dashboard from several request threads.

    The store is opened on first use (never created: a missing database is an error
    shown on the page) and reopened after a failure, so a database that appears or comes
    back later is picked up by the next refresh.

    Args:
        url: The store's SQLAlchemy URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: ResultStore | None = None
        self._lock = threading.Lock()
        self._frames: dict[tuple[str, bool], tuple[Any, StudyFrames]] = {}

    def _use(self, work: Callable[[ResultStore], T]) -> T:
        with self._lock:
            if self._store is None:
                self._store = ResultStore(self.url, create=False, retry_timeout=5.0)
            store = self._store
        try:
            return work(store)
        except StoreError:
            self._reset(store)
            raise

    def _reset(self, store: ResultStore) -> None:
        with self._lock:
            if self._store is store:
                self._store = None
        store.close()

    def studies(self) -> pd.DataFrame:
        """One row per stored study (see :func:`analysis._load.list_studies`).

        Raises:
            StoreError: the database is missing or unreachable.
        """
        return self._use(list_studies)

    def frames(self, study: str, *, evaluations: bool = True) -> StudyFrames:
        """The loaded study, read again only when it changed since the last call.

        Raises:
            StoreError: the database is unreachable or has no such study.
        """

        def read(store: ResultStore) -> StudyFrames:
            version = store.study_version(study)
            cached = self._frames.get((study, evaluations))
            if cached is not None and cached[0] == version:
                return cached[1]
            frames = load_study(store, study, evaluations=evaluations)
            self._frames[(study, evaluations)] = (version, frames)
            return frames

        return self._use(read)

    def url_of(self, study: str) -> str:
        """The database URL holding ``study``."""
        return self.url

    def driver_note(self, study: str) -> str | None:
        """``driver not running since ...`` for a RUNNING study whose driver died."""
        from study._driver import driver_note

        return self._use(lambda store: driver_note(store, store.get_study(study)))

    def skipped(self) -> list[str]:
        """Databases left out of :meth:`studies` (none: one store either reads or raises)."""
        return []

    def close(self) -> None:
        """Releases the store's connections."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


class StudyCatalog:
    """Several results stores behind one study dropdown (``paretune dashboard`` over every
    ``paretune-runs/*`` folder).

    A study is chosen by its name; when two stores hold studies of the same name, each is
    named ``NAME @ LABEL`` (the store's label: its folder). A store that cannot be read is
    left out of :meth:`studies` and named by :meth:`skipped`; the others are still offered.

    Args:
        urls: The stores' SQLAlchemy URLs.
        labels: A short name per store (default: the URL with its password hidden).
    """

    def __init__(self, urls: Sequence[str], labels: Sequence[str] | None = None) -> None:
        self.sources = [StudySource(url) for url in urls]
        self.labels = list(labels) if labels is not None else [redact_url(u) for u in urls]
        self.url = ", ".join(redact_url(u) for u in urls)
        self._where: dict[str, tuple[StudySource, str]] = {}
        self._skipped: list[str] = []

    def studies(self) -> pd.DataFrame:
        """One row per study of every readable store; ``study`` is the name to choose by."""
        frames, skipped, where = [], [], {}
        for source, label in zip(self.sources, self.labels, strict=True):
            try:
                frame = source.studies()
            except StoreError as error:
                skipped.append(f"skipped {label}: {error}")
                continue
            frames.append((source, label, frame))
        names = [str(n) for _, _, frame in frames for n in frame["study"]]
        rows = []
        for source, label, frame in frames:
            frame = frame.copy()
            keys = [n if names.count(n) == 1 else f"{n} @ {label}" for n in frame["study"]]
            where.update(
                {key: (source, str(n)) for key, n in zip(keys, frame["study"], strict=True)}
            )
            frame["study"] = keys
            rows.append(frame)
        self._where, self._skipped = where, skipped
        if not rows:
            if skipped and len(skipped) == len(self.sources):
                raise StoreError("; ".join(skipped))
            return list_studies_frame()
        return pd.concat(rows, ignore_index=True)

    def _resolve(self, key: str) -> tuple[StudySource, str]:
        if key not in self._where:
            self.studies()
        if key not in self._where:
            raise StoreError(f"unknown study {key!r}; choose one of: {', '.join(self._where)}")
        return self._where[key]

    def frames(self, study: str, *, evaluations: bool = True) -> StudyFrames:
        """The loaded study (by its name in :meth:`studies`)."""
        source, name = self._resolve(study)
        return source.frames(name, evaluations=evaluations)

    def url_of(self, study: str) -> str:
        return self._resolve(study)[0].url

    def driver_note(self, study: str) -> str | None:
        source, name = self._resolve(study)
        return source.driver_note(name)

    def skipped(self) -> list[str]:
        return list(self._skipped)

    def close(self) -> None:
        for source in self.sources:
            source.close()


def list_studies_frame() -> pd.DataFrame:
    """An empty study listing with :func:`analysis._load.list_studies`' columns."""
    columns = ["study", "status", "created_at", "objectives", "methods", "trials", "complete"]
    return pd.DataFrame(columns=columns)


# --- plain functions behind the callbacks ------------------------------------------------
def study_choices(
    source: StudySource | StudyCatalog, current: str | None = None
) -> tuple[list[dict[str, str]], str | None, str | None]:
    """The study dropdown's options and value, and a message when there is nothing.

    Args:
        source: The store.
        current: The study selected now (kept while it exists).

    Returns:
        ``(options, value, message)``: ``value`` is ``current`` if still stored, else the
        newest study; ``message`` explains an empty or unreadable store.
    """
    try:
        studies = source.studies()
    except StoreError as error:
        return [], None, str(error)
    skipped = "; ".join(source.skipped()) or None
    names = [str(n) for n in studies["study"]]
    if not names:
        return [], None, skipped or f"No studies in {redact_url(source.url)} yet."
    options = [
        {"label": f"{row.study} ({row.complete}/{row.trials} complete)", "value": str(row.study)}
        for row in studies.itertuples()
    ]
    value = current if current in names else names[-1]
    return options, value, skipped


def study_message(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> str | None:
    """Why a study's overlay is empty (no trials, none completed), else None."""
    if len(trials) == 0:
        return "No trials recorded for this study yet."
    if len(completed_trials(trials, objectives)) == 0:
        status = trials["status"].astype(str)
        failed = int((status == "FAILED").sum())
        return (
            f"No completed trials yet: {failed} failed, {len(trials) - failed} running, "
            "waiting or pruned. The fronts appear once a trial completes."
        )
    return None


def _status_line(trials: pd.DataFrame) -> str:
    counts = trials["status"].astype(str).str.lower().value_counts() if len(trials) else {}
    parts = [
        f"{int(counts[s])} {s}"
        for s in ("complete", "running", "failed", "pruned", "waiting")
        if s in counts
    ]
    now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S UTC")
    return f"{len(trials)} trials" + (f": {', '.join(parts)}" if parts else "") + f" · {now}"


@dataclass(frozen=True)
class OverlayView:
    """What the overlay callback shows.

    Attributes:
        figure: The front overlay (or a message figure).
        methods: Every method of the study, in order (the checklist's options).
        selected: The methods drawn (the checklist's value).
        status: A one-line summary of the study's trials.
        message: Why nothing is drawn, if so.
    """

    figure: go.Figure
    methods: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    status: str = ""
    message: str | None = None


def _recolor(fig: go.Figure, colors: dict[str, str]) -> None:
    """Colours traces by their ``meta.method`` so a method keeps its colour when others
    are hidden."""
    for trace in fig.data:
        meta = trace.meta if isinstance(trace.meta, dict) else {}
        color = colors.get(str(meta.get("method")))
        if color is not None:
            trace.marker.color = color
            if getattr(trace, "line", None) is not None:
                trace.line.color = color


def _plain_customdata(fig: go.Figure) -> None:
    """Trial ids as text: plotly serialises numeric arrays as typed (base64) arrays, whose
    values Dash's ``clickData`` leaves out (plotly/plotly.py#5119); text stays a plain
    JSON list and :func:`clicked_trial_id` parses it back."""
    for trace in fig.data:
        if trace.customdata is not None:
            trace.customdata = [str(int(i)) for i in trace.customdata]


def _message_view(message: str, study: str | None = None) -> OverlayView:
    fig = message_figure(message, OVERLAY_TITLE)
    fig.update_layout(uirevision=study or "", height=OVERLAY_HEIGHT)
    return OverlayView(fig, message=message)


def overlay_view(
    frames: StudyFrames,
    selected: Sequence[str] | None = None,
    known: Sequence[str] | None = None,
    x_axis: str = "sparsity",
) -> OverlayView:
    """The front overlay of a loaded study, limited to the selected methods.

    Args:
        frames: The loaded study (evaluations not needed).
        selected: Methods to draw; None draws all (a newly chosen study).
        known: Methods the checklist offered before; methods found since are selected too,
            so a method starting mid-study shows up without a click.
        x_axis: ``"sparsity"`` or ``"compression"`` (see :func:`pareto_front_figure`).

    Returns:
        The view; with no trials, no completed trials or no method selected the figure is
        a message figure and :attr:`OverlayView.message` says why. The checklist offers
        the methods with trials of their own (the dense reference is the figure's line).
    """
    trials = frames.trials
    study = str(frames.studies[0]["name"]) if frames.studies else ""
    methods = tuple(method_order(without_reference(trials)))
    if selected is None:
        chosen = list(methods)
    else:
        new = [m for m in methods if m not in set(known or ())]
        wanted = set(selected) | set(new)
        chosen = [m for m in methods if m in wanted]
    status = _status_line(trials)
    try:
        objectives = frames.objectives
        message = study_message(trials, objectives)
    except ValueError as error:
        return _message_view(str(error), study)
    if message is None and not chosen:
        message = NO_METHODS
    if message is not None:
        view = _message_view(message, study)
        return OverlayView(view.figure, methods, tuple(chosen), status, message)
    shown = trials[trials["method"].astype(str).isin(chosen)]
    config = (frames.studies[0].get("config") or {}) if frames.studies else {}
    levels = (config.get("budget") or {}).get("sparsity_levels") or ()
    try:
        fig = pareto_front_figure(shown, objectives, levels=levels, x_axis=x_axis)
    except ValueError as error:  # fewer than two objectives
        return _message_view(str(error), study)
    if is_message_figure(fig):  # the selected methods have no completed trial
        message = str(fig.layout.meta["message"])
    _recolor(fig, method_colors(method_order(trials)))
    _plain_customdata(fig)
    fig.update_layout(
        uirevision=study,  # keep zoom and pan across refreshes of the same study
        height=OVERLAY_HEIGHT,
        clickmode="event",
        title=f"{OVERLAY_TITLE} · {study}",
    )
    return OverlayView(fig, methods, tuple(chosen), status, message)


def refresh_overlay(
    source: StudySource | StudyCatalog,
    study: str | None,
    selected: Sequence[str] | None = None,
    known: Sequence[str] | None = None,
) -> OverlayView:
    """Loads ``study`` and builds its overlay (a message view if it cannot be read).

    Args:
        source: The store.
        study: The study name (None: no study chosen).
        selected: See :func:`overlay_view`.
        known: See :func:`overlay_view`.

    Returns:
        The view.
    """
    return study_view(source, study, selected, known).overlay


@dataclass(frozen=True)
class TableQuery:
    """What the trial table shows: its filters, sort order and page."""

    methods: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    sort_by: tuple[dict[str, str], ...] = ()
    page: int = 0


@dataclass(frozen=True)
class StudyView:
    """Everything the page shows of one loaded study.

    Attributes:
        overlay: The front overlay and its checklist.
        levels: The methods compared level by level (None: not loaded).
        page: The trial table's page (None: not loaded).
        driver: What the study's driver is doing.
    """

    overlay: OverlayView
    levels: LevelView | None = None
    page: TrialPage | None = None
    driver: DriverState = field(default_factory=DriverState)


def study_view(
    source: StudySource | StudyCatalog,
    study: str | None,
    selected: Sequence[str] | None = None,
    known: Sequence[str] | None = None,
    x_axis: str = "sparsity",
    query: TableQuery | None = None,
) -> StudyView:
    """Loads ``study`` once and builds what the page shows of it.

    Args:
        source: The store.
        study: The study name (None: no study chosen).
        selected: See :func:`overlay_view`.
        known: See :func:`overlay_view`.
        x_axis: See :func:`overlay_view`.
        query: The trial table's filters, sort order and page.

    Returns:
        The view; a study that cannot be read gives a message overlay and nothing else.
    """
    if not study:
        return StudyView(_message_view("No study selected."))
    try:
        frames = source.frames(study, evaluations=False)
        note = source.driver_note(study)
    except StoreError as error:
        return StudyView(_message_view(str(error), study))
    overlay = overlay_view(frames, selected, known, x_axis if x_axis in X_AXES else "sparsity")
    if note:
        overlay = replace(overlay, status=f"{overlay.status} · {note}")
    query = query or TableQuery()
    page = trial_page(
        frames.trials,
        methods=query.methods,
        states=query.states,
        sort_by=query.sort_by,
        page=query.page,
    )
    try:
        levels = level_view(frames)
    except ValueError:  # the studies disagree on their objectives
        levels = None
    return StudyView(overlay, levels, page, driver_lines(frames, note))


def clicked_trial_id(click_data: dict[str, Any] | None) -> int | None:
    """The trial id of a plotly click (the point's ``customdata``), if any."""
    points = (click_data or {}).get("points") or []
    if not points:
        return None
    value = points[0].get("customdata")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def figure_choices() -> list[dict[str, str]]:
    """The figure list's options: every registered figure but the overlay, in report order."""
    return [
        {"label": spec.title, "value": spec.id}
        for spec in FIGURES.ordered()
        if spec.id != OVERLAY_FIGURE
    ]


def _message_figures(message: str, figure_id: str = "", title: str = "") -> list[ReportFigure]:
    return [ReportFigure(figure_id, title, message_figure(message, title))]


def figure_view(frames: StudyFrames, figure_id: str) -> list[ReportFigure]:
    """The registered figure ``figure_id`` of a loaded study, as the report draws it.

    The context is the report's (level 90%, budget in trials, the study's
    ``sparsity_levels``). A figure that cannot be drawn gives one message figure saying
    why instead of breaking the page.

    Args:
        frames: The loaded study, evaluations included.
        figure_id: A registered figure's id.

    Returns:
        Its figures (one, or several for builders such as one per method).
    """
    study = str(frames.studies[0]["name"]) if frames.studies else ""
    try:
        spec = FIGURES.get(figure_id)
    except KeyError as error:
        return _message_figures(str(error), figure_id)
    config = (frames.studies[0].get("config") or {}) if frames.studies else {}
    levels = (config.get("budget") or {}).get("sparsity_levels") or ()
    try:
        context = FigureContext.of(frames.trials, frames.evaluations, frames.objectives)
        context = replace(context, levels=tuple(levels) or (context.sparsity,))
        figures = spec.figures(context)
    except Exception as error:  # one broken figure must not break the page
        message = f"{spec.title} could not be drawn: {error}"
        return _message_figures(message, spec.id, spec.title)
    if not figures:
        return _message_figures("Nothing to show for this study", spec.id, spec.title)
    for figure in figures:
        figure.figure.update_layout(uirevision=f"{study}:{figure.div_id}")
    return figures


def refresh_figure(
    source: StudySource | StudyCatalog, study: str | None, figure_id: str | None
) -> list[ReportFigure]:
    """Loads ``study`` and builds the registered figure ``figure_id`` (see :func:`figure_view`).

    Returns:
        The figures, or one message figure when no study or figure is chosen or the study
        cannot be read.
    """
    if not study:
        return _message_figures("No study selected.")
    if not figure_id:
        return _message_figures(NO_FIGURES if not figure_choices() else "No figure selected.")
    try:
        frames = source.frames(study)
    except StoreError as error:
        return _message_figures(str(error), figure_id)
    return figure_view(frames, figure_id)


def _figure_graphs(figures: Sequence[ReportFigure]) -> list[html.Section]:
    return [
        html.Section(
            [
                html.H3(figure.title) if figure.title else None,
                dcc.Graph(
                    id=f"study-{figure.div_id}" if figure.div_id else "study-figure-message",
                    figure=figure.figure,
                    config={"displaylogo": False},
                ),
            ],
            className="study-figure",
        )
        for figure in figures
    ]


def _hint(text: str = CLICK_HINT, class_name: str = "note") -> html.Div:
    return html.Div(html.P(text, className=class_name))


def show_trial(
    source: StudySource | StudyCatalog,
    study: str | None,
    click_data: dict[str, Any] | None,
    trial_id: int | None = None,
) -> Any:
    """The trial panel for a click on the overlay (a hint when nothing is clicked).

    Args:
        source: The store (its URL is shown in the replay command, password hidden).
        study: The study shown.
        click_data: The overlay's ``clickData``.
        trial_id: A trial chosen otherwise (a row of the trial table), instead of a click.

    Returns:
        Dash components.
    """
    trial_id = trial_id if trial_id is not None else clicked_trial_id(click_data)
    if trial_id is None or not study:
        return _hint()
    try:
        frames = source.frames(study)
        url = source.url_of(study)
    except StoreError as error:
        return _hint(str(error), "message")
    return trial_panel(frames, trial_id, url)


# --- the app -----------------------------------------------------------------------------
def _layout(refresh_s: float) -> html.Div:
    return html.Div(
        [
            html.H1("paretune dashboard"),
            html.Div(
                [
                    html.Div(
                        [
                            html.Label("Study", htmlFor="study", className="title"),
                            dcc.Dropdown(id="study", clearable=False, searchable=True),
                        ],
                        className="control",
                    ),
                    html.Div(
                        [
                            html.Label("Methods", className="title"),
                            dcc.Checklist(id="methods", options=[], value=[], inline=True),
                        ],
                        className="control",
                    ),
                    html.Div(
                        [
                            html.Label("x-axis", className="title"),
                            dcc.RadioItems(
                                id="x-axis",
                                options=[
                                    {"label": "sparsity (%)", "value": "sparsity"},
                                    {"label": "compression ratio", "value": "compression"},
                                ],
                                value="sparsity",
                                inline=True,
                            ),
                        ],
                        className="control",
                    ),
                ],
                className="controls",
            ),
            html.Div(id="store-message"),
            html.Div(id="status"),
            dcc.Graph(
                id="overlay",
                figure=message_figure("Loading…", OVERLAY_TITLE),
                config={"displaylogo": False},
                style={"height": f"{OVERLAY_HEIGHT}px"},
            ),
            dcc.Interval(
                id="refresh",
                interval=max(int(refresh_s * 1000), 250),
                disabled=refresh_s <= 0,
            ),
            html.Div(_hint(), id="trial-panel"),
            html.Section(id="levels", className="block"),
            _trials_section(),
            _figures_section(),
        ]
    )


def _trials_section() -> html.Section:
    return html.Section(
        [
            html.H2("Trials: one row per trial of the study (click a row to see it)"),
            html.Div(
                [
                    html.Div(
                        dcc.Dropdown(id="table-methods", multi=True, placeholder="every method")
                    ),
                    html.Div(
                        dcc.Dropdown(id="table-states", multi=True, placeholder="every state")
                    ),
                ],
                className="filters",
            ),
            trials_grid(),
            html.Div(
                [
                    html.Button("‹ previous", id="table-prev", n_clicks=0),
                    html.Span(id="table-pager", className="note"),
                    html.Button("next ›", id="table-next", n_clicks=0),
                ],
                className="pager",
            ),
            dcc.Store(id="table-page", data=0),
        ],
        className="block",
        id="trials",
    )


def _levels_children(levels: LevelView | None) -> list[Any]:
    if levels is None:
        return []
    children: list[Any] = [html.H2(levels.title or "Methods level by level")]
    if len(levels.table):
        children.append(frame_table(levels.table, "levels-table"))
    else:
        children.append(html.P("No completed trials to compare yet.", className="note"))
    children += [html.P(sentence, className="note") for sentence in levels.sentences]
    return children


def _status_children(view: StudyView) -> list[Any]:
    overlay, driver = view.overlay, view.driver
    children: list[Any] = [html.Div(overlay.status)]
    if driver.lines:
        children.append(html.Div(driver.lines[0], className="driver"))
        children += [html.Div(line, className="progress") for line in driver.lines[1:]]
    return children


def _figures_section() -> html.Div:
    options = figure_choices()
    return html.Div(
        [
            html.H2("Figures"),
            dcc.Dropdown(
                id="figure",
                options=options,
                value=options[0]["value"] if options else None,
                clearable=False,
                searchable=True,
            ),
            html.Div(id="figure-view"),
        ],
        id="figures",
    )


def create_app(
    url: str | Sequence[str],
    *,
    study: str | None = None,
    refresh_s: float = DEFAULT_REFRESH_S,
    labels: Sequence[str] | None = None,
) -> Dash:
    """The dashboard of the results store at ``url`` (or of several stores).

    Args:
        url: The store's SQLAlchemy URL, or several (read only; passwords never shown).
        study: The study selected first (default: the newest).
        refresh_s: Seconds between reloads of the study; 0 turns reloading off.
        labels: Short names of the stores, when several (see :class:`StudyCatalog`).

    Returns:
        The Dash app (its Flask server is ``app.server``).
    """
    if refresh_s < 0:
        raise ValueError(f"refresh_s must be >= 0 seconds; got {refresh_s}")
    source: StudySource | StudyCatalog = (
        StudySource(url) if isinstance(url, str) else StudyCatalog(url, labels)
    )
    app = Dash(
        __name__,
        title="paretune dashboard",
        update_title="",
        serve_locally=True,
        index_string=_INDEX,
        include_assets_files=False,
    )
    app.layout = _layout(refresh_s)

    @app.callback(
        Output("study", "options"),
        Output("study", "value"),
        Output("store-message", "children"),
        Input("refresh", "n_intervals"),
        State("study", "value"),
    )
    def _studies(_: int | None, current: str | None) -> tuple[Any, Any, Any]:
        options, value, message = study_choices(source, current or study)
        box = html.P(message, className="message") if message else None
        return options, value if value != current else no_update, box

    table_inputs = {"trials-grid", "table-methods", "table-states", "table-prev", "table-next"}

    @app.callback(
        Output("overlay", "figure"),
        Output("methods", "options"),
        Output("methods", "value"),
        Output("status", "children"),
        Output("levels", "children"),
        Output("trials-grid", "rowData"),
        Output("table-page", "data"),
        Output("table-pager", "children"),
        Output("table-methods", "options"),
        Output("table-states", "options"),
        Input("study", "value"),
        Input("methods", "value"),
        Input("x-axis", "value"),
        Input("refresh", "n_intervals"),
        Input("trials-grid", "columnState"),
        Input("table-methods", "value"),
        Input("table-states", "value"),
        Input("table-prev", "n_clicks"),
        Input("table-next", "n_clicks"),
        State("methods", "options"),
        State("table-page", "data"),
    )
    def _view(
        chosen: str | None,
        selected: list[str] | None,
        x_axis: str | None,
        _: int | None,
        columns: list[dict[str, Any]] | None,
        table_methods: list[str] | None,
        table_states: list[str] | None,
        __: int | None,
        ___: int | None,
        options: list[Any] | None,
        page: int | None,
    ) -> tuple[Any, ...]:
        trigger = ctx.triggered_id
        fresh = trigger in (None, "study")
        known = [o["value"] if isinstance(o, dict) else str(o) for o in options or []]
        page = int(page or 0) + {"table-prev": -1, "table-next": 1}.get(str(trigger), 0)
        if trigger in ("table-methods", "table-states", "trials-grid", "study"):
            page = 0  # a new filter or order starts on its first page
        query = TableQuery(
            tuple(table_methods or ()), tuple(table_states or ()), sort_of(columns), page
        )
        view = study_view(
            source, chosen, None if fresh else selected, known, x_axis or "sparsity", query
        )
        rows = view.page
        table = (
            (
                rows.rows,
                rows.page,
                f"page {rows.page + 1} of {rows.page_count} · {rows.total} trial(s)",
                list(rows.methods),
                list(rows.states),
            )
            if rows is not None
            else ([], 0, "", [], [])
        )
        if trigger in table_inputs:  # only the table changed: the rest stays as it is
            return (no_update,) * 5 + table
        overlay = view.overlay
        return (
            overlay.figure,
            list(overlay.methods),
            list(overlay.selected),
            _status_children(view),
            _levels_children(view.levels),
            *table,
        )

    @app.callback(
        Output("trial-panel", "children"),
        Input("overlay", "clickData"),
        Input("trials-grid", "cellClicked"),
        Input("study", "value"),
    )
    def _trial(
        click_data: dict[str, Any] | None, cell: dict[str, Any] | None, chosen: str | None
    ) -> Any:
        if ctx.triggered_id == "study":
            return _hint()
        if ctx.triggered_id == "trials-grid":
            row = (cell or {}).get("rowId")
            return show_trial(source, chosen, None, int(row)) if row is not None else no_update
        return show_trial(source, chosen, click_data)

    app.clientside_callback(  # a row chosen below the panel brings the panel into view
        """function(cell) {
            if (cell) {
                const panel = document.getElementById("trial-panel");
                if (panel) { panel.scrollIntoView({behavior: "smooth", block: "start"}); }
            }
            return window.dash_clientside.no_update;
        }""",
        Output("trial-panel", "className"),
        Input("trials-grid", "cellClicked"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("figure-view", "children"),
        Input("study", "value"),
        Input("figure", "value"),
        Input("refresh", "n_intervals"),
    )
    def _figure(chosen: str | None, figure_id: str | None, _: int | None) -> Any:
        return _figure_graphs(refresh_figure(source, chosen, figure_id))

    return app


def serve(
    url: str | Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8050,
    debug: bool = False,
    *,
    study: str | None = None,
    refresh_s: float = DEFAULT_REFRESH_S,
    labels: Sequence[str] | None = None,
) -> None:
    """Serves the dashboard until interrupted (binds ``host``: loopback by default).

    Args:
        url: The store's SQLAlchemy URL, or several.
        host: Interface to listen on; anything but loopback exposes the study's configs
            to the network without authentication.
        port: TCP port.
        debug: Dash's debug mode (hot reload and the in-page error overlay).
        study: The study selected first.
        refresh_s: Seconds between reloads; 0 turns reloading off.
        labels: Short names of the stores, when several.
    """
    app = create_app(url, study=study, refresh_s=refresh_s, labels=labels)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app.logger.setLevel(logging.WARNING)
    options: dict[str, Any] = {"dev_tools_silence_routes_logging": True}
    if "dev_tools_disable_version_check" in inspect.signature(app.run).parameters:
        options["dev_tools_disable_version_check"] = True  # Dash 3+: no call to plotly.com
    app.run(host=host, port=port, debug=debug, **options)
