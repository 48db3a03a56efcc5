"""Plain read-only views of stored rows, detached from any session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from study.store._schema import Kind, column, columns_of


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


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """A stored trial: its identity, then its columns (the ``paretune_trials`` table).

    The fields made by :func:`~study.store._schema.column` are the table's columns; the
    first five identify the trial and its method run.
    """

    id: int
    study: str
    method: str
    method_run_id: int
    number: int
    seed: int = column(Kind.INT, required=True)
    status: str = column(Kind.STATUS, "RUNNING")
    is_reference: bool = column(Kind.BOOL, False)
    #: Its whole ``TrialConfig`` (fixed fields and searched parameters).
    config: dict[str, Any] = column(Kind.JSON, keep=True)
    #: Delta_T against the seed's dense reference, percent.
    delta_t: float | None = column(Kind.FLOAT, outcome=True)
    #: Delta_m (mean over all metrics) against the reference, percent.
    delta_m: float | None = column(Kind.FLOAT, since=4, outcome=True)
    #: Overall fraction of exactly-zero prunable weights.
    sparsity: float | None = column(Kind.FLOAT, outcome=True)
    iterations: int = column(Kind.INT, 0, outcome=True)
    wall_time_s: float | None = column(Kind.FLOAT, outcome=True)
    #: Wall seconds times the CPUs (or GPUs) the trial held.
    device_s: float | None = column(Kind.FLOAT, outcome=True)
    #: Training FLOPs spent.
    flops: float | None = column(Kind.FLOAT, outcome=True)
    #: Scalar parameters of the model.
    parameters: int | None = column(Kind.COUNT, outcome=True)
    started_at: datetime | None = column(Kind.TIME)
    finished_at: datetime | None = column(Kind.TIME)
    error: str | None = column(Kind.TEXT)
    node_id: str | None = column(Kind.TEXT, length=128)
    host: str | None = column(Kind.TEXT, length=255)
    #: Why the trial's outcome did not reach its Optuna study as a result (None: it did).
    search_error: str | None = column(Kind.TEXT, since=3)
    #: The task grouping of a ``dmtg`` or group-then-prune trial.
    grouping: dict[str, Any] = column(Kind.JSON, outcome=True, keep=True, optional=True)
    optuna_trial_number: int | None = column(Kind.INT)
    tune_trial_id: str | None = column(Kind.TEXT, length=128)
    #: The rung a trial stopped early (PRUNED) was stopped at.
    rung: int | None = column(Kind.INT)
    #: Versions of paretune and its engines that ran the trial.
    versions: dict[str, Any] = column(Kind.JSON)
    #: Sparsity per component (``backbone``, ``head:<task>``, ...).
    components: dict[str, Any] = column(Kind.JSON, outcome=True, prefix="sparsity:")
    #: ``{task: {metric: value}}`` on the held-out split.
    metrics: dict[str, Any] = column(Kind.JSON, outcome=True, prefix="metric:")
    #: Each task's Delta_T term.
    delta_t_per_task: dict[str, Any] = column(Kind.JSON, outcome=True, prefix="delta:")
    #: Learned soft thresholds per component.
    thresholds: dict[str, Any] = column(Kind.JSON, outcome=True, prefix="threshold:")
    #: Task weights at the end.
    task_weights: dict[str, Any] = column(Kind.JSON, outcome=True, prefix="weight:")
    #: The searched parameters of the trial.
    params: dict[str, Any] = column(Kind.JSON, prefix="param:", keep=True)


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord:
    """One stored periodic evaluation of a trial (the fields of ``trials.Evaluation``)."""

    id: int
    trial_id: int
    iteration: int = column(Kind.INT, required=True)
    sparsity: float | None = column(Kind.FLOAT)
    delta_t: float | None = column(Kind.FLOAT)
    delta_m: float | None = column(Kind.FLOAT, since=4)
    elapsed_s: float | None = column(Kind.FLOAT)
    images_seen: int | None = column(Kind.COUNT)
    flops: float | None = column(Kind.FLOAT, since=3)
    parameters: int | None = column(Kind.COUNT, since=3)
    components: dict[str, Any] = column(Kind.JSON, prefix="sparsity:")
    metrics: dict[str, Any] = column(Kind.JSON, prefix="metric:")
    delta_t_per_task: dict[str, Any] = column(Kind.JSON, since=3, prefix="delta:")
    thresholds: dict[str, Any] = column(Kind.JSON, prefix="threshold:")
    task_weights: dict[str, Any] = column(Kind.JSON, prefix="weight:")
    losses: dict[str, Any] = column(Kind.JSON, prefix="loss:")


#: The stored columns of a trial and of an evaluation.
TRIAL_COLUMNS = columns_of(TrialRecord)
EVALUATION_COLUMNS = columns_of(EvaluationRecord)


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
