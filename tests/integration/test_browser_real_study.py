"""A real small study, run by the test, in real headless Chromium: its report, our
dashboard and optuna-dashboard on its database.

One study per module (``paretune run`` of three methods at two sparsity levels); a
quickstart-shaped synthetic study joins its database so the dashboard has a second study
to choose. Screenshots go to each test's tmp folder (and to tests/integration/screenshots/
with ``PARETUNE_KEEP_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from analysis import load_study
from tests.integration.browser import (
    PageProblems,
    chromium,
    free_port,
    keep_screenshot,
    listening_addresses,
    new_page,
    running_dashboard,
    serving,
    write_quickstart_like_study,
)
from tests.integration.helpers import (
    PARETUNE,
    db_url,
    paretune,
    tiny_study,
    write_config,
)

pytestmark = pytest.mark.integration

WIDTH = 1280
WAIT_MS = 30_000
LEVELS = [0.7, 0.9]
SEARCHED = ("magnitude", "adapmtl")

#: Per plotly graph div of the page: its id, how many traces it has and how many of them
#: hold data (points, lines, bars, parallel-coordinate axes or heatmap cells), read from
#: the drawn (decoded) traces.
TRACES = """() => [...document.querySelectorAll(".js-plotly-plot")].map(gd => ({
    id: gd.id || (gd.closest("[id]") || {}).id,
    traces: (gd._fullData || []).length,
    filled: (gd._fullData || []).filter(t =>
        (t.x && t.x.length) || (t.y && t.y.length) || (t.z && t.z.length) ||
        (t.dimensions && t.dimensions.length) || (t.values && t.values.length)).length,
}))"""
#: Tables (and the grid) that run past the viewport: a table shows within the viewport,
#: or within a box that fits it and scrolls sideways (a table with many task metrics).
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const scrolls = b => ["auto", "scroll"].includes(getComputedStyle(b).overflowX);
    const wide = [...document.querySelectorAll("table, .ag-root-wrapper")].filter(t => {
        const box = t.closest(".table-wrap");
        const shown = box && scrolls(box) ? box : t;
        return shown.getBoundingClientRect().right > width + 1;
    });
    const scrolled = [...document.querySelectorAll(".table-wrap")].filter(
        b => b.scrollWidth > b.clientWidth).length;
    return {page: document.documentElement.scrollWidth, width: width, scrolled: scrolled,
            wide: wide.map(b => b.id || b.className || b.tagName)};
}"""
#: Index in ``gd.data`` of one method's front trace.
FRONT_INDEX = """([selector, method]) => document.querySelector(selector).data.findIndex(
    t => t.meta && t.meta.kind === "front" && t.meta.method === method)"""


@dataclass(frozen=True)
class RealStudy:
    """The study run by this module: its name, database URL and folder."""

    name: str
    url: str
    folder: Path


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> RealStudy:
    folder = tmp_path_factory.mktemp("real-study")
    config = tiny_study(
        "views",
        folder,
        methods=[{"name": "dense"}, {"name": "magnitude"}, {"name": "adapmtl"}],
        budget={
            "trials_per_method": 2,
            "iterations": 24,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 8,
            "sparsity_levels": LEVELS,
        },
    )
    paretune("run", str(write_config(config, folder)), cwd=folder)
    url = db_url(config)
    write_quickstart_like_study(url, name="other")  # a second study to choose
    return RealStudy("views", url, Path(config["study_dir"]))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageProblems]]:
    with new_page(browser, WIDTH, WAIT_MS) as page:
        yield page


def _screenshot(page: Page, path: Path) -> None:
    page.mouse.move(5, 5)  # no hover label over the screenshot
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    keep_screenshot(path)


def _check_figures_and_tables(page: Page) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = page.evaluate(TRACES)
    assert figures, "no figure on the page"
    empty = [f for f in figures if f["filled"] == 0]
    assert not empty, f"figures without data: {empty}"
    overflow = page.evaluate(OVERFLOW)
    assert overflow["page"] <= overflow["width"], overflow  # no sideways scroll of the page
    assert not overflow["wide"], overflow
    return figures


def _click_front_point(page: Page, selector: str, method: str) -> None:
    index = page.evaluate(FRONT_INDEX, [selector, method])
    assert index >= 0, f"no front trace for {method}"
    page.locator(selector).scroll_into_view_if_needed()
    traces = page.locator(f"{selector} .scatterlayer .trace")
    box = traces.nth(index).locator(".points path").first.bounding_box()
    assert box is not None, f"the {method} front has no drawn point"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def _trial_ids(real: RealStudy, method: str) -> set[int]:
    trials = load_study(real.url, real.name, evaluations=False).trials
    return {int(t) for t in trials.loc[trials["method"] == method, "trial_id"]}


def test_the_report_of_a_real_study(
    page: tuple[Page, PageProblems], real: RealStudy, tmp_path: Path
) -> None:
    browser_page, problems = page
    report = real.folder / "report" / "report.html"  # written by the run
    assert report.is_file()
    browser_page.goto(report.as_uri())
    browser_page.wait_for_function(
        "() => { const gd = document.querySelector('#fig-overlay');"
        " return gd && gd._fullLayout && gd.data.length > 0; }"
    )
    figures = _check_figures_and_tables(browser_page)
    assert "fig-overlay" in {f["id"] for f in figures}
    fronts = browser_page.evaluate(
        "() => document.querySelector('#fig-overlay').data"
        ".filter(t => t.meta && t.meta.kind === 'front').map(t => t.meta.method)"
    )
    assert sorted(fronts) == sorted(SEARCHED)  # the dense reference is the line at 0
    guides = browser_page.evaluate(
        "() => document.querySelector('#fig-overlay').layout.shapes.map(s => s.name)"
    )
    assert {"dense reference", "level 70%", "level 90%"} <= set(guides)
    headings = browser_page.evaluate(  # the heading right above each table
        "() => [...document.querySelectorAll('.table-wrap')]"
        ".map(b => b.previousElementSibling.textContent)"
    )
    assert len(headings) >= 4
    for heading in headings:  # each says what one row is
        assert re.search(r"per (method|level|task)|: (per|their)", heading), heading

    _click_front_point(browser_page, "#fig-overlay", "magnitude")
    picked = browser_page.locator("#picked-fig-overlay")
    expect(picked).to_be_visible()
    found = re.search(r"trial (\d+) · magnitude · seed 0 · level (70|90)%", picked.inner_text())
    assert found is not None, picked.inner_text()
    assert int(found.group(1)) in _trial_ids(real, "magnitude")
    assert "target_sparsity" in picked.inner_text()

    browser_page.get_by_text("x: compression ratio").click()  # the report's own toggle
    browser_page.wait_for_function(
        "() => document.querySelector('#fig-overlay')._fullLayout.xaxis.type === 'log'"
    )
    _screenshot(browser_page, tmp_path / "report.png")
    problems.check()


def test_the_dashboard_of_a_real_study(
    page: tuple[Page, PageProblems], real: RealStudy, tmp_path: Path
) -> None:
    browser_page, problems = page
    with running_dashboard(real.url, real.name, tmp_path, "--refresh", "2") as dashboard:
        port = int(dashboard.url.rsplit(":", 1)[1].strip("/"))
        assert listening_addresses(port) == {"127.0.0.1"}
        browser_page.goto(dashboard.url)
        overlay = "#overlay .js-plotly-plot"
        browser_page.wait_for_function(
            "(s) => { const gd = document.querySelector(s); return gd && gd.data &&"
            " gd.data.some(t => t.meta && t.meta.kind === 'front'); }",
            arg=overlay,
        )
        status = browser_page.locator("#status")
        expect(status).to_contain_text("study complete: no driver running")
        levels = browser_page.locator("#levels-table")
        expect(levels).to_contain_text(">= 70%")
        expect(levels).to_contain_text(">= 90%")
        expect(browser_page.locator("#table-pager")).to_contain_text("5 trial(s)")
        rows = browser_page.locator("#trials-grid .ag-center-cols-container .ag-row")
        expect(rows).to_have_count(5)  # the reference and 2 trials of each searched method
        browser_page.locator("#figure-view .js-plotly-plot").first.wait_for()
        _check_figures_and_tables(browser_page)

        _click_front_point(browser_page, overlay, "adapmtl")  # a point shows its trial
        panel = browser_page.locator("#trial-panel")
        expect(panel).to_contain_text("paretune replay", timeout=WAIT_MS)
        found = re.search(r"Trial (\d+) · (\S+)", panel.inner_text())
        assert found is not None and found.group(2) == "adapmtl"
        assert int(found.group(1)) in _trial_ids(real, "adapmtl")
        expect(browser_page.locator("#trial-curves .js-plotly-plot")).to_be_visible()

        magnitude = sorted(_trial_ids(real, "magnitude"))[0]  # so does a row of the table
        browser_page.locator(f"#trials-grid .ag-row[row-id='{magnitude}']").first.click()
        expect(panel).to_contain_text(f"Trial {magnitude} · magnitude", timeout=WAIT_MS)

        browser_page.locator("#trials-grid .ag-header-cell-text", has_text="Delta_T").click()
        browser_page.wait_for_function(  # sorted on the server: the worst trials first
            "() => { const c = [...document.querySelectorAll("
            "'#trials-grid .ag-center-cols-container .ag-row[row-index=\"1\"] [col-id=delta_t]')];"
            " return c.length && c[0].textContent.trim() !== ''; }"
        )
        browser_page.locator("#x-axis").get_by_text("compression ratio").click()
        browser_page.wait_for_function(
            "(s) => document.querySelector(s)._fullLayout.xaxis.type === 'log'", arg=overlay
        )
        _screenshot(browser_page, tmp_path / "dashboard.png")

        browser_page.locator("#study").click()  # every study of the database is offered
        studies = browser_page.get_by_role("option", name=re.compile(r"complete\)$"))
        expect(studies).to_have_text([re.compile(r"^views \("), re.compile(r"^other \(")])
        studies.filter(has_text="other").click()
        browser_page.wait_for_function(
            "(s) => document.querySelector(s).layout.title.text.endsWith('· other')",
            arg=overlay,
        )
        expect(browser_page.locator("#table-pager")).to_contain_text("19 trial(s)")
        problems.check()


def _get_json(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def test_optuna_dashboard_opens_the_study_database(
    page: tuple[Page, PageProblems], real: RealStudy, tmp_path: Path
) -> None:
    """optuna-dashboard (installed with the dashboard extra) shows each method run's Optuna
    study of our database, offline, on 127.0.0.1."""
    browser_page, problems = page
    executable = Path(PARETUNE).with_name("optuna-dashboard")
    assert executable.is_file(), "optuna-dashboard is not installed (the dashboard extra)"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [str(executable), real.url, "--host", "127.0.0.1", "--port", str(port)]
    with serving(args, f"{base}/api/studies", tmp_path, "optuna-dashboard.log"):
        assert listening_addresses(port) == {"127.0.0.1"}
        studies = _get_json(f"{base}/api/studies")
        names = {s["study_name"]: s["study_id"] for s in studies["study_summaries"]}
        assert set(names) == {f"views/{m}/seed-0" for m in SEARCHED}
        for name, study_id in names.items():
            detail = _get_json(f"{base}/api/studies/{study_id}?after=0")
            assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"], name
            assert detail["directions"] == ["maximize", "maximize"]
            for trial in detail["trials"]:
                assert "target_sparsity" in {p["name"] for p in trial["params"]}
        browser_page.goto(f"{base}/dashboard/")
        expect(browser_page.get_by_text(f"views/{SEARCHED[0]}/seed-0").first).to_be_visible()
        _screenshot(browser_page, tmp_path / "optuna-dashboard.png")
        problems.check()
