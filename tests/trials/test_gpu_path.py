"""The trainer's GPU options, checked on the CPU: the AMP dtype choice, ``channels_last``,
``torch.compile``, Adam's betas and the memory cap of a fractional GPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from trials import TrialConfig, run_trial
from trials._trainer import Trainer, _build_optimizer, amp_dtype, build_setup
from trials._validate import TrialConfigError, validate_trial_config

CUDA = torch.device("cuda")  # a device object only: nothing runs on it here


def test_amp_dtype_choice() -> None:
    assert amp_dtype(TrialConfig(amp=True), torch.device("cpu")) is None  # no AMP on the CPU
    assert amp_dtype(TrialConfig(amp=False), CUDA) is None
    assert amp_dtype(TrialConfig(amp=True, amp_dtype="float16"), CUDA) is torch.float16
    assert amp_dtype(TrialConfig(amp=True, amp_dtype="bfloat16"), CUDA) is torch.bfloat16
    if torch.cuda.is_available():  # auto: bfloat16 exactly where the GPU has it
        expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        assert amp_dtype(TrialConfig(amp=True), CUDA) is expected


def _trial(tiny_trial: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        **tiny_trial,
        "iterations": 4,
        "eval_every": 4,
        "method": "magnitude",
        "method_params": {"target_sparsity": 0.5},
        **fields,
    }


def test_channels_last_trains_in_that_layout(tiny_trial: dict[str, Any]) -> None:
    setup = build_setup(TrialConfig(**_trial(tiny_trial, channels_last=True)))
    convolutions = [m for m in setup.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions[0].weight.is_contiguous(memory_format=torch.channels_last)
    probe = Trainer(setup)
    assert probe.draw_batch()["image"].is_contiguous(memory_format=torch.channels_last)
    assert probe.example_image().is_contiguous(memory_format=torch.channels_last)
    result = run_trial(_trial(tiny_trial, channels_last=True))
    plain = run_trial(_trial(tiny_trial))
    assert result.sparsity["overall"] == pytest.approx(plain.sparsity["overall"], abs=1e-3)
    for task, metrics in plain.metrics.items():
        for name, value in metrics.items():
            assert result.metrics[task][name] == pytest.approx(value, rel=1e-3, abs=1e-3)


def test_compiled_training_steps_give_the_same_result(tiny_trial: dict[str, Any]) -> None:
    fields = _trial(tiny_trial, method="adapmtl", method_params={"threshold_init": -3.0})
    plain = run_trial(fields)
    compiled = run_trial({**fields, "compile": True, "compile_backend": "eager"})
    assert compiled.sparsity["overall"] > 0.0  # the soft thresholds were traced and trained
    assert compiled.sparsity["overall"] == pytest.approx(plain.sparsity["overall"], abs=1e-6)
    for task, metrics in plain.metrics.items():
        assert compiled.metrics[task] == pytest.approx(metrics, rel=1e-5)


def test_unknown_compile_backend_is_a_config_error(tiny_trial: dict[str, Any]) -> None:
    with pytest.raises(TrialConfigError, match=r"unknown compile backend 'inductr'.*'inductor'"):
        validate_trial_config({**tiny_trial, "compile": True, "compile_backend": "inductr"})
    validate_trial_config({**tiny_trial, "compile_backend": "inductr"})  # not compiling


def _optimizer(config: TrialConfig) -> torch.optim.Optimizer:
    setup = build_setup(config)
    setup.pruner.attach(setup.model, Trainer(setup)._context())
    return _build_optimizer(setup)


def test_adam_betas_reach_every_group(tiny_trial: dict[str, Any]) -> None:
    betas = _optimizer(TrialConfig(**tiny_trial, adam_betas=(0.5, 0.999)))
    assert all(group["betas"] == (0.5, 0.999) for group in betas.param_groups)
    default = _optimizer(TrialConfig(**tiny_trial))
    assert all(group["betas"] == (0.9, 0.999) for group in default.param_groups)
    with pytest.raises(ValueError, match=r"Adam betas must lie in \[0, 1\) but got \[0.5, 1.0\]"):
        TrialConfig(adam_betas=(0.5, 1.0))


def test_a_fractional_gpu_caps_the_trial_memory() -> None:
    from study._config import parse_config

    config = parse_config(
        {
            "name": "half",
            "methods": [{"name": "magnitude"}],
            "resources": {"gpus_per_trial": 0.5, "cpus_per_trial": 2},
        }
    )
    for method in ("dense", "magnitude"):
        assert TrialConfig(**config.trial_config(method, {}, 0)).gpu_memory_fraction == 0.5
