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
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from study.store._records import EVALUATION_COLUMNS, TRIAL_COLUMNS
from study.store._schema import ColumnInfo, Kind

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


def _sql_type(info: ColumnInfo) -> Any:
    if info.kind is Kind.TEXT:
        return Text() if info.length is None else String(info.length)
    return _SQL_TYPES[info.kind]


_SQL_TYPES: dict[Kind, Any] = {
    Kind.JSON: JSON(),
    Kind.FLOAT: Float(),
    Kind.INT: Integer(),
    Kind.COUNT: BigInteger(),
    Kind.TIME: DateTime(timezone=True),
    Kind.BOOL: Boolean(),
    Kind.STATUS: String(16),
}


def schema_columns(columns: tuple[ColumnInfo, ...]) -> list[Column[Any]]:
    """The SQL columns of a record's stored fields (see :mod:`study.store._schema`)."""
    return [
        Column(
            info.name,
            _sql_type(info),
            nullable=info.nullable,
            default=_empty if info.kind is Kind.JSON else info.default,
        )
        for info in columns
    ]


class TrialRow(Base):
    """One trial: its configuration, where it ran, and its results (columns of
    :class:`~study.store.TrialRecord`)."""

    __tablename__ = "paretune_trials"
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column(
            "method_run_id",
            ForeignKey("paretune_method_runs.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        ),
        Column("number", Integer, nullable=False),
        *schema_columns(TRIAL_COLUMNS),
        UniqueConstraint("method_run_id", "number"),
        UniqueConstraint("method_run_id", "tune_trial_id"),
    )
    #: The identity columns, typed (the others are the schema's, untyped here).
    id: Mapped[int]
    method_run_id: Mapped[int]
    number: Mapped[int]


class EvaluationRow(Base):
    """One periodic validation of a trial (columns of :class:`~study.store.EvaluationRecord`);
    ``(trial_id, iteration)`` is unique."""

    __tablename__ = "paretune_evaluations"
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column(
            "trial_id",
            ForeignKey("paretune_trials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        *schema_columns(EVALUATION_COLUMNS),
        UniqueConstraint("trial_id", "iteration"),
    )
    id: Mapped[int]
    trial_id: Mapped[int]


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
