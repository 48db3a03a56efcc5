"""Typed DMTG knobs and their one-sentence errors (stored groupings: ``trials.models``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from trials._calibration import DEFAULT_CALIBRATION, Calibrated
from trials._options import parse_options
from trials.models import GroupingError

GradientScaling = Literal["dmtg-taskonomy", "none", "sqrt-tasks"]
"""How a DMTG search model scales the gradients into its shared parts
(:func:`trials.grouping.gradient_scales`)."""

GRADIENT_SCALINGS: tuple[str, ...] = get_args(GradientScaling)


class DMTGParams(Calibrated, BaseModel):
    """Knobs of ``dmtg`` (Gao et al., "DMTG: One-Shot Differentiable Multi-Task Grouping",
    ICML 2024).

    The defaults (calibration ``reference``) are those of the reference code
    (ethanygao/DMTG, "DG" below) in its Taskonomy configuration, the dense-prediction
    setting closest to the ``scenes`` data sets and the one with a shared stem; its
    CelebA configuration is ``tau=2.5, gradient_scaling="none", shared_stages=0``.
    Calibration ``short-budget`` keeps paretune's earlier values, measured to recover the
    true grouping of the ``attributes`` data set within 300 iterations from scratch
    (``tests/trials/test_grouping_recovery.py``): ``tau=2.5``, ``logits_lr_scale=10``,
    ``decoupled_heads=True``, ``warmup_fraction=0.3``, ``balance_weight=1``,
    ``gradient_scaling="sqrt-tasks"``. On that test's data and budget the reference
    defaults recovered the grouping in two of three seeds, and in none at ``tau=2.5``.

    Attributes:
        num_groups: K, the number of group branches searched over (1..N tasks).
        tau: Gumbel-softmax temperature, constant by default (DG train.py:249-251): 4.0 in
            DG's Taskonomy configurations and its config default (DG utils/config.py:57),
            2.5 on CelebA.
        shared_stages: leading backbone stages shared by every group (the stem); the
            remaining stages are copied once per group.
        tau_schedule: ``constant`` (the paper) or ``anneal`` (geometric from ``tau`` to
            ``tau_final`` over the search).
        tau_final: the temperature at the end of an annealed search.
        entropy_weight: weight of the mean row entropy of ``softmax(Theta)`` added to the
            loss (pushes every task towards one group); 0 in the paper (``is_entropy``
            off in every DG config).
        search_fraction: share of the trial's iterations spent searching; the grouped
            model is fine-tuned for the rest.
        logits_lr_scale: the grouping logits ``Theta`` train with Adam at
            ``logits_lr_scale * lr`` and no weight decay. 1 in DG (``Theta`` is in the
            network's Adam group, DG train.py:89-90). Adam moves a parameter by about its
            learning rate per step, so at the network's rate the logits only drift by
            ``lr * iterations`` (about 1 at a few hundred iterations, far from a
            decision); ``short-budget``'s 10 lets the assignment settle within a
            CPU-sized search.
        decoupled_heads: ``False`` (DG models/loss.py:21-39): the loss
            ``sum_k z[n, k] * loss(head[k][n])`` weighs heads and branches alike.
            ``True`` (``short-budget``): every head trains on its full loss and
            ``z[n, k]`` scales only the gradient task ``n`` sends into branch ``k`` and
            the stem, so ``Theta`` compares how well each branch's *features* serve a
            task rather than how far its head has fallen behind.
        warmup_fraction: share of the search with ``Theta`` frozen (uniform ``z`` plus
            Gumbel noise, no regulariser) while branches and heads learn, so assignments
            are not locked in before the branches' features say which tasks belong
            together; 0 in DG.
        balance_weight: weight of the squared coefficient of variation of the groups'
            expected loads (:func:`~trials.grouping.load_imbalance`) added to the loss,
            against several groups crowding onto one branch while another serves a
            split-off part of a group; 0 in DG. It favours groups of similar size: keep
            it 0 when the groups are expected to be very uneven.
        gradient_scaling: how gradients into the shared parts are scaled
            (:func:`~trials.grouping.gradient_scales`): ``dmtg-taskonomy`` (DG's
            Taskonomy configurations: branches x``1/sqrt(K)``, stem x``1/K``), ``none``
            (DG's CelebA configurations) or ``sqrt-tasks`` (``short-budget``: the stem
            x``1/sqrt(N)``, branches x1).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            "tau": 2.5,
            "logits_lr_scale": 10.0,
            "decoupled_heads": True,
            "warmup_fraction": 0.3,
            "balance_weight": 1.0,
            "gradient_scaling": "sqrt-tasks",
        }
    }

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_groups: int = Field(3, ge=1)
    tau: float = Field(4.0, gt=0)
    shared_stages: int = Field(1, ge=0)
    tau_schedule: Literal["constant", "anneal"] = "constant"
    tau_final: float = Field(0.5, gt=0)
    entropy_weight: float = Field(0.0, ge=0)
    search_fraction: float = Field(0.5, gt=0, le=1)
    logits_lr_scale: float = Field(1.0, gt=0)
    decoupled_heads: bool = False
    warmup_fraction: float = Field(0.0, ge=0, lt=1)
    balance_weight: float = Field(0.0, ge=0)
    gradient_scaling: GradientScaling = "dmtg-taskonomy"


def parse_dmtg_params(
    params: Mapping[str, Any], calibration: str = DEFAULT_CALIBRATION
) -> DMTGParams:
    """Validates ``method_params`` of ``dmtg`` on top of ``calibration``'s defaults; errors
    raise :class:`GroupingError`."""
    merged = {**DMTGParams.preset(calibration), **params}
    return parse_options(DMTGParams, "method 'dmtg'", merged, GroupingError)


def check_num_groups(num_groups: int, tasks: Sequence[str]) -> None:
    """K must lie in ``1..N``."""
    if not 1 <= num_groups <= len(tasks):
        raise GroupingError(
            f"num_groups must be between 1 and {len(tasks)} (the number of tasks) "
            f"but got {num_groups}"
        )
