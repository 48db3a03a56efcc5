"""DiSparse: multi-task pruning where a shared weight goes only if every task agrees."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar

import torch
from pydantic import Field

from trials.pruning._base import PRUNERS, PrunerParams
from trials.pruning._masked import MaskedPruner, erk_densities, keep_count, layerwise_topk


class _AgreementRanking:
    """Each task's ranking of its own weights (shared layers + its head), precomputed.

    ``masks(r)``: each task keeps the top ``round(r * n_task)`` of its scores; a shared
    weight is kept if *any* task keeps it (pruned only if every task agrees), a
    task-specific weight if its task keeps it.
    """

    def __init__(
        self, task_scores: Mapping[str, Mapping[str, torch.Tensor]], shared: Collection[str]
    ) -> None:
        self.tasks = list(task_scores)
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
            order = torch.argsort(flat, descending=True, stable=True)
            ranks = torch.empty_like(order)
            ranks[order] = torch.arange(order.numel())
            self.sizes[task] = flat.numel()
            shared_ranks.append(ranks[:shared_size])
            self.own_ranks[task] = ranks[shared_size:]
        self.shared_ranks = torch.stack(shared_ranks)  # (tasks, shared weights)
        self.own_layers = {t: [n for n in task_scores[t] if n not in shared] for t in self.tasks}

    def _keeps(self, keep_ratio: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k = torch.tensor([round(keep_ratio * self.sizes[t]) for t in self.tasks])
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
) -> dict[str, torch.Tensor]:
    """DiSparse's masks for one per-task keep ratio.

    Args:
        task_scores: task -> layer name -> score; every task scores all ``shared``
            layers plus its own (head) layers.
        shared: names of the shared (backbone) layers.
        keep_ratio: fraction of its own scored weights each task keeps (top-k).

    Returns:
        Layer name -> keep mask: the union of the tasks' masks on shared layers, the
        owning task's mask elsewhere.
    """
    return _AgreementRanking(task_scores, shared).masks(keep_ratio)


def agreement_masks_at_sparsity(
    task_scores: Mapping[str, Mapping[str, torch.Tensor]],
    shared: Collection[str],
    sparsity: float,
    steps: int = 50,
) -> tuple[dict[str, torch.Tensor], float]:
    """DiSparse's masks with the per-task keep ratio bisected to hit ``sparsity`` overall.

    The union on shared layers keeps more than each task's own density, so the per-task
    ratio is lowered until the overall kept count is the largest not above
    ``round((1 - sparsity) * total)``.

    Returns:
        The masks and the per-task keep ratio found.
    """
    ranking = _AgreementRanking(task_scores, shared)
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
    """Knobs of ``disparse``.

    Attributes:
        score_batches: training batches the per-task sensitivities are summed over.
    """

    score_batches: int = Field(4, ge=1)


@PRUNERS.register("disparse")
class DisparsePruner(MaskedPruner):
    """DiSparse, static (Sun, Xu, Wang & Shi, "DiSparse: Disentangled Sparsification for
    Multitask Model Compression", CVPR 2022).

    At ``attach`` each task ``t`` scores its weights (the backbone plus its own head) by
    ``|dL_t / dmask| = |g_t * w|`` summed over ``score_batches`` batches, and keeps its own
    top-k. A backbone weight is pruned only if every task prunes it (backbone mask =
    union of the tasks' masks); each head uses its task's mask. Because the union keeps
    more than the per-task density, the per-task keep ratio is bisected so the overall
    sparsity hits the target. ``task_scores`` and ``keep_ratio`` record the outcome.
    """

    Params: ClassVar[type[PrunerParams]] = DisparseParams
    params: DisparseParams
    task_scores: dict[str, dict[str, torch.Tensor]]
    keep_ratio: float

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        context = self._context()
        shared, own = _shared_and_heads(self, context.tasks)
        names = {t: shared + own[t] for t in context.tasks}
        weights = self.weights()
        self.task_scores = {t: {n: torch.zeros_like(weights[n]) for n in names[t]} for t in names}
        with self.scoring_pass():
            for _ in range(self.params.score_batches):
                grads = self.task_gradients(context.draw_batch(), names)
                for task, by_layer in grads.items():
                    for name, grad in by_layer.items():
                        self.task_scores[task][name] += (grad * weights[name]).detach().abs()
        masks, self.keep_ratio = agreement_masks_at_sparsity(
            self.task_scores, shared, self.target_sparsity
        )
        return masks


class DisparseDynamicParams(PrunerParams):
    """Knobs of ``disparse-dynamic``.

    Attributes:
        update_every: iterations between prune-and-regrow updates (``None``: about 2% of
            the budget, at least 1).
        prune_rate: fraction of surviving weights replaced at the first update; it
            decays as ``prune_rate * 0.5 * (1 + cos(pi * t / t_end))``.
        end_fraction: fraction of the budget after which the masks stay fixed.
    """

    update_every: int | None = Field(None, ge=1)
    prune_rate: float = Field(0.3, gt=0.0, le=1.0)
    end_fraction: float = Field(0.75, gt=0.0, le=1.0)


@PRUNERS.register("disparse-dynamic")
class DisparseDynamicPruner(MaskedPruner):
    """DiSparse, dynamic (Sun et al., CVPR 2022), on RigL-style mask updates.

    Starts from random masks with Erdős–Rényi-Kernel layer densities at the target
    sparsity (Evci et al., "Rigging the Lottery", ICML 2020). Every ``update_every``
    iterations before ``end_fraction`` of the budget, each layer drops the fraction
    ``prune_rate * 0.5 * (1 + cos(pi * t / t_end))`` of its surviving weights with the
    smallest magnitude and regrows as many pruned positions by per-task gradient
    magnitude ``|dL_t / dW|``: in the backbone the union over tasks of each task's top
    positions, in a head its task's top positions. Regrown weights start at zero; every
    layer's density, and so the overall one, stays constant.
    """

    Params: ClassVar[type[PrunerParams]] = DisparseDynamicParams
    params: DisparseDynamicParams
    _shared: list[str]
    _own: dict[str, list[str]]

    @property
    def update_every(self) -> int:
        if self.params.update_every is not None:
            return self.params.update_every
        return max(1, round(0.02 * self._context().total_iterations))

    @property
    def end_step(self) -> int:
        return round(self.params.end_fraction * self._context().total_iterations)

    def drop_fraction(self, step: int) -> float:
        """Fraction of surviving weights replaced by the update after ``step`` steps."""
        end = self.end_step
        if step >= end:
            return 0.0
        return self.params.prune_rate * 0.5 * (1.0 + math.cos(math.pi * step / end))

    def _initial_masks(self) -> dict[str, torch.Tensor]:
        context = self._context()
        self._shared, self._own = _shared_and_heads(self, context.tasks)
        weights = self.weights()
        densities = erk_densities(
            {n: w.shape for n, w in weights.items()}, 1.0 - self.target_sparsity
        )
        generator = torch.Generator().manual_seed(context.seed)
        scores = {name: torch.rand(w.shape, generator=generator) for name, w in weights.items()}
        return layerwise_topk(scores, {name: 1.0 - d for name, d in densities.items()})

    def update_masks(self, iteration: int) -> None:
        step = iteration + 1
        if step >= self.end_step or step % self.update_every != 0:
            return
        fraction = self.drop_fraction(step)
        context = self._context()
        names = {t: self._shared + self._own[t] for t in context.tasks}
        with self.scoring_pass():
            grads = self.task_gradients(context.draw_batch(), names)
        owner = {n: t for t, layer_names in self._own.items() for n in layer_names}
        new_masks: dict[str, torch.Tensor] = {}
        regrown: dict[str, torch.Tensor] = {}
        for name, weight in self.weights().items():
            mask = self.masks[name].reshape(-1)
            count = round(fraction * int(mask.sum()))
            if count == 0:
                continue
            magnitude = torch.where(mask, weight.detach().abs().reshape(-1), math.inf)
            dropped = torch.argsort(magnitude, stable=True)[:count]
            survivors = mask.clone()
            survivors[dropped] = False
            if name in owner:
                scores = [grads[owner[name]][name].abs().reshape(-1)]
            else:
                scores = [grads[t][name].abs().reshape(-1) for t in context.tasks]
            grown = union_regrowth(scores, ~survivors, count)
            survivors[grown] = True
            new_masks[name] = survivors.view(weight.shape)
            regrown[name] = grown
        self.set_masks(new_masks)
        with torch.no_grad():
            for name, grown in regrown.items():
                weight = self.weights([name])[name]
                fresh = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
                fresh[grown.to(weight.device)] = True
                weight.masked_fill_(fresh.view(weight.shape), 0.0)
