"""The dashboard's tables below the front overlay: the trials, page by page, and the
methods compared level by level; plus what the study's driver is doing.

Plain functions of the analysis frames (tested without a browser); :mod:`analysis._dashboard`
lays them out. The trial table is paged and sorted here, not in the browser, so a study of
tens of thousands of trials sends one page at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from dash import html as dhtml

from analysis._compare import without_reference
from analysis._levels import compare_seeds, level_sentences
from analysis._load import StudyFrames
from analysis._tables import MISSING, format_cells
from study._live import progress_lines, read_progress

__all__ = [
    "PAGE_SIZE",
    "TRIAL_COLUMNS",
    "DriverState",
    "LevelView",
    "TrialPage",
    "driver_lines",
    "frame_table",
    "level_view",
    "sort_of",
    "trial_page",
    "trial_table",
    "trials_grid",
]

PAGE_SIZE = 20
STATES = ("COMPLETE", "RUNNING", "WAITING", "PRUNED", "FAILED")
MAX_PARAMS_TEXT = 400
#: The trial table's columns: (id, header, kind) with kind ``text``, ``int`` or a decimals
#: count for numbers.
TRIAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("trial", "trial", "int"),
    ("method", "method", "text"),
    ("seed", "seed", "int"),
    ("state", "state", "text"),
    ("level", "level (%)", "0"),
    ("sparsity", "sparsity (%)", "2"),
    ("delta_t", "Delta_T (%)", "2"),
    ("delta_m", "Delta_m (%)", "2"),
    ("iterations", "iterations", "int"),
    ("wall_time_s", "wall time (s)", "1"),
    ("params", "searched parameters", "text"),
)
#: Column widths in pixels (the parameters take the rest).
WIDTHS = {"trial": 72, "method": 140, "seed": 64, "state": 112, "level": 88, "sparsity": 110}
WIDTHS |= {"delta_t": 108, "delta_m": 110, "iterations": 96, "wall_time_s": 112}


def _numbers(frame: pd.DataFrame, column: str, scale: float = 1.0) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce") * scale


def _params_text(params: Any) -> str:
    if not isinstance(params, Mapping) or not params:
        return ""
    parts = []
    for name, value in params.items():
        shown = f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=str)
        parts.append(f"{name}={shown.strip(chr(34))}")
    text = ", ".join(parts)
    return text if len(text) <= MAX_PARAMS_TEXT else text[: MAX_PARAMS_TEXT - 1] + "…"


def trial_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with the table's columns (:data:`TRIAL_COLUMNS`), numbers as
    numbers (sparsity and levels in percent)."""
    if not len(trials):
        return pd.DataFrame(columns=[c for c, _, _ in TRIAL_COLUMNS])
    params = trials["params"] if "params" in trials.columns else pd.Series([{}] * len(trials))
    levels = [
        float(p["target_sparsity"]) * 100
        if isinstance(p, Mapping) and isinstance(p.get("target_sparsity"), int | float)
        else math.nan
        for p in params
    ]
    reference = (
        trials["is_reference"].fillna(False).astype(bool)
        if "is_reference" in trials.columns
        else pd.Series(False, index=trials.index)
    )
    method = trials["method"].astype(str).where(~reference, trials["method"].astype(str) + " (ref)")
    table = pd.DataFrame(
        {
            "trial": pd.to_numeric(trials["trial_id"], errors="coerce"),
            "method": method,
            "seed": _numbers(trials, "seed"),
            "state": trials["status"].astype(str),
            "level": levels,
            "sparsity": _numbers(trials, "sparsity", 100.0),
            "delta_t": _numbers(trials, "delta_t"),
            "delta_m": _numbers(trials, "delta_m"),
            "iterations": _numbers(trials, "iterations"),
            "wall_time_s": _numbers(trials, "wall_time_s"),
            "params": [_params_text(p) for p in params],
        }
    )
    table.index = range(len(table))
    return table


@dataclass(frozen=True)
class TrialPage:
    """One page of the trial table.

    Attributes:
        rows: The page's rows (``id`` is the trial id as text; numbers as numbers).
        page_count: Pages in all (at least 1).
        total: Trials after filtering.
        methods: Every method of the study (the method filter's choices).
        states: Every state present (the state filter's choices).
        page: The page shown (from 0).
    """

    rows: list[dict[str, Any]]
    page_count: int
    total: int
    methods: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    page: int = 0


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"id": str(int(row["trial"]))}  # AG Grid row ids are text
    for column, _, kind in TRIAL_COLUMNS:
        value = row[column]
        if isinstance(value, float) and not math.isfinite(value):
            record[column] = None
        elif kind == "int":
            record[column] = int(value)
        elif kind == "text":
            record[column] = str(value)
        else:
            record[column] = round(float(value), int(kind))
    return record


def trial_page(
    trials: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
    sort_by: Sequence[Mapping[str, str]] | None = None,
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> TrialPage:
    """The trials shown on one page of the dashboard's table.

    Args:
        trials: The trials frame.
        methods: Only these methods (None or empty: all).
        states: Only these states (None or empty: all).
        sort_by: ``column_id`` and ``direction`` (``asc``/``desc``) of each sorted column
            (see :func:`sort_of`); default: by trial id. A missing value is the smallest
            (AG Grid's order, so the grid's own sort of the page changes nothing).
        page: The page (from 0; past the last page gives the last, below 0 the first).
        page_size: Rows per page.
    """
    table = trial_table(trials)
    all_methods = tuple(dict.fromkeys(table["method"].str.removesuffix(" (ref)")))
    present = set(table["state"])
    all_states = tuple(s for s in STATES if s in present) + tuple(sorted(present - set(STATES)))
    if methods:
        table = table[table["method"].str.removesuffix(" (ref)").isin(list(methods))]
    if states:
        table = table[table["state"].isin(list(states))]
    order = [s for s in sort_by or () if s.get("column_id") in table.columns]
    if order:
        ascending = [s.get("direction") != "desc" for s in order]
        table = table.sort_values(
            [s["column_id"] for s in order] + ["trial"],
            ascending=[*ascending, True],
            na_position="first" if ascending[0] else "last",  # missing is smallest, as
            kind="stable",  # the grid has it when it sorts the page it gets
        )
    else:
        table = table.sort_values("trial", kind="stable")
    count = max(1, math.ceil(len(table) / page_size))
    page = min(max(0, int(page or 0)), count - 1)
    shown = table.iloc[page * page_size : (page + 1) * page_size]
    rows = [_record(row) for row in shown.to_dict("records")]
    return TrialPage(rows, count, len(table), all_methods, all_states, page)


def _column(column: str, header: str, kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "field": column,
        "headerName": header,
        "headerTooltip": header,
        "sortable": True,
    }
    if column in WIDTHS:
        spec["width"] = WIDTHS[column]
    if kind == "text":
        spec["cellClass"] = "text"
        if column == "params":
            spec |= {"tooltipField": "params", "flex": 1, "minWidth": 160}
        return spec
    decimals = 0 if kind == "int" else int(kind)
    shown = f"d3.format('.{decimals}f')(params.value)"
    spec |= {
        "type": "rightAligned",
        "valueFormatter": {"function": f"params.value == null ? {json.dumps(MISSING)} : {shown}"},
    }
    return spec


def trials_grid(page_size: int = PAGE_SIZE) -> Any:
    """The trial table: an AG Grid showing one page that the dashboard's callback sorts
    and pages on the server (sorting a column asks the server; the grid keeps the order it
    gets)."""
    import dash_ag_grid as dag

    return dag.AgGrid(
        id="trials-grid",
        columnDefs=[_column(*column) for column in TRIAL_COLUMNS],
        rowData=[],
        getRowId="params.data.id",
        defaultColDef={
            "resizable": True,
            "suppressMovable": True,
            "minWidth": 70,
        },
        dashGridOptions={
            "domLayout": "autoHeight",
            "suppressCellFocus": False,
            "tooltipShowDelay": 300,
            "rowHeight": 34,
            "rowSelection": {
                "mode": "singleRow",
                "checkboxes": False,
                "enableClickSelection": True,
            },
            "localeText": {"noRowsToShow": "No trials match the filters"},
        },
        style={"width": "100%"},
        className="ag-theme-quartz",
    )


def sort_of(column_state: Sequence[Mapping[str, Any]] | None) -> tuple[dict[str, str], ...]:
    """The sort order of AG Grid's ``columnState``, as :func:`trial_page` takes it."""
    sorted_columns = [
        (int(c.get("sortIndex") or 0), str(c["colId"]), str(c["sort"]))
        for c in column_state or ()
        if c.get("sort") in ("asc", "desc") and c.get("colId")
    ]
    return tuple(
        {"column_id": column, "direction": direction}
        for _, column, direction in sorted(sorted_columns)
    )


# --- level by level ------------------------------------------------------------------------
@dataclass(frozen=True)
class LevelView:
    """The methods compared at each sparsity level.

    Attributes:
        table: Rows = methods, one column per level: the mean over seeds of the best
            value at or above the level, with its 95% t interval and number of seeds.
        sentences: Who wins at each level, and whether beyond seed noise.
        title: What the table's rows and cells are.
    """

    table: pd.DataFrame
    sentences: tuple[str, ...] = ()
    title: str = ""


def _study_levels(frames: StudyFrames) -> tuple[float, ...]:
    config = (frames.studies[0].get("config") or {}) if frames.studies else {}
    levels = (config.get("budget") or {}).get("sparsity_levels")
    return tuple(float(level) for level in levels) if levels else (0.9,)


def level_view(frames: StudyFrames) -> LevelView:
    """The study's methods at each of its ``sparsity_levels`` (90% without levels)."""
    objectives = frames.objectives
    names = [name for name, _ in objectives]
    value = "delta_t" if "delta_t" in names else next((n for n in names if n != "sparsity"), "")
    if "sparsity" not in names or not value or not len(frames.trials):
        return LevelView(pd.DataFrame(), title="Methods level by level")
    levels = _study_levels(frames)
    trials = without_reference(frames.trials)
    comparisons = compare_seeds(trials, levels, objectives, value).levels
    unit = "%" if value.startswith("delta") else ""
    cells: dict[str, dict[str, str]] = {}
    for comparison in comparisons:
        column = f">= {comparison.level * 100:g}%"
        for method, interval in comparison.methods.items():
            cells.setdefault(method, {})[column] = interval.text(unit=unit)
    columns = [f">= {level * 100:g}%" for level in levels]
    table = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=columns)
    table = table.fillna(MISSING)
    table.index.name = "method"
    name = {"delta_t": "Delta_T", "delta_m": "Delta_m"}.get(value, value)
    seeds = trials["seed"].nunique() if "seed" in trials.columns else 1
    title = (
        f"Methods level by level: per method, the best {name} of a trial at or above each "
        f"sparsity level, mean over {seeds} seed(s) with its 95% t interval"
    )
    return LevelView(table, tuple(level_sentences(comparisons, unit)), title)


def frame_table(table: pd.DataFrame, table_id: str, decimals: int = 2) -> dhtml.Div:
    """A small frame as a Dash table (formatted like the report's), scrolling sideways
    in its box when wider than the page."""
    cells = format_cells(table, decimals)
    numeric = [
        pd.api.types.is_numeric_dtype(table[c]) or table[c].astype(str).str.match(r"^[-+]?\d").all()
        for c in table.columns
    ]
    header = [dhtml.Th(str(table.index.name or ""))] + [
        dhtml.Th(str(c), className="num" if n else None)
        for c, n in zip(table.columns, numeric, strict=True)
    ]
    body = [
        dhtml.Tr(
            [dhtml.Th(str(label))]
            + [
                dhtml.Td(value, className="num" if n else None)
                for value, n in zip(row, numeric, strict=True)
            ]
        )
        for label, row in zip(cells.index, cells.itertuples(index=False, name=None), strict=True)
    ]
    return dhtml.Div(
        dhtml.Table([dhtml.Thead(dhtml.Tr(header)), dhtml.Tbody(body)], id=table_id),
        className="table-wrap",
    )


# --- the driver ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DriverState:
    """What the study's driver is doing, in lines for the status box."""

    lines: tuple[str, ...] = field(default_factory=tuple)
    running: bool = False


def driver_lines(frames: StudyFrames, note: str | None, now: datetime | None = None) -> DriverState:
    """The driver's state: finished, not running (``note``, from the driver lease), or
    running, with its trials' in-trial progress from the study folder's progress file."""
    record = frames.studies[0] if frames.studies else {}
    status = str(record.get("status") or "")
    if status != "RUNNING":
        return DriverState((f"study {status.lower() or 'unknown'}: no driver running",), False)
    if note:
        return DriverState((note,), False)
    folder = (record.get("config") or {}).get("study_dir")
    snapshot = read_progress(folder, str(record.get("name") or "")) if folder else None
    if snapshot is None or not snapshot.active:
        return DriverState(("driver running",), True)
    lines = progress_lines(snapshot, now)
    return DriverState(
        (f"driver running · {lines[0]}", *(line.strip() for line in lines[1:])), True
    )
