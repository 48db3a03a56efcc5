"""The unpruned reference."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import nn

from trials.pruning._base import PRUNERS, PrunerParams, WeightPruner


class DenseParams(PrunerParams):
    """``dense`` has no knobs; its target sparsity is fixed at 0."""

    target_sparsity: float = Field(0.0, ge=0.0, le=0.0)


@PRUNERS.register("dense")
class DensePruner(WeightPruner):
    """No pruning: the reference every ``Delta_T`` is measured against."""

    Params: ClassVar[type[PrunerParams]] = DenseParams

    def finalize(self) -> nn.Module:
        """The model as trained."""
        return self._model()
