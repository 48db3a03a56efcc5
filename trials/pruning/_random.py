"""Random unstructured pruning at initialization."""

from __future__ import annotations

from typing import ClassVar

import torch

from trials.pruning._base import PRUNERS, PrunerParams
from trials.pruning._masked import MaskedPruner, layerwise_topk


class RandomParams(PrunerParams):
    """Knobs of ``random``: only the target sparsity."""


@PRUNERS.register("random")
class RandomPruner(MaskedPruner):
    """A random mask drawn once at ``attach``, the same sparsity in every layer.

    The sanity-check baseline of the pruning-at-initialization literature (e.g. Frankle
    et al., "Pruning Neural Networks at Initialization: Why Are We Missing the Mark?",
    ICLR 2021): each layer keeps exactly ``round((1 - target) * size)`` weights chosen
    uniformly at random with a generator seeded from the trial's seed.
    """

    Params: ClassVar[type[PrunerParams]] = RandomParams

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self._context().seed)
        scores = {
            name: torch.rand(weight.shape, generator=generator)
            for name, weight in self.weights().items()
        }
        return layerwise_topk(scores, self.target_sparsity)
