"""The study configuration: one typed, validated model loaded from YAML.

Every problem is reported as a :class:`ConfigError` with one line naming the field, the
rule and the value got, e.g. ``budget.trials_per_method: must be > 0 (got 0)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search_spaces import (
    METHOD_OBJECTIVES,
    SEARCH_SPACES,
    SearchSpace,
    SearchSpaceError,
    get_search_space,
)
from study._names import STUDY_NAME_RULE, is_study_name
from study._objectives import OBJECTIVE_COLUMNS, is_objective
from study._samplers import SAMPLERS
from study.store._url import redact_url
from trials._config import LoaderOptions
from trials.errors import ParetuneError
from trials.registry import unknown_name_message

StrictInt = Annotated[int, Strict()]
Number = Annotated[float, Strict()]

SCHEDULER_NAMES = ("fifo", "mo-asha")
"""Trial schedulers (``study._scheduler.SCHEDULERS``); ``fifo`` stops no trial early."""

Direction = Literal["maximize", "minimize"]

DEFAULT_OBJECTIVES: list[tuple[str, Direction]] = [
    ("delta_t", "maximize"),
    ("sparsity", "maximize"),
]

#: TrialConfig fields the study sets itself, and where a user sets them instead.
_STUDY_OWNED = {
    "dataset": "dataset.name",
    "dataset_root": "dataset.root",
    "dataset_options": "dataset.options",
    "loader": "dataset.loader",
    "tasks": "tasks",
    "model": "model.backbone",
    "head": "model.head",
    "model_options": "model.options",
    "head_options": "model.head_options",
    "method": "methods[].name",
    "method_params": "methods[].params",
    "iterations": "budget.iterations",
    "max_flops": "budget.flops",
    "max_seconds": "budget.seconds",
    "batch_size": "budget.batch_size",
    "seed": "budget.seeds",
    "eval_every": "budget.eval_every",
    "reference": "reference",
    "calibration": "calibration",
    "init": "init",
    "save_checkpoint": "init",
}


def check_objectives(objectives: list[tuple[str, Direction]]) -> list[tuple[str, Direction]]:
    """Objectives must be known trial columns (or metric/delta patterns), each once."""
    names = [name for name, _ in objectives]
    for name in names:
        if not is_objective(name):
            raise ValueError(
                unknown_name_message("objective", name, list(OBJECTIVE_COLUMNS))
                + "; or metric:<task>:<metric>, delta:<task>"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"objective {repeated[0]!r} is listed twice")
    return objectives


class ConfigError(ParetuneError):
    """A study config that cannot be used; the message is one line for people."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetSpec(_Spec):
    """Which data set trials train on.

    Attributes:
        name: a registered data set (the procedural ``scenes-nyu`` needs no files).
        root: folder of a real-format data set (made absolute; it must exist).
        options: data-set specific options.
        loader: how trials load it: ``num_workers`` (0: in the trial's process),
            ``pin_memory``, ``persistent_workers``, ``prefetch_factor`` (see
            ``trials._config.LoaderOptions``); results do not depend on them.
    """

    name: str = "scenes-nyu"
    root: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    loader: LoaderOptions = Field(default_factory=LoaderOptions)

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: str | None) -> str | None:
        if root is None:
            return None
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ValueError(f"folder {path} does not exist")
        return str(path.resolve())


class ModelSpec(_Spec):
    """The multi-task network: a shared backbone and one head per task."""

    backbone: str = "resnet-tiny"
    head: str = "light"
    options: dict[str, Any] = Field(default_factory=dict)
    head_options: dict[str, Any] = Field(default_factory=dict)


#: The method parameter ``budget.sparsity_levels`` sets.
LEVEL_PARAM = "target_sparsity"

GROUPED_SUFFIX = "@grouped"
"""Appended to a method's name when it prunes a grouped architecture (``magnitude@grouped``)."""


class GroupingSource(_Spec):
    """Where a group-then-prune method takes its grouped architecture from.

    Attributes:
        trial: a trial id (as ``paretune status``/``export`` show them) or ``best``: the
            finished trial of ``method`` with the highest Delta_T (fewest parameters on ties).
        study: the study holding that trial (default: this study, whose ``method`` trials
            then run first).
        method: the architecture search method (``dmtg``).
    """

    trial: StrictInt | Literal["best"] = "best"
    study: str | None = None
    method: str = "dmtg"


class MethodSpec(_Spec):
    """One method compared in the study.

    Attributes:
        name: a method of :data:`search_spaces.SEARCH_SPACES`.
        search_space: overrides of the method's default space (see
            :meth:`search_spaces.SearchSpace.override`): a scalar fixes a parameter, a
            ``[low, high]`` list or a mapping changes its range or choices.
        params: further fixed method parameters that are not in the search space.
        trials: trials for this method (default: ``budget.trials_per_method``).
        objectives: what this method's search optimizes (default: the method's own, see
            :data:`search_spaces.METHOD_OBJECTIVES`, else the study's ``objectives``).
        grouping: prune a grouped architecture found by an architecture search instead of
            the study's model; the method's results are named ``<name>@grouped``.
    """

    name: str
    search_space: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    trials: StrictInt | None = Field(default=None, gt=0)
    objectives: list[tuple[str, Direction]] | None = Field(default=None, min_length=1)
    grouping: GroupingSource | None = None

    @property
    def run_name(self) -> str:
        """The name this method's results are stored under."""
        return self.name + GROUPED_SUFFIX if self.grouping is not None else self.name

    @field_validator("name")
    @classmethod
    def _known_method(cls, name: str) -> str:
        get_search_space(name)  # unknown names, plugins without a space: one clear line
        return name

    @field_validator("search_space")
    @classmethod
    def _valid_overrides(cls, overrides: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is not None:
            try:
                SEARCH_SPACES.get(name).override(overrides)
            except SearchSpaceError as error:
                raise ValueError(str(error)) from None
        return overrides

    @field_validator("params")
    @classmethod
    def _not_searched(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is not None and "search_space" in info.data:
            space = SEARCH_SPACES.get(name).override(info.data["search_space"])
            both = sorted(set(params) & set(space.names))
            if both:
                raise ValueError(
                    f"{both[0]!r} is a search-space parameter of {name!r}; "
                    f"fix it under search_space instead ({both[0]}: value)"
                )
        return params

    def space(self, calibration: str = "reference") -> SearchSpace:
        """The method's search space under ``calibration``, this spec's overrides applied."""
        return get_search_space(self.name, calibration).override(self.search_space)


class BudgetSpec(_Spec):
    """The budget every method shares.

    ``unit`` says what bounds one trial: ``iterations`` (the default), ``flops`` (training
    FLOPs, converted to iterations by each trial before training) or ``seconds`` (wall
    time: iterations fixed from a short warm-up, and training stops when time is up).
    """

    trials_per_method: StrictInt = Field(default=8, gt=0)
    iterations: StrictInt = Field(default=300, gt=0)
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1)
    batch_size: StrictInt = Field(default=16, gt=0)
    eval_every: StrictInt | None = Field(default=None, gt=0)
    unit: Literal["iterations", "flops", "seconds"] = "iterations"
    flops: Number | None = Field(default=None, gt=0, validate_default=True)
    seconds: Number | None = Field(default=None, gt=0, validate_default=True)
    #: Overall sparsities the pruning methods' trials are placed at (``target_sparsity``
    #: takes these values, the trials spread evenly over them); None: searched freely.
    sparsity_levels: list[Number] | None = Field(default=None, min_length=1)

    @field_validator("sparsity_levels")
    @classmethod
    def _levels_in_range(cls, levels: list[float] | None) -> list[float] | None:
        if levels is None:
            return None
        for level in levels:
            if not 0.0 < level < 1.0:
                raise ValueError(f"a level is a fraction of weights, 0 < level < 1 (got {level})")
        repeated = sorted({level for level in levels if levels.count(level) > 1})
        if repeated:
            raise ValueError(f"level {repeated[0]} is listed twice")
        return [float(level) for level in levels]

    @field_validator("flops", "seconds")
    @classmethod
    def _matches_unit(cls, value: float | None, info: ValidationInfo) -> float | None:
        unit = info.data.get("unit")
        if unit == info.field_name and value is None:
            raise ValueError(f"is required when budget.unit is {unit!r}")
        if unit is not None and unit != info.field_name and value is not None:
            raise ValueError(
                f"is set but budget.unit is {unit!r} (set unit: {info.field_name} to use it)"
            )
        return value

    def trial_limit(self) -> dict[str, float]:
        """The ``TrialConfig`` budget field of a FLOPs or seconds budget (empty otherwise)."""
        if self.unit == "flops":
            return {"max_flops": float(self.flops or 0)}
        if self.unit == "seconds":
            return {"max_seconds": float(self.seconds or 0)}
        return {}

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seed {repeated[0]} is listed twice")
        return seeds


class ResourcesSpec(_Spec):
    """What one trial reserves on the Ray cluster, and how many run at once."""

    cpus_per_trial: Number = Field(default=1.0, gt=0)
    gpus_per_trial: Number = Field(default=0.0, ge=0)
    max_concurrent: StrictInt = Field(default=2, gt=0)
    max_failures: StrictInt = Field(default=1, ge=0)


class SamplerSpec(_Spec):
    """The Optuna sampler (re-created with the same seed when a study resumes)."""

    name: str = "tpe"
    seed: StrictInt = 0
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_sampler(cls, name: str) -> str:
        if name not in SAMPLERS:
            raise ValueError(unknown_name_message("sampler", name, SAMPLERS.names()))
        return name


class SchedulerSpec(_Spec):
    """Early stopping of trials: ``fifo`` (none) or ``mo-asha`` (multi-objective ASHA).

    Attributes:
        name: a scheduler of :data:`SCHEDULER_NAMES`.
        grace_period: iterations before the first rung (mo-asha; < ``budget.iterations``).
        eta: reduction factor: about one trial in ``eta`` passes each rung (mo-asha).
    """

    name: str = "fifo"
    grace_period: StrictInt = Field(default=80, gt=0)
    eta: StrictInt = Field(default=3, ge=2)

    @field_validator("name")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in SCHEDULER_NAMES:
            raise ValueError(unknown_name_message("scheduler", name, list(SCHEDULER_NAMES)))
        return name


def _existing_file(path: str, what: str) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"{what} file {file} does not exist")
    return str(file.resolve())


class ReferenceSpec(_Spec):
    """The dense reference trial of each seed: what Delta_T is measured against and, with
    ``init: dense``, what every pruning trial of its seed starts from.

    Attributes:
        enabled: run a reference per seed.
        iterations: its training budget (default: ``budget.iterations``); with
            ``init: dense`` it should train to convergence.
        init: where it starts: ``scratch`` or a checkpoint file (e.g. ImageNet-pretrained
            backbone weights, see ``trials._init``).
    """

    enabled: bool = True
    iterations: StrictInt | None = Field(default=None, gt=0)
    init: str = "scratch"

    @field_validator("init")
    @classmethod
    def _init(cls, init: str) -> str:
        return init if init == "scratch" else _existing_file(init, "reference.init")


class StudyConfig(_Spec):
    """Everything a study needs, validated before any Ray worker starts.

    Relative paths (``dataset.root``, ``study_dir``) are made absolute against the
    current directory, so that Ray workers (which run elsewhere) see the same folders.
    """

    name: str
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    tasks: list[str] | None = None
    model: ModelSpec = Field(default_factory=ModelSpec)
    methods: list[MethodSpec] = Field(min_length=1)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    trainer: dict[str, Any] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    storage: str | None = None
    study_dir: str | None = None
    ray_address: str | None = None
    objectives: list[tuple[str, Direction]] = Field(
        default_factory=lambda: list(DEFAULT_OBJECTIVES), min_length=1
    )
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    #: Named defaults of every method and the trainer (see ``docs/methods.md``):
    #: ``reference`` (each reference code's defaults) or ``short-budget``.
    calibration: str = "reference"
    #: Where pruning trials start: ``dense`` (their seed's trained dense reference, the
    #: papers' protocol), ``scratch`` or a checkpoint file. Architecture searches and
    #: grouped architectures always start from scratch.
    init: str = "dense"

    @field_validator("init")
    @classmethod
    def _study_init(cls, init: str) -> str:
        return init if init in ("dense", "scratch") else _existing_file(init, "init")

    @field_validator("calibration")
    @classmethod
    def _known_calibration(cls, calibration: str) -> str:
        from trials._calibration import check_calibration

        try:
            return check_calibration(calibration)
        except KeyError as error:
            raise ValueError(str(error)) from None

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not is_study_name(name):
            raise ValueError(STUDY_NAME_RULE)
        return name

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, tasks: list[str] | None) -> list[str] | None:
        if tasks is None:
            return None
        if not tasks:
            raise ValueError("must list at least one task (or be omitted for all tasks)")
        repeated = sorted({t for t in tasks if tasks.count(t) > 1})
        if repeated:
            raise ValueError(f"task {repeated[0]!r} is listed twice")
        return tasks

    @field_validator("methods")
    @classmethod
    def _unique_methods(cls, methods: list[MethodSpec]) -> list[MethodSpec]:
        names = [m.run_name for m in methods]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"method {repeated[0]!r} is listed twice")
        for index, spec in enumerate(methods):
            if spec.objectives is not None:
                check_objectives(spec.objectives)
            source = spec.grouping
            if source is None:
                continue
            where = f"methods[{index}].grouping"
            if source.method not in METHOD_OBJECTIVES:
                searches = list(METHOD_OBJECTIVES)
                message = unknown_name_message("method", source.method, searches)
                raise ValueError(f"{where}: {message}")
            if spec.name in METHOD_OBJECTIVES:
                raise ValueError(
                    f"{where}: {spec.name!r} searches architectures; it cannot prune one"
                )
            if source.study is None and source.trial == "best" and source.method not in names:
                raise ValueError(
                    f"{where}: the study runs no {source.method!r} method to take the best "
                    f"grouping from; add it to methods, or name a study or a trial"
                )
        return methods

    @field_validator("trainer")
    @classmethod
    def _trainer(cls, trainer: dict[str, Any]) -> dict[str, Any]:
        for key in trainer:
            if key in _STUDY_OWNED:
                raise ValueError(f"{key!r} is set by the study; use {_STUDY_OWNED[key]}")
        return trainer

    @field_validator("storage")
    @classmethod
    def _storage(cls, storage: str | None) -> str | None:
        if storage is None:
            return None
        from study.store._engine import parse_url
        from study.store._errors import StoreError

        try:
            parse_url(storage)
        except StoreError as error:
            raise ValueError(str(error)) from None
        return storage

    @field_validator("ray_address")
    @classmethod
    def _ray_address(cls, address: str | None) -> str | None:
        if address is not None and not address.strip():
            raise ValueError("must be an address such as 'auto' or 'ray://host:10001'")
        return address

    @field_validator("objectives", mode="before")
    @classmethod
    def _objective_pairs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                (item.get("name"), item.get("direction")) if isinstance(item, Mapping) else item
                for item in value
            ]
        return value

    @field_validator("objectives")
    @classmethod
    def _known_objectives(
        cls, objectives: list[tuple[str, Direction]]
    ) -> list[tuple[str, Direction]]:
        return check_objectives(objectives)

    @model_validator(mode="after")
    def _scheduler_fits_budget(self) -> StudyConfig:
        spec, budget = self.scheduler, self.budget
        if spec.name != "mo-asha":
            return self
        if budget.unit != "iterations":
            raise ValueError(
                f"scheduler.name: mo-asha needs budget.unit 'iterations', its rungs are "
                f"iterations (got {budget.unit!r})"
            )
        if spec.grace_period >= budget.iterations:
            raise ValueError(
                f"scheduler.grace_period: must be < budget.iterations ({budget.iterations}) "
                f"(got {spec.grace_period})"
            )
        return self

    @model_validator(mode="after")
    def _levels_fit_the_methods(self) -> StudyConfig:
        levels = self.budget.sparsity_levels
        if levels is None:
            return self
        for spec in self.methods:
            if not self.levels_for(spec.run_name):
                continue
            if LEVEL_PARAM in spec.search_space or LEVEL_PARAM in spec.params:
                raise ValueError(
                    f"method {spec.run_name!r} sets {LEVEL_PARAM} while budget.sparsity_levels "
                    f"places its trials at {levels}; remove one of the two"
                )
            trials = self.trials_for(spec.run_name)
            if trials % len(levels):
                lower = max(len(levels), trials - trials % len(levels))
                raise ValueError(
                    f"method {spec.run_name!r}: {trials} trials do not spread evenly over "
                    f"{len(levels)} sparsity levels; use {lower} or {lower + len(levels)}"
                )
        return self

    @model_validator(mode="after")
    def _dense_needs_reference(self) -> StudyConfig:
        if self.init == "dense" and not self.reference.enabled:
            raise ValueError(
                "init: 'dense' starts every trial from its seed's dense reference; enable "
                "reference.enabled or choose init: scratch"
            )
        return self

    @model_validator(mode="after")
    def _resolve_paths(self) -> StudyConfig:
        folder = Path(self.study_dir) if self.study_dir else Path("paretune-runs") / self.name
        self.study_dir = str(folder.expanduser().resolve())
        return self

    # --- derived values ------------------------------------------------------------------
    def storage_url(self) -> str:
        """The results database: ``storage`` or ``sqlite:///<study_dir>/paretune.db``."""
        if self.storage:
            return self.storage
        return f"sqlite:///{Path(str(self.study_dir)) / 'paretune.db'}"

    def redacted_storage_url(self) -> str:
        """:meth:`storage_url` with its password shown as ``***``."""
        return redact_url(self.storage_url())

    def reference_checkpoint(self, seed: int) -> str:
        """Where the dense reference of ``seed`` writes its weights (``init: dense``)."""
        return str(Path(str(self.study_dir)) / "references" / f"seed-{seed}.pt")

    def starts_from_reference(self, method: str) -> bool:
        """Whether ``method``'s trials start from their seed's dense reference."""
        spec = self.method(method)
        return self.init == "dense" and spec.grouping is None and spec.name not in METHOD_OBJECTIVES

    def reference_slots(self) -> int:
        """Trial slots a reference may take while the trials of its seed wait for it
        (``init: dense``): the slots are shared by the seeds' references, at most 8 (the
        runner also keeps it within the largest node)."""
        if self.init != "dense":
            return 1
        return max(1, min(8, self.resources.max_concurrent // len(self.budget.seeds)))

    def levels_for(self, name: str) -> tuple[float, ...]:
        """The sparsity levels method ``name``'s trials are placed at (empty: none)."""
        spec = self.method(name)
        levels = self.budget.sparsity_levels
        if not levels or spec.name == "dense":
            return ()
        return tuple(levels) if LEVEL_PARAM in spec.space(self.calibration) else ()

    def method_space(self, name: str) -> SearchSpace:
        """Method ``name``'s search space: its overrides applied, ``target_sparsity``
        taking the study's sparsity levels when it has them."""
        space = self.method(name).space(self.calibration)
        levels = self.levels_for(name)
        if levels:
            space = space.override({LEVEL_PARAM: {"choices": list(levels), "default": levels[0]}})
        return space

    def method(self, name: str) -> MethodSpec:
        """The spec of method ``name`` (a run name such as ``magnitude@grouped``)."""
        for spec in self.methods:
            if spec.run_name == name:
                return spec
        choices = [m.run_name for m in self.methods]
        raise ConfigError(unknown_name_message("method", name, choices))

    def objectives_for(self, name: str) -> list[tuple[str, Direction]]:
        """What the search of method ``name`` optimizes."""
        spec = self.method(name)
        if spec.objectives is not None:
            return list(spec.objectives)
        own = METHOD_OBJECTIVES.get(spec.name)
        return [tuple(o) for o in own] if own else list(self.objectives)  # type: ignore[misc]

    def trials_for(self, method: str) -> int:
        """How many trials ``method`` gets."""
        return self.method(method).trials or self.budget.trials_per_method

    def trial_config(self, method: str, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """Keyword arguments of ``trials.TrialConfig`` for one trial of ``method``.

        The method's parameters are its fixed ``params``, then the space's defaults and
        fixed values, then the sampled ``params``. A parameter named like a ``TrialConfig``
        field (such as ``lr``) sets that field for this method's trials. ``dense`` (the
        study's reference) needs no entry in ``methods``.
        """
        from trials._config import TrialConfig

        run, is_reference = method, method == "dense"
        if is_reference and method not in {m.run_name for m in self.methods}:
            merged: dict[str, Any] = dict(params)
        else:
            spec = self.method(method)
            method = spec.name
            merged = {**spec.params, **self.method_space(run).defaults(), **params}
        trainer = {k: v for k, v in merged.items() if k in TrialConfig.model_fields}
        start = self._start(run, seed, is_reference)
        return {
            **self.trainer,
            "dataset": self.dataset.name,
            "dataset_root": self.dataset.root,
            "dataset_options": dict(self.dataset.options),
            "loader": self.dataset.loader.model_dump(),
            "tasks": list(self.tasks) if self.tasks is not None else None,
            "model": self.model.backbone,
            "head": self.model.head,
            "model_options": dict(self.model.options),
            "head_options": dict(self.model.head_options),
            "method": method,
            "method_params": {k: v for k, v in merged.items() if k not in trainer},
            "calibration": self.calibration,
            "iterations": self.budget.iterations,
            "batch_size": self.budget.batch_size,
            "eval_every": self.budget.eval_every or 0,
            "seed": seed,
            "threads": max(1, int(self.resources.cpus_per_trial)),
            **self.budget.trial_limit(),
            **self._gpu_share(),
            **start,
            **trainer,
        }

    def _start(self, method: str, seed: int, is_reference: bool) -> dict[str, Any]:
        """The fields saying where a trial starts and, for a reference, where it writes."""
        if is_reference:
            fields: dict[str, Any] = {"init": self.reference.init}
            if self.reference.iterations is not None:
                fields["iterations"] = self.reference.iterations
            if self.init == "dense":
                fields["save_checkpoint"] = self.reference_checkpoint(seed)
            return fields
        if self.starts_from_reference(method):
            return {"init": self.reference_checkpoint(seed)}
        spec = self.method(method)
        own_architecture = spec.grouping is None and spec.name not in METHOD_OBJECTIVES
        return {"init": self.init if self.init != "dense" and own_architecture else "scratch"}

    def _gpu_share(self) -> dict[str, Any]:
        """A fractional GPU is bookkeeping in Ray: the trial caps its own memory share."""
        gpus = self.resources.gpus_per_trial
        return {"gpu_memory_fraction": float(gpus)} if 0 < gpus < 1 else {}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> StudyConfig:
        """A stored study's config. Studies stored before ``init`` and ``calibration``
        existed trained from scratch with what is now the ``short-budget`` calibration."""
        stored = dict(data)
        stored.setdefault("init", "scratch")
        stored.setdefault("calibration", "short-budget")
        return cls.model_validate(stored)

    def public_dict(self) -> dict[str, Any]:
        """The config as JSON-able data with the storage password hidden (for storing)."""
        data = self.model_dump(mode="json")
        if data.get("storage"):
            data["storage"] = redact_url(data["storage"])
        return data


# --- loading -----------------------------------------------------------------------------
def parse_config(data: Any) -> StudyConfig:
    """Validates already-parsed config data.

    Raises:
        ConfigError: the first problem, as one line.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"a study config must be a mapping of settings (got {type(data).__name__})"
        )
    try:
        return StudyConfig.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def load_config(path: str | Path) -> StudyConfig:
    """Reads and validates a YAML study config.

    Raises:
        ConfigError: a missing or unreadable file, invalid YAML or an invalid setting.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {file}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: invalid YAML{_yaml_where(error)}") from None
    if data is None:
        raise ConfigError(f"config file {file} is empty")
    return parse_config(data)


def _yaml_where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}" if problem else where


# --- error formatting --------------------------------------------------------------------
_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a [name, direction] pair",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "literal_error": "must be {expected}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
}


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """The valid keys of the model at ``loc`` (for an unknown-key message)."""
    model: Any = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        for arg in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
        else:
            return []
    return list(model.model_fields)


def format_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error as ``field: rule (got value)``."""
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    where = _location(loc)
    if kind == "extra_forbidden":
        owner = _location(loc[:-1]) or "the study config"
        valid = _fields_at(loc[:-1])
        message = f"unknown key {str(loc[-1])!r} in {owner}"
        if valid:
            suggestion = unknown_name_message("key", str(loc[-1]), valid)
            message += suggestion[suggestion.index(";") :]
        return message
    if kind == "missing":
        return f"{where}: is required"
    if kind == "value_error":
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        message = message.removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    template = _RULES.get(kind)
    context = {k: _number_text(v) for k, v in first.get("ctx", {}).items()}
    try:
        rule = template.format(**context) if template else first["msg"]
    except (KeyError, IndexError):
        rule = first["msg"]
    value = first.get("input")
    if loc and loc[0] == "storage" and isinstance(value, str):
        value = redact_url(value)
    return f"{where}: {rule} (got {_shown(value)})"


# --- comparing configs -------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"budget.iterations": 300, "methods[0].name": "adapmtl", ...}``."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat or {prefix: {}}
    if isinstance(value, list) and value and any(isinstance(v, Mapping) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def config_differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple]:
    """``{key: (stored value, new value)}`` for every setting that differs."""
    old, fresh = _flatten(dict(stored)), _flatten(dict(new))
    missing = object()
    changes = {}
    for key in sorted(set(old) | set(fresh)):
        before, after = old.get(key, missing), fresh.get(key, missing)
        if before != after:
            changes[key] = (
                None if before is missing else before,
                None if after is missing else after,
            )
    return changes


_GROWABLE = re.compile(r"^(budget\.trials_per_method|methods\[\d+\]\.trials)$")


def resume_changes(stored: StudyConfig, new: StudyConfig) -> dict[str, tuple]:
    """The differences of ``new`` that ``resume --config`` may not apply: anything but
    more trials per method (``budget.trials_per_method``, ``methods[].trials``)."""
    changes = config_differences(stored.public_dict(), new.public_dict())
    refused = {key: change for key, change in changes.items() if not _GROWABLE.match(key)}
    if refused or not changes:
        return refused  # the methods differ in more than their trial counts
    fewer = [
        spec.run_name
        for spec in stored.methods
        if new.trials_for(spec.run_name) < stored.trials_for(spec.run_name)
    ]
    if fewer:
        refused.update({key: change for key, change in changes.items() if key not in refused})
    return refused


def describe_differences(changes: Mapping[str, tuple]) -> str:
    """One line per difference: ``key: stored -> new``."""
    return "\n".join(
        f"  {key}: {before!r} -> {after!r}" for key, (before, after) in changes.items()
    )
