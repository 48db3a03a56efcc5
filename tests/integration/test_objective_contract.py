"""Every objective kind a config accepts reaches Optuna, with fifo and with mo-asha.

One study per scheduler; each method searches one objective kind (paired with another),
so every kind runs through a real Tune run, its trials' reports and Optuna's ``tell``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, tiny_study, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: method -> the objectives its search optimises.
KINDS = {
    "magnitude": [["delta_t", "maximize"], ["sparsity", "maximize"]],
    "random": [["sparsity", "maximize"], ["flops", "minimize"]],
    "disparse-dynamic": [["delta_m", "maximize"], ["sparsity", "maximize"]],
    "snip": [["parameters", "minimize"], ["sparsity", "maximize"]],
    "imp": [["flops", "minimize"], ["delta_t", "maximize"]],
    "lth": [["wall_time_s", "minimize"], ["sparsity", "maximize"]],
    "str": [["device_s", "minimize"], ["sparsity", "maximize"]],
    "disparse": [["metric:segment_semantic:miou", "maximize"], ["sparsity", "maximize"]],
    "adapmtl": [["delta:depth_zbuffer", "maximize"], ["sparsity", "maximize"]],
}
FINISHED = {
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
}


@pytest.mark.parametrize("scheduler", ["fifo", "mo-asha"])
def test_every_objective_kind_reaches_optuna(tmp_path: Path, scheduler: str) -> None:
    name = f"kinds-{scheduler}"
    config = tiny_study(
        name,
        tmp_path,
        methods=[{"name": "dense"}, *({"name": m, "objectives": o} for m, o in KINDS.items())],
        budget={
            "trials_per_method": 2,
            "iterations": 16,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 4,
        },
        scheduler={"name": scheduler, "grace_period": 4, "eta": 2},
        objectives=[["metric:segment_semantic:miou", "maximize"], ["sparsity", "maximize"]],
    )
    url = db_url(config)
    run = paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path)
    assert f"study {name} (COMPLETE)" in " ".join(run.stdout.split())
    assert "Delta_T" not in run.stdout  # not a study objective: no Delta_T table
    assert "best metric:segment_semantic:miou at or above each sparsity level" in run.stdout
    told = 0
    for method, objectives in KINDS.items():
        study = optuna.load_study(study_name=f"{name}/{method}/seed-0", storage=url)
        assert len(study.directions) == len(objectives)
        for trial in study.trials:
            assert trial.state in FINISHED, (method, trial.number, trial.state)
            if trial.state == optuna.trial.TrialState.COMPLETE:
                assert len(trial.values) == len(objectives), (method, trial.values)
                told += 1
    assert told >= len(KINDS)  # at least one result per kind (mo-asha stops some)
    with ResultStore(url) as store:
        trials = store.trials_of(name)
        assert all(t.search_error is None for t in trials), [t.search_error for t in trials]
        assert store.get_study(name).status == "COMPLETE"
        if scheduler == "mo-asha":
            assert any(t.status == "PRUNED" for t in trials)
