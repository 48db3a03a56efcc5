"""A throwaway PostgreSQL server for tests: its own cluster in a temporary folder.

The server listens only on 127.0.0.1 (a free port) and on a Unix socket inside its
folder; a password-protected role ``paretune`` owns a database ``paretune``. Debian's
server binaries (``/usr/lib/postgresql/<version>/bin``) are used; when the tests run as
root (as in CI), ``initdb`` and ``pg_ctl`` run as the ``postgres`` user through
``runuser``, since PostgreSQL refuses to run as root.

Example:
    >>> with PostgresServer() as server:  # doctest: +SKIP
    ...     store = ResultStore(server.url)
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

#: The role tests connect as (its password is random per server).
ROLE = "paretune"
#: The database the role owns from the start.
DATABASE = "paretune"
#: The operating-system user that runs the server when the tests run as root.
SERVER_USER = "postgres"
#: Where Debian installs the server binaries.
BINARY_GLOB = "/usr/lib/postgresql/*/bin"
#: Server settings for fast, disposable tests (a clean shutdown still writes all data).
SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "60",
    "shared_buffers": "32MB",
    # Not UTC on purpose: timestamps must come back as the same instant anyway.
    "timezone": "Asia/Kolkata",
}
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be found or started."""


def find_binaries(pattern: str = BINARY_GLOB) -> Path:
    """The folder holding the newest ``initdb`` and ``pg_ctl`` among those matching
    ``pattern`` (Debian's by default).

    Raises:
        PostgresUnavailableError: no PostgreSQL server binaries are installed.
    """
    folders = [Path(p) for p in glob.glob(pattern)]
    found = [f for f in folders if (f / "initdb").is_file() and (f / "pg_ctl").is_file()]
    if not found:
        raise PostgresUnavailableError(
            f"no PostgreSQL server binaries (initdb, pg_ctl) in {pattern}; "
            "run `make test`, which installs Debian's postgresql package"
        )
    return max(found, key=lambda f: _version(f.parent.name))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (0,)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A disposable PostgreSQL cluster on 127.0.0.1, started on construction.

    Args:
        binaries: the folder of ``initdb``/``pg_ctl`` (found automatically if omitted).
        port: the TCP port (a free one if omitted).

    Attributes:
        port: the TCP port on 127.0.0.1.
        password: the password of the role ``paretune``.
        root: the temporary folder holding the data, the socket and the log.

    Raises:
        PostgresUnavailableError: the binaries are missing or the server did not start
            (the message quotes the end of the server log).
    """

    def __init__(self, binaries: Path | None = None, port: int | None = None) -> None:
        self.binaries = find_binaries(
            BINARY_GLOB if binaries is None else glob.escape(str(binaries))
        )
        self._as_server_user = os.geteuid() == 0
        if self._as_server_user:
            try:
                self._owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailableError(
                    f"the tests run as root but there is no {SERVER_USER!r} user to run "
                    "PostgreSQL as; run `make test`, which installs Debian's postgresql "
                    "package"
                ) from None
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="paretune-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self._lock = threading.Lock()
        self._counter = 0
        self._closed = False
        self._running = False
        atexit.register(self.close)
        try:
            self._init_cluster()
            self.start()
            self._bootstrap()
        except BaseException:
            self.close()
            raise

    # --- addresses -----------------------------------------------------------------------
    def url_of(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` as role ``paretune`` over 127.0.0.1."""
        return f"postgresql+psycopg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database ``paretune``."""
        return self.url_of(DATABASE)

    def socket_url_of(self, database: str) -> str:
        """The URL of ``database`` over the server's Unix socket: reachable from inside
        network namespaces, whose 127.0.0.1 is their own."""
        return (
            f"postgresql+psycopg://{ROLE}:{self.password}@/{database}"
            f"?host={self.sockets}&port={self.port}"
        )

    @property
    def running(self) -> bool:
        """Whether the server was started and not stopped since."""
        return self._running

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Starts the server (again) and waits until it accepts connections.

        Raises:
            PostgresUnavailableError: the server did not start.
        """
        options = f"-h 127.0.0.1 -p {self.port} -k {self.sockets}"
        options += "".join(f" -c {key}={value}" for key, value in SETTINGS.items())
        self._pg_ctl(["start", "-w", "-t", "30", "-l", str(self.log), "-o", options])
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """Stops the server: ``fast`` ends open sessions and shuts down cleanly,
        ``immediate`` stops at once like a crash."""
        self._pg_ctl(["stop", "-w", "-t", "30", "-m", mode])
        self._running = False

    def close(self) -> None:
        """Stops the server (if running) and deletes its folder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self.data.is_dir() and (self.data / "postmaster.pid").exists():
                self._pg_ctl(["stop", "-w", "-t", "30", "-m", "immediate"])
        self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- databases -----------------------------------------------------------------------
    def create_database(self, name: str | None = None) -> str:
        """Creates an empty database owned by ``paretune``; its SQLAlchemy URL.

        Args:
            name: the database name (``test_<n>`` if omitted).
        """
        if name is None:
            with self._lock:
                self._counter += 1
                name = f"test_{self._counter}"
        self._check_name(name)
        self.execute(f"CREATE DATABASE {name} OWNER {ROLE} STRATEGY file_copy")
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drops a database, ending its open sessions first."""
        self._check_name(name)
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Runs one statement as the superuser over the Unix socket (autocommit); its rows."""
        import psycopg

        with psycopg.connect(
            host=str(self.sockets),
            port=self.port,
            user=SERVER_USER,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            cursor = connection.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []

    # --- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"database name must match {_NAME.pattern} (got {name!r})")

    def _init_cluster(self) -> None:
        self.data.mkdir()
        self.sockets.mkdir()
        if self._as_server_user:
            for path in (self.root, self.data, self.sockets):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        self.data.chmod(0o700)
        self._run(
            [
                str(self.binaries / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SERVER_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )

    def _bootstrap(self) -> None:
        self.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
        self.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def _pg_ctl(self, arguments: list[str]) -> None:
        self._run([str(self.binaries / "pg_ctl"), "-D", str(self.data), *arguments])

    def _run(self, command: list[str]) -> None:
        if self._as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        try:
            result = subprocess.run(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PostgresUnavailableError(
                f"cannot run {command[0]}: {error}; run `make test`, which installs "
                "Debian's postgresql package"
            ) from None
        if result.returncode != 0:
            program = next(c for c in command if c.startswith(str(self.binaries)))
            arguments = command[command.index(program) + 1 :]
            raise PostgresUnavailableError(
                f"{Path(program).name} {' '.join(arguments)} failed (exit "
                f"{result.returncode}): {self._tail(result.stdout + result.stderr)}"
            )

    def _tail(self, output: str) -> str:
        text = output.strip()
        if self.log.is_file():
            with contextlib.suppress(OSError):
                text += " | server log: " + self.log.read_text(errors="replace")[-1500:]
        return " ".join(text.split())[-2500:]


def start_for_tests() -> PostgresServer:
    """A new server for a test; the test fails (never skips) when PostgreSQL cannot start."""
    import pytest

    try:
        return PostgresServer()
    except PostgresUnavailableError as error:
        pytest.fail(f"cannot start PostgreSQL for the tests marked postgres: {error}")
