"""The weight-pruner contract, checked for every registered pruner.

A tiny two-task model (a regression task and a segmentation-like task on synthetic
images) is trained with the lifecycle the ``WeightPruner`` docstring prescribes; each
pruner must land near its target sparsity, report every component, finalize to plain
weights without changing outputs, and round-trip through the sparse checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from trials.models._base import MultiTaskModel
from trials.pruning import (
    PRUNERS,
    PrunerParams,
    PruningContext,
    WeightPruner,
    build_pruner,
    load_sparse,
    measure_sparsity,
    save_sparse,
)

ITERATIONS = 150
BATCH = 8
TASKS = ("depth", "seg")
CLASSES = 3
TARGETS = (0.5, 0.9)
#: Final overall sparsity must lie in [target - BELOW, target + ABOVE].
BELOW, ABOVE = 0.015, 0.03
#: Methods whose reference defaults cannot reach a target in ITERATIONS steps: AdapMTL's
#: s_init -30.5 moves by about lr per Adam step (~0.2 here), so sigmoid(s) stays ~1e-13
#: and nothing is cut (the reference runs 20000 iterations). Their lifecycle runs the
#: short-budget calibration; test_reference_defaults_keep_the_lifecycle checks the
#: reference defaults without the target.
SHORT_BUDGET_LIFECYCLE = ("adapmtl", "adapmtl-equal-weights", "adapmtl-global-threshold")


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed: int = 0) -> MultiTaskModel:
    """A 4-conv width-16 backbone (output stride 2) and two small conv heads."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
    )
    heads = {
        "depth": nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 1)),
        "seg": nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, CLASSES, 1)),
    }
    return MultiTaskModel(backbone, heads)


def synthetic_pool(size: int = 48, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images with smooth targets: depth = blurred mean intensity, seg = brightest channel."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(size, 3, 12, 12, generator=generator)
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1)
    return {
        "image": images,
        "depth": blurred.mean(dim=1, keepdim=True),
        "seg": blurred.argmax(dim=1),
    }


def task_losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = model(batch["image"])
    return {
        "depth": F.mse_loss(out["depth"], batch["depth"]),
        "seg": F.cross_entropy(out["seg"], batch["seg"]),
    }


def make_context(iterations: int = ITERATIONS, seed: int = 0) -> PruningContext:
    pool = synthetic_pool(seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)

    def draw_batch() -> dict[str, torch.Tensor]:
        index = torch.randint(0, pool["image"].shape[0], (BATCH,), generator=generator)
        return {key: value[index] for key, value in pool.items()}

    return PruningContext(iterations, TASKS, draw_batch, task_losses, seed)


def train(pruner: WeightPruner, model: MultiTaskModel, context: PruningContext) -> None:
    """The trainer's side of the lifecycle, exactly as ``WeightPruner`` documents it."""
    pruner.attach(model, context)
    optimizer = torch.optim.Adam(pruner.optimizer_groups(2e-3, 0.0))
    model.train()
    for iteration in range(context.total_iterations):
        losses = context.task_losses(model, context.draw_batch())
        optimizer.zero_grad(set_to_none=True)
        torch.stack(list(losses.values())).sum().backward()
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)


def cases() -> list[tuple[str, float | None]]:
    return [
        (name, None) if name == "dense" else (name, target)
        for name in PRUNERS.names()
        for target in ((None,) if name == "dense" else TARGETS)
    ]


def outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return model(images)


@pytest.mark.parametrize(
    ("method", "target"),
    cases(),
    ids=[f"{m}-{t}" for m, t in cases()],
)
def test_lifecycle_meets_the_contract(method: str, target: float | None, tmp_path: Path) -> None:
    calibration = "short-budget" if method in SHORT_BUDGET_LIFECYCLE else "reference"
    pruner = (
        build_pruner(method, calibration)
        if target is None
        else build_pruner(method, calibration, target_sparsity=target)
    )
    model = tiny_model()
    context = make_context()
    train(pruner, model, context)

    report = pruner.sparsity()
    assert list(report.components) == list(model.components())
    assert list(report.counts) == list(model.components())

    images = synthetic_pool(size=4, seed=7)["image"]
    before = outputs(model, images)
    final = pruner.finalize()
    assert isinstance(final, MultiTaskModel)
    assert not any(parametrize.is_parametrized(module) for module in final.modules())
    after = outputs(final, images)
    for task in TASKS:
        torch.testing.assert_close(after[task], before[task])

    overall = measure_sparsity(final.components()).overall
    if target is None:
        assert overall == 0.0
    else:
        assert target - BELOW <= overall <= target + ABOVE, (
            f"{method} ended at sparsity {overall:.4f} for target {target}"
        )

    path = tmp_path / "model.pt"
    save_sparse(final, path)
    restored = tiny_model(seed=1)
    restored.load_state_dict(load_sparse(path))
    for key, tensor in final.state_dict().items():
        assert torch.equal(restored.state_dict()[key], tensor), key
    reloaded = outputs(restored, images)
    for task in TASKS:
        assert torch.equal(reloaded[task], after[task])


@pytest.mark.parametrize("method", SHORT_BUDGET_LIFECYCLE)
def test_reference_defaults_keep_the_lifecycle(method: str) -> None:
    pruner = build_pruner(method, target_sparsity=0.5)
    model = tiny_model()
    train(pruner, model, make_context())
    images = synthetic_pool(size=4, seed=7)["image"]
    before = outputs(model, images)
    final = pruner.finalize()
    assert not any(parametrize.is_parametrized(module) for module in final.modules())
    for task in TASKS:
        torch.testing.assert_close(outputs(final, images)[task], before[task])
    # the documented finding: the reference s_init prunes nothing in a short budget
    assert measure_sparsity(final.components()).overall == 0.0
    values = [float(s.detach()) for s in pruner.threshold_parameters().values()]  # type: ignore[attr-defined]
    assert all(-30.5 < value < -30.0 for value in values), values


@pytest.mark.parametrize("method", PRUNERS.names())
def test_optimizer_groups_cover_every_trainable_parameter_once(method: str) -> None:
    pruner = build_pruner(method)
    model = tiny_model()
    pruner.attach(model, make_context(iterations=10))
    grouped = [id(p) for group in pruner.optimizer_groups(1e-3, 0.0) for p in group["params"]]
    assert len(grouped) == len(set(grouped))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable <= set(grouped)


@pytest.mark.parametrize("method", PRUNERS.names())
def test_params_are_typed_frozen_and_strict(method: str) -> None:
    cls = PRUNERS.get(method)
    assert issubclass(cls, WeightPruner)
    assert issubclass(cls.Params, PrunerParams)
    assert cls.__doc__ and cls.__doc__.strip()
    with pytest.raises(pydantic.ValidationError, match="no_such_knob"):
        build_pruner(method, no_such_knob=1)
    params = build_pruner(method).params
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.target_sparsity = 0.3  # type: ignore[misc]


@pytest.mark.parametrize("method", ["disparse", "disparse-dynamic"])
@pytest.mark.parametrize("target", TARGETS)
def test_disparse_short_budget_meets_the_target(method: str, target: float) -> None:
    """The short-budget calibration (paretune's path before reference defaults) too."""
    pruner = build_pruner(method, "short-budget", target_sparsity=target)
    model = tiny_model()
    train(pruner, model, make_context())
    overall = measure_sparsity(pruner.finalize().components()).overall
    assert target - BELOW <= overall <= target + ABOVE, f"{method} ended at {overall:.4f}"
