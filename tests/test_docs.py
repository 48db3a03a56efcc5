"""The documentation site builds offline with warnings as errors: the README as overview,
the guides, and an API reference generated from the docstrings of every package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(repo_root_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # any attempt to fetch something fails at once (a proxy where nothing listens)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(out), "HTTP_PROXY": "http://127.0.0.1:9"}
    env |= {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=repo_root_module,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "WARNING" not in run.stderr, run.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return Path(__file__).resolve().parents[1]


def test_the_overview_is_the_readme_with_working_links(site: Path) -> None:
    index = (site / "index.html").read_text()
    assert "Hyperparameter and architecture search studies" in index
    assert 'href="cluster.html"' in index and 'href="docs/' not in index
    for page in ("python", "methods", "cluster", "recovery"):
        assert (site / f"{page}.html").is_file()


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("trials", ["trials.run_trial", "trials.TrialConfig", "trials.registry.Registry"]),
        ("trials", ["trials.pruning.WeightPruner", "trials.weighting.TaskWeighting"]),
        ("search_spaces", ["search_spaces.SearchSpace", "search_spaces.SEARCH_SPACES"]),
        ("study", ["study.run_study", "study.open_study", "study.StudyHandle.front"]),
        ("analysis", ["analysis.load_study", "analysis.hypervolume", "analysis.FIGURES"]),
    ],
)
def test_every_package_has_its_reference(site: Path, package: str, names: list[str]) -> None:
    page = (site / "api" / f"{package}.html").read_text()
    for name in names:
        assert f'id="{name}"' in page


def test_docstring_roles_become_links_or_code(site: Path) -> None:
    pages = {path: path.read_text() for path in (site / "api").glob("*.html")}
    for text in pages.values():
        assert not re.search(r":(func|class|data|meth|mod|attr):<code>", text)
    trials = pages[site / "api" / "trials.html"]
    assert '<a href="trials.html#trials.run_trial"><code>run_trial</code></a>' in trials


def test_the_pages_load_nothing_from_elsewhere(site: Path) -> None:
    for path in site.rglob("*.html"):
        text = path.read_text()
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', text)
        assert remote == [], (path, remote)
