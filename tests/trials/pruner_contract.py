"""The weight-pruner contract as reusable checks (tests/trials/test_pruner_contract.py runs
them over every registered pruner, tests/trials/test_plugin_pruner.py over a throwaway one).

A tiny two-task model (a regression task and a segmentation-like task on synthetic
images) is trained with the lifecycle the ``WeightPruner`` docstring prescribes; a pruner
must land near its target sparsity, report every component, finalize to plain weights
without changing outputs, and round-trip through the sparse checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from trials.models import MultiTaskModel
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


def outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return model(images)


def check_lifecycle(pruner: WeightPruner, target: float | None, tmp_path: Path) -> None:
    """Trains the tiny model under ``pruner`` and checks the contract: every component
    reported, plain weights after ``finalize`` with the same outputs, the target met
    (``None``: no pruning at all), and a lossless sparse checkpoint."""
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
    method = type(pruner).__name__
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


def check_optimizer_groups(method: str) -> None:
    """The pruner's optimizer groups hold every trainable parameter exactly once."""
    pruner = build_pruner(method)
    model = tiny_model()
    pruner.attach(model, make_context(iterations=10))
    grouped = [id(p) for group in pruner.optimizer_groups(1e-3, 0.0) for p in group["params"]]
    assert len(grouped) == len(set(grouped))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable <= set(grouped)


def check_params(method: str) -> None:
    """A registered pruner is a documented ``WeightPruner`` with typed, frozen, strict
    ``Params``."""
    cls = PRUNERS.get(method)
    assert issubclass(cls, WeightPruner)
    assert issubclass(cls.Params, PrunerParams)
    assert cls.__doc__ and cls.__doc__.strip()
    with pytest.raises(pydantic.ValidationError, match="no_such_knob"):
        build_pruner(method, no_such_knob=1)
    params = build_pruner(method).params
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.target_sparsity = 0.3  # type: ignore[misc]
