"""What a stored column is: the one definition the store, its tables and analysis read.

A record dataclass (:class:`~study.store.TrialRecord`, :class:`~study.store.EvaluationRecord`)
declares each stored column as a field made by :func:`column`. From those fields derive the
SQL tables (``_models``), the fields the store accepts and how it converts them (``_sql``),
the migrations adding a column (``_migrate``), the columns of analysis' frames and which
JSON columns it flattens (``analysis.load_study``), and what a trial's outcome fills
(:mod:`study._outcome`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any


class Kind(enum.StrEnum):
    """How a column is stored and converted."""

    JSON = "json"  # a mapping of plain values ({} when absent)
    FLOAT = "float"  # NaN and infinities are stored as NULL
    INT = "int"
    COUNT = "count"  # an integer that may pass 2**31 (a 64-bit column)
    TIME = "time"  # timezone-aware UTC
    TEXT = "text"  # ``length`` characters at most (unbounded when None)
    BOOL = "bool"
    STATUS = "status"  # a TrialStatus value


@dataclass(frozen=True)
class ColumnInfo:
    """One stored column of a record.

    Attributes:
        name: the column (and record field) name.
        kind: how it is stored.
        default: its value when a row does not set it (None: NULL); JSON columns are {}.
        required: a row must set it (no default).
        length: the size of a TEXT column (None: unbounded).
        since: the schema version that added it (older databases are migrated).
        outcome: a trial's outcome (its final result or last evaluation) sets it.
        prefix: analysis flattens this JSON column into ``<prefix><key>`` columns.
        keep: analysis keeps the JSON column itself (as well).
        optional: an empty JSON column means nothing was recorded (None in analysis).
    """

    name: str
    kind: Kind
    default: Any = None
    required: bool = False
    length: int | None = None
    since: int = 1
    outcome: bool = False
    prefix: str | None = None
    keep: bool = False
    optional: bool = False

    @property
    def nullable(self) -> bool:
        return not self.required and self.default is None and self.kind is not Kind.JSON

    def empty(self) -> Any:
        """The value of a row that does not set this column."""
        return {} if self.kind is Kind.JSON else self.default


_INFO = "paretune_column"


def column(
    kind: Kind,
    default: Any = None,
    *,
    required: bool = False,
    length: int | None = None,
    since: int = 1,
    outcome: bool = False,
    prefix: str | None = None,
    keep: bool = False,
    optional: bool = False,
) -> Any:
    """A record field that is a stored column (see :class:`ColumnInfo`)."""
    info = ColumnInfo("", kind, default, required, length, since, outcome, prefix, keep, optional)
    metadata = {_INFO: info}
    if required:
        return dataclasses.field(metadata=metadata)
    if kind is Kind.JSON:
        return dataclasses.field(default_factory=dict, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def columns_of(record: type) -> tuple[ColumnInfo, ...]:
    """The stored columns a record dataclass declares, in field order."""
    return tuple(
        dataclasses.replace(field.metadata[_INFO], name=field.name)
        for field in dataclasses.fields(record)
        if _INFO in field.metadata
    )
