"""One definition of every objective, read from final results, evaluations and stored trials."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest

from study._config import OBJECTIVE_COLUMNS, parse_config
from study._objectives import (
    device_share,
    is_objective,
    objective_value,
    objective_values,
    objective_vector,
    task_references,
)
from study.store import TrialRecord

FINAL = {
    "metrics": {"segment_semantic": {"miou": 21.5}, "depth_zbuffer": {"abs_err": 0.8}},
    "sparsity": {"overall": 0.9, "components": {"backbone": 0.88}},
    "delta_t": -4.0,
    "delta_t_per_task": {"segment_semantic": -2.0, "depth_zbuffer": -6.0},
    "delta_m": -4.5,
    "wall_time_s": 10.0,
    "flops": 3.0e9,
    "parameters": 1234,
}
EVALUATION = {
    "metrics": FINAL["metrics"],
    "sparsity": 0.5,
    "delta_t": None,
    "delta_t_per_task": None,
    "elapsed_s": 4.0,
    "flops": 1.0e9,
    "parameters": 1240,
}
KINDS = [*OBJECTIVE_COLUMNS, "metric:segment_semantic:miou", "delta:depth_zbuffer"]


def test_every_accepted_kind_has_a_value_in_a_final_result() -> None:
    values = objective_values(KINDS, FINAL, share=2.0)
    assert values == {
        "delta_t": -4.0,
        "delta_m": -4.5,
        "sparsity": 0.9,
        "parameters": 1234.0,
        "flops": 3.0e9,
        "wall_time_s": 10.0,
        "device_s": 20.0,
        "metric:segment_semantic:miou": 21.5,
        "delta:depth_zbuffer": -6.0,
    }


def test_an_evaluation_reports_what_it_knows() -> None:
    values = objective_values(KINDS, EVALUATION, share=0.5)
    assert values == {
        "sparsity": 0.5,
        "parameters": 1240.0,
        "flops": 1.0e9,
        "wall_time_s": 4.0,
        "device_s": 2.0,
        "metric:segment_semantic:miou": 21.5,
    }  # no reference yet: no delta_t, no per-task delta
    assert objective_vector(["sparsity", "delta_t"], EVALUATION) is None


def test_a_stored_trial_gives_the_same_values() -> None:
    record = TrialRecord(
        id=1,
        study="s",
        method="m",
        method_run_id=1,
        number=0,
        seed=0,
        status="COMPLETE",
        is_reference=False,
        params={},
        config={},
        metrics=FINAL["metrics"],
        sparsity=0.9,
        delta_t=-4.0,
        delta_t_per_task=FINAL["delta_t_per_task"],
        delta_m=-4.5,
        wall_time_s=10.0,
        device_s=7.0,  # stored wins over wall x share
        flops=3.0e9,
        parameters=1234,
    )
    vector = objective_vector(KINDS, asdict(record), share=2.0)
    assert vector == [-4.0, -4.5, 0.9, 1234.0, 3.0e9, 10.0, 7.0, 21.5, -6.0]


def test_missing_and_non_finite_values_are_absent() -> None:
    broken = {**FINAL, "delta_t": math.nan, "metrics": {"segment_semantic": {}}}
    values = objective_values(KINDS, broken)
    assert "delta_t" not in values and "metric:segment_semantic:miou" not in values
    assert objective_value("metric:normal:angle_mean", FINAL) is None
    assert objective_value("delta:normal", FINAL) is None
    with pytest.raises(ValueError, match="unknown objective 'accuracy'"):
        objective_value("accuracy", FINAL)


def test_names_and_shares() -> None:
    assert all(is_objective(kind) for kind in KINDS)
    assert not is_objective("metric:seg") and not is_objective("flops2")
    assert task_references("metric:seg:miou") == ("seg", "miou")
    assert task_references("delta:seg") == ("seg", None)
    assert task_references("sparsity") is None
    assert device_share(cpus=4, gpus=0) == 4 and device_share(cpus=4, gpus=0.5) == 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_mo_asha_accepts_every_kind(kind: str) -> None:
    """Every kind is reported at every evaluation, so mo-asha can rank on it."""
    other = "flops" if kind == "sparsity" else "sparsity"
    config = parse_config(
        {
            "name": "s",
            "methods": [{"name": "magnitude"}],
            "scheduler": {"name": "mo-asha", "grace_period": 10},
            "objectives": [[kind, "maximize"], [other, "maximize"]],
        }
    )
    assert config.objectives[0][0] == kind
