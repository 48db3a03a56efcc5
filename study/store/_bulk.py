"""Column-wise reads of many trials and evaluations at once (for analysis' frames).

A study of tens of thousands of trials loads as one query per table; JSON columns are read
as text and parsed with one ``json.loads`` per column rather than one per value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from study.store._models import EvaluationRow, MethodRunRow, StudyRow, TrialRow
from study.store._records import EVALUATION_COLUMNS, TRIAL_COLUMNS
from study.store._schema import ColumnInfo, Kind

#: The trial and evaluation tables' columns, by name.
TRIALS = TrialRow.__table__.c
EVALUATIONS = EvaluationRow.__table__.c
#: The columns :func:`read_trials` returns before the stored ones.
TRIAL_KEYS = ("study", "method", "trial_id", "number")
#: The columns :func:`read_evaluations` returns before the stored ones.
EVALUATION_KEYS = ("study", "method", "trial_id", "seed")


def read_trials(
    session: Session, study_ids: Sequence[int], stored: tuple[ColumnInfo, ...] = TRIAL_COLUMNS
) -> dict[str, list[Any]]:
    """Every trial of the studies, by id: :data:`TRIAL_KEYS` then the ``stored`` columns."""
    t, m = TRIALS, MethodRunRow
    keys = (StudyRow.name, m.method, t.id, t.number)
    query = (
        select(*keys, *_selected(t, stored))
        .join(m, t.method_run_id == m.id)
        .join(StudyRow, m.study_id == StudyRow.id)
        .where(m.study_id.in_(study_ids))
        .order_by(t.id)
    )
    return _columns(session, query, TRIAL_KEYS, stored)


def read_evaluations(session: Session, study_ids: Sequence[int]) -> dict[str, list[Any]]:
    """Every evaluation of the studies, by trial and iteration: :data:`EVALUATION_KEYS` then
    every stored column."""
    e, t, m = EVALUATIONS, TRIALS, MethodRunRow
    keys = (StudyRow.name, m.method, t.id, t.seed)
    query = (
        select(*keys, *_selected(e, EVALUATION_COLUMNS))
        .join(TrialRow, e.trial_id == t.id)
        .join(m, t.method_run_id == m.id)
        .join(StudyRow, m.study_id == StudyRow.id)
        .where(m.study_id.in_(study_ids))
        .order_by(t.id, e.iteration)
    )
    return _columns(session, query, EVALUATION_KEYS, EVALUATION_COLUMNS)


def count_statuses(session: Session) -> dict[str, dict[str, int]]:
    """Study name -> trial status -> how many trials."""
    query = (
        select(StudyRow.name, TRIALS.status, func.count(TRIALS.id))
        .join(MethodRunRow, TRIALS.method_run_id == MethodRunRow.id)
        .join(StudyRow, MethodRunRow.study_id == StudyRow.id)
        .group_by(StudyRow.name, TRIALS.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for study, status, count in session.execute(query):
        counts.setdefault(study, {})[status] = int(count)
    return counts


def list_methods(session: Session) -> dict[str, list[str]]:
    """Study name -> the sorted names of its method runs."""
    query = (
        select(StudyRow.name, MethodRunRow.method)
        .join(StudyRow, MethodRunRow.study_id == StudyRow.id)
        .distinct()
    )
    methods: dict[str, list[str]] = {}
    for study, method in session.execute(query):
        methods.setdefault(study, []).append(method)
    return {study: sorted(names) for study, names in methods.items()}


def _selected(table: Any, columns: tuple[ColumnInfo, ...]) -> list[Any]:
    """The stored columns to select; JSON ones as text (parsed in :func:`_columns`)."""
    return [
        cast(getattr(table, c.name), Text) if c.kind is Kind.JSON else getattr(table, c.name)
        for c in columns
    ]


def _columns(
    session: Session, query: Any, keys: Sequence[str], stored: tuple[ColumnInfo, ...]
) -> dict[str, list[Any]]:
    names = (*keys, *(info.name for info in stored))
    rows = session.connection().execute(query).all()
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    columns = dict(zip(names, (list(v) for v in values), strict=True))
    for info in stored:
        if info.kind is Kind.JSON:
            columns[info.name] = _parse_json(columns[info.name])
    return columns


def _parse_json(texts: Sequence[str | None]) -> list[Any]:
    try:
        whole = "[" + ",".join("null" if t is None else t for t in texts) + "]"
    except TypeError:  # a driver that returned parsed values
        return [_parse_one(t) for t in texts]
    try:
        return list(orjson.loads(whole))
    except orjson.JSONDecodeError:  # NaN written by another JSON writer, or bad text
        return [_parse_one(t) for t in texts]


def _parse_one(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def study_version(session: Session, study_id: int) -> tuple[Any, ...]:
    """What changes whenever the study's trials or evaluations do: trials per status, the
    last trial id and finish time, and the last evaluation id (a few aggregates, cheap)."""
    t, m = TRIALS, MethodRunRow
    runs = select(m.id).where(m.study_id == study_id)
    statuses = session.execute(
        select(t.status, func.count(t.id), func.max(t.id), func.max(t.finished_at))
        .where(t.method_run_id.in_(runs))
        .group_by(t.status)
        .order_by(t.status)
    ).all()
    trials = select(t.id).where(t.method_run_id.in_(runs))
    last_evaluation = session.scalar(
        select(func.max(EvaluationRow.id)).where(EvaluationRow.trial_id.in_(trials))
    )
    status = session.scalar(select(StudyRow.status).where(StudyRow.id == study_id))
    return (status, tuple(map(tuple, statuses)), last_evaluation)
