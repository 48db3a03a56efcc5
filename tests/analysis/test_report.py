"""The self-contained HTML report and its table files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis import FIGURES, FigureContext, build_report
from tests.analysis.throwaway import THROWAWAY_TITLE, throwaway_counts

BUNDLE_MARKER = "* plotly.js v"  # the header comment of the embedded plotly.js bundle
BASE_IDS = ("fig-overlay", "fig-task-metrics", "fig-components", "fig-hv-budget")


def make_trials(methods: tuple[str, ...] = ("adapmtl", "magnitude"), n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        {
            "method": "dense",
            "trial_id": 1,
            "seed": 0,
            "status": "COMPLETE",
            "is_reference": True,
            "delta_t": 0.0,
            "sparsity": 0.0,
            "iterations": 100,
            "params": {},
            "error": None,
            "metric:segment_semantic:miou": 40.0,
            "sparsity:backbone": 0.0,
            "sparsity:head:segment_semantic": 0.0,
        }
    ]
    for method in methods:
        for k in range(n):
            sparsity = float(rng.uniform(0.5, 0.99))
            delta = float(-4 * sparsity**3 + rng.normal(0, 0.2))
            rows.append(
                {
                    "method": method,
                    "trial_id": len(rows) + 1,
                    "seed": k % 2,
                    "status": "COMPLETE",
                    "is_reference": False,
                    "delta_t": delta,
                    "sparsity": sparsity,
                    "iterations": 100,
                    "params": {"lr": 1e-3 * (k + 1)},
                    "param:lr": 1e-3 * (k + 1),
                    "error": None,
                    "metric:segment_semantic:miou": 40 + delta,
                    "sparsity:backbone": sparsity,
                    "sparsity:head:segment_semantic": sparsity * 0.9,
                }
            )
    frame = pd.DataFrame(rows)
    frame["finished_at"] = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        frame["trial_id"], unit="min"
    )
    return frame


def make_evaluations(trials: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for trial_id in trials.loc[trials["method"] == "adapmtl", "trial_id"]:
        for iteration in (0, 50, 100):
            rows.append(
                {
                    "trial_id": trial_id,
                    "method": "adapmtl",
                    "iteration": iteration,
                    "threshold:backbone": 0.01 + iteration / 1e4,
                    "weight:segment_semantic": 1.0,
                }
            )
    return pd.DataFrame(rows)


def _ids(text: str) -> set[str]:
    return set(re.findall(r'<div id="(fig-[^"]+)"', text))


def _figure_ids(text: str) -> list[str]:
    """Figure ids in page order from the "Figures" heading on (sections included)."""
    return re.findall(r'<div id="(fig-[^"]+)"', text.split("<h2>Figures</h2>", 1)[1])


def test_the_figures_are_the_registered_ones_in_their_order(tmp_path: Path) -> None:
    trials = make_trials()
    evaluations = make_evaluations(trials)
    paths = build_report(trials, evaluations, "s", tmp_path, export_images=False, sparsity=0.8)
    built = FIGURES.build(FigureContext.of(trials, evaluations, sparsity=0.8))
    expected = [figure.div_id for figure in built]
    assert _figure_ids(paths.html.read_text(encoding="utf-8")) == [*expected, "fig-seed-fronts"]
    registered = [spec.id for spec in FIGURES.ordered()]
    assert registered[: len(BASE_IDS)] == list(BASE_IDS)  # the built-in figures come first
    assert {"fig-trajectories", "fig-parcoords"} <= set(registered)


def test_a_registered_figure_joins_the_report(tmp_path: Path, throwaway_figure: str) -> None:
    trials = make_trials()
    paths = build_report(trials, make_evaluations(trials), "s", tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    ids = _figure_ids(text)
    # order 65: after the hyperparameter figures (60), before the sections' figures
    assert ids.index(throwaway_figure) == ids.index("fig-parcoords-magnitude") + 1
    assert ids[-1] == "fig-seed-fronts" and ids[0] == "fig-overlay"
    assert f"<h3>{THROWAWAY_TITLE}</h3>" in text
    counts = throwaway_counts(FigureContext.of(trials))
    assert counts == {"dense": 1, "adapmtl": 8, "magnitude": 8}
    assert '"x":["dense","adapmtl","magnitude"]' in text


def test_full_report(tmp_path: Path) -> None:
    trials = make_trials()
    paths = build_report(
        trials, make_evaluations(trials), "nyu-sweep", tmp_path / "out", export_images=False
    )
    text = paths.html.read_text(encoding="utf-8")
    assert paths.html == tmp_path / "out" / "report.html"
    assert text.count(BUNDLE_MARKER) == 1  # plotly.js embedded exactly once
    assert text.index(BUNDLE_MARKER) < text.index('<div id="fig-overlay"')
    assert "<script src=" not in text and 'src="http' not in text  # works offline
    expected = {*BASE_IDS, "fig-trajectories", "fig-parcoords-adapmtl", "fig-parcoords-magnitude"}
    assert _ids(text) == {*expected, "fig-seed-fronts"}  # two seeds
    assert "Summary per method: its trials by state" in text and "Pareto set" in text
    assert "best Delta_T (%) at &gt;= 90%" in text
    assert "dense (reference)" in text
    assert "No completed trials" not in text
    names = sorted(p.name for p in paths.tables.values())
    assert names == sorted(
        f"{t}.{s}"
        for t in ("paper", "sparsity_levels", "seeds", "by_level")
        for s in ("md", "csv", "tex")
    )
    assert "delta_t level by level" in text
    # adapmtl reaches 90% in seed 1 only, magnitude in seed 0 only
    assert "adapmtl vs magnitude at 90%: no seed in which both reach the level" in text
    paper = (tmp_path / "out" / "tables" / "paper.md").read_text()
    assert paper.splitlines()[2].startswith("| dense (reference) | 1 |")
    assert "| adapmtl |" in paper and "| magnitude |" in paper
    levels = (tmp_path / "out" / "tables" / "sparsity_levels.tex").read_text()
    assert ">= 90\\%" in levels
    assert paths.images == () and paths.notes == ()


def test_report_escapes_study_strings(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    trials = make_trials(methods=(evil,), n=3)
    trials.loc[1, "status"] = "FAILED"
    trials.loc[1, "error"] = f"Traceback\nValueError: {evil}"
    paths = build_report(trials, None, evil, tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    assert evil not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Failed trials" in text and "ValueError: &lt;script&gt;" in text
    assert "fig-parcoords-script-alert-1-script" in _ids(text)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "No trials recorded for this study yet."),
        ("no-columns", "No trials recorded for this study yet."),
        ("failed-only", "No completed trials yet: 3 failed, 0 running, waiting or pruned."),
        ("single", "Only one completed trial so far"),
    ],
)
def test_degenerate_studies_render_with_a_message(tmp_path: Path, kind: str, message: str) -> None:
    full = make_trials(n=3)
    if kind == "empty":
        trials = full.iloc[0:0]
    elif kind == "no-columns":
        trials = pd.DataFrame()
    elif kind == "failed-only":
        trials = full.iloc[1:4].assign(status="FAILED", delta_t=math.nan, error="boom")
    else:
        trials = full.iloc[[1]]
    paths = build_report(trials, pd.DataFrame(), "s", tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    assert message in text
    assert text.count(BUNDLE_MARKER) == 1
    assert set(BASE_IDS) <= _ids(text) and "fig-trajectories" in _ids(text)
    for name in ("paper", "sparsity_levels"):
        assert (tmp_path / "tables" / f"{name}.md").read_text().startswith("| method |")
    if kind == "single":
        assert "fig-parcoords-adapmtl" in _ids(text)
        assert "No completed trials yet" not in text.split("<h2>Figures</h2>")[0]
    else:
        assert "fig-parcoords" in _ids(text)
        assert "No completed trials yet" in text  # figure annotations say so


def test_image_export_is_skipped_with_a_note(tmp_path: Path, monkeypatch) -> None:
    def broken(self, *args, **kwargs):
        raise RuntimeError("\n\nKaleido requires Google Chrome to be installed.\n\nmore")

    monkeypatch.setattr(go.Figure, "to_image", broken)
    paths = build_report(make_trials(n=2), None, "s", tmp_path)
    assert paths.images == ()
    assert paths.notes == (
        "Figure images were not exported: Kaleido requires Google Chrome to be installed.",
    )
    assert "Kaleido requires Google Chrome" in paths.html.read_text(encoding="utf-8")


def test_image_export_writes_png_and_svg(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(go.Figure, "to_image", lambda self, format="png", **kw: format.encode())
    paths = build_report(make_trials(n=2), None, "s", tmp_path)
    names = {p.name for p in paths.images}
    assert {"fig-overlay.png", "fig-overlay.svg", "fig-hv-budget.svg"} <= names
    assert (tmp_path / "figures" / "fig-overlay.svg").read_bytes() == b"svg"
    assert paths.notes == ()


def _seeded(shifts: dict[str, list[float]]) -> pd.DataFrame:
    """Two points per method and seed; ``shifts[method][seed]`` moves the method's Delta_T."""
    rows = []
    for method, by_seed in shifts.items():
        for seed, shift in enumerate(by_seed):
            for sparsity, delta in ((0.5, 1.0), (0.9, -1.0)):
                rows.append(
                    {
                        "method": method,
                        "trial_id": len(rows) + 1,
                        "seed": seed,
                        "status": "COMPLETE",
                        "is_reference": False,
                        "delta_t": delta + shift,
                        "sparsity": sparsity,
                        "params": {},
                    }
                )
    return pd.DataFrame(rows)


def test_seed_section_says_within_or_beyond_noise(tmp_path: Path) -> None:
    shifts = {"adapmtl": [0.0, 0.6, -0.6], "magnitude": [-0.1, 0.5, -0.7], "snip": [-3, -3.1, -2.9]}
    paths = build_report(_seeded(shifts), None, "seeds", tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    assert "<h2>Seeds</h2>" in text and "fig-seed-fronts" in _ids(text)
    assert re.search(
        r"adapmtl vs magnitude: hypervolume difference [0-9.]+ is within seed noise "
        r"\(spread [0-9.]+\)\.",
        text,
    )
    assert re.search(r"magnitude vs snip: hypervolume difference [0-9.]+ exceeds seed noise", text)
    assert (
        "Per method: hypervolume and best Delta_T (%) at or above 90% sparsity over its 3" in text
    )
    table = (tmp_path / "tables" / "seeds.csv").read_text()
    assert "hypervolume std" in table and "hypervolume min" in table


def test_seed_section_with_one_seed(tmp_path: Path) -> None:
    shifts = {"adapmtl": [0.0], "magnitude": [-0.5]}
    paths = build_report(_seeded(shifts), None, "one", tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    assert "This study ran one seed (0): no estimate of seed noise is possible" in text
    assert "fig-seed-fronts" not in _ids(text) and "within seed noise" not in text
    assert not (tmp_path / "tables" / "seeds.md").exists()


def test_grouping_section(tmp_path: Path) -> None:
    grouping = {
        "tasks": ["segment_semantic", "normal"],
        "num_groups": 2,
        "shared_stages": 1,
        "assignment": {"segment_semantic": 1, "normal": 0},
        "probabilities": [[0.3, 0.7], [0.6, 0.4]],
        "history": [{"iteration": 0, "probabilities": [[0.5, 0.5], [0.5, 0.5]]}],
    }
    trials = _seeded({"dmtg": [0.0], "magnitude": [0.0], "magnitude@grouped": [0.5]})
    trials["grouping"] = [grouping if m == "dmtg" else None for m in trials["method"]]
    after = {"assignment": grouping["assignment"], "shared_stages": 1}
    trials["config"] = [{"grouping": after} if "@" in m else {} for m in trials["method"]]
    paths = build_report(trials, None, "groups", tmp_path, export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    assert "<h2>Task grouping (DMTG)</h2>" in text
    assert "dmtg trial 1: 2 tasks in 2 branches, 1 shared stage(s)" in text
    assert {"fig-grouping-heatmap", "fig-grouping-history", "fig-grouped-fronts"} <= _ids(text)
    table = (tmp_path / "tables" / "grouping.md").read_text()
    assert "| segment_semantic | 1 | 0.70 |" in table
    ungrouped = trials[trials["method"] == "magnitude"].drop(columns=["grouping", "config"])
    plain = build_report(ungrouped, None, "p", tmp_path / "p", export_images=False)
    assert "Task grouping" not in plain.html.read_text(encoding="utf-8")


def test_the_summary_shows_delta_m_beside_delta_t(tmp_path: Path) -> None:
    trials = make_trials()
    trials["delta_m"] = trials["delta_t"] / 2
    paths = build_report(trials, None, "dm", tmp_path / "out", export_images=False)
    text = paths.html.read_text(encoding="utf-8")
    delta_t, delta_m = "best Delta_T (%) at &gt;= 90%", "best Delta_m (%) at &gt;= 90%"
    assert delta_t in text and delta_m in text
    assert text.index(delta_t) < text.index(delta_m)
