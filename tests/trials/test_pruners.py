"""Behaviour specific to each mask-based baseline pruner."""

from __future__ import annotations

import copy
import math

import pydantic
import pytest
import torch
from torch import nn

from tests.trials.small_models import losses, small_model
from trials.models._base import MultiTaskModel
from trials.pruning import (
    DensePruner,
    DisparseDynamicPruner,
    DisparsePruner,
    ImpPruner,
    LthPruner,
    MagnitudePruner,
    MaskedPruner,
    PruningContext,
    RandomPruner,
    SnipPruner,
    agreement_masks,
    build_pruner,
    erk_densities,
    global_topk,
    keep_count,
    measure_sparsity,
    union_regrowth,
)

TASKS = ("depth", "seg")


pytestmark = pytest.mark.usefixtures("one_thread")


def context(iterations: int = 20, seed: int = 0) -> PruningContext:
    generator = torch.Generator().manual_seed(seed + 100)

    def draw_batch() -> dict[str, torch.Tensor]:
        images = torch.rand(4, 3, 8, 8, generator=generator)
        return {
            "image": images,
            "depth": images.mean(dim=1, keepdim=True),
            "seg": images.argmax(dim=1),
        }

    return PruningContext(iterations, TASKS, draw_batch, losses, seed)


def train_steps(pruner: MaskedPruner, model: nn.Module, ctx: PruningContext, steps: range) -> None:
    optimizer = torch.optim.Adam(pruner.optimizer_groups(1e-2, 0.0))
    for iteration in steps:
        total = torch.stack(list(ctx.task_losses(model, ctx.draw_batch()).values())).sum()
        optimizer.zero_grad()
        total.backward()
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)


def density(pruner: MaskedPruner) -> float:
    return pruner.mask_density()


# -- shared mask machinery ------------------------------------------------------------------
def test_global_topk_keeps_exactly_k_with_ties() -> None:
    scores = {"a": torch.ones(2, 3), "b": torch.tensor([2.0, 1.0, 1.0, 0.0])}
    masks = global_topk(scores, 4)
    assert sum(int(m.sum()) for m in masks.values()) == 4
    assert bool(masks["b"][0])  # the unique highest score
    assert not bool(masks["b"][3])  # the unique lowest score
    with pytest.raises(ValueError, match="keep must be between 0 and 10"):
        global_topk(scores, 11)


def test_masked_weights_and_gradients_stay_zero_under_adam() -> None:
    model = small_model()
    ctx = context()
    pruner = build_pruner("random", target_sparsity=0.7)
    assert isinstance(pruner, MaskedPruner)
    pruner.attach(model, ctx)
    optimizer = torch.optim.Adam(pruner.optimizer_groups(1e-2, 1e-3))
    for iteration in range(5):
        total = torch.stack(list(losses(model, ctx.draw_batch()).values())).sum()
        optimizer.zero_grad()
        total.backward()
        pruner.before_step(iteration)
        for name, weight in pruner.weights().items():
            assert weight.grad is not None
            assert not weight.grad[~pruner.masks[name]].any()
        optimizer.step()
        pruner.after_step(iteration)
        for name, weight in pruner.weights().items():
            assert not weight[~pruner.masks[name]].any()
            assert weight[pruner.masks[name]].all()  # survivors are trained, not zeroed


def test_masked_pruner_rejects_params_of_another_method() -> None:
    with pytest.raises(TypeError, match="MagnitudePruner needs MagnitudeParams"):
        MagnitudePruner(RandomPruner.Params(target_sparsity=0.5))


def test_masked_pruner_needs_a_multitask_model() -> None:
    with pytest.raises(TypeError, match="needs a MultiTaskModel with components"):
        RandomPruner().attach(nn.Conv2d(1, 1, 1), context())


# -- dense ----------------------------------------------------------------------------------
def test_dense_has_no_target_and_returns_the_model() -> None:
    model = small_model()
    pruner = build_pruner("dense")
    assert isinstance(pruner, DensePruner)
    assert pruner.params.target_sparsity == 0.0
    pruner.attach(model, context())
    assert pruner.finalize() is model
    assert pruner.sparsity().overall == 0.0
    with pytest.raises(pydantic.ValidationError, match="target_sparsity"):
        build_pruner("dense", target_sparsity=0.9)


# -- random ---------------------------------------------------------------------------------
def test_random_mask_is_layerwise_uniform_and_seeded() -> None:
    def masks(seed: int) -> dict[str, torch.Tensor]:
        pruner = build_pruner("random", target_sparsity=0.6)
        assert isinstance(pruner, RandomPruner)
        pruner.attach(small_model(), context(seed=seed))
        for name, weight in pruner.weights().items():
            kept = int(pruner.masks[name].sum())
            assert kept == keep_count(weight.numel(), 0.6), name
        return {name: mask.clone() for name, mask in pruner.masks.items()}

    first, again, other = masks(3), masks(3), masks(4)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


# -- magnitude ------------------------------------------------------------------------------
def test_magnitude_cubic_schedule_by_hand() -> None:
    pruner = build_pruner("magnitude", target_sparsity=0.8)
    assert isinstance(pruner, MagnitudePruner)
    pruner.attach(small_model(), context(iterations=100))
    assert (pruner.start_step, pruner.end_step, pruner.prune_every) == (10, 70, 2)
    expected = {
        0: 0.0,
        9: 0.0,
        10: 0.0,
        25: 0.8 - 0.8 * 0.75**3,
        40: 0.8 - 0.8 * 0.5**3,
        55: 0.8 - 0.8 * 0.25**3,
        70: 0.8,
        100: 0.8,
    }
    for step, value in expected.items():
        assert pruner.scheduled_sparsity(step) == pytest.approx(value), step
    assert [s for s in range(101) if pruner.is_pruning_step(s)] == list(range(10, 71, 2))


def test_magnitude_prunes_on_schedule_and_globally() -> None:
    pruner = build_pruner("magnitude", target_sparsity=0.8, prune_every=7)
    assert isinstance(pruner, MagnitudePruner)
    model = small_model()
    pruner.attach(model, context(iterations=100))
    total = pruner.total_weights()
    previous = 1.0
    for iteration in range(100):
        before = {n: w.detach().abs().clone() for n, w in pruner.weights().items()}
        pruner.after_step(iteration)
        step = iteration + 1
        now = density(pruner)
        if pruner.is_pruning_step(step):
            expected_kept = keep_count(total, pruner.scheduled_sparsity(step))
            assert now * total == pytest.approx(min(expected_kept, previous * total))
            kept = torch.cat([before[n][m] for n, m in pruner.masks.items()])
            dropped = torch.cat([before[n][~m] for n, m in pruner.masks.items()])
            if dropped.numel():
                assert kept.min() >= dropped.max()  # one global ranking over all layers
        else:
            assert now == previous
        previous = now
    assert [s for s in range(1, 101) if pruner.is_pruning_step(s)][-1] == 70
    assert 1.0 - density(pruner) == pytest.approx(0.8, abs=1 / total)
    layer_sparsity = {n: 1 - float(m.float().mean()) for n, m in pruner.masks.items()}
    assert max(layer_sparsity.values()) - min(layer_sparsity.values()) > 0.05


def test_magnitude_finalize_completes_a_cut_short_schedule() -> None:
    pruner = build_pruner("magnitude", target_sparsity=0.75)
    model = small_model()
    pruner.attach(model, context(iterations=1000))
    pruner.after_step(0)
    assert density(pruner) == 1.0
    pruner.finalize()
    assert pruner.sparsity().overall == pytest.approx(0.75, abs=1e-3)


def test_magnitude_params_validate_the_window() -> None:
    with pytest.raises(pydantic.ValidationError, match="end_fraction must be at least"):
        build_pruner("magnitude", start_fraction=0.5, end_fraction=0.2)


# -- snip -----------------------------------------------------------------------------------
def test_snip_keeps_the_highest_connection_sensitivity() -> None:
    model = small_model()
    reference = copy.deepcopy(model)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    pruner = build_pruner("snip", target_sparsity=0.7, score_batches=2)
    assert isinstance(pruner, SnipPruner)
    pruner.attach(model, context(seed=5))

    # The scores are |g * w| of the summed task losses, summed over the scoring batches.
    ctx = context(seed=5)
    names = list(pruner.weights())
    modules = dict(reference.named_modules())
    weights = [modules[n].weight for n in names]
    expected = {n: torch.zeros_like(w) for n, w in zip(names, weights, strict=True)}
    for _ in range(2):
        total = torch.stack(list(losses(reference, ctx.draw_batch()).values())).sum()
        for n, w, g in zip(names, weights, torch.autograd.grad(total, weights), strict=True):
            expected[n] += (g * w).abs()
    for n in names:
        torch.testing.assert_close(pruner.scores[n], expected[n])

    kept = torch.cat([pruner.scores[n][m] for n, m in pruner.masks.items()])
    dropped = torch.cat([pruner.scores[n][~m] for n, m in pruner.masks.items()])
    assert kept.numel() == keep_count(pruner.total_weights(), 0.7)
    assert kept.min() >= dropped.max()
    assert pruner.sparsity().overall == pytest.approx(0.7, abs=1e-3)
    for name, buffer in model.named_buffers():  # scoring leaves no trace in BN statistics
        assert torch.equal(buffer, buffers[name])


# -- imp / lth ------------------------------------------------------------------------------
def test_imp_round_boundaries_and_sparsities() -> None:
    pruner = build_pruner("imp", target_sparsity=0.9, rounds=3)
    assert isinstance(pruner, ImpPruner)
    pruner.attach(small_model(), context(iterations=400))
    assert pruner.round_boundaries() == [100, 200, 300]
    expected = [1 - 0.1 ** (1 / 3), 1 - 0.1 ** (2 / 3), 0.9]
    assert [pruner.round_sparsity(k) for k in (1, 2, 3)] == pytest.approx(expected)
    total = pruner.total_weights()
    changes = {}
    previous = 1.0
    for iteration in range(400):
        pruner.after_step(iteration)
        if density(pruner) != previous:
            changes[iteration + 1] = 1.0 - density(pruner)
            previous = density(pruner)
    assert list(changes) == [100, 200, 300]
    for (step, sparsity), target in zip(changes.items(), expected, strict=True):
        assert sparsity == pytest.approx(target, abs=1 / total), step


def test_imp_keeps_trained_values_of_survivors() -> None:
    model = small_model()
    ctx = context(iterations=8)
    pruner = build_pruner("imp", target_sparsity=0.5, rounds=1)
    assert isinstance(pruner, ImpPruner)
    pruner.attach(model, ctx)
    assert pruner.round_boundaries() == [4]
    train_steps(pruner, model, ctx, range(3))
    trained = {n: w.detach().clone() for n, w in pruner.weights().items()}
    pruner.after_step(3)  # the round ends: prune, no rewinding
    assert density(pruner) == pytest.approx(0.5, abs=1e-3)
    for name, weight in pruner.weights().items():
        assert torch.equal(weight, trained[name] * pruner.masks[name])


def test_lth_rewinds_survivors_to_the_rewind_iteration() -> None:
    model = small_model()
    ctx = context(iterations=40)
    pruner = build_pruner("lth", target_sparsity=0.8, rounds=3, rewind_fraction=0.05)
    assert isinstance(pruner, LthPruner)
    pruner.attach(model, ctx)
    assert pruner.rewind_step == 2
    assert pruner.round_boundaries() == [10, 20, 30]
    train_steps(pruner, model, ctx, range(2))
    at_rewind = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(pruner, model, ctx, range(2, 9))
    weights = pruner.weights()
    assert any(not torch.equal(weights[n], at_rewind[f"{n}.weight"]) for n in weights)

    optimizer = torch.optim.Adam(pruner.optimizer_groups(1e-2, 0.0))
    model.zero_grad()
    total = torch.stack(list(losses(model, ctx.draw_batch()).values())).sum()
    total.backward()
    pruner.before_step(9)
    optimizer.step()
    pruner.after_step(9)  # end of round 1: prune, then rewind
    assert density(pruner) == pytest.approx(0.2 ** (1 / 3), abs=1e-3)
    for name, parameter in model.named_parameters():
        layer = name.removesuffix(".weight")
        expected = at_rewind[name]
        if name.endswith(".weight") and layer in pruner.masks:
            expected = expected * pruner.masks[layer]
        assert torch.equal(parameter, expected), name


def test_lth_rewinds_to_the_initial_weights_by_default() -> None:
    """AdapMTL's LTH protocol: "reset the model to its initial weights" (AM
    SOTA_methods/README.md:5); short-budget keeps rewinding to 5% of the budget."""
    model = small_model()
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    ctx = context(iterations=40)
    pruner = build_pruner("lth", target_sparsity=0.8, rounds=3)
    assert isinstance(pruner, LthPruner)
    pruner.attach(model, ctx)
    assert pruner.params.rewind_fraction == 0.0 and pruner.rewind_step == 0
    train_steps(pruner, model, ctx, range(9))
    assert any(not torch.equal(p, initial[n]) for n, p in model.named_parameters())
    train_steps(pruner, model, ctx, range(9, 10))  # end of round 1: prune, then rewind
    assert density(pruner) == pytest.approx(0.2 ** (1 / 3), abs=1e-3)
    for name, parameter in model.named_parameters():
        layer = name.removesuffix(".weight")
        expected = initial[name]
        if name.endswith(".weight") and layer in pruner.masks:
            expected = expected * pruner.masks[layer]
        assert torch.equal(parameter, expected), name
    short = build_pruner("lth", "short-budget")
    assert isinstance(short, LthPruner) and short.params.rewind_fraction == 0.05
    assert build_pruner("lth", "short-budget", rewind_fraction=0.0).params.rewind_fraction == 0.0


@pytest.mark.parametrize("method", ["imp", "snip", "magnitude", "random"])
def test_baselines_without_reference_code_keep_their_defaults(method: str) -> None:
    assert build_pruner(method, "short-budget").params == build_pruner(method).params


def test_lth_rewind_must_come_before_the_first_round() -> None:
    with pytest.raises(pydantic.ValidationError, match="rewind_fraction must be below"):
        build_pruner("lth", rounds=3, rewind_fraction=0.3)


# -- disparse (static) ----------------------------------------------------------------------
def test_agreement_rule_keeps_the_union_in_the_backbone_and_own_masks_in_heads() -> None:
    scores = {
        "a": {
            "backbone.0": torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
            "heads.a.0": torch.tensor([0.5, 0.1, 0.1, 0.1]),
        },
        "b": {
            "backbone.0": torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
            "heads.b.0": torch.tensor([0.1, 0.5, 0.1, 0.1]),
        },
    }
    masks = agreement_masks(scores, {"backbone.0"}, keep_ratio=0.3)  # top-3 of 10 per task
    assert masks["backbone.0"].tolist() == [True, True, True, True, False, False]
    assert masks["heads.a.0"].tolist() == [True, False, False, False]
    assert masks["heads.b.0"].tolist() == [False, True, False, False]


def _disagreeing_model() -> MultiTaskModel:
    """Backbone channel 0 feeds only head ``a``, channel 1 only head ``b``."""
    backbone = nn.Conv2d(4, 2, 1, bias=False)
    head_a = nn.Conv2d(2, 1, 1, bias=False)
    head_b = nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        backbone.weight.copy_(
            torch.tensor([[1.0, 1.0, 0.01, 0.01], [0.01, 0.01, 1.0, 1.0]]).view(2, 4, 1, 1)
        )
        head_a.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
        head_b.weight.copy_(torch.tensor([0.0, 1.0]).view(1, 2, 1, 1))
    return MultiTaskModel(backbone, {"a": head_a, "b": head_b})


def test_disparse_backbone_weight_is_pruned_only_when_every_task_agrees() -> None:
    def task_losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = model(batch["image"])
        return {task: ((out[task] - 5.0) ** 2).mean() for task in ("a", "b")}

    ctx = PruningContext(10, ("a", "b"), lambda: {"image": torch.ones(2, 4, 1, 1)}, task_losses)
    for calibration in ("reference", "short-budget"):
        pruner = build_pruner(
            "disparse", calibration, target_sparsity=0.5, score_batches=1, score_weights="current"
        )
        assert isinstance(pruner, DisparsePruner)
        model = _disagreeing_model()
        pruner.attach(model, ctx)
        # Task a wants backbone weights {0, 1}, task b wants {6, 7}: the backbone keeps both.
        assert pruner.masks["backbone"].view(-1).tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
        assert pruner.masks["heads.a"].view(-1).tolist() == [1, 0]
        assert pruner.masks["heads.b"].view(-1).tolist() == [0, 1]
        if calibration == "reference":  # each task keeps its top floor(10 * r) = 3 of 10
            assert int(10 * pruner.keep_ratio) == 3
        else:  # round(10 * r) = 3
            assert 0.25 <= pruner.keep_ratio < 0.35
        assert pruner.sparsity().overall == 0.5


def test_disparse_hits_the_target_despite_the_union() -> None:
    pruner = build_pruner("disparse", target_sparsity=0.8, score_batches=1)
    assert isinstance(pruner, DisparsePruner)
    pruner.attach(small_model(), context())
    total = pruner.total_weights()
    assert 1 - density(pruner) == pytest.approx(0.8, abs=len(TASKS) / total)
    assert pruner.keep_ratio < 0.2  # each task keeps less than the overall density
    shared = pruner.layer_names("backbone")
    for task in TASKS:  # each task's own top-k is inside the masks
        mine = agreement_masks({task: pruner.task_scores[task]}, shared, pruner.keep_ratio)
        for name, mask in mine.items():
            assert not (mask & ~pruner.masks[name]).any()


def test_disparse_reference_defaults_and_the_short_budget_path() -> None:
    reference = build_pruner("disparse").params
    short = build_pruner("disparse", "short-budget").params
    fields = ("score_batches", "scores", "score_weights", "ties", "rounding", "fixed_keep_ratio")
    assert [getattr(reference, f) for f in fields] == [
        50,
        "gradient",
        "reinit",
        "keep-ties",
        "floor",
        None,
    ]
    assert [getattr(short, f) for f in fields] == [
        4,
        "gradient",
        "current",
        "exact-k",
        "round",
        None,
    ]
    with pytest.raises(pydantic.ValidationError, match="fixed_keep_ratio"):
        build_pruner("disparse", fixed_keep_ratio=0.0)
    with pytest.raises(pydantic.ValidationError, match="ties"):
        build_pruner("disparse", ties="all")


def test_disparse_fixed_keep_ratio_misses_the_target_as_the_reference_does() -> None:
    pruner = build_pruner("disparse", target_sparsity=0.9, score_batches=1, fixed_keep_ratio=0.3)
    assert isinstance(pruner, DisparsePruner)
    pruner.attach(small_model(), context())
    assert pruner.keep_ratio == 0.3
    assert density(pruner) > 0.3  # the union keeps more than each task's share


# -- disparse-dynamic -----------------------------------------------------------------------
def test_erk_densities_hit_the_target_and_favour_small_layers() -> None:
    shapes = {
        "big": (64, 64, 3, 3),
        "mid": (32, 64, 3, 3),
        "small": (16, 32, 1, 1),
        "tiny": (1, 16, 1, 1),
    }
    densities = erk_densities(shapes, 0.1)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    kept = sum(densities[n] * sizes[n] for n in shapes)
    assert kept == pytest.approx(0.1 * sum(sizes.values()))
    assert densities["tiny"] == 1.0
    assert densities["big"] < densities["mid"] < densities["small"] <= 1.0
    ratio = densities["big"] / densities["mid"]
    assert ratio == pytest.approx((64 + 64 + 6) / sizes["big"] / ((32 + 64 + 6) / sizes["mid"]))
    with pytest.raises(ValueError, match="density must be in"):
        erk_densities(shapes, 0.0)


def test_union_regrowth_interleaves_task_rankings() -> None:
    task_a = torch.tensor([5.0, 4.0, 0.0, 0.0, 3.0])
    task_b = torch.tensor([0.0, 0.0, 5.0, 4.0, 3.0])
    eligible = torch.tensor([True, True, True, True, False])
    assert union_regrowth([task_a, task_b], eligible, 3).tolist() == [0, 2, 1]
    assert sorted(union_regrowth([task_a, task_b], eligible, 4).tolist()) == [0, 1, 2, 3]
    assert union_regrowth([task_a, task_a], eligible, 2).tolist() == [0, 1]
    with pytest.raises(ValueError, match="count must be between 0 and 4"):
        union_regrowth([task_a], eligible, 5)


def test_disparse_dynamic_short_budget_keeps_density_while_masks_move() -> None:
    model = small_model()
    ctx = context(iterations=40)
    pruner = build_pruner(
        "disparse-dynamic", "short-budget", target_sparsity=0.8, update_every=2, prune_rate=0.5
    )
    assert isinstance(pruner, DisparseDynamicPruner)
    pruner.attach(model, ctx)
    start = {n: m.clone() for n, m in pruner.masks.items()}
    densities = erk_densities({n: w.shape for n, w in pruner.weights().items()}, 0.2)
    for name, mask in start.items():
        assert abs(int(mask.sum()) - densities[name] * mask.numel()) <= 1
    kept = {n: int(m.sum()) for n, m in start.items()}
    assert sum(kept.values()) / pruner.total_weights() == pytest.approx(0.2, abs=0.01)
    assert pruner.drop_fraction(0) == pytest.approx(0.5)
    assert pruner.drop_fraction(15) == pytest.approx(0.25)
    assert pruner.drop_fraction(30) == 0.0
    train_steps(pruner, model, ctx, range(8))
    assert {n: int(m.sum()) for n, m in pruner.masks.items()} == kept
    assert any(not torch.equal(start[n], pruner.masks[n]) for n in start)
    frozen = {n: m.clone() for n, m in pruner.masks.items()}
    train_steps(pruner, model, ctx, range(30, 34))  # past end_fraction: masks stay
    assert all(torch.equal(frozen[n], pruner.masks[n]) for n in frozen)


def test_disparse_dynamic_reference_finalize_prunes_to_the_erk_densities() -> None:
    model = small_model()
    ctx = context(iterations=40)
    pruner = build_pruner("disparse-dynamic", target_sparsity=0.8)
    assert isinstance(pruner, DisparseDynamicPruner)
    pruner.attach(model, ctx)
    assert pruner.update_every == 1 and pruner.end_step == 30
    train_steps(pruner, model, ctx, range(5))  # stopped long before the end of updates
    assert density(pruner) > 0.2  # the backbone's union regrowth overshoots
    final = pruner.finalize()
    for name, mask in pruner.masks.items():
        assert abs(int(mask.sum()) - pruner.densities[name] * mask.numel()) <= 1, name
    assert measure_sparsity(final.components()).overall == pytest.approx(0.8, abs=0.01)
    short = build_pruner("disparse-dynamic", "short-budget", target_sparsity=0.8)
    assert not short.params.final_prune


def test_disparse_dynamic_options_validate() -> None:
    for field, value in [
        ("regrowth", "union"),
        ("drop_rule", "magnitude"),
        ("regrowth_splits", 0),
        ("erk_power", -0.5),
        ("update_fraction", 0.0),
    ]:
        with pytest.raises(pydantic.ValidationError, match=field):
            build_pruner("disparse-dynamic", **{field: value})
