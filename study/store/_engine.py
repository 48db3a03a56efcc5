"""Engines for the results store: SQLite tuned for concurrent writers, PostgreSQL pooled."""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from study.store._errors import StoreError
from study.store._url import redact_url

#: How long a SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Execution option marking a connection that will write (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "paretune_write"


def _plain(value: Any) -> Any:
    """``value`` made JSON-clean: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return _plain(_default(value))


def _default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "model_dump"):  # pydantic models
        return value.model_dump(mode="json")
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


def json_dumps(value: Any) -> str:
    """JSON for the store: strict (no NaN, valid on PostgreSQL), compact."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_default)
    except ValueError:  # NaN or infinity somewhere: store them as null
        return json.dumps(_plain(value), allow_nan=False, separators=(",", ":"))


def is_sqlite_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database."""
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:")


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (``None`` for an in-memory database or another backend)."""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database).expanduser()


def parse_url(url: str | URL) -> URL:
    """``make_url`` with a :class:`StoreError` (password hidden) for a malformed URL."""
    try:
        return make_url(url)
    except Exception:  # the parser's own message may quote the password
        raise StoreError(
            f"invalid database URL {redact_url(url)!r}: expected dialect[+driver]://..., "
            "e.g. sqlite:///paretune.db"
        ) from None


def create_store_engine(url: str | URL) -> Engine:
    """An engine suited to the results store.

    SQLite: the parent folder of the file is created; every connection gets WAL
    journaling, a 30 s busy timeout and foreign keys; transactions that write start with
    ``BEGIN IMMEDIATE`` (requested through the ``paretune_write`` execution option), so
    concurrent writers queue instead of failing. PostgreSQL: ``pool_pre_ping``, a small
    pool and a connect timeout. The engine is not connected yet.

    Raises:
        StoreError: a malformed URL or a SQLite folder that cannot be created.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    common: dict[str, Any] = {"json_serializer": json_dumps}
    if backend == "sqlite":
        return _sqlite_engine(parsed, common)
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if parsed.get_driver_name() in ("psycopg", "psycopg2") and (
            "connect_timeout" not in parsed.query
        ):
            connect_args["connect_timeout"] = 10
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=2,
            connect_args=connect_args,
            **common,
        )
    return create_engine(parsed, pool_pre_ping=True, **common)


def _sqlite_engine(url: URL, common: dict[str, Any]) -> Engine:
    path = sqlite_path(url)
    kwargs: dict[str, Any] = dict(common)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if path is None:
        kwargs["poolclass"] = StaticPool  # one shared connection keeps the data alive
        connect_args["check_same_thread"] = False
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the folder {path.parent} for database {redact_url(url)}: "
                f"{error.strerror or error}"
            ) from None
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """WAL journaling, a commit without fsync (WAL checkpoints sync) and the busy timeout:
    a ``connect`` listener for any engine on a study's SQLite file (Optuna's too)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control from the sqlite3 module: BEGIN is emitted in
    # ``_sqlite_on_begin`` (DEFERRED to read, IMMEDIATE to write).
    dbapi_connection.isolation_level = None
    sqlite_pragmas(dbapi_connection)
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _sqlite_on_begin(connection: Any) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
