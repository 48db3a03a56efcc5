"""The SQL schema of the results store (SQLAlchemy 2 declarative models).

Tables carry a ``paretune_`` prefix so that the store can share a database with
Optuna's own storage (which also has ``studies`` and ``trials`` tables).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 4
"""Version of the tables below. A database of an older version is migrated when opened
(:mod:`study.store._migrate`); a newer one is refused."""


class TrialStatus(enum.StrEnum):
    """Life cycle of one trial."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"


class RunStatus(enum.StrEnum):
    """Life cycle of a study or of one method run."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    #: Every trial ran, but some results did not reach the study's Optuna searches.
    INCOMPLETE = "INCOMPLETE"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _empty() -> dict[str, Any]:
    return {}


class Base(DeclarativeBase):
    """Declarative base; dict/list annotations map to the portable ``JSON`` type."""

    type_annotation_map = {  # noqa: RUF012
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class SchemaInfo(Base):
    """One row: the schema version the database was created with."""

    __tablename__ = "paretune_schema_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyRow(Base):
    """A study: its validated config, objectives and the versions that ran it."""

    __tablename__ = "paretune_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    objectives: Mapped[list[Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.CREATED.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paretune_version: Mapped[str | None] = mapped_column(String(64))
    torch_version: Mapped[str | None] = mapped_column(String(64))
    ray_version: Mapped[str | None] = mapped_column(String(64))
    optuna_version: Mapped[str | None] = mapped_column(String(64))

    method_runs: Mapped[list[MethodRunRow]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )


class MethodRunRow(Base):
    """The trials of one method with one seed inside a study."""

    __tablename__ = "paretune_method_runs"
    __table_args__ = (UniqueConstraint("study_id", "method", "seed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("paretune_studies.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    search_space: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    optuna_study_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    study: Mapped[StudyRow] = relationship(back_populates="method_runs")


class TrialRow(Base):
    """One trial: its configuration, where it ran, and its final results."""

    __tablename__ = "paretune_trials"
    __table_args__ = (
        UniqueConstraint("method_run_id", "number"),
        UniqueConstraint("method_run_id", "tune_trial_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    method_run_id: Mapped[int] = mapped_column(
        ForeignKey("paretune_method_runs.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    optuna_trial_number: Mapped[int | None] = mapped_column(Integer)
    tune_trial_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=TrialStatus.RUNNING.value)
    is_reference: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    config: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    seed: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    node_id: Mapped[str | None] = mapped_column(String(128))
    versions: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    sparsity: Mapped[float | None] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    task_weights: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    delta_t: Mapped[float | None] = mapped_column(Float)
    delta_t_per_task: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    delta_m: Mapped[float | None] = mapped_column(Float)
    iterations: Mapped[int] = mapped_column(Integer, default=0)
    wall_time_s: Mapped[float | None] = mapped_column(Float)
    device_s: Mapped[float | None] = mapped_column(Float)
    flops: Mapped[float | None] = mapped_column(Float)
    parameters: Mapped[int | None] = mapped_column(BigInteger)
    rung: Mapped[int | None] = mapped_column(Integer)
    grouping: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    #: Why the trial's outcome did not reach its Optuna study as a result (None: it did).
    search_error: Mapped[str | None] = mapped_column(Text)


class EvaluationRow(Base):
    """One periodic validation of a trial; ``(trial_id, iteration)`` is unique."""

    __tablename__ = "paretune_evaluations"
    __table_args__ = (UniqueConstraint("trial_id", "iteration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("paretune_trials.id", ondelete="CASCADE"))
    iteration: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    losses: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    sparsity: Mapped[float | None] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    task_weights: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    delta_t: Mapped[float | None] = mapped_column(Float)
    elapsed_s: Mapped[float | None] = mapped_column(Float)
    images_seen: Mapped[int | None] = mapped_column(BigInteger)
    delta_t_per_task: Mapped[dict[str, Any]] = mapped_column(default=_empty)
    flops: Mapped[float | None] = mapped_column(Float)
    parameters: Mapped[int | None] = mapped_column(BigInteger)
    delta_m: Mapped[float | None] = mapped_column(Float)


class DriverLeaseRow(Base):
    """Which process drives a study now: one row per study, renewed by a heartbeat.

    A lease whose heartbeat is older than its ``stale_after_s`` (or whose process is gone,
    seen from the same host) belongs to a driver that stopped without releasing it.
    ``ray_session`` is the folder of the local Ray the driver started, if any.
    """

    __tablename__ = "paretune_driver_leases"

    study_id: Mapped[int] = mapped_column(
        ForeignKey("paretune_studies.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stale_after_s: Mapped[float] = mapped_column(Float)
    ray_session: Mapped[str | None] = mapped_column(Text)


class ArtifactRow(Base):
    """A file a trial produced (a checkpoint, an exported model, a log)."""

    __tablename__ = "paretune_artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(
        ForeignKey("paretune_trials.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
