"""What the study commands of the CLI do (``run``, ``resume``, ``status``, ``ls``,
``export``, ``replay``); ``study.cli`` only parses arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from study._console import console
from study._errors import UserInputError

if TYPE_CHECKING:
    from study._config import StudyConfig
    from study.store import ResultStore

DEFAULT_RUNS_DIR = Path("paretune-runs")
EXPORT_FORMATS = ("csv", "json", "parquet")


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
    url = db or default_storage_url(study)
    open_store(url, must_exist=db is None).close()
    return url


def validate_study(config: StudyConfig) -> None:
    """Checks every trial the study would run, plugin names included, before Ray starts."""
    from study._runner import REFERENCE_METHOD, plan_methods
    from trials._validate import validate_data, validate_trial_config

    for seed in config.budget.seeds:
        reference = validate_trial_config(config.trial_config(REFERENCE_METHOD, {}, seed))
    for plan in plan_methods(config):
        fields = config.trial_config(plan.method, {}, plan.seed)
        searched = tuple(param.name for param in plan.space.searched)  # fixed ones are checked
        validate_trial_config(fields, searched=searched)
    validate_data(reference)


def _run(config: StudyConfig, store: ResultStore, url: str, verbose: bool, *, resume: bool) -> None:
    from study._ray import configure_ray_output

    configure_ray_output(verbose)
    from study._progress import study_progress
    from study._runner import StudyRunner

    runner = StudyRunner(config, store, url, verbose=verbose)
    if resume:
        changed = runner.reconcile()
        if changed:
            console.print(f"marked {changed} interrupted trial(s) FAILED; running the rest")
    else:
        runner.create()
    console.print(f"study [bold]{config.name}[/] -> {config.redacted_storage_url()}")
    from study._faults import stop_on_store_failure

    with stop_on_store_failure(config.name, url), study_progress() as progress:
        runner.run(progress)
    print_status(url, config.name)
    report_command(config.name, url, Path(str(config.study_dir)) / "report")


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
        if any(record.name == config.name for record in store.list_studies()):
            raise UserInputError(
                f"study {config.name!r} already exists in {config.redacted_storage_url()}; "
                f"finish it with 'paretune resume {config.name} --db URL' or choose another name"
            )
        _run(config, store, url, verbose, resume=False)
    finally:
        store.close()


def resume_command(study: str, db: str | None, address: str | None, verbose: bool) -> None:
    """``paretune resume STUDY``: reconciles a stopped study and finishes it."""
    from study._config import StudyConfig
    from study._ray import check_address

    url = db or default_storage_url(study)
    store = open_store(url, must_exist=db is None)
    try:
        record = store.get_study(study)
        config = StudyConfig.model_validate(record.config)
        if address is not None:
            config = config.model_copy(update={"ray_address": address})
        if config.ray_address:
            check_address(config.ray_address)
        _run(config, store, url, verbose, resume=True)
    finally:
        store.close()


def print_status(url: str, study: str) -> None:
    """Per method: done/stopped/running/failed, Pareto set size, best Delta_T at >= 90%."""
    import math

    from analysis import load_study, method_summary

    frames = load_study(url, study)
    record = frames.studies[0]
    objectives = [tuple(o) for o in record["objectives"]]
    table = Table(title=f"study {study} ({record.get('status', '')})")
    columns = ("method", "complete", "pruned", "running", "failed", "pareto", "best ΔT @ ≥90%")
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    if frames.trials.empty:
        console.print(f"study {study} has no trials yet")
        return
    summary = method_summary(frames.trials, objectives, sparsity=0.9)
    for method, row in summary.iterrows():
        best = row["best_delta_t"]
        table.add_row(
            str(method),
            *(
                str(int(row[c]))
                for c in ("n_complete", "n_pruned", "n_running", "n_failed", "pareto_size")
            ),
            "–" if math.isnan(best) else f"{best:+.2f}%",
        )
    console.print(table)


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


def ls_command(db: str | None) -> None:
    """``paretune ls``: every study in ``--db`` or under ``./paretune-runs``."""
    from study.store import redact_url

    table = Table(title="studies")
    for column in ("study", "status", "trials", "created", "database"):
        table.add_column(column)
    for url in _database_urls(db):
        store = open_store(url)
        try:
            for record in store.list_studies():
                count = store.count_trials(record.name)
                created = record.created_at.strftime("%Y-%m-%d %H:%M") if record.created_at else ""
                table.add_row(record.name, record.status, str(count), created, redact_url(url))
        finally:
            store.close()
    console.print(table if table.row_count else "no studies found")


def export_command(study: str, db: str | None, fmt: str, out: Path | None) -> Path:
    """``paretune export STUDY --format csv|json|parquet``: every trial, ``on_front`` flag."""
    from analysis import load_study, method_fronts

    if fmt not in EXPORT_FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(EXPORT_FORMATS)} but got {fmt!r}")
    url = existing_study_url(study, db)
    frames = load_study(url, study)
    objectives = [tuple(o) for o in frames.studies[0]["objectives"]]
    table = frames.trials.copy()
    flags = method_fronts(table, objectives).set_index("trial_id")
    for column in ("on_front", "on_front_overall"):
        table[column] = table["trial_id"].map(flags[column]).fillna(False).astype(bool)
    out = out or Path(f"{study}-trials.{fmt}")
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
        f"wrote {len(table)} trials ({int(table['on_front'].sum())} on the front) to {out}"
    )
    return out


def replay_command(study: str, trial_id: int, db: str | None) -> dict[str, Any]:
    """``paretune replay STUDY TRIAL``: re-runs a stored trial in-process and compares."""
    from study._trial_command import run_trial_command

    store = open_store(db or default_storage_url(study), must_exist=db is None)
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


def report_command(study: str, db: str | None, out: Path | None, images: bool = False) -> Path:
    """``paretune report STUDY``: the offline HTML report and tables; prints the comparison."""
    from analysis import build_report, load_study, sparsity_level_table, to_markdown

    url = existing_study_url(study, db)
    frames = load_study(url, study)
    record = frames.studies[0]
    objectives = [tuple(o) for o in record["objectives"]]
    folder = (
        out or Path(str(record["config"].get("study_dir") or DEFAULT_RUNS_DIR / study)) / "report"
    )
    paths = build_report(
        frames.trials, frames.evaluations, study, folder, objectives, export_images=images
    )
    completed = frames.trials[frames.trials["status"] == "COMPLETE"] if len(frames.trials) else None
    if completed is not None and len(completed):
        console.print("best Delta_T (%) at or above each sparsity level, same budget per method:")
        console.print(
            to_markdown(sparsity_level_table(frames.trials)), markup=False, highlight=False
        )
    console.print(f"report: {paths.html}")
    return paths.html
