"""What the study commands of the CLI do (``run``, ``resume``, ``status``, ``ls``,
``export``, ``replay``); ``study.cli`` only parses arguments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from study._api import (
    DEFAULT_RUNS_DIR,
    check_study_name,
    default_storage_url,
    headline_objective,
    open_store,
    open_study_store,
    study_folder,
)
from study._api import study_url as existing_study_url
from study._console import console, err_console
from study._errors import UserInputError

if TYPE_CHECKING:
    from study._api import StudyHandle
    from study.store import ResultStore, StudyRecord

EXPORT_FORMATS = ("csv", "json", "parquet")


class StudyIncomplete(UserInputError):
    """Every trial ran, but some results did not reach Optuna (exit code 1)."""

    exit_code = 1


def run_command(config_path: Path, address: str | None, verbose: bool) -> None:
    """``paretune run CONFIG``."""
    from study import run_study

    finish(run_study(config_path, address=address, verbose=verbose))


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
    from study import resume_study

    check_study_name(study)
    handle = resume_study(study, db=db, config=config_path, address=address, verbose=verbose)
    finish(handle)


def finish(handle: StudyHandle) -> None:
    """After ``run`` and ``resume``: the status, the report, and an error when results did
    not reach Optuna."""
    print_status(handle.url, handle.name)
    report_command(handle.name, handle.url, handle.folder / "report")
    problems = handle.problems
    if problems:
        shown = "\n".join(f"  {line}" for line in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise StudyIncomplete(
            f"study {handle.name!r} is INCOMPLETE: {len(problems)} trial result(s) did not "
            f"reach its Optuna searches:\n{shown}{more}"
        )


#: The trial columns ``status`` reads (besides its objectives): counts, the level
#: comparison, the dense reference's cost and results missing in Optuna.
STATUS_COLUMNS = (
    "seed",
    "status",
    "is_reference",
    "delta_t",
    "sparsity",
    "iterations",
    "wall_time_s",
    "flops",
    "search_error",
)


def print_status(url: str | ResultStore, study: str) -> None:
    """Per method: done/stopped/running/failed, Pareto set size, best headline objective;
    then whatever needs attention (a dead driver, results that did not reach Optuna).

    ``url`` is the study's database URL or an open store (left open)."""
    import math

    from analysis import load_study, method_summary

    store = open_store(url) if isinstance(url, str) else url
    try:
        stored = store.get_study(study)
        objectives = [(str(n), str(d)) for n, d in stored.objectives]
        # A per-task objective (``metric:...``) lives in the wide columns: load them then.
        wide = any(":" in objective for objective, _ in objectives)
        needed = None if wide else {*STATUS_COLUMNS, *(name for name, _ in objectives)}
        frames = load_study(
            store, study, evaluations=False, configs=False, wide=wide, columns=needed
        )
        lines, driven = _attention(store, stored, frames.trials)
    finally:
        if isinstance(url, str):
            store.close()
    record = frames.studies[0]
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


def _attention(store: ResultStore, record: StudyRecord, trials: Any) -> tuple[list[str], bool]:
    """Lines about a study that needs attention (its driver, results missing in Optuna),
    and whether a live driver runs it."""
    from study._driver import driver_note

    lines = [note] if (note := driver_note(store, record)) else []
    driven = record.status == "RUNNING" and note is None
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
    with open_study_store(study, db) as store:
        print_status(store, study)


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
    from analysis import sparsity_level_table, to_markdown
    from study import open_study

    handle = open_study(check_study_name(study), db)
    html = handle.report(out, images)
    trials = handle.trials
    completed = trials[trials["status"] == "COMPLETE"] if len(trials) else None
    name, direction, level = headline_objective(handle.objectives)
    if completed is not None and len(completed) and level:
        console.print(f"best {name} at or above each sparsity level, same budget per method:")
        table = sparsity_level_table(trials, value=name, direction=direction)
        console.print(to_markdown(table), markup=False, highlight=False)
    console.print(f"report: {html}")
    return html


def _range_text(spec: dict[str, Any]) -> str:
    """A searched parameter's range: ``[0.5, 0.99]``, ``[1e-06, 0.03] log``, ``{a, b}``."""
    if "choices" in spec:
        return "{" + ", ".join(map(str, spec["choices"])) + "}"
    text = f"[{spec['low']:g}, {spec['high']:g}]"
    return text + " log" if spec.get("log") else text


def method_rows() -> list[dict[str, str]]:
    """Every method (weight pruners, then architecture searches) as ``name``, ``kind``,
    ``source`` (``paretune``, or the plugin distribution) and ``searched`` (its searched
    parameters and ranges, or what is missing when it has no search space)."""
    from search_spaces import get_search_space
    from trials.grouping import ARCHITECTURE_SEARCHES
    from trials.pruning import PRUNERS
    from trials.registry import PluginError

    rows = []
    for kind, registry in (
        ("weight pruner", PRUNERS),
        ("architecture search", ARCHITECTURE_SEARCHES),
    ):
        for name in registry.names():
            try:
                params = get_search_space(name).searched
                searched = ", ".join(f"{p.name} {_range_text(p.to_dict())}" for p in params)
            except PluginError:
                searched = "no search space (add one to the paretune.search_spaces group)"
            origin = registry.origin(name)
            source = f"plugin {origin}" if origin else "paretune"
            rows.append({"name": name, "kind": kind, "source": source, "searched": searched or "-"})
    return rows


def methods_command() -> None:
    """``paretune methods``: every method with its source and searched parameters."""
    table = Table(title="methods", caption="searched: the default search space's ranges")
    for column in ("method", "kind", "source", "searched"):
        table.add_column(column, no_wrap=column != "searched")
    for row in method_rows():
        table.add_row(row["name"], row["kind"], row["source"], row["searched"])
    console.print(table)
