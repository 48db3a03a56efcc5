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

__all__ = [
    "MISSING",
    "format_cells",
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


def _paper_rows(rows: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    metrics = _prefixed(trials, "metric:")
    components = _prefixed(trials, "sparsity:")
    table = pd.DataFrame(index=rows.index)
    table["trial"] = pd.array(rows["trial_id"].tolist(), dtype="Int64")
    for column in metrics:
        _, task, metric = [*column.split(":", 2), "", ""][:3]
        table[f"{task} {metric}".strip()] = pd.to_numeric(rows[column], errors="coerce")
    for column in components:
        label = f"sparsity {column.split(':', 1)[1]} (%)"
        table[label] = pd.to_numeric(rows[column], errors="coerce") * 100.0
    table[SPARSITY_LABEL] = pd.to_numeric(rows["sparsity"], errors="coerce") * 100.0
    for column in _prefixed(trials, "delta:"):  # per task, so one blown-up task shows
        table[f"Delta {column.split(':', 1)[1]} (%)"] = pd.to_numeric(rows[column], errors="coerce")
    table[DELTA_LABEL] = pd.to_numeric(rows["delta_t"], errors="coerce")
    if "delta_m" in rows.columns:
        table[DELTA_M_LABEL] = pd.to_numeric(rows["delta_m"], errors="coerce")
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


def to_html(df: pd.DataFrame, decimals: int = 2, index: bool = True, css_class: str = "") -> str:
    """An HTML ``<table>`` with formatted, escaped cells.

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
    out = [f"<table{attr}>", "<thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in _header(df, index)]
    out.append("</tr></thead><tbody>")
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
