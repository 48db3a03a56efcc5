"""Checks a trial configuration's names and parameters without training anything."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from trials._config import TrialConfig
from trials.errors import ParetuneError


class TrialConfigError(ParetuneError):
    """A trial configuration names something unknown or sets a bad parameter."""


def _check_params(kind: str, name: str, params_type: Any, params: dict[str, Any]) -> None:
    try:
        params_type(**params)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            valid = ", ".join(sorted(params_type.model_fields))
            raise TrialConfigError(
                f"{kind} {name!r} has no parameter {field!r}; valid: {valid}"
            ) from None
        raise TrialConfigError(
            f"{kind} {name!r} parameter {field!r}: {first['msg']} (got {first.get('input')!r})"
        ) from None


def validate_trial_config(
    fields: dict[str, Any] | TrialConfig, searched: tuple[str, ...] = ()
) -> TrialConfig:
    """Validates ``fields`` and every plugin name in it; returns the typed config.

    ``searched`` names method parameters a searcher will set later: they must exist but
    their values are not checked here.
    """
    from trials.data import DATASETS
    from trials.grouping import (
        is_architecture_search,
        method_params_type,
        validate_method_grouping,
    )
    from trials.models import BACKBONES, HEADS
    from trials.weighting import WEIGHTINGS

    config = fields if isinstance(fields, TrialConfig) else TrialConfig.model_validate(fields)
    from trials.models._base import parse_options as parse_model_options

    DATASETS.get(config.dataset)
    for kind, registry, name, options in (
        ("backbone", BACKBONES, config.model, config.model_options),
        ("head", HEADS, config.head, config.head_options),
    ):
        params_type = getattr(registry.get(name), "Params", None)
        if params_type is not None:
            parse_model_options(params_type, f"{kind} {name!r}", options)
    params_type = method_params_type(config.method)  # a weight pruner's or dmtg's
    known = set(params_type.model_fields) | set(TrialConfig.model_fields)
    for name in searched:
        if name not in known:
            raise TrialConfigError(
                f"method {config.method!r} has no parameter {name!r}; valid: "
                f"{', '.join(sorted(params_type.model_fields))}"
            )
    _check_params("method", config.method, params_type, config.method_params)
    if config.weighting is not None:
        weighting = WEIGHTINGS.get(config.weighting)
        _check_params("task weighting", config.weighting, weighting.Params, config.weighting_params)
    validate_method_grouping(config, searched)  # dmtg's K and stem; a stored grouping
    if config.compile:
        _check_compile_backend(config.compile_backend)
    if config.init != "scratch" and (
        config.grouping is not None or is_architecture_search(config.method)
    ):
        what = "a grouped architecture" if config.grouping is not None else config.method
        raise TrialConfigError(
            f"init: {what} starts from scratch (the checkpoint is of another architecture); "
            f"got init {config.init!r}"
        )
    return config


def _check_compile_backend(backend: str) -> None:
    """``compile_backend`` must name a ``torch._dynamo`` backend."""
    from torch import _dynamo

    backends = _dynamo.list_backends(exclude_tags=())
    if backend not in backends:
        from trials.registry import unknown_name_message

        shown = [name for name in backends if "TESTING" not in name]
        raise TrialConfigError(unknown_name_message("compile backend", backend, shown))


def validate_data(config: TrialConfig) -> dict[str, tuple[str, ...]]:
    """Builds the held-out split once, so that unknown tasks, bad data-set options or a
    malformed data folder fail before any worker starts (rendered sets are cached).

    Returns:
        Task -> the names of the metrics it reports.
    """
    from trials.data import build_dataset
    from trials.tasks import build_task

    options = dict(config.dataset_options)
    if config.tasks is not None:
        options["tasks"] = list(config.tasks)
    data = build_dataset(config.dataset, config.eval_split, config.dataset_root, **options)
    metrics = {}
    for name in data.tasks:
        task = build_task(name, style=data.metric_style, num_classes=data.num_classes)
        metrics[name] = tuple(info.name for info in task.metric_infos)
    validate_tasks(config, tuple(metrics))
    return metrics


def validate_tasks(config: TrialConfig, tasks: tuple[str, ...]) -> None:
    """Method parameters that name tasks must name the data set's tasks."""
    from trials.grouping import method_params_type

    params = method_params_type(config.method)(**config.method_params)
    check = getattr(params, "check_tasks", None)
    if check is None:
        return
    try:
        check(tasks)
    except ValueError as error:
        raise TrialConfigError(f"method {config.method!r}: {error}") from None
