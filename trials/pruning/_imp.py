"""Iterative magnitude pruning and the lottery ticket with rewinding."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator

from trials.pruning._base import PRUNERS, PrunerParams
from trials.pruning._masked import MaskedPruner


class ImpParams(PrunerParams):
    """Knobs of ``imp``.

    Attributes:
        rounds: number of train -> prune rounds within the budget.
    """

    rounds: int = Field(3, ge=1)


@PRUNERS.register("imp")
class ImpPruner(MaskedPruner):
    """Iterative magnitude pruning (Han et al., "Learning both Weights and Connections
    for Efficient Neural Networks", NeurIPS 2015), within one shared budget.

    With ``R`` rounds and a budget of ``T`` iterations, round ``k`` (``k = 1..R``) ends
    after ``floor(k * T / (R + 1))`` optimizer steps and prunes the surviving weights by
    global magnitude to sparsity ``1 - (1 - target) ** (k / R)`` (the same fraction of
    survivors each round). The last prune therefore lands at ``R / (R + 1)`` of the
    budget and the final ``T / (R + 1)`` iterations fine-tune the final mask.
    """

    Params: ClassVar[type[PrunerParams]] = ImpParams
    params: ImpParams

    def round_boundaries(self) -> list[int]:
        """Optimizer steps after which each round prunes (non-decreasing, at least 1)."""
        total = self._context().total_iterations
        rounds = self.params.rounds
        return [max(1, k * total // (rounds + 1)) for k in range(1, rounds + 1)]

    def round_sparsity(self, k: int) -> float:
        """Sparsity after round ``k`` (1-based)."""
        return 1.0 - (1.0 - self.target_sparsity) ** (k / self.params.rounds)

    def update_masks(self, iteration: int) -> None:
        step = iteration + 1
        rounds = [k for k, b in enumerate(self.round_boundaries(), start=1) if b == step]
        if rounds:
            self.prune_global_magnitude(self.round_sparsity(max(rounds)))
            self._after_round()

    def _after_round(self) -> None:
        """What follows a round's prune (``imp``: nothing, training continues)."""

    def _complete_schedule(self) -> None:
        self.prune_global_magnitude(self.target_sparsity)


class LthParams(ImpParams):
    """Knobs of ``lth``.

    Attributes:
        rewind_fraction: fraction of the budget whose weights survivors rewind to; must
            come before the first round ends, ``< 1 / (rounds + 1)``. The default 0 rewinds
            to the initial weights, as AdapMTL's comparison protocol describes its LTH
            ("We then reset the model to its initial weights", MitchellX/AdapMTL
            ``SOTA_methods/README.md:5``; no LTH code is released). ``short-budget``: 0.05
            (paretune's value before reference defaults: rewinding to early training, as
            in Frankle et al. 2020).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {"short-budget": {"rewind_fraction": 0.05}}

    rewind_fraction: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _rewind_before_first_round(self) -> LthParams:
        limit = 1.0 / (self.rounds + 1)
        if self.rewind_fraction >= limit:
            raise ValueError(
                f"rewind_fraction must be below 1 / (rounds + 1) = {limit:.4g} "
                f"but got {self.rewind_fraction}"
            )
        return self


@PRUNERS.register("lth")
class LthPruner(ImpPruner):
    """Lottery ticket hypothesis (Frankle & Carbin, ICLR 2019) with weight rewinding
    (Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket
    Hypothesis", ICML 2020).

    The ``imp`` schedule, but every parameter is snapshotted after
    ``round(rewind_fraction * T)`` optimizer steps (at attach, i.e. the initial weights,
    by default) and, right after each round's prune, the network is rewound to that
    snapshot (pruned weights stay zero). The optimizer's
    state and learning-rate schedule belong to the trainer and continue.
    """

    Params: ClassVar[type[PrunerParams]] = LthParams
    params: LthParams
    snapshot: dict[str, torch.Tensor]

    @property
    def rewind_step(self) -> int:
        return round(self.params.rewind_fraction * self._context().total_iterations)

    def _initial_masks(self) -> None:
        self.snapshot = {}
        if self.rewind_step == 0:
            self._take_snapshot()
        return None

    def update_masks(self, iteration: int) -> None:
        if iteration + 1 == self.rewind_step:
            self._take_snapshot()
        super().update_masks(iteration)

    def _take_snapshot(self) -> None:
        self.snapshot = {name: p.detach().clone() for name, p in self._model().named_parameters()}

    def _after_round(self) -> None:
        if not self.snapshot:  # the budget ended a round before the rewind point
            return
        with torch.no_grad():
            for name, parameter in self._model().named_parameters():
                parameter.copy_(self.snapshot[name])
        self.apply_masks()
