"""Group, then prune: the example study end to end, and its bad grouping sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "group_then_prune.yaml"


def shrunk_example(folder: Path, **changes: Any) -> dict[str, Any]:
    """The example with a budget that runs in about a minute."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["dataset"]["options"] = {"num_train": 192, "num_val": 32, "num_test": 32}
    config["budget"].update(trials_per_method=2, iterations=40, eval_every=20, batch_size=16)
    config["study_dir"] = str(folder / config["name"])
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("group")
    config = shrunk_example(folder)
    run = paretune("run", str(write_config(config, folder)), cwd=folder)
    store = ResultStore(db_url(config))
    try:
        trials = store.trials_of(config["name"])
    finally:
        store.close()
    return {"config": config, "run": run, "trials": trials, "folder": folder}


def test_the_grouped_architecture_of_the_best_dmtg_trial_is_pruned(finished) -> None:
    trials = finished["trials"]
    by_method: dict[str, list] = {}
    for trial in trials:
        by_method.setdefault(trial.method, []).append(trial)
    assert sorted(by_method) == ["dense", "dmtg", "magnitude", "magnitude@grouped"]
    assert all(t.status == "COMPLETE" for t in trials), [(t.method, t.error) for t in trials]
    searches = by_method["dmtg"]
    for trial in searches:
        grouping = trial.grouping
        assert len(grouping["tasks"]) == 9 and grouping["num_groups"] == 3
        assert set(grouping["assignment"]) == set(grouping["tasks"])
        assert grouping["history"] and len(grouping["probabilities"]) == 9
        assert trial.sparsity == 0.0 and trial.parameters > 0
    best = max(searches, key=lambda t: (t.delta_t, -t.parameters))
    for trial in by_method["magnitude@grouped"]:
        assert trial.config["grouping"]["assignment"] == best.grouping["assignment"]
        assert trial.grouping["assignment"] == best.grouping["assignment"]
        assert trial.sparsity > 0.3
    assert all(t.config.get("grouping") is None for t in by_method["magnitude"])


def test_the_report_shows_the_grouping_and_both_fronts(finished) -> None:
    html = (Path(finished["config"]["study_dir"]) / "report" / "report.html").read_text()
    for figure in ("fig-grouping-heatmap", "fig-grouping-history", "fig-grouped-fronts"):
        assert figure in html
    assert "magnitude@grouped" in html


def test_a_grouping_source_trial_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    config = shrunk_example(tmp_path, name="missing-source")
    config["methods"] = [{"name": "magnitude", "grouping": {"trial": 999999}}]
    run = paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "trial 999999 does not exist" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_grouping_source_study_without_dmtg_trials_is_a_clear_error(
    finished, tmp_path: Path
) -> None:
    config = shrunk_example(tmp_path, name="other-source", storage=db_url(finished["config"]))
    config["methods"] = [
        {"name": "magnitude", "grouping": {"study": "group-then-prune", "method": "dmtg"}},
        {"name": "random", "grouping": {"study": "no-such-study"}},
    ]
    run = paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no-such-study" in run.stdout + run.stderr
