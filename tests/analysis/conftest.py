"""Fixtures shared by the analysis tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from analysis import FIGURES
from tests.analysis.throwaway import register_throwaway


@pytest.fixture
def throwaway_figure() -> Iterator[str]:
    """A report figure registered for one test (unregistered afterwards); its id."""
    figure_id = register_throwaway()
    try:
        yield figure_id
    finally:
        FIGURES.unregister(figure_id)
