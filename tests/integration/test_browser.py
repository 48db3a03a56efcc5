"""The HTML report and the dashboard opened in a real (headless, system) Chromium.

Needs /usr/bin/chromium (``make test`` installs it); a missing browser fails the tests.
Screenshots go to each test's tmp folder, and to tests/integration/screenshots/ too when
``PARETUNE_KEEP_SCREENSHOTS`` is set.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from analysis import load_study, method_fronts
from study.store import ResultStore
from tests.integration.browser import (
    QUICKSTART_METHODS,
    PageProblems,
    SyntheticStudy,
    chromium,
    keep_screenshot,
    listening_addresses,
    new_page,
    running_dashboard,
    write_quickstart_like_study,
)
from tests.integration.helpers import PARETUNE, worker_env

pytestmark = pytest.mark.integration

#: Methods of the front traces of a plotly graph div (``meta.kind == "front"``).
FRONTS = """(selector) => {
    const gd = document.querySelector(selector);
    if (!gd || !gd._fullLayout || !Array.isArray(gd.data)) return null;
    return gd.data.filter(t => t.meta && t.meta.kind === "front").map(t => t.meta.method);
}"""
#: Index in ``gd.data`` of one method's front trace.
FRONT_INDEX = """([selector, method]) => document.querySelector(selector).data.findIndex(
    t => t.meta && t.meta.kind === "front" && t.meta.method === method)"""
OVERLAY = "#overlay .js-plotly-plot"
#: The methods with fronts: the dense reference is the overlay's line at Delta_T = 0.
PRUNING = tuple(m for m in QUICKSTART_METHODS if m != "dense")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    folder = tmp_path_factory.mktemp("browser-study")
    return write_quickstart_like_study(f"sqlite:///{folder}/paretune.db")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageProblems]]:
    with new_page(browser) as page:
        yield page


def _wait_for_fronts(page: Page, selector: str, count: int) -> list[str]:
    page.wait_for_function(
        f"(s) => {{ const f = ({FRONTS})(s); return f !== null && f.length >= {count}; }}",
        arg=selector,
    )
    return list(page.evaluate(FRONTS, selector))


def _screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    keep_screenshot(path)


def test_report_in_the_browser(
    page: tuple[Page, PageProblems], study: SyntheticStudy, tmp_path: Path
) -> None:
    browser_page, problems = page
    out = tmp_path / "report"
    env = worker_env()
    command = [PARETUNE, "report", study.name, "--db", study.url, "--out", str(out)]
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    browser_page.goto((out / "report.html").as_uri())
    fronts = _wait_for_fronts(browser_page, "#fig-overlay", len(PRUNING))
    assert sorted(fronts) == sorted(PRUNING)  # one front trace per pruning method
    drawn = browser_page.locator("#fig-overlay .scatterlayer .trace")
    assert drawn.count() == 2 * len(PRUNING)  # fronts and faded trials
    assert browser_page.locator("#fig-overlay .legendtext").count() == len(PRUNING)
    expect(browser_page.locator("h1")).to_have_text(f"Study {study.name}")
    _screenshot(browser_page, tmp_path / "report.png")
    problems.check()


def _click_front_point(page: Page, method: str) -> None:
    index = page.evaluate(FRONT_INDEX, [OVERLAY, method])
    assert index >= 0, f"no front trace for {method}"
    point = page.locator("#overlay .scatterlayer .trace").nth(index).locator(".points path")
    box = point.last.bounding_box()
    assert box is not None, f"the {method} front has no drawn point"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def _front_ids(study: SyntheticStudy, method: str) -> set[int]:
    fronts = method_fronts(load_study(study.url, study.name, evaluations=False).trials)
    chosen = fronts[(fronts["method"] == method) & fronts["on_front"]]
    return {int(i) for i in chosen["trial_id"]}


def _add_trial(study: SyntheticStudy, method: str) -> int:
    with ResultStore(study.url) as store:
        run = store.start_method_run(study.name, method, 0)
        return store.add_trial(
            run,
            params={"target_sparsity": 0.97},
            status="COMPLETE",
            sparsity=0.97,
            delta_t=-2.5,
            components={"backbone": 0.97},
            iterations=300,
        )


def test_dashboard_in_the_browser(
    page: tuple[Page, PageProblems], study: SyntheticStudy, tmp_path: Path
) -> None:
    browser_page, problems = page
    copy = tmp_path / "paretune.db"  # this test adds a trial: leave the shared study alone
    shutil.copyfile(study.url.removeprefix("sqlite:///"), copy)
    study = SyntheticStudy(f"sqlite:///{copy}", study.name, study.trial_ids)
    with running_dashboard(study.url, study.name, tmp_path, "--refresh", "1") as dashboard:
        port = int(dashboard.url.rsplit(":", 1)[1].strip("/"))
        assert f"on {dashboard.url} " in dashboard.output()  # the URL it prints
        assert listening_addresses(port) == {"127.0.0.1"}  # loopback only
        browser_page.goto(dashboard.url)
        fronts = _wait_for_fronts(browser_page, OVERLAY, len(PRUNING))
        assert sorted(fronts) == sorted(PRUNING)
        expect(browser_page.locator("#methods input:checked")).to_have_count(3)

        _click_front_point(browser_page, "adapmtl")
        panel = browser_page.locator("#trial-panel")
        expect(panel).to_contain_text("paretune replay", timeout=20_000)
        text = panel.inner_text()
        found = re.search(r"Trial (\d+) · (\S+)", text)
        assert found is not None, text[:500]
        trial_id, method = int(found.group(1)), found.group(2)
        assert method == "adapmtl" and trial_id in _front_ids(study, "adapmtl")
        for name in ("target_sparsity", "temperature", "threshold_init_backbone"):
            assert name in text  # the searched parameters and the full config
        assert f"paretune replay {study.name} {trial_id} --db {study.url}" in text
        assert "head:normal" in text and "segment_semantic" in text
        curves = browser_page.locator("#trial-curves .js-plotly-plot")
        expect(curves).to_be_visible()
        kinds: Any = browser_page.evaluate(
            "(s) => [...new Set(document.querySelector(s).data.map(t => t.meta.kind))]",
            "#trial-curves .js-plotly-plot",
        )
        assert {"delta_t", "sparsity", "threshold", "weight"} <= set(kinds)

        # a method starting while the page is open shows up at the next refresh
        _add_trial(study, "snip")
        fronts = _wait_for_fronts(browser_page, OVERLAY, len(PRUNING) + 1)
        assert sorted(fronts) == sorted([*PRUNING, "snip"])
        expect(browser_page.locator("#methods input:checked")).to_have_count(4)
        expect(panel).to_contain_text(f"Trial {trial_id} · adapmtl")  # the panel stays
        browser_page.mouse.move(5, 5)  # no hover label over the screenshot
        _screenshot(browser_page, tmp_path / "dashboard.png")
        problems.check()
