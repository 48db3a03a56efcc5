"""Differential tests: paretune's AdapMTL against re-derivations of its reference code.

Each reference function below re-implements (it does not import or copy) what the
AdapMTL reference code computes, at the lines cited. ``AM`` is MitchellX/AdapMTL at commit
29ce7ba9c0553f5d99e0e3e0660bdc9b6713a887. The tests run paretune's code (reference
calibration unless stated) on the same tensors and compare numerically.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trials.models._base import MultiTaskModel
from trials.pruning import PruningContext, build_pruner, measure_sparsity
from trials.pruning._soft_threshold import (
    SoftThresholdPruner,
    reference_sparsity_count,
    soft_threshold_of,
)
from trials.weighting import AdaptiveWeighting, build_weighting

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = ("seg", "depth", "normal")
CHANNELS = {"seg": 4, "depth": 1, "normal": 3}


# -- re-derivations of the reference computations ------------------------------------------


def reference_sparse_function(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """AM models/Deeplab_ResNet34.py:13-14: ``sign(x) * relu(|x| - sigmoid(s))``."""
    return torch.sign(weight) * torch.relu(torch.abs(weight) - torch.sigmoid(s))


def reference_component_sparsity(effective: Sequence[torch.Tensor]) -> tuple[float, int]:
    """AM main/trainer.py:220-236 (store_sparsity) with models/Deeplab_ResNet34.py:50-54.

    Per layer ``sparsity% = 100 - mean(W_eff != 0) * 100`` and the nonzeros re-derived as
    ``int(((100 - sparsity) / 100) * numel)`` (a float round trip, then truncation).
    Returns (component sparsity in percent, parameter count).
    """
    nonzeros, count = 0, 0
    for weight in effective:
        ones = (weight.detach() != 0).float()
        sparsity = 100 - ones.mean().item() * 100
        nonzeros += int(((100 - sparsity) / 100) * weight.numel())
        count += weight.numel()
    return 100 - (100 * nonzeros / count), count


def reference_overall_sparsity(components: Sequence[Sequence[torch.Tensor]]) -> float:
    """AM main/trainer.py:175-180: ``sum_c s_c * t_c / 100 / sum_c t_c`` (a fraction)."""
    parts = [reference_component_sparsity(c) for c in components]
    return sum(s * t for s, t in parts) / 100.0 / sum(t for _, t in parts)


def reference_adaptive_weights(
    losses: Sequence[Sequence[float]], begin: int, window: int, norm: float = 3.0
) -> list[list[float]]:
    """AM main/trainer.py:54-58 (state) and :125-156 (per iteration): task weights used.

    ``losses[i][t]`` is task t's ``.item()`` loss at iteration i (0-based); the result's
    ``[i][t]`` multiplies L_t at iteration i. ``norm`` is the hard-coded 3 of :150.
    """
    tasks = len(losses[0])
    previous: list[float | None] = [None] * tasks
    differences: list[list[float]] = [[] for _ in range(tasks)]
    weight = [1.0] * tasks
    out: list[list[float]] = []
    for i, row in enumerate(losses):
        for t in range(tasks):
            if i >= begin:
                if previous[t] is not None:
                    differences[t].append(abs(previous[t] - row[t]) / row[t])
                previous[t] = row[t]
                if len(differences[t]) > window:
                    differences[t].pop(0)
                    weight[t] = sum(differences[t]) / len(differences[t])
        total = sum(weight)
        weight = [w * norm / total for w in weight]
        out.append(list(weight))
    return out


class ReferenceSTRConv(nn.Conv2d):
    """AM models/Deeplab_ResNet34.py:23-48 (STRConv): the weight is soft-thresholded by a
    shared ``sparseThreshold`` in every forward pass; the bias is not."""

    def __init__(self, conv: nn.Conv2d, threshold: nn.Parameter) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            bias=conv.bias is not None,
        )
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.bias.copy_(conv.bias)
        self.sparseThreshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sparse_weight = reference_sparse_function(self.weight, self.sparseThreshold)
        return F.conv2d(x, sparse_weight, self.bias, self.stride, self.padding)

    def effective(self) -> torch.Tensor:
        return reference_sparse_function(self.weight, self.sparseThreshold)


class ReferenceModel(nn.Module):
    """The reference layout: one threshold for the backbone (AM
    models/Deeplab_ResNet34.py:177, shared at :178,:225-234) and one per head (AM
    main/head.py:13-19), every conv an STRConv, all initialised to one ``s_init``."""

    def __init__(self, model: MultiTaskModel, s_init: float) -> None:
        super().__init__()
        self.backbone_threshold = nn.Parameter(torch.tensor(s_init))
        self.backbone = nn.Sequential(
            *[
                ReferenceSTRConv(m, self.backbone_threshold) if isinstance(m, nn.Conv2d) else m
                for m in model.backbone
            ]
        )
        self.head_thresholds = nn.ParameterDict(
            {task: nn.Parameter(torch.tensor(s_init)) for task in TASKS}
        )
        self.heads = nn.ModuleDict(
            {
                task: nn.Sequential(
                    *[
                        ReferenceSTRConv(m, self.head_thresholds[task])
                        if isinstance(m, nn.Conv2d)
                        else m
                        for m in model.heads[task]
                    ]
                )
                for task in TASKS
            }
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        return {task: self.heads[task](features) for task in TASKS}

    def components(self) -> list[list[torch.Tensor]]:
        parts = [self.backbone, *(self.heads[task] for task in TASKS)]
        return [[m.effective() for m in part if isinstance(m, ReferenceSTRConv)] for part in parts]

    def thresholds(self) -> list[nn.Parameter]:
        return [self.backbone_threshold, *(self.head_thresholds[task] for task in TASKS)]


def reference_train(
    model: ReferenceModel,
    batches: Sequence[dict[str, torch.Tensor]],
    lr: float,
    ratio: float,
    step_size: int,
    weight_decay: float = 1e-4,
) -> list[tuple[bool, list[float]]]:
    """AM main/trainer.py:36,38 (one Adam group, betas (0.5, 0.999), StepLR) and the loop
    at :125-201: loss, backward, sparsity, ``grad = None`` on every threshold when
    ``overall >= ratio`` (:188-192), ``optimizer.step()``, ``scheduler.step()``,
    ``zero_grad()``. Task weights are 1 (the reference before its adaptive phase).

    Returns per step (thresholds held?, threshold values after the step).
    """
    optimizer = torch.optim.Adam(
        filter(lambda p: p.requires_grad, model.parameters()),
        lr=lr,
        betas=(0.5, 0.999),
        weight_decay=weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.5)
    trace = []
    for batch in batches:
        loss = sum(task_losses(model(batch["image"]), batch).values())
        loss.backward()  # type: ignore[union-attr]
        overall = reference_overall_sparsity(model.components())
        held = overall >= ratio
        if held:
            for threshold in model.thresholds():
                threshold.grad = None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        trace.append((held, [float(t.detach()) for t in model.thresholds()]))
    return trace


# -- paretune's side -------------------------------------------------------------------------


def tiny_model(seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
    )
    heads = {
        task: nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU(), nn.Conv2d(8, out, 1))
        for task, out in CHANNELS.items()
    }
    return MultiTaskModel(backbone, heads)


def batches(count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        images = torch.rand(4, 3, 6, 6, generator=generator)
        blurred = F.avg_pool2d(images, 3, stride=1, padding=1)
        out.append(
            {
                "image": images,
                "seg": (blurred * 4).long().clamp(max=3)[:, 0],
                "depth": blurred.mean(dim=1, keepdim=True),
                "normal": F.normalize(blurred - 0.5, dim=1),
            }
        )
    return out


def task_losses(
    outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    return {
        "seg": F.cross_entropy(outputs["seg"], batch["seg"]),
        "depth": F.l1_loss(outputs["depth"], batch["depth"]),
        "normal": F.mse_loss(outputs["normal"], batch["normal"]),
    }


def context(iterations: int) -> PruningContext:
    pool = batches(1, seed=99)[0]
    return PruningContext(
        iterations,
        TASKS,
        lambda: pool,
        lambda model, batch: task_losses(model(batch["image"]), batch),
    )


def paretune_train(
    pruner: SoftThresholdPruner,
    model: MultiTaskModel,
    data: Sequence[dict[str, torch.Tensor]],
    lr: float,
    step_size: int,
) -> list[tuple[bool, list[float]]]:
    """The trainer's lifecycle (trials/_trainer.py: Adam over the pruner's groups,
    StepLR, before_step after backward, after_step after the step)."""
    pruner.attach(model, context(len(data)))
    optimizer = torch.optim.Adam(pruner.optimizer_groups(lr, 0.0), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.5)
    trace = []
    for iteration, batch in enumerate(data):
        optimizer.zero_grad(set_to_none=True)
        sum(task_losses(model(batch["image"]), batch).values()).backward()  # type: ignore[union-attr]
        pruner.before_step(iteration)
        held = pruner.frozen
        optimizer.step()
        pruner.after_step(iteration)
        scheduler.step()
        trace.append((held, [float(t.detach()) for t in pruner.threshold_parameters().values()]))
    return trace


# -- 1. the soft threshold ---------------------------------------------------------------------


def test_soft_threshold_values_and_gradients_match_strconv() -> None:
    """Effective weights, outputs and the gradients of W and of the shared s equal the
    reference STRConv's (AM models/Deeplab_ResNet34.py:13-14, :35-48), bias untouched."""
    ours = tiny_model(seed=1)
    reference = ReferenceModel(tiny_model(seed=1), s_init=-2.5)
    pruner = build_pruner("adapmtl", threshold_init=-2.5)
    pruner.attach(ours, context(10))
    parts = [ours.backbone, *(ours.heads[task] for task in TASKS)]
    ref_parts = [reference.backbone, *(reference.heads[task] for task in TASKS)]
    layers = [m for part in parts for m in part if isinstance(m, nn.Conv2d)]
    ref_layers = [m for part in ref_parts for m in part if isinstance(m, ReferenceSTRConv)]
    assert len(layers) == len(ref_layers) == 8
    for layer, ref in zip(layers, ref_layers, strict=True):
        assert torch.equal(layer.weight, ref.effective())
        assert (layer.weight == 0).any() and (layer.weight != 0).any()
        assert torch.equal(layer.bias, ref.bias)
    batch = batches(1)[0]
    out, ref_out = ours(batch["image"]), reference(batch["image"])
    for task in TASKS:
        torch.testing.assert_close(out[task], ref_out[task], rtol=0, atol=0)
    sum(task_losses(out, batch).values()).backward()  # type: ignore[union-attr]
    sum(task_losses(ref_out, batch).values()).backward()  # type: ignore[union-attr]
    for layer, ref in zip(layers, ref_layers, strict=True):
        original = layer.parametrizations["weight"].original
        assert torch.equal(original.grad, ref.weight.grad)
        assert torch.equal(layer.bias.grad, ref.bias.grad)
    thresholds = pruner.threshold_parameters()
    ours_s = [thresholds["backbone"], *(thresholds[f"head:{task}"] for task in TASKS)]
    for s, ref_s in zip(ours_s, reference.thresholds(), strict=True):
        assert ref_s.grad is not None and ref_s.grad != 0
        assert torch.equal(s.grad, ref_s.grad)


# -- 2. the parameter-weighted overall sparsity --------------------------------------------------


def test_overall_sparsity_is_the_reference_count_up_to_its_truncation() -> None:
    """AM main/trainer.py:175-180,220-236: the component counts weighted by size. Ours
    counts zeros exactly; the reference re-derives each layer's nonzeros through a float
    percentage and ``int()``, which can drop one nonzero per layer: its sparsity is ours
    or up to (layers / total) higher, never lower."""
    ours = tiny_model()
    reference = ReferenceModel(tiny_model(), s_init=-2.0)
    pruner = build_pruner("adapmtl", threshold_init=-2.0)
    pruner.attach(ours, context(10))
    expected = reference_overall_sparsity(reference.components())
    measured = pruner.sparsity().overall
    layers = sum(len(c) for c in reference.components())
    total = sum(w.numel() for c in reference.components() for w in c)
    assert 0.1 < measured < 0.9
    assert measured - 1e-12 <= expected <= measured + layers / total
    # the component weighting itself is the same: size-weighted component fractions
    report = pruner.sparsity()
    weighted = sum(report.components[c] * report.counts[c] for c in report.components)
    assert weighted / sum(report.counts.values()) == pytest.approx(measured, abs=1e-12)
    # with exact nonzero counts (no truncation) the two agree to rounding
    exact = [
        [sum(int((w != 0).sum()) for w in c), sum(w.numel() for w in c)]
        for c in reference.components()
    ]
    assert 1 - sum(n for n, _ in exact) / total == pytest.approx(measured, abs=1e-12)
    # sparsity_count="reference" is the reference arithmetic, bit for bit
    assert reference_sparsity_count(reference.components()) == expected
    assert expected != measured  # this model shows the truncation


# -- 3. the freeze rule --------------------------------------------------------------------------


def test_thresholds_sit_out_exactly_the_steps_the_reference_drops_their_gradients() -> None:
    """AM main/trainer.py:174-198: checked every iteration after backward and before the
    step; at or over the ratio the thresholds' grads are None (Adam skips them); the
    weights keep training; no settling, no guard. With the reference's sparsity count
    (``sparsity_count="reference"``) the same tensors through both loops give the same
    held steps and the same thresholds after every step."""
    steps, lr, ratio, step_size = 60, 1e-2, 0.45, 25
    ours = tiny_model()
    reference = ReferenceModel(tiny_model(), s_init=-3.0)
    data = batches(steps)
    pruner = build_pruner(
        "adapmtl", target_sparsity=ratio, threshold_init=-3.0, sparsity_count="reference"
    )
    assert isinstance(pruner, SoftThresholdPruner)
    expected = reference_train(reference, data, lr, ratio, step_size)
    got = paretune_train(pruner, ours, data, lr, step_size)
    held = [h for h, _ in expected]
    assert any(held) and not all(held), "the run must cross the target"
    assert [h for h, _ in got] == held
    assert got == expected  # bit for bit on the CPU: the same ops in the same order
    # once held, a step leaves every threshold exactly as it was
    for i in range(1, steps):
        if held[i]:
            assert got[i][1] == got[i - 1][1]
            assert expected[i][1] == expected[i - 1][1]
    # no mask was fixed and sparsity went on past the target
    assert all(soft_threshold_of(m).mask is None for m in ours.backbone if isinstance(m, nn.Conv2d))  # type: ignore[union-attr]
    assert measure_sparsity(ours.components()).overall >= ratio


def test_the_exact_count_differs_only_where_the_truncation_reaches_the_target() -> None:
    """The default ``sparsity_count="exact"`` versus AM main/trainer.py:231 (``int()``):
    the same run up to the first step whose exact sparsity is below the ratio while the
    truncated count is not; the reference holds its thresholds there, we do not (here
    step 4; we hold from step 5)."""
    steps, lr, ratio, step_size = 12, 1e-2, 0.45, 25
    reference = ReferenceModel(tiny_model(), s_init=-3.0)
    data = batches(steps)
    expected = reference_train(reference, data, lr, ratio, step_size)
    ours = tiny_model()
    pruner = build_pruner("adapmtl", target_sparsity=ratio, threshold_init=-3.0)
    assert isinstance(pruner, SoftThresholdPruner)
    got = paretune_train(pruner, ours, data, lr, step_size)
    reference_held = [h for h, _ in expected]
    held = [h for h, _ in got]
    assert reference_held.index(True) == 4 and held.index(True) == 5
    for (_, ref_values), (_, values) in zip(expected[:4], got[:4], strict=True):
        assert values == pytest.approx(ref_values, rel=1e-5, abs=1e-6)
    assert got[4][1] != pytest.approx(expected[4][1], rel=1e-5, abs=1e-6)


def test_a_held_step_moves_weights_but_not_thresholds_and_an_unheld_one_moves_both() -> None:
    """AM main/trainer.py:188-196: ``grad = None`` then ``optimizer.step()``: torch Adam
    skips a parameter without a gradient (no moment update, no weight decay)."""
    for target, held in ((0.0, True), (0.99, False)):
        model = tiny_model()
        pruner = build_pruner("adapmtl", target_sparsity=target, threshold_init=-3.0)
        assert isinstance(pruner, SoftThresholdPruner)
        pruner.attach(model, context(10))
        optimizer = torch.optim.Adam(pruner.optimizer_groups(1e-2, 0.0), lr=1e-2)
        batch = batches(1)[0]
        sum(task_losses(model(batch["image"]), batch).values()).backward()  # type: ignore[union-attr]
        s = {n: t.detach().clone() for n, t in pruner.threshold_parameters().items()}
        w = model.heads["seg"][0].parametrizations["weight"].original.detach().clone()
        pruner.before_step(0)
        assert pruner.frozen is held
        optimizer.step()
        after = pruner.threshold_parameters()
        assert all(torch.equal(s[n], after[n]) for n in s) is held
        assert not torch.equal(w, model.heads["seg"][0].parametrizations["weight"].original)


# -- 4. the optimizer grouping -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["adapmtl", "adapmtl-equal-weights", "adapmtl-global-threshold"])
def test_one_adam_group_with_the_reference_decay(method: str) -> None:
    """AM main/trainer.py:36: ``Adam(filter(requires_grad, model.parameters()), lr=lr,
    betas=(0.5, 0.999), weight_decay=args.weight_decay)``, weight decay 1e-4 (AM
    args.py:14): thresholds, weights and biases in one group; StepLR (:38) scales it."""
    model = tiny_model()
    pruner = build_pruner(method)
    pruner.attach(model, context(10))
    groups = pruner.optimizer_groups(1e-3, 0.5)
    assert len(groups) == 1
    (group,) = groups
    assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    assert len(group["params"]) == len(list(model.parameters()))
    assert (group["lr"], group["weight_decay"], group["betas"]) == (1e-3, 1e-4, (0.5, 0.999))


def test_reference_s_init_prunes_nothing_in_a_short_budget() -> None:
    """AM args.py:13 (s_init -30.5) with lr 1e-3 (AM main/trainer.py:26): Adam moves each
    threshold by about the lr per step (the decay gradient ``1e-4 * s`` has one sign), so in
    100 steps s rises by at most ~0.1 and ``sigmoid(s) ~ 6e-14`` cuts nothing. A finding
    for short budgets, not a bug."""
    model = tiny_model()
    pruner = build_pruner("adapmtl")
    assert isinstance(pruner, SoftThresholdPruner)
    trace = paretune_train(pruner, model, batches(100), 1e-3, 10_000)
    moved = [value + 30.5 for value in trace[-1][1]]
    assert all(0 < m <= 1.05 * 100 * 1e-3 for m in moved), moved
    assert measure_sparsity(model.components()).overall == 0.0


# -- 5. the adaptive weighting -------------------------------------------------------------------


def loss_history(iterations: int, tasks: int, seed: int = 0) -> torch.Tensor:
    """float32 losses, as the reference's ``tloss[task].item()`` sees them."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(iterations, tasks, generator=generator) + 0.5


def paretune_weights(
    history: torch.Tensor, total: int, start_fraction: float, window: int, **knobs: object
) -> list[list[float]]:
    weighting = build_weighting("adaptive", window=window, start_fraction=start_fraction, **knobs)
    assert isinstance(weighting, AdaptiveWeighting)
    names = tuple(f"t{k}" for k in range(history.shape[1]))
    weighting.attach(names, total)
    out = []
    for iteration, row in enumerate(history):
        weighting.combine(dict(zip(names, row, strict=True)), iteration)
        out.append([weighting.weights()[name] for name in names])
    return out


def test_adaptive_weights_equal_the_reference_with_three_tasks() -> None:
    """AM main/trainer.py:29,31 (begin 5000, window 500 of 20000) and :125-156: exactly
    equal at every iteration: 1 through begin + window (5500), then ``3 r_t / sum r``
    over the last 500 differences, none from before begin."""
    history = loss_history(6000, 3)
    expected = reference_adaptive_weights(history.tolist(), begin=5000, window=500)
    got = paretune_weights(history, 20000, 0.25, 500)
    assert got == expected
    assert got[5500] == [1.0, 1.0, 1.0] and got[5501] != [1.0, 1.0, 1.0]


def test_adaptive_weights_with_five_tasks_and_the_literal_three() -> None:
    """AM main/trainer.py:150 hard-codes 3: with ``weight_sum=3`` ours is the reference
    exactly (0.6 each before the change, summing to 3 after); with the default (the
    number of tasks) every weight is the reference's times 5/3."""
    history = loss_history(200, 5, seed=1)
    expected = reference_adaptive_weights(history.tolist(), begin=50, window=10)
    assert expected[60] == [0.6] * 5 and expected[61] != [0.6] * 5
    assert paretune_weights(history, 200, 0.25, 10, weight_sum=3.0) == expected
    default = paretune_weights(history, 200, 0.25, 10)
    for ours, reference in zip(default, expected, strict=True):
        assert ours == pytest.approx([w * 5 / 3 for w in reference], rel=1e-14)
    assert default[0] == [1.0] * 5 and sum(default[-1]) == pytest.approx(5.0)


@pytest.mark.parametrize("tasks", [3, 5])
def test_short_budget_adaptive_weights_differ_only_within_the_first_window(tasks: int) -> None:
    """The short-budget options (samples from iteration 1, weights adaptive from the start
    iteration) versus AM main/trainer.py:134-144: the same weights before ``begin`` (all
    ``norm / T``) and from ``begin + window + 1`` on (both windows then hold the same last
    ``window`` differences); different exactly on ``[begin, begin + window]``, where the
    reference still has its initial weights and ours already adapt, their first windows
    holding differences from before ``begin``."""
    begin, window = 50, 10
    history = loss_history(120, tasks, seed=2)
    norm = {"weight_sum": 3.0} if tasks == 5 else {}
    expected = reference_adaptive_weights(history.tolist(), begin=begin, window=window)
    got = paretune_weights(
        history,
        200,
        0.25,
        window,
        record_from="first-iteration",
        adapt_after="start",
        **norm,
    )
    for i, (ours, reference) in enumerate(zip(got, expected, strict=True)):
        if begin <= i <= begin + window:
            assert ours != reference, i
        else:
            assert ours == reference, i


def test_temperature_is_an_extension_that_defaults_to_the_reference() -> None:
    """AM main/trainer.py:144-150 has no temperature: tau = 1 (the default) is exactly the
    reference; other values change the adapted weights only."""
    history = loss_history(120, 3, seed=3)
    expected = reference_adaptive_weights(history.tolist(), begin=50, window=10)
    assert paretune_weights(history, 200, 0.25, 10, temperature=1.0) == expected
    tempered = paretune_weights(history, 200, 0.25, 10, temperature=2.0)
    assert tempered[:61] == expected[:61] and tempered[61] != expected[61]
