"""Gradual magnitude pruning with the cubic schedule."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from trials.pruning._base import PRUNERS, PrunerParams
from trials.pruning._masked import MaskedPruner


class MagnitudeParams(PrunerParams):
    """Knobs of ``magnitude``.

    Attributes:
        start_fraction: fraction of the budget at which pruning starts.
        end_fraction: fraction of the budget at which the target is reached.
        prune_every: iterations between pruning steps (``None``: about 2% of the
            budget, at least 1).
    """

    start_fraction: float = Field(0.1, ge=0.0, le=1.0)
    end_fraction: float = Field(0.7, ge=0.0, le=1.0)
    prune_every: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> MagnitudeParams:
        if self.end_fraction < self.start_fraction:
            raise ValueError(
                f"end_fraction must be at least start_fraction ({self.start_fraction}) "
                f"but got {self.end_fraction}"
            )
        return self


@PRUNERS.register("magnitude")
class MagnitudePruner(MaskedPruner):
    """Gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune", 2017).

    Every ``prune_every`` steps between ``t0 = start_fraction * T`` and
    ``t_end = end_fraction * T`` the smallest-magnitude weights, ranked **globally** over
    every prunable layer, are pruned to

        ``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0)) ** 3``

    with ``s_i = 0`` and ``s_f`` the target; ``t`` counts optimizer steps done. The last
    pruning step is at ``t_end`` exactly; pruned weights stay pruned.
    """

    Params: ClassVar[type[PrunerParams]] = MagnitudeParams
    params: MagnitudeParams

    @property
    def start_step(self) -> int:
        return round(self.params.start_fraction * self._context().total_iterations)

    @property
    def end_step(self) -> int:
        total = self._context().total_iterations
        return max(self.start_step, min(total, round(self.params.end_fraction * total)))

    @property
    def prune_every(self) -> int:
        if self.params.prune_every is not None:
            return self.params.prune_every
        return max(1, round(0.02 * self._context().total_iterations))

    def scheduled_sparsity(self, step: int) -> float:
        """The cubic schedule's sparsity after ``step`` optimizer steps."""
        final = self.target_sparsity
        start, end = self.start_step, self.end_step
        if step < start:
            return 0.0
        if step >= end:
            return final
        progress = (step - start) / (end - start)
        return final + (0.0 - final) * (1.0 - progress) ** 3

    def is_pruning_step(self, step: int) -> bool:
        """Whether the schedule prunes after ``step`` optimizer steps."""
        start, end = self.start_step, self.end_step
        return step == end or (start <= step < end and (step - start) % self.prune_every == 0)

    def update_masks(self, iteration: int) -> None:
        step = iteration + 1
        if self.is_pruning_step(step):
            self.prune_global_magnitude(self.scheduled_sparsity(step))

    def _complete_schedule(self) -> None:
        self.prune_global_magnitude(self.target_sparsity)
