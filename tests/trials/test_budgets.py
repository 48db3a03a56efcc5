"""Trial budgets in iterations, FLOPs or seconds; every result records all three."""

from __future__ import annotations

import time

import pytest
import torch
from pydantic import ValidationError

from trials import TrialConfig, run_trial
from trials._flops import forward_flops_per_image
from trials._trainer import Trainer, build_setup


def forward_flops(fields: dict[str, object]) -> float:
    """Forward FLOPs per image of the trial's model, counted independently of the trainer."""
    setup = build_setup(TrialConfig.model_validate(fields))
    image = setup.train.get_batch(torch.arange(1))["image"]
    return forward_flops_per_image(setup.model, image)


def test_iteration_budget_records_flops_and_time(tiny_trial):
    result = run_trial(tiny_trial)
    per_image = forward_flops(tiny_trial)
    assert result.iterations == 12
    assert result.flops == pytest.approx(3 * per_image * 12 * 4)
    assert result.wall_time_s > 0
    assert '"flops"' in result.to_json()


def test_flop_budget_fixes_iterations_before_training(tiny_trial):
    per_image = forward_flops(tiny_trial)
    per_iteration = 3 * per_image * tiny_trial["batch_size"]
    fields = {**tiny_trial, "max_flops": 7.5 * per_iteration, "eval_every": 0}
    result = run_trial(fields)
    assert result.iterations == 7  # floor(7.5)
    assert result.flops == pytest.approx(7 * per_iteration)
    assert result.flops <= fields["max_flops"]
    # the default five evaluations follow the derived count: eval_every = 7 // 5 = 1
    assert [e.iteration for e in result.evaluations] == [1, 2, 3, 4, 5, 6, 7]
    # same schedules and data as asking for 7 iterations directly
    direct = run_trial({**tiny_trial, "iterations": 7, "eval_every": 1})
    assert direct.metrics == result.metrics


def test_time_budget_fits_its_evaluations(tiny_trial):
    result = run_trial({**tiny_trial, "max_seconds": 4.0, "eval_every": 0})
    assert result.iterations >= 5
    assert result.wall_time_s < 4.0 * 1.5
    assert result.evaluations[-1].iteration == result.iterations
    assert len(result.evaluations) <= 6


def test_time_budget_stops_training_when_time_is_up(tiny_trial):
    config = TrialConfig.model_validate({**tiny_trial, "max_seconds": 3.0, "eval_every": 0})
    started = time.perf_counter()
    # every step takes 0.2 s longer than the warm-up measured: the plan overruns
    trainer = Trainer(build_setup(config), on_step=lambda i, loss: time.sleep(0.2))
    result = trainer.train(started=started)
    planned = trainer.setup.config.iterations
    assert result.iterations < planned
    assert result.evaluations[-1].iteration == result.iterations  # finalized and evaluated
    # stopped at the first step ending past 3 s; then one final evaluation
    assert 3.0 <= result.evaluations[-1].elapsed_s < 3.0 + 2.0
    assert result.flops == pytest.approx(3 * trainer.forward_flops * result.iterations * 4)


def test_one_budget_unit_at_a_time(tiny_trial):
    with pytest.raises(ValidationError, match=r"give max_flops or max_seconds, not both"):
        TrialConfig.model_validate({**tiny_trial, "max_flops": 1e9, "max_seconds": 10})
    with pytest.raises(ValidationError, match=r"max_flops\n.*greater than 0"):
        TrialConfig.model_validate({**tiny_trial, "max_flops": 0})
