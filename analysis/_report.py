"""A single self-contained HTML report of a study, plus its tables as files.

The report embeds plotly.js once (in the first figure) so it opens offline; every figure
sits in a ``<div>`` with a stable id. Under "Figures" come the registered figures
(:data:`analysis._figure_registry.FIGURES`, in their order): ``fig-overlay``,
``fig-task-metrics``, ``fig-components``, ``fig-hv-budget``, ``fig-trajectories``,
``fig-parcoords-<method>`` per method with searched hyperparameters (``fig-parcoords`` when
none has any) and any figure registered since. The sections follow: with two or more seeds
``fig-seed-fronts``; with DMTG trials ``fig-grouping-heatmap``, ``fig-grouping-history``
and, with methods run on the grouped architecture, ``fig-grouped-fronts``.
Every string that comes from the study (names, parameters, errors) is HTML-escaped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis._compare import (
    DEFAULT_LEVELS,
    DEFAULT_OBJECTIVES,
    Objectives,
    best_at_sparsity_levels,
    completed_trials,
    method_summary,
)
from analysis._figure_registry import FIGURES, FigureContext
from analysis._levels import SeedComparisons, compare_seeds, level_sentences
from analysis._levels import level_table as level_by_level_table
from analysis._report_sections import Section, grouping_section, seed_section
from analysis._tables import (
    paper_table,
    short_of_level_note,
    sparsity_level_table,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
)

__all__ = ["ReportPaths", "build_report"]

MAX_FAILED_ROWS = 50
FIGURE_HEIGHT = 480

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin: 1.8rem 0 0.4rem; }
h3 { font-size: 1.05rem; }
.meta { color: #555; font-size: 0.9rem; }
.message { background: #fff6d6; border-left: 4px solid #e0b400; padding: 0.6rem 1rem; }
.note { color: #555; font-size: 0.9rem; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.5rem 0 1.5rem; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; }
thead th { vertical-align: bottom; max-width: 8rem; }
thead tr:last-child th { border-bottom: 2px solid #888; }
th.group { text-align: center; border-bottom: 1px solid #bbb; background: #f6f6f6; }
th.num, td.num { text-align: right; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody th { white-space: nowrap; }
section.figure { margin-bottom: 2rem; }
.picked { border-left: 4px solid #636efa; background: #f4f5ff; padding: 0.5rem 1rem;
          font-size: 0.9rem; line-height: 1.4; }
ul.statements li { margin: 0.2rem 0; }
"""


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`build_report`.

    Attributes:
        html: The self-contained ``report.html``.
        tables: Table files by name (``"paper.md"``, ``"sparsity_levels.tex"``, ...).
        images: PNG/SVG exports of the figures (empty when export was not possible).
        notes: Remarks about the run (for example why images were not exported).
    """

    html: Path
    tables: dict[str, Path] = field(default_factory=dict)
    images: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()


def _status_message(trials: pd.DataFrame, n_complete: int) -> str | None:
    if len(trials) == 0:
        return "No trials recorded for this study yet."
    status = trials["status"].astype(str) if "status" in trials.columns else pd.Series([], str)
    if n_complete == 0:
        failed = int((status == "FAILED").sum())
        others = len(trials) - failed
        return (
            f"No completed trials yet: {failed} failed, {others} running, waiting or pruned. "
            "Fronts, hypervolumes and tables appear once a trial completes."
        )
    if n_complete == 1:
        return (
            "Only one completed trial so far: each front holds a single point and "
            "comparisons between methods are not meaningful yet."
        )
    return None


def _summary_table(
    trials: pd.DataFrame,
    objectives: Objectives,
    sparsity: float,
    reference: np.ndarray | None,
) -> pd.DataFrame:
    table = method_summary(trials, objectives, sparsity, reference)
    if "delta_m" in trials.columns and "best_delta_t" in table.columns:
        best = best_at_sparsity_levels(trials, (sparsity,), "delta_m", "maximize")
        at = table.columns.get_loc("best_delta_t") + 1
        table.insert(at, "best_delta_m", best.iloc[:, 0].reindex(table.index))
    return table.rename(
        columns={
            "n_trials": "trials",
            "n_complete": "complete",
            "n_failed": "failed",
            "n_pruned": "pruned",
            "n_running": "running",
            "pareto_size": "Pareto set",
            "hypervolume": "hypervolume",
            "best_delta_t": f"best Delta_T (%) at >= {sparsity * 100:g}%",
            "best_delta_m": f"best Delta_m (%) at >= {sparsity * 100:g}%",
        }
    )


def _failed_table(trials: pd.DataFrame) -> pd.DataFrame:
    if len(trials) == 0 or "status" not in trials.columns:
        return pd.DataFrame()
    failed = trials[trials["status"].astype(str) == "FAILED"].head(MAX_FAILED_ROWS)
    if len(failed) == 0:
        return pd.DataFrame()
    errors = failed["error"] if "error" in failed.columns else pd.Series("", index=failed.index)
    table = pd.DataFrame(
        {
            "method": failed["method"].astype(str).to_numpy(),
            "seed": failed["seed"].to_numpy() if "seed" in failed.columns else None,
            "error": [
                (str(e).strip().splitlines() or [""])[-1][:300] if isinstance(e, str) else ""
                for e in errors
            ],
        },
        index=pd.Index(failed["trial_id"].to_numpy(), name="trial"),
    )
    return table


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


def _export_images(
    figures: Sequence[tuple[str, str, go.Figure]], folder: Path
) -> tuple[list[Path], str | None]:
    """PNG and SVG of every figure, or a note saying why it was skipped."""
    if not figures:
        return [], None
    with _kaleido_server():
        return _write_images(figures, folder)


@contextlib.contextmanager
def _kaleido_server() -> Iterator[None]:
    """One browser for every image (kaleido otherwise starts one per image)."""
    try:
        import kaleido

        kaleido.start_sync_server(silence_warnings=True)
    except Exception:  # older kaleido or none: each export starts its own browser
        yield
        return
    try:
        yield
    finally:
        kaleido.stop_sync_server(silence_warnings=True)


def _write_images(
    figures: Sequence[tuple[str, str, go.Figure]], folder: Path
) -> tuple[list[Path], str | None]:
    try:
        first = figures[0][2].to_image(format="png")
    except Exception as error:  # kaleido missing, no Chrome, ...: never fail the report
        return [], f"Figure images were not exported: {_first_line(error)}"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for k, (div_id, _, fig) in enumerate(figures):
            png = folder / f"{div_id}.png"
            png.write_bytes(first if k == 0 else fig.to_image(format="png"))
            svg = folder / f"{div_id}.svg"
            svg.write_bytes(fig.to_image(format="svg"))
            written += [png, svg]
    except Exception as error:
        return written, f"Some figure images were not exported: {_first_line(error)}"
    return written, None


def _write_tables(tables: dict[str, pd.DataFrame], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        for suffix, text in (
            ("md", to_markdown(table)),
            ("csv", to_csv(table)),
            ("tex", to_latex(table)),
        ):
            path = folder / f"{name}.{suffix}"
            path.write_text(text, encoding="utf-8")
            paths[f"{name}.{suffix}"] = path
    return paths


def _table_section(title: str, table: pd.DataFrame, empty: str, level: int = 2) -> str:
    """A heading and its table, which scrolls sideways in its box when wider than the page."""
    body = (
        f'<div class="table-wrap">{to_html(table)}</div>'
        if len(table)
        else f'<p class="note">{html.escape(empty)}</p>'
    )
    return f"<h{level}>{html.escape(title)}</h{level}>\n{body}\n"


def _by_level_columns(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """The level-by-level table with the unit of its values in the headers."""
    unit = " (%)" if value in ("delta_t", "delta_m") or value.startswith("delta:") else ""
    return table.rename(
        columns={
            "mean": f"mean {value}{unit}",
            "CI low": f"95% CI low{unit}",
            "CI high": f"95% CI high{unit}",
        }
    )


def _figure_html(div_id: str, title: str, fig: go.Figure, with_plotlyjs: bool) -> str:
    height = fig.layout.height or FIGURE_HEIGHT
    fragment = fig.to_html(
        full_html=False,
        include_plotlyjs=with_plotlyjs,
        div_id=div_id,
        default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )
    picked = f'<div class="picked" id="picked-{html.escape(div_id)}" hidden></div>'
    return (
        f'<section class="figure"><h3>{html.escape(title)}</h3>\n{fragment}\n{picked}\n</section>'
    )


#: Clicking a point of a figure pins its hover text (the trial, its method, seed, level and
#: parameters; built from escaped strings) under the figure.
_PICK_SCRIPT = """<script>
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
    if (typeof gd.on !== "function") { return; }
    gd.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      var box = document.getElementById("picked-" + gd.id);
      if (!point || !box) { return; }
      var text = point.hovertext || (Array.isArray(point.data.hovertext)
        ? point.data.hovertext[point.pointNumber] : point.data.hovertext);
      if (!text) { return; }
      box.innerHTML = "<span class=\\"note\\">Clicked:</span> " + text;
      box.hidden = false;
    });
  });
});
</script>"""


def _section_html(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    if section.sentences:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in section.sentences)
        parts.append(f'<ul class="statements">{items}</ul>')
    for title, table in section.tables.items():
        parts.append(_table_section(title, table, "", level=3))
    parts += [_figure_html(i, t, f, False) for i, t, f in section.figures]
    return "\n".join(parts)


def build_report(
    trials: pd.DataFrame | None,
    evaluations: pd.DataFrame | None,
    study_name: str,
    out_dir: str | Path,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    sparsity: float = 0.9,
    budget: str = "trials",
    levels: Sequence[float] = DEFAULT_LEVELS,
    export_images: bool = True,
    compared_levels: Sequence[float] | None = None,
) -> ReportPaths:
    """Write ``report.html`` and the ``tables/`` folder for one study.

    Args:
        trials: The trials frame (None or empty for a study without trials).
        evaluations: The evaluations frame (may be None).
        study_name: Shown in the title (escaped).
        out_dir: Folder to write into (created).
        objectives: ``(column, direction)`` pairs of the study.
        sparsity: Level of the paper table and of the summary's best Delta_T.
        budget: Budget axis of the hypervolume curve.
        levels: Sparsity levels of the sparsity-level table.
        export_images: Also write PNG/SVG figures when static export works.
        compared_levels: Levels at which methods are compared across paired seeds (the
            study's ``sparsity_levels``); default: ``sparsity``.

    Returns:
        The paths written (see :class:`ReportPaths`).
    """
    context = FigureContext.of(
        trials, evaluations, objectives, sparsity, budget, compared_levels or (sparsity,)
    )
    trials, pairs, reference = context.trials, context.objectives, context.reference
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = completed_trials(trials, pairs)
    notes: list[str] = []
    message = _status_message(trials, len(done))

    summary = _summary_table(trials, pairs, sparsity, reference) if len(trials) else None
    paper = paper_table(trials, sparsity, pairs)
    level_table = sparsity_level_table(trials, levels)
    value = next((name for name, _ in pairs if name != "sparsity"), pairs[0][0])
    across = (
        compare_seeds(trials, context.levels, pairs, value, reference)
        if len(done)
        else SeedComparisons([], {})
    )
    comparisons = across.levels
    sections = [seed_section(trials, pairs, sparsity, reference)] if len(trials) else []
    grouping = grouping_section(trials, pairs) if len(trials) else None
    sections += [grouping] if grouping is not None else []
    by_level = level_by_level_table(comparisons)
    tables = {"paper": paper, "sparsity_levels": level_table, "by_level": by_level}
    for section in sections:
        tables.update({section.files[t]: section.tables[t] for t in section.files})
    table_paths = _write_tables(tables, out / "tables")

    figures = FIGURES.build(context)
    extra_figures = [figure for section in sections for figure in section.figures]
    images: list[Path] = []
    if export_images:
        images, note = _export_images([*figures, *extra_figures], out / "figures")
        if note:
            notes.append(note)

    objectives_text = ", ".join(f"{html.escape(n)} ({html.escape(d)})" for n, d in pairs)
    reference_text = (
        "none (no completed trials)"
        if reference is None
        else "(" + ", ".join(f"{v:.4g}" for v in reference) + ")"
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>paretune report: {html.escape(study_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Study {html.escape(study_name)}</h1>",
        f'<p class="meta">Objectives: {objectives_text}. Hypervolume reference point: '
        f"{html.escape(reference_text)}. {len(trials)} trials. Generated {generated}.</p>",
    ]
    if message:
        parts.append(f'<p class="message">{html.escape(message)}</p>')
    level = f"{sparsity * 100:g}%"
    if summary is not None and len(summary):
        parts.append(
            _table_section(
                f"Summary per method: its trials by state, Pareto set size, hypervolume and "
                f"best score at or above {level} sparsity",
                summary,
                "",
            )
        )
    parts.append(
        _table_section(
            f"Methods at {level} sparsity: per method, the trial of its Pareto front with the "
            f"lowest sparsity at or above {level} (the dense reference first)",
            paper,
            "No method has a trial at or above the level."
            if len(done)
            else "No completed trials yet.",
        )
    )
    short = short_of_level_note(trials, sparsity)
    if short:
        parts.append(f'<p class="note">{html.escape(short)}</p>')
    if comparisons:
        parts.append(
            _table_section(
                f"{value} level by level: per level and method, the best trial at or above "
                "the level in each seed, as the mean over seeds with its 95% t interval",
                _by_level_columns(by_level, value),
                "",
            )
        )
        sentences = level_sentences(comparisons, "%" if value == "delta_t" else "")
        sentences += [
            f"hypervolume of {m} over seeds: {i.text()}" for m, i in across.hypervolumes.items()
        ]
        parts += [f'<p class="note">{html.escape(line)}</p>' for line in sentences]
    parts.append(
        _table_section(
            "Best Delta_T (%) per method at or above each sparsity level (completed trials)",
            level_table,
            "No trials yet.",
        )
    )
    parts.append("<h2>Figures</h2>")
    for k, (div_id, title, fig) in enumerate(figures):
        parts.append(_figure_html(div_id, title, fig, k == 0))
    parts += [_section_html(section) for section in sections]
    failed = _failed_table(trials)
    if len(failed):
        parts.append(
            _table_section(
                f"Failed trials (the first {MAX_FAILED_ROWS}): their method, seed and the last "
                "line of their error",
                failed,
                "No failures.",
            )
        )
    for note in notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append(_PICK_SCRIPT)
    parts.append("</body></html>")
    report = out / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    return ReportPaths(html=report, tables=table_paths, images=tuple(images), notes=tuple(notes))
