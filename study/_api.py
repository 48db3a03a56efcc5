"""Studies from Python: run, resume or open one and read its results (the CLI calls this).

A :class:`StudyHandle` names a stored study (its name and database URL) and reads it on
demand: the trials as a pandas frame, the Pareto fronts, the per-method summary, the
level-by-level comparison, the front figure and the HTML report. Reading goes through
:mod:`analysis`, which this module imports inside functions only (importing ``study``
loads neither pandas nor plotly).

Example:
    >>> import study  # doctest: +SKIP
    >>> handle = study.run_study("examples/quickstart.yaml")  # doctest: +SKIP
    >>> handle.summary()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from study._errors import UserInputError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go
    from rich.console import Console

    from study._config import StudyConfig
    from study._ray import LocalRay
    from study.store import ResultStore

#: Where studies go by default: ``./paretune-runs/STUDY/`` (database, report, exports).
DEFAULT_RUNS_DIR = Path("paretune-runs")


def as_config(config: StudyConfig | str | os.PathLike[str]) -> StudyConfig:
    """``config`` itself, or the validated study config of a YAML file.

    Raises:
        study.ConfigError: the file is missing or not a valid study config.
    """
    from study._config import StudyConfig, load_config

    return config if isinstance(config, StudyConfig) else load_config(Path(config))


def check_study_name(study: str) -> str:
    """Refuses a name that could not be a study's (``../x``, ``a/b``) before any file is
    looked at.

    Raises:
        UserInputError: the name breaks the rule (the message states it).
    """
    from study._names import STUDY_NAME_RULE, is_study_name

    if not is_study_name(study):
        raise UserInputError(f"study name {study!r}: {STUDY_NAME_RULE}")
    return study


def default_storage_url(study: str) -> str:
    """Where a study is stored by default: ``./paretune-runs/STUDY/paretune.db``."""
    return f"sqlite:///{(DEFAULT_RUNS_DIR / study / 'paretune.db').resolve()}"


def open_store(url: str, *, must_exist: bool = False) -> ResultStore:
    """Opens the results store (one-line error if unreachable or absent).

    Args:
        url: The SQLAlchemy URL.
        must_exist: Refuse a SQLite file that does not exist (instead of creating it).
    """
    from sqlalchemy.engine import make_url

    from study.store import ResultStore

    parsed = make_url(url)
    is_sqlite_file = parsed.drivername.startswith("sqlite") and parsed.database
    if must_exist and is_sqlite_file and not Path(str(parsed.database)).is_file():
        raise UserInputError(f"no study database at {parsed.database}; pass --db URL")
    return ResultStore(url)


def open_study_store(study: str, db: str | None = None) -> ResultStore:
    """Opens the database of an existing study: ``db``, or its default SQLite file.

    Raises:
        UserInputError: a bad name, or no database at the default place.
        study.StoreError: the database cannot be opened.
    """
    check_study_name(study)
    return open_store(db or default_storage_url(study), must_exist=db is None)


def study_url(study: str, db: str | None = None) -> str:
    """The database URL of an existing study: ``db``, or its default SQLite file.

    Raises:
        UserInputError: a bad name, or no database at the default place.
        study.StoreError: the database cannot be opened.
    """
    open_study_store(study, db).close()
    return db or default_storage_url(study)


def check_study(config: StudyConfig) -> None:
    """Checks every trial the study would run, plugin names included, the data its
    trials read and every objective that names a task or metric, before Ray starts.

    Raises:
        trials.errors.ParetuneError: the first problem, in one sentence.
    """
    from study._plan import REFERENCE_METHOD, plan_methods
    from trials import validate_data, validate_tasks, validate_trial_config

    for seed in config.budget.seeds:
        reference = validate_trial_config(config.trial_config(REFERENCE_METHOD, {}, seed))
    metrics = validate_data(reference)
    for plan in plan_methods(config):
        fields = config.trial_config(plan.method, {}, plan.seed)
        searched = tuple(param.name for param in plan.space.searched)  # fixed ones are checked
        validate_tasks(validate_trial_config(fields, searched=searched), tuple(metrics))
        for objective, _ in config.objectives_for(plan.method):
            _check_objective(objective, metrics, plan.method)


def _check_objective(objective: str, metrics: dict[str, tuple[str, ...]], method: str) -> None:
    """``metric:<task>:<metric>`` and ``delta:<task>`` must name what the trials report."""
    from study._config import ConfigError
    from study._objectives import task_references
    from trials.registry import unknown_name_message

    names = task_references(objective)
    if names is None:
        return
    task, metric = names
    where = f"objective {objective!r} (method {method})"
    if task not in metrics:
        raise ConfigError(f"{where}: " + unknown_name_message("task", task, list(metrics)))
    if metric is not None and metric not in metrics[task]:
        choices = list(metrics[task])
        raise ConfigError(f"{where}: " + unknown_name_message(f"{task} metric", metric, choices))


def run_study(
    config: StudyConfig | str | os.PathLike[str],
    *,
    address: str | None = None,
    verbose: bool = False,
    console: Console | None = None,
) -> StudyHandle:
    """Runs a new study: the dense reference, then every method's search.

    Everything is checked (:func:`check_study`) before anything is written; the study
    then runs on a local Ray bound to 127.0.0.1 (started while the checks run, stopped
    again if one fails), or on the cluster at ``address``, and every trial is stored as it
    finishes. Progress is drawn on ``console`` (a terminal redraws one line per method
    run; anything else gets one line per finished trial).

    Args:
        config: A :class:`StudyConfig` or the path of its YAML file.
        address: Join this Ray cluster (``HOST:PORT``) instead of ``ray_address``.
        verbose: Show Ray's own output.
        console: Where progress goes (default: standard output; ``Console(quiet=True)``
            shows nothing).

    Returns:
        The study's handle; :attr:`StudyHandle.problems` lists trial results that did not
        reach the Optuna searches (empty when the study is complete).

    Raises:
        trials.errors.ParetuneError: a bad config, data folder, Ray address or database,
            or a study of that name already in the database, in one sentence.
    """
    config = as_config(config)
    if address is not None:
        config = config.model_copy(update={"ray_address": address})
    with _checked_with_ray(config, verbose) as local:
        url = config.storage_url()
        store = open_store(url)
        try:
            existing = {record.name: record for record in store.list_studies()}.get(config.name)
            if existing is not None:
                _refuse_existing(config, existing.config)
            problems = _drive(config, store, url, verbose, console, resume=False, started=local)
        finally:
            store.close()
    return StudyHandle(config.name, url, problems=tuple(problems))


@contextlib.contextmanager
def _checked_with_ray(config: StudyConfig, verbose: bool) -> Iterator[LocalRay | None]:
    """Checks the study (:func:`check_study`); a study on a local Ray has it start
    meanwhile (the checks import torch and build data, Ray's start waits for its own
    processes) and stops it when the block ends, or when a check fails."""
    from study._ray import check_address, configure_ray_output, local_ray_beside

    if config.ray_address:
        check_address(config.ray_address)
        check_study(config)
        yield None
        return
    configure_ray_output(verbose)
    with local_ray_beside(lambda: check_study(config), verbose) as local:
        yield local


def resume_study(
    study: str | StudyConfig | os.PathLike[str],
    *,
    db: str | None = None,
    config: StudyConfig | str | os.PathLike[str] | None = None,
    address: str | None = None,
    verbose: bool = False,
    console: Console | None = None,
) -> StudyHandle:
    """Finishes a study whose driver stopped: its trials that were cut off are settled,
    the rest run (with the stored config and the searchers re-seeded).

    Args:
        study: The study's name, or its config (a :class:`StudyConfig` or a YAML path,
            which also gives the database unless ``db`` does).
        db: Its database URL (default: the config's ``storage``, else
            ``./paretune-runs/STUDY/paretune.db``).
        config: The study's config with more trials per method (``budget.trials_per_method``,
            ``methods[].trials``): the study is extended. Nothing else may differ.
        address: Join this Ray cluster (``HOST:PORT``).
        verbose: Show Ray's own output.
        console: Where progress goes (see :func:`run_study`).

    Returns:
        The study's handle (see :func:`run_study`).

    Raises:
        trials.errors.ParetuneError: an unknown study, an unreachable database, a config
            that changes more than trial counts, in one sentence.
    """
    from study._config import StudyConfig
    from study._ray import check_address

    name, url = _locate(study, db)
    given = config if config is not None or _is_name(study) else study
    store = open_store(url, must_exist=db is None)
    try:
        record = store.get_study(name)
        stored = StudyConfig.from_stored(record.config)
        if given is not None:
            source = None if isinstance(given, StudyConfig) else str(given)
            stored = extended(stored, as_config(given), source)
            store.set_study_config(name, stored.public_dict())
        if address is not None:
            stored = stored.model_copy(update={"ray_address": address})
        if stored.ray_address:
            check_address(stored.ray_address)
        problems = _drive(stored, store, url, verbose, console, resume=True)
    finally:
        store.close()
    return StudyHandle(name, url, problems=tuple(problems))


def open_study(study: str | StudyConfig | os.PathLike[str], db: str | None = None) -> StudyHandle:
    """The handle of a stored study, finished or running, to read its results.

    Args:
        study: Its name, or its config (a :class:`StudyConfig` or a YAML path: the study of
            that name in the config's database).
        db: Its database URL (default: the config's, else
            ``./paretune-runs/STUDY/paretune.db``).

    Raises:
        UserInputError: a bad name or no database at the default place.
        study.StoreError: an unreachable database or an unknown study (the message lists
            the stored ones).
    """
    name, url = _locate(study, db)
    with open_store(url, must_exist=db is None) as store:
        store.get_study(name)
    return StudyHandle(name, url)


def _is_name(study: str | StudyConfig | os.PathLike[str]) -> TypeGuard[str]:
    """Whether ``study`` names a study (a YAML path or a config does not)."""
    return isinstance(study, str) and not study.endswith((".yaml", ".yml"))


def _locate(study: str | StudyConfig | os.PathLike[str], db: str | None) -> tuple[str, str]:
    """``(name, database url)`` of a study given by name or by its config."""
    if _is_name(study):
        return study, db or default_storage_url(check_study_name(study))
    config = as_config(study)
    return config.name, db or config.storage_url()


def _refuse_existing(config: StudyConfig, stored: dict[str, Any]) -> None:
    """``run`` with a name in use: how to finish that study, or what the new config changes."""
    from study._config import config_differences, describe_differences

    where = config.redacted_storage_url()
    resume = f"'paretune resume {config.name}" + ("" if config.storage is None else " --db URL")
    changes = config_differences(stored, config.public_dict())
    if not changes:
        raise UserInputError(
            f"study {config.name!r} already exists in {where}; finish it with {resume}' "
            f"or choose another name"
        )
    raise UserInputError(
        f"study {config.name!r} already exists in {where} with another config "
        f"(stored -> new):\n{describe_differences(changes)}\n"
        f"choose another name, or finish the stored study with {resume}' (more trials: "
        f"{resume} --config FILE')"
    )


def extended(stored: StudyConfig, new: StudyConfig, source: str | None = None) -> StudyConfig:
    """The config of a resumed study given ``new``: the stored one with ``new``'s trial
    counts.

    Raises:
        UserInputError: ``new`` changes more than trial counts (the message lists what).
    """
    from study._config import describe_differences, resume_changes

    if new.storage is None and stored.storage is not None:
        new = new.model_copy(update={"storage": stored.storage})
    refused = resume_changes(stored, new)
    if refused:
        raise UserInputError(
            f"{source or 'the new config'} differs from the stored config of study "
            f"{stored.name!r} in more than its trial counts (stored -> new):\n"
            f"{describe_differences(refused)}\n"
            f"resume may only add trials; run a new study for other changes"
        )
    return stored.model_copy(update={"budget": new.budget, "methods": new.methods})


def _drive(
    config: StudyConfig,
    store: ResultStore,
    url: str,
    verbose: bool,
    console: Console | None,
    *,
    resume: bool,
    started: LocalRay | None = None,
) -> list[str]:
    """Drives the study under its lease (reconciling first on resume), on the local Ray
    ``started`` if any; the results that did not reach Optuna."""
    from study._ray import configure_ray_output

    configure_ray_output(verbose)
    from study._console import console as default_console
    from study._driver import driving
    from study._faults import stop_on_store_failure
    from study._progress import study_progress
    from study._runner import StudyRunner

    out = console or default_console
    runner = StudyRunner(config, store, url, verbose=verbose)
    if not resume:
        runner.create()
    with driving(store, config.name) as driver:
        if resume:
            settled = runner.reconcile().describe()
            if settled:
                out.print(f"{settled}; running the rest")
        out.print(f"study [bold]{config.name}[/] -> {config.redacted_storage_url()}")
        display = study_progress(config.name, str(config.study_dir), out)
        with stop_on_store_failure(config.name, url), display as progress:
            return runner.run(progress, driver, started)


def headline_objective(objectives: list[tuple[str, str]]) -> tuple[str, str, float]:
    """``(objective, direction, sparsity level)`` that summaries show the best of: the
    first objective that is not sparsity, at >= 90% when sparsity is an objective."""
    others = [(name, direction) for name, direction in objectives if name != "sparsity"]
    name, direction = others[0] if others else objectives[0]
    level = 0.9 if any(n == "sparsity" for n, _ in objectives) and name != "sparsity" else 0.0
    return name, direction, level


@dataclass
class StudyHandle:
    """A stored study: what :func:`run_study`, :func:`resume_study` and
    :func:`open_study` return.

    Results are read from the database on first use and kept; :meth:`refresh` reads them
    again (for a study that is still running).

    Attributes:
        name: The study's name.
        url: Its database's SQLAlchemy URL.
        problems: After a run or resume: trial results that did not reach the Optuna
            searches (empty when every result did).
    """

    name: str
    url: str
    problems: tuple[str, ...] = ()
    _frames: Any = field(default=None, init=False, repr=False)  # analysis.StudyFrames

    # -- the stored study ---------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        """The study's stored metadata: ``name``, ``status``, ``created_at``,
        ``objectives``, ``config``, ``versions``."""
        return self.frames.studies[0]

    @property
    def config(self) -> StudyConfig:
        """The study's validated config, as stored."""
        from study._config import StudyConfig

        return StudyConfig.from_stored(self.record["config"])

    @property
    def status(self) -> str:
        """``CREATED``, ``RUNNING``, ``COMPLETE``, ``INCOMPLETE``, ``FAILED`` or
        ``INTERRUPTED``, read now."""
        with open_store(self.url) as store:
            return str(store.get_study(self.name).status)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """The study's ``(column, direction)`` objectives (e.g. ``delta_t`` maximized)."""
        return [(str(name), str(direction)) for name, direction in self.record["objectives"]]

    @property
    def levels(self) -> tuple[float, ...]:
        """The sparsity levels the methods are compared at: the study's
        ``budget.sparsity_levels``, else the summaries' headline level (none when sparsity
        is no objective)."""
        levels = (self.record["config"].get("budget") or {}).get("sparsity_levels")
        if levels:
            return tuple(float(level) for level in levels)
        level = headline_objective(self.objectives)[2]
        return (level,) if level else ()

    # -- frames -------------------------------------------------------------------------
    @property
    def frames(self) -> Any:
        """The trials and evaluations frames and the study's metadata: an
        :class:`analysis.StudyFrames` (see :func:`analysis.load_study`), read once."""
        if self._frames is None:
            from analysis import load_study

            self._frames = load_study(self.url, self.name)
        return self._frames

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: ``trial_id``, ``method``, ``seed``, ``status``, ``sparsity``,
        ``delta_t``, ``params``, per-task metrics, timings... (see :mod:`analysis`)."""
        return self.frames.trials

    @property
    def evaluations(self) -> pd.DataFrame:
        """One row per periodic evaluation of a trial (metrics over training)."""
        return self.frames.evaluations

    def refresh(self) -> StudyHandle:
        """Forgets the frames read so far (the next access reads the database again)."""
        self._frames = None
        return self

    # -- results ------------------------------------------------------------------------
    def fronts(self) -> pd.DataFrame:
        """The completed trials with ``on_front`` (on its method's Pareto front, seeds
        pooled) and ``on_front_overall`` (on the front of all methods together)."""
        from analysis import method_fronts

        return method_fronts(self.trials, self.objectives)

    def front(self, method: str | None = None) -> pd.DataFrame:
        """The Pareto set of ``method`` (default: of all methods together), sorted by
        sparsity (by the first objective when sparsity is none)."""
        fronts = self.fronts()
        if method is None:
            chosen = fronts[fronts["on_front_overall"]]
        else:
            chosen = fronts[fronts["on_front"] & (fronts["method"] == method)]
        names = [name for name, _ in self.objectives]
        key = "sparsity" if "sparsity" in names else names[0]
        return chosen.sort_values(key).reset_index(drop=True)

    def summary(self, sparsity: float | None = None) -> pd.DataFrame:
        """One row per method: trial counts, Pareto set size, hypervolume and the best
        headline objective (Delta_T by default) at or above ``sparsity`` (default: 90%
        when sparsity is an objective)."""
        from analysis import method_summary

        name, _, level = headline_objective(self.objectives)
        level = level if sparsity is None else sparsity
        return method_summary(self.trials, self.objectives, sparsity=level, value=name)

    def compare(self, levels: tuple[float, ...] | None = None) -> Any:
        """The methods level by level (best trial at or above each level per seed, paired
        over seeds, 95% t intervals) and their hypervolumes over seeds: an
        :class:`analysis.SeedComparisons`.

        Args:
            levels: Sparsity levels (default: :attr:`levels`).
        """
        from analysis import compare_seeds

        name = headline_objective(self.objectives)[0]
        return compare_seeds(self.trials, levels or self.levels, self.objectives, value=name)

    def front_figure(self, x_axis: str = "sparsity") -> go.Figure:
        """Every method's Pareto front as a plotly figure (see
        :func:`analysis.pareto_front_figure`).

        Args:
            x_axis: ``"sparsity"`` or ``"compression"`` (1 / (1 - sparsity), log scale).
        """
        from analysis import pareto_front_figure

        return pareto_front_figure(self.trials, self.objectives, levels=self.levels, x_axis=x_axis)

    def report(self, out: str | os.PathLike[str] | None = None, images: bool = False) -> Path:
        """Writes the self-contained HTML report and its tables (md, csv, tex).

        Args:
            out: The folder (default: ``report/`` in the study's folder).
            images: Also export PNG and SVG figures (needs kaleido).

        Returns:
            The path of ``report.html``.
        """
        from analysis import build_report

        folder = Path(out) if out is not None else self.folder / "report"
        paths = build_report(
            self.trials,
            self.evaluations,
            self.name,
            folder,
            self.objectives,
            export_images=images,
            compared_levels=(self.record["config"].get("budget") or {}).get("sparsity_levels"),
        )
        return paths.html

    @property
    def folder(self) -> Path:
        """The study's folder (its config's ``study_dir``; ``./paretune-runs/STUDY`` for a
        study stored without one)."""
        return study_folder(self.record, self.name)


def study_folder(record: dict[str, Any], study: str) -> Path:
    """The folder of a stored study: its config's ``study_dir`` (``./paretune-runs/STUDY``
    for a study stored without one)."""
    return Path(str((record.get("config") or {}).get("study_dir") or DEFAULT_RUNS_DIR / study))
