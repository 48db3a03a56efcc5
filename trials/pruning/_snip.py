"""SNIP: single-shot pruning by connection sensitivity at initialization."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from trials.pruning._base import PRUNERS, PrunerParams
from trials.pruning._masked import MaskedPruner, global_topk, keep_count


class SnipParams(PrunerParams):
    """Knobs of ``snip``.

    Attributes:
        score_batches: training batches the connection sensitivity is summed over.
    """

    score_batches: int = Field(4, ge=1)


@PRUNERS.register("snip")
class SnipPruner(MaskedPruner):
    """SNIP (Lee, Ajanthan & Torr, "SNIP: Single-shot Network Pruning based on Connection
    Sensitivity", ICLR 2019).

    At ``attach`` the sensitivity ``|g * w|`` of every prunable weight (``g`` the
    gradient of the sum of task losses) is summed over ``score_batches`` batches; the
    global top-k is kept at the target density and the masked network is trained.
    ``scores`` keeps the sensitivities.
    """

    Params: ClassVar[type[PrunerParams]] = SnipParams
    params: SnipParams
    scores: dict[str, torch.Tensor]

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        context = self._context()
        weights = self.weights()
        names = list(weights)
        self.scores = {name: torch.zeros_like(w) for name, w in weights.items()}
        with self.scoring_pass():
            for _ in range(self.params.score_batches):
                losses = context.task_losses(self._model(), context.draw_batch())
                total = torch.stack(list(losses.values())).sum()
                grads = torch.autograd.grad(total, [weights[n] for n in names], allow_unused=True)
                for name, grad in zip(names, grads, strict=True):
                    if grad is not None:
                        self.scores[name] += (grad * weights[name]).detach().abs()
        return global_topk(self.scores, keep_count(self.total_weights(), self.target_sparsity))
