"""Typed trial configuration and result: the only things crossing the trial boundary."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trials._calibration import DEFAULT_CALIBRATION, check_calibration

#: Trainer defaults a calibration changes (``reference``: the AdapMTL and DiSparse
#: reference trainers, lr 1e-3 halved every 4000 of 20000 iterations).
TRAINER_PRESETS: dict[str, dict[str, Any]] = {
    "short-budget": {"lr": 2e-3, "lr_step_fraction": 0.4},
}


class LoaderOptions(BaseModel):
    """How a trial's data are loaded (``trials.data.BatchStream``).

    With ``num_workers`` 0 (the default) batches are built in the trial's process; with
    more, ``DataLoader`` workers build them ahead (``prefetch_factor`` batches each), kept
    alive for the whole trial if ``persistent_workers``, in pinned memory on CUDA if
    ``pin_memory``. The batches are the same either way (their randomness is drawn in the
    trial's process), so the worker count changes speed, not results.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_workers: int = Field(default=0, ge=0)
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = Field(default=2, gt=0)


class TrialConfig(BaseModel):
    """Everything one trial needs; JSON-serialisable so a study can store and replay it."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "scenes-nyu"
    dataset_root: str | None = None
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] | None = None
    model: str = "resnet-tiny"
    head: str = "light"
    model_options: dict[str, Any] = Field(default_factory=dict)
    head_options: dict[str, Any] = Field(default_factory=dict)

    method: str = "dense"
    method_params: dict[str, Any] = Field(default_factory=dict)
    weighting: str | None = None
    weighting_params: dict[str, Any] = Field(default_factory=dict)

    #: Named defaults of the method and trainer (``trials._calibration.CALIBRATIONS``).
    calibration: str = DEFAULT_CALIBRATION
    #: Where the weights start: ``scratch`` (a fresh initialisation) or the path of a
    #: checkpoint (a paretune trial's weights, a model state dict, or ImageNet-pretrained
    #: backbone weights in torchvision's format; see ``trials._init``).
    init: str = "scratch"
    #: Write the trained model's weights here at the end (``trials._init`` format).
    save_checkpoint: str | None = None

    iterations: int = Field(500, gt=0)
    #: Budget in training FLOPs or wall seconds instead of ``iterations`` (see ``trials._flops``).
    max_flops: float | None = Field(None, gt=0)
    max_seconds: float | None = Field(None, gt=0)
    batch_size: int = Field(16, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_step_fraction: float = Field(0.2, gt=0, le=1)
    lr_gamma: float = Field(0.5, gt=0, le=1)
    eval_every: int = Field(0, ge=0)
    eval_batches: int | None = Field(None, gt=0)
    eval_split: Literal["val", "test"] = "val"
    seed: int = 0
    threads: int | None = Field(None, gt=0)
    device: str = "auto"
    #: Mixed precision on CUDA: bfloat16 autocast where the GPU supports it, float16 with
    #: a gradient scaler otherwise (``amp_dtype`` forces one); a no-op on the CPU.
    amp: bool = False
    amp_dtype: Literal["auto", "bfloat16", "float16"] = "auto"
    #: Model and images in ``channels_last`` memory layout (faster convolutions on GPUs
    #: with tensor cores).
    channels_last: bool = False
    #: ``torch.compile`` the model for the training steps of a weight-pruning trial, with
    #: ``compile_mode`` (inductor's modes) and ``compile_backend`` (a ``torch._dynamo``
    #: backend: ``inductor``, ``cudagraphs``, ``aot_eager``, ``eager``).
    compile: bool = False
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    compile_backend: str = "inductor"
    #: Adam's betas (None: torch's (0.9, 0.999)); the AdapMTL and DiSparse trainers use
    #: (0.5, 0.999). A pruner whose optimizer groups set their own betas keeps them.
    adam_betas: tuple[float, float] | None = None
    #: Cap on this process's share of GPU memory (set from a fractional ``gpus_per_trial``).
    gpu_memory_fraction: float | None = Field(None, gt=0, le=1)
    loader: LoaderOptions = Field(default_factory=LoaderOptions)
    reference: dict[str, dict[str, float]] | None = None
    #: A stored task grouping ``{"assignment": {task: branch}, "shared_stages": s}``: the
    #: weight pruner then runs on a fresh grouped model (group-then-prune).
    grouping: dict[str, Any] | None = None

    @field_validator("calibration")
    @classmethod
    def _known_calibration(cls, calibration: str) -> str:
        return check_calibration(calibration)

    @field_validator("adam_betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float] | None) -> tuple[float, float] | None:
        if betas is not None and not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"Adam betas must lie in [0, 1) but got {list(betas)}")
        return betas

    @model_validator(mode="after")
    def _calibrated_trainer(self) -> TrialConfig:
        for name, value in TRAINER_PRESETS.get(self.calibration, {}).items():
            if name not in self.model_fields_set:
                setattr(self, name, value)
        return self

    @model_validator(mode="after")
    def _eval_every_default(self) -> TrialConfig:
        if self.max_flops is not None and self.max_seconds is not None:
            raise ValueError("give max_flops or max_seconds, not both")
        if self.eval_every == 0 and self.max_flops is None and self.max_seconds is None:
            self.eval_every = max(1, self.iterations // 5)  # else once iterations are fixed
        return self


class Evaluation(BaseModel):
    """One periodic validation of a running trial.

    ``flops`` are the training FLOPs spent up to ``iteration``; ``parameters`` counts the
    model's scalar parameters at that point.
    """

    iteration: int
    metrics: dict[str, dict[str, float]]
    losses: dict[str, float]
    sparsity: float
    components: dict[str, float]
    thresholds: dict[str, float] = Field(default_factory=dict)
    task_weights: dict[str, float] = Field(default_factory=dict)
    delta_t: float | None = None
    delta_t_per_task: dict[str, float] | None = None
    delta_m: float | None = None
    elapsed_s: float
    images_seen: int
    flops: float | None = None
    parameters: int = 0


class TrialResult(BaseModel):
    """The final outcome of one trial (``paretune trial --json`` writes it)."""

    method: str
    seed: int
    iterations: int
    metrics: dict[str, dict[str, float]]
    sparsity: dict[str, Any]
    thresholds: dict[str, float] = Field(default_factory=dict)
    task_weights: dict[str, float] = Field(default_factory=dict)
    delta_t: float | None = None
    delta_t_per_task: dict[str, float] | None = None
    #: Delta_m (the mean over all metrics; ``trials.metrics.delta_m``), percent.
    delta_m: float | None = None
    wall_time_s: float
    flops: float | None = None  # training FLOPs spent (trials._flops.training_flops)
    parameters: int = 0
    #: Task grouping of a ``dmtg`` or group-then-prune trial (see ``trials.grouping``).
    grouping: dict[str, Any] | None = None
    #: Where the trained weights were written (``TrialConfig.save_checkpoint``).
    checkpoint: str | None = None
    evaluations: list[Evaluation] = Field(default_factory=list)

    def to_json(self, include_evaluations: bool = False) -> str:
        exclude = None if include_evaluations else {"evaluations"}
        return json.dumps(self.model_dump(exclude=exclude), indent=2)
