"""The SQLAlchemy implementation of the results store (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, inspect, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from study.store._bulk import (
    EVALUATIONS,
    TRIALS,
    count_statuses,
    list_methods,
    read_evaluations,
    read_trials,
    study_version,
)
from study.store._engine import create_store_engine, parse_url, sqlite_path
from study.store._errors import StoreError
from study.store._leases import DriverLeases
from study.store._migrate import migrate
from study.store._models import (
    SCHEMA_VERSION,
    ArtifactRow,
    Base,
    EvaluationRow,
    MethodRunRow,
    RunStatus,
    SchemaInfo,
    StudyRow,
    TrialRow,
    TrialStatus,
    utcnow,
)
from study.store._records import (
    EVALUATION_COLUMNS,
    TRIAL_COLUMNS,
    ArtifactRecord,
    EvaluationRecord,
    MethodRunRecord,
    StudyRecord,
    TrialRecord,
    as_utc,
)
from study.store._schema import ColumnInfo, Kind
from study.store._session import SessionRunner, one_line
from study.store._url import redact_url, scrub
from trials.registry import unknown_name_message

T = TypeVar("T")

#: Trial columns :meth:`ResultStore.update_trial` may set, with their kinds.
TRIAL_FIELDS: dict[str, Kind] = {info.name: info.kind for info in TRIAL_COLUMNS}
#: Fields of one evaluation (those of ``trials.Evaluation``), with their kinds.
EVALUATION_FIELDS: dict[str, Kind] = {info.name: info.kind for info in EVALUATION_COLUMNS}
_REQUIRED = frozenset(info.name for info in (*TRIAL_COLUMNS, *EVALUATION_COLUMNS) if info.required)
_UNFINISHED = (TrialStatus.WAITING.value, TrialStatus.RUNNING.value)
_EMPTY_EVALUATION = {info.name: info.empty() for info in EVALUATION_COLUMNS}


def collect_versions() -> dict[str, str | None]:
    """Installed versions of paretune and its engines (without importing them)."""
    versions: dict[str, str | None] = {}
    for package in ("paretune", "torch", "ray", "optuna"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


class ResultStore(DriverLeases):
    """Results in a SQL database through SQLAlchemy (SQLite by default, PostgreSQL).

    Contract:
        * **Units of work.** Every method is one atomic transaction: it either fully
          happens or raises :class:`~study.store.StoreError` having changed nothing.
          Transient failures (a lost connection, a locked SQLite file) are retried with
          backoff for a bounded time before raising.
        * **Errors.** Every failure raises :class:`~study.store.StoreError` with a
          one-line message naming the database by its URL with the password hidden. The
          password never appears in a message, a log record or a stored value.
        * **Identity.** Study names are unique in a store. A method run is identified by
          ``(study, method, seed)``, a trial by its id (unique across the store) and by
          ``(method run, number)``; a trial's ``tune_trial_id`` is unique per method run,
          and an evaluation by ``(trial, iteration)``.
        * **Idempotence.** Re-adding a trial with a known ``tune_trial_id``, an evaluation
          of a known iteration or starting a known method run returns the existing row
          (nothing is overwritten), so a re-reported result is stored once.
        * **Time.** Timestamps are stored and returned as timezone-aware UTC.
        * **Concurrency.** An instance may be used from several threads. Processes open
          their own instance (never share one across ``fork``); several processes may
          write to one store at the same time. The study driver is the intended writer.
        * **Values.** JSON values are dicts/lists of plain scalars; NaN and infinities
          are stored as null (NULL for float columns).

    Opening connects once, creates the tables of a new database (unless ``create`` is
    false) and checks the schema version.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///runs/paretune.db`` or
            ``postgresql+psycopg://user:password@host/db``.
        create: create the tables (and the SQLite file) when missing; when false, a
            database without paretune tables raises.
        retry_timeout: how long one operation retries transient errors (seconds).

    Raises:
        StoreError: a malformed URL, an unreachable database, a missing database with
            ``create=False`` or a schema version this code does not read.

    Example:
        >>> store = ResultStore("sqlite://")
        >>> store.create_study("demo", {}, [("delta_t", "maximize")])
        1
    """

    def __init__(self, url: str, *, create: bool = True, retry_timeout: float = 30.0) -> None:
        parsed = parse_url(url)
        self.url = redact_url(parsed)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        path = sqlite_path(parsed)
        if path is not None and not create and not path.is_file():
            raise StoreError(f"database file {path} does not exist ({self.url})")
        self._engine = create_store_engine(parsed)
        self._runner = SessionRunner(self._engine, self.url, self._password, retry_timeout)
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except sa_exc.SQLAlchemyError as error:
            self._engine.dispose()
            raise StoreError(
                f"cannot connect to database {self.url}: {one_line(error, self._password)}"
            ) from None
        try:
            self._prepare_schema(create)
        except BaseException:
            self._engine.dispose()
            raise

    # --- plumbing ------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for bulk reads such as :func:`analysis.load_study`)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, ..."""
        return self._engine.dialect.name

    def run(self, work: Callable[[Session], T], *, write: bool = False) -> T:
        """``work(session)`` in one transaction with the store's commit, rollback, error
        translation and retries."""
        return self._runner.run(work, write=write)

    def close(self) -> None:
        """Releases connections; the store is not used afterwards."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"ResultStore({self.url!r})"

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _prepare_schema(self, create: bool) -> None:
        def work(session: Session) -> None:
            connection = session.connection()
            if not inspect(connection).has_table(SchemaInfo.__tablename__):
                if not create:
                    raise StoreError(f"database {self.url} holds no paretune results")
                Base.metadata.create_all(connection)
                session.add(SchemaInfo(id=1, version=SCHEMA_VERSION, created_at=utcnow()))
                return
            version = session.scalar(select(SchemaInfo.version).where(SchemaInfo.id == 1))
            older = version is not None and version < SCHEMA_VERSION
            if older and version is not None and migrate(connection, version, SCHEMA_VERSION):
                session.execute(
                    update(SchemaInfo).where(SchemaInfo.id == 1).values(version=SCHEMA_VERSION)
                )
                return
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.url} has results schema version {version} but this "
                    f"paretune uses version {SCHEMA_VERSION}; open it with a matching "
                    "paretune or use another database"
                )

        try:
            self._runner.run(work, write=True)
        except StoreError as error:
            # Another process may have created the tables at the same moment.
            if not isinstance(error.__cause__, sa_exc.IntegrityError | sa_exc.ProgrammingError):
                raise
            time.sleep(0.2)
            self._runner.run(work, write=True)

    def _write_idempotent(self, work: Callable[[Session], T], attempts: int = 5) -> T:
        """A write whose unique-key races (another writer won) are retried: the next
        attempt sees the other writer's row."""
        for attempt in range(1, attempts + 1):
            try:
                return self._runner.run(work, write=True)
            except StoreError as error:
                if attempt == attempts or not isinstance(error.__cause__, sa_exc.IntegrityError):
                    raise
        raise AssertionError("unreachable")

    def _clean(
        self, fields: Mapping[str, Any], kinds: Mapping[str, Kind], what: str
    ) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in fields.items():
            kind = kinds.get(name)
            if kind is None:
                raise StoreError(unknown_name_message(f"{what} field", name, list(kinds)))
            clean[name] = self._convert(name, value, kind)
        return clean

    def _convert(self, name: str, value: Any, kind: Kind) -> Any:
        if kind is Kind.JSON:
            if value is None:
                return {}
            if hasattr(value, "model_dump"):
                value = value.model_dump(mode="json")
            if not isinstance(value, Mapping):
                raise StoreError(f"{name} must be a mapping (got {type(value).__name__})")
            value = dict(value)
            return self._scrub_json(value) if name == "config" or self._password else value
        if value is None:
            if name in _REQUIRED:
                raise StoreError(f"{name} must be an integer (got None)")
            return None
        if kind is Kind.FLOAT:
            number = _number(name, value)
            return number if math.isfinite(number) else None
        if kind in (Kind.INT, Kind.COUNT):
            number = _number(name, value)
            if not float(number).is_integer():
                raise StoreError(f"{name} must be an integer (got {value!r})")
            return int(number)
        if kind is Kind.TIME:
            if not isinstance(value, datetime):
                raise StoreError(f"{name} must be a datetime (got {value!r})")
            return as_utc(value)
        if kind is Kind.BOOL:
            return bool(value)
        if kind is Kind.STATUS:
            try:
                return TrialStatus(str(value)).value
            except ValueError:
                raise StoreError(
                    unknown_name_message("trial status", str(value), list(TrialStatus))
                ) from None
        return scrub(str(value), self._password)

    def _scrub_json(self, value: Any) -> Any:
        """``value`` with URL passwords (and the store's password) hidden in strings."""
        if isinstance(value, str):
            return scrub(value, self._password)
        if isinstance(value, Mapping):
            return {k: self._scrub_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_json(v) for v in value]
        return value

    def _study_id(self, session: Session, name: str) -> int:
        study_id = session.scalar(select(StudyRow.id).where(StudyRow.name == name))
        if study_id is None:
            names = list(session.scalars(select(StudyRow.name)))
            if not names:
                raise StoreError(f"unknown study {name!r}; {self.url} holds no studies")
            raise StoreError(unknown_name_message("study", name, names))
        return study_id

    # --- studies -------------------------------------------------------------------------
    def create_study(
        self,
        name: str,
        config: Mapping[str, Any],
        objectives: Sequence[Sequence[str]],
        *,
        versions: Mapping[str, str | None] | None = None,
        exist_ok: bool = False,
    ) -> int:
        """Records a new study and returns its id.

        Raises:
            StoreError: the name exists and ``exist_ok`` is false.
        """
        if not isinstance(name, str) or not name:
            raise StoreError(f"a study name must be a non-empty string (got {name!r})")
        pairs = _objectives(objectives)
        found = dict(collect_versions() if versions is None else versions)
        stored_config = self._convert("config", config, Kind.JSON)

        def work(session: Session) -> int:
            existing = session.scalar(select(StudyRow.id).where(StudyRow.name == name))
            if existing is not None:
                if exist_ok:
                    return existing
                raise StoreError(f"study {name!r} already exists in {self.url}")
            row = StudyRow(
                name=name,
                config=stored_config,
                objectives=[list(p) for p in pairs],
                status=RunStatus.CREATED.value,
                created_at=utcnow(),
                paretune_version=found.get("paretune"),
                torch_version=found.get("torch"),
                ray_version=found.get("ray"),
                optuna_version=found.get("optuna"),
            )
            session.add(row)
            session.flush()
            return row.id

        return self._write_idempotent(work)

    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; an unknown name raises listing the known ones."""

        def work(session: Session) -> StudyRecord:
            row = session.get(StudyRow, self._study_id(session, name))
            assert row is not None
            return _study_record(row)

        return self._runner.run(work)

    def list_studies(self) -> list[StudyRecord]:
        """Every study, oldest first."""

        def work(session: Session) -> list[StudyRecord]:
            rows = session.scalars(select(StudyRow).order_by(StudyRow.id))
            return [_study_record(row) for row in rows]

        return self._runner.run(work)

    def set_study_status(self, name: str, status: str) -> None:
        """Sets a study's status (a :class:`~study.store.RunStatus` value)."""
        value = _run_status(status)

        def work(session: Session) -> None:
            study_id = self._study_id(session, name)
            session.execute(update(StudyRow).where(StudyRow.id == study_id).values(status=value))

        self._runner.run(work, write=True)

    def set_study_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Replaces a study's stored config (``resume --config`` extending the budget)."""
        stored = self._convert("config", config, Kind.JSON)

        def work(session: Session) -> None:
            study_id = self._study_id(session, name)
            session.execute(update(StudyRow).where(StudyRow.id == study_id).values(config=stored))

        self._runner.run(work, write=True)

    def delete_study(self, name: str) -> None:
        """Removes a study with its method runs, trials, evaluations and artifact rows."""

        def work(session: Session) -> None:
            study_id = self._study_id(session, name)
            runs = select(MethodRunRow.id).where(MethodRunRow.study_id == study_id)
            trials = select(TrialRow.id).where(TrialRow.method_run_id.in_(runs))
            for table, where in (
                (EvaluationRow, EvaluationRow.trial_id.in_(trials)),
                (ArtifactRow, ArtifactRow.trial_id.in_(trials)),
                (TrialRow, TrialRow.method_run_id.in_(runs)),
                (MethodRunRow, MethodRunRow.study_id == study_id),
                (StudyRow, StudyRow.id == study_id),
            ):
                session.execute(
                    delete(table).where(where), execution_options={"synchronize_session": False}
                )

        self._runner.run(work, write=True)

    # --- method runs ---------------------------------------------------------------------
    def start_method_run(
        self,
        study: str,
        method: str,
        seed: int,
        *,
        search_space: Mapping[str, Any] | None = None,
        optuna_study_name: str | None = None,
    ) -> int:
        """Marks the run of ``method`` with ``seed`` RUNNING, creating it if new; its id."""
        space = (
            None if search_space is None else self._convert("search_space", search_space, Kind.JSON)
        )

        def work(session: Session) -> int:
            study_id = self._study_id(session, study)
            row = session.scalar(
                select(MethodRunRow).where(
                    MethodRunRow.study_id == study_id,
                    MethodRunRow.method == method,
                    MethodRunRow.seed == seed,
                )
            )
            if row is None:
                row = MethodRunRow(
                    study_id=study_id,
                    method=method,
                    seed=int(seed),
                    search_space=space or {},
                    started_at=utcnow(),
                )
                session.add(row)
            elif space is not None:
                row.search_space = space
            if optuna_study_name is not None:
                row.optuna_study_name = optuna_study_name
            row.status = RunStatus.RUNNING.value
            row.finished_at = None
            session.flush()
            return row.id

        return self._write_idempotent(work)

    def finish_method_run(self, method_run_id: int, status: str = "COMPLETE") -> None:
        """Marks a method run finished with ``status``."""
        value = _run_status(status)

        def work(session: Session) -> None:
            result = session.execute(
                update(MethodRunRow)
                .where(MethodRunRow.id == method_run_id)
                .values(status=value, finished_at=utcnow()),
                execution_options={"synchronize_session": False},
            )
            if _rowcount(result) == 0:
                raise StoreError(f"unknown method run {method_run_id} in {self.url}")

        self._runner.run(work, write=True)

    def method_runs_of(self, study: str) -> list[MethodRunRecord]:
        """The method runs of a study, by method then seed."""

        def work(session: Session) -> list[MethodRunRecord]:
            study_id = self._study_id(session, study)
            rows = session.scalars(
                select(MethodRunRow)
                .where(MethodRunRow.study_id == study_id)
                .order_by(MethodRunRow.method, MethodRunRow.seed)
            )
            return [
                MethodRunRecord(
                    id=r.id,
                    study=study,
                    method=r.method,
                    seed=r.seed,
                    search_space=r.search_space or {},
                    optuna_study_name=r.optuna_study_name,
                    status=r.status,
                    started_at=as_utc(r.started_at),
                    finished_at=as_utc(r.finished_at),
                )
                for r in rows
            ]

        return self._runner.run(work)

    # --- trials --------------------------------------------------------------------------
    def _trial_row(
        self, run: MethodRunRow, values: Mapping[str, Any], number: int
    ) -> dict[str, Any]:
        fields = self._clean(values, TRIAL_FIELDS, "trial")
        row: dict[str, Any] = {
            "method_run_id": run.id,
            "number": number,
            **{info.name: info.empty() for info in TRIAL_COLUMNS},
            "seed": run.seed,
        }
        row.update(fields)
        if row["started_at"] is None and row["status"] != TrialStatus.WAITING.value:
            row["started_at"] = utcnow()
        return row

    def _method_run(
        self, session: Session, method_run_id: int, *, lock: bool = False
    ) -> MethodRunRow:
        # ``lock``: hold the run's row until commit so that concurrent writers of one run
        # take trial numbers in turn (PostgreSQL; SQLite writers are serialized anyway).
        run = session.get(
            MethodRunRow, method_run_id, with_for_update={"key_share": True} if lock else None
        )
        if run is None:
            raise StoreError(f"unknown method run {method_run_id} in {self.url}")
        return run

    def add_trial(
        self,
        method_run_id: int,
        *,
        params: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        number: int | None = None,
        status: str = "RUNNING",
        tune_trial_id: str | None = None,
        **fields: Any,
    ) -> int:
        """Records a trial and returns its id (the next free ``number`` if not given).

        ``fields`` are further trial columns (see :meth:`update_trial`). A trial whose
        ``tune_trial_id`` is already stored in the method run is not added again: its
        existing id is returned.
        """
        values: dict[str, Any] = {
            "params": params,
            "config": config,
            "status": status,
            "tune_trial_id": tune_trial_id,
            **fields,
        }
        if seed is not None:
            values["seed"] = seed

        def work(session: Session) -> int:
            run = self._method_run(session, method_run_id, lock=True)
            if tune_trial_id is not None:
                existing = session.scalar(
                    select(TrialRow.id).where(
                        TrialRow.method_run_id == run.id,
                        TRIALS.tune_trial_id == str(tune_trial_id),
                    )
                )
                if existing is not None:
                    return existing
            if number is None:
                chosen = _next_number(session, run.id)
            else:
                chosen = int(number)
                taken = session.scalar(
                    select(TrialRow.id).where(
                        TrialRow.method_run_id == run.id, TrialRow.number == chosen
                    )
                )
                if taken is not None:
                    raise StoreError(
                        f"trial number {chosen} already exists in method run {run.id} "
                        f"({run.method}, seed {run.seed})"
                    )
            row = TrialRow(**self._trial_row(run, values, chosen))
            session.add(row)
            session.flush()
            return row.id

        return self._write_idempotent(work)

    def add_trials(self, method_run_id: int, trials: Sequence[Mapping[str, Any]]) -> list[int]:
        """Records many trials at once (each a mapping of :meth:`add_trial`'s arguments);
        their ids in order."""
        if not trials:
            return []

        def work(session: Session) -> list[int]:
            run = self._method_run(session, method_run_id, lock=True)
            start = _next_number(session, run.id)
            rows = []
            for offset, trial in enumerate(trials):
                values = dict(trial)
                number = values.pop("number", None)
                rows.append(
                    self._trial_row(run, values, start + offset if number is None else int(number))
                )
            result = session.execute(
                insert(TrialRow).returning(TrialRow.id, sort_by_parameter_order=True), rows
            )
            return list(result.scalars())

        return self._write_idempotent(work)

    def update_trial(self, trial_id: int, **fields: Any) -> None:
        """Sets trial columns (an unknown column name raises listing the valid ones)."""
        if not fields:
            return
        values = self._clean(fields, TRIAL_FIELDS, "trial")

        def work(session: Session) -> None:
            result = session.execute(
                update(TrialRow).where(TrialRow.id == trial_id).values(**values),
                execution_options={"synchronize_session": False},
            )
            if _rowcount(result) == 0:
                raise StoreError(f"unknown trial {trial_id} in {self.url}")

        self._write_idempotent(work)

    def _trial_query(self) -> Any:
        return (
            select(TrialRow, MethodRunRow.method, StudyRow.name)
            .join(MethodRunRow, TrialRow.method_run_id == MethodRunRow.id)
            .join(StudyRow, MethodRunRow.study_id == StudyRow.id)
        )

    def get_trial(self, trial_id: int) -> TrialRecord:
        """One trial by id."""

        def work(session: Session) -> TrialRecord:
            found = session.execute(self._trial_query().where(TrialRow.id == trial_id)).first()
            if found is None:
                raise StoreError(f"unknown trial {trial_id} in {self.url}")
            return _trial_record(*found)

        return self._runner.run(work)

    def _filters(
        self,
        study_id: int,
        method: str | None,
        seed: int | None,
        status: str | Iterable[str] | None,
        is_reference: bool | None,
    ) -> list[Any]:
        where: list[Any] = [MethodRunRow.study_id == study_id]
        if method is not None:
            where.append(MethodRunRow.method == method)
        if seed is not None:
            where.append(TRIALS.seed == seed)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(TRIALS.status.in_([TrialStatus(s).value for s in statuses]))
        if is_reference is not None:
            where.append(TRIALS.is_reference.is_(is_reference))
        return where

    def trials_of(
        self,
        study: str,
        *,
        method: str | None = None,
        seed: int | None = None,
        status: str | Iterable[str] | None = None,
    ) -> list[TrialRecord]:
        """The trials of a study, optionally filtered, in insertion order."""

        def work(session: Session) -> list[TrialRecord]:
            where = self._filters(self._study_id(session, study), method, seed, status, None)
            rows = session.execute(self._trial_query().where(*where).order_by(TrialRow.id))
            return [_trial_record(*row) for row in rows]

        return self._runner.run(work)

    def count_trials(
        self,
        study: str,
        *,
        method: str | None = None,
        seed: int | None = None,
        status: str | Iterable[str] | None = None,
        is_reference: bool | None = None,
    ) -> int:
        """How many trials match."""

        def work(session: Session) -> int:
            where = self._filters(
                self._study_id(session, study), method, seed, status, is_reference
            )
            query = (
                select(func.count(TrialRow.id))
                .join(MethodRunRow, TrialRow.method_run_id == MethodRunRow.id)
                .where(*where)
            )
            return int(session.scalar(query) or 0)

        return self._runner.run(work)

    def reference_trial(self, study: str, seed: int | None = None) -> TrialRecord | None:
        """The latest COMPLETE dense reference trial (for ``seed`` if given), if any."""

        def work(session: Session) -> TrialRecord | None:
            where = self._filters(
                self._study_id(session, study), None, seed, TrialStatus.COMPLETE.value, True
            )
            row = session.execute(
                self._trial_query().where(*where).order_by(TrialRow.id.desc()).limit(1)
            ).first()
            return None if row is None else _trial_record(*row)

        return self._runner.run(work)

    def mark_running_as_failed(self, study: str, reason: str) -> int:
        """Marks the study's WAITING and RUNNING trials FAILED with ``reason`` as error
        (their driver is gone); returns how many changed. Used when resuming."""

        def work(session: Session) -> int:
            runs = select(MethodRunRow.id).where(
                MethodRunRow.study_id == self._study_id(session, study)
            )
            result = session.execute(
                update(TrialRow)
                .where(TrialRow.method_run_id.in_(runs), TRIALS.status.in_(_UNFINISHED))
                .values(status=TrialStatus.FAILED.value, error=str(reason), finished_at=utcnow()),
                execution_options={"synchronize_session": False},
            )
            return int(_rowcount(result))

        return self._runner.run(work, write=True)

    # --- bulk reads (analysis) -------------------------------------------------------
    def trial_columns(
        self, studies: Sequence[str], columns: Sequence[str] | None = None
    ) -> dict[str, list[Any]]:
        """Every trial of ``studies`` column by column, in id order: ``study``,
        ``method``, ``trial_id``, ``number``, then every stored column of
        :class:`~study.store.TrialRecord` (JSON parsed), or only those named in
        ``columns``."""
        stored = TRIAL_COLUMNS
        if columns is not None:
            unknown = sorted(set(columns) - set(TRIAL_FIELDS))
            if unknown:
                raise StoreError(
                    unknown_name_message("trial field", unknown[0], list(TRIAL_FIELDS))
                )
            stored = tuple(info for info in TRIAL_COLUMNS if info.name in columns)
        return self._runner.run(lambda s: read_trials(s, self._study_ids(s, studies), stored))

    def evaluation_columns(self, studies: Sequence[str]) -> dict[str, list[Any]]:
        """Every evaluation of ``studies`` column by column, by trial and iteration:
        ``study``, ``method``, ``trial_id``, ``seed``, then every stored column of
        :class:`~study.store.EvaluationRecord`."""
        return self._runner.run(lambda s: read_evaluations(s, self._study_ids(s, studies)))

    def study_version(self, study: str) -> tuple[Any, ...]:
        """A value that changes whenever the study's status, trials or evaluations change
        (for readers that reload only then, such as the dashboard)."""
        return self._runner.run(lambda s: study_version(s, self._study_id(s, study)))

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Study name -> trial status -> how many trials (studies with trials only)."""
        return self._runner.run(count_statuses)

    def methods_by_study(self) -> dict[str, list[str]]:
        """Study name -> the sorted names of its method runs."""
        return self._runner.run(list_methods)

    def _study_ids(self, session: Session, names: Sequence[str]) -> list[int]:
        return [self._study_id(session, name) for name in names]

    # --- evaluations and artifacts -------------------------------------------------------
    def add_evaluation(self, trial_id: int, evaluation: Mapping[str, Any]) -> bool:
        """Records one evaluation (the fields of ``trials.Evaluation``); False if that
        iteration was already stored (then nothing changes)."""
        return self.add_evaluations(trial_id, [evaluation]) == 1

    def add_evaluations(self, trial_id: int, evaluations: Iterable[Mapping[str, Any]]) -> int:
        """Records several evaluations, skipping stored iterations; how many were new."""
        rows: dict[int, dict[str, Any]] = {}
        for evaluation in evaluations:
            if hasattr(evaluation, "model_dump"):
                evaluation = evaluation.model_dump(mode="json")
            if "iteration" not in evaluation:
                raise StoreError("an evaluation needs an 'iteration'")
            row = self._clean(evaluation, EVALUATION_FIELDS, "evaluation")
            rows.setdefault(row["iteration"], row)
        if not rows:
            return 0

        def work(session: Session) -> int:
            if session.get(TrialRow, trial_id) is None:
                raise StoreError(f"unknown trial {trial_id} in {self.url}")
            stored = set(
                session.scalars(
                    select(EVALUATIONS.iteration).where(EvaluationRow.trial_id == trial_id)
                )
            )
            new = [
                {"trial_id": trial_id, **_EMPTY_EVALUATION, **row}
                for iteration, row in rows.items()
                if iteration not in stored
            ]
            if new:
                session.execute(insert(EvaluationRow), new)
            return len(new)

        return self._write_idempotent(work)

    def evaluations_of(self, trial_id: int) -> list[EvaluationRecord]:
        """A trial's evaluations by iteration."""

        def work(session: Session) -> list[EvaluationRecord]:
            rows = session.scalars(
                select(EvaluationRow)
                .where(EvaluationRow.trial_id == trial_id)
                .order_by(EVALUATIONS.iteration)
            )
            return [
                EvaluationRecord(id=r.id, trial_id=r.trial_id, **_stored(r, EVALUATION_COLUMNS))
                for r in rows
            ]

        return self._runner.run(work)

    def add_artifact(self, trial_id: int, kind: str, path: str, size: int | None = None) -> int:
        """Records a file a trial produced; its id."""
        if size is None and Path(path).is_file():
            size = Path(path).stat().st_size

        def work(session: Session) -> int:
            if session.get(TrialRow, trial_id) is None:
                raise StoreError(f"unknown trial {trial_id} in {self.url}")
            row = ArtifactRow(
                trial_id=trial_id, kind=str(kind), path=str(path), size=size, created_at=utcnow()
            )
            session.add(row)
            session.flush()
            return row.id

        return self._runner.run(work, write=True)

    def artifacts_of(self, trial_id: int) -> list[ArtifactRecord]:
        """A trial's artifacts, oldest first."""

        def work(session: Session) -> list[ArtifactRecord]:
            rows = session.scalars(
                select(ArtifactRow).where(ArtifactRow.trial_id == trial_id).order_by(ArtifactRow.id)
            )
            return [
                ArtifactRecord(
                    id=r.id,
                    trial_id=r.trial_id,
                    kind=r.kind,
                    path=r.path,
                    size=r.size,
                    created_at=as_utc(r.created_at),
                )
                for r in rows
            ]

        return self._runner.run(work)


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (a ``CursorResult``)."""
    return int(result.rowcount)


def _number(name: str, value: Any) -> float:
    """``value`` as a Python number (numpy scalars included); booleans are refused."""
    if not isinstance(value, bool) and hasattr(value, "item") and not hasattr(value, "__len__"):
        value = value.item()  # numpy scalars
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StoreError(f"{name} must be a number (got {value!r})")
    return value


def _next_number(session: Session, method_run_id: int) -> int:
    last = session.scalar(
        select(func.max(TrialRow.number)).where(TrialRow.method_run_id == method_run_id)
    )
    return 0 if last is None else int(last) + 1


def _objectives(objectives: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in objectives:
        if isinstance(item, str) or len(item) != 2:
            raise StoreError(f"an objective must be a (name, direction) pair (got {item!r})")
        name, direction = str(item[0]), str(item[1])
        if direction not in ("maximize", "minimize"):
            raise StoreError(
                f"direction of objective {name!r} must be 'maximize' or 'minimize' "
                f"(got {direction!r})"
            )
        pairs.append((name, direction))
    if not pairs:
        raise StoreError("a study needs at least one objective")
    return pairs


def _run_status(status: str) -> str:
    try:
        return RunStatus(str(status)).value
    except ValueError:
        raise StoreError(unknown_name_message("run status", str(status), list(RunStatus))) from None


def _study_record(row: StudyRow) -> StudyRecord:
    return StudyRecord(
        id=row.id,
        name=row.name,
        config=row.config or {},
        objectives=[(str(n), str(d)) for n, d in row.objectives],
        status=row.status,
        created_at=as_utc(row.created_at),
        versions={
            "paretune": row.paretune_version,
            "torch": row.torch_version,
            "ray": row.ray_version,
            "optuna": row.optuna_version,
        },
    )


def _stored(row: Any, columns: tuple[ColumnInfo, ...]) -> dict[str, Any]:
    """The stored columns of a row as record fields (JSON NULL as {}, times as UTC)."""
    values = {}
    for info in columns:
        value = getattr(row, info.name)
        if info.kind is Kind.JSON:
            value = value or {}
        elif info.kind is Kind.TIME:
            value = as_utc(value)
        elif info.kind is Kind.BOOL:
            value = bool(value)
        elif value is None and info.default is not None:
            value = info.default
        values[info.name] = value
    return values


def _trial_record(row: TrialRow, method: str, study: str) -> TrialRecord:
    return TrialRecord(
        id=row.id,
        study=study,
        method=method,
        method_run_id=row.method_run_id,
        number=row.number,
        **_stored(row, TRIAL_COLUMNS),
    )
