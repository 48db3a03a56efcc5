"""Soft-threshold reparameterization and the pruners built on it (AdapMTL, ablations, STR)."""

from __future__ import annotations

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from trials.models._base import MultiTaskModel
from trials.pruning._adapmtl import (
    AdapMTLEqualWeightsPruner,
    AdapMTLGlobalThresholdPruner,
    AdapMTLPruner,
)
from trials.pruning._base import (
    PRUNERS,
    PruningContext,
    build_pruner,
    measure_sparsity,
    prunable_parameters,
)
from trials.pruning._soft_threshold import (
    SoftThreshold,
    SoftThresholdPruner,
    apply_soft_threshold,
    remove_soft_thresholds,
    soft_threshold_of,
)
from trials.pruning._str import STRPruner

TASKS = ("seg", "depth", "normal")
CHANNELS = {"seg": 4, "depth": 1, "normal": 3}
SOFT_METHODS = ("adapmtl", "adapmtl-equal-weights", "adapmtl-global-threshold", "str")


pytestmark = pytest.mark.usefixtures("one_thread")


def three_task_model(seed: int = 0, width: int = 16) -> MultiTaskModel:
    """Backbone of three convs (two prunable with BN between) and two-layer heads."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
    )
    heads = {
        task: nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(), nn.Conv2d(width, out, 1))
        for task, out in CHANNELS.items()
    }
    return MultiTaskModel(backbone, heads)


def random_pool(size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(size, 3, 8, 8, generator=generator)
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1)
    return {
        "image": images,
        "seg": (blurred * 4).long().clamp(max=3)[:, 0],
        "depth": blurred.mean(dim=1, keepdim=True),
        "normal": F.normalize(blurred - 0.5, dim=1),
    }


def task_losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = model(batch["image"])
    return {
        "seg": F.cross_entropy(out["seg"], batch["seg"]),
        "depth": F.mse_loss(out["depth"], batch["depth"]),
        "normal": F.mse_loss(out["normal"], batch["normal"]),
    }


def context(iterations: int, seed: int = 0) -> PruningContext:
    pool = random_pool(seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)

    def draw_batch() -> dict[str, torch.Tensor]:
        index = torch.randint(0, pool["image"].shape[0], (8,), generator=generator)
        return {key: value[index] for key, value in pool.items()}

    return PruningContext(iterations, TASKS, draw_batch, task_losses, seed)


def train(
    pruner: SoftThresholdPruner,
    model: MultiTaskModel,
    iterations: int,
    trace: list[dict[str, float]] | None = None,
) -> PruningContext:
    ctx = context(iterations)
    pruner.attach(model, ctx)
    optimizer = torch.optim.Adam(pruner.optimizer_groups(2e-3, 0.0))
    model.train()
    for iteration in range(iterations):
        losses = task_losses(model, ctx.draw_batch())
        optimizer.zero_grad(set_to_none=True)
        torch.stack(list(losses.values())).sum().backward()
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)
        if trace is not None:
            trace.append(pruner.thresholds())
    return ctx


def prunable_count(model: nn.Module) -> int:
    return sum(1 for _ in prunable_parameters(model))


# -- the reparameterization ------------------------------------------------------------


def test_soft_threshold_is_exactly_the_formula() -> None:
    torch.manual_seed(0)
    weight = torch.randn(6, 5, 3, 3) * 0.1
    for value in (-4.0, -2.5, 0.0, 1.5):
        s = nn.Parameter(torch.tensor(value))
        expected = torch.sign(weight) * torch.relu(weight.abs() - torch.sigmoid(s))
        assert torch.equal(SoftThreshold(s)(weight), expected)
    s = nn.Parameter(torch.tensor(-2.5))
    cut = SoftThreshold(s)(weight)
    assert torch.equal(cut == 0, weight.abs() <= torch.sigmoid(s))


def test_gradients_reach_weights_and_shared_threshold() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    s = nn.Parameter(torch.tensor(-3.0))
    assert apply_soft_threshold((layer for _, layer in prunable_parameters(model)), s) == 2
    model(torch.randn(16, 8)).pow(2).sum().backward()
    assert s.grad is not None and s.grad.abs().item() > 0
    for layer in (model[0], model[2]):
        original = layer.parametrizations["weight"].original
        assert original.grad is not None and original.grad.abs().sum().item() > 0
        # pruned entries get no gradient, surviving ones get exactly dL/dW_eff
        pruned = original.detach().abs() <= torch.sigmoid(s.detach())
        assert torch.all(original.grad[pruned] == 0)


def test_shared_threshold_is_listed_once_and_removal_keeps_effective_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
    s = nn.Parameter(torch.tensor(-1.5))
    apply_soft_threshold((layer for _, layer in prunable_parameters(model)), s)
    assert sum(1 for p in model.parameters() if p is s) == 1
    with pytest.raises(ValueError, match="already has a soft threshold"):
        apply_soft_threshold([model[0]], s)
    effective = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    assert remove_soft_thresholds(model) == 2
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert torch.equal(model[0].weight, effective[0])
    assert torch.equal(model[2].weight, effective[1])
    assert all(p is not s for p in model.parameters())


def test_fixed_mask_keeps_the_effective_weight_and_ignores_the_threshold() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(10, 10)
    s = nn.Parameter(torch.tensor(-2.0))
    apply_soft_threshold([layer], s)
    before = layer.weight.detach().clone()
    parametrization = soft_threshold_of(layer)
    assert parametrization is not None
    parametrization.fix_mask(layer.parametrizations["weight"].original)
    assert torch.equal(layer.weight, before)
    with torch.no_grad():
        s.fill_(5.0)  # a huge threshold no longer matters
    assert torch.equal(layer.weight, before)


def test_scalar_threshold_is_required() -> None:
    with pytest.raises(ValueError, match="scalar parameter; got shape \\(2,\\)"):
        SoftThreshold(nn.Parameter(torch.zeros(2)))


# -- threshold layout and optimizer groups ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("adapmtl", ["backbone", "head:seg", "head:depth", "head:normal"]),
        ("adapmtl-equal-weights", ["backbone", "head:seg", "head:depth", "head:normal"]),
        ("adapmtl-global-threshold", ["global"]),
    ],
)
def test_component_and_global_thresholds(method: str, expected: list[str]) -> None:
    model = three_task_model()
    pruner = build_pruner(method)
    assert isinstance(pruner, SoftThresholdPruner)
    pruner.attach(model, context(10))
    thresholds = pruner.threshold_parameters()
    assert list(thresholds) == expected
    assert len({id(t) for t in thresholds.values()}) == len(expected)
    assert list(pruner.thresholds()) == expected
    # every prunable layer of each component uses its component's threshold
    for name, component in model.components().items():
        key = "global" if expected == ["global"] else name
        for _, layer in prunable_parameters(component):
            parametrization = soft_threshold_of(layer)
            assert parametrization is not None
            assert parametrization.threshold is thresholds[key]


def test_str_has_one_threshold_per_prunable_layer() -> None:
    model = three_task_model()
    layers = prunable_count(model)
    pruner = build_pruner("str")
    pruner.attach(model, context(10))
    assert isinstance(pruner, STRPruner)
    thresholds = pruner.threshold_parameters()
    assert len(thresholds) == layers == 9
    assert len({id(t) for t in thresholds.values()}) == layers
    assert "backbone.0" in thresholds and "heads.normal.2" in thresholds
    assert soft_threshold_of(model.heads["normal"][2]).threshold is thresholds["heads.normal.2"]


@pytest.mark.parametrize("method", SOFT_METHODS)
def test_optimizer_groups_list_every_parameter_once(method: str) -> None:
    model = three_task_model()
    pruner = build_pruner(method, threshold_lr=0.05, sparsity_penalty=3e-4)
    assert isinstance(pruner, SoftThresholdPruner)
    pruner.attach(model, context(10))
    weights, thresholds = pruner.optimizer_groups(1e-3, 0.7)
    grouped = [id(p) for group in (weights, thresholds) for p in group["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}
    threshold_ids = {id(t) for t in pruner.threshold_parameters().values()}
    assert {id(p) for p in thresholds["params"]} == threshold_ids
    assert not threshold_ids & {id(p) for p in weights["params"]}
    assert weights["lr"] == 1e-3 and thresholds["lr"] == 0.05
    assert weights["weight_decay"] == thresholds["weight_decay"] == 3e-4
    assert weights["betas"] == thresholds["betas"] == (0.5, 0.999)
    torch.optim.Adam([weights, thresholds])  # accepted as is
    torch.optim.SGD([weights, thresholds], lr=1e-3)


@pytest.mark.parametrize("method", ("adapmtl", "adapmtl-equal-weights", "adapmtl-global-threshold"))
def test_reference_puts_thresholds_in_the_weights_group(method: str) -> None:
    model = three_task_model()
    pruner = build_pruner(method)
    assert isinstance(pruner, SoftThresholdPruner)
    pruner.attach(model, context(10))
    (group,) = pruner.optimizer_groups(1e-3, 0.7)
    ids = [id(p) for p in group["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    assert {id(t) for t in pruner.threshold_parameters().values()} <= set(ids)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (1e-3, 1e-4, (0.5, 0.999))
    # a threshold lr equal to the weights' is the same single group
    same = build_pruner(method, threshold_lr=1e-3)
    same.attach(three_task_model(), context(10))
    assert len(same.optimizer_groups(1e-3, 0.0)) == 1
    assert len(same.optimizer_groups(2e-3, 0.0)) == 2


def test_common_threshold_init_and_component_overrides() -> None:
    model = three_task_model()
    pruner = build_pruner("adapmtl")
    pruner.attach(model, context(10))
    values = {name: t.item() for name, t in pruner.threshold_parameters().items()}
    assert values == dict.fromkeys(["backbone", "head:seg", "head:depth", "head:normal"], -30.5)
    pruner = build_pruner("adapmtl-equal-weights", threshold_init=-6.0, threshold_init_heads=-5.0)
    pruner.attach(three_task_model(), context(10))
    values = {name: t.item() for name, t in pruner.threshold_parameters().items()}
    assert values == {"backbone": -6.0, "head:seg": -5.0, "head:depth": -5.0, "head:normal": -5.0}
    glob = build_pruner("adapmtl-global-threshold")
    glob.attach(three_task_model(), context(10))
    assert glob.threshold_parameters()["global"].item() == -30.5


def test_per_task_threshold_init_override() -> None:
    model = three_task_model()
    pruner = build_pruner(
        "adapmtl",
        threshold_init_backbone=-5.0,
        threshold_init_heads=-4.0,
        threshold_init_tasks={"depth": -2.0},
    )
    pruner.attach(model, context(10))
    values = {name: t.item() for name, t in pruner.threshold_parameters().items()}
    assert values == {"backbone": -5.0, "head:seg": -4.0, "head:depth": -2.0, "head:normal": -4.0}
    assert pruner.thresholds()["head:depth"] == pytest.approx(torch.sigmoid(torch.tensor(-2.0)))


def test_unknown_task_in_threshold_init_is_rejected() -> None:
    pruner = build_pruner("adapmtl", threshold_init_tasks={"edges": -2.0})
    with pytest.raises(ValueError, match="unknown task 'edges'; the model's tasks are: seg"):
        pruner.attach(three_task_model(), context(10))


def test_plain_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="needs a multi-task model with components"):
        build_pruner("adapmtl").attach(nn.Linear(3, 3), context(10))


def test_registry_params_and_weighting_defaults() -> None:
    for method in SOFT_METHODS:
        assert method in PRUNERS
    assert PRUNERS.get("adapmtl") is AdapMTLPruner
    assert PRUNERS.get("adapmtl-equal-weights") is AdapMTLEqualWeightsPruner
    assert PRUNERS.get("adapmtl-global-threshold") is AdapMTLGlobalThresholdPruner
    assert PRUNERS.get("str") is STRPruner
    adapmtl = build_pruner("adapmtl", temperature=2.0, window=7, start_fraction=0.5)
    assert adapmtl.default_weighting == "adaptive"
    assert adapmtl.weighting_params() == {
        "temperature": 2.0,
        "window": 7,
        "start_fraction": 0.5,
        "record_from": "start",
        "adapt_after": "full-window",
        "weight_sum": None,
    }
    assert adapmtl.weighting_params("dwa") == {}
    short = build_pruner("adapmtl", "short-budget", weight_sum=3.0)
    assert short.weighting_params() == {
        "temperature": 1.0,
        "window": None,
        "start_fraction": 0.25,
        "record_from": "first-iteration",
        "adapt_after": "start",
        "weight_sum": 3.0,
    }
    glob = build_pruner("adapmtl-global-threshold", threshold_init=-3.0)
    assert glob.default_weighting == "adaptive"
    assert set(glob.weighting_params()) == {
        "temperature",
        "window",
        "start_fraction",
        "record_from",
        "adapt_after",
        "weight_sum",
    }
    equal = build_pruner("adapmtl-equal-weights")
    assert equal.default_weighting == "equal" and equal.weighting_params() == {}
    assert build_pruner("str").default_weighting == "equal"
    with pytest.raises(pydantic.ValidationError, match="temperature"):
        build_pruner("adapmtl-equal-weights", temperature=2.0)
    with pytest.raises(pydantic.ValidationError, match="threshold_init_backbone"):
        build_pruner("adapmtl-global-threshold", threshold_init_backbone=-3.0)
    with pytest.raises(pydantic.ValidationError, match="temperature"):
        build_pruner("adapmtl", temperature=0.0)
    with pytest.raises(pydantic.ValidationError, match="check_every applies only to"):
        build_pruner("adapmtl", check_every=5)


#: The soft-threshold options before reference defaults, every one named.
SHORT_BUDGET_SOFT = {
    "threshold_lr": 2e-2,
    "sparsity_penalty": 1e-2,
    "check": "periodic",
    "check_every": None,
    "freeze": "mask",
    "budget_guard": True,
}


@pytest.mark.parametrize("method", SOFT_METHODS)
def test_calibrations_of_the_soft_threshold_options(method: str) -> None:
    reference = build_pruner(method).params.model_dump()
    short = build_pruner(method, "short-budget").params.model_dump()
    init = "threshold_init"
    if method == "str":  # no reference code: paretune's values in every calibration
        assert reference == short
        assert {k: reference[k] for k in SHORT_BUDGET_SOFT} == SHORT_BUDGET_SOFT
        assert reference[init] == -4.0
        return
    assert {k: short[k] for k in SHORT_BUDGET_SOFT} == SHORT_BUDGET_SOFT
    assert short[init] == -4.0
    assert {k: reference[k] for k in SHORT_BUDGET_SOFT} == {
        "threshold_lr": None,
        "sparsity_penalty": 1e-4,
        "check": "every-step",
        "check_every": None,
        "freeze": "threshold",
        "budget_guard": False,
    }
    assert reference[init] == -30.5
    if method != "adapmtl-global-threshold":
        for name in ("threshold_init_backbone", "threshold_init_heads", "threshold_init_tasks"):
            assert reference[name] is None and short[name] is None


# -- training dynamics -----------------------------------------------------------------


@pytest.mark.parametrize("method", SOFT_METHODS)
def test_short_budget_reaches_target_freezes_and_finalizes(method: str) -> None:
    model = three_task_model()
    pruner = build_pruner(
        method,
        "short-budget",
        target_sparsity=0.7,
        sparsity_penalty=1e-2,
        threshold_lr=3e-2,
        check_every=5,
    )
    assert isinstance(pruner, SoftThresholdPruner)
    start = pruner.params.model_dump()
    trace: list[dict[str, float]] = []
    train(pruner, model, 300, trace)
    assert pruner.params.model_dump() == start
    frozen_at = pruner.frozen_at
    assert frozen_at is not None and 0 <= frozen_at < 280, "the target was not reached"
    assert not pruner.budget_guard_applied
    # thresholds moved before the freeze and not at all after it
    assert trace[0] != trace[frozen_at]
    assert all(values == trace[frozen_at] for values in trace[frozen_at:])
    assert all(not t.requires_grad for t in pruner.threshold_parameters().values())
    report = pruner.sparsity()
    # the zero pattern is settled exactly at the target when it freezes
    assert 0.7 <= report.overall < 0.7 + 1 / sum(report.counts.values()) + 1e-12
    assert list(report.components) == list(model.components())

    images = random_pool(size=4, seed=9)["image"]
    model.eval()
    with torch.no_grad():
        before = model(images)
    final = pruner.finalize()
    assert final is model
    assert not any(parametrize.is_parametrized(m) for m in final.modules())
    with torch.no_grad():
        after = final(images)
    for task in TASKS:
        assert torch.equal(after[task], before[task])
    assert measure_sparsity(final.components()).overall == report.overall
    assert pruner.thresholds() == trace[-1]


def test_periodic_threshold_freeze_keeps_the_soft_threshold() -> None:
    model = three_task_model()
    pruner = build_pruner(
        "adapmtl",
        "short-budget",
        target_sparsity=0.6,
        sparsity_penalty=1e-2,
        threshold_lr=3e-2,
        freeze="threshold",
    )
    assert isinstance(pruner, SoftThresholdPruner)
    trace: list[dict[str, float]] = []
    train(pruner, model, 200, trace)
    assert pruner.frozen_at is not None
    assert trace[-1] == trace[pruner.frozen_at]
    parametrization = soft_threshold_of(model.backbone[0])
    assert parametrization is not None and parametrization.mask is None
    # a cut weight gets no gradient, so sparsity can only have grown after the freeze
    assert pruner.sparsity().overall >= 0.6


def test_every_step_check_holds_thresholds_only_while_at_the_target() -> None:
    """The reference path: checked before every step, thresholds held for that step only."""
    model = three_task_model()
    pruner = build_pruner(
        "adapmtl",
        target_sparsity=0.6,
        threshold_init=-4.0,
        threshold_lr=3e-2,
        sparsity_penalty=1e-2,
    )
    assert isinstance(pruner, SoftThresholdPruner)
    ctx = context(200)
    pruner.attach(model, ctx)
    optimizer = torch.optim.Adam(pruner.optimizer_groups(2e-3, 0.0))
    held, moved = 0, 0
    for iteration in range(200):
        losses = task_losses(model, ctx.draw_batch())
        optimizer.zero_grad(set_to_none=True)
        torch.stack(list(losses.values())).sum().backward()
        before = pruner.sparsity().overall
        values = {n: t.detach().clone() for n, t in pruner.threshold_parameters().items()}
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)
        after = {n: t.detach() for n, t in pruner.threshold_parameters().items()}
        if before >= 0.6:
            assert pruner.frozen and not pruner.frozen_for_good
            assert all(torch.equal(values[n], after[n]) for n in values)
            held += 1
        else:
            assert not pruner.frozen
            moved += any(not torch.equal(values[n], after[n]) for n in values)
    assert pruner.frozen_at is not None and held == pruner.held_steps > 0 and moved > 0
    assert all(t.requires_grad for t in pruner.threshold_parameters().values())
    parametrization = soft_threshold_of(model.backbone[0])
    assert parametrization is not None and parametrization.mask is None  # nothing settled
    assert not pruner.budget_guard_applied


def test_reference_has_no_budget_guard() -> None:
    model = three_task_model()
    pruner = build_pruner("adapmtl", target_sparsity=0.9, threshold_init=-4.0)
    assert isinstance(pruner, SoftThresholdPruner)
    train(pruner, model, 30)
    final = measure_sparsity(pruner.finalize().components()).overall
    assert final < 0.5 and not pruner.budget_guard_applied


def test_budget_guard_meets_an_unreached_target_without_emptying_a_component() -> None:
    model = three_task_model()
    pruner = build_pruner(
        "adapmtl", "short-budget", target_sparsity=0.9, sparsity_penalty=0.0, threshold_lr=1e-3
    )
    assert isinstance(pruner, SoftThresholdPruner)
    train(pruner, model, 30)
    assert pruner.frozen_at is None
    assert pruner.budget_guard_applied
    report = pruner.sparsity()
    total = sum(report.counts.values())
    assert 0.9 <= report.overall < 0.9 + 1 / total + 1e-12
    assert all(fraction < 1.0 for fraction in report.components.values())
    # each component keeps the same fraction of what survived (up to rounding)
    fractions = sorted(1 - f for f in report.components.values())
    assert fractions[-1] / fractions[0] < 1.5
    assert pruner.finalize() is model
    assert measure_sparsity(model.components()).overall == report.overall


def test_str_budget_guard_spreads_over_layers() -> None:
    model = three_task_model()
    pruner = build_pruner("str", target_sparsity=0.5, sparsity_penalty=0.0, threshold_lr=1e-3)
    train(pruner, model, 5)
    sparsity = measure_sparsity(pruner.finalize().components()).overall
    assert 0.5 <= sparsity < 0.51
    for _, layer in prunable_parameters(model):
        assert (layer.weight != 0).any()


def test_init_beyond_target_holds_from_the_first_step_in_the_reference() -> None:
    model = three_task_model()
    pruner = build_pruner("adapmtl-global-threshold", target_sparsity=0.5, threshold_init=1.0)
    assert isinstance(pruner, SoftThresholdPruner)
    pruner.attach(model, context(10))
    assert pruner.frozen_at is None
    train_loss = torch.stack(list(task_losses(model, random_pool(8)).values())).sum()
    train_loss.backward()
    pruner.before_step(0)
    assert pruner.frozen_at == 0 and pruner.frozen
    assert all(t.grad is None for t in pruner.threshold_parameters().values())
    assert pruner.sparsity().overall > 0.99  # not settled at the target


def test_init_beyond_target_freezes_at_attach_in_short_budget() -> None:
    model = three_task_model()
    pruner = build_pruner(
        "adapmtl-global-threshold", "short-budget", target_sparsity=0.5, threshold_init=1.0
    )
    assert isinstance(pruner, SoftThresholdPruner)
    start = {name: layer.weight.detach().clone() for name, layer in prunable_parameters(model)}
    pruner.attach(model, context(10))
    assert pruner.frozen_at == -1
    _, thresholds = pruner.optimizer_groups(1e-3, 0.0)
    assert thresholds["lr"] == 0.0
    # sigmoid(1) cuts almost everything; the largest weights come back, with small values
    report = pruner.sparsity()
    assert 0.5 <= report.overall < 0.5 + 1 / sum(report.counts.values()) + 1e-12
    kept = torch.cat([layer.weight.detach().flatten() for _, layer in prunable_parameters(model)])
    before = torch.cat([weight.flatten() for weight in start.values()])
    assert torch.all(kept.abs() <= before.abs())
    alive = kept != 0
    assert torch.all(torch.sign(kept[alive]) == torch.sign(before[alive]))
    assert before[alive].abs().min() >= before[~alive].abs().max()


def test_overshoot_in_one_step_is_settled_at_the_target() -> None:
    model = three_task_model()
    pruner = build_pruner(
        "str", target_sparsity=0.6, threshold_init=-3.0, sparsity_penalty=5e-2, threshold_lr=0.5
    )  # STR's defaults are the periodic check with freeze="mask"
    assert isinstance(pruner, SoftThresholdPruner)
    train(pruner, model, 40)
    assert pruner.frozen_at is not None
    reached = pruner.sparsity_at_freeze
    assert reached is not None and reached > 0.65, "this setting should overshoot in one step"
    report = pruner.sparsity()
    assert 0.6 <= report.overall < 0.6 + 1 / sum(report.counts.values()) + 1e-12


def test_init_at_target_starts_every_threshold_at_the_weights_quantile():
    """``init_at_target``: one s_init for all, sigmoid(s) = the |W| quantile at the target."""
    from trials.models import build_model
    from trials.pruning import build_pruner
    from trials.pruning._base import PruningContext, prunable_parameters

    torch.manual_seed(0)
    model = build_model(
        "resnet-tiny", "light", {"segment_semantic": 13, "normal": 3}, backbone_options={"width": 8}
    )
    weights = torch.cat(
        [layer.weight.detach().abs().flatten() for _, layer in prunable_parameters(model)]
    )
    pruner = build_pruner("adapmtl", target_sparsity=0.8, init_at_target=1.0)
    context = PruningContext(10, ("segment_semantic", "normal"), lambda: {}, lambda m, b: {})
    pruner.attach(model, context)
    cut = float(torch.quantile(weights, 0.8))
    assert list(pruner.thresholds().values()) == pytest.approx([cut] * 3, rel=1e-5)
    assert pruner.sparsity().overall == pytest.approx(0.8, abs=1e-3)


def test_the_init_quantile_reads_every_weight_of_a_large_model():
    """Above 2**24 weights (torch.quantile's limit) every weight still counts: the last
    third, all large, sets the 90% quantile."""
    from trials.pruning._soft_threshold import magnitude_quantile

    count = 2**24 + 2**23
    magnitudes = torch.zeros(count)
    magnitudes[2**24 :] = 1.0
    assert magnitude_quantile(magnitudes, 0.5) == 0.0
    assert magnitude_quantile(magnitudes, 0.9) == 1.0  # the truncated input had none
    small = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    assert magnitude_quantile(small, 0.8) == pytest.approx(float(torch.quantile(small, 0.8)))
