"""A trial's outcome as the store's columns: what the trainable reports and the recorder
stores, converted in one place.

The outcome of a finished trial is its final result (``trials.TrialResult`` as a dict,
scored against the reference); a trial stopped early by the scheduler ends with its last
evaluation (``trials.Evaluation`` as a dict). Either becomes the values of the trial's
outcome columns (:data:`~study.store.TRIAL_COLUMNS` marked ``outcome``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study._objectives import objective_value
from study.store import TRIAL_COLUMNS

OUTCOME_COLUMNS = tuple(info.name for info in TRIAL_COLUMNS if info.outcome)


def _columns(record: dict[str, Any], share: float) -> dict[str, Any]:
    record["device_s"] = objective_value("device_s", record, share)
    return {name: record.get(name) for name in OUTCOME_COLUMNS}


def result_outcome(result: Mapping[str, Any], share: float) -> dict[str, Any]:
    """The outcome columns of a final result (``share``: the CPUs or GPUs it held)."""
    record = dict(result)
    sparsity = record.get("sparsity") or {}
    record["sparsity"] = sparsity.get("overall")
    record["components"] = sparsity.get("components")
    return _columns(record, share)


def evaluation_outcome(evaluation: Mapping[str, Any], share: float) -> dict[str, Any]:
    """The outcome columns of a trial that ended at ``evaluation`` (stopped early)."""
    record = dict(evaluation)
    record["iterations"] = record.get("iteration")
    record["wall_time_s"] = record.get("elapsed_s")
    return _columns(record, share)
