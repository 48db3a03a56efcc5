"""The report-figure registry: registration, order, building and module discovery."""

from __future__ import annotations

import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

import analysis
from analysis import FIGURES, FigureContext, ReportFigure
from analysis._figure_registry import FigureRegistry
from tests.analysis.test_report import make_evaluations, make_trials
from tests.analysis.throwaway import THROWAWAY_ID, register_throwaway
from trials.registry import UnknownNameError


def _context() -> FigureContext:
    trials = make_trials()
    return FigureContext.of(trials, make_evaluations(trials))


def test_registering_is_loud_and_undone_by_unregister() -> None:
    with pytest.raises(ValueError, match="report figure 'fig-overlay' is already registered"):
        FIGURES.figure("fig-overlay", "Again", order=1)(lambda context: None)
    with pytest.raises(ValueError, match="figure id must look like 'fig-some-name'; got 'Bad id'"):
        FIGURES.figure("Bad id", "Bad", order=1)
    with pytest.raises(UnknownNameError, match=r"unknown report figure 'fig-overlai'.*fig-overlay"):
        FIGURES.unregister("fig-overlai")
    before = FIGURES.names()
    register_throwaway()
    try:
        assert THROWAWAY_ID in FIGURES and len(FIGURES) == len(before) + 1
    finally:
        spec = FIGURES.unregister(THROWAWAY_ID)
    assert spec.id == THROWAWAY_ID and FIGURES.names() == before


def test_order_then_id_and_what_a_builder_may_return() -> None:
    registry = FigureRegistry("report figure")
    figure = go.Figure()
    registry.figure("fig-b", "B", order=2)(lambda context: figure)
    registry.figure("fig-a", "A", order=2)(lambda context: None)
    registry.figure("fig-c", "C", order=1)(
        lambda context: [("fig-c-1", "C 1", figure), ReportFigure("fig-c-2", "C 2", figure)]
    )
    assert [spec.id for spec in registry.ordered()] == ["fig-c", "fig-a", "fig-b"]
    built = registry.build(_context())
    assert [(f.div_id, f.title) for f in built] == [
        ("fig-c-1", "C 1"),
        ("fig-c-2", "C 2"),
        ("fig-b", "B"),
    ]
    assert all(isinstance(f, ReportFigure) and f.figure is figure for f in built)
    registry.figure("fig-d", "D", order=3)(lambda context: [("fig-b", "B again", figure)])
    with pytest.raises(ValueError, match=r"figure ids must be unique in a report; .*'fig-b'"):
        registry.build(_context())


def test_the_context_shares_the_report_reference_point() -> None:
    context = _context()
    assert context.objectives == (("delta_t", "maximize"), ("sparsity", "maximize"))
    reference = analysis.objective_reference(context.trials, context.objectives)
    assert list(context.reference) == list(reference)
    empty = FigureContext.of(None)
    assert empty.reference is None and len(empty.trials) == 0
    with pytest.raises(ValueError, match="direction must be 'maximize' or 'minimize'"):
        FigureContext.of(None, objectives=[("delta_t", "up")])


def test_a_figures_module_is_found_by_its_name(tmp_path: Path) -> None:
    """A ``*_figures`` module registers its figure on import; nothing else lists it."""
    package = tmp_path / "extra_figs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_notes.py").write_text("raise AssertionError('not a figure module')\n")
    (package / "_bars_figures.py").write_text(
        "import plotly.graph_objects as go\n"
        "from analysis import FIGURES\n\n\n"
        '@FIGURES.figure("fig-discovered", "Discovered", order=99)\n'
        "def _discovered(context):\n"
        "    return go.Figure()\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        found = analysis._load_figure_modules("extra_figs", [str(package)])
        assert found == ["extra_figs._bars_figures"]
        assert FIGURES.ordered()[-1].id == "fig-discovered"
        assert [f.div_id for f in FIGURES.build(_context())][-1] == "fig-discovered"
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("extra_figs", "extra_figs._bars_figures"):
            sys.modules.pop(name, None)
        if "fig-discovered" in FIGURES:
            FIGURES.unregister("fig-discovered")
    assert "fig-discovered" not in FIGURES


def test_the_package_loads_its_own_figure_modules() -> None:
    names = analysis._load_figure_modules()
    assert names == sorted(
        f"analysis.{p.stem}" for p in Path(analysis.__file__).parent.glob("*_figures.py")
    )
    assert all(name in sys.modules for name in names)
