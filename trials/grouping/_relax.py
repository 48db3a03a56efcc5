"""The DMTG relaxation: Gumbel-softmax over groups, the joint loss, gradient scaling."""

from __future__ import annotations

import math
from typing import Any

import torch

from trials.grouping._spec import GRADIENT_SCALINGS

_TINY = 1e-10


def gumbel_softmax(
    logits: torch.Tensor, tau: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Relaxed one-hot samples, one per row: ``softmax((logits + g) / tau)`` with Gumbel
    noise ``g = -log(-log(U))`` (Jang et al. 2017; Maddison et al. 2017).

    Unlike ``torch.nn.functional.gumbel_softmax`` the noise comes from ``generator``, so a
    trial's samples are reproducible. ``hard=False``: gradients flow into ``logits``.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0 but got {tau}")
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
    gumbel = -torch.log(-torch.log(uniform.to(logits.device) + _TINY) + _TINY)
    return torch.softmax((logits + gumbel) / tau, dim=-1)


def temperature_at(
    iteration: int, total: int, tau: float, schedule: str = "constant", tau_final: float = 0.5
) -> float:
    """The temperature at ``iteration`` of a ``total``-step search.

    ``constant`` keeps ``tau`` (DMTG's choice); ``anneal`` goes geometrically from ``tau``
    at the first step to ``tau_final`` at the last.
    """
    if schedule == "constant" or total <= 1:
        return tau
    if schedule != "anneal":
        raise ValueError(f"tau schedule must be 'constant' or 'anneal' but got {schedule!r}")
    progress = min(max(iteration / (total - 1), 0.0), 1.0)
    return tau * (tau_final / tau) ** progress


def joint_loss(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-task DMTG loss ``sum_k z[n, k] * L[n, k]`` for ``(N, K)`` losses and weights
    (sum over the rows for the total)."""
    if losses.shape != weights.shape:
        raise ValueError(
            f"losses {tuple(losses.shape)} and weights {tuple(weights.shape)} must have the "
            "same (tasks, groups) shape"
        )
    return (losses * weights).sum(dim=1)


def task_objectives(
    losses: torch.Tensor, weights: torch.Tensor, decoupled_heads: bool = False
) -> torch.Tensor:
    """Per-task search loss of ``(N, K)`` losses ``L[n, k]`` (of head ``[k][n]``) and
    assignment samples ``z``: its value is always :func:`joint_loss`.

    ``decoupled_heads=False`` (ethanygao/DMTG models/loss.py:21-39): ``sum_k z[n, k] * L[n, k]``,
    every gradient weighted by ``z``. ``True``: the heads' gradients are those of their
    full losses ``sum_k L[n, k]`` (the branches' ``z`` weights are applied inside the
    model, :meth:`DMTGSearchModel.forward_all`), ``z`` gets ``sum_k dz[n, k] * L[n, k]``.
    """
    if not decoupled_heads:
        return joint_loss(losses, weights)
    detached = losses.detach()
    return losses.sum(dim=1) - detached.sum(dim=1) + joint_loss(detached, weights)


def row_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the rows of ``softmax(logits)``."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1).mean()


def load_imbalance(logits: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of the groups' expected loads (the column sums of
    ``softmax(logits)``): 0 when every group expects the same number of tasks (Shazeer et
    al.'s importance loss, ICLR 2017)."""
    load = torch.softmax(logits, dim=-1).sum(dim=0)
    if load.numel() < 2:
        return load.sum() * 0.0
    return load.var(unbiased=False) / load.mean().square()


def shared_gradient_scale(num_tasks: int) -> float:
    """``1 / sqrt(N)``: the scale of gradients into parts shared by ``N`` tasks (Standley
    et al., "Which Tasks Should Be Learned Together in Multi-task Learning?", ICML 2020)."""
    return 1.0 / math.sqrt(num_tasks)


def gradient_scales(scaling: str, num_tasks: int, num_groups: int) -> tuple[float, float]:
    """``(stem, branch)``: the factors a search model applies to the gradient leaving a
    group branch for the stem and to the gradient leaving a head for its branch.

    The net factor of a part is the product of the factors on its way to the loss: heads
    x1, branches x``branch``, the stem x``stem * branch``.

    * ``dmtg-taskonomy``: DMTG's Taskonomy configurations (``regularize_grad:
      trevor_rep_function``, ethanygao/DMTG models/learnToGroup.py:49-62,74-79
      and models/ozan_rep_fun.py:68-94). Both regulators scale by ``1 / sqrt(K)``: the task
      regulator inherits the group regulator's backward, which reads the group class's
      ``n = K``. Branches x``1/sqrt(K)``, the stem x``1/K``.
    * ``none``: DMTG's CelebA configurations (no ``regularize_grad``): no scaling.
    * ``sqrt-tasks``: the stem x``1/sqrt(N)``, branches x1 (:func:`shared_gradient_scale`,
      Standley et al.'s trick for a part shared by N tasks).

    Raises:
        ValueError: an unknown ``scaling``; the message lists the valid ones.
    """
    if scaling == "dmtg-taskonomy":
        factor = 1.0 / math.sqrt(num_groups)
        return factor, factor
    if scaling == "none":
        return 1.0, 1.0
    if scaling == "sqrt-tasks":
        return shared_gradient_scale(num_tasks), 1.0
    raise ValueError(
        f"gradient_scaling must be one of {', '.join(GRADIENT_SCALINGS)} but got {scaling!r}"
    )


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return tensor.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scale_gradient(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    """``tensor`` unchanged in the forward pass; its gradient is multiplied by ``scale``."""
    if not tensor.requires_grad or scale == 1.0:
        return tensor
    return _ScaleGradient.apply(tensor, scale)
