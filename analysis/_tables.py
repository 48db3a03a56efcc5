"""Paper-style tables and their Markdown, LaTeX, CSV and HTML renderings.

The table builders return numeric pandas frames with readable column labels (sparsities in
percent); the renderers format numbers to a fixed number of decimals and show missing
values as an en dash. CSV keeps the raw numbers for machines.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._compare import (
    DEFAULT_LEVELS,
    DEFAULT_OBJECTIVES,
    Objectives,
    _require,
    best_at_sparsity_levels,
    check_objectives,
    method_fronts,
    method_order,
    without_reference,
)
from study._levels import LEVEL_TOLERANCE
from trials.metrics import METRICS

__all__ = [
    "METRIC_LABELS",
    "MISSING",
    "column_groups",
    "format_cells",
    "metric_header",
    "paper_table",
    "select_at_sparsity",
    "short_of_level",
    "short_of_level_note",
    "sparsity_level_table",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
]

MISSING = "–"
"""How a missing value is shown (an en dash; LaTeX gets ``--``, which typesets as one)."""

DELTA_LABEL = "Delta_T (%)"
DELTA_M_LABEL = "Delta_m (%)"
SPARSITY_LABEL = "sparsity (%)"
GROUPS_ATTR = "column_groups"
#: How a metric is headed: its name and unit (``''``: none).
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "miou": ("mIoU", "%"),
    "pixel_acc": ("pixel acc.", "%"),
    "cross_entropy": ("cross-entropy", ""),
    "abs_err": ("abs. error", ""),
    "rel_err": ("rel. error", ""),
    "delta_1.25": ("δ < 1.25", "%"),
    "delta_1.25^2": ("δ < 1.25²", "%"),
    "delta_1.25^3": ("δ < 1.25³", "%"),
    "angle_mean": ("mean angle", "°"),
    "angle_median": ("median angle", "°"),
    "within_11.25": ("within 11.25°", "%"),
    "within_22.5": ("within 22.5°", "%"),
    "within_30": ("within 30°", "%"),
    "cosine": ("cosine similarity", ""),
    "l1": ("L1 error", ""),
    "accuracy": ("accuracy", "%"),
}


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def select_at_sparsity(
    trials: pd.DataFrame,
    sparsity: float = 0.9,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    tolerance: float = LEVEL_TOLERANCE,
    closest: bool = False,
) -> pd.DataFrame:
    """Per method, the front trial with the lowest sparsity at or above ``sparsity``.

    Reference trials (``is_reference``) are left out. A method whose front never reaches the
    level has no row (see :func:`short_of_level`), unless ``closest``: then it contributes
    the front trial closest to the level (for pictures "near" a level). Ties go to the
    lower ``trial_id``.

    Args:
        trials: The trials frame.
        sparsity: Target sparsity in ``[0, 1]``.
        objectives: ``(column, direction)`` pairs defining the fronts.
        tolerance: A trial reaches the level when ``sparsity >= level - tolerance``.
        closest: Fall back to the closest front trial when none reaches the level.

    Returns:
        One row of the trials frame per method (index = method), in method order.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must lie in [0, 1]; got {sparsity}")
    pairs = check_objectives(objectives)
    trials = without_reference(
        _require(trials, ["method", "status", "trial_id", "sparsity"], "paper_table")
    )
    fronts = method_fronts(trials, pairs)
    fronts = fronts[fronts["on_front"]]
    chosen = []
    present = set(method_order(fronts))
    for method in [m for m in method_order(trials) if m in present]:
        sub = fronts[fronts["method"].astype(str) == method]
        level = pd.to_numeric(sub["sparsity"], errors="coerce").to_numpy(dtype=float)
        above = level >= sparsity - tolerance
        key = np.where(above, level - sparsity, np.inf)
        if not above.any():
            if not closest:
                continue
            key = np.abs(level - sparsity)
        if not np.isfinite(key).any():
            continue
        best = np.flatnonzero(key == np.nanmin(key))
        pick = sub.iloc[best].sort_values("trial_id").iloc[0]
        chosen.append(pick.rename(method))
    if not chosen:
        return trials.iloc[0:0].copy()
    return pd.DataFrame(chosen)


def short_of_level(
    trials: pd.DataFrame, sparsity: float = 0.9, tolerance: float = LEVEL_TOLERANCE
) -> dict[str, float]:
    """``{method: highest sparsity reached}`` of the methods (not the reference) with
    completed trials of which none reaches ``sparsity``."""
    if not len(trials) or not {"method", "status", "sparsity"} <= set(trials.columns):
        return {}
    done = without_reference(trials[trials["status"].astype(str) == "COMPLETE"])
    reached = pd.to_numeric(done["sparsity"], errors="coerce").groupby(done["method"]).max()
    return {
        str(method): float(value)
        for method, value in reached.items()
        if method in set(method_order(done)) and not value >= sparsity - tolerance
    }


def short_of_level_note(trials: pd.DataFrame, sparsity: float) -> str:
    """One sentence naming the methods with no trial at or above ``sparsity`` ('' if none)."""
    short = short_of_level(trials, sparsity)
    if not short:
        return ""
    names = ", ".join(f"{method} (highest {value:.1%})" for method, value in short.items())
    return f"No trial at or above {sparsity:.0%}: {names}."


def _prefixed(trials: pd.DataFrame, prefix: str) -> list[str]:
    return [str(c) for c in trials.columns if str(c).startswith(prefix)]


def metric_header(metric: str) -> str:
    """A metric's column header with its unit and direction: ``mIoU (%) ↑``."""
    label, unit = METRIC_LABELS.get(metric, (metric, ""))
    info = METRICS.get(metric)
    arrow = "" if info is None else (" ↑" if info.higher_is_better else " ↓")
    return f"{label}{f' ({unit})' if unit else ''}{arrow}"


def column_groups(table: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """``{column: (group, header)}`` of a table whose HTML groups its columns under a
    second header row (set by the table's builder; empty for an ungrouped table)."""
    groups = table.attrs.get(GROUPS_ATTR)
    return dict(groups) if isinstance(groups, dict) else {}


def _paper_rows(rows: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    metrics = _prefixed(trials, "metric:")
    components = _prefixed(trials, "sparsity:")
    table = pd.DataFrame(index=rows.index)
    groups: dict[str, tuple[str, str]] = {}
    table["trial"] = pd.array(rows["trial_id"].tolist(), dtype="Int64")
    for column in metrics:
        _, task, metric = [*column.split(":", 2), "", ""][:3]
        label = f"{task} {metric}".strip()
        table[label] = pd.to_numeric(rows[column], errors="coerce")
        groups[label] = (task, metric_header(metric))
    for column in components:
        component = column.split(":", 1)[1]
        label = f"sparsity {component} (%)"
        table[label] = pd.to_numeric(rows[column], errors="coerce") * 100.0
        groups[label] = ("sparsity (%)", component)
    table[SPARSITY_LABEL] = pd.to_numeric(rows["sparsity"], errors="coerce") * 100.0
    groups[SPARSITY_LABEL] = ("sparsity (%)", "overall")
    vs_dense = "score vs the dense reference (%)"
    for column in _prefixed(trials, "delta:"):  # per task, so one blown-up task shows
        task = column.split(":", 1)[1]
        table[f"Delta {task} (%)"] = pd.to_numeric(rows[column], errors="coerce")
        groups[f"Delta {task} (%)"] = ("Delta_T of each task (%)", task)
    table[DELTA_LABEL] = pd.to_numeric(rows["delta_t"], errors="coerce")
    groups[DELTA_LABEL] = (vs_dense, "Delta_T")
    if "delta_m" in rows.columns:
        table[DELTA_M_LABEL] = pd.to_numeric(rows["delta_m"], errors="coerce")
        groups[DELTA_M_LABEL] = (vs_dense, "Delta_m")
    table.attrs[GROUPS_ATTR] = groups
    return table


def paper_table(
    trials: pd.DataFrame,
    sparsity: float = 0.9,
    objectives: Objectives = DEFAULT_OBJECTIVES,
) -> pd.DataFrame:
    """The paper's comparison table at one sparsity level.

    One row per method that reaches the level: the trial chosen by
    :func:`select_at_sparsity` (on the method's front, lowest sparsity at or above the
    level); :func:`short_of_level` names the others. The study's dense
    reference trial (``is_reference``), when there is one, comes first as
    ``"<method> (reference)"``.

    Columns: ``trial`` (trial_id), one per ``metric:<task>:<metric>`` column
    (``"<task> <metric>"``), one per ``sparsity:<component>`` column
    (``"sparsity <component> (%)"``), ``"sparsity (%)"`` and ``"Delta_T (%)"``.

    Args:
        trials: The trials frame.
        sparsity: Target sparsity in ``[0, 1]``.
        objectives: ``(column, direction)`` pairs defining the fronts.

    Returns:
        The table, index named ``method``.
    """
    trials = _require(
        trials, ["method", "status", "trial_id", "sparsity", "delta_t"], "paper_table"
    )
    selected = select_at_sparsity(trials, sparsity, objectives)
    parts = []
    if "is_reference" in trials.columns:
        reference = trials[
            trials["is_reference"].fillna(False).astype(bool)
            & (trials["status"].astype(str) == "COMPLETE")
        ].sort_values("trial_id")
        if len(reference):
            row = reference.iloc[[0]]
            parts.append(row.set_axis([f"{row['method'].iloc[0]} (reference)"]))
    if len(selected):
        parts.append(selected)
    rows = pd.concat(parts) if parts else trials.iloc[0:0].copy()
    table = _paper_rows(rows, trials)
    table.index.name = "method"
    return table


def sparsity_level_table(
    trials: pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    value: str = "delta_t",
    direction: str = "maximize",
) -> pd.DataFrame:
    """Best Delta_T per method at or above each sparsity level, columns ``">= 90%"`` etc.

    Args:
        trials: The trials frame.
        levels: Sparsity levels in ``[0, 1]``.
        value: Column to optimise.
        direction: ``"maximize"`` or ``"minimize"`` for ``value``.

    Returns:
        Rows = methods, columns = levels as percentages, NaN when a level is not reached.
    """
    table = best_at_sparsity_levels(trials, levels, value, direction)
    table.columns = [f">= {level * 100:g}%" for level in table.columns]
    table.index.name = "method"
    unit = " (%)" if value in ("delta_t", "delta_m") or value.startswith("delta:") else ""
    name = {"delta_t": "Delta_T", "delta_m": "Delta_m"}.get(value, value)
    group = f"best {name}{unit} of a trial with sparsity"
    table.attrs[GROUPS_ATTR] = {column: (group, column) for column in table.columns}
    return table


def format_cells(df: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Every cell as text: floats with ``decimals`` decimals, integers as is, missing as ``–``.

    Args:
        df: Any frame.
        decimals: Decimals for floating-point cells.

    Returns:
        A frame of strings with the same index and columns.
    """

    def cell(value: object) -> str:
        if _is_missing(value):
            return MISSING
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, int | np.integer):
            return str(int(value))
        if isinstance(value, float | np.floating):
            text = f"{float(value):.{decimals}f}"
            return text[1:] if text.startswith("-") and not text.strip("-0.") else text
        return str(value)

    out = pd.DataFrame(
        [[cell(v) for v in row] for row in df.itertuples(index=False, name=None)],
        index=df.index,
        columns=df.columns,
        dtype=object,
    )
    return out


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in df.columns
    ]


def _header(df: pd.DataFrame, index: bool) -> list[str]:
    names = [str(c) for c in df.columns]
    if index:
        names.insert(0, str(df.index.name or ""))
    return names


def to_markdown(df: pd.DataFrame, decimals: int = 2, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned).

    Args:
        df: The table.
        decimals: Decimals for floating-point cells.
        index: Whether to include the index as the first column.

    Returns:
        The Markdown text, ending with a newline.
    """
    cells = format_cells(df, decimals)
    align = ["---:" if numeric else ":---" for numeric in _numeric_columns(df)]
    if index:
        align.insert(0, ":---")

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = [line(_header(df, index)), "| " + " | ".join(align) + " |"]
    for label, row in zip(cells.index, cells.itertuples(index=False, name=None), strict=True):
        lines.append(line([str(label), *row] if index else list(row)))
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text).replace(MISSING, "--")


def to_latex(
    df: pd.DataFrame,
    decimals: int = 2,
    index: bool = True,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """A LaTeX ``tabular`` with booktabs rules (``\\usepackage{booktabs}``).

    Special characters are escaped; missing values are ``--``. With a caption or label the
    tabular is wrapped in a ``table`` environment.

    Args:
        df: The table.
        decimals: Decimals for floating-point cells.
        index: Whether to include the index as the first column.
        caption: Optional caption.
        label: Optional ``\\label`` key.

    Returns:
        The LaTeX text, ending with a newline.
    """
    cells = format_cells(df, decimals)
    spec = ["r" if numeric else "l" for numeric in _numeric_columns(df)]
    if index:
        spec.insert(0, "l")
    lines = [
        "\\begin{tabular}{" + "".join(spec) + "}",
        "\\toprule",
        " & ".join(_latex_escape(h) for h in _header(df, index)) + " \\\\",
        "\\midrule",
    ]
    for row_label, row in zip(cells.index, cells.itertuples(index=False, name=None), strict=True):
        values = [str(row_label), *row] if index else list(row)
        lines.append(" & ".join(_latex_escape(v) for v in values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption is not None or label is not None:
        inner = ["\\begin{table}[t]", "\\centering"]
        if caption is not None:
            inner.append("\\caption{" + _latex_escape(caption) + "}")
        if label is not None:
            inner.append("\\label{" + label + "}")
        lines = [*inner, *lines, "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame, path: str | Path | None = None, index: bool = True) -> str:
    """CSV with the raw numbers (full precision, missing values empty).

    Args:
        df: The table.
        path: Optional file to write as well.
        index: Whether to include the index.

    Returns:
        The CSV text.
    """
    text = df.to_csv(index=index, lineterminator="\n")
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _header_html(text: str) -> str:
    """Escaped header text whose long words may wrap after ``_`` and ``:``
    (``head:segment_semantic``)."""
    words = html.escape(text).split(" ")
    return " ".join(
        word.replace("_", "_<wbr>").replace(":", ":<wbr>") if len(word) > 12 else word
        for word in words
    )


def _thead(df: pd.DataFrame, index: bool, numeric: Sequence[bool]) -> list[str]:
    """The header rows: one, or two when the table groups its columns (a group's header
    spans its columns; an ungrouped column's header spans both rows)."""
    groups = column_groups(df)
    names = [str(c) for c in df.columns]
    classes = [' class="num"' if is_number else "" for is_number in numeric]
    if not any(name in groups for name in names):
        cells = [f"<th>{_header_html(str(df.index.name or ''))}</th>"] if index else []
        cells += [f"<th{c}>{_header_html(n)}</th>" for n, c in zip(names, classes, strict=True)]
        return ["<thead><tr>", *cells, "</tr></thead>"]
    top = [f'<th rowspan="2">{_header_html(str(df.index.name or ""))}</th>'] if index else []
    bottom = []
    k = 0
    while k < len(names):
        group = groups.get(names[k], (None, names[k]))[0]
        if group is None:
            top.append(f'<th rowspan="2"{classes[k]}>{_header_html(names[k])}</th>')
            k += 1
            continue
        span = 1
        while k + span < len(names) and groups.get(names[k + span], (None, ""))[0] == group:
            span += 1
        top.append(f'<th colspan="{span}" class="group">{_header_html(group)}</th>')
        bottom += [
            f"<th{classes[j]}>{_header_html(groups[names[j]][1])}</th>" for j in range(k, k + span)
        ]
        k += span
    return ["<thead><tr>", *top, "</tr><tr>", *bottom, "</tr></thead>"]


def to_html(df: pd.DataFrame, decimals: int = 2, index: bool = True, css_class: str = "") -> str:
    """An HTML ``<table>`` with formatted, escaped cells.

    Numbers are right-aligned under right-aligned headers (class ``num``); a table whose
    builder grouped its columns (:func:`column_groups`: the paper table's tasks,
    sparsity and Delta columns) gets a second header row under one spanning header per
    group.

    Args:
        df: The table.
        decimals: Decimals for floating-point cells.
        index: Whether to include the index as the first column.
        css_class: Extra class attribute value for the table.

    Returns:
        The HTML fragment.
    """
    cells = format_cells(df, decimals)
    numeric = _numeric_columns(df)
    attr = f' class="{html.escape(css_class)}"' if css_class else ""
    out = [f"<table{attr}>", *_thead(df, index, numeric), "<tbody>"]
    for row_label, row in zip(cells.index, cells.itertuples(index=False, name=None), strict=True):
        out.append("<tr>")
        if index:
            out.append(f"<th>{html.escape(str(row_label))}</th>")
        for value, is_number in zip(row, numeric, strict=True):
            css = ' class="num"' if is_number else ""
            out.append(f"<td{css}>{html.escape(value)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)
