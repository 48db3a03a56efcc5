"""``budget.sparsity_levels``: every pruning method gets exactly its share of trials at each
level, per seed (also when a study resumes), and the run, the status and the report compare
methods level by level."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import optuna
import pytest

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, tiny_study, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEVELS = [0.5, 0.8]


def test_trials_are_placed_at_the_levels_and_compared_there(tmp_path: Path) -> None:
    config = tiny_study(
        "levels",
        tmp_path,
        methods=[{"name": "dense"}, {"name": "magnitude"}, {"name": "imp"}],
        budget={
            "trials_per_method": 2,
            "iterations": 12,
            "seeds": [0, 1],
            "batch_size": 4,
            "sparsity_levels": LEVELS,
        },
    )
    run = paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path)
    url = db_url(config)
    with ResultStore(url) as store:
        assert store.get_study("levels").status == "COMPLETE"
        for method in ("magnitude", "imp"):
            for seed in (0, 1):
                trials = store.trials_of("levels", method=method, seed=seed)
                assert all(t.status == "COMPLETE" for t in trials), [t.error for t in trials]
                placed = Counter(t.params["target_sparsity"] for t in trials)
                assert placed == {0.5: 1, 0.8: 1}, (method, seed, placed)
                for trial in trials:
                    assert trial.sparsity >= trial.params["target_sparsity"] - 1e-4
                study = optuna.load_study(study_name=f"levels/{method}/seed-{seed}", storage=url)
                told = [t.params["target_sparsity"] for t in study.trials if t.values]
                assert sorted(told) == LEVELS

    text = " ".join(run.stdout.split())
    assert "delta_t level by level" in text and "paired over seeds 0, 1" in text
    for level in ("50%", "80%"):  # one sentence per level: a winner, or no difference
        assert re.search(rf"at {level} by|not distinguishable at {level}:", text), text
    status = " ".join(paretune("status", "levels", "--db", url, cwd=tmp_path).stdout.split())
    assert "at 80%" in status

    # A resumed study (here extended to 4 trials) fills the levels evenly again.
    config["budget"]["trials_per_method"] = 4
    extended = write_config(config, tmp_path)
    paretune("resume", "levels", "--db", url, "--config", str(extended), cwd=tmp_path)
    with ResultStore(url) as store:
        for method in ("magnitude", "imp"):
            for seed in (0, 1):
                trials = store.trials_of("levels", method=method, seed=seed)
                placed = Counter(t.params["target_sparsity"] for t in trials)
                assert placed == {0.5: 2, 0.8: 2}, (method, seed, placed)

    paretune("report", "levels", "--db", url, cwd=tmp_path)
    report = (Path(config["study_dir"]) / "report" / "report.html").read_text()
    assert "delta_t level by level" in report
    by_level = (Path(config["study_dir"]) / "report" / "tables" / "by_level.md").read_text()
    assert by_level.count("| magnitude |") == 2 and by_level.count("| imp |") == 2
    assert "hypervolume of imp over seeds" in report
