"""Every objective a study accepts, and its value in a trial's result: one definition.

The same function reads a final result (``trials.TrialResult`` as a dict), a periodic
evaluation (``trials.Evaluation`` as a dict, scored against the reference) and a stored
trial, so what a trial reports to Tune, what Optuna is told, what ``mo-asha`` ranks and
what ``resume`` tells Optuna for a result that reached only the store never disagree.

Objective kinds:

==========================  ==================================================================
name                        value
==========================  ==================================================================
``delta_t``                 Delta_T against the seed's dense reference, percent
``delta_m``                 Delta_m (mean over all metrics) against the reference, percent
``sparsity``                overall fraction of exactly-zero prunable weights
``parameters``              scalar parameters of the model
``flops``                   training FLOPs spent so far
``wall_time_s``             wall seconds since the trial started
``device_s``                wall seconds times the CPUs (or GPUs) the trial holds
``metric:<task>:<metric>``  one metric of one task (e.g. ``metric:segment_semantic:miou``)
``delta:<task>``            one task's Delta_T term against the reference, percent
==========================  ==================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

OBJECTIVE_COLUMNS = (
    "delta_t",
    "delta_m",
    "sparsity",
    "parameters",
    "flops",
    "wall_time_s",
    "device_s",
)
"""Objectives read from a trial's own columns."""

_PATTERN = re.compile(r"^(metric:[^:\s]+:[^:\s]+|delta:[^:\s]+)$")


def is_objective(name: str) -> bool:
    """Whether ``name`` is an objective kind a study accepts."""
    return name in OBJECTIVE_COLUMNS or bool(_PATTERN.match(name))


def task_references(name: str) -> tuple[str, str | None] | None:
    """``(task, metric)`` of ``metric:<task>:<metric>``, ``(task, None)`` of
    ``delta:<task>``, ``None`` for the other kinds."""
    if name.startswith("metric:"):
        _, task, metric = name.split(":", 2)
        return task, metric
    if name.startswith("delta:"):
        return name.split(":", 1)[1], None
    return None


def device_share(cpus: float, gpus: float) -> float:
    """What ``device_s`` multiplies wall time by: the GPUs a trial holds, else its CPUs."""
    return gpus if gpus > 0 else cpus


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _wall(record: Mapping[str, Any]) -> Any:
    wall = record.get("wall_time_s")
    return record.get("elapsed_s") if wall is None else wall


def objective_value(name: str, record: Mapping[str, Any], share: float = 1.0) -> float | None:
    """The value of objective ``name`` in ``record``; None when absent or not finite.

    Args:
        name: an objective (see the module docstring).
        record: a final result, an evaluation or a stored trial, as a mapping.
        share: the trial's :func:`device_share` (for ``device_s`` when not stored).
    """
    reference = task_references(name)
    if reference is not None:
        task, metric = reference
        if metric is not None:
            return _number((record.get("metrics") or {}).get(task, {}).get(metric))
        return _number((record.get("delta_t_per_task") or {}).get(task))
    if name == "sparsity":
        sparsity = record.get("sparsity")
        if isinstance(sparsity, Mapping):
            sparsity = sparsity.get("overall")
        return _number(sparsity)
    if name == "wall_time_s":
        return _number(_wall(record))
    if name == "device_s":
        stored = _number(record.get("device_s"))
        if stored is not None:
            return stored
        wall = _number(_wall(record))
        return None if wall is None else wall * share
    if name in OBJECTIVE_COLUMNS:
        return _number(record.get(name))
    raise ValueError(f"unknown objective {name!r}")


def objective_values(
    names: Iterable[str], record: Mapping[str, Any], share: float = 1.0
) -> dict[str, float]:
    """``{name: value}`` of the objectives ``record`` has a finite value for."""
    values = {name: objective_value(name, record, share) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def objective_vector(
    names: Iterable[str], record: Mapping[str, Any], share: float = 1.0
) -> list[float] | None:
    """The values of every objective in order, or None if any is missing."""
    vector = [objective_value(name, record, share) for name in names]
    if any(value is None for value in vector):
        return None
    return [float(value) for value in vector]  # type: ignore[arg-type]
