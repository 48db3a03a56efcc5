"""``paretune check CONFIG``: a study's pre-flight, before hours of GPU time are spent.

It checks, in order, and prints one line per finding (``ok``, ``warn`` or ``FAIL``):

1. ``config``: the config is valid, every method and parameter names something real;
2. ``data``: the data folder holds the expected splits and files, and sampled samples load
   with shapes a batch can hold (sizes against the standard release where one is known);
3. ``ray``: the Ray address is reachable and accepts this process (its token), and its
   nodes' CPUs and GPUs fit ``resources`` (without an address: this machine);
4. ``database`` and ``study``: the results database is reachable and writable (probed in a
   transaction that is rolled back) and the study name is free, or resumable;
5. ``estimate``: trials, GPU-hours (or CPU-hours) and wall time, scaled from a few timed
   iterations of each method on this machine's device.

It writes nothing: no study folder, no database table or row (a procedural data set is
rendered into a temporary cache that is removed). Any ``FAIL`` ends it with exit code 2.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from study._console import console
from study._errors import UserInputError

if TYPE_CHECKING:
    from study._cluster import NodeInfo
    from study._config import StudyConfig
    from trials._timing import TrialTiming

Status = Literal["ok", "warn", "fail"]
#: Batch size of an evaluation pass (``trials._trainer.evaluate``).
EVALUATION_BATCH = 64


@dataclass(frozen=True)
class Finding:
    """One result of the pre-flight: a status, what it is about, and one sentence."""

    status: Status
    topic: str
    text: str

    def line(self) -> str:
        shown = "FAIL" if self.status == "fail" else self.status
        return f"{shown:<4}  {self.topic}: {self.text}"


class CheckFailed(UserInputError):
    """``paretune check`` found problems (exit code 2); each was printed on its line."""


Report = Callable[[Finding], None]


@contextlib.contextmanager
def _temporary_cache() -> Iterator[None]:
    """Procedural data sets render into a temporary cache, removed afterwards."""
    from trials.data._cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="paretune-check-") as folder:
        os.environ[CACHE_ENV] = folder
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = before


def check_command(
    config_path: Path,
    address: str | None = None,
    samples: int = 8,
    iterations: int = 3,
    estimate: bool = True,
) -> list[Finding]:
    """``paretune check CONFIG``: prints every finding; raises :class:`CheckFailed` if any
    is a failure. An unreadable or invalid config file is one error line."""
    from study._config import load_config

    if samples < 1 or iterations < 1:
        raise UserInputError("--samples and --iterations must be at least 1")
    config = load_config(config_path)
    if address is not None:
        config = config.model_copy(update={"ray_address": address})
    findings: list[Finding] = []

    def report(finding: Finding) -> None:
        findings.append(finding)
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[finding.status]
        console.print(finding.line(), style=style, markup=False, highlight=False, soft_wrap=True)

    with _temporary_cache():
        valid = check_config(config, config_path, report)
        held_out = check_data(config, samples, report) if valid else None
        nodes = check_ray(config, report)
        check_database(config, report)
        if estimate and held_out is not None:
            estimate_cost(config, iterations, held_out, nodes, report)
    failures = sum(finding.status == "fail" for finding in findings)
    if failures:
        raise CheckFailed(f"{failures} problem(s) found; nothing was written")
    console.print("ready: nothing was written", markup=False, highlight=False)
    return findings


# --- config ------------------------------------------------------------------------------
def _run_counts(config: StudyConfig) -> tuple[int, int]:
    """``(references, other trials)`` the study runs."""
    seeds = len(config.budget.seeds)
    references = seeds if config.reference.enabled else 0
    others = sum(config.trials_for(spec.run_name) for spec in config.methods) * seeds
    return references, others


def check_config(config: StudyConfig, path: Path, report: Report) -> bool:
    """Every trial the study would run validates, plugins and parameters included."""
    from study._plan import REFERENCE_METHOD, plan_methods
    from trials._validate import validate_trial_config
    from trials.errors import ParetuneError

    try:
        for seed in config.budget.seeds:
            validate_trial_config(config.trial_config(REFERENCE_METHOD, {}, seed))
        for plan in plan_methods(config):
            searched = tuple(param.name for param in plan.space.searched)
            validate_trial_config(config.trial_config(plan.method, {}, plan.seed), searched)
    except ParetuneError as error:
        report(Finding("fail", "config", str(error)))
        return False
    references, others = _run_counts(config)
    methods = ", ".join(spec.run_name for spec in config.methods)
    report(
        Finding(
            "ok",
            "config",
            f"{path}: study {config.name!r}, methods {methods}; seeds "
            f"{', '.join(map(str, config.budget.seeds))}; {references + others} trials "
            f"({references} dense reference{'' if references == 1 else 's'})",
        )
    )
    return True


# --- data --------------------------------------------------------------------------------
def check_data(config: StudyConfig, samples: int, report: Report) -> int | None:
    """Builds the training and held-out splits and reads ``samples`` of each.

    Returns:
        The held-out split's size, or None if the data cannot be used.
    """
    from study._commands import validate_study
    from trials._config import TrialConfig
    from trials.data import DatasetError, inspect_split
    from trials.errors import ParetuneError

    dataset = config.dataset
    options = dict(dataset.options)
    if config.tasks is not None:
        options["tasks"] = list(config.tasks)
    eval_split = TrialConfig.model_validate(config.trial_config("dense", {}, 0)).eval_split
    where = f"{dataset.name} at {dataset.root}" if dataset.root else dataset.name
    held_out = None
    for split in ("train", eval_split):
        try:
            summary = inspect_split(dataset.name, split, dataset.root, options, samples)
        except ParetuneError as error:
            report(Finding("fail", "data", str(error)))
            return None
        report(Finding("ok", "data", f"{where}: {summary.describe()}"))
        if summary.expected_size is not None and summary.size != summary.expected_size:
            report(
                Finding(
                    "warn",
                    "data",
                    f"{dataset.name} {split} has {summary.size} samples; the standard split has "
                    f"{summary.expected_size}",
                )
            )
        held_out = summary.size
    try:  # tasks and metrics that the objectives and method parameters name
        validate_study(config)
    except DatasetError as error:
        report(Finding("fail", "data", str(error)))
        return None
    except ParetuneError as error:
        report(Finding("fail", "config", str(error)))
        return None
    return held_out


# --- ray ---------------------------------------------------------------------------------
def check_ray(config: StudyConfig, report: Report) -> list[NodeInfo] | None:
    """The cluster's nodes (or this machine) against ``resources``; None if unreachable."""
    from study._cluster import cluster_nodes, fit_trials, local_node
    from study._ray import RayAddressError

    address = config.ray_address
    if address:
        try:
            nodes = cluster_nodes(address)
        except RayAddressError as error:
            report(Finding("fail", "ray", str(error)))
            return None
        shown = "; ".join(node.describe() for node in nodes)
        report(Finding("ok", "ray", f"Ray at {address}: {len(nodes)} node(s): {shown}"))
    else:
        nodes = [local_node()]
        report(
            Finding(
                "ok",
                "ray",
                f"no ray_address: a local Ray on 127.0.0.1 on {nodes[0].describe()}",
            )
        )
    resources = config.resources
    fit = fit_trials(nodes, resources.cpus_per_trial, resources.gpus_per_trial)
    each = f"{resources.cpus_per_trial:g} CPU, {resources.gpus_per_trial:g} GPU per trial"
    if fit.problem is not None:
        report(Finding("fail", "resources", fit.problem))
    elif fit.slots < resources.max_concurrent:
        report(
            Finding(
                "warn",
                "resources",
                f"the nodes run {fit.slots} trial(s) at once ({each}), fewer than "
                f"resources.max_concurrent {resources.max_concurrent}",
            )
        )
    else:
        report(
            Finding(
                "ok",
                "resources",
                f"the nodes run {fit.slots} trial(s) at once ({each}); "
                f"max_concurrent {resources.max_concurrent}",
            )
        )
    workers = config.dataset.loader.num_workers
    if workers and workers >= resources.cpus_per_trial:
        report(
            Finding(
                "warn",
                "resources",
                f"dataset.loader.num_workers {workers} and the trial's own thread share "
                f"resources.cpus_per_trial {resources.cpus_per_trial:g}; give each trial at "
                f"least {workers + 1} CPUs",
            )
        )
    return nodes


# --- database and study name ---------------------------------------------------------------
def _existing_parent(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists():
            return folder
    return Path("/")


def check_database(config: StudyConfig, report: Report) -> None:
    """The database answers, accepts writes (rolled back), and the study name is usable."""
    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.pool import NullPool

    from study.store import StoreError
    from study.store._engine import parse_url, sqlite_path
    from study.store._session import one_line

    url, shown = config.storage_url(), config.redacted_storage_url()
    try:
        parsed = parse_url(url)
    except StoreError as error:
        report(Finding("fail", "database", str(error)))
        return
    path = sqlite_path(parsed)
    if path is not None and not path.exists():
        folder = _existing_parent(path.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            report(Finding("fail", "database", f"cannot create {path}: {folder} is not writable"))
            return
        report(Finding("ok", "database", f"{shown} does not exist yet; paretune run creates it"))
        report(Finding("ok", "study", f"name {config.name!r} is free (a new database)"))
        return
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args["timeout"] = 5.0
    elif parsed.get_driver_name() in ("psycopg", "psycopg2"):
        connect_args["connect_timeout"] = 10
    engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    password = parsed.password if isinstance(parsed.password, str) else None
    try:
        with _no_sqlite_leftovers(path):
            stored = _probe_database(engine, config.name)
    except sa_exc.SQLAlchemyError as error:
        report(
            Finding(
                "fail",
                "database",
                f"{shown} is not reachable or not writable: {one_line(error, password)}",
            )
        )
        return
    finally:
        engine.dispose()
    version, row = stored
    report(Finding("ok", "database", f"{shown} is reachable and writable (probe rolled back)"))
    _check_schema_version(version, shown, report)
    _check_study_name(config, row, shown, report)


@contextlib.contextmanager
def _no_sqlite_leftovers(path: Path | None) -> Iterator[None]:
    """Removes the empty ``-wal`` and the ``-shm`` file SQLite leaves beside a WAL database
    opened read-only (a writable connection removes them itself), if they were not there."""
    if path is None:
        yield
        return
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    present = wal.exists() or shm.exists()
    try:
        yield
    finally:
        if not present and wal.exists() and wal.stat().st_size == 0:
            wal.unlink(missing_ok=True)
            shm.unlink(missing_ok=True)


def _probe_database(engine: Any, study: str) -> tuple[int | None, tuple[str, Any] | None]:
    """Reads the schema version and the study's row, then writes in a transaction that is
    rolled back: ``INSERT ... SELECT ... WHERE 1 = 0`` and ``UPDATE ... WHERE 1 = 0`` on
    the studies table (which need write access but change nothing), or, in a database
    without paretune's tables, a probe table that is created and dropped by the rollback.
    """
    from sqlalchemy import inspect, select

    from study.store._models import SchemaInfo, StudyRow

    version, row = None, None
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        schema = SchemaInfo.__tablename__ in tables and StudyRow.__tablename__ in tables
        if schema:
            version = connection.scalar(select(SchemaInfo.version).where(SchemaInfo.id == 1))
            found = connection.execute(
                select(StudyRow.status, StudyRow.config).where(StudyRow.name == study)
            ).first()
            row = (str(found[0]), found[1]) if found is not None else None
        connection.rollback()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":  # take over from the driver: BEGIN by hand
            raw.driver_connection.isolation_level = None
            cursor.execute("BEGIN IMMEDIATE")
        try:
            table = StudyRow.__tablename__
            if schema:
                cursor.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE 1 = 0")
                cursor.execute(f"UPDATE {table} SET name = name WHERE 1 = 0")
            else:
                cursor.execute("CREATE TABLE paretune_check_probe (probe INTEGER)")
                cursor.execute("INSERT INTO paretune_check_probe (probe) VALUES (1)")
        finally:
            if engine.dialect.name == "sqlite":
                with contextlib.suppress(Exception):  # no transaction if BEGIN failed
                    cursor.execute("ROLLBACK")
            else:
                raw.rollback()
    except Exception as error:
        from sqlalchemy import exc as sa_exc

        raise sa_exc.DBAPIError(None, None, error) from None
    finally:
        raw.close()
    return version, row


def _check_schema_version(version: int | None, shown: str, report: Report) -> None:
    from study.store._models import SCHEMA_VERSION

    if version is None or version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        report(
            Finding(
                "fail",
                "database",
                f"{shown} has results schema version {version}; this paretune reads "
                f"{SCHEMA_VERSION}: run the study with a matching paretune",
            )
        )
    else:
        report(
            Finding(
                "warn",
                "database",
                f"{shown} has results schema version {version}; paretune run migrates it to "
                f"{SCHEMA_VERSION}",
            )
        )


def _check_study_name(
    config: StudyConfig, row: tuple[str, Any] | None, shown: str, report: Report
) -> None:
    from study._config import (
        ConfigError,
        StudyConfig,
        config_differences,
        resume_changes,
    )

    if row is None:
        report(Finding("ok", "study", f"name {config.name!r} is free in {shown}"))
        return
    status, data = row
    name = config.name
    try:
        stored = StudyConfig.from_stored(data if isinstance(data, dict) else {})
    except (ConfigError, ValueError) as error:
        report(
            Finding(
                "fail", "study", f"{name!r} exists in {shown} with an unreadable config: {error}"
            )
        )
        return
    refused = resume_changes(stored, config)
    if refused:
        first = ", ".join(
            f"{key}: {old!r} -> {new!r}" for key, (old, new) in list(refused.items())[:3]
        )
        report(
            Finding(
                "fail",
                "study",
                f"{name!r} exists in {shown} with another config ({first}); choose another name",
            )
        )
        return
    if config_differences(stored.public_dict(), config.public_dict()):
        report(
            Finding(
                "ok",
                "study",
                f"{name!r} exists ({status}); this config adds trials: paretune resume {name} "
                "--config CONFIG",
            )
        )
    elif status == "COMPLETE":
        report(
            Finding(
                "fail",
                "study",
                f"{name!r} exists in {shown} and is COMPLETE; choose another name, or add "
                "trials with paretune resume --config",
            )
        )
    else:
        report(
            Finding(
                "ok", "study", f"{name!r} exists ({status}): paretune resume {name} finishes it"
            )
        )


# --- estimate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    """A kind of trial of the study: how many there are and what each costs here."""

    label: str
    count: int
    iterations: int
    seconds: float
    reference: bool


def _trial_seconds(
    config: StudyConfig, timing: TrialTiming, iterations: int, held_out: int
) -> tuple[int, float]:
    """``(iterations, seconds)`` of one trial at ``timing``'s speed."""
    budget = config.budget
    if budget.unit == "flops" and timing.forward_flops > 0:
        per_iteration = 3 * timing.forward_flops * budget.batch_size
        iterations = max(1, math.floor(float(budget.flops or 0) / per_iteration))
    eval_every = budget.eval_every or max(1, iterations // 5)
    evaluations = math.ceil(iterations / eval_every)
    batches = math.ceil(held_out / EVALUATION_BATCH)
    limit = config.trainer.get("eval_batches")
    batches = min(batches, int(limit)) if limit else batches
    seconds = (
        timing.setup_s
        + iterations * timing.step_s
        + evaluations * batches * timing.evaluation_batch_s
    )
    if budget.unit == "seconds":
        seconds = float(budget.seconds or 0) + timing.setup_s
        iterations = max(1, math.floor(float(budget.seconds or 0) / timing.step_s))
    return iterations, seconds


def estimate_cost(
    config: StudyConfig,
    iterations: int,
    held_out: int,
    nodes: list[NodeInfo] | None,
    report: Report,
) -> None:
    """Times ``iterations`` iterations of each method here and scales them to the study."""
    from study._cluster import fit_trials
    from trials._timing import time_trial
    from trials.errors import ParetuneError

    seeds = config.budget.seeds
    reference = "dense reference"
    # (label, timing key, run name, trials per seed, budget iterations)
    kinds: list[tuple[str, str, str, int, int | None]] = [
        (spec.run_name, spec.name, spec.run_name, config.trials_for(spec.run_name), None)
        for spec in config.methods
    ]
    if config.reference.enabled:  # a dense method's trials train as its references do
        kinds = [
            (*kind[:1], reference, *kind[2:]) if kind[1] == "dense" else kind for kind in kinds
        ]
        kinds.insert(0, (reference, reference, "dense", 1, config.reference.iterations))
    timed: dict[str, TrialTiming] = {}
    runs: list[_Run] = []
    try:
        for label, key, run, per_seed, own_iterations in kinds:
            if key not in timed:
                fields = config.trial_config(run, {}, seeds[0])
                timed[key] = time_trial(fields, steps=iterations)
            trial_iterations, seconds = _trial_seconds(
                config, timed[key], own_iterations or config.budget.iterations, held_out
            )
            count = len(seeds) * per_seed
            runs.append(_Run(label, count, trial_iterations, seconds, key == reference))
    except ParetuneError as error:
        report(Finding("fail", "estimate", f"a timed trial failed: {error}"))
        return
    device = next(iter(timed.values())).device
    steps = ", ".join(f"{key} {value.step_s:.3g} s" for key, value in timed.items())
    report(
        Finding(
            "ok",
            "estimate",
            f"measured on this machine's {device}: seconds per iteration: {steps} "
            f"({iterations} timed iterations each, after one warm-up)",
        )
    )
    resources = config.resources
    concurrency = resources.max_concurrent
    if nodes:
        slots = fit_trials(nodes, resources.cpus_per_trial, resources.gpus_per_trial).slots
        concurrency = max(1, min(concurrency, slots or concurrency))
    total = sum(run.count * run.seconds for run in runs)
    gpus = resources.gpus_per_trial
    share, unit = (gpus, "GPU") if gpus > 0 else (resources.cpus_per_trial, "CPU")
    hours = total * share / 3600
    references = [run for run in runs if run.reference]
    others = sum(run.count * run.seconds for run in runs if not run.reference)
    if config.init == "dense" and references:  # the references train first
        first = max(run.seconds for run in references) * math.ceil(
            references[0].count / concurrency
        )
        wall = first + others / concurrency
    else:
        wall = total / concurrency
    wall = max(wall, max(run.seconds for run in runs))
    count = sum(run.count for run in runs)
    shape = "; ".join(f"{run.count} x {run.label} ({run.iterations} it)" for run in runs)
    report(
        Finding(
            "ok",
            "estimate",
            f"{count} trials ({shape}): about {_hours(hours)} {unit}-hours "
            f"({share:g} {unit} per trial) and {_duration(wall)} wall with "
            f"{concurrency} trial(s) at once, at this machine's speed",
        )
    )
    if gpus > 0 and not device.startswith("cuda"):
        report(
            Finding(
                "warn",
                "estimate",
                f"timed on this machine's {device} while trials ask for GPUs: a GPU is "
                "much faster; run paretune check on a GPU node for its figures",
            )
        )


def _hours(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``, ``52 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{_hours(seconds / 3600)} h"
