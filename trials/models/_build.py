"""Building multi-task models from registered names, and describing their sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from trials.models._base import BACKBONES, HEADS, MultiTaskModel

#: The NYUv2-like three-task setup :func:`describe_models` sizes models for.
DEFAULT_TASK_CHANNELS: dict[str, int] = {"segment_semantic": 13, "depth_zbuffer": 1, "normal": 3}


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (each shared tensor counted once)."""
    return sum(parameter.numel() for parameter in module.parameters())


def _count_prunable(module: nn.Module) -> int:
    """Conv and linear weights of ``module`` (the pruners' ``PRUNABLE_LAYERS``)."""
    return sum(
        layer.weight.numel()
        for layer in module.modules()
        if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear)
    )


def _check_task_channels(task_channels: Mapping[str, int] | None) -> dict[str, int]:
    if not task_channels:
        raise ValueError(
            f"task_channels must map at least one task to its output channels "
            f"but got {task_channels!r}"
        )
    for task, channels in task_channels.items():
        if not isinstance(task, str) or not task or "." in task:
            raise ValueError(
                f"task_channels keys must be non-empty task names without '.' but got {task!r}"
            )
        if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
            raise ValueError(
                f"task_channels[{task!r}] must be a positive integer but got {channels!r}"
            )
    return dict(task_channels)


def _check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{name} must be a mapping of option names to values but got {type(options).__name__}"
        )
    return dict(options)


def build_model(
    backbone: str = "resnet-tiny",
    head: str = "light",
    task_channels: Mapping[str, int] | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    head_options: Mapping[str, Any] | None = None,
) -> MultiTaskModel:
    """Builds a registered backbone with one registered head per task.

    Args:
        backbone: a name in ``BACKBONES`` (``resnet-tiny``, ``deeplab-resnet34``, ...).
        head: a name in ``HEADS`` (``light``, ``aspp``); every task gets its own copy.
        task_channels: task name -> output channels of its head, in model order
            (required; e.g. ``{"segment_semantic": 13, "depth_zbuffer": 1}``).
        backbone_options: keyword options of the backbone (e.g. ``{"width": 16}``).
        head_options: keyword options shared by every head (e.g. ``{"hidden": 64}``).

    Raises:
        UnknownNameError: an unknown backbone or head name (lists the choices).
        ModelOptionError: an unknown option or a bad option value.
        ValueError: missing or malformed ``task_channels``.
    """
    backbone_factory = BACKBONES.get(backbone)
    head_factory = HEADS.get(head)
    tasks = _check_task_channels(task_channels)
    net = backbone_factory(**_check_options("backbone_options", backbone_options))
    shared = _check_options("head_options", head_options)
    heads = {
        task: head_factory(net.out_channels, channels, **shared) for task, channels in tasks.items()
    }
    return MultiTaskModel(net, heads)


def describe_models(task_channels: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Sizes of every registered backbone x head with default options.

    Args:
        task_channels: the tasks to size heads for; defaults to the NYUv2-like
            :data:`DEFAULT_TASK_CHANNELS`.

    Returns:
        One row per ``(backbone, head)`` pair, sorted by name: ``backbone``, ``head``,
        ``out_channels``, ``output_stride``, ``backbone_parameters``, ``head_parameters``
        (task -> count), ``total_parameters`` and ``prunable_parameters`` (conv and
        linear weights, the denominator of sparsity).
    """
    tasks = _check_task_channels(DEFAULT_TASK_CHANNELS if task_channels is None else task_channels)
    rows: list[dict[str, Any]] = []
    for backbone_name in BACKBONES.names():
        backbone = BACKBONES.get(backbone_name)()
        backbone_count = count_parameters(backbone)
        backbone_prunable = _count_prunable(backbone)
        for head_name in HEADS.names():
            heads = {
                task: HEADS.get(head_name)(backbone.out_channels, channels)
                for task, channels in tasks.items()
            }
            head_counts = {task: count_parameters(h) for task, h in heads.items()}
            rows.append(
                {
                    "backbone": backbone_name,
                    "head": head_name,
                    "out_channels": backbone.out_channels,
                    "output_stride": backbone.output_stride,
                    "backbone_parameters": backbone_count,
                    "head_parameters": head_counts,
                    "total_parameters": backbone_count + sum(head_counts.values()),
                    "prunable_parameters": backbone_prunable
                    + sum(_count_prunable(h) for h in heads.values()),
                }
            )
    return rows
