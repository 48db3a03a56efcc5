"""Reading a study's results from the SQL store into pandas frames.

The frames are "long per trial / per evaluation, wide per metric": one row per trial (or
evaluation) with fixed columns, plus ``sparsity:<component>``, ``metric:<task>:<metric>``,
``delta:<task>``, ``threshold:<component>``, ``weight:<task>``, ``param:<name>`` (trials)
and ``loss:<task>`` (evaluations) columns flattened from the stored JSON in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from study.store import ResultStore, StoreError
from study.store._models import EvaluationRow, MethodRunRow, StudyRow, TrialRow

#: Fixed columns of the trials frame, in order.
TRIAL_COLUMNS: tuple[str, ...] = (
    "study",
    "method",
    "trial_id",
    "number",
    "seed",
    "status",
    "is_reference",
    "params",
    "config",
    "delta_t",
    "delta_m",
    "sparsity",
    "iterations",
    "wall_time_s",
    "device_s",
    "flops",
    "parameters",
    "started_at",
    "finished_at",
    "error",
    "node_id",
    "host",
    "search_error",
    "grouping",
)
#: Fixed columns of the evaluations frame, in order.
EVALUATION_COLUMNS: tuple[str, ...] = (
    "study",
    "method",
    "trial_id",
    "seed",
    "iteration",
    "elapsed_s",
    "images_seen",
    "delta_t",
    "delta_m",
    "sparsity",
)
#: Prefixes of the flattened columns, in the order they appear.
FLAT_PREFIXES: tuple[str, ...] = (
    "sparsity:",
    "metric:",
    "delta:",
    "threshold:",
    "weight:",
    "loss:",
    "param:",
)

_FLOAT = (
    "delta_t",
    "delta_m",
    "sparsity",
    "wall_time_s",
    "device_s",
    "flops",
    "parameters",
    "elapsed_s",
    "images_seen",
)
_INT = ("trial_id", "number", "seed", "iterations", "iteration")
_TIME = ("started_at", "finished_at")


@dataclass(frozen=True)
class StudyFrames:
    """A loaded study (or several).

    Attributes:
        trials: one row per trial (see :data:`TRIAL_COLUMNS` and the flattened columns).
        evaluations: one row per periodic evaluation of a trial.
        studies: metadata per study: ``name``, ``id``, ``status``, ``created_at``,
            ``objectives`` (``(name, direction)`` pairs), ``config``, ``versions``.
    """

    trials: pd.DataFrame
    evaluations: pd.DataFrame
    studies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """The objectives shared by the loaded studies.

        Raises:
            ValueError: the studies disagree on their objectives.
        """
        found = {tuple(map(tuple, s["objectives"])) for s in self.studies}
        if len(found) != 1:
            names = ", ".join(repr(s["name"]) for s in self.studies) or "none"
            raise ValueError(f"the loaded studies ({names}) do not share one set of objectives")
        return [(str(n), str(d)) for n, d in found.pop()]


def load_study(
    url: str | ResultStore, study: str | Sequence[str], *, evaluations: bool = True
) -> StudyFrames:
    """Loads one or several studies of a results store.

    Args:
        url: the store's SQLAlchemy URL, or an open :class:`~study.store.ResultStore`.
        study: a study name or several (their trials are concatenated).
        evaluations: also load the periodic evaluations (skip for a faster load).

    Returns:
        The trials and evaluations frames and the studies' metadata.

    Raises:
        StoreError: an unreachable or missing database, or an unknown study name (the
            message lists the stored ones).
    """
    names = [study] if isinstance(study, str) else list(dict.fromkeys(study))
    if not names:
        raise StoreError("load_study needs at least one study name")
    store, owned = _open(url)
    try:
        records = [store.get_study(name) for name in names]
        ids = [r.id for r in records]
        trials = _trials_frame(store.run(lambda s: _trial_columns(s, ids)))
        evals = _evaluations_frame(
            store.run(lambda s: _evaluation_columns(s, ids))
            if evaluations
            else [[] for _ in range(len(EVALUATION_COLUMNS) + len(_EVALUATION_JSON))]
        )
    finally:
        if owned:
            store.close()
    studies = [
        {
            "name": r.name,
            "id": r.id,
            "status": r.status,
            "created_at": r.created_at,
            "objectives": list(r.objectives),
            "config": r.config,
            "versions": r.versions,
        }
        for r in records
    ]
    return StudyFrames(trials, evals, studies)


def list_studies(url: str | ResultStore) -> pd.DataFrame:
    """One row per stored study: ``study``, ``status``, ``created_at``, ``objectives``,
    ``methods`` (sorted list), ``trials`` and the count per status (``complete``,
    ``failed``, ``running``, ``pruned``, ``waiting``)."""
    store, owned = _open(url)
    try:
        studies = store.list_studies()
        counts = store.run(_status_counts)
        methods = store.run(_methods_by_study)
    finally:
        if owned:
            store.close()
    statuses = ("complete", "failed", "running", "pruned", "waiting")
    rows = []
    for record in studies:
        by_status = counts.get(record.id, {})
        rows.append(
            {
                "study": record.name,
                "status": record.status,
                "created_at": record.created_at,
                "objectives": list(record.objectives),
                "methods": methods.get(record.id, []),
                "trials": sum(by_status.values()),
                **{s: by_status.get(s.upper(), 0) for s in statuses},
            }
        )
    columns = ["study", "status", "created_at", "objectives", "methods", "trials", *statuses]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    for column in ("trials", *statuses):
        frame[column] = frame[column].astype("int64")
    return frame


# --- queries -----------------------------------------------------------------------------
def _open(url: str | ResultStore) -> tuple[ResultStore, bool]:
    if isinstance(url, ResultStore):
        return url, False
    return ResultStore(url, create=False), True


_TRIAL_JSON = (
    "params",
    "config",
    "components",
    "metrics",
    "delta_t_per_task",
    "thresholds",
    "task_weights",
)
_EVALUATION_JSON = ("components", "metrics", "thresholds", "task_weights", "losses")
#: JSON trial columns that older stores may not have.
_OPTIONAL_TRIAL_JSON = ("grouping",)


def _trial_json() -> tuple[str, ...]:
    """The JSON trial columns this store schema has."""
    optional = tuple(n for n in _OPTIONAL_TRIAL_JSON if getattr(TrialRow, n, None) is not None)
    return (*_TRIAL_JSON, *optional)


def _columns(session: Session, query: Any, n_columns: int, n_json: int) -> list[Sequence[Any]]:
    """Column-wise results; the last ``n_json`` columns (selected as JSON text) parsed
    with one ``json.loads`` per column rather than one per value."""
    rows = session.connection().execute(query).all()
    if not rows:
        return [[] for _ in range(n_columns)]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for index in range(n_columns - n_json, n_columns):
        columns[index] = _parse_json(columns[index])
    return columns


def _parse_json(texts: Sequence[str | None]) -> list[Any]:
    try:
        return list(json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]"))
    except (TypeError, ValueError):  # a driver that returned parsed values, or bad text
        return [_parse_one(t) for t in texts]


def _parse_one(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _as_text(column: Any) -> Any:
    return cast(column, Text)


def _trial_columns(session: Session, study_ids: list[int]) -> list[Sequence[Any]]:
    t, m = TrialRow, MethodRunRow
    plain = (
        StudyRow.name,
        m.method,
        t.id,
        t.number,
        t.seed,
        t.status,
        t.is_reference,
        t.delta_t,
        t.delta_m,
        t.sparsity,
        t.iterations,
        t.wall_time_s,
        t.device_s,
        t.flops,
        t.parameters,
        t.started_at,
        t.finished_at,
        t.error,
        t.node_id,
        t.host,
        t.search_error,
    )
    json_columns = [_as_text(getattr(t, name)) for name in _trial_json()]
    query = (
        select(*plain, *json_columns)
        .join(m, t.method_run_id == m.id)
        .join(StudyRow, m.study_id == StudyRow.id)
        .where(m.study_id.in_(study_ids))
        .order_by(t.id)
    )
    return _columns(session, query, len(plain) + len(json_columns), len(json_columns))


def _evaluation_columns(session: Session, study_ids: list[int]) -> list[Sequence[Any]]:
    e, t, m = EvaluationRow, TrialRow, MethodRunRow
    plain = (
        StudyRow.name,
        m.method,
        t.id,
        t.seed,
        e.iteration,
        e.elapsed_s,
        e.images_seen,
        e.delta_t,
        e.delta_m,
        e.sparsity,
    )
    json_columns = [_as_text(getattr(e, name)) for name in _EVALUATION_JSON]
    query = (
        select(*plain, *json_columns)
        .join(t, e.trial_id == t.id)
        .join(m, t.method_run_id == m.id)
        .join(StudyRow, m.study_id == StudyRow.id)
        .where(m.study_id.in_(study_ids))
        .order_by(t.id, e.iteration)
    )
    return _columns(session, query, len(plain) + len(json_columns), len(json_columns))


def _status_counts(session: Session) -> dict[int, dict[str, int]]:
    query = (
        select(MethodRunRow.study_id, TrialRow.status, func.count(TrialRow.id))
        .join(MethodRunRow, TrialRow.method_run_id == MethodRunRow.id)
        .group_by(MethodRunRow.study_id, TrialRow.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for study_id, status, count in session.execute(query):
        counts.setdefault(study_id, {})[status] = int(count)
    return counts


def _methods_by_study(session: Session) -> dict[int, list[str]]:
    query = select(MethodRunRow.study_id, MethodRunRow.method).distinct()
    methods: dict[int, list[str]] = {}
    for study_id, method in session.execute(query):
        methods.setdefault(study_id, []).append(method)
    return {k: sorted(v) for k, v in methods.items()}


# --- frames ------------------------------------------------------------------------------
def _flat_metrics(metrics: Sequence[Any]) -> list[dict[str, Any]]:
    """``{task: {metric: value}}`` -> ``{"task:metric": value}`` per row."""
    return [
        {
            f"{task}:{name}": value
            for task, values in row.items()
            if isinstance(values, dict)
            for name, value in values.items()
        }
        if row
        else {}
        for row in metrics
    ]


def _flatten(sources: Sequence[tuple[str, Sequence[Any]]], length: int) -> pd.DataFrame:
    """Per-row dicts flattened into ``<prefix><key>`` columns, sorted by prefix then key.

    ``param:*`` columns keep their values (numbers become numeric); the others are
    float64 with NaN for missing or non-numeric values.
    """
    frames = []
    for prefix, rows in sources:
        dicts = [row if isinstance(row, dict) else {} for row in rows]
        if not any(dicts):
            continue
        frame = pd.DataFrame.from_records(dicts, index=range(length))
        frame.columns = [prefix + str(c) for c in frame.columns]
        frames.append(frame)
    converted: dict[str, pd.Series] = {}
    for frame in frames:
        for column in frame.columns:
            values = frame[column]
            if column.startswith("param:"):
                converted[column] = _maybe_numeric(values)
            else:
                converted[column] = pd.to_numeric(values, errors="coerce").astype("float64")
    order = sorted(converted, key=lambda c: (_prefix_rank(c), c))
    return pd.DataFrame({c: converted[c] for c in order}, index=range(length))


def _prefix_rank(column: str) -> int:
    for rank, prefix in enumerate(FLAT_PREFIXES):
        if column.startswith(prefix):
            return rank
    return len(FLAT_PREFIXES)


def _maybe_numeric(values: pd.Series) -> pd.Series:
    non_null = values.dropna()
    if len(non_null) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in non_null
    ):
        return pd.to_numeric(values, errors="coerce")
    return values


def _base(names: Sequence[str], columns: dict[str, Sequence[Any]], length: int) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in names:
        column = columns[name]
        if name in _FLOAT:
            data[name] = np.array(column, dtype="float64").reshape(length)
        elif name in _INT:
            data[name] = np.array(column, dtype="int64").reshape(length)
        elif name in _TIME:
            times = pd.Series(column, dtype="object", index=range(length))
            data[name] = pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]")
        elif name == "is_reference":
            data[name] = np.array(column, dtype=bool).reshape(length)
        else:
            items = np.empty(length, dtype=object)
            items[:] = [v or {} for v in column] if name in ("params", "config") else column
            data[name] = items
    frame = pd.DataFrame(data, index=range(length))
    for name in ("study", "method", "status"):
        if name in frame:
            frame[name] = frame[name].astype(str)
    return frame


_TRIAL_PLAIN = (
    "study",
    "method",
    "trial_id",
    "number",
    "seed",
    "status",
    "is_reference",
    "delta_t",
    "delta_m",
    "sparsity",
    "iterations",
    "wall_time_s",
    "device_s",
    "flops",
    "parameters",
    "started_at",
    "finished_at",
    "error",
    "node_id",
    "host",
    "search_error",
)


def _trials_frame(columns: list[Sequence[Any]]) -> pd.DataFrame:
    names = (*_TRIAL_PLAIN, *_trial_json())
    if not columns or not any(len(c) for c in columns):
        columns = [[] for _ in names]
    named = dict(zip(names, columns, strict=True))
    length = len(columns[0])
    named["grouping"] = _groupings(named.get("grouping"), length)
    base = _base(TRIAL_COLUMNS, named, length)
    flat = _flatten(
        [
            ("sparsity:", named["components"]),
            ("metric:", _flat_metrics(named["metrics"])),
            ("delta:", named["delta_t_per_task"]),
            ("threshold:", named["thresholds"]),
            ("weight:", named["task_weights"]),
            ("param:", named["params"]),
        ],
        length,
    )
    return pd.concat([base, flat], axis=1)


def _groupings(values: Sequence[Any] | None, length: int) -> list[dict[str, Any] | None]:
    """The ``grouping`` column: a dict per trial, None where none was recorded."""
    if values is None:
        return [None] * length
    return [dict(v) if isinstance(v, dict) and v else None for v in values]


def _evaluations_frame(columns: list[Sequence[Any]]) -> pd.DataFrame:
    named = dict(zip((*EVALUATION_COLUMNS, *_EVALUATION_JSON), columns, strict=True))
    length = len(columns[0])
    base = _base(EVALUATION_COLUMNS, named, length)
    flat = _flatten(
        [
            ("sparsity:", named["components"]),
            ("metric:", _flat_metrics(named["metrics"])),
            ("threshold:", named["thresholds"]),
            ("weight:", named["task_weights"]),
            ("loss:", named["losses"]),
        ],
        length,
    )
    return pd.concat([base, flat], axis=1)
