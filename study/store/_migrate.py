"""Brings a results database of an older schema version up to :data:`SCHEMA_VERSION`.

Each step only adds (tables, nullable columns), so a migrated database still holds every
study, trial and evaluation it held, and a failed step changes nothing (it runs inside the
transaction of the schema check).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect

from study.store._models import Base, EvaluationRow, TrialRow


def _add_columns(connection: Connection, table: type[Base], names: tuple[str, ...]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for the ``names`` the table lacks."""
    present = {column["name"] for column in inspect(connection).get_columns(table.__tablename__)}
    for name in names:
        if name in present:
            continue
        column = table.__table__.columns[name]
        kind = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE {table.__tablename__} ADD COLUMN {name} {kind}")


def _to_3(connection: Connection) -> None:
    """Driver leases; a trial's ``search_error``; per-task Delta_T, FLOPs and parameters of
    evaluations."""
    Base.metadata.create_all(connection)  # creates only the missing tables
    _add_columns(connection, TrialRow, ("search_error",))
    _add_columns(connection, EvaluationRow, ("delta_t_per_task", "flops", "parameters"))


def _to_4(connection: Connection) -> None:
    """Delta_m of trials and evaluations."""
    _add_columns(connection, TrialRow, ("delta_m",))
    _add_columns(connection, EvaluationRow, ("delta_m",))


#: ``version -> step`` bringing a database of that version to the next one.
STEPS: dict[int, Callable[[Connection], None]] = {2: _to_3, 3: _to_4}


def migrate(connection: Connection, version: int, target: int) -> bool:
    """Runs the steps from ``version`` to ``target``; False if some step is unknown."""
    if not all(v in STEPS for v in range(version, target)):
        return False
    for step in range(version, target):
        STEPS[step](connection)
    return True
