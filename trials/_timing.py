"""Timing a few iterations of a trial on this machine, to estimate what a study costs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from trials._config import TrialConfig
from trials._flops import TRAINING_FACTOR


@dataclass(frozen=True)
class TrialTiming:
    """What a few iterations of one trial cost on this machine's device.

    Attributes:
        method: the trial's method.
        device: where it ran (``cpu``, or ``cuda:0 (<GPU name>)``).
        setup_s: building data and model and attaching the pruner (everything before the
            first iteration).
        step_s: seconds per training iteration after the warm-up.
        evaluation_batch_s: one held-out batch (with the final pruning step).
        forward_flops: forward FLOPs per image (training costs three times that).
    """

    method: str
    device: str
    setup_s: float
    step_s: float
    evaluation_batch_s: float
    forward_flops: float


def _device_name(name: str) -> str:
    import torch

    from trials._device import select_device

    device = select_device(name)
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def time_trial(fields: dict[str, Any], steps: int = 3, warmup: int = 1) -> TrialTiming:
    """Runs ``warmup + steps`` iterations of the trial ``fields`` and times them.

    The trial starts from scratch (a checkpoint it would start from changes no timing),
    writes no checkpoint, evaluates one held-out batch at the end, and ignores FLOP or
    time budgets (it runs exactly these iterations).
    """
    from trials._run import run_trial

    if warmup < 1 or steps < 1:
        raise ValueError(f"time_trial needs warmup >= 1 and steps >= 1 (got {warmup}, {steps})")
    iterations = warmup + steps
    config = TrialConfig.model_validate(
        {
            **fields,
            "iterations": iterations,
            "eval_every": iterations,
            "eval_batches": 1,
            "init": "scratch",
            "save_checkpoint": None,
            "reference": None,
            "max_flops": None,
            "max_seconds": None,
        }
    )
    stamps: list[float] = []
    started = time.perf_counter()
    result = run_trial(config, on_step=lambda _iteration, _loss: stamps.append(time.perf_counter()))
    ended = time.perf_counter()
    step_s = (stamps[-1] - stamps[warmup - 1]) / steps
    images = result.iterations * config.batch_size
    return TrialTiming(
        method=config.method,
        device=_device_name(config.device),
        setup_s=max(0.0, stamps[0] - started - step_s),
        step_s=step_s,
        evaluation_batch_s=ended - stamps[-1],
        forward_flops=(result.flops or 0.0) / (TRAINING_FACTOR * images) if images else 0.0,
    )
