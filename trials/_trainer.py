"""The iteration-based multi-task trainer behind :func:`trials.run_trial`.

Public here: :func:`build_setup`, :class:`TrialSetup`, :func:`build_optimizer`,
:class:`Trainer` (with what a subclass running its own training loop builds on:
``draw_batch``, ``autocast``, ``example_image``, ``count_forward_flops``, ``fix_budget``,
``record_evaluation``, ``trial_result`` and ``started``), :func:`evaluate` and
:class:`TrialDiverged`. Grouped architectures come from :mod:`trials.models`; the
architecture searches build on this module, never the other way round.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trials._config import Evaluation, LoaderOptions, TrialConfig, TrialResult
from trials._device import limit_gpu_memory, seed_everything, select_device
from trials._flops import (
    forward_flops_per_image,
    iterations_for_flops,
    iterations_for_seconds,
    time_training_steps,
    training_flops,
)
from trials._init import load_initial_weights, save_weights
from trials.data import (
    BatchStream,
    MultiTaskDataset,
    build_dataset,
    draw_keys,
    held_out_batches,
    load_batch,
    move_batch,
)
from trials.metrics import delta_scores
from trials.models import (
    MultiTaskModel,
    build_grouped_model,
    build_model,
    count_parameters,
    parse_grouping,
)
from trials.pruning import PruningContext, WeightPruner, build_pruner, measure_sparsity
from trials.tasks import Task, build_task
from trials.weighting import TaskWeighting, build_weighting

EvaluationCallback = Callable[[Evaluation], None]
StepCallback = Callable[[int, float], None]


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrialSetup:
    """Everything built from a :class:`TrialConfig` before training starts."""

    config: TrialConfig
    device: torch.device
    generator: torch.Generator
    train: MultiTaskDataset
    held_out: MultiTaskDataset
    tasks: dict[str, Task]
    model: MultiTaskModel
    pruner: WeightPruner
    weighting: TaskWeighting


def build_setup(config: TrialConfig) -> TrialSetup:
    """Builds data, tasks, model, pruner and weighting for ``config`` (seeded)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    if config.gpu_memory_fraction is not None:
        limit_gpu_memory(config.gpu_memory_fraction, device)
    generator = seed_everything(config.seed)
    options = dict(config.dataset_options)
    if config.tasks is not None:
        options["tasks"] = list(config.tasks)
    train = build_dataset(config.dataset, "train", config.dataset_root, **options)
    held_out = build_dataset(config.dataset, config.eval_split, config.dataset_root, **options)
    tasks = {
        name: build_task(name, style=train.metric_style, num_classes=train.num_classes)
        for name in train.tasks
    }
    channels = {name: task.out_channels for name, task in tasks.items()}
    model: MultiTaskModel
    if config.grouping is not None:  # group-then-prune: a stored task grouping
        spec = parse_grouping(config.grouping)
        model = build_grouped_model(
            config.model,
            config.head,
            channels,
            spec.assignment,
            spec.shared_stages,
            config.model_options,
            config.head_options,
        ).to(device)
    else:
        model = build_model(
            config.model,
            config.head,
            channels,
            backbone_options=config.model_options,
            head_options=config.head_options,
        )
        load_initial_weights(model, config.init, {"model": config.model, "head": config.head})
        model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    pruner = build_pruner(config.method, config.calibration, **config.method_params)
    weighting_name = config.weighting or pruner.default_weighting
    weighting_params: dict[str, Any] = {}
    if weighting_name == pruner.default_weighting:
        weighting_params.update(pruner.weighting_params())
    weighting_params.update(config.weighting_params)
    weighting = build_weighting(weighting_name, config.calibration, **weighting_params)
    return TrialSetup(config, device, generator, train, held_out, tasks, model, pruner, weighting)


def amp_dtype(config: TrialConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a trial: None without ``amp`` or off CUDA; else bfloat16 where
    the GPU supports it (or if asked), float16 otherwise (or if asked)."""
    if not config.amp or device.type != "cuda":
        return None
    if config.amp_dtype == "float16":
        return torch.float16
    if config.amp_dtype == "bfloat16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _task_losses(
    tasks: dict[str, Task], model: nn.Module, batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    outputs = model(batch["image"])
    return {name: task.loss(outputs[name], batch[name]) for name, task in tasks.items()}


def evaluate(
    model: nn.Module,
    tasks: dict[str, Task],
    dataset: MultiTaskDataset,
    device: torch.device,
    batch_size: int = 64,
    max_batches: int | None = None,
    loader: LoaderOptions | None = None,
    channels_last: bool = False,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Exact metrics and mean losses of ``model`` over ``dataset`` (or its first batches);
    batches are loaded by ``loader``'s workers if it has any."""
    was_training = model.training
    model.eval()
    accumulators = {name: task.new_metrics() for name, task in tasks.items()}
    loss_sums = dict.fromkeys(tasks, 0.0)
    batches = 0
    with torch.no_grad():
        for batch in held_out_batches(
            dataset, batch_size, max_batches, loader, device, channels_last
        ):
            outputs = model(batch["image"])
            for name, task in tasks.items():
                prediction = outputs[name].float()
                accumulators[name].update(prediction, batch[name])
                loss_sums[name] += float(task.loss(prediction, batch[name]))
            batches += 1
    model.train(was_training)
    metrics = {name: acc.compute() for name, acc in accumulators.items()}
    losses = {name: total / max(batches, 1) for name, total in loss_sums.items()}
    return metrics, losses


def build_optimizer(setup: TrialSetup, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The trial's optimizer over the param ``groups``, plus a group of the task
    weighting's own parameters (if it has any) at the trial's lr without weight decay:
    Adam with the trial's ``adam_betas``, or SGD with momentum 0.9."""
    config = setup.config
    extra = setup.weighting.parameters()
    if extra:
        groups.append({"params": extra, "lr": config.lr, "weight_decay": 0.0})
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.adam_betas or (0.9, 0.999))
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9)


def _build_optimizer(setup: TrialSetup) -> torch.optim.Optimizer:
    config = setup.config
    return build_optimizer(setup, setup.pruner.optimizer_groups(config.lr, config.weight_decay))


class Trainer:
    """Trains one multi-task model for a fixed number of iterations.

    Each evaluation (every ``eval_every`` iterations and at the end) is passed to
    ``on_evaluation``, so the study layer can forward results without this package
    knowing Ray. ``on_step(iteration, loss)`` is called after every optimizer step.
    """

    def __init__(
        self,
        setup: TrialSetup,
        on_evaluation: EvaluationCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> None:
        self.setup = setup
        self.on_evaluation = on_evaluation
        self.on_step = on_step
        self.evaluations: list[Evaluation] = []
        #: ``time.perf_counter()`` when the trial began (set by :meth:`train`).
        self.started = 0.0
        self._pending: dict[str, torch.Tensor] | None = None
        self._batches: BatchStream | None = None
        self.forward_flops = 0.0  # per image, counted when training starts

    def draw_batch(self) -> dict[str, torch.Tensor]:
        """A fresh training batch on the trial's device, from the trial's seeded stream
        (loaded by ``config.loader``'s workers if it has any; the same batches either way)."""
        if self._batches is None:
            setup = self.setup
            config = setup.config
            self._batches = BatchStream(
                setup.train,
                config.batch_size,
                setup.generator,
                config.loader,
                setup.device,
                config.channels_last,
            )
        return self._batches.next()

    def close_batches(self) -> None:
        """Stops the training stream's loader workers (a later draw starts new ones)."""
        batches, self._batches = self._batches, None
        if batches is not None:
            batches.close()

    def _next_batch(self) -> dict[str, torch.Tensor]:
        """The batch the next iteration trains on (a pruner may look at it first)."""
        if self._pending is None:
            self._pending = self.draw_batch()
        return self._pending

    def _take_batch(self) -> dict[str, torch.Tensor]:
        batch = self._next_batch()
        self._pending = None
        return batch

    def _context(self) -> PruningContext:
        setup = self.setup
        return PruningContext(
            total_iterations=setup.config.iterations,
            tasks=tuple(setup.tasks),
            draw_batch=self.draw_batch,
            next_batch=self._next_batch,
            task_losses=lambda model, batch: _task_losses(setup.tasks, model, batch),
            seed=setup.config.seed,
        )

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast on CUDA when the trial asks for ``amp`` (bfloat16 where supported, else
        float16, see :func:`amp_dtype`); otherwise a no-op."""
        dtype = amp_dtype(self.setup.config, self.setup.device)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=dtype)

    def record_evaluation(
        self, iteration: int, model: nn.Module, thresholds: dict[str, float]
    ) -> Evaluation:
        """Evaluates ``model`` on the held-out split after ``iteration`` steps, keeps the
        :class:`Evaluation` in :attr:`evaluations` and passes it to ``on_evaluation``."""
        setup = self.setup
        config = setup.config
        metrics, losses = evaluate(
            model,
            setup.tasks,
            setup.held_out,
            setup.device,
            max_batches=config.eval_batches,
            loader=config.loader,
            channels_last=config.channels_last,
        )
        report = measure_sparsity(setup.model.components())
        score, per_task, mean_score = (
            delta_scores(metrics, config.reference) if config.reference else (None, None, None)
        )
        images = iteration * config.batch_size
        evaluation = Evaluation(
            iteration=iteration,
            metrics=metrics,
            losses=losses,
            sparsity=report.overall,
            components=report.components,
            thresholds=thresholds,
            task_weights=setup.weighting.weights(),
            delta_t=score,
            delta_t_per_task=per_task,
            delta_m=mean_score,
            elapsed_s=time.perf_counter() - self.started,
            images_seen=images,
            flops=training_flops(self.forward_flops, images),
            parameters=count_parameters(model),
        )
        self.evaluations.append(evaluation)
        if self.on_evaluation is not None:
            self.on_evaluation(evaluation)
        return evaluation

    def train(self, started: float | None = None) -> TrialResult:
        """Runs the whole budget and returns the final result (after ``finalize``).

        ``started`` (a ``time.perf_counter`` value) is when the trial began, so that its
        wall time and evaluation times include building data and model.
        """
        self.started = time.perf_counter() if started is None else started
        try:
            return self._train()
        finally:
            self.close_batches()

    def _train(self) -> TrialResult:
        setup = self.setup
        self.fix_budget()
        config = setup.config
        model = setup.model
        model.train()
        setup.pruner.attach(model, self._context())
        setup.weighting.attach(tuple(setup.tasks), config.iterations)
        optimizer = _build_optimizer(setup)
        step_size = max(1, round(config.lr_step_fraction * config.iterations))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=config.lr_gamma)
        # bfloat16 has float32's range: only float16 needs its gradients scaled.
        scaled = amp_dtype(config, setup.device) == torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=scaled)
        forward: nn.Module = model
        if config.compile:  # after attach: the pruner's reparameterisation is traced too
            mode = config.compile_mode if config.compile_backend == "inductor" else None
            forward = torch.compile(model, backend=config.compile_backend, mode=mode)  # type: ignore[assignment]
        for iteration in range(config.iterations):
            batch = self._take_batch()
            with self.autocast():
                losses = _task_losses(setup.tasks, forward, batch)
                loss = setup.weighting.combine(losses, iteration)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrialDiverged(f"training loss became {value} at iteration {iteration}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            setup.pruner.before_step(iteration)
            scaler.step(optimizer)
            scaler.update()
            setup.pruner.after_step(iteration)
            scheduler.step()
            if self.on_step is not None:
                self.on_step(iteration + 1, value)
            done = iteration + 1
            if config.max_seconds and time.perf_counter() - self.started >= config.max_seconds:
                break  # out of time: finalize and evaluate what was trained
            if done % config.eval_every == 0 and done < config.iterations:
                self.record_evaluation(done, model, setup.pruner.thresholds())
        thresholds = setup.pruner.thresholds()
        setup.model = setup.pruner.finalize()  # type: ignore[assignment]
        final = self.record_evaluation(done, setup.model, thresholds)
        result = self.trial_result(final)
        if config.save_checkpoint:
            about = {"model": config.model, "head": config.head, "tasks": list(setup.tasks)}
            save_weights(setup.model, config.save_checkpoint, {**about, "method": config.method})
            result.checkpoint = config.save_checkpoint
        return result

    def example_image(self) -> torch.Tensor:
        """The first training image (as training sees it: augmented, cropped) as a batch
        of one, on the trial's device."""
        setup = self.setup
        seeds = [0] if setup.train.augments else None
        batch = load_batch(setup.train, torch.arange(1), seeds)
        return move_batch(batch, setup.device, setup.config.channels_last)["image"]

    def count_forward_flops(self, example: torch.Tensor) -> float:
        """Forward FLOPs per image of one training step (the model, pruned weights dense);
        a trainer whose steps run another network overrides it."""
        return forward_flops_per_image(self.setup.model, example)

    def fix_budget(self) -> None:
        """Counts forward FLOPs and turns a FLOP or time budget into iterations.

        Runs before the pruner and the schedules see ``config.iterations``; a FLOP budget
        gives the same iterations on every machine, a time budget times a short warm-up.
        """
        setup = self.setup
        config = setup.config
        self.forward_flops = self.count_forward_flops(self.example_image())
        if config.max_flops is not None:
            iterations = iterations_for_flops(
                config.max_flops, self.forward_flops, config.batch_size
            )
        elif config.max_seconds is not None:
            iterations = self._iterations_for_time(config.max_seconds)
        else:
            return
        eval_every = config.eval_every or max(1, iterations // 5)
        setup.config = config.model_copy(
            update={"iterations": iterations, "eval_every": eval_every}
        )

    def _iterations_for_time(self, max_seconds: float) -> int:
        setup = self.setup
        config = setup.config
        warmup = torch.Generator().manual_seed(config.seed)

        def draw() -> dict[str, torch.Tensor]:
            keys = draw_keys(len(setup.train), config.batch_size, warmup, setup.train.augments)
            return move_batch(load_batch(setup.train, *keys), setup.device, config.channels_last)

        def loss_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return sum(_task_losses(setup.tasks, model, batch).values())  # type: ignore[return-value]

        step_s = time_training_steps(setup.model, draw, loss_of)
        batches = math.ceil(len(setup.held_out) / 64)
        batches = min(batches, config.eval_batches or batches)
        tick = time.perf_counter()
        evaluate(
            setup.model,
            setup.tasks,
            setup.held_out,
            setup.device,
            max_batches=1,
            channels_last=config.channels_last,
        )
        evaluation_s = (time.perf_counter() - tick) * batches
        left = max_seconds - (time.perf_counter() - self.started)
        return iterations_for_seconds(left, step_s, evaluation_s, config.eval_every)

    def trial_result(self, final: Evaluation) -> TrialResult:
        """The :class:`TrialResult` of the trial whose last evaluation is ``final``."""
        setup = self.setup
        config = setup.config
        return TrialResult(
            method=config.method,
            seed=config.seed,
            iterations=final.iteration,
            metrics=final.metrics,
            sparsity={"overall": final.sparsity, "components": final.components},
            thresholds=final.thresholds,
            task_weights=final.task_weights,
            delta_t=final.delta_t,
            delta_t_per_task=final.delta_t_per_task,
            delta_m=final.delta_m,
            wall_time_s=time.perf_counter() - self.started,
            flops=final.flops,
            parameters=final.parameters,
            grouping=setup.model.grouping(),
            evaluations=list(self.evaluations),
        )
