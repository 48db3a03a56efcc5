"""The DMTG relaxation: Gumbel-softmax over groups, the joint loss, gradient scaling."""

from __future__ import annotations

import math
from typing import Any

import torch

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
