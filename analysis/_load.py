"""Reading a study's results from the SQL store into pandas frames.

The frames are "long per trial / per evaluation, wide per metric": one row per trial (or
evaluation) with fixed columns, plus ``sparsity:<component>``, ``metric:<task>:<metric>``,
``delta:<task>``, ``threshold:<component>``, ``weight:<task>``, ``param:<name>`` (trials)
and ``loss:<task>`` (evaluations) columns flattened from the stored JSON in one pass. Both
derive from the store's schema (:data:`study.store.TRIAL_COLUMNS`): every stored column is
a fixed column, a JSON column is kept whole or flattened as its schema entry says.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from study.store import EVALUATION_COLUMNS as STORED_EVALUATION_COLUMNS
from study.store import EVALUATION_KEYS, TRIAL_KEYS, ColumnInfo, Kind, ResultStore, StoreError
from study.store import TRIAL_COLUMNS as STORED_TRIAL_COLUMNS

#: How the identifying columns before the stored ones are typed.
_KEYS = {
    name: ColumnInfo(name, kind, required=True)
    for name, kind in (
        ("study", Kind.TEXT),
        ("method", Kind.TEXT),
        ("trial_id", Kind.INT),
        ("number", Kind.INT),
        ("seed", Kind.INT),
    )
}


def _fixed(keys: Sequence[str], stored: Sequence[ColumnInfo]) -> tuple[str, ...]:
    kept = (c.name for c in stored if c.kind is not Kind.JSON or c.keep)
    return (*keys, *kept)


def _flattened(stored: Sequence[ColumnInfo]) -> tuple[ColumnInfo, ...]:
    return tuple(c for c in stored if c.prefix is not None)


#: The stored trial columns the frame shows (kept whole or flattened).
_IN_FRAME = tuple(c for c in STORED_TRIAL_COLUMNS if c.kind is not Kind.JSON or c.keep or c.prefix)
#: Fixed columns of the trials frame, in order.
TRIAL_COLUMNS: tuple[str, ...] = _fixed(TRIAL_KEYS, STORED_TRIAL_COLUMNS)
#: Fixed columns of the evaluations frame, in order.
EVALUATION_COLUMNS: tuple[str, ...] = _fixed(EVALUATION_KEYS, STORED_EVALUATION_COLUMNS)
#: Prefixes of the flattened columns, in the order they appear.
FLAT_PREFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(c.prefix for c in (*STORED_TRIAL_COLUMNS, *STORED_EVALUATION_COLUMNS) if c.prefix)
)


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
    url: str | ResultStore,
    study: str | Sequence[str],
    *,
    evaluations: bool = True,
    configs: bool = True,
    wide: bool = True,
    columns: Collection[str] | None = None,
) -> StudyFrames:
    """Loads one or several studies of a results store.

    Args:
        url: the store's SQLAlchemy URL, or an open :class:`~study.store.ResultStore`.
        study: a study name or several (their trials are concatenated).
        evaluations: also load the periodic evaluations (skip for a faster load).
        configs: also load each trial's whole ``config`` column (skip for a faster load;
            the frame then has no ``config`` column).
        wide: also load the per-task, per-component and per-metric columns
            (``metric:``, ``sparsity:``, ``delta:``, ``threshold:``, ``weight:``); without
            them a summary of many trials loads several times faster.
        columns: only these stored trial columns (the frame always has ``study``,
            ``method``, ``trial_id`` and ``number``); None loads every one ``configs``
            and ``wide`` allow. Naming unknown columns raises ``ValueError``.

    Returns:
        The trials and evaluations frames and the studies' metadata.

    Raises:
        StoreError: an unreachable or missing database, or an unknown study name (the
            message lists the stored ones).
    """
    names = [study] if isinstance(study, str) else list(dict.fromkeys(study))
    if not names:
        raise StoreError("load_study needs at least one study name")
    stored = tuple(
        c
        for c in _IN_FRAME
        if (configs or c.name != "config")
        and (wide or c.keep or c.kind is not Kind.JSON)
        and (columns is None or c.name in columns)
    )
    if columns is not None and (unknown := set(columns) - {c.name for c in _IN_FRAME}):
        raise ValueError(f"load_study: no stored trial column(s) {sorted(unknown)}")
    store, owned = _open(url)
    try:
        records = [store.get_study(name) for name in names]
        trials = _frame(store.trial_columns(names, [c.name for c in stored]), TRIAL_KEYS, stored)
        evaluation_columns = store.evaluation_columns(names if evaluations else [])
        evals = _frame(evaluation_columns, EVALUATION_KEYS, STORED_EVALUATION_COLUMNS)
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
        counts = store.status_counts()
        methods = store.methods_by_study()
    finally:
        if owned:
            store.close()
    statuses = ("complete", "failed", "running", "pruned", "waiting")
    rows = []
    for record in studies:
        by_status = counts.get(record.name, {})
        rows.append(
            {
                "study": record.name,
                "status": record.status,
                "created_at": record.created_at,
                "objectives": list(record.objectives),
                "methods": methods.get(record.name, []),
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


# --- frames ------------------------------------------------------------------------------
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


def _frame(
    columns: dict[str, list[Any]], keys: Sequence[str], stored: Sequence[ColumnInfo]
) -> pd.DataFrame:
    """The frame of one table's columns (see the module docstring)."""
    length = len(columns[keys[0]])
    infos = {**_KEYS, **{c.name: c for c in stored}}
    data = {name: _series(columns[name], infos[name], length) for name in _fixed(keys, stored)}
    base = pd.DataFrame(data, index=range(length))
    sources = [(c.prefix or "", _flat_rows(columns[c.name])) for c in _flattened(stored)]
    flat = _flatten(sources, length)
    return pd.concat([base, flat], axis=1)


def _flat_rows(rows: Sequence[Any]) -> Sequence[Any]:
    """The column's mappings with nested mappings joined: ``{task: {metric: v}}`` ->
    ``{"task:metric": v}`` (a column whose first mapping nests nothing is passed as it is)."""
    first = next((row for row in rows if isinstance(row, dict) and row), None)
    if first is None or not any(isinstance(value, dict) for value in first.values()):
        return rows
    flat = []
    for row in rows:
        entry: dict[str, Any] = {}
        for key, value in (row or {}).items():
            if isinstance(value, dict):
                entry.update({f"{key}:{name}": inner for name, inner in value.items()})
            else:
                entry[key] = value
        flat.append(entry)
    return flat


def _series(values: Sequence[Any], info: ColumnInfo, length: int) -> Any:
    """One fixed column with the dtype of its kind (nullable integers as float64)."""
    kind, nullable = info.kind, info.nullable
    if kind is Kind.FLOAT or (kind in (Kind.INT, Kind.COUNT) and nullable):
        return np.array(values, dtype="float64").reshape(length)
    if kind in (Kind.INT, Kind.COUNT):
        return np.array(values, dtype="int64").reshape(length)
    if kind is Kind.TIME:
        times = pd.Series(values, dtype="object", index=range(length))
        return pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]")
    if kind is Kind.BOOL:
        return np.array(values, dtype=bool).reshape(length)
    items = np.empty(length, dtype=object)
    if kind is Kind.JSON:
        items[:] = [(dict(v) if v else None) if info.optional else (v or {}) for v in values]
    elif kind in (Kind.TEXT, Kind.STATUS) and not nullable:
        items[:] = [str(v) for v in values]
    else:
        items[:] = list(values)
    return items
