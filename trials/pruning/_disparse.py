"""DiSparse: multi-task pruning where a shared weight goes only if every task agrees.

Citations ``DS file:line`` are of the reference code, SHI-Labs/DiSparse-Multitask-Model-
Compression at commit afd3b73d (see ``docs/methods.md``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from trials.pruning._base import PRUNABLE_LAYERS, PRUNERS, PrunerParams, PruningContext
from trials.pruning._masked import MaskedPruner, erk_densities, keep_count, layerwise_topk

Ties = Literal["keep-ties", "exact-k"]
Rounding = Literal["floor", "round"]

#: Per-task keep ratios DiSparse's reference hard-codes for ``disparse_static`` (DS
#: create_pruned_net.py:30-70), by data set and target sparsity in percent; any other
#: target keeps ``1 - sparsity``. The overall sparsity they give is near, not at, the
#: target. Use one with ``DisparseParams.fixed_keep_ratio`` (see :func:`reference_keep_ratio`).
REFERENCE_KEEP_RATIOS: dict[str, dict[int, float]] = {
    "nyuv2": {90: 0.08, 70: 0.257, 50: 0.46, 30: 0.675},
    "cityscapes": {90: 0.095, 70: 0.3, 50: 0.51, 30: 0.71},
    "taskonomy": {90: 0.097, 70: 0.257, 50: 0.46, 30: 0.675},
}


def reference_keep_ratio(dataset: str, sparsity: float) -> float:
    """The per-task keep ratio DiSparse's reference uses for ``dataset`` at ``sparsity``.

    Args:
        dataset: ``nyuv2``, ``cityscapes`` or ``taskonomy``.
        sparsity: target sparsity as a fraction (0.9 for the reference's ``--ratio 90``).
    """
    if dataset not in REFERENCE_KEEP_RATIOS:
        raise ValueError(
            f"unknown data set {dataset!r}; choose one of: {', '.join(REFERENCE_KEEP_RATIOS)}"
        )
    percent = round(sparsity * 100)
    if math.isclose(percent, sparsity * 100) and percent in REFERENCE_KEEP_RATIOS[dataset]:
        return REFERENCE_KEEP_RATIOS[dataset][percent]
    return 1.0 - sparsity


def _tie_ranks(flat: torch.Tensor) -> torch.Tensor:
    """Competition ranks (0-based): how many entries are strictly greater than each one."""
    values, order = torch.sort(flat, descending=True, stable=True)
    positions = torch.arange(flat.numel())
    first = torch.ones(flat.numel(), dtype=torch.bool)
    first[1:] = values[1:] != values[:-1]
    starts = torch.cummax(torch.where(first, positions, 0), dim=0).values
    ranks = torch.empty_like(order)
    ranks[order] = starts
    return ranks


class _AgreementRanking:
    """Each task's ranking of its own weights (shared layers + its head), precomputed.

    ``masks(r)``: each task keeps its top ``k = floor(r * n_task)`` (``rounding="floor"``,
    DS prune_utils.py:101) or ``round(r * n_task)`` scores; with ``ties="keep-ties"``
    every score equal to the k-th largest is kept too (the reference's ``>=`` threshold
    on scores divided by their sum, DS prune_utils.py:97-106), with ``"exact-k"`` ties
    are broken by position. A shared weight is kept if *any* task keeps it (pruned only
    if every task agrees, DS prune_utils.py:131-140), a task-specific weight if its task
    keeps it (DS prune_utils.py:142-175).
    """

    def __init__(
        self,
        task_scores: Mapping[str, Mapping[str, torch.Tensor]],
        shared: Collection[str],
        ties: Ties = "keep-ties",
        rounding: Rounding = "floor",
        normalize: bool = True,
    ) -> None:
        self.tasks = list(task_scores)
        self.rounding = rounding
        self.shared = [n for n in next(iter(task_scores.values())) if n in shared]
        self.shapes: dict[str, torch.Size] = {}
        self.owner: dict[str, str] = {}
        for task, scores in task_scores.items():
            missing = [n for n in self.shared if n not in scores]
            if missing:
                raise ValueError(f"task {task!r} has no scores for shared layers {missing}")
            for name, score in scores.items():
                self.shapes[name] = score.shape
                if name in shared:
                    continue
                if name in self.owner:
                    raise ValueError(
                        f"layer {name!r} is scored by tasks {self.owner[name]!r} and {task!r} "
                        "but is not shared"
                    )
                self.owner[name] = task
        shared_size = sum(self.shapes[n].numel() for n in self.shared)
        self.sizes: dict[str, int] = {}
        shared_ranks = []
        self.own_ranks: dict[str, torch.Tensor] = {}
        for task, scores in task_scores.items():
            own = [n for n in scores if n not in shared]
            flat = torch.cat(
                [scores[n].detach().reshape(-1).float().cpu() for n in self.shared + own]
            )
            if ties == "keep-ties":
                total = flat.sum()
                if normalize and total > 0:  # as the reference (0/0 would keep nothing)
                    flat = flat / total
                ranks = _tie_ranks(flat)
            else:
                order = torch.argsort(flat, descending=True, stable=True)
                ranks = torch.empty_like(order)
                ranks[order] = torch.arange(order.numel())
            self.sizes[task] = flat.numel()
            shared_ranks.append(ranks[:shared_size])
            self.own_ranks[task] = ranks[shared_size:]
        self.shared_ranks = torch.stack(shared_ranks)  # (tasks, shared weights)
        self.own_layers = {t: [n for n in task_scores[t] if n not in shared] for t in self.tasks}

    def _count(self, keep_ratio: float, size: int) -> int:
        if self.rounding == "floor":
            return int(size * keep_ratio)
        return round(keep_ratio * size)

    def _keeps(self, keep_ratio: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k = torch.tensor([self._count(keep_ratio, self.sizes[t]) for t in self.tasks])
        shared_keep = (self.shared_ranks < k[:, None]).any(dim=0)
        own_keep = {t: self.own_ranks[t] < k[i] for i, t in enumerate(self.tasks)}
        return shared_keep, own_keep

    def kept(self, keep_ratio: float) -> int:
        """Weights kept over every layer at per-task keep ratio ``keep_ratio``."""
        shared_keep, own_keep = self._keeps(keep_ratio)
        return int(shared_keep.sum()) + sum(int(m.sum()) for m in own_keep.values())

    def masks(self, keep_ratio: float) -> dict[str, torch.Tensor]:
        """Layer name -> boolean keep mask at per-task keep ratio ``keep_ratio``."""
        shared_keep, own_keep = self._keeps(keep_ratio)
        masks: dict[str, torch.Tensor] = {}
        for names, flat in [(self.shared, shared_keep)] + [
            (self.own_layers[t], own_keep[t]) for t in self.tasks
        ]:
            start = 0
            for name in names:
                size = self.shapes[name].numel()
                masks[name] = flat[start : start + size].view(self.shapes[name])
                start += size
        return masks


def agreement_masks(
    task_scores: Mapping[str, Mapping[str, torch.Tensor]],
    shared: Collection[str],
    keep_ratio: float,
    ties: Ties = "keep-ties",
    rounding: Rounding = "floor",
    normalize: bool = True,
) -> dict[str, torch.Tensor]:
    """DiSparse's masks for one per-task keep ratio (DS prune_utils.py:90-176).

    Args:
        task_scores: task -> layer name -> score; every task scores all ``shared``
            layers plus its own (head) layers.
        shared: names of the shared (backbone) layers.
        keep_ratio: fraction of its own scored weights each task keeps (top-k).
        ties: ``keep-ties`` keeps every score equal to the k-th largest (the reference);
            ``exact-k`` breaks ties by position.
        rounding: ``floor`` (the reference's ``int(n * keep_ratio)``) or ``round``.
        normalize: with ``keep-ties``, compare each task's scores divided by their sum,
            as the reference does for gradient scores (its magnitude scores are not, DS
            prune_utils.py:376-382); the division can merge scores one ulp apart.

    Returns:
        Layer name -> keep mask: the union of the tasks' masks on shared layers, the
        owning task's mask elsewhere.
    """
    return _AgreementRanking(task_scores, shared, ties, rounding, normalize).masks(keep_ratio)


def agreement_masks_at_sparsity(
    task_scores: Mapping[str, Mapping[str, torch.Tensor]],
    shared: Collection[str],
    sparsity: float,
    steps: int = 50,
    ties: Ties = "keep-ties",
    rounding: Rounding = "floor",
    normalize: bool = True,
) -> tuple[dict[str, torch.Tensor], float]:
    """DiSparse's masks with the per-task keep ratio bisected to hit ``sparsity`` overall.

    The union on shared layers keeps more than each task's own density, so the per-task
    ratio is lowered until the overall kept count is the largest not above
    ``round((1 - sparsity) * total)`` (the reference hard-codes the ratio instead, see
    :data:`REFERENCE_KEEP_RATIOS`). ``ties`` and ``rounding`` are the selection rule
    inside (see :func:`agreement_masks`); with ``keep-ties`` the kept count can jump
    past the target, and the ratio whose count is closest to it is taken.

    Returns:
        The masks and the per-task keep ratio found.
    """
    ranking = _AgreementRanking(task_scores, shared, ties, rounding, normalize)
    total = sum(shape.numel() for shape in ranking.shapes.values())
    target = keep_count(total, sparsity)
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        if ranking.kept(middle) <= target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda r: (abs(ranking.kept(r) - target), r))
    return ranking.masks(best), best


def union_regrowth(
    scores: Sequence[torch.Tensor], eligible: torch.Tensor, count: int
) -> torch.Tensor:
    """Flat indices of ``count`` eligible positions taken from several tasks' rankings.

    Positions are taken rank by rank across tasks (every task's best, then every task's
    second best, ...), skipping repeats, so the result is the union of the tasks' top
    positions, cut to exactly ``count``.

    Args:
        scores: one flat score tensor per task (e.g. gradient magnitudes).
        eligible: flat boolean tensor of positions that may be chosen.
        count: how many to choose (at most ``eligible.sum()``).
    """
    available = int(eligible.sum())
    if not 0 <= count <= available:
        raise ValueError(f"count must be between 0 and {available} but got {count}")
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=eligible.device)
    tops = [
        torch.argsort(torch.where(eligible, score.float(), -1.0), descending=True, stable=True)[
            :count
        ]
        for score in scores
    ]
    interleaved = torch.stack(tops, dim=1).reshape(-1)
    unique, inverse = torch.unique(interleaved, return_inverse=True)
    positions = torch.arange(interleaved.numel(), device=interleaved.device)
    first = torch.full_like(unique, interleaved.numel())
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return interleaved[first.sort().values[:count]]


def _zero_fraction(weight: torch.Tensor) -> float:
    """Fraction of exact zeros, computed as the reference does (DS dynamic_prune.py:300)."""
    return (torch.sum(weight == 0) / weight.numel()).item()


def density_prune(
    mask: torch.Tensor, weight: torch.Tensor, density: float, drop_rate: float
) -> torch.Tensor:
    """DiSparse's dynamic prune step of one layer (DS dynamic_prune.py:224-243).

    With ``s`` the layer's fraction of exact zeros, the alive entries with the smallest
    ``|weight|`` are dropped, ``round(r * alive)`` of them with
    ``r = clamp(1 - density / (1 - s) * (1 - drop_rate), 0, 1)`` (torch-prune's iterative
    ``l1_unstructured``): the layer ends at about ``density * (1 - drop_rate)`` of its
    weights, whatever it held before. Ties in magnitude go by position.

    Args:
        mask: boolean keep mask (any shape).
        weight: the effective weight (zero where masked), same shape.
        density: the layer's ERK density.
        drop_rate: the cosine-decayed prune rate of this update.

    Returns:
        The new mask (a subset of ``mask``).
    """
    sparsity = _zero_fraction(weight)
    keep = mask.reshape(-1).clone()
    if sparsity >= 1.0:  # nothing alive (the reference divides by zero here)
        return keep.view_as(mask)
    ratio = 1.0 - (density / (1.0 - sparsity)) * (1.0 - drop_rate)
    ratio = min(max(ratio, 0.0), 1.0)
    alive = keep.nonzero().flatten()
    drop = round(ratio * alive.numel())
    if drop:
        magnitude = weight.detach().reshape(-1)[alive].abs()
        keep[alive[torch.argsort(magnitude, stable=True)[:drop]]] = False
    return keep.view_as(mask)


def threshold_regrowth(
    mask: torch.Tensor,
    weight: torch.Tensor,
    scores: Sequence[torch.Tensor],
    density: float,
    empty: Literal["none", "whole-layer"] = "none",
) -> torch.Tensor:
    """DiSparse's dynamic regrowth of one layer (DS dynamic_prune.py:379-473).

    Each task grows ``c = int(g * n)`` positions, ``g = clamp(s - (1 - density), 0, 1)``
    with ``s`` the layer's fraction of exact zeros after the prune step: every pruned
    position whose score reaches the task's c-th largest among pruned positions (ties
    kept; a zero threshold grows every pruned position). The grown set is the union over
    ``scores`` (all tasks for a shared layer, the owner for a head), so a shared layer
    can overshoot ``density``. ``g == 1`` grows everything (DS dynamic_prune.py:393-397).
    A count of 0 with ``g > 0`` makes the reference's ``topk(...)[-1]`` raise, and its
    ``except`` grows the whole layer (``empty="whole-layer"``, DS dynamic_prune.py:408-411);
    ``"none"`` grows nothing there.

    Args:
        mask: boolean keep mask after the prune step.
        weight: the effective weight (zero where masked), same shape.
        scores: per task, ``|dL_t/dW|`` of this layer, same shape.
        density: the layer's ERK density.
        empty: what a zero count grows.

    Returns:
        The new mask (a superset of ``mask``).
    """
    grown = mask.reshape(-1).clone()
    ratio = _zero_fraction(weight * mask) - (1.0 - density)
    ratio = min(max(ratio, 0.0), 1.0)
    if ratio == 0.0:
        return grown.view_as(mask)
    if ratio == 1.0:
        return torch.ones_like(grown).view_as(mask)
    count = int(ratio * mask.numel())
    pruned = ~mask.reshape(-1)
    for score in scores:
        if count == 0:
            if empty == "whole-layer":
                grown[:] = True
            continue
        stat = score.reshape(-1).float() * pruned
        threshold = torch.topk(stat, count, sorted=True).values[-1]
        grown |= stat >= threshold
    return grown.view_as(mask)


def split_batch(batch: Mapping[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """``batch`` cut along its first dimension into ``parts`` consecutive pieces
    (fewer if the batch is smaller; DS dynamic_prune.py:345-349 uses 2 halves)."""
    if parts == 1:
        return [dict(batch)]
    size = min(len(value) for value in batch.values())
    parts = max(1, min(parts, size))
    pieces = {key: torch.tensor_split(value, parts) for key, value in batch.items()}
    return [{key: pieces[key][i] for key in batch} for i in range(parts)]


def _shared_and_heads(
    pruner: MaskedPruner, tasks: Sequence[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """Shared layer names and task -> its head's layer names; unknown heads raise."""
    components = set(pruner.component_of.values())
    unknown = sorted(c for c in components if c.startswith("head:") and c[5:] not in tasks)
    if unknown:
        raise ValueError(
            f"model components {unknown} have no task in the context's tasks {list(tasks)}"
        )
    shared = [n for n, c in pruner.component_of.items() if not c.startswith("head:")]
    own = {t: pruner.layer_names(f"head:{t}") for t in tasks}
    return shared, own


class DisparseParams(PrunerParams):
    """Knobs of ``disparse``; defaults are DiSparse's reference code's.

    Attributes:
        score_batches: training batches the per-task sensitivities are summed over
            (reference ``--num_batches`` 50, DS create_pruned_net.py:128).
        scores: ``gradient`` is ``disparse_static``'s ``|dL_t/dmask|``; ``magnitude`` is
            ``disparse_pt``'s ``|W|`` on the current (e.g. trained) weights (DS
            prune_utils.py:348-384; it needs no batches).
        score_weights: ``reinit`` scores on a copy of the model whose conv/linear weights
            are re-drawn with ``xavier_normal_`` (DS prune_utils.py:29-38; the model keeps
            its weights); ``current`` scores on the model's own weights.
        ties: ``keep-ties`` keeps every score equal to a task's k-th largest (DS
            prune_utils.py:102-106); ``exact-k`` breaks ties by position.
        rounding: a task keeps ``floor`` (DS prune_utils.py:101) or ``round`` of
            ``keep_ratio * n`` weights.
        fixed_keep_ratio: ``None`` bisects the per-task keep ratio so the overall
            sparsity hits ``target_sparsity``; a value is used as is, as the reference's
            hard-coded ratios (:data:`REFERENCE_KEEP_RATIOS`), and the sparsity is what
            results (``target_sparsity`` is then not used).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            "score_batches": 4,
            "score_weights": "current",
            "ties": "exact-k",
            "rounding": "round",
        }
    }

    score_batches: int = Field(50, ge=1)
    scores: Literal["gradient", "magnitude"] = "gradient"
    score_weights: Literal["reinit", "current"] = "reinit"
    ties: Ties = "keep-ties"
    rounding: Rounding = "floor"
    fixed_keep_ratio: float | None = Field(None, gt=0.0, le=1.0)


@PRUNERS.register("disparse")
class DisparsePruner(MaskedPruner):
    """DiSparse, static (Sun, Xu, Wang & Shi, "DiSparse: Disentangled Sparsification for
    Multitask Model Compression", CVPR 2022).

    At ``attach`` each task ``t`` scores its weights (the backbone plus its own head) by
    ``|dL_t / dmask| = |g_t * w|`` summed over ``score_batches`` batches, on a copy of
    the model re-initialised with ``xavier_normal_`` (``score_weights``), and keeps its
    own top-k, ties at the threshold included (``ties``, ``rounding``). A backbone weight
    is pruned only if every task prunes it (backbone mask = union of the tasks' masks);
    each head uses its task's mask. Because the union keeps more than the per-task
    density, the per-task keep ratio is bisected so the overall sparsity hits the target
    (the reference hard-codes it: ``fixed_keep_ratio``). ``scores="magnitude"`` is the
    reference's pretrained variant's score. ``task_scores`` and ``keep_ratio`` record the
    outcome.
    """

    Params: ClassVar[type[PrunerParams]] = DisparseParams
    params: DisparseParams
    task_scores: dict[str, dict[str, torch.Tensor]]
    keep_ratio: float

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        context = self._context()
        shared, own = _shared_and_heads(self, context.tasks)
        names = {t: shared + own[t] for t in context.tasks}
        params = self.params
        if params.scores == "magnitude":
            weights = self.weights()
            self.task_scores = {
                t: {n: weights[n].detach().abs().clone() for n in names[t]} for t in names
            }
        elif params.score_weights == "current":
            self._score_on(self._model(), self.weights(), names)
        else:
            scorer, weights = self._xavier_copy()
            self._score_on(scorer, weights, names)
        normalize = params.scores == "gradient"  # the reference's magnitude scores are not
        if params.fixed_keep_ratio is not None:
            self.keep_ratio = params.fixed_keep_ratio
            return agreement_masks(
                self.task_scores, shared, self.keep_ratio, params.ties, params.rounding, normalize
            )
        masks, self.keep_ratio = agreement_masks_at_sparsity(
            self.task_scores,
            shared,
            self.target_sparsity,
            ties=params.ties,
            rounding=params.rounding,
            normalize=normalize,
        )
        return masks

    def _score_on(
        self, model: nn.Module, weights: Mapping[str, torch.Tensor], names: dict[str, list[str]]
    ) -> None:
        """Sums ``|dL_t/dW * W|`` over ``score_batches`` batches on ``model``."""
        context = self._context()
        self.task_scores = {t: {n: torch.zeros_like(weights[n]) for n in names[t]} for t in names}
        with self.scoring_pass():
            for _ in range(self.params.score_batches):
                grads = self.task_gradients(context.draw_batch(), names, model, weights)
                for task, by_layer in grads.items():
                    for name, grad in by_layer.items():
                        self.task_scores[task][name] += (grad * weights[name]).detach().abs()

    def _xavier_copy(self) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """A train-mode copy of the model with every conv/linear weight re-drawn by
        ``xavier_normal_`` in module order (DS prune_utils.py:29-38), from a generator
        seeded with the trial's seed (the reference draws from the global generator)."""
        scorer = copy.deepcopy(self._model()).train()
        generator = torch.Generator().manual_seed(self._context().seed)
        weights: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for name, module in scorer.named_modules():
                if isinstance(module, PRUNABLE_LAYERS):
                    weight = module.weight
                    assert isinstance(weight, torch.Tensor)
                    fresh = torch.empty(weight.shape, dtype=weight.dtype)
                    nn.init.xavier_normal_(fresh, generator=generator)
                    weight.copy_(fresh)
                    weights[name] = weight
        return scorer, {name: weights[name] for name in self.layers}


class DisparseDynamicParams(PrunerParams):
    """Knobs of ``disparse-dynamic``; defaults are DiSparse's reference code's.

    Attributes:
        update_every: iterations between prune-and-regrow updates (``None``: the
            fraction ``update_fraction`` of the budget, at least 1).
        update_fraction: mask-update interval as a fraction of the budget (reference
            ``INT = 50`` of ``MAX_ITERS = 20000``, DS config_nyuv2.py:18,27).
        prune_rate: the drop rate at the first update; it decays as
            ``prune_rate * 0.5 * (1 + cos(pi * t / t_end))`` (reference 0.5, DS
            config_nyuv2.py:28; DS dynamic_prune.py:32-77).
        end_fraction: fraction of the budget after which the masks stay fixed
            (reference ``END = 15000`` of 20000).
        erk_power: exponent of the ERK layer densities (``erk_power_scale`` 0.9, DS
            dynamic_prune.py:80; 1 is RigL's ERK).
        dense_first_layer: the first shared layer starts dense, as the reference's
            ``backbone.conv1`` (DS dynamic_prune.py:213-216); the first update prunes it.
        update_at_start: an update runs at iteration 0, before the first step (DS
            train.py:165); otherwise the first is after ``update_every`` steps.
        drop_rule: ``density`` drops each layer to ``density * (1 - rate)`` of its
            weights (DS dynamic_prune.py:224-243); ``alive-fraction`` drops
            ``round(rate * alive)``.
        regrowth: ``per-task-ties`` lets each task grow ``int((s - (1 - d)) * n)``
            positions with ties, the union over tasks in shared layers (DS
            dynamic_prune.py:379-431, can overshoot the density); ``exact-union``
            regrows exactly as many as were dropped, from the tasks' rankings in turn.
        regrowth_gradient: ``dense`` takes ``|dL_t/dW|`` with every mask open and
            pruned weights at their retained values (DS dynamic_prune.py:329-366);
            ``masked`` on the masked model.
        regrowth_batch: ``training`` takes the gradients on the batch the next training
            iteration uses, as the reference does (DS train.py:143,172); ``fresh`` draws
            another batch.
        regrowth_splits: the regrowth batch is cut into this many pieces and ``|grad|``
            summed over them (reference 2 halves of 8, DS dynamic_prune.py:323,345-366).
        regrown_values: ``retained`` gives regrown weights the values they had when
            pruned (the reference keeps ``weight_orig``, DS dynamic_prune.py:275-292);
            ``zero`` starts them at zero.
        empty_regrowth: what a layer grows when its regrowth count rounds down to 0
            (``none``; ``whole-layer`` is the reference's ``except`` branch, DS
            dynamic_prune.py:408-411).
        final_prune: at ``end_fraction`` prune every layer (no regrowth) to its ERK
            density, as the reference intends at ``END`` (DS train.py:182-201, which
            calls the undefined ``copy_v2`` and crashes there).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "short-budget": {
            "update_fraction": 0.02,
            "prune_rate": 0.3,
            "erk_power": 1.0,
            "dense_first_layer": False,
            "update_at_start": False,
            "drop_rule": "alive-fraction",
            "regrowth": "exact-union",
            "regrowth_gradient": "masked",
            "regrowth_batch": "fresh",
            "regrowth_splits": 1,
            "regrown_values": "zero",
            "final_prune": False,
        }
    }

    update_every: int | None = Field(None, ge=1)
    update_fraction: float = Field(0.0025, gt=0.0, le=1.0)
    prune_rate: float = Field(0.5, gt=0.0, le=1.0)
    end_fraction: float = Field(0.75, gt=0.0, le=1.0)
    erk_power: float = Field(0.9, ge=0.0)
    dense_first_layer: bool = True
    update_at_start: bool = True
    drop_rule: Literal["density", "alive-fraction"] = "density"
    regrowth: Literal["per-task-ties", "exact-union"] = "per-task-ties"
    regrowth_gradient: Literal["dense", "masked"] = "dense"
    regrowth_batch: Literal["training", "fresh"] = "training"
    regrowth_splits: int = Field(2, ge=1)
    regrown_values: Literal["retained", "zero"] = "retained"
    empty_regrowth: Literal["none", "whole-layer"] = "none"
    final_prune: bool = True


@PRUNERS.register("disparse-dynamic")
class DisparseDynamicPruner(MaskedPruner):
    """DiSparse, dynamic (Sun et al., CVPR 2022), on RigL-style mask updates.

    Starts from random masks with Erdős–Rényi-Kernel layer densities ``d`` at the target
    sparsity (Evci et al., "Rigging the Lottery", ICML 2020; exponent ``erk_power``), the
    first shared layer dense. At iteration 0 and every ``update_every`` iterations before
    ``end_fraction`` of the budget, with the rate ``dr = prune_rate * 0.5 * (1 + cos(pi *
    t / t_end))``, each layer drops its smallest-magnitude weights down to ``d (1 - dr)``
    and regrows pruned positions by per-task gradient magnitude ``|dL_t / dW|`` of the
    dense network: each task its top ``d * dr`` share with ties, the union over tasks in
    the backbone (which can exceed ``d``), its task's in a head. Regrown weights get back
    the values they had when pruned. At ``end_fraction`` every layer is pruned to ``d``
    and the masks stay fixed. The ``short-budget`` calibration keeps the density of every
    layer constant instead (drop ``dr`` of the alive, regrow exactly as many, at zero).
    """

    Params: ClassVar[type[PrunerParams]] = DisparseDynamicParams
    params: DisparseDynamicParams
    densities: dict[str, float]
    _shared: list[str]
    _own: dict[str, list[str]]
    _retained: dict[str, torch.Tensor]
    _final_done: bool

    @property
    def update_every(self) -> int:
        if self.params.update_every is not None:
            return self.params.update_every
        return max(1, round(self.params.update_fraction * self._context().total_iterations))

    @property
    def end_step(self) -> int:
        return round(self.params.end_fraction * self._context().total_iterations)

    def drop_fraction(self, step: int) -> float:
        """The drop rate of the update before iteration ``step`` (after ``step`` steps)."""
        end = self.end_step
        if step >= end:
            return 0.0
        return self.params.prune_rate * 0.5 * (1.0 + math.cos(math.pi * step / end))

    @property
    def _keeps_values(self) -> bool:
        params = self.params
        return params.regrown_values == "retained" or params.regrowth_gradient == "dense"

    # -- lifecycle -------------------------------------------------------------------
    def attach(self, model: nn.Module, context: PruningContext) -> None:
        """Draws the ERK masks and, with ``update_at_start``, runs iteration 0's update."""
        self._final_done = False
        self._retained = {}
        super().attach(model, context)
        self._schedule(0)

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        context = self._context()
        self._shared, self._own = _shared_and_heads(self, context.tasks)
        weights = self.weights()
        if self._keeps_values:
            self._retained = {n: w.detach().clone() for n, w in weights.items()}
        self.densities = erk_densities(
            {n: w.shape for n, w in weights.items()},
            1.0 - self.target_sparsity,
            self.params.erk_power,
        )
        generator = torch.Generator().manual_seed(context.seed)
        scores = {name: torch.rand(w.shape, generator=generator) for name, w in weights.items()}
        masks = layerwise_topk(scores, {name: 1.0 - d for name, d in self.densities.items()})
        if self.params.dense_first_layer and self._shared:
            first = self._shared[0]
            masks[first] = torch.ones_like(masks[first])
        return masks

    def update_masks(self, iteration: int) -> None:
        """After step ``iteration``: the change due before iteration ``iteration + 1``."""
        self._schedule(iteration + 1)

    def _complete_schedule(self) -> None:
        if self.params.final_prune and not self._final_done:
            self._prune_to_density()

    def _schedule(self, step: int) -> None:
        """The mask change due before iteration ``step`` (DS train.py:165-201)."""
        end = self.end_step
        if step == 0 and not self.params.update_at_start:
            return
        if step == end and self.params.final_prune and not self._final_done:
            self._prune_to_density()
            return
        if step >= end or step % self.update_every != 0:
            return
        self._update(step)

    # -- updates ---------------------------------------------------------------------
    def _retain(self) -> None:
        """Copies the alive weights' values into the retained values."""
        with torch.no_grad():
            for name, weight in self.weights().items():
                retained = self._retained[name]
                retained.copy_(torch.where(self.masks[name], weight.detach(), retained))

    @contextlib.contextmanager
    def _dense_weights(self) -> Iterator[None]:
        """Every weight at its retained value (masks open) inside the block."""
        weights = self.weights()
        saved = {name: weight.detach().clone() for name, weight in weights.items()}
        try:
            with torch.no_grad():
                for name, weight in weights.items():
                    weight.copy_(self._retained[name])
            yield
        finally:
            with torch.no_grad():
                for name, weight in weights.items():
                    weight.copy_(saved[name])

    def regrowth_scores(self) -> dict[str, dict[str, torch.Tensor]]:
        """task -> layer -> ``|dL_t/dW|`` summed over the pieces of one batch: the one the
        next training iteration uses (``regrowth_batch="training"``, the reference's DS
        train.py:143,172), or a fresh one."""
        context = self._context()
        names = {t: self._shared + self._own[t] for t in context.tasks}
        training = self.params.regrowth_batch == "training" and context.next_batch is not None
        batch = context.next_batch() if training else context.draw_batch()
        dense = self.params.regrowth_gradient == "dense"
        scores: dict[str, dict[str, torch.Tensor]] = {}
        with self.scoring_pass(), self._dense_weights() if dense else contextlib.nullcontext():
            for piece in split_batch(batch, self.params.regrowth_splits):
                grads = self.task_gradients(piece, names)
                for task, by_layer in grads.items():
                    into = scores.setdefault(task, {})
                    for name, grad in by_layer.items():
                        into[name] = into[name] + grad.abs() if name in into else grad.abs()
        return scores

    def _update(self, step: int) -> None:
        """One prune-and-regrow update before iteration ``step`` (DS train.py:169-172,
        DS dynamic_prune.py:224-484), or today's constant-density update with the
        ``alive-fraction`` / ``exact-union`` options."""
        params = self.params
        fraction = self.drop_fraction(step)
        context = self._context()
        if self._keeps_values:
            self._retain()
        grads = self.regrowth_scores()
        owner = {n: t for t, layer_names in self._own.items() for n in layer_names}
        new_masks: dict[str, torch.Tensor] = {}
        regrown: dict[str, torch.Tensor] = {}
        for name, parameter in self.weights().items():
            # the effective weight: right after the optimizer step masked entries may have
            # moved off zero until ``apply_masks`` runs
            weight = parameter.detach() * self.masks[name]
            mask = self.masks[name].reshape(-1)
            tasks = [owner[name]] if name in owner else list(context.tasks)
            scores = [grads[t][name].reshape(-1) for t in tasks]
            if params.drop_rule == "alive-fraction":
                count = round(fraction * int(mask.sum()))
                if count == 0:
                    continue
                magnitude = torch.where(mask, weight.abs().reshape(-1), math.inf)
                survivors = mask.clone()
                survivors[torch.argsort(magnitude, stable=True)[:count]] = False
            else:
                survivors = density_prune(mask, weight.reshape(-1), self.densities[name], fraction)
                count = int((mask & ~survivors).sum())
            if params.regrowth == "exact-union":
                kept = survivors.clone()
                kept[union_regrowth(scores, ~survivors, count)] = True
            else:
                kept = threshold_regrowth(
                    survivors,
                    weight.reshape(-1),
                    scores,
                    self.densities[name],
                    params.empty_regrowth,
                )
            new_masks[name] = kept.view(weight.shape)
            regrown[name] = (kept & ~survivors).view(weight.shape)
        self.set_masks(new_masks)
        with torch.no_grad():
            for name, fresh in regrown.items():
                weight = self.weights([name])[name]
                if params.regrown_values == "retained":
                    weight.copy_(torch.where(fresh, self._retained[name], weight))
                else:
                    weight.masked_fill_(fresh, 0.0)

    def _prune_to_density(self) -> None:
        """Every layer pruned by magnitude to its ERK density, no regrowth (DS
        train.py:182-188: ``dynamic_disparse_prune`` with the rate decayed to 0)."""
        self._final_done = True
        masks = {}
        for name, mask in self.masks.items():
            weight = self._weights[name].detach() * mask
            masks[name] = density_prune(mask, weight, self.densities[name], 0.0)
        self.set_masks(masks)
