"""DMTG pieces: Gumbel-softmax, joint loss, gradient scaling, extraction, grouped models,
the ``dmtg`` trial contract, group-then-prune and the grouping errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trials import TrialConfig, run_trial
from trials._trainer import build_setup
from trials._validate import validate_trial_config
from trials.errors import ParetuneError
from trials.grouping import (
    DMTGParams,
    DMTGSearchModel,
    DMTGTrainer,
    GroupedMultiTaskModel,
    GroupingError,
    build_grouped_model,
    build_search_model,
    extract_grouped_model,
    gradient_scales,
    gumbel_softmax,
    joint_loss,
    load_imbalance,
    parse_dmtg_params,
    row_entropy,
    scale_gradient,
    task_objectives,
    temperature_at,
)
from trials.grouping._trial import logits_adam
from trials.models import MultiTaskModel
from trials.pruning import PRUNERS, build_pruner, load_sparse, measure_sparsity, save_sparse

TASKS = {f"t{i}": 1 for i in range(4)}
TINY_ATTRIBUTES = {"num_train": 48, "num_val": 16, "num_test": 16, "resolution": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def dmtg_trial(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "dataset": "attributes",
        "dataset_options": dict(TINY_ATTRIBUTES),
        "model": "resnet-tiny",
        "model_options": {"width": 4},
        "head_options": {"hidden": 4},
        "method": "dmtg",
        "method_params": {"num_groups": 3, "tau": 2.5, "shared_stages": 1},
        "iterations": 8,
        "batch_size": 4,
        "eval_every": 3,
        "threads": 1,
        "seed": 1,
    }
    fields.update(overrides)
    return fields


def small_search(
    backbone: str = "resnet-tiny",
    shared: int = 1,
    groups: int = 3,
    gradient_scaling: str = "dmtg-taskonomy",
) -> DMTGSearchModel:
    torch.manual_seed(0)
    options = {"width": 4} if backbone == "resnet-tiny" else {"width_multiplier": 0.25}
    return build_search_model(
        backbone,
        "light",
        TASKS,
        groups,
        shared,
        options,
        {"hidden": 4},
        gradient_scaling=gradient_scaling,  # type: ignore[arg-type]
    )


def search_trainer(params: DMTGParams, **trial: object) -> DMTGTrainer:
    """A ``dmtg`` trainer on the tiny ``attributes`` data (9 tasks, K = 3), not yet run;
    ``trial`` overrides fields of the trial."""
    config = TrialConfig.model_validate(
        {**dmtg_trial(), "method": "dense", "method_params": {}, "iterations": 10, **trial}
    )
    setup = build_setup(config)
    channels = {name: task.out_channels for name, task in setup.tasks.items()}
    setup.model = build_search_model(  # type: ignore[assignment]
        "resnet-tiny", "light", channels, 3, 1, {"width": 4}, {"hidden": 4}
    )
    setup.model.train()
    setup.weighting.attach(tuple(setup.tasks), config.iterations)
    return DMTGTrainer(setup, params)


# -- relaxation -------------------------------------------------------------------------


def test_gumbel_softmax_rows_are_distributions_and_reproducible() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, -5.0]])
    first = gumbel_softmax(logits, 2.5, torch.Generator().manual_seed(3))
    again = gumbel_softmax(logits, 2.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    torch.testing.assert_close(first.sum(dim=1), torch.ones(2))
    assert (first > 0).all()
    samples = torch.stack(
        [gumbel_softmax(logits, 0.1, torch.Generator().manual_seed(s)) for s in range(400)]
    )
    # Gumbel-max: at low temperature the argmax frequency follows softmax(logits)
    wins = samples[:, 1].argmax(dim=1).bincount(minlength=3).float() / 400
    assert wins[0] > 0.95
    uniform = samples[:, 0].argmax(dim=1).bincount(minlength=3).float() / 400
    assert (uniform - 1 / 3).abs().max() < 0.1
    with pytest.raises(ValueError, match="tau must be > 0 but got 0"):
        gumbel_softmax(logits, 0.0)


def test_gradients_reach_the_logits() -> None:
    logits = torch.zeros(2, 3, requires_grad=True)
    z = gumbel_softmax(logits, 1.0, torch.Generator().manual_seed(0))
    losses = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    joint_loss(losses, z).sum().backward()
    assert logits.grad is not None
    # the cheaper group's logit is pushed up (negative gradient)
    assert logits.grad[0, 0] < 0 < logits.grad[0, 2]
    assert logits.grad[1, 2] < 0 < logits.grad[1, 0]


def test_joint_loss_is_the_weighted_sum() -> None:
    losses = torch.tensor([[0.5, 1.0], [2.0, 4.0], [1.0, 3.0]])
    z = torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]])
    per_task = joint_loss(losses, z)
    torch.testing.assert_close(per_task, torch.tensor([0.875, 2.0, 2.0]))
    assert math.isclose(float(per_task.sum()), 4.875)
    with pytest.raises(ValueError, match="same"):
        joint_loss(losses, z[:2])


def test_model_loss_matches_a_hand_computed_sum_for_fixed_z() -> None:
    model = small_search()
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    target = torch.tensor([[1.0], [0.0]])
    z = torch.softmax(torch.randn(4, 3), dim=1)
    with torch.no_grad():
        outputs = model.forward_all(x)
    losses = torch.stack(
        [
            torch.stack(
                [
                    torch.nn.functional.binary_cross_entropy_with_logits(
                        out[task].mean(dim=(1, 2, 3)), target[:, 0]
                    )
                    for out in outputs
                ]
            )
            for task in TASKS
        ]
    )
    expected = sum(float(z[n, k]) * float(losses[n, k]) for n in range(4) for k in range(3))
    assert math.isclose(float(joint_loss(losses, z).sum()), expected, rel_tol=1e-6)


def test_temperature_schedules() -> None:
    assert temperature_at(7, 10, 2.5) == 2.5
    assert temperature_at(0, 10, 4.0, "anneal", 0.5) == 4.0
    assert math.isclose(temperature_at(9, 10, 4.0, "anneal", 0.5), 0.5)
    assert math.isclose(temperature_at(3, 7, 4.0, "anneal", 1.0), 2.0)  # geometric midpoint
    with pytest.raises(ValueError, match="'constant' or 'anneal'"):
        temperature_at(1, 10, 1.0, "cosine")


def test_row_entropy() -> None:
    assert math.isclose(float(row_entropy(torch.zeros(3, 4))), math.log(4), rel_tol=1e-6)
    assert float(row_entropy(torch.tensor([[50.0, 0.0]]))) < 1e-6


def test_scale_gradient_leaves_values_and_scales_gradients() -> None:
    x = torch.randn(5, requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((5,), 0.25))


@pytest.mark.parametrize(
    ("scaling", "stem", "branch"),
    [
        ("sqrt-tasks", 0.5, 1.0),  # stem 1/sqrt(N), N = 4
        ("dmtg-taskonomy", 1 / 3, 1 / math.sqrt(3)),  # stem 1/K, branches 1/sqrt(K), K = 3
        ("none", 1.0, 1.0),
    ],
)
def test_shared_gradients_are_scaled_per_option(scaling: str, stem: float, branch: float) -> None:
    scaled = small_search(gradient_scaling=scaling).double()  # float64: exact factors
    plain = small_search(gradient_scaling="none").double()
    plain.load_state_dict(scaled.state_dict())
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    for model in (scaled, plain):
        model.train()
        out = model.forward_all(x)
        sum(o.sum() for branch in out for o in branch.values()).backward()
    for part, factor in ((scaled.stem, stem), (scaled.branches[1], branch)):
        reference = plain.stem if part is scaled.stem else plain.branches[1]
        for got, expected in zip(part.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(got.grad, factor * expected.grad)
    for got, expected in zip(scaled.heads.parameters(), plain.heads.parameters(), strict=True):
        torch.testing.assert_close(got.grad, expected.grad)  # heads are never scaled


def test_gradient_scales_and_their_error() -> None:
    assert gradient_scales("none", 9, 3) == (1.0, 1.0)
    assert gradient_scales("sqrt-tasks", 9, 3) == (1 / 3, 1.0)
    assert gradient_scales("dmtg-taskonomy", 9, 4) == (0.5, 0.5)
    assert gradient_scales("dmtg-taskonomy", 9, 1) == (1.0, 1.0)
    with pytest.raises(ValueError, match="one of dmtg-taskonomy, none, sqrt-tasks but got 'x'"):
        gradient_scales("x", 9, 3)
    with pytest.raises(ValueError, match="gradient_scaling must be one of"):
        small_search(gradient_scaling="1/sqrt(N)")


def test_task_objectives_have_the_joint_value_either_way() -> None:
    losses = torch.tensor([[0.5, 1.0], [2.0, 4.0]], requires_grad=True)
    z = torch.tensor([[0.25, 0.75], [1.0, 0.0]], requires_grad=True)
    coupled = task_objectives(losses, z)
    decoupled = task_objectives(losses, z, decoupled_heads=True)
    torch.testing.assert_close(coupled, joint_loss(losses, z))
    torch.testing.assert_close(decoupled, coupled)
    (loss_grad,) = torch.autograd.grad(decoupled.sum(), losses, retain_graph=True)
    torch.testing.assert_close(loss_grad, torch.ones(2, 2))  # every head its full loss
    (z_grad,) = torch.autograd.grad(decoupled.sum(), z)
    torch.testing.assert_close(z_grad, losses.detach())  # Theta's gradient as the joint loss


def test_dmtg_params_defaults_their_reference_values_and_short_budget_preset() -> None:
    defaults = DMTGParams()
    assert defaults.model_dump() == {
        "num_groups": 3,
        "tau": 2.5,
        "shared_stages": 1,
        "tau_schedule": "constant",
        "tau_final": 0.5,
        "entropy_weight": 0.0,
        "search_fraction": 0.5,
        "logits_travel": 15.0,
        "logits_lr_scale": 1.0,
        "decoupled_heads": True,
        "warmup_fraction": 0.3,
        "balance_weight": 1.0,
        "gradient_scaling": "dmtg-taskonomy",
    }
    assert parse_dmtg_params({}) == defaults
    # every documented deviation, and DG's value that restores it
    reference = DMTGParams(**DMTGParams.REFERENCE_VALUES)
    assert reference.model_dump() == {
        **defaults.model_dump(),
        "tau": 4.0,
        "logits_travel": None,
        "decoupled_heads": False,
        "warmup_fraction": 0.0,
        "balance_weight": 0.0,
    }
    for name, value in DMTGParams.REFERENCE_VALUES.items():
        assert getattr(defaults, name) != value, name
    short = parse_dmtg_params({}, "short-budget")
    assert short == defaults.model_copy(
        update={
            "tau": 2.5,
            "logits_travel": None,
            "logits_lr_scale": 10.0,
            "decoupled_heads": True,
            "warmup_fraction": 0.3,
            "balance_weight": 1.0,
            "gradient_scaling": "sqrt-tasks",
        }
    )
    assert parse_dmtg_params({"tau": 3.0}, "short-budget").tau == 3.0  # explicit wins
    with pytest.raises(GroupingError, match="gradient_scaling"):
        parse_dmtg_params({"gradient_scaling": "sqrt"})
    with pytest.raises(GroupingError, match="logits_travel"):
        parse_dmtg_params({"logits_travel": 0.0})


def test_logits_adam_moves_theta_by_its_travel_over_the_search() -> None:
    """With ``logits_travel`` T, ``Theta`` has its own Adam at T / steps: a gradient of
    constant sign moves every entry by exactly T over the steps, whatever their number."""
    for steps in (10, 200):
        theta = torch.nn.Parameter(torch.zeros(4, 3))
        adam = logits_adam(theta, DMTGParams(logits_travel=6.0), steps)
        assert adam is not None and adam.param_groups[0]["lr"] == pytest.approx(6.0 / steps)
        signs = torch.tensor([[1.0, -1.0, 1.0]] * 4) * torch.arange(1, 5.0)[:, None]
        for _ in range(steps):
            theta.grad = signs * 1e-3  # tiny gradients: Adam's step does not scale with them
            adam.step()
        torch.testing.assert_close(theta.detach(), -6.0 * signs.sign(), rtol=1e-3, atol=1e-3)
    assert logits_adam(theta, DMTGParams(logits_travel=None), 10) is None


def test_theta_is_frozen_in_the_warm_up_then_travels_at_its_own_rate() -> None:
    """A search of 10 steps with a warm-up of 4: ``Theta`` does not move in the warm-up,
    then moves by at most about T / 6 per step (Adam's bound: its rate, up to the
    ``(1 - beta1) / sqrt(1 - beta2)`` of a first step, 3.2); the network trains at the
    trial's lr throughout. With ``logits_travel=None`` (DG), ``Theta`` is in the network's
    optimizer at ``logits_lr_scale * lr``."""
    travel = 0.6
    trainer = search_trainer(DMTGParams(logits_travel=travel, warmup_fraction=0.4))
    model = trainer.setup.model
    assert isinstance(model, DMTGSearchModel)
    seen: list[torch.Tensor] = []
    trainer.on_step = lambda iteration, loss: seen.append(model.logits.detach().clone())
    trainer._search(model, 10)
    final = model.logits.detach().clone()
    assert all(torch.equal(theta, torch.zeros(9, 3)) for theta in seen[:5])  # steps 0..4
    assert not torch.equal(final, torch.zeros(9, 3))
    moves = [(b - a).abs().max() for a, b in zip(seen[4:], [*seen[5:], final], strict=True)]
    assert max(moves) <= 3.2 * travel / 6 and sum(moves) <= 3.2 * travel

    trainer = search_trainer(
        DMTGParams(logits_travel=None, logits_lr_scale=2.0, warmup_fraction=0.0)
    )
    model = trainer.setup.model
    assert isinstance(model, DMTGSearchModel)
    trainer._search(model, 3)
    lr = trainer.setup.config.lr
    assert 0 < float(model.logits.detach().abs().max()) <= 3 * 3.2 * 2.0 * lr


def test_dmtg_trainer_takes_the_trials_adam_betas_and_closes_its_batch_stream() -> None:
    trainer = search_trainer(DMTGParams(), adam_betas=(0.5, 0.99))
    optimizer = trainer._optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}])
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.99)
    result = trainer.train()
    assert result.iterations == 10 and result.grouping is not None
    assert trainer._batches is None  # the training stream (and any loader workers) stopped


def test_load_imbalance() -> None:
    assert float(load_imbalance(torch.zeros(6, 3))) < 1e-9
    crowded = torch.tensor([[9.0, 0.0, 0.0]] * 6)  # every task on group 0
    assert math.isclose(float(load_imbalance(crowded)), 2.0, rel_tol=1e-3)  # var 8 / mean 2^2
    logits = crowded.clone().requires_grad_(True)
    load_imbalance(logits).backward()
    assert logits.grad is not None and (logits.grad[:, 0] > 0).all()  # pushed off group 0


def test_gradient_weights_scale_only_the_branch_share() -> None:
    weighted, plain = small_search(), small_search()
    plain.load_state_dict(weighted.state_dict())
    weights = torch.zeros(4, 3)
    weights[1, 2] = 0.25
    x = torch.randn(2, 3, 16, 16)
    for model, given in ((weighted, weights), (plain, None)):
        model.train()
        out = model.forward_all(x, given)
        (out[2]["t1"].sum() + out[0]["t3"].sum()).backward()
    for head in ("t1", "t3"):  # heads get their full gradient
        k = 2 if head == "t1" else 0
        torch.testing.assert_close(
            next(weighted.heads[k][head].parameters()).grad,
            next(plain.heads[k][head].parameters()).grad,
        )
    grad = next(weighted.branches[2].parameters()).grad
    torch.testing.assert_close(grad, 0.25 * next(plain.branches[2].parameters()).grad)
    assert float(next(weighted.branches[0].parameters()).grad.abs().sum()) == 0.0  # weight 0
    assert float(next(plain.branches[0].parameters()).grad.abs().sum()) > 0.0
    with pytest.raises(ValueError, match=r"gradient_weights must have the .* \(4, 3\)"):
        weighted.forward_all(x, torch.ones(3, 3))


def test_a_tasks_heads_start_identical_on_every_branch() -> None:
    model = small_search()
    for task in TASKS:
        first = model.heads[0][task].state_dict()
        for k in (1, 2):
            assert all(
                torch.equal(v, model.heads[k][task].state_dict()[n]) for n, v in first.items()
            )
        assert model.heads[1][task] is not model.heads[0][task]
    assert not torch.equal(
        next(model.heads[0]["t0"].parameters()), next(model.heads[0]["t1"].parameters())
    )


# -- models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backbone", "shared"),
    [("resnet-tiny", 0), ("resnet-tiny", 1), ("resnet-tiny", 3), ("mobilenetv2", 2)],
)
def test_extracted_model_equals_the_search_models_argmax_paths(backbone: str, shared: int) -> None:
    model = small_search(backbone, shared)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([[3.0, 0, 0], [0, 0, 2.0], [3.0, 0, 0], [0, 0, 1.0]]))
    model.train()  # populate BatchNorm statistics that the copy must carry
    model.forward_all(torch.randn(4, 3, 32, 32))
    model.eval()
    grouped = extract_grouped_model(model)
    grouped.eval()
    assert isinstance(grouped, MultiTaskModel)
    assert grouped.assignment == {"t0": 0, "t1": 2, "t2": 0, "t3": 2}
    expected = ["branch:0", "branch:2"] + [f"head:{t}" for t in TASKS]
    assert list(grouped.components()) == (["stem"] if shared else []) + expected
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        searched, extracted = model(x), grouped(x)
        everything = model.forward_all(x)
    assert list(extracted) == list(TASKS)
    for task, k in grouped.assignment.items():
        torch.testing.assert_close(extracted[task], searched[task])
        torch.testing.assert_close(extracted[task], everything[k][task])
    # the copy is independent of the search model
    with torch.no_grad():
        next(grouped.parameters()).add_(1.0)
    assert not torch.equal(next(grouped.parameters()), next(model.parameters()))


def test_grouped_model_from_an_assignment() -> None:
    torch.manual_seed(0)
    model = build_grouped_model(
        "resnet-tiny", "light", TASKS, {"t0": 1, "t1": 1, "t2": 4, "t3": 1}, 2, {"width": 4}
    )
    assert isinstance(model, GroupedMultiTaskModel)
    assert list(model.components())[:3] == ["stem", "branch:1", "branch:4"]
    assert model.grouping() == {
        "tasks": list(TASKS),
        "num_groups": 2,
        "shared_stages": 2,
        "assignment": {"t0": 1, "t1": 1, "t2": 4, "t3": 1},
    }
    out = model(torch.randn(2, 3, 16, 16))
    assert {t: tuple(v.shape) for t, v in out.items()} == dict.fromkeys(TASKS, (2, 1, 16, 16))
    branches = [next(b.parameters()) for b in model.branches.values()]
    assert not torch.equal(branches[0], branches[1])  # independently initialised


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"num_groups": 5},
            r"num_groups must be between 1 and 4 \(the number of tasks\) but got 5",
        ),
        ({"num_groups": 0}, "num_groups must be between 1 and 4"),
        ({"shared_stages": 4}, r"shared_stages must be between 0 and 3 \(backbone 'resnet-tiny'"),
    ],
)
def test_search_model_errors(kwargs: dict[str, int], match: str) -> None:
    args = {"num_groups": 2, "shared_stages": 1} | kwargs
    with pytest.raises(GroupingError, match=match):
        build_search_model("resnet-tiny", "light", TASKS, **args)


@pytest.mark.parametrize(
    ("assignment", "match"),
    [
        (
            {"t0": 0, "t1": 0, "t2": 1, "t3x": 1},
            r"unknown task in the grouping 't3x'.*did you mean 't3'",
        ),
        ({"t0": 0, "t1": 0, "t2": 1}, "grouping assignment has no branch for task t3"),
        ({"t0": 0, "t1": 0, "t2": 1, "t3": -1}, "must be a branch index >= 0 but got -1"),
    ],
)
def test_assignment_errors(assignment: dict[str, int], match: str) -> None:
    with pytest.raises(GroupingError, match=match):
        build_grouped_model("resnet-tiny", "light", TASKS, assignment, 1)


# -- every weight pruner on a grouped model ----------------------------------------------


def _grouped_context(model: GroupedMultiTaskModel, iterations: int):  # type: ignore[no-untyped-def]
    from trials.pruning import PruningContext

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(32, 3, 16, 16, generator=generator)
    labels = {
        t: (images[:, i % 3].mean(dim=(1, 2)) > 0.5).float()[:, None] for i, t in enumerate(TASKS)
    }

    def draw() -> dict[str, torch.Tensor]:
        index = torch.randint(0, 32, (8,), generator=generator)
        return {"image": images[index]} | {t: v[index] for t, v in labels.items()}

    def losses(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = net(batch["image"])
        return {
            t: torch.nn.functional.binary_cross_entropy_with_logits(
                out[t].mean(dim=(1, 2, 3)), batch[t][:, 0]
            )
            for t in TASKS
        }

    return PruningContext(iterations, tuple(TASKS), draw, losses, 0)


@pytest.mark.parametrize("method", PRUNERS.names())
def test_every_pruner_attaches_to_and_finalizes_a_grouped_model(
    method: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    assignment = {"t0": 0, "t1": 0, "t2": 2, "t3": 2}
    model = build_grouped_model(
        "resnet-tiny", "light", TASKS, assignment, 1, {"width": 4}, {"hidden": 4}
    )
    target = 0.0 if method == "dense" else 0.6
    # 30 steps: the short-budget calibration (the reference's s_init -30.5 prunes nothing)
    pruner = (
        build_pruner(method)
        if method == "dense"
        else build_pruner(method, "short-budget", target_sparsity=target)
    )
    context = _grouped_context(model, 30)
    pruner.attach(model, context)
    optimizer = torch.optim.Adam(pruner.optimizer_groups(2e-3, 0.0))
    for iteration in range(context.total_iterations):
        optimizer.zero_grad(set_to_none=True)
        sum(context.task_losses(model, context.draw_batch()).values()).backward()
        pruner.before_step(iteration)
        optimizer.step()
        pruner.after_step(iteration)
    assert list(pruner.sparsity().components) == list(model.components())
    final = pruner.finalize()
    assert isinstance(final, GroupedMultiTaskModel)
    report = measure_sparsity(final.components())
    assert set(report.components) == {"stem", "branch:0", "branch:2"} | {f"head:{t}" for t in TASKS}
    if method == "dense":
        assert report.overall == 0.0
    else:
        assert report.overall > 0.3, f"{method} reached only {report.overall:.3f}"
    save_sparse(final, tmp_path / "grouped.pt")
    restored = build_grouped_model(
        "resnet-tiny", "light", TASKS, assignment, 1, {"width": 4}, {"hidden": 4}
    )
    restored.load_state_dict(load_sparse(tmp_path / "grouped.pt"))
    final.eval()
    restored.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for task, value in final(x).items():
            torch.testing.assert_close(restored(x)[task], value)


# -- trials -----------------------------------------------------------------------------


def test_dmtg_trial_reports_its_grouping() -> None:
    seen = []
    result = run_trial(dmtg_trial(), on_evaluation=seen.append)
    grouping = result.grouping
    assert grouping is not None
    tasks = list(result.metrics)
    assert grouping["tasks"] == tasks and len(tasks) == 9
    assert grouping["num_groups"] == 3 and grouping["shared_stages"] == 1
    assert set(grouping["assignment"]) == set(tasks)
    assert set(grouping["assignment"].values()) <= {0, 1, 2}
    probabilities = grouping["probabilities"]
    assert len(probabilities) == 9 and all(len(row) == 3 for row in probabilities)
    assert all(math.isclose(sum(row), 1.0, rel_tol=1e-5) for row in probabilities)
    for task, row in zip(tasks, probabilities, strict=True):
        assert row.index(max(row)) == grouping["assignment"][task]
    assert [h["iteration"] for h in grouping["history"]] == [3, 4]  # eval_every, search end
    assert grouping["history"][-1]["probabilities"] == probabilities
    assert [e.iteration for e in seen] == [3, 6, 8]
    assert result.sparsity["overall"] == 0.0
    used = sorted(set(grouping["assignment"].values()))
    assert [c for c in result.sparsity["components"] if c.startswith("branch:")] == [
        f"branch:{k}" for k in used
    ]
    assert all(set(m) == {"accuracy"} for m in result.metrics.values())
    assert result.parameters > 0 and result.method == "dmtg"
    # the search trains every branch and head: more FLOPs than the grouped model alone
    grouped = run_trial({**dmtg_trial(), "method": "dense", "method_params": {},
                         "grouping": {"assignment": grouping["assignment"],
                                      "shared_stages": 1}})  # fmt: skip
    assert result.flops > grouped.flops > 0
    assert 0 < grouping["search_flops"] < result.flops  # the search's share is reported
    again = run_trial(dmtg_trial())
    assert again.grouping == grouping and again.metrics == result.metrics


def test_group_then_prune_runs_the_pruner_on_a_grouped_model() -> None:
    tasks = ["shape_0", "shape_1", "texture_0", "texture_1"]
    assignment = {"shape_0": 0, "shape_1": 0, "texture_0": 1, "texture_1": 1}
    result = run_trial(
        dmtg_trial(
            tasks=tasks,
            method="magnitude",
            method_params={"target_sparsity": 0.5},
            grouping={"assignment": assignment, "shared_stages": 2},
        )
    )
    assert result.grouping is not None
    assert result.grouping["assignment"] == assignment
    assert result.grouping["shared_stages"] == 2 and result.grouping["num_groups"] == 2
    assert list(result.sparsity["components"])[:3] == ["stem", "branch:0", "branch:1"]
    assert 0.45 <= result.sparsity["overall"] <= 0.55


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (
            {"method_params": {"num_groups": 12}},
            GroupingError,
            r"num_groups must be between 1 and 9 \(the number of tasks\) but got 12",
        ),
        (
            {"method_params": {"shared_stages": 4}},
            GroupingError,
            r"shared_stages must be between 0 and 3 .* but got 4",
        ),
        (
            {"method_params": {"num_groups": 2, "grouping_typo": 1}},
            ParetuneError,
            "'grouping_typo'",
        ),
        (
            {
                "method": "magnitude",
                "method_params": {},
                "grouping": {"assignment": {"shape_9": 0}},
            },
            GroupingError,
            r"unknown task in the grouping 'shape_9'.*did you mean",
        ),
        (
            {"method": "dense", "method_params": {}, "grouping": {"assignment": {"shape_0": 0}}},
            GroupingError,
            "grouping assignment has no branch for tasks shape_1, shape_2",
        ),
        (
            {"grouping": {"assignment": {"shape_0": 0}}},
            GroupingError,
            "grouping .* is for weight-pruning methods but method 'dmtg'",
        ),
    ],
)
def test_bad_groupings_fail_validation_and_the_trial(
    overrides: dict[str, object], error: type[Exception], match: str
) -> None:
    fields = dmtg_trial(**overrides)
    with pytest.raises(error, match=match):
        validate_trial_config(fields)
    with pytest.raises(error, match=match):
        run_trial(fields)


def test_validation_accepts_dmtg_and_skips_searched_values() -> None:
    config = validate_trial_config(
        dmtg_trial(method_params={"num_groups": 12}), searched=("num_groups",)
    )
    assert isinstance(config, TrialConfig)
    with pytest.raises(ParetuneError, match="method 'dmtg' has no parameter 'target_sparsity'"):
        validate_trial_config(dmtg_trial(), searched=("target_sparsity",))
    validate_trial_config(dmtg_trial(), searched=("tau", "lr", "num_groups", "shared_stages"))
