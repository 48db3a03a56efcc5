"""Brings a results database of an older schema version up to :data:`SCHEMA_VERSION`.

Each step only adds (tables, nullable columns), so a migrated database still holds every
study, trial and evaluation it held, and a failed step changes nothing (it runs inside the
transaction of the schema check). The columns a step adds are those the records declare
with that version as ``since`` (:mod:`study.store._schema`).
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

from study.store._models import Base, EvaluationRow, TrialRow
from study.store._records import EVALUATION_COLUMNS, TRIAL_COLUMNS

#: The oldest schema version a database can be migrated from.
OLDEST = 2
_TABLES = ((TrialRow, TRIAL_COLUMNS), (EvaluationRow, EVALUATION_COLUMNS))


def _add_columns(connection: Connection, table: type[Base], names: list[str]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for the ``names`` the table lacks."""
    present = {column["name"] for column in inspect(connection).get_columns(table.__tablename__)}
    for name in names:
        if name in present:
            continue
        column = table.__table__.columns[name]
        kind = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE {table.__tablename__} ADD COLUMN {name} {kind}")


def _step_to(connection: Connection, version: int) -> None:
    """Adds the tables (driver leases, version 3) and columns of ``version``."""
    Base.metadata.create_all(connection)  # creates only the missing tables
    for table, columns in _TABLES:
        _add_columns(connection, table, [c.name for c in columns if c.since == version])


def migrate(connection: Connection, version: int, target: int) -> bool:
    """Runs the steps from ``version`` to ``target``; False if ``version`` is too old."""
    if version < OLDEST:
        return False
    for step in range(version + 1, target + 1):
        _step_to(connection, step)
    return True
