"""FLOP counting, and turning FLOP or wall-time budgets into a fixed number of iterations.

Conventions:
    * Forward FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on the
      real model: two FLOPs per multiply-accumulate of convolutions and matrix products;
      biases, activations, normalisation and element-wise ops are not counted.
    * Pruned weights count as dense: unstructured zeros are still multiplied by dense
      kernels, so sparsity does not lower the count.
    * Training FLOPs of a trial = 3 x forward FLOPs per image x images seen in training
      steps (one forward and a backward pass costing about two forwards; Kaplan et al.
      2020). Evaluations, pruning scores (SNIP, DiSparse) and the warm-up of a time budget
      are not counted.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

TRAINING_FACTOR = 3
"""Training FLOPs per forward FLOP (forward + backward)."""

STEP_TIME_MARGIN = 1.1
"""Time budgets plan with the warm-up's step time times this (weight pruners add work)."""

DEFAULT_EVALUATIONS = 5
"""Evaluations of a trial whose ``eval_every`` is left to its default (4 periodic + final)."""


def forward_flops_per_image(model: nn.Module, images: torch.Tensor) -> float:
    """Forward FLOPs of ``model`` per image, counted on the batch ``images``.

    The model runs in eval mode without gradients (batch-norm statistics and the random
    number generators are left untouched by the count) and goes back to its mode after.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / images.shape[0]


def training_flops(forward_per_image: float, images_seen: int) -> float:
    """Training FLOPs: ``3 x forward FLOPs per image x images seen``."""
    return TRAINING_FACTOR * forward_per_image * images_seen


def iterations_for_flops(max_flops: float, forward_per_image: float, batch_size: int) -> int:
    """Iterations a FLOP budget pays for: ``floor(max_flops / (3 F batch))``, at least 1."""
    per_iteration = training_flops(forward_per_image, batch_size)
    return max(1, math.floor(max_flops / per_iteration))


def iterations_for_seconds(
    seconds_left: float, step_s: float, evaluation_s: float, eval_every: int
) -> int:
    """Iterations that fit in ``seconds_left`` with their evaluations, at least 1.

    With ``eval_every`` set, ``N`` iterations cost ``N * step + (N / eval_every + 1) *
    evaluation``; with ``eval_every`` 0 (the default of five evaluations) they cost ``N *
    step + 5 * evaluation``. ``step_s`` is inflated by :data:`STEP_TIME_MARGIN`.
    """
    step = step_s * STEP_TIME_MARGIN
    if eval_every > 0:
        fit = (seconds_left - evaluation_s) / (step + evaluation_s / eval_every)
    else:
        fit = (seconds_left - DEFAULT_EVALUATIONS * evaluation_s) / step
    return max(1, math.floor(fit))


def time_training_steps(
    model: nn.Module,
    draw_batch: Callable[[], dict[str, torch.Tensor]],
    loss_of: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
    steps: int = 3,
) -> float:
    """Seconds per plain training step (forward, backward, Adam), timed on a copy.

    One untimed step comes first (allocations, kernel selection). The copy is discarded and
    the global random state restored, so timing does not change the trial that follows;
    ``draw_batch`` should use its own generator for the same reason.
    """
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        twin = copy.deepcopy(model).train()
        optimizer = torch.optim.Adam(twin.parameters(), lr=1e-6)
        started = 0.0
        for step in range(steps + 1):
            if step == 1:
                _synchronize()
                started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_of(twin, draw_batch()).backward()
            optimizer.step()
        _synchronize()
        return (time.perf_counter() - started) / steps


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
