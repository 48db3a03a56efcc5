"""Store fixtures: one throwaway PostgreSQL server per session, a fresh database per test.

``store_url`` runs a test on both backends: a SQLite file and a PostgreSQL database. The
PostgreSQL tests are marked ``postgres`` and fail (never skip) when the server cannot be
started, so a machine without PostgreSQL cannot pass them silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.postgres import PostgresServer, PostgresUnavailableError


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (stopped and deleted after)."""
    try:
        server = PostgresServer()
    except PostgresUnavailableError as error:
        pytest.fail(f"cannot start PostgreSQL for the tests marked postgres: {error}")
    with server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped after the test)."""
    if not postgres_server.running:  # a fault test failed between stop() and start()
        postgres_server.start()
    url = postgres_server.create_database()
    yield url
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.drop_database(str(make_url(url).database))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file (not created yet) in the test's folder."""
    return f"sqlite:///{tmp_path}/runs/paretune.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """An empty store URL: a SQLite file, then a PostgreSQL database."""
    return str(request.getfixturevalue(f"{request.param}_url"))
