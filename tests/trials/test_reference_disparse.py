"""DiSparse against re-derivations of its reference code.

Reference: SHI-Labs/DiSparse-Multitask-Model-Compression at commit afd3b73d ("DS" below).
Each ``reference_*`` function re-implements what a DS file computes, the way it computes
it (one forward per task, ``weight_mask`` parameters, ``>=`` thresholds, torch-prune
counts); each test runs paretune's code on the same tensors and compares.
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable, Mapping, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.trials.small_models import losses
from tests.trials.small_models import small_model as _small_model
from trials.models._base import MultiTaskModel
from trials.pruning import (
    REFERENCE_KEEP_RATIOS,
    DisparseDynamicPruner,
    DisparsePruner,
    PruningContext,
    agreement_masks,
    build_pruner,
    density_prune,
    erk_densities,
    reference_keep_ratio,
    threshold_regrowth,
)

TASKS = ("depth", "seg")

pytestmark = pytest.mark.usefixtures("one_thread")


# -- re-derivations of the reference -------------------------------------------------------
def reference_static_task_masks(
    scores: Sequence[torch.Tensor], keep_ratio: float
) -> list[torch.Tensor]:
    """DS prune_utils.py:95-106: one task's keep masks over its layers (backbone + head).

    Scores are divided by their sum; ``k = int(len * keep_ratio)`` (floor); every score
    ``>=`` the k-th largest is kept (ties at the threshold all kept).
    """
    flat = torch.cat([s.flatten() for s in scores])
    norm = flat.sum()
    flat = flat / norm
    k = int(len(flat) * keep_ratio)
    threshold = torch.topk(flat, k, sorted=True).values[-1]
    return [(s / norm) >= threshold for s in scores]


def reference_static_masks(
    task_scores: Mapping[str, Sequence[torch.Tensor]], num_backbone: int, keep_ratio: float
) -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]]]:
    """DS prune_utils.py:124-176: backbone keep = OR over tasks (``~AND(~keep_t)``), each
    head takes its task's mask. Scores: the backbone layers first, then the task's head."""
    per_task = {t: reference_static_task_masks(s, keep_ratio) for t, s in task_scores.items()}
    backbone = []
    for i in range(num_backbone):
        pruned = None
        for masks in per_task.values():
            pruned = ~masks[i] if pruned is None else pruned & ~masks[i]
        assert pruned is not None
        backbone.append(~pruned)
    return backbone, {t: masks[num_backbone:] for t, masks in per_task.items()}


def _hook_forward_conv2d(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """DS prune_utils.py:15-17."""
    return F.conv2d(
        x,
        self.weight * self.weight_mask,
        self.bias,
        self.stride,
        self.padding,
        self.dilation,
        self.groups,
    )


def reference_static_scores(
    net: MultiTaskModel,
    batches: Sequence[dict[str, torch.Tensor]],
    task_losses: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    seed: int,
) -> dict[str, dict[str, torch.Tensor]]:
    """DS prune_utils.py:28-85: ``|dL_t/dmask|`` on a deep copy re-initialised with
    ``xavier_normal_`` (mask parameters of ones, weights frozen), one forward and backward
    per task per batch in train mode, ``abs`` per batch, summed over batches; task ``t``
    scores the backbone and its own head. The only change: ``xavier_normal_`` draws from
    a generator seeded with ``seed`` instead of the global one."""
    test_net = copy.deepcopy(net).train()
    generator = torch.Generator().manual_seed(seed)
    for layer in test_net.modules():
        if isinstance(layer, nn.Conv2d):
            layer.weight_mask = nn.Parameter(torch.ones_like(layer.weight))
            nn.init.xavier_normal_(layer.weight, generator=generator)
            layer.weight.requires_grad = False
            layer.forward = types.MethodType(_hook_forward_conv2d, layer)
    grads_abs: dict[str, dict[str, torch.Tensor]] = {t: {} for t in TASKS}
    for batch in batches:
        for task in TASKS:
            test_net.zero_grad()
            loss = task_losses(test_net, batch)[task]
            loss.backward()
            for name, layer in test_net.named_modules():
                if isinstance(layer, nn.Conv2d) and (
                    name.startswith("backbone") or name.startswith(f"heads.{task}.")
                ):
                    grad = torch.abs(layer.weight_mask.grad.data)
                    into = grads_abs[task]
                    into[name] = into[name] + grad if name in into else grad.clone()
    return grads_abs


def reference_erk_densities(
    shapes: Mapping[str, Sequence[int]], density: float, power: float = 0.9
) -> dict[str, float]:
    """DS dynamic_prune.py:80-191 (``googleAI_ERK``): ``raw = (sum(shape)/prod(shape)) **
    power``; ``eps = rhs / divisor`` with ``rhs = sum_nondense n*d - sum_dense n*(1-d)``;
    while ``max(raw) * eps > 1`` every layer whose raw equals the max becomes dense."""
    dense: set[str] = set()
    while True:
        rhs = 0.0
        divisor = 0.0
        raw: dict[str, float] = {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            if name in dense:
                rhs -= n * (1 - density)
            else:
                rhs += n * density
                raw[name] = (sum(shape) / n) ** power
                divisor += raw[name] * n
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps > 1:
            dense.update(n for n, r in raw.items() if r == top)
        else:
            break
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def reference_prune_rates(prune_rate: float, end: int, until: int) -> list[float]:
    """DS dynamic_prune.py:32-77 + DS train.py:129,165-169,228: ``CosineDecay`` wraps a
    ``CosineAnnealingLR(T_max=end)`` on a dummy SGD whose lr is the prune rate, stepped
    once after every iteration; element ``t`` is the rate the update before iteration
    ``t`` reads (``decay.get_dr()``)."""
    sgd = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=prune_rate)
    stepper = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, end, 0.0)
    rates = []
    steps = 0
    for _ in range(until + 1):
        rates.append(sgd.param_groups[0]["lr"])
        if steps < end:
            sgd.step()  # a no-op (no gradient); keeps the scheduler's order check quiet
            stepper.step()
            steps += 1
    return rates


def reference_dynamic_update(
    mask: torch.Tensor,
    weight_orig: torch.Tensor,
    grads: Sequence[torch.Tensor],
    density: float,
    prune_rate: float,
) -> torch.Tensor:
    """One layer of ``dynamic_disparse_prune`` (DS dynamic_prune.py:224-243) then
    ``dynamic_disparse`` (DS dynamic_prune.py:379-473); returns the new mask.

    Prune: ``s`` = fraction of zeros of ``weight_orig * mask`` (``get_sparsity_dict``,
    DS dynamic_prune.py:295-302); ``r = clamp(1 - d/(1-s)*(1-dr), 0, 1)``; torch-prune's
    iterative ``l1_unstructured`` drops the ``round(r * n_alive)`` smallest
    ``|weight_orig|`` among the alive. Regrow: ``g = clamp(s' - (1-d), 0, 1)``; per task
    ``c = int(g*n)``, ``stat = grad * ~mask``, grow ``stat >= topk(stat, c)[-1]``; the
    ``except`` of ``topk(k=0)[-1]`` grows the whole layer; OR over ``grads``.
    """
    n = mask.numel()
    m = mask.flatten().clone().bool()
    w = weight_orig.flatten()
    s = (torch.sum((w * m) == 0) / n).item()
    ratio = min(max(1 - (density / (1 - s)) * (1 - prune_rate), 0.0), 1.0)
    alive = m.nonzero().flatten()
    drop = round(ratio * alive.numel())
    if drop:
        idx = torch.topk(w[alive].abs(), drop, largest=False).indices
        m[alive[idx]] = False
    s2 = (torch.sum((w * m) == 0) / n).item()
    grow_ratio = min(max(s2 - (1 - density), 0.0), 1.0)
    if grow_ratio == 1.0:
        grow = torch.ones_like(m)
    elif grow_ratio == 0.0:
        grow = torch.zeros_like(m)
    else:
        grow = torch.zeros_like(m)
        count = int(grow_ratio * n)
        for g in grads:
            stat = g.flatten() * (~m)
            try:
                threshold = torch.topk(stat, count, sorted=True).values[-1]
                grow_t = stat >= threshold
            except IndexError:
                grow_t = torch.ones_like(m)
            grow = grow | grow_t
    return (m | grow).view_as(mask)


# -- a small two-task model ------------------------------------------------------------------
def small_model(seed: int = 0) -> MultiTaskModel:
    """The shared small model with a norm after every conv, as DiSparse's models have."""
    return _small_model(seed, norm_after_every_conv=True)


def make_batches(count: int, size: int = 8, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        images = torch.rand(size, 3, 8, 8, generator=generator)
        batches.append(
            {"image": images, "depth": images.mean(dim=1, keepdim=True), "seg": images.argmax(1)}
        )
    return batches


def replay(batches: Sequence[dict[str, torch.Tensor]], iterations: int = 40) -> PruningContext:
    """A context whose ``draw_batch`` returns ``batches`` in turn (then starts over)."""
    position = [0]

    def draw_batch() -> dict[str, torch.Tensor]:
        batch = batches[position[0] % len(batches)]
        position[0] += 1
        return batch

    return PruningContext(iterations, TASKS, draw_batch, losses, seed=5)


def _split(model: MultiTaskModel, task_scores: Mapping[str, Mapping[str, torch.Tensor]]):
    shared = [n for n in task_scores[TASKS[0]] if n.startswith("backbone")]
    return shared, {t: [s for n, s in task_scores[t].items()] for t in TASKS}


# -- static ----------------------------------------------------------------------------------
def test_static_scores_equal_the_reference_on_a_xavier_copy() -> None:
    """DS prune_utils.py:28-85 (copy, ``xavier_normal_``, one forward per task, |dL/dmask|
    summed over batches) and DS create_pruned_net.py:128 (50 batches by default).

    paretune takes one forward per batch and one ``autograd.grad`` per task: with batch
    norm in train mode the two agree to float precision. The model keeps its weights."""
    batches = make_batches(3)
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = build_pruner("disparse", target_sparsity=0.8, score_batches=3)
    assert isinstance(pruner, DisparsePruner)
    assert build_pruner("disparse").params.score_batches == 50
    context = replay(batches)
    pruner.attach(model, context)
    expected = reference_static_scores(small_model(), batches, losses, context.seed)
    assert set(pruner.task_scores) == set(expected)
    for task in TASKS:
        assert list(pruner.task_scores[task]) == list(expected[task])
        for name, score in expected[task].items():
            torch.testing.assert_close(pruner.task_scores[task][name], score, rtol=1e-6, atol=0)
    for key, value in model.state_dict().items():  # only masks zero some weights
        if key.endswith("weight") and value.dim() == 4:
            name = key[: -len(".weight")]
            assert torch.equal(value, before[key] * pruner.masks[name])
        else:
            assert torch.equal(value, before[key]), key


def test_static_current_weights_score_the_model_itself() -> None:
    """DS prune_utils.py:37 re-draws the copy; ``score_weights="current"`` (short-budget)
    scores the model's own weights instead, so the two differ."""
    batches = make_batches(2)
    reinit = build_pruner("disparse", score_batches=2)
    current = build_pruner("disparse", score_batches=2, score_weights="current")
    assert isinstance(reinit, DisparsePruner) and isinstance(current, DisparsePruner)
    reinit.attach(small_model(), replay(batches))
    current.attach(small_model(), replay(batches))
    name = "backbone.0"
    assert not torch.allclose(reinit.task_scores["depth"][name], current.task_scores["depth"][name])


@pytest.mark.parametrize("keep_ratio", [0.08, 0.257, 0.46, 0.675])
def test_static_masks_keep_ties_floor_and_the_backbone_union(keep_ratio: float) -> None:
    """DS prune_utils.py:95-106 (sum normalisation, ``int(n * keep)``, ``>=`` keeps every
    tie) and DS prune_utils.py:124-176 (backbone keep = OR over tasks, heads their own),
    at the reference's hard-coded NYUv2 keep ratios (DS create_pruned_net.py:30-40).

    Scores hold many exact zeros and repeated values, so ties sit at the thresholds."""
    generator = torch.Generator().manual_seed(1)
    shapes = {"backbone.0": (6, 3, 3, 3), "backbone.3": (8, 6, 3, 3)}
    heads = {"depth": {"heads.depth.0": (1, 8, 1, 1)}, "seg": {"heads.seg.0": (3, 8, 1, 1)}}
    task_scores = {}
    for task in TASKS:
        layers = {**shapes, **heads[task]}
        task_scores[task] = {
            n: torch.randint(0, 4, s, generator=generator).float() for n, s in layers.items()
        }
    ours = agreement_masks(task_scores, set(shapes), keep_ratio, "keep-ties", "floor")
    backbone, own = reference_static_masks(
        {t: list(s.values()) for t, s in task_scores.items()}, len(shapes), keep_ratio
    )
    for i, name in enumerate(shapes):
        assert torch.equal(ours[name], backbone[i])
    for task in TASKS:
        for name, mask in zip(heads[task], own[task], strict=True):
            assert torch.equal(ours[name], mask)
    per_task = {
        t: int(sum(m.sum() for m in reference_static_task_masks(list(s.values()), keep_ratio)))
        for t, s in task_scores.items()
    }
    sizes = {t: sum(v.numel() for v in s.values()) for t, s in task_scores.items()}
    assert any(per_task[t] > int(sizes[t] * keep_ratio) for t in TASKS)  # ties kept
    exact = agreement_masks(task_scores, set(shapes), keep_ratio, "exact-k", "round")
    for task in TASKS:  # short-budget's rule: each task keeps exactly round(keep * n)
        mine = agreement_masks(
            {task: task_scores[task]}, set(shapes), keep_ratio, "exact-k", "round"
        )
        assert sum(int(m.sum()) for m in mine.values()) == round(keep_ratio * sizes[task])
        for name, mask in mine.items():
            assert not (mask & ~exact[name]).any()


def test_static_all_zero_ties_keep_everything_tied() -> None:
    """DS prune_utils.py:102-106: if the k-th largest score is 0, ``>=`` keeps every weight
    of the task (all zeros are tied at the threshold)."""
    scores = {
        "a": {"backbone.0": torch.tensor([3.0, 0.0, 0.0, 0.0]), "heads.a.0": torch.zeros(2)},
        "b": {"backbone.0": torch.tensor([0.0, 2.0, 0.0, 0.0]), "heads.b.0": torch.ones(2)},
    }
    ours = agreement_masks(scores, {"backbone.0"}, 0.5)  # k = 3 of 6
    backbone, own = reference_static_masks({t: list(s.values()) for t, s in scores.items()}, 1, 0.5)
    assert ours["backbone.0"].tolist() == backbone[0].tolist() == [True] * 4
    assert ours["heads.a.0"].tolist() == own["a"][0].tolist() == [True, True]
    assert ours["heads.b.0"].tolist() == own["b"][0].tolist() == [True, True]
    exact = agreement_masks(scores, {"backbone.0"}, 0.5, "exact-k", "round")
    assert exact["backbone.0"].tolist() == [True, True, True, False]  # zeros by position
    assert exact["heads.a.0"].tolist() == [False, False]


def test_static_pruner_applies_the_reference_rule_at_a_fixed_and_a_bisected_ratio() -> None:
    """DS prune_utils.py:90-183 on the pruner's own scores: with ``fixed_keep_ratio`` (the
    reference's hard-coded ratios, DS create_pruned_net.py:30-70) the masks are exactly the
    reference's; bisection (paretune's, to hit the target) picks a ratio at which they are
    the reference's too."""
    batches = make_batches(2)
    fixed = build_pruner("disparse", score_batches=2, fixed_keep_ratio=0.08)
    bisected = build_pruner("disparse", score_batches=2, target_sparsity=0.85)
    for pruner in (fixed, bisected):
        assert isinstance(pruner, DisparsePruner)
        model = small_model()
        pruner.attach(model, replay(batches))
        shared, scores = _split(model, pruner.task_scores)
        backbone, own = reference_static_masks(scores, len(shared), pruner.keep_ratio)
        for i, name in enumerate(shared):
            assert torch.equal(pruner.masks[name], backbone[i])
        for task in TASKS:
            heads = [n for n in pruner.task_scores[task] if n not in shared]
            for name, mask in zip(heads, own[task], strict=True):
                assert torch.equal(pruner.masks[name], mask)
    assert fixed.keep_ratio == 0.08
    assert 1 - bisected.mask_density() == pytest.approx(0.85, abs=0.01)


def test_reference_keep_ratio_table() -> None:
    """DS create_pruned_net.py:30-70: NYUv2 90% -> 0.08, Taskonomy 90% -> 0.097; other
    ratios keep ``(100 - ratio) / 100``."""
    assert reference_keep_ratio("nyuv2", 0.9) == 0.08
    assert reference_keep_ratio("taskonomy", 0.9) == 0.097
    assert reference_keep_ratio("cityscapes", 0.5) == 0.51
    assert reference_keep_ratio("nyuv2", 0.8) == pytest.approx(0.2)
    assert REFERENCE_KEEP_RATIOS["nyuv2"][70] == 0.257
    with pytest.raises(ValueError, match="unknown data set 'nyu'; choose one of: nyuv2"):
        reference_keep_ratio("nyu", 0.9)


def test_static_magnitude_scores_are_the_pretrained_variant() -> None:
    """DS prune_utils.py:348-384 (``disparse_pt`` on NYUv2/Cityscapes): score = ``|W|`` of
    the (trained) weights, per-task ``int(n*keep)`` and ``>=`` without normalisation, the
    same union. No batch is drawn."""
    model = small_model()
    weights = {
        n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
    }

    def no_batch() -> dict[str, torch.Tensor]:
        raise AssertionError("magnitude scores need no batch")

    pruner = build_pruner("disparse", scores="magnitude", fixed_keep_ratio=0.1)
    pruner.attach(model, PruningContext(10, TASKS, no_batch, losses))
    assert isinstance(pruner, DisparsePruner)
    shared = [n for n in weights if n.startswith("backbone")]
    for task in TASKS:
        layers = shared + [n for n in weights if n.startswith(f"heads.{task}.")]
        flat = torch.cat([weights[n].abs().flatten() for n in layers])
        threshold = torch.topk(flat, int(len(flat) * 0.1)).values[-1]
        for name in layers[len(shared) :]:
            assert torch.equal(pruner.masks[name], weights[name].abs() >= threshold)


# -- dynamic -----------------------------------------------------------------------------------
ERK_SHAPES = {
    "stem": (16, 3, 3, 3),
    "block1": (32, 16, 3, 3),
    "block2": (64, 32, 3, 3),
    "block3": (128, 64, 3, 3),
    "head_a": (32, 128, 3, 3),
    "head_a_out": (1, 32, 1, 1),
    "head_b": (32, 128, 3, 3),
    "head_b_out": (3, 32, 1, 1),
}


@pytest.mark.parametrize("power", [0.9, 1.0])
@pytest.mark.parametrize("density", [0.05, 0.1, 0.3, 0.5])
def test_erk_densities_equal_the_reference(power: float, density: float) -> None:
    """DS dynamic_prune.py:80-191 (``googleAI_ERK``, ``erk_power_scale`` 0.9), including the
    loop that makes the layers with the largest raw probability dense and re-solves."""
    ours = erk_densities(ERK_SHAPES, density, power)
    expected = reference_erk_densities(ERK_SHAPES, density, power)
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-15)
    sizes = {n: math.prod(s) for n, s in ERK_SHAPES.items()}
    kept = sum(ours[n] * sizes[n] for n in sizes)
    assert kept == pytest.approx(density * sum(sizes.values()))
    if density == 0.5:  # the redistribution loop ran more than once
        assert sum(d == 1.0 for d in ours.values()) >= 3


def test_erk_power_softens_the_densities() -> None:
    """DS dynamic_prune.py:154-157: with 0.9 small-fan layers get less than with ERK's 1."""
    soft = erk_densities(ERK_SHAPES, 0.05, 0.9)
    plain = erk_densities(ERK_SHAPES, 0.05)
    assert soft["stem"] < plain["stem"] and soft["block3"] > plain["block3"]
    with pytest.raises(ValueError, match="power must be at least 0 but got -1"):
        erk_densities(ERK_SHAPES, 0.1, -1.0)


def test_cosine_prune_rate_and_update_iterations_follow_the_reference() -> None:
    """DS config_nyuv2.py:18,26-28 (20000 iterations, END 15000, INT 50, PRUNE_RATE 0.5),
    DS train.py:165-201 (an update before iteration t when ``t % 50 == 0 and t < END``,
    iteration 0 included; a prune-only step at ``t == END``) and DS dynamic_prune.py:32-77
    (the rate is a ``CosineAnnealingLR`` stepped every iteration)."""
    pruner = build_pruner("disparse-dynamic", target_sparsity=0.9)
    assert isinstance(pruner, DisparseDynamicPruner)
    updates: list[int] = []
    finals: list[int] = []
    pruner._update = updates.append  # type: ignore[method-assign]
    pruner._prune_to_density = lambda: finals.append(len(updates))  # type: ignore[method-assign]
    context = PruningContext(20000, TASKS, lambda: {}, losses)
    pruner.attach(small_model(), context)
    for iteration in range(20000):
        pruner.update_masks(iteration)
    assert pruner.update_every == 50 and pruner.end_step == 15000
    assert updates == list(range(0, 15000, 50))
    assert finals == [300]  # once, after the 300 updates, at t = 15000
    rates = reference_prune_rates(0.5, 15000, 15000)
    for t in [*updates, 15000]:
        assert pruner.drop_fraction(t) == pytest.approx(rates[t], abs=1e-12)


def test_short_budget_updates_after_the_step_every_two_percent() -> None:
    """paretune's short-budget schedule: no update at iteration 0, every 2% of the budget,
    no final prune (DS train.py:165 updates at iteration 0 and every 50 of 20000)."""
    pruner = build_pruner("disparse-dynamic", "short-budget")
    assert isinstance(pruner, DisparseDynamicPruner)
    updates: list[int] = []
    pruner._update = updates.append  # type: ignore[method-assign]
    pruner.attach(small_model(), PruningContext(500, TASKS, lambda: {}, losses))
    for iteration in range(500):
        pruner.update_masks(iteration)
    assert updates == list(range(10, 375, 10))
    assert pruner.params.prune_rate == 0.3 and pruner.params.erk_power == 1.0


def _layer(n: int, density: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[: round(density * n)]] = True
    weight = torch.randn(n, generator=generator)
    return mask, weight


@pytest.mark.parametrize("drop_rate", [0.5, 0.25, 0.01])
def test_one_layer_prune_and_regrow_counts_and_the_union_overshoot(drop_rate: float) -> None:
    """DS dynamic_prune.py:224-243 (prune to ``d(1-dr)`` of the layer by magnitude among
    the alive) and DS dynamic_prune.py:379-431 (each task grows ``int((s'-(1-d))*n)``,
    ``>=`` ties, backbone = union over tasks, head = its task)."""
    n, density = 1000, 0.1
    mask, orig = _layer(n, density, seed=3)
    generator = torch.Generator().manual_seed(4)
    g1, g2 = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    weight = orig * mask  # the effective weight paretune holds
    survivors = density_prune(mask, weight, density, drop_rate)
    assert int(survivors.sum()) == round(n * density * (1 - drop_rate))
    assert not (survivors & ~mask).any()
    head = threshold_regrowth(survivors, weight, [g1], density)
    backbone = threshold_regrowth(survivors, weight, [g1, g2], density)
    assert torch.equal(head, reference_dynamic_update(mask, orig, [g1], density, drop_rate))
    assert torch.equal(backbone, reference_dynamic_update(mask, orig, [g1, g2], density, drop_rate))
    after = (torch.sum((weight * survivors) == 0) / n).item()  # DS dynamic_prune.py:300
    count = int((after - (1 - density)) * n)
    assert int(head.sum()) == int(survivors.sum()) + count  # floor: at most d*n
    grown = int(backbone.sum()) - int(survivors.sum())
    assert count <= grown <= 2 * count
    if drop_rate == 0.5:  # the union overshoots: 2 independent tasks, ~1.4 d instead of d
        assert int(backbone.sum()) / n == pytest.approx(0.143, abs=0.01)


def test_regrowth_ties_and_empty_counts() -> None:
    """DS dynamic_prune.py:398-411: a zero threshold (fewer nonzero scores than the count)
    grows every pruned position; a count of 0 raises in ``topk(...)[-1]`` and the
    ``except`` grows the whole layer (``empty_regrowth="whole-layer"``; paretune's default
    grows nothing)."""
    n, density = 200, 0.5
    mask, orig = _layer(n, density, seed=7)
    sparse_grad = torch.zeros(n)
    sparse_grad[:3] = 1.0
    weight = orig * mask
    survivors = density_prune(mask, weight, density, 0.5)
    ours = threshold_regrowth(survivors, weight, [sparse_grad], density)
    assert torch.equal(ours, reference_dynamic_update(mask, orig, [sparse_grad], density, 0.5))
    assert bool(ours.all())
    # a layer at floor(d * n) with a tiny rate: nothing to drop, 0 < s - (1 - d) < 1/n
    odd = 201
    mask, orig = _layer(odd, density, seed=8)
    mask[:] = False
    mask[: math.floor(density * odd)] = True
    weight = orig * mask
    survivors = density_prune(mask, weight, density, 1e-4)
    assert torch.equal(survivors, mask)
    assert torch.equal(threshold_regrowth(survivors, weight, [torch.rand(odd)], density), mask)
    whole = threshold_regrowth(survivors, weight, [torch.rand(odd)], density, "whole-layer")
    assert torch.equal(
        whole, reference_dynamic_update(mask, orig, [torch.rand(odd)], density, 1e-4)
    )
    assert bool(whole.all())


def reference_dense_gradients(
    model: MultiTaskModel, weight_orig: Mapping[str, torch.Tensor], batch: dict[str, torch.Tensor]
) -> dict[str, dict[str, torch.Tensor]]:
    """DS dynamic_prune.py:329-366: a copy of the net with every mask set to ones (so the
    pruned positions carry their stale ``weight_orig``), train mode, the batch cut into 2
    halves; per half and task: ``zero_grad``, forward, task loss, backward, and
    ``|weight_orig.grad|`` summed (task t: backbone and its own head)."""
    test_net = copy.deepcopy(model).train()
    modules = dict(test_net.named_modules())
    with torch.no_grad():
        for name, value in weight_orig.items():
            modules[name].weight.copy_(value)
    grads_abs: dict[str, dict[str, torch.Tensor]] = {t: {} for t in TASKS}
    half = len(batch["image"]) // 2
    for b_idx in range(2):
        piece = {k: v[b_idx * half : (b_idx + 1) * half] for k, v in batch.items()}
        for task in TASKS:
            test_net.zero_grad()
            losses(test_net, piece)[task].backward()
            for name in weight_orig:
                if name.startswith("backbone") or name.startswith(f"heads.{task}."):
                    grad = modules[name].weight.grad.abs()
                    into = grads_abs[task]
                    into[name] = into[name] + grad if name in into else grad.clone()
    return grads_abs


def test_dynamic_update_equals_the_reference_and_restores_regrown_values() -> None:
    """One full update of the pruner against DS dynamic_prune.py:224-484 layer by layer:
    gradients of the dense net with stale values on 2 halves, prune, per-task regrowth with
    the union, and ``pseudo_forward`` rebuilding the weights from ``weight_orig`` (DS
    dynamic_prune.py:275-292,475-478): regrown weights get their old values back."""
    batches = make_batches(1, size=8)
    model = small_model()
    pruner = build_pruner("disparse-dynamic", target_sparsity=0.7, update_every=1000)
    assert isinstance(pruner, DisparseDynamicPruner)
    context = replay(batches, iterations=4000)
    pruner.attach(model, context)  # ERK masks and the update of iteration 0
    optimizer = torch.optim.Adam(pruner.optimizer_groups(1e-2, 0.0))
    for iteration in range(5):  # the weights move; pruned ones keep their retained values
        total = torch.stack(list(losses(model, batches[0]).values())).sum()
        optimizer.zero_grad()
        total.backward()
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    weight_orig = {
        n: torch.where(masks[n], w.detach(), pruner._retained[n])
        for n, w in pruner.weights().items()
    }
    assert any((weight_orig[n][~masks[n]] != 0).any() for n in masks)  # stale values exist
    grads = reference_dense_gradients(model, weight_orig, batches[0])
    rate = pruner.drop_fraction(1000)
    pruner._update(1000)
    for name, mask in masks.items():
        owners = [t for t in TASKS if name in grads[t]]
        assert owners == (list(TASKS) if name.startswith("backbone") else [name.split(".")[1]])
        expected = reference_dynamic_update(
            mask, weight_orig[name], [grads[t][name] for t in owners], pruner.densities[name], rate
        )
        assert torch.equal(pruner.masks[name], expected), name
        weight = pruner.weights([name])[name].detach()
        torch.testing.assert_close(weight, weight_orig[name] * expected, rtol=0, atol=0)
    regrown = {n: pruner.masks[n] & ~masks[n] for n in masks}
    assert sum(int(m.sum()) for m in regrown.values()) > 0
    for name, fresh in regrown.items():  # old values back, not zeros
        assert (pruner.weights([name])[name].detach()[fresh] != 0).all()


def test_dynamic_reference_overshoots_then_final_prune_reaches_the_erk_density() -> None:
    """DS dynamic_prune.py:418-431: the union over tasks leaves backbone layers above their
    ERK density between updates (heads stay at or below it); DS train.py:182-188 intends a
    prune-only step to the ERK density at END (the released code then calls the undefined
    ``copy_v2``); DS dynamic_prune.py:213-216 leaves the first conv dense at init."""
    batches = make_batches(4)
    model = small_model()
    pruner = build_pruner("disparse-dynamic", target_sparsity=0.8, update_at_start=False)
    assert isinstance(pruner, DisparseDynamicPruner)
    context = replay(batches, iterations=40)
    pruner.attach(model, context)
    assert bool(pruner.masks["backbone.0"].all())  # dense until the first update
    pruner._update(0)
    shared = [n for n in pruner.masks if n.startswith("backbone")]
    density = {n: float(m.float().mean()) for n, m in pruner.masks.items()}
    assert all(density[n] > pruner.densities[n] for n in shared)
    heads = [n for n in pruner.masks if n.startswith("heads") and pruner.densities[n] < 1]
    assert heads and all(density[n] <= pruner.densities[n] for n in heads)
    pruner._schedule(pruner.end_step)
    for name, mask in pruner.masks.items():
        assert abs(int(mask.sum()) - pruner.densities[name] * mask.numel()) <= 1, name
    assert 1 - pruner.mask_density() == pytest.approx(0.8, abs=0.005)
