"""A plugin package from outside the repository, installed with pip into its own environment.

``tests/plugins/oneshot`` (a one-shot magnitude pruner with its search space, a second
pruner without one, and a report figure, all published through entry points) is copied
to a temporary folder and ``pip install``-ed into a temporary virtual environment that
sees this project's environment (a ``.pth`` file adds its site-packages) but keeps the
plugin to itself. In that environment: ``paretune methods`` and ``paretune models`` list
the plugin, the pruner contract tests run over it, and a real study (local Ray, SQLite)
runs it by its entry point name and by its ``module:Class`` name.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from study import open_study
from tests.integration.helpers import tiny_study, worker_env, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "oneshot"
REFERENCE = "paretune_oneshot.pruner:OneShotMagnitudePruner"


def _run(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=worker_env()
    )
    if run.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {run.returncode}\n"
            f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
        )
    return run


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh environment with the plugin installed by pip."""
    root = tmp_path_factory.mktemp("plugin-env")
    source = root / "paretune-oneshot"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this project's environment (paretune, torch, Ray, pip, setuptools) behind its own
    ours = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in dict.fromkeys(ours))
    (Path(purelib) / "project-environment.pth").write_text(lines)
    _run(
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        str(source),
        cwd=root,
    )
    return python


def test_the_plugin_is_installed_only_in_its_environment(plugin_python: Path) -> None:
    probe = "import importlib.metadata as m; print(m.version('paretune-oneshot'))"
    assert _run(str(plugin_python), "-c", probe, cwd=plugin_python.parent).stdout.strip() == "0.1.0"
    here = subprocess.run([sys.executable, "-c", probe], capture_output=True, cwd=ROOT)
    assert here.returncode != 0  # the project's own environment stays without it


def test_paretune_lists_the_plugin_methods(plugin_python: Path, tmp_path: Path) -> None:
    methods = _run(str(plugin_python), "-m", "study.cli", "methods", cwd=tmp_path).stdout
    rows = {line.split("│")[1].strip(): line for line in methods.splitlines() if "│" in line}
    assert "plugin paretune-oneshot 0.1.0" in rows["one-shot"]
    assert "target_sparsity [0.5, 0.95], prune_at [0.2, 0.8]" in rows["one-shot"]
    assert "no search space" in rows["lonely"]
    models = _run(str(plugin_python), "-m", "study.cli", "models", cwd=tmp_path).stdout
    listed = {name.strip() for name in models.split("methods: ", 1)[1].split(" (")[0].split(",")}
    assert {"one-shot", "lonely", "adapmtl", "dmtg"} <= listed


def test_the_pruner_contract_tests_run_over_the_plugin(plugin_python: Path) -> None:
    """The repository's contract tests, parametrized over every registered pruner, pick the
    installed plugin up by its entry point."""
    run = _run(
        str(plugin_python),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/trials/test_pruner_contract.py",
        "-k",
        "one-shot or lonely",
        cwd=ROOT,
    )
    # per pruner: the lifecycle at two targets, the optimizer groups, the typed params
    assert "8 passed" in run.stdout and "failed" not in run.stdout, run.stdout[-2000:]


def test_a_study_runs_the_plugin_by_name_and_by_class(plugin_python: Path, tmp_path: Path) -> None:
    config = tiny_study(
        "plugin-study",
        tmp_path,
        methods=[
            {"name": "dense"},
            {"name": "one-shot", "search_space": {"prune_at": [0.4, 0.6]}},
            {"name": REFERENCE},
        ],
    )
    config["budget"]["trials_per_method"] = 1
    config["budget"]["eval_every"] = 12
    run = _run(
        str(plugin_python),
        "-m",
        "study.cli",
        "run",
        str(write_config(config, tmp_path)),
        cwd=tmp_path,
    )
    assert "one-shot" in run.stdout
    handle = open_study(config["name"], db=f"sqlite:///{config['study_dir']}/paretune.db")
    trials = handle.trials.set_index("method")
    assert set(trials.index) == {"dense", "one-shot", REFERENCE}
    assert (trials["status"] == "COMPLETE").all(), trials[["status", "error"]]
    for method in ("one-shot", REFERENCE):
        params = trials.loc[method, "params"]
        assert trials.loc[method, "sparsity"] == pytest.approx(params["target_sparsity"], abs=2e-3)
    assert 0.4 <= trials.loc["one-shot", "params"]["prune_at"] <= 0.6
    # the plugin's report figure is in the report the run wrote
    html = (Path(config["study_dir"]) / "report" / "report.html").read_text()
    assert 'id="fig-oneshot-trials"' in html


def test_a_study_of_a_pruner_without_a_search_space_stops_at_once(
    plugin_python: Path, tmp_path: Path
) -> None:
    config = tiny_study("lonely-study", tmp_path, methods=[{"name": "lonely"}])
    path = write_config(config, tmp_path)
    run = subprocess.run(
        [str(plugin_python), "-m", "study.cli", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=worker_env(),
        timeout=300,
    )
    assert run.returncode == 2
    error = run.stderr.strip()
    assert error.count("\n") == 0, error  # one line
    assert (
        "method 'lonely' (weight pruner of plugin paretune-oneshot 0.1.0) has no search space; "
        "add one under 'lonely' to the 'paretune.search_spaces' entry point group"
    ) in error
    assert not os.path.exists(tmp_path / "lonely-study")
