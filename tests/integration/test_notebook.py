"""The notebook example (``examples/notebook.py``, jupytext percent format) runs as a script
on tiny settings: one trial, a study through the public API, its frames, fronts and figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from study import open_study
from tests.integration.helpers import worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.py"


def test_the_notebook_runs_a_study_and_draws_its_fronts(tmp_path: Path) -> None:
    env = {**worker_env(), "PARETUNE_EXAMPLE_SCALE": "tiny", "PARETUNE_EXAMPLE_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, str(NOTEBOOK)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
    folder = tmp_path / "notebook"
    assert f"study notebook: COMPLETE, stored in sqlite:///{folder}/paretune.db" in run.stdout
    handle = open_study("notebook", db=f"sqlite:///{folder}/paretune.db")
    counts = handle.trials.groupby("method")["status"].value_counts().to_dict()
    assert counts == {
        ("dense", "COMPLETE"): 1,
        ("magnitude", "COMPLETE"): 2,
        ("adapmtl", "COMPLETE"): 2,
    }
    for method in ("magnitude", "adapmtl"):  # the hypervolume cell printed each front
        assert f"{method}: " in run.stdout and "trials on its front, hypervolume" in run.stdout
    figure = (folder / "fronts.html").read_text()
    assert "plotly" in figure and '"name":"magnitude"' in figure.replace(" ", "")
