"""Differential tests of ``dmtg`` against its reference code.

The reference is ethanygao/DMTG at commit 71b5eed035507c65af62e222c5d3543a3793c2d1
("DG" below; Gao et al., "DMTG: One-Shot Differentiable Multi-Task Grouping", ICML 2024).
Each test re-derives one core computation the way DG's code does it (the functions and
classes below are copies of DG's, cut down to what the computation needs), runs ours on
the same tensors and compares numerically:

* the joint loss ``sum_n sum_k z[n, k] * L(head[k][n])`` (DG models/loss.py:18-48);
* the Gumbel-softmax sample of the grouping (DG models/learnToGroup.py:81-102, which
  calls ``torch.nn.functional.gumbel_softmax``);
* the gradients reaching the stem, the group branches, the heads and ``Theta`` through
  DG's forward (DG models/learnToGroup.py:52-62) with its gradient regulators
  (DG models/learnToGroup.py:49-50,74-79; DG models/ozan_rep_fun.py:47-94), under each
  ``gradient_scaling`` option;
* ``Theta``'s uniform init (DG models/learnToGroup.py:45-46) and the extraction of the
  final architecture (DG models/learnToGroup.py:130-148).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trials import TrialConfig
from trials._trainer import build_setup
from trials.grouping import (
    DMTGParams,
    DMTGSearchModel,
    DMTGTrainer,
    build_search_model,
    extract_grouped_model,
    gumbel_softmax,
    joint_loss,
    task_objectives,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TAU = 4.0  # DG configs/train_taskonomy/base_taskonomy_100_epoches_5_tasks.yaml:25
SEED = 11


# -- re-derivations of the reference code ----------------------------------------------


class TrevorRepFunction(torch.autograd.Function):
    """DG models/ozan_rep_fun.py:47-63: identity forward, gradient x ``1/sqrt(n)``."""

    n = 5

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
        return input.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        grad_input = grad_output.clone()
        mul = 1.0 / math.sqrt(TrevorRepFunction.n)
        return grad_input * mul


class GroupTrevorRepFunction(torch.autograd.Function):
    """DG models/ozan_rep_fun.py:68-84: the backward reads ``GroupTrevorRepFunction.n``
    by class name."""

    n = 5

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
        return input.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        grad_input = grad_output.clone()
        mul = 1.0 / math.sqrt(GroupTrevorRepFunction.n)
        return grad_input * mul


class TaskTrevorRepFunction(GroupTrevorRepFunction):
    """DG models/ozan_rep_fun.py:89-92: inherits the backward above, so its own ``n`` is
    set (DG models/learnToGroup.py:78) but never read."""

    n = 5


REGULATORS: dict[str, Any] = {
    "group_trevor_rep_function": GroupTrevorRepFunction.apply,
    "task_trevor_rep_function": TaskTrevorRepFunction.apply,
    "GroupTrevorRepFunction": GroupTrevorRepFunction,
    "TaskTrevorRepFunction": TaskTrevorRepFunction,
}


def set_regulator(prefix: str, reg_type: str, k_groups: int, n_tasks: int) -> Any:
    """DG models/learnToGroup.py:74-79 (``regulators.__dict__`` is ``REGULATORS``)."""
    fun_name = f"{prefix}_{reg_type}"
    cls_name = "".join([s.capitalize() for s in fun_name.split("_")])
    regulator = REGULATORS[fun_name]
    REGULATORS[cls_name].n = k_groups if prefix == "group" else n_tasks
    return regulator


class ReferenceLearnToGroup(nn.Module):
    """DG's ``LearnToGroup`` forward (DG models/learnToGroup.py:49-62) around the stem,
    branches and heads of a paretune search model (copied). Our heads' bilinear resize to
    the input size is part of the decoder here.

    ``regularize_grad``: ``"trevor_rep_function"`` (DG's Taskonomy configs, e.g.
    DG configs/train_taskonomy/train_taskonomy_100_epoches_3_groups_5_tasks.yaml:22) or
    ``None`` (DG's CelebA configs). ``"sqrt-tasks"`` has no DG configuration: it is DG's
    plain ``TrevorRepFunction`` with ``n = N``, once on the backbone's output.
    """

    def __init__(self, model: DMTGSearchModel, regularize_grad: str | None) -> None:
        super().__init__()
        model = copy.deepcopy(model)
        self.backbone = model.stem
        self.k_group_bones = nn.ModuleDict(
            {f"group_{k}": branch for k, branch in enumerate(model.branches)}
        )
        self.kn_decoders = nn.ModuleDict(
            {f"group_{k}": heads for k, heads in enumerate(model.heads)}
        )
        self.group_matrix = nn.Parameter(model.logits.detach().clone())
        self.k_groups = len(self.k_group_bones)
        self.tasks = list(self.kn_decoders["group_0"].keys())
        self.n_tasks = len(self.tasks)
        sqrt_tasks = regularize_grad == "sqrt-tasks"
        if sqrt_tasks:
            TrevorRepFunction.n = self.n_tasks
            regularize_grad = None
        self.base_regulator = TrevorRepFunction.apply if sqrt_tasks else nn.Identity()
        self.group_regulator = (
            set_regulator("group", regularize_grad, self.k_groups, self.n_tasks)
            if regularize_grad is not None
            else nn.Identity()
        )
        self.task_regulator = (
            set_regulator("task", regularize_grad, self.k_groups, self.n_tasks)
            if regularize_grad is not None
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        x_base = self.base_regulator(self.backbone(x))
        feat_outputs = {}
        for g_key, group_bone in self.k_group_bones.items():
            feat_outputs[g_key] = group_bone(self.group_regulator(x_base))
        task_outputs: dict[str, dict[str, torch.Tensor]] = {
            g_key: {} for g_key in self.k_group_bones
        }
        for g_key, decoders in self.kn_decoders.items():
            for t_key, decoder in decoders.items():
                out = decoder(self.task_regulator(feat_outputs[g_key]))
                task_outputs[g_key][t_key] = F.interpolate(
                    out, size=x.shape[-2:], mode="bilinear", align_corners=False
                )
        return task_outputs


def reference_loss(
    kn_predictions: dict[str, dict[str, Any]],
    n_gt: dict[str, Any],
    grouping: torch.Tensor,
    tasks: list[str],
    loss_fn: dict[str, Any],
) -> torch.Tensor:
    """DG models/loss.py:18-48 (``Loss.__call__`` without the disabled entropy term and
    the batched ``grouping.ndim >= 3`` branch): the returned ``losses["total"]``."""
    total_loss: Any = 0.0
    n_tasks, k_groups = grouping.shape[-2:]
    for i in range(n_tasks):
        for j in range(k_groups):
            ith_task = tasks[i]
            jth_group = f"group_{j}"
            pred = kn_predictions[jth_group][ith_task]
            tmp = loss_fn[ith_task](pred, n_gt[ith_task])
            total_loss += tmp * grouping[i, j]
    return total_loss


def reference_gumbel_softmax(
    logits: torch.Tensor, tau: float, gumbels: torch.Tensor
) -> torch.Tensor:
    """``torch.nn.functional.gumbel_softmax(logits, tau, hard=False)`` (DG
    models/learnToGroup.py:84) with its Gumbel noise given instead of drawn."""
    return ((logits + gumbels) / tau).softmax(-1)


def our_gumbel_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The Gumbel noise our sampler draws from ``torch.Generator().manual_seed(seed)``."""
    uniform = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return -torch.log(-torch.log(uniform + 1e-10) + 1e-10)


def reference_pruning(group_matrix: torch.Tensor, tasks: list[str]) -> dict[int, list[str]]:
    """DG models/learnToGroup.py:130-148 (``FineTuningGroup.pruning``): group -> the tasks
    whose decoder it keeps; groups that keep none are dropped."""
    n_tasks, k_groups = group_matrix.shape
    mask = torch.zeros_like(group_matrix)
    mask[torch.arange(n_tasks), group_matrix.argmax(dim=-1)] = 1
    kept: dict[int, list[str]] = {}
    for k in range(k_groups):
        decoders = list(tasks)
        drop_count = 0
        for n, task in enumerate(tasks):
            if mask[n, k] == 0.0:
                decoders.remove(task)
                drop_count += 1
        if drop_count != n_tasks:
            kept[k] = decoders
    return kept


# -- fixtures ----------------------------------------------------------------------------


def tiny_trainer(params: DMTGParams) -> tuple[DMTGTrainer, dict[str, torch.Tensor]]:
    """A ``dmtg`` trainer on 9 ``attributes`` tasks, K = 3, and one training batch."""
    config = TrialConfig(
        dataset="attributes",
        dataset_options={"num_train": 16, "num_val": 8, "num_test": 8, "resolution": 16},
        model="resnet-tiny",
        model_options={"width": 4},
        head_options={"hidden": 4},
        method="dense",
        iterations=4,
        threads=1,
        seed=SEED,
    )
    setup = build_setup(config)
    channels = {name: task.out_channels for name, task in setup.tasks.items()}
    torch.manual_seed(SEED)
    model = build_search_model(
        "resnet-tiny",
        "light",
        channels,
        3,
        1,
        {"width": 4},
        {"hidden": 4},
        gradient_scaling=params.gradient_scaling,
    )
    with torch.no_grad():  # a non-uniform Theta, so dz/dTheta is not symmetric
        model.logits.copy_(
            torch.randn(model.logits.shape, generator=torch.Generator().manual_seed(2))
        )
    model.train()
    setup.model = model  # type: ignore[assignment]
    trainer = DMTGTrainer(setup, params)
    setup.weighting.attach(tuple(setup.tasks), config.iterations)
    batch = setup.train.get_batch(torch.arange(8))
    return trainer, batch


def gradients(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]  # type: ignore[union-attr]


def assert_all_close(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> None:
    assert len(ours) == len(reference) > 0
    for got, expected in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


# -- tests -------------------------------------------------------------------------------


def test_joint_loss_is_the_reference_total() -> None:
    """DG models/loss.py:21-39: ``total += loss_fn(pred[group_j][task_i]) * grouping[i, j]``
    over tasks i and groups j; ours: :func:`joint_loss` summed over tasks, and the
    trainer's :func:`task_objectives` with ``decoupled_heads=False`` (its gradients too)."""
    generator = torch.Generator().manual_seed(0)
    tasks = ["a", "b", "c", "d"]
    losses = torch.rand(4, 3, generator=generator, dtype=torch.float64) * 3
    z = torch.softmax(torch.randn(4, 3, generator=generator, dtype=torch.float64), dim=1)
    predictions = {f"group_{k}": {t: losses[n, k] for n, t in enumerate(tasks)} for k in range(3)}
    identity = {t: (lambda pred, gt: pred) for t in tasks}  # the loss is given
    expected = reference_loss(predictions, dict.fromkeys(tasks), z, tasks, identity)
    torch.testing.assert_close(joint_loss(losses, z).sum(), expected)

    ours_losses, ours_z = losses.clone().requires_grad_(), z.clone().requires_grad_()
    ref_losses, ref_z = losses.clone().requires_grad_(), z.clone().requires_grad_()
    ours = task_objectives(ours_losses, ours_z, decoupled_heads=False).sum()
    predictions = {
        f"group_{k}": {t: ref_losses[n, k] for n, t in enumerate(tasks)} for k in range(3)
    }
    reference = reference_loss(predictions, dict.fromkeys(tasks), ref_z, tasks, identity)
    torch.testing.assert_close(ours, reference)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(ours_losses.grad, ref_losses.grad)  # = z: heads weighted by z
    torch.testing.assert_close(ours_z.grad, ref_z.grad)  # = L


def test_gumbel_softmax_is_the_references_sampler() -> None:
    """DG models/learnToGroup.py:84: ``F.gumbel_softmax(group_matrix, tau, hard=False)``,
    one sample per step over each task's row. Given the same noise ours is the same
    formula; with its own generator it has the same distribution (mean sample and the
    Gumbel-max argmax frequencies ``softmax(Theta)``)."""
    logits = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, -1.0], [0.5, -0.5, 0.0]])
    torch.manual_seed(3)  # F.gumbel_softmax's own noise, then our copy of its formula
    drawn = F.gumbel_softmax(logits, tau=TAU, hard=False)
    torch.manual_seed(3)
    gumbels = -torch.empty_like(logits).exponential_().log()
    torch.testing.assert_close(reference_gumbel_softmax(logits, TAU, gumbels), drawn)

    ours = gumbel_softmax(logits, TAU, torch.Generator().manual_seed(5))
    expected = reference_gumbel_softmax(logits, TAU, our_gumbel_noise(tuple(logits.shape), 5))
    torch.testing.assert_close(ours, expected)

    draws = 4000
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ours_all = torch.stack([gumbel_softmax(logits, TAU, generator) for _ in range(draws)])
    reference_all = torch.stack([F.gumbel_softmax(logits, tau=TAU) for _ in range(draws)])
    torch.testing.assert_close(ours_all.mean(0), reference_all.mean(0), rtol=0, atol=0.01)
    for samples in (ours_all, reference_all):
        wins = F.one_hot(samples.argmax(-1), 3).float().mean(0)
        torch.testing.assert_close(wins, torch.softmax(logits, -1), rtol=0, atol=0.03)


def step_both_and_compare_loss_and_theta(
    trainer: DMTGTrainer, batch: dict[str, torch.Tensor], reference: ReferenceLearnToGroup
) -> torch.Tensor:
    """One search step of ours and of DG's on the same Gumbel noise (backward of both); the
    loss values and ``Theta``'s gradients agree. Returns our sample ``z``."""
    model = trainer.setup.model
    reference.train()
    z = gumbel_softmax(model.logits, TAU, torch.Generator().manual_seed(SEED))
    ours = trainer.search_loss(model, batch, z, iteration=0)
    ours.backward()
    noise = our_gumbel_noise(tuple(model.logits.shape), SEED)
    grouping = reference_gumbel_softmax(reference.group_matrix, TAU, noise)
    loss_fn = {name: task.loss for name, task in trainer.setup.tasks.items()}
    total = reference_loss(reference(batch["image"]), batch, grouping, reference.tasks, loss_fn)
    total.backward()
    torch.testing.assert_close(ours.detach(), total.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(model.logits.grad, reference.group_matrix.grad, rtol=1e-4, atol=1e-7)
    return z


@pytest.mark.parametrize(
    ("scaling", "regularize_grad"),
    [
        ("dmtg-taskonomy", "trevor_rep_function"),
        ("none", None),
        ("sqrt-tasks", "sqrt-tasks"),
    ],
)
def test_search_step_gradients_match_the_reference_regulators(
    scaling: str, regularize_grad: str | None
) -> None:
    """One search step of ours (:meth:`DMTGTrainer.search_loss` with DG's values,
    :attr:`DMTGParams.REFERENCE_VALUES`: ``decoupled_heads=False``, no balance, no entropy)
    against DG's forward
    (DG models/learnToGroup.py:52-62) with DG's regulators as configured
    (DG models/learnToGroup.py:49-50,74-79; DG models/ozan_rep_fun.py:68-94: both scale
    by ``1/sqrt(K)`` because the task regulator reads the group class's ``n``), DG's loss
    (DG models/loss.py:21-39) and DG's sampler formula (DG models/learnToGroup.py:84) on
    the same Gumbel noise: the value and the gradients of the stem, every branch, every
    head and ``Theta`` agree.
    """
    params = DMTGParams(**DMTGParams.REFERENCE_VALUES, gradient_scaling=scaling)  # type: ignore[arg-type]
    trainer, batch = tiny_trainer(params)
    model = trainer.setup.model
    assert isinstance(model, DMTGSearchModel)
    reference = ReferenceLearnToGroup(model, regularize_grad)
    step_both_and_compare_loss_and_theta(trainer, batch, reference)
    assert_all_close(gradients(model.stem), gradients(reference.backbone))
    assert_all_close(gradients(model.branches), gradients(reference.k_group_bones))
    assert_all_close(gradients(model.heads), gradients(reference.kn_decoders))


def test_taskonomy_regulators_give_stem_one_over_k_and_branches_one_over_sqrt_k() -> None:
    """DG models/ozan_rep_fun.py:68-94 with DG models/learnToGroup.py:74-79 (K = 3,
    N = 9): relative to no regulators, the backbone's gradient is x``1/K`` and a branch's
    x``1/sqrt(K)``, the decoders' x1; ours with ``gradient_scaling="dmtg-taskonomy"``
    has the same factors (``stem_gradient_scale * branch_gradient_scale`` for the stem)."""
    trainer, batch = tiny_trainer(DMTGParams(**DMTGParams.REFERENCE_VALUES))
    model = trainer.setup.model
    assert isinstance(model, DMTGSearchModel)
    scaled = ReferenceLearnToGroup(model, "trevor_rep_function").double()
    plain = ReferenceLearnToGroup(model, None).double()
    assert TaskTrevorRepFunction.n == 9 and GroupTrevorRepFunction.n == 3
    x = batch["image"].double()
    for net in (scaled, plain):
        net.train()
        sum(o.sum() for group in net(x).values() for o in group.values()).backward()
    k = 3
    for part, factor in (("backbone", 1 / k), ("k_group_bones", 1 / math.sqrt(k))):
        for got, base in zip(
            gradients(getattr(scaled, part)), gradients(getattr(plain, part)), strict=True
        ):
            torch.testing.assert_close(got, factor * base)
    assert_all_close(gradients(scaled.kn_decoders), gradients(plain.kn_decoders))
    assert model.branch_gradient_scale == pytest.approx(1 / math.sqrt(k))
    assert model.stem_gradient_scale * model.branch_gradient_scale == pytest.approx(1 / k)


def test_decoupled_heads_keep_the_references_value_and_theta_gradient() -> None:
    """``decoupled_heads=True`` (the default) changes only what the network's parameters
    get: the loss value and ``Theta``'s gradient equal DG's (DG models/loss.py:21-39),
    while every head gets the gradient of its full, unweighted loss."""
    params = {**DMTGParams.REFERENCE_VALUES, "decoupled_heads": True, "gradient_scaling": "none"}
    trainer, batch = tiny_trainer(DMTGParams(**params))
    model = trainer.setup.model
    assert isinstance(model, DMTGSearchModel)
    reference = ReferenceLearnToGroup(model, None)
    z = step_both_and_compare_loss_and_theta(trainer, batch, reference)
    # a head's gradient is its reference gradient divided by its weight z[n, k]
    n, k, task = 0, 1, reference.tasks[0]
    head_grads = gradients(model.heads[k][task])
    reference_grads = gradients(reference.kn_decoders[f"group_{k}"][task])
    assert_all_close(head_grads, [g / float(z[n, k].detach()) for g in reference_grads])


def test_theta_init_and_extraction_match_the_reference() -> None:
    """Theta: DG models/learnToGroup.py:45-46 initialises ones (``eps = 0``), ours zeros:
    the same uniform ``softmax``. Extraction: DG models/learnToGroup.py:130-148 keeps
    decoder ``[argmax_n][n]`` per task and drops groups left without decoders; ours
    (:func:`extract_grouped_model`) keeps the same branches and heads."""
    torch.manual_seed(0)
    model = build_search_model("resnet-tiny", "light", dict.fromkeys("abcde", 1), 4, 1,
                               {"width": 4}, {"hidden": 4})  # fmt: skip
    torch.testing.assert_close(model.probabilities(), torch.softmax(torch.ones(5, 4), dim=1))
    with torch.no_grad():
        model.logits.copy_(torch.randn(5, 4, generator=torch.Generator().manual_seed(7)))
        model.logits[:, 2] = -10.0  # group 2 gets no task and is dropped
    kept = reference_pruning(model.logits.detach(), list(model.tasks))
    grouped = extract_grouped_model(model)
    assert sorted(int(k) for k in grouped.branches) == sorted(kept)
    assert {k: [t for t, g in grouped.assignment.items() if g == k] for k in kept} == kept
    assert 2 not in kept
