"""The dashboard's list of registered figures, drawn in a real (headless, system) Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from analysis import FIGURES
from analysis._dashboard import figure_choices
from tests.integration.browser import (
    CHROMIUM_ARGS,
    QUICKSTART_METHODS,
    PageProblems,
    keep_screenshot,
    require_chromium,
    running_dashboard,
    write_quickstart_like_study,
)

pytestmark = pytest.mark.integration
WAIT_MS = 30_000  # a callback loads the study: slow on a busy machine


def test_dashboard_draws_the_registered_figures(tmp_path: Path) -> None:
    executable = require_chromium()
    study = write_quickstart_like_study(f"sqlite:///{tmp_path}/paretune.db")
    options = figure_choices()
    first, hyperparameters = options[0], FIGURES.get("fig-parcoords")
    searched = [m for m in QUICKSTART_METHODS if m != "dense"]  # dense searches nothing
    with (
        running_dashboard(study.url, study.name, tmp_path, "--refresh", "0") as dashboard,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            problems = PageProblems(page)
            page.goto(dashboard.url)
            view = page.locator("#figure-view")
            expect(view.locator("h3")).to_have_text([first["label"]], timeout=WAIT_MS)
            graph = page.locator(f"#study-{first['value']} .js-plotly-plot")
            expect(graph).to_be_visible(timeout=WAIT_MS)

            page.locator("#figure").click()
            page.get_by_role("option", name=hyperparameters.title, exact=True).click()
            titles = [f"Hyperparameters of {m}" for m in searched]
            expect(view.locator("h3")).to_have_text(titles, timeout=WAIT_MS)
            for method in searched:
                graph = page.locator(f"#study-fig-parcoords-{method} .js-plotly-plot")
                expect(graph).to_be_visible(timeout=WAIT_MS)
            page.screenshot(path=str(tmp_path / "figures.png"), full_page=True)
            keep_screenshot(tmp_path / "figures.png")
            problems.check()
        finally:
            browser.close()
