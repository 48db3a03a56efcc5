"""Plain read-only views of stored rows, detached from any session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC (SQLite returns naive datetimes, stored in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class StudyRecord:
    """A stored study."""

    id: int
    name: str
    config: dict[str, Any]
    objectives: list[tuple[str, str]]
    status: str
    created_at: datetime | None
    versions: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodRunRecord:
    """The run of one method with one seed inside a study."""

    id: int
    study: str
    method: str
    seed: int
    search_space: dict[str, Any]
    optuna_study_name: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class TrialRecord:
    """A stored trial (see the ``paretune_trials`` table for the meaning of fields)."""

    id: int
    study: str
    method: str
    method_run_id: int
    number: int
    seed: int
    status: str
    is_reference: bool
    params: dict[str, Any]
    config: dict[str, Any]
    optuna_trial_number: int | None = None
    tune_trial_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    host: str | None = None
    node_id: str | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    sparsity: float | None = None
    components: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    task_weights: dict[str, Any] = field(default_factory=dict)
    delta_t: float | None = None
    delta_t_per_task: dict[str, Any] = field(default_factory=dict)
    delta_m: float | None = None
    iterations: int = 0
    wall_time_s: float | None = None
    device_s: float | None = None
    flops: float | None = None
    parameters: int | None = None
    rung: int | None = None
    grouping: dict[str, Any] = field(default_factory=dict)
    search_error: str | None = None


@dataclass(frozen=True)
class EvaluationRecord:
    """One stored periodic evaluation of a trial."""

    id: int
    trial_id: int
    iteration: int
    metrics: dict[str, Any]
    losses: dict[str, Any]
    sparsity: float | None
    components: dict[str, Any]
    thresholds: dict[str, Any]
    task_weights: dict[str, Any]
    delta_t: float | None
    elapsed_s: float | None
    images_seen: int | None
    delta_t_per_task: dict[str, Any] = field(default_factory=dict)
    flops: float | None = None
    parameters: int | None = None
    delta_m: float | None = None


@dataclass(frozen=True)
class DriverLease:
    """The driver of a study, as its lease row says.

    ``alive`` is what the store could tell: the heartbeat is recent and, when the driver
    runs on this host, its process exists.
    """

    study: str
    token: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stale_after_s: float
    ray_session: str | None
    alive: bool

    def describe(self) -> str:
        """``host HOST, pid PID`` for messages."""
        return f"host {self.host}, pid {self.pid}"


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a trial produced."""

    id: int
    trial_id: int
    kind: str
    path: str
    size: int | None
    created_at: datetime | None
