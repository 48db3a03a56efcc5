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

    The defaults (calibration ``reference``) follow the reference code (ethanygao/DMTG,
    "DG" below) in its Taskonomy configuration (gradient scaling, a shared stem), except
    for five documented deviations (``docs/methods.md``, DMTG table), each restored by the
    value in :attr:`REFERENCE_VALUES`. DG searches for 100 epochs (tens of thousands of
    steps); a trial searches for a few hundred. At DG's values such a search makes no
    decision (``Theta`` moves by about 0.05, far from an argmax that means anything), and
    letting ``Theta`` simply move faster locks tasks in on noise before the branches have
    learned anything. The deviations fix that: ``logits_travel`` gives ``Theta`` DG's
    travel within any budget, ``warmup_fraction`` keeps it still while the branches
    start to learn, ``decoupled_heads`` stops a head that happens to get more weight from
    winning its task by being better trained, ``tau`` (DG's CelebA value) sharpens the
    samples so branches specialise within the search, and ``balance_weight`` spreads tasks
    over the branches. On ``attributes`` (``tests/trials/test_grouping_recovery.py``)
    these defaults recover the true grouping in 5 of 6 seeds, DG's values in none.
    Calibration ``short-budget`` keeps paretune's earlier recipe (``logits_lr_scale=10``
    in the network's optimizer instead of ``logits_travel``, ``gradient_scaling=
    "sqrt-tasks"``).

    Attributes:
        num_groups: K, the number of group branches searched over (1..N tasks).
        tau: Gumbel-softmax temperature, constant by default (DG train.py:249-251). 2.5
            is DG's CelebA value (DG configs/train_celeb_a/base_celeb_a_100_epoches_9_tasks
            .yaml:27); its Taskonomy configurations and config default use 4.0 (DG
            utils/config.py:57).
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
        logits_travel: how far (in logits) ``Theta`` can move over the search: it trains
            with its own Adam at the constant rate ``logits_travel / (search steps after
            the warm-up)``, whatever the budget (Adam moves a parameter by at most about
            its rate per step). 15 is what DG's CelebA recipe allows: lr 8e-4 for 636
            steps per epoch (batch 256 of CelebA's 162,770 training images), halved every
            15 of 100 epochs, sums to 15.1. ``None``: DG's optimizer, ``Theta`` in the
            network's Adam group at ``logits_lr_scale * lr`` on the trial's schedule
            (DG train.py:89-90), which in a search of a few hundred steps moves it by
            about ``lr * steps``.
        logits_lr_scale: with ``logits_travel=None``, ``Theta``'s rate as a multiple of
            the network's (no weight decay); 1 in DG.
        decoupled_heads: ``True``: every head trains on its full loss and ``z[n, k]``
            scales only the gradient task ``n`` sends into branch ``k`` and the stem, so
            ``Theta`` compares how well each branch's *features* serve a task rather than
            how far its head has fallen behind. ``False`` (DG models/loss.py:21-39): the
            loss ``sum_k z[n, k] * loss(head[k][n])`` weighs heads and branches alike.
        warmup_fraction: share of the search with ``Theta`` frozen (uniform ``z`` plus
            Gumbel noise, no regulariser) while branches and heads learn, so assignments
            are not locked in before the branches' features say which tasks belong
            together; 0 in DG.
        balance_weight: weight of the squared coefficient of variation of the groups'
            expected loads (:func:`~trials.grouping.load_imbalance`) added to the loss,
            against several groups crowding onto one branch while another serves a
            split-off part of a group; 0 in DG. It favours groups of similar size: set it
            to 0 when the groups are expected to be very uneven.
        gradient_scaling: how gradients into the shared parts are scaled
            (:func:`~trials.grouping.gradient_scales`): ``dmtg-taskonomy`` (DG's
            Taskonomy configurations: branches x``1/sqrt(K)``, stem x``1/K``), ``none``
            (DG's CelebA configurations) or ``sqrt-tasks`` (``short-budget``: the stem
            x``1/sqrt(N)``, branches x1).
    """

    #: DG's values of the defaults that deviate from it (docs/methods.md, DMTG table):
    #: ``DMTGParams(**DMTGParams.REFERENCE_VALUES)`` is DG's Taskonomy recipe.
    REFERENCE_VALUES: ClassVar[dict[str, Any]] = {
        "tau": 4.0,
        "logits_travel": None,
        "decoupled_heads": False,
        "warmup_fraction": 0.0,
        "balance_weight": 0.0,
    }

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            "tau": 2.5,
            "logits_travel": None,
            "logits_lr_scale": 10.0,
            "decoupled_heads": True,
            "warmup_fraction": 0.3,
            "balance_weight": 1.0,
            "gradient_scaling": "sqrt-tasks",
        }
    }

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_groups: int = Field(3, ge=1)
    tau: float = Field(2.5, gt=0)
    shared_stages: int = Field(1, ge=0)
    tau_schedule: Literal["constant", "anneal"] = "constant"
    tau_final: float = Field(0.5, gt=0)
    entropy_weight: float = Field(0.0, ge=0)
    search_fraction: float = Field(0.5, gt=0, le=1)
    logits_travel: float | None = Field(15.0, gt=0)
    logits_lr_scale: float = Field(1.0, gt=0)
    decoupled_heads: bool = True
    warmup_fraction: float = Field(0.3, ge=0, lt=1)
    balance_weight: float = Field(1.0, ge=0)
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
