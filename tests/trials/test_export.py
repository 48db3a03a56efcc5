"""Sparse checkpoints: exact round trip and a size that scales with density."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from trials.models._base import MultiTaskModel
from trials.pruning import (
    PruningContext,
    build_pruner,
    checkpoint_size,
    load_sparse,
    measure_sparsity,
    save_sparse,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def realistic_model(seed: int = 0, width: int = 64) -> MultiTaskModel:
    """A few ``width``-channel convs with norm layers and two heads (~190k weights at 64)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    heads = {
        task: nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, out, 1)
        )
        for task, out in (("depth", 1), ("seg", 13))
    }
    model = MultiTaskModel(nn.Sequential(*layers), heads)
    with torch.no_grad():  # non-trivial norm statistics, so buffers are checked too
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked += 7
    return model


def _no_batches() -> dict[str, torch.Tensor]:
    raise AssertionError("magnitude pruning draws no batches")


def _no_losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    raise AssertionError("magnitude pruning computes no losses")


def pruned(model: MultiTaskModel, sparsity: float) -> MultiTaskModel:
    """Global magnitude pruning to ``sparsity`` through the ``magnitude`` pruner."""
    pruner = build_pruner("magnitude", target_sparsity=sparsity)
    context = PruningContext(1000, model.tasks, _no_batches, _no_losses)  # finalize cuts
    pruner.attach(model, context)
    final = pruner.finalize()
    assert isinstance(final, MultiTaskModel)
    return final


def outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return model(images)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    model = pruned(realistic_model(width=16), 0.8)
    path = tmp_path / "sparse.pt"
    size = save_sparse(model, path)
    assert size == checkpoint_size(path) > 0
    state = load_sparse(path)
    original = model.state_dict()
    assert list(state) == list(original)
    for key, tensor in original.items():
        assert state[key].dtype == tensor.dtype, key
        assert torch.equal(state[key], tensor), key
    restored = realistic_model(seed=1, width=16)
    restored.load_state_dict(state)
    images = torch.rand(2, 3, 12, 12)
    expected, got = outputs(model, images), outputs(restored, images)
    assert all(torch.equal(got[task], expected[task]) for task in expected)


def test_file_loads_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "sparse.pt"
    save_sparse(pruned(realistic_model(width=8), 0.5), path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "paretune-sparse"
    entry = payload["tensors"]["backbone.0.weight"]
    assert entry["layout"] == "bitmask"
    assert entry["bits"].dtype == torch.uint8
    assert payload["tensors"]["backbone.0.bias"]["layout"] == "dense"


def test_ninety_percent_sparse_checkpoint_is_at_most_a_fifth_of_dense(tmp_path: Path) -> None:
    dense_path, half_path, sparse_path = (tmp_path / n for n in ("d.pt", "s50.pt", "s90.pt"))
    torch.save(realistic_model().state_dict(), dense_path)
    save_sparse(pruned(realistic_model(), 0.5), half_path)
    model = pruned(realistic_model(), 0.9)
    assert measure_sparsity(model.components()).overall == pytest.approx(0.9, abs=1e-4)
    save_sparse(model, sparse_path)
    dense = checkpoint_size(dense_path)
    assert checkpoint_size(sparse_path) <= 0.20 * dense
    assert checkpoint_size(sparse_path) < checkpoint_size(half_path) < dense


def test_float16_values_are_smaller_and_keep_the_zeros(tmp_path: Path) -> None:
    model = pruned(realistic_model(width=32), 0.7)
    exact, half = tmp_path / "exact.pt", tmp_path / "half.pt"
    assert save_sparse(model, half, half=True) < save_sparse(model, exact)
    state = load_sparse(half)
    for key, tensor in model.state_dict().items():
        assert state[key].dtype == tensor.dtype
        if key.endswith(".weight") and tensor.dim() == 4:
            assert torch.equal(state[key] == 0, tensor == 0), key
            torch.testing.assert_close(state[key], tensor, rtol=1e-3, atol=1e-4)


def test_parametrized_model_is_refused(tmp_path: Path) -> None:
    model = realistic_model(width=8)

    class Double(nn.Module):
        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return 2 * weight

    parametrize.register_parametrization(model.backbone[0], "weight", Double())
    with pytest.raises(ValueError, match=r"layer 'backbone\.0' still has a parametrization"):
        save_sparse(model, tmp_path / "x.pt")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sparse(tmp_path / "missing.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.ones(2)}, plain)
    with pytest.raises(ValueError, match="is not a paretune sparse checkpoint"):
        load_sparse(plain)
    future = tmp_path / "future.pt"
    torch.save({"format": "paretune-sparse", "version": 99, "keys": [], "tensors": {}}, future)
    with pytest.raises(ValueError, match="has version 99"):
        load_sparse(future)
