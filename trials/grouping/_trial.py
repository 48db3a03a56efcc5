"""The ``dmtg`` trial: search the grouping, extract the grouped model, fine-tune, evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from trials._config import Evaluation, TrialConfig, TrialResult
from trials._flops import forward_flops_per_image, training_flops
from trials._trainer import Trainer, TrialDiverged, TrialSetup, build_optimizer, build_setup
from trials.data import build_dataset
from trials.grouping._registry import ARCHITECTURE_SEARCHES, ArchitectureSearch
from trials.grouping._relax import (
    gumbel_softmax,
    load_imbalance,
    row_entropy,
    task_objectives,
    temperature_at,
)
from trials.grouping._search_model import (
    DMTGSearchModel,
    build_search_model,
    extract_grouped_model,
)
from trials.grouping._spec import DMTGParams, check_num_groups, parse_dmtg_params
from trials.models import (
    BACKBONES,
    GroupedMultiTaskModel,
    GroupingError,
    check_assignment,
    check_shared_stages,
    parse_grouping,
)


def dataset_tasks(config: TrialConfig) -> tuple[str, ...]:
    """The task names ``config``'s data set yields (builds its held-out split)."""
    options = dict(config.dataset_options)
    if config.tasks is not None:
        options["tasks"] = list(config.tasks)
    return build_dataset(config.dataset, config.eval_split, config.dataset_root, **options).tasks


def backbone_stages(config: TrialConfig) -> int:
    """Number of stages of ``config``'s backbone."""
    return len(BACKBONES.get(config.model)(**config.model_options).stages)


def validate_grouping(config: TrialConfig) -> None:
    """Checks ``config.grouping`` (a stored assignment) against the tasks and backbone.

    Raises:
        GroupingError: unknown or missing tasks, bad branch indices, ``shared_stages`` out
            of range, or a grouping given to an architecture search.
    """
    if config.grouping is None:
        return
    if config.method in ARCHITECTURE_SEARCHES:
        raise GroupingError(
            f"grouping (a stored assignment) is for weight-pruning methods but method "
            f"{config.method!r} searches its own grouping"
        )
    spec = parse_grouping(config.grouping)
    check_assignment(spec.assignment, dataset_tasks(config))
    check_shared_stages(spec.shared_stages, backbone_stages(config), config.model)


def validate_method_grouping(config: TrialConfig, searched: tuple[str, ...] = ()) -> None:
    """The grouping checks of :func:`trials._validate.validate_trial_config`: an
    architecture search validates its parameters against the tasks and backbone; a weight
    pruner's stored ``grouping`` is checked with :func:`validate_grouping`."""
    if config.method in ARCHITECTURE_SEARCHES:
        ARCHITECTURE_SEARCHES.get(config.method)().validate(config, searched)
    else:
        validate_grouping(config)


class _AllBranches(nn.Module):
    """The search model's training forward (every branch, every head), for FLOP counts."""

    def __init__(self, model: DMTGSearchModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.model.forward_all(x)


def logits_adam(logits: nn.Parameter, params: DMTGParams, steps: int) -> torch.optim.Adam | None:
    """``Theta``'s own Adam when ``params.logits_travel`` is set: a constant rate of
    ``logits_travel / steps`` over the ``steps`` search steps after the warm-up, so
    ``Theta`` can move as far in a short search as in a long one (Adam moves a parameter by
    at most about its rate per step). None: ``Theta`` trains in the network's optimizer,
    as in DMTG's code."""
    if params.logits_travel is None:
        return None
    return torch.optim.Adam([logits], lr=params.logits_travel / max(1, steps))


def _probabilities(model: DMTGSearchModel) -> list[list[float]]:
    return [[float(p) for p in row] for row in model.probabilities().cpu()]


class DMTGTrainer(Trainer):
    """Runs a ``dmtg`` trial on a :class:`TrialSetup` whose model is replaced.

    Search (``search_fraction`` of the iterations): every step samples
    ``z = gumbel_softmax(Theta, tau)`` per task (the reference code ethanygao/DMTG, "DG":
    DG models/learnToGroup.py:84) and minimises ``sum_n sum_k z[n, k] * L(head[k][n])``
    (DG models/loss.py:21-39; combined over tasks by the trial's task weighting, equal by
    default: a plain sum, as DG's) plus ``entropy_weight`` times the mean row entropy of
    ``softmax(Theta)`` (0 by default) and ``balance_weight`` times the groups' load
    imbalance. With ``decoupled_heads`` (the default) the heads train on their full losses
    and ``z`` only weighs what flows into the branches and the stem (``Theta``'s gradient
    is unchanged). ``Theta`` stays frozen for the first ``warmup_fraction`` of the search.
    The network trains at ``lr`` with the trial's step schedule; ``Theta`` (no weight
    decay) with its own Adam at ``logits_travel / (search steps after the warm-up)``
    (:func:`logits_adam`), or, with ``logits_travel=None``, in the network's optimizer at
    ``logits_lr_scale * lr``. Evaluations during the search use each task's argmax
    branch. Then the grouped model is extracted and fine-tuned (dense, every parameter
    trainable, a fresh optimizer and schedule) for the remaining iterations.
    """

    def __init__(
        self,
        setup: TrialSetup,
        params: DMTGParams,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        super().__init__(setup, on_evaluation=on_evaluation, on_step=on_step)
        self.params = params
        self.history: list[dict[str, Any]] = []

    def _optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        return build_optimizer(self.setup, groups)

    def _scheduler(
        self, optimizer: torch.optim.Optimizer, iterations: int
    ) -> torch.optim.lr_scheduler.StepLR:
        config = self.setup.config
        step_size = max(1, round(config.lr_step_fraction * iterations))
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=config.lr_gamma)

    def _step(
        self,
        iteration: int,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.StepLR,
    ) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrialDiverged(f"training loss became {value} at iteration {iteration}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if self.on_step is not None:
            self.on_step(iteration + 1, value)
        done = iteration + 1
        if done % self.setup.config.eval_every == 0 and done < self.setup.config.iterations:
            self.record_evaluation(done, self.setup.model, {})

    def _search(self, model: DMTGSearchModel, iterations: int) -> None:
        setup, params = self.setup, self.params
        config = setup.config
        warmup = round(params.warmup_fraction * iterations)
        network = {
            "params": model.network_parameters(),
            "lr": config.lr,
            "weight_decay": config.weight_decay,
        }
        logits_optimizer = logits_adam(model.logits, params, iterations - warmup)
        if logits_optimizer is None:  # DG: Theta in the network's Adam, on its schedule
            logits = {
                "params": [model.logits],
                "lr": config.lr * params.logits_lr_scale,
                "weight_decay": 0.0,
            }
            optimizer = self._optimizer([network, logits])
        else:
            optimizer = self._optimizer([network])
        scheduler = self._scheduler(optimizer, iterations)
        for iteration in range(iterations):
            batch = self.draw_batch()
            tau = temperature_at(
                iteration, iterations, params.tau, params.tau_schedule, params.tau_final
            )
            z = gumbel_softmax(model.logits, tau, generator=setup.generator)
            searching = iteration >= warmup  # Theta is frozen during the warm-up
            loss = self.search_loss(model, batch, z, iteration, searching)
            if logits_optimizer is not None:
                logits_optimizer.zero_grad(set_to_none=True)
            self._step(iteration, loss, optimizer, scheduler)
            if logits_optimizer is not None and searching:
                logits_optimizer.step()
            done = iteration + 1
            if done % config.eval_every == 0 or done == iterations:
                self.history.append({"iteration": done, "probabilities": _probabilities(model)})

    def search_loss(
        self,
        model: DMTGSearchModel,
        batch: dict[str, torch.Tensor],
        z: torch.Tensor,
        iteration: int,
        searching: bool = True,
    ) -> torch.Tensor:
        """One search step's loss for ``batch`` and the ``(N, K)`` assignment sample ``z``.

        ``searching=False`` is the warm-up: ``z`` is detached (``Theta`` gets no gradient)
        and the entropy and balance terms are left out.
        """
        setup, params = self.setup, self.params
        names = list(model.tasks)
        if not searching:
            z = z.detach()
        with self.autocast():
            outputs = model.forward_all(batch["image"], z if params.decoupled_heads else None)
            losses = torch.stack(
                [
                    torch.stack([setup.tasks[n].loss(out[n], batch[n]) for out in outputs])
                    for n in names
                ]
            ).float()
        per_task = task_objectives(losses, z, params.decoupled_heads)
        loss = setup.weighting.combine(dict(zip(names, per_task, strict=True)), iteration)
        if searching and params.entropy_weight:
            loss = loss + params.entropy_weight * row_entropy(model.logits)
        if searching and params.balance_weight:
            loss = loss + params.balance_weight * load_imbalance(model.logits)
        return loss

    def _fine_tune(self, model: GroupedMultiTaskModel, start: int) -> None:
        setup = self.setup
        config = setup.config
        optimizer = self._optimizer(
            [
                {
                    "params": list(model.parameters()),
                    "lr": config.lr,
                    "weight_decay": config.weight_decay,
                }
            ]
        )
        scheduler = self._scheduler(optimizer, config.iterations - start)
        for iteration in range(start, config.iterations):
            batch = self.draw_batch()
            with self.autocast():
                outputs = model(batch["image"])
                losses = {n: task.loss(outputs[n], batch[n]) for n, task in setup.tasks.items()}
            loss = setup.weighting.combine(losses, iteration)
            self._step(iteration, loss, optimizer, scheduler)

    def count_forward_flops(self, example: torch.Tensor) -> float:
        """Per image of a search step (every branch, all K*N heads): what a FLOP or time
        budget is converted with, an upper bound of a fine-tuning step."""
        model = self.setup.model
        assert isinstance(model, DMTGSearchModel)
        return forward_flops_per_image(_AllBranches(model), example)

    def _spent_flops(
        self, grouped: GroupedMultiTaskModel, search_iterations: int
    ) -> tuple[float, float]:
        """Training FLOPs of the search, and of fine-tuning the grouped model after it."""
        setup = self.setup
        example = self.example_image()
        batch = setup.config.batch_size
        fine_tuning = setup.config.iterations - search_iterations
        search = training_flops(self.forward_flops, search_iterations * batch)
        grouped_forward = forward_flops_per_image(grouped, example)
        return search, training_flops(grouped_forward, fine_tuning * batch)

    def _train(self) -> TrialResult:
        """Search, extract, fine-tune; the result carries ``grouping``."""
        setup, params = self.setup, self.params
        self.fix_budget()  # FLOPs of search and fine-tuning; a FLOP or time budget -> iterations
        config = setup.config
        search_iterations = max(1, round(params.search_fraction * config.iterations))
        search_model = setup.model
        assert isinstance(search_model, DMTGSearchModel)
        search_model.train()
        setup.weighting.attach(tuple(setup.tasks), config.iterations)
        self._search(search_model, search_iterations)
        grouped = extract_grouped_model(search_model)
        setup.model = grouped  # type: ignore[assignment]
        grouped.train()
        self._fine_tune(grouped, search_iterations)
        final = self.record_evaluation(config.iterations, grouped, {})
        result = self.trial_result(final)
        search_flops, fine_tuning_flops = self._spent_flops(grouped, search_iterations)
        result.flops = search_flops + fine_tuning_flops
        result.grouping = {
            **grouped.grouping(),
            "num_groups": search_model.num_groups,
            "probabilities": _probabilities(search_model),
            "history": self.history,
            "search_flops": search_flops,
        }
        return result


@ARCHITECTURE_SEARCHES.register("dmtg")
class DMTGSearch(ArchitectureSearch):
    """DMTG (Gao et al., "DMTG: One-Shot Differentiable Multi-Task Grouping", ICML 2024):
    one-shot differentiable task grouping, then fine-tuning of the grouped model.

    ``method_params`` are the fields of :class:`DMTGParams`; the result's ``grouping``
    holds ``tasks``, ``num_groups`` (K searched), ``shared_stages``, ``assignment``
    (task -> argmax branch), ``probabilities`` (``softmax(Theta)`` at the end, N x K) and
    ``history`` (the probabilities at every ``eval_every`` step of the search and at its
    end). Sparsity is 0: the grouped model is dense.
    """

    Params: ClassVar[type[BaseModel]] = DMTGParams

    def validate(self, config: TrialConfig, searched: tuple[str, ...] = ()) -> None:
        params = parse_dmtg_params(config.method_params, config.calibration)
        if config.grouping is not None:
            validate_grouping(config)
        if "num_groups" not in searched:
            check_num_groups(params.num_groups, dataset_tasks(config))
        if "shared_stages" not in searched:
            check_shared_stages(params.shared_stages, backbone_stages(config), config.model)

    def run(
        self,
        config: TrialConfig,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        on_step: Callable[[int, float], None] | None = None,
        started: float | None = None,
    ) -> TrialResult:
        started = time.perf_counter() if started is None else started
        params = parse_dmtg_params(config.method_params, config.calibration)
        validate_grouping(config)
        setup = build_setup(config.model_copy(update={"method": "dense", "method_params": {}}))
        setup.config = config
        channels = {name: task.out_channels for name, task in setup.tasks.items()}
        setup.model = build_search_model(  # type: ignore[assignment]
            config.model,
            config.head,
            channels,
            params.num_groups,
            params.shared_stages,
            config.model_options,
            config.head_options,
            gradient_scaling=params.gradient_scaling,
        ).to(setup.device)
        trainer = DMTGTrainer(setup, params, on_evaluation=on_evaluation, on_step=on_step)
        return trainer.train(started=started)
