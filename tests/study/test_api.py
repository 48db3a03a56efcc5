"""The public study API on real SQLite stores, without Ray: opening a stored study and
reading it through its handle, and the checks run_study and resume_study make before
anything runs. (examples/notebook.py runs a whole study through the API.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml

import study
from study import StoreError, StudyHandle, open_study, parse_config, resume_study, run_study
from study._errors import UserInputError
from study.store import ResultStore
from tests.integration.helpers import TINY_DATA

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
#: ``(method, seed, sparsity, delta_t)`` of the stored trials: magnitude's front is the
#: first three, snip's one trial is dominated by magnitude's at 0.9.
TRIALS = [
    ("magnitude", 0, 0.5, -1.0),
    ("magnitude", 0, 0.7, -2.0),
    ("magnitude", 0, 0.9, -4.0),
    ("magnitude", 0, 0.6, -3.0),
    ("snip", 0, 0.9, -6.0),
]


def _data(name: str, **changes: object) -> dict:
    data = {
        "name": name,
        "dataset": {"name": "scenes-nyu", "options": dict(TINY_DATA)},
        "model": {"options": {"width": 8}, "head_options": {"hidden": 8}},
        "methods": [{"name": "dense"}, {"name": "magnitude"}, {"name": "snip"}],
        "budget": {"trials_per_method": 4, "iterations": 12, "batch_size": 4, "seeds": [0]},
    }
    data.update(changes)
    return data


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stored study ``demo`` in ``./paretune-runs/demo`` and its YAML file."""
    monkeypatch.chdir(tmp_path)
    data = _data("demo")
    config = parse_config({**data, "study_dir": str(tmp_path / "paretune-runs" / "demo")})
    with ResultStore(config.storage_url()) as store:
        store.create_study("demo", config.public_dict(), OBJECTIVES)
        for method, seed, sparsity, delta_t in TRIALS:
            run = store.start_method_run("demo", method, seed)
            store.add_trial(
                run, status="COMPLETE", seed=seed, params={"target_sparsity": sparsity},
                metrics={"depth": {"abs_err": 1.0}}, sparsity=sparsity, delta_t=delta_t,
            )  # fmt: skip
        store.set_study_status("demo", "COMPLETE")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_package_publishes_the_api() -> None:
    for name in ("run_study", "resume_study", "open_study", "check_study", "StudyHandle"):
        assert name in study.__all__ and callable(getattr(study, name))


def test_a_study_opens_by_name_by_database_and_by_config(stored: Path) -> None:
    by_name = open_study("demo")
    assert by_name.url.endswith("paretune-runs/demo/paretune.db")
    assert open_study("demo", db=by_name.url).url == by_name.url
    assert open_study(stored).url == by_name.url == open_study(str(stored)).url
    assert open_study(parse_config(yaml.safe_load(stored.read_text()))).name == "demo"


def test_the_handle_reads_trials_fronts_and_summary(stored: Path) -> None:
    handle = open_study("demo")
    assert isinstance(handle, StudyHandle) and handle.problems == ()
    assert handle.status == "COMPLETE"
    assert handle.objectives == OBJECTIVES
    assert handle.config.name == "demo" and handle.levels == (0.9,)
    trials = handle.trials
    assert isinstance(trials, pd.DataFrame) and len(trials) == len(TRIALS)
    fronts = handle.fronts()
    assert fronts.groupby("method")["on_front"].sum().to_dict() == {"magnitude": 3, "snip": 1}
    front = handle.front("magnitude")
    assert list(front["sparsity"]) == [0.5, 0.7, 0.9]  # sorted by sparsity
    assert list(front["delta_t"]) == [-1.0, -2.0, -4.0]
    assert set(handle.front()["method"]) == {"magnitude"}  # snip is dominated overall
    summary = handle.summary()
    assert summary.loc["magnitude", "pareto_size"] == 3
    assert summary.loc["magnitude", "best_delta_t"] == -4.0  # the best at >= 90%
    assert summary.loc["snip", "best_delta_t"] == -6.0
    assert handle.summary(sparsity=0.6).loc["magnitude", "best_delta_t"] == -2.0
    comparison = handle.compare()
    assert [level.level for level in comparison.levels] == [0.9]
    assert set(comparison.levels[0].methods) == {"magnitude", "snip"}


def test_the_handle_draws_the_fronts_and_writes_the_report(stored: Path, tmp_path: Path) -> None:
    handle = open_study("demo")
    figure = handle.front_figure()
    assert isinstance(figure, go.Figure)
    fronts = [trace.name for trace in figure.data if (trace.meta or {}).get("kind") == "front"]
    assert fronts == ["magnitude", "snip"]
    html = handle.report(tmp_path / "out")
    assert html == tmp_path / "out" / "report.html" and "Pareto fronts" in html.read_text()
    assert handle.report() == handle.folder / "report" / "report.html"


def test_refresh_reads_trials_stored_since(stored: Path) -> None:
    handle = open_study("demo")
    assert len(handle.trials) == len(TRIALS)
    with ResultStore(handle.url) as store:
        run = store.start_method_run("demo", "snip", 1)
        store.add_trial(run, status="RUNNING", seed=1)
    assert len(handle.trials) == len(TRIALS)  # read once
    assert len(handle.refresh().trials) == len(TRIALS) + 1


def test_opening_what_is_not_there_says_so(stored: Path) -> None:
    with pytest.raises(UserInputError, match=r"no study database at .*paretune-runs/other"):
        open_study("other")
    with pytest.raises(StoreError, match=r"unknown study 'other'; choose one of: demo"):
        open_study("other", db=open_study("demo").url)
    with pytest.raises(UserInputError, match=r"study name '\.\./demo': must be"):
        open_study("../demo")


def test_run_study_refuses_a_name_in_use_before_ray_starts(stored: Path) -> None:
    with pytest.raises(UserInputError, match=r"study 'demo' already exists in .*paretune resume"):
        run_study(stored)


def test_resume_study_refuses_a_config_that_changes_more_than_trials(stored: Path) -> None:
    changed = _data("demo", budget={"trials_per_method": 6, "iterations": 24, "seeds": [0]})
    path = stored.with_name("changed.yaml")
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(UserInputError, match=r"changed\.yaml differs from the stored config"):
        resume_study("demo", config=path)
    with pytest.raises(UserInputError, match=r"(?s)changed\.yaml differs .*budget\.iterations"):
        resume_study(path)
    with pytest.raises(UserInputError, match=r"^the new config differs from the stored"):
        resume_study("demo", config=parse_config(changed))
