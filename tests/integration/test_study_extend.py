"""``resume --config`` with more trials extends a finished study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, tiny_study, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_more_trials_extend_a_finished_study(tmp_path: Path) -> None:
    budget = {"trials_per_method": 1, "iterations": 12, "seeds": [0], "batch_size": 4}
    config = tiny_study("extend", tmp_path, methods=[{"name": "dense"}, {"name": "random"}],
                        budget=budget)  # fmt: skip
    path = write_config(config, tmp_path)
    paretune("run", str(path), cwd=tmp_path)
    config["budget"] = {**budget, "trials_per_method": 3}
    path = write_config(config, tmp_path)
    paretune("resume", "extend", "--db", db_url(config), "--config", str(path), cwd=tmp_path)
    with ResultStore(db_url(config)) as store:
        trials = store.trials_of("extend", method="random")
        assert [t.status for t in trials] == ["COMPLETE"] * 3
        assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 3
        assert store.get_study("extend").config["budget"]["trials_per_method"] == 3
        assert store.get_study("extend").status == "COMPLETE"
        assert len(store.trials_of("extend", method="dense")) == 1  # the reference is kept
