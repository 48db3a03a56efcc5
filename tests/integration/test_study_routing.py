"""One Tune run per study: references beside the searches, and per-method early stopping."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from study.store import ResultStore
from tests.integration.helpers import db_url, paretune, tiny_study, write_config
from trials.metrics import delta_t

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("init", ["scratch", "dense"])
def test_references_and_searches_share_one_run_and_score_by_seed(tmp_path: Path, init: str) -> None:
    """From scratch, searches train beside the references; from the dense model, each
    seed's trials wait for their own reference (and start from its weights)."""
    config = tiny_study(
        "routed",
        tmp_path,
        methods=[{"name": "magnitude"}, {"name": "random"}],
        budget={"trials_per_method": 2, "iterations": 12, "seeds": [0, 1], "batch_size": 4,
                "eval_every": 6},
        # half a CPU each: both references and a search fit on 2 cores at once
        resources={"cpus_per_trial": 0.5, "max_concurrent": 3},
        init=init,
    )  # fmt: skip
    paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path)
    experiments = [p for p in (Path(config["study_dir"]) / "ray").iterdir() if p.is_dir()]
    assert len(experiments) == 1, experiments  # every method and seed in one Tune run
    store = ResultStore(db_url(config))
    try:
        trials = store.trials_of("routed")
        references = {t.seed: t for t in trials if t.is_reference}
        searched = [t for t in trials if not t.is_reference]
    finally:
        store.close()
    assert sorted(references) == [0, 1]
    assert len(searched) == 8 and all(t.status == "COMPLETE" for t in searched)
    for trial in searched:  # Delta_T is scored against the trial's own seed's reference
        expected, _ = delta_t(trial.metrics, references[trial.seed].metrics)
        assert trial.delta_t == pytest.approx(expected)
    first_reference_end = min(r.finished_at for r in references.values())
    if init == "scratch":
        assert any(t.started_at < first_reference_end for t in searched), "searches waited"
        assert all(t.config["init"] == "scratch" for t in searched)
        return
    for trial in searched:
        own = references[trial.seed]
        assert trial.started_at >= own.finished_at, "a trial started before its reference"
        assert trial.config["init"] == own.config["save_checkpoint"]
        assert Path(trial.config["init"]).is_file()


def test_mo_asha_stops_trials_early_and_records_them(tmp_path: Path) -> None:
    config = tiny_study(
        "asha",
        tmp_path,
        methods=[{"name": "magnitude", "trials": 6}],
        budget={"trials_per_method": 6, "iterations": 24, "seeds": [0], "batch_size": 4,
                "eval_every": 4},
        scheduler={"name": "mo-asha", "grace_period": 4, "eta": 2},
    )  # fmt: skip
    run = paretune("run", str(write_config(config, tmp_path)), cwd=tmp_path)
    store = ResultStore(db_url(config))
    try:
        trials = [t for t in store.trials_of("asha") if not t.is_reference]
        evaluations = {t.id: store.evaluations_of(t.id) for t in trials}
        runs = {r.method: r.status for r in store.method_runs_of("asha")}
    finally:
        store.close()
    assert runs == {"dense": "COMPLETE", "magnitude": "COMPLETE"}  # stopped trials count
    pruned = [t for t in trials if t.status == "PRUNED"]
    complete = [t for t in trials if t.status == "COMPLETE"]
    assert len(trials) == 6 and pruned and complete, [(t.status, t.rung) for t in trials]
    for trial in pruned:
        assert trial.rung in (4, 8, 16) and trial.iterations < 24
        assert trial.iterations == max(e.iteration for e in evaluations[trial.id])
        assert trial.wall_time_s and trial.device_s
    assert all(t.iterations == 24 and t.rung is None for t in complete)
    study = optuna.load_study(study_name="asha/magnitude/seed-0", storage=db_url(config))
    states = sorted(t.state.name for t in study.trials)
    assert states.count("PRUNED") == len(pruned) and states.count("COMPLETE") == len(complete)
    assert "magnitude" in run.stdout
    status = paretune("status", "asha", "--db", db_url(config), cwd=tmp_path)
    assert "magnitude" in status.stdout
