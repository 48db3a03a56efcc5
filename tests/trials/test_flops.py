"""FLOP counts against a hand count, and the FLOP and time budget arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trials._flops import (
    forward_flops_per_image,
    iterations_for_flops,
    iterations_for_seconds,
    time_training_steps,
    training_flops,
)


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 2, 1),
        nn.Flatten(),
        nn.Linear(2 * 8 * 8, 5),
    )


# Hand count per 8x8 image, 2 FLOPs per multiply-accumulate, biases and ReLU not counted:
#   conv 3->4 k3 (padding 1): 4 x 8 x 8 outputs x (3 x 3 x 3) MACs = 6912 MACs = 13824 FLOPs
#   conv 4->2 k1:             2 x 8 x 8 outputs x 4 MACs         =  512 MACs =  1024 FLOPs
#   linear 128->5:            5 outputs x 128 MACs               =  640 MACs =  1280 FLOPs
HAND_COUNT = 13824 + 1024 + 1280  # 16128


def test_forward_flops_match_the_hand_count():
    net = small_net()
    assert forward_flops_per_image(net, torch.randn(1, 3, 8, 8)) == HAND_COUNT
    assert forward_flops_per_image(net, torch.randn(4, 3, 8, 8)) == HAND_COUNT  # per image


def test_pruned_weights_count_as_dense_and_the_mode_is_kept():
    net = small_net().train()
    with torch.no_grad():
        net[0].weight.mul_((torch.rand_like(net[0].weight) > 0.9).float())  # ~90% zeros
    assert forward_flops_per_image(net, torch.randn(2, 3, 8, 8)) == HAND_COUNT
    assert net.training
    bn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).train()
    before = bn[1].running_mean.clone()
    forward_flops_per_image(bn, torch.randn(2, 3, 8, 8) + 5)
    assert torch.equal(bn[1].running_mean, before)  # counted in eval mode


def test_training_flops_and_flop_budgets():
    # 3 x 16128 FLOPs per image x 10 iterations x batch 4
    assert training_flops(HAND_COUNT, 40) == 3 * 16128 * 40 == 1_935_360
    per_iteration = 3 * HAND_COUNT * 4  # 193536
    assert iterations_for_flops(per_iteration * 25 + 1, HAND_COUNT, 4) == 25
    assert iterations_for_flops(per_iteration * 25 - 1, HAND_COUNT, 4) == 24
    assert iterations_for_flops(1.0, HAND_COUNT, 4) == 1  # at least one iteration


def test_time_budget_arithmetic():
    # eval_every 10: N steps of 0.1 s (x1.1 margin) + (N/10 + 1) evaluations of 0.5 s <= 20 s
    # -> N = (20 - 0.5) / (0.11 + 0.05) = 121.875 -> 121
    assert iterations_for_seconds(20.0, 0.1, 0.5, 10) == 121
    # default evaluations (5): N = (20 - 2.5) / 0.11 = 159.09 -> 159
    assert iterations_for_seconds(20.0, 0.1, 0.5, 0) == 159
    assert iterations_for_seconds(0.1, 0.1, 0.5, 0) == 1


def test_timing_steps_leaves_model_and_random_state_alone():
    net = small_net()
    weights = [p.detach().clone() for p in net.parameters()]
    state = torch.random.get_rng_state()
    generator = torch.Generator().manual_seed(0)

    def draw() -> dict[str, torch.Tensor]:
        return {"image": torch.randn(4, 3, 8, 8, generator=generator)}

    seconds = time_training_steps(net, draw, lambda m, b: m(b["image"]).square().mean())
    assert 0 < seconds < 1.0
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("batch", [1, 3])
def test_multi_task_model_is_counted(batch):
    from trials.models import build_model

    model = build_model("resnet-tiny", "light", {"a": 2}, backbone_options={"width": 8})
    flops = forward_flops_per_image(model, torch.randn(batch, 3, 16, 16))
    assert flops > 0
    # convolutions scale with the pixels: 4x the pixels, 4x the FLOPs
    assert forward_flops_per_image(model, torch.randn(batch, 3, 32, 32)) == pytest.approx(4 * flops)
