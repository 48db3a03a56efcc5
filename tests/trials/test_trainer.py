from __future__ import annotations

import math

import pytest
import torch

from trials import TrialConfig, TrialDiverged, run_trial
from trials._trainer import build_setup


def test_same_seed_gives_identical_metrics(tiny_trial):
    first = run_trial(tiny_trial)
    second = run_trial(tiny_trial)
    assert first.metrics == second.metrics
    assert [e.losses for e in first.evaluations] == [e.losses for e in second.evaluations]


def test_different_seed_changes_metrics(tiny_trial):
    first = run_trial(tiny_trial)
    other = run_trial({**tiny_trial, "seed": 4})
    assert first.metrics != other.metrics


def test_evaluations_reported_to_callback(tiny_trial):
    seen = []
    steps = []
    result = run_trial(
        tiny_trial, on_evaluation=seen.append, on_step=lambda i, loss: steps.append(i)
    )
    assert [e.iteration for e in seen] == [6, 12]
    assert steps == list(range(1, 13))
    assert seen[-1].images_seen == 12 * 4
    assert seen[-1].elapsed_s > seen[0].elapsed_s > 0
    assert set(result.metrics) == {"segment_semantic", "depth_zbuffer", "normal"}
    assert result.sparsity["overall"] == 0.0
    assert set(result.sparsity["components"]) == {
        "backbone",
        "head:segment_semantic",
        "head:depth_zbuffer",
        "head:normal",
    }


def test_reference_fills_delta_t(tiny_trial):
    dense = run_trial(tiny_trial)
    again = run_trial({**tiny_trial, "reference": dense.metrics})
    assert again.delta_t == pytest.approx(0.0, abs=1e-9)
    assert again.delta_t_per_task is not None and set(again.delta_t_per_task) == set(dense.metrics)


def test_nan_loss_raises_trial_diverged(tiny_trial):
    with pytest.raises(TrialDiverged, match=r"became nan at iteration"):
        run_trial({**tiny_trial, "lr": 1e30, "iterations": 30, "eval_every": 30})


def test_task_subset_and_learning_rate_schedule(tiny_trial):
    setup = build_setup(TrialConfig.model_validate({**tiny_trial, "tasks": ["normal"]}))
    assert tuple(setup.tasks) == ("normal",)
    assert tuple(setup.model.heads) == ("normal",)


def test_unknown_method_lists_choices(tiny_trial):
    with pytest.raises(KeyError, match=r"unknown method 'adapmt'.*did you mean 'adapmtl'"):
        run_trial({**tiny_trial, "method": "adapmt"})


def test_bad_config_field_is_rejected():
    with pytest.raises(ValueError, match="iterations"):
        TrialConfig.model_validate({"iterations": 0})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        TrialConfig.model_validate({"iteration": 5})


def test_metrics_are_finite(tiny_trial):
    result = run_trial(tiny_trial)
    for task_metrics in result.metrics.values():
        assert all(math.isfinite(v) for v in task_metrics.values())
    assert torch.get_num_threads() == 1
