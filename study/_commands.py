"""What the study commands of the CLI do (``run``, ``resume``, ``status``, ``ls``,
``export``, ``replay``); ``study.cli`` only parses arguments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from study._console import console, err_console
from study._errors import UserInputError

if TYPE_CHECKING:
    from study._config import StudyConfig
    from study.store import ResultStore

DEFAULT_RUNS_DIR = Path("paretune-runs")
EXPORT_FORMATS = ("csv", "json", "parquet")


class StudyIncomplete(UserInputError):
    """Every trial ran, but some results did not reach Optuna (exit code 1)."""

    exit_code = 1


def check_study_name(study: str) -> str:
    """Refuses a name that could not be a study's (``../x``, ``a/b``) before any file is
    looked at."""
    from study._config import STUDY_NAME_RULE, is_study_name

    if not is_study_name(study):
        raise UserInputError(f"study name {study!r}: {STUDY_NAME_RULE}")
    return study


def default_storage_url(study: str) -> str:
    """Where ``paretune run`` puts a study by default (a SQLite file in its folder)."""
    return f"sqlite:///{(DEFAULT_RUNS_DIR / study / 'paretune.db').resolve()}"


def open_store(url: str, *, must_exist: bool = False) -> ResultStore:
    """Opens the results store (one-line error if unreachable or absent)."""
    from sqlalchemy.engine import make_url

    from study.store import ResultStore

    parsed = make_url(url)
    is_sqlite_file = parsed.drivername.startswith("sqlite") and parsed.database
    if must_exist and is_sqlite_file and not Path(str(parsed.database)).is_file():
        raise UserInputError(f"no study database at {parsed.database}; pass --db URL")
    return ResultStore(url)


def existing_study_url(study: str, db: str | None) -> str:
    """The database URL of an existing study (``--db`` or the default SQLite file)."""
    check_study_name(study)
    url = db or default_storage_url(study)
    open_store(url, must_exist=db is None).close()
    return url


def validate_study(config: StudyConfig) -> None:
    """Checks every trial the study would run, plugin names included, and every objective
    that names a task or metric, before Ray starts."""
    from study._plan import REFERENCE_METHOD, plan_methods
    from trials._validate import validate_data, validate_tasks, validate_trial_config

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


def _run(config: StudyConfig, store: ResultStore, url: str, verbose: bool, *, resume: bool) -> None:
    """Drives the study under its lease: reconcile (on resume), run, then status and report."""
    from study._ray import configure_ray_output

    configure_ray_output(verbose)
    from study._driver import driving
    from study._faults import stop_on_store_failure
    from study._progress import study_progress
    from study._runner import StudyRunner

    runner = StudyRunner(config, store, url, verbose=verbose)
    if not resume:
        runner.create()
    with driving(store, config.name) as driver:
        if resume:
            settled = runner.reconcile().describe()
            if settled:
                console.print(f"{settled}; running the rest")
        console.print(f"study [bold]{config.name}[/] -> {config.redacted_storage_url()}")
        display = study_progress(config.name, str(config.study_dir))
        with stop_on_store_failure(config.name, url), display as progress:
            problems = runner.run(progress, driver)
    print_status(url, config.name)
    report_command(config.name, url, Path(str(config.study_dir)) / "report")
    if problems:
        shown = "\n".join(f"  {line}" for line in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise StudyIncomplete(
            f"study {config.name!r} is INCOMPLETE: {len(problems)} trial result(s) did not "
            f"reach its Optuna searches:\n{shown}{more}"
        )


def run_command(config_path: Path, address: str | None, verbose: bool) -> None:
    """``paretune run CONFIG``."""
    from study._config import load_config
    from study._ray import check_address

    config = load_config(config_path)
    if address is not None:
        config = config.model_copy(update={"ray_address": address})
    if config.ray_address:
        check_address(config.ray_address)
    validate_study(config)
    url = config.storage_url()
    store = open_store(url)
    try:
        existing = {record.name: record for record in store.list_studies()}.get(config.name)
        if existing is not None:
            _refuse_existing(config, existing.config)
        _run(config, store, url, verbose, resume=False)
    finally:
        store.close()


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


def resume_command(
    study: str,
    db: str | None,
    address: str | None,
    verbose: bool,
    config_path: Path | None = None,
) -> None:
    """``paretune resume STUDY [--config FILE]``: reconciles a stopped study and finishes it.

    With ``--config``, the file may differ from the stored config only in more trials per
    method (``budget.trials_per_method``, ``methods[].trials``): the study is extended.
    """
    from study._config import StudyConfig
    from study._ray import check_address

    url = db or default_storage_url(check_study_name(study))
    store = open_store(url, must_exist=db is None)
    try:
        record = store.get_study(study)
        config = StudyConfig.from_stored(record.config)
        if config_path is not None:
            config = _extended(config, config_path)
            store.set_study_config(study, config.public_dict())
        if address is not None:
            config = config.model_copy(update={"ray_address": address})
        if config.ray_address:
            check_address(config.ray_address)
        _run(config, store, url, verbose, resume=True)
    finally:
        store.close()


def _extended(stored: StudyConfig, path: Path) -> StudyConfig:
    """The config of ``resume --config``: the stored one with more trials, or an error."""
    from study._config import describe_differences, load_config, resume_changes

    new = load_config(path)
    if new.storage is None and stored.storage is not None:
        new = new.model_copy(update={"storage": stored.storage})
    refused = resume_changes(stored, new)
    if refused:
        raise UserInputError(
            f"{path} differs from the stored config of study {stored.name!r} in more than "
            f"its trial counts (stored -> new):\n{describe_differences(refused)}\n"
            f"resume may only add trials; run a new study for other changes"
        )
    return stored.model_copy(update={"budget": new.budget, "methods": new.methods})


def headline_objective(objectives: list[tuple[str, str]]) -> tuple[str, str, float]:
    """``(objective, direction, sparsity level)`` that summaries show the best of: the
    first objective that is not sparsity, at >= 90% when sparsity is an objective."""
    others = [(name, direction) for name, direction in objectives if name != "sparsity"]
    name, direction = others[0] if others else objectives[0]
    level = 0.9 if any(n == "sparsity" for n, _ in objectives) and name != "sparsity" else 0.0
    return name, direction, level


def print_status(url: str, study: str) -> None:
    """Per method: done/stopped/running/failed, Pareto set size, best headline objective;
    then whatever needs attention (a dead driver, results that did not reach Optuna)."""
    import math

    from analysis import load_study, method_summary

    frames = load_study(url, study, evaluations=False, configs=False, wide=False)
    record = frames.studies[0]
    objectives = [tuple(o) for o in record["objectives"]]
    name, _, level = headline_objective(objectives)
    best_title = f"best {'ΔT' if name == 'delta_t' else name}" + (
        f" @ ≥{level:.0%}" if level else ""
    )
    table = Table(title=f"study {study} ({record.get('status', '')})")
    columns = ("method", "complete", "pruned", "running", "failed", "pareto", best_title)
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    if frames.trials.empty:
        console.print(f"study {study} has no trials yet")
    else:
        summary = method_summary(frames.trials, objectives, sparsity=level, value=name)
        for method, row in summary.iterrows():
            best = row[f"best_{name}"]
            table.add_row(
                str(method),
                *(
                    str(int(row[c]))
                    for c in ("n_complete", "n_pruned", "n_running", "n_failed", "pareto_size")
                ),
                "–" if math.isnan(best) else _objective_text(name, best),
            )
        console.print(table)
        shared = reference_cost(frames.trials, record.get("config") or {})
        if shared:
            console.print(shared, highlight=False, soft_wrap=True)
        for line in level_lines(frames.trials, objectives, record.get("config") or {}):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    lines, driven = _attention(url, study, frames.trials)
    if driven:
        for line in running_progress(record, study):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    for line in lines:
        console.print(f"[yellow]{escape(line)}[/]", highlight=False, soft_wrap=True)


def running_progress(record: dict[str, Any], study: str) -> list[str]:
    """In-trial progress of a study whose driver runs: what the driver last wrote to
    ``progress.json`` in the study folder (nothing when that folder is not on this
    machine, e.g. ``status --db`` on another host of a cluster)."""
    from study._live import progress_lines, read_progress

    folder = (record.get("config") or {}).get("study_dir")
    snapshot = read_progress(folder, study) if folder else None
    if snapshot is None or not snapshot.active:
        return []
    return progress_lines(snapshot)


def level_lines(
    trials: Any, objectives: list[tuple[str, str]], config: dict[str, Any]
) -> list[str]:
    """Who wins at each sparsity level (the study's ``sparsity_levels``, else the headline
    level) and whether beyond seed noise: paired over seeds, 95% t intervals."""
    from analysis import compare_seeds, level_sentences

    name, _, level = headline_objective(objectives)
    levels = (config.get("budget") or {}).get("sparsity_levels") or ([level] if level else [])
    if not levels or "seed" not in trials:
        return []
    searched = trials[trials["method"] != "dense"] if "method" in trials else trials
    seeds = sorted(int(s) for s in searched["seed"].dropna().unique())
    across = compare_seeds(searched, levels, objectives, value=name)
    comparisons = across.levels
    unit = "%" if name == "delta_t" or name.startswith("delta:") else ""
    head = (
        f"{name} level by level, best trial at or above each level per seed, "
        f"paired over seeds {', '.join(map(str, seeds))} (95% t intervals):"
    )
    lines = [
        f"at {c.level:.0%}: " + "; ".join(f"{m} {i.text(unit=unit)}" for m, i in c.methods.items())
        for c in comparisons
        if c.methods
    ]
    lines += level_sentences(comparisons, unit)
    if lines and across.hypervolumes:
        shown = "; ".join(f"{m} {i.text()}" for m, i in across.hypervolumes.items())
        lines.append(f"hypervolume over seeds (one reference point): {shown}")
    if len(seeds) == 1 and lines:
        lines.append(
            "one seed: more seeds (budget.seeds, as in examples/compare.yaml) tell a "
            "difference from noise"
        )
    return [head, *(f"  {line}" for line in lines)] if lines else []


def reference_cost(trials: Any, config: dict[str, Any]) -> str | None:
    """With ``init: dense``, what each seed's dense reference cost (shared by every trial of
    its seed, whose own columns count only their fine-tuning)."""
    if config.get("init", "scratch") != "dense" or "is_reference" not in trials:
        return None
    done = trials[trials["is_reference"] & (trials["status"] == "COMPLETE")]
    if not len(done):
        return None
    flops = done["flops"].mean()
    return (
        f"dense reference (init: dense), per seed, shared by the trials of its seed: "
        f"{int(done['iterations'].mean())} iterations, {flops:.3g} FLOPs, "
        f"{done['wall_time_s'].mean():.0f} s wall"
    )


def _objective_text(name: str, value: float) -> str:
    if name in ("delta_t", "delta_m") or name.startswith("delta:"):
        return f"{value:+.2f}%"
    if name == "sparsity":
        return f"{value:.1%}"
    return f"{value:.4g}"


def _attention(url: str, study: str, trials: Any) -> tuple[list[str], bool]:
    """Lines about a study that needs attention (its driver, results missing in Optuna),
    and whether a live driver runs it."""
    from study._driver import driver_note

    store = open_store(url)
    try:
        record = store.get_study(study)
        lines = [note] if (note := driver_note(store, record)) else []
        driven = record.status == "RUNNING" and note is None
    finally:
        store.close()
    if len(trials) and "search_error" in trials:
        problems = trials[trials["search_error"].notna()]
        if len(problems):
            lines.append(
                f"{len(problems)} trial result(s) did not reach Optuna (first: trial "
                f"{int(problems.iloc[0]['trial_id'])}: {problems.iloc[0]['search_error']})"
            )
    return lines, driven


def status_command(study: str | None, db: str | None) -> None:
    """``paretune status [STUDY]``."""
    if study is None:
        ls_command(db)
        return
    print_status(existing_study_url(study, db), study)


def _database_urls(db: str | None) -> list[str]:
    if db is not None:
        return [db]
    files = sorted(DEFAULT_RUNS_DIR.glob("*/paretune.db"))
    return [f"sqlite:///{path.resolve()}" for path in files]


def readable_stores(db: str | None) -> Iterator[tuple[str, ResultStore]]:
    """``(url, open store)`` for ``--db`` or every ``./paretune-runs/*/paretune.db``; a
    database that cannot be opened is skipped with one warning line."""
    from study.store import StoreError

    for url in _database_urls(db):
        try:
            store = open_store(url)
        except StoreError as error:
            warn_unreadable(url, error)
            continue
        try:
            yield url, store
        finally:
            store.close()


def dashboard_stores(db: str | None, study: str | None = None) -> tuple[list[str], list[str]]:
    """``(urls, labels)`` the dashboard shows: ``--db``, or every readable
    ``./paretune-runs/*/paretune.db`` labelled by its folder (unreadable ones skipped with
    a warning)."""
    from study.store import ResultStore, StoreError

    if db is not None:
        return [db], [redact(db)]
    if study is not None and not (DEFAULT_RUNS_DIR / study / "paretune.db").is_file():
        path = (DEFAULT_RUNS_DIR / study / "paretune.db").resolve()
        raise UserInputError(f"no study database at {path}; pass --db URL")
    urls, labels = [], []
    for path in sorted(DEFAULT_RUNS_DIR.glob("*/paretune.db")):
        url = f"sqlite:///{path.resolve()}"
        try:
            ResultStore(url, create=False).close()
        except StoreError as error:
            warn_unreadable(url, error)
            continue
        urls.append(url)
        labels.append(path.parent.name)
    if not urls:
        raise UserInputError(
            f"no study database under ./{DEFAULT_RUNS_DIR}/*/paretune.db; pass --db URL"
        )
    return urls, labels


def redact(url: str) -> str:
    from study.store import redact_url

    return redact_url(url)


def find_studies(db: str | None) -> list[tuple[str, str]]:
    """``(database url, study name)`` of every study ``readable_stores`` reaches."""
    from study.store import StoreError

    found: list[tuple[str, str]] = []
    for url, store in readable_stores(db):
        try:
            found.extend((url, record.name) for record in store.list_studies())
        except StoreError as error:
            warn_unreadable(url, error)
    return found


def ls_command(db: str | None) -> None:
    """``paretune ls``: every study in ``--db`` or under ``./paretune-runs``."""
    from study._driver import driver_note
    from study.store import StoreError, redact_url

    table = Table(title="studies")
    for column in ("study", "status", "trials", "created", "database"):
        table.add_column(column)
    notes = []
    for url, store in readable_stores(db):
        try:
            for record in store.list_studies():
                count = store.count_trials(record.name)
                created = record.created_at.strftime("%Y-%m-%d %H:%M") if record.created_at else ""
                note = driver_note(store, record)
                status = f"{record.status} (no driver)" if note else record.status
                table.add_row(record.name, status, str(count), created, redact_url(url))
                if note:
                    notes.append(f"{record.name}: {note}")
        except StoreError as error:
            warn_unreadable(url, error)
    console.print(table if table.row_count else "no studies found")
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]", highlight=False, soft_wrap=True)


def warn_unreadable(url: str, error: Exception) -> None:
    """One warning line for a database a listing skips."""
    from study.store import redact_url

    err_console.print(
        f"[yellow]warning:[/] skipped {escape(redact_url(url))}: {escape(str(error))}",
        highlight=False,
        soft_wrap=True,
    )


def study_folder(record: dict[str, Any], study: str) -> Path:
    """The folder of a stored study: its config's ``study_dir`` (``./paretune-runs/STUDY``
    for a study stored without one)."""
    return Path(str((record.get("config") or {}).get("study_dir") or DEFAULT_RUNS_DIR / study))


def export_command(study: str, db: str | None, fmt: str, out: Path | None) -> Path:
    """``paretune export STUDY --format csv|json|parquet``: every trial, ``on_front`` flag.

    Written to ``--out``, else to ``exports/STUDY-trials.FORMAT`` in the study's folder.
    """
    from analysis import load_study, method_fronts

    if fmt not in EXPORT_FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(EXPORT_FORMATS)} but got {fmt!r}")
    url = existing_study_url(study, db)
    frames = load_study(url, study, evaluations=False)
    objectives = [tuple(o) for o in frames.studies[0]["objectives"]]
    table = frames.trials.copy()
    flags = method_fronts(table, objectives).set_index("trial_id")
    for column in ("on_front", "on_front_overall"):
        table[column] = table["trial_id"].map(flags[column]).fillna(False).astype(bool)
    out = out or study_folder(frames.studies[0], study) / "exports" / f"{study}-trials.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_text(table.to_json(orient="records", date_format="iso", indent=1))
    else:  # tabular formats hold the nested params and config as JSON text
        flat = table.copy()
        for column in ("params", "config"):
            if column in flat:
                flat[column] = flat[column].map(json.dumps)
        if fmt == "csv":
            flat.to_csv(out, index=False)
        else:
            flat.to_parquet(out, index=False)
    console.print(
        f"wrote {len(table)} trials ({int(table['on_front'].sum())} on the front) to "
        f"{out.resolve()}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return out


def replay_command(study: str, trial_id: int, db: str | None) -> dict[str, Any]:
    """``paretune replay STUDY TRIAL``: re-runs a stored trial in-process and compares."""
    from study._trial_command import run_trial_command

    url = db or default_storage_url(check_study_name(study))
    store = open_store(url, must_exist=db is None)
    try:
        trials = {t.id: t for t in store.trials_of(study)}
        if trial_id not in trials:
            raise UserInputError(
                f"study {study!r} has no trial {trial_id}; its trials are "
                f"{', '.join(map(str, sorted(trials))) or 'none'}"
            )
        stored = trials[trial_id]
        config = dict(stored.config)
        if config.get("reference") is None and not stored.is_reference:
            # Trials that started beside their reference read it while running.
            reference = store.reference_trial(study, stored.seed)
            config["reference"] = reference.metrics if reference is not None else None
    finally:
        store.close()
    result = run_trial_command(config, None)
    same = result.metrics == stored.metrics
    verdict = (
        "[green]identical to the stored metrics[/]"
        if same
        else ("[yellow]differs from the stored metrics[/] (another device or library version?)")
    )
    console.print(f"replayed trial {trial_id} ({stored.method}, seed {stored.seed}): {verdict}")
    return {"identical": same, "metrics": result.metrics, "stored": stored.metrics}


def report_all_command(db: str | None, images: bool = False) -> list[Path]:
    """``paretune report --all``: the report of every study found, each in its folder."""
    from study.store import StoreError

    written = []
    for url, study in find_studies(db):
        try:
            written.append(report_command(study, url, None, images))
        except StoreError as error:
            warn_unreadable(url, error)
    if not written:
        console.print("no studies found")
    return written


def report_command(study: str, db: str | None, out: Path | None, images: bool = False) -> Path:
    """``paretune report STUDY``: the offline HTML report and tables; prints the comparison."""
    from analysis import build_report, load_study, sparsity_level_table, to_markdown

    url = existing_study_url(study, db)
    frames = load_study(url, study)
    record = frames.studies[0]
    objectives = [tuple(o) for o in record["objectives"]]
    folder = out or study_folder(record, study) / "report"
    levels = (record["config"].get("budget") or {}).get("sparsity_levels")
    paths = build_report(
        frames.trials,
        frames.evaluations,
        study,
        folder,
        objectives,
        export_images=images,
        compared_levels=levels,
    )
    completed = frames.trials[frames.trials["status"] == "COMPLETE"] if len(frames.trials) else None
    name, direction, level = headline_objective(objectives)
    if completed is not None and len(completed) and level:
        console.print(f"best {name} at or above each sparsity level, same budget per method:")
        table = sparsity_level_table(frames.trials, value=name, direction=direction)
        console.print(to_markdown(table), markup=False, highlight=False)
    console.print(f"report: {paths.html}")
    return paths.html
