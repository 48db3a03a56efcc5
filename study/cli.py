"""The ``paretune`` command line."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.markup import escape

from study._console import console, err_console
from study._errors import USER_ERRORS, describe, exit_code_for

P = ParamSpec("P")
R = TypeVar("R")


def reads_and_exits(command: Callable[P, R]) -> Callable[P, R]:
    """For a command that reads a study, prints and returns: no cyclic garbage collection
    while it runs. What it builds lives until it returns, so the collector finds nothing,
    yet its passes over the imported libraries and a big study's rows took a fifth of
    ``status`` on 20,000 trials."""

    @functools.wraps(command)
    def without_collection(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return without_collection


app = typer.Typer(
    name="paretune",
    help="Hyperparameter and architecture search studies on pruned multi-task networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def trial(
    dataset: Annotated[str, typer.Option(help="Data set name.")] = "scenes-nyu",
    dataset_root: Annotated[
        str | None, typer.Option(help="Folder of a real-format data set.")
    ] = None,
    data_option: Annotated[
        list[str] | None, typer.Option(help="Data set option KEY=VALUE.")
    ] = None,
    model: Annotated[str, typer.Option(help="Backbone name.")] = "resnet-tiny",
    model_option: Annotated[
        list[str] | None, typer.Option(help="Backbone option KEY=VALUE.")
    ] = None,
    head: Annotated[str, typer.Option(help="Head name.")] = "light",
    head_option: Annotated[list[str] | None, typer.Option(help="Head option KEY=VALUE.")] = None,
    method: Annotated[
        str, typer.Option(help="Weight pruning method: a name, or module:Class.")
    ] = "dense",
    target_sparsity: Annotated[float | None, typer.Option(help="Target overall sparsity.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Method parameter KEY=VALUE.")] = None,
    iterations: Annotated[int, typer.Option(help="Training iterations.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:i].")] = "auto",
    eval_every: Annotated[int, typer.Option(help="Evaluate every N iterations (0: 5 times).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    reference: Annotated[Path | None, typer.Option(help="Dense trial JSON for Delta_T.")] = None,
    init: Annotated[
        str,
        typer.Option(
            help="Start from: scratch, a trial JSON (its weights), a checkpoint, or "
            "torchvision ImageNet backbone weights."
        ),
    ] = "scratch",
    calibration: Annotated[
        str, typer.Option(help="Defaults: reference (the method's code) or short-budget.")
    ] = "reference",
) -> None:
    """Run one trial in this process (no Ray) and print its metrics."""
    from study._trial_command import parse_assignments, read_reference, run_trial_command

    method_params = parse_assignments(param or [], "--param")
    if target_sparsity is not None:
        method_params["target_sparsity"] = target_sparsity
    fields = {
        "dataset": dataset,
        "dataset_root": dataset_root,
        "dataset_options": parse_assignments(data_option or [], "--data-option"),
        "model": model,
        "model_options": parse_assignments(model_option or [], "--model-option"),
        "head": head,
        "head_options": parse_assignments(head_option or [], "--head-option"),
        "method": method,
        "method_params": method_params,
        "iterations": iterations,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "seed": seed,
        "threads": threads,
        "device": device,
        "reference": read_reference(reference) if reference else None,
        "init": init,
        "calibration": calibration,
        "save_checkpoint": str(json_out.with_suffix(".pt")) if json_out else None,
    }
    run_trial_command(fields, json_out)


def _count(value: int) -> str:
    """A parameter count to three significant digits: ``21.3M``, ``443k``, ``912``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:#.3g}".rstrip(".") + suffix
    return str(value)


@app.command()
def models() -> None:
    """List every backbone and head with parameter counts."""
    from rich import box
    from rich.table import Table

    from trials.models import describe_models

    table = Table(
        title="models with 3 NYU-like tasks (13-class segmentation, depth, normals)",
        caption="parameters: k = thousand, M = million; prunable: conv and linear weights",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("backbone", no_wrap=True)
    table.add_column("head", no_wrap=True)
    for column in ("stride", "backbone\nparams", "heads\nparams", "total\nparams", "prunable"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in describe_models():
        heads = sum(row["head_parameters"].values())
        table.add_row(
            row["backbone"],
            row["head"],
            str(row["output_stride"]),
            _count(row["backbone_parameters"]),
            _count(heads),
            _count(row["total_parameters"]),
            _count(row["prunable_parameters"]),
        )
    console.print(table)
    from study._commands import method_rows

    names = ", ".join(row["name"] for row in method_rows())
    console.print(
        f"methods: {names} ('paretune methods' shows their search spaces)",
        highlight=False,
    )


@app.command()
def methods() -> None:
    """List every method (weight pruners, architecture searches, plugins) with its
    searched parameters."""
    from study._commands import methods_command

    methods_command()


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the results database (default: ./paretune-runs/STUDY/paretune.db).",
    ),
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Join this Ray cluster (HOST:PORT).")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", help="Show Ray's own output.")]


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Study YAML file.")],
    address: AddressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run a study: the dense reference, then every method's search."""
    from study._commands import run_command

    run_command(config, address, verbose)


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="Study YAML file.")],
    address: AddressOption = None,
    samples: Annotated[
        int, typer.Option(help="Samples read per split to check files and shapes.")
    ] = 8,
    iterations: Annotated[
        int, typer.Option(help="Iterations timed per method for the estimate.")
    ] = 3,
    estimate: Annotated[
        bool, typer.Option("--estimate/--no-estimate", help="Time a few iterations per method.")
    ] = True,
) -> None:
    """Pre-flight a study (writes nothing): config, data, Ray, database, name, cost."""
    from study._check import check_command

    check_command(config, address, samples, iterations, estimate)


@app.command()
def resume(
    study: Annotated[str, typer.Argument(help="Study name.")],
    db: DbOption = None,
    address: AddressOption = None,
    verbose: VerboseOption = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="The study's YAML with more trials per method: extend the study."
        ),
    ] = None,
) -> None:
    """Finish a study whose driver stopped (interrupted trials are re-run)."""
    from study._commands import resume_command

    resume_command(study, db, address, verbose, config)


@app.command()
@reads_and_exits
def status(
    study: Annotated[
        str | None, typer.Argument(help="Study name (all studies if left out).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Per method: trials done, running and failed, Pareto set size, best Delta_T."""
    from study._commands import status_command

    status_command(study, db)


@app.command("ls")
@reads_and_exits
def list_studies(db: DbOption = None) -> None:
    """List the studies in a database (or under ./paretune-runs)."""
    from study._commands import ls_command

    ls_command(db)


@app.command()
@reads_and_exits
def export(
    study: Annotated[str, typer.Argument(help="Study name.")],
    fmt: Annotated[str, typer.Option("--format", help="csv, json or parquet.")] = "csv",
    out: Annotated[
        Path | None,
        typer.Option(help="Output file (default: STUDY_DIR/exports/STUDY-trials.FORMAT)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Export every trial with an on_front flag (the Pareto set is a first-class result)."""
    from study._commands import export_command

    export_command(study, db, fmt, out)


@app.command()
def replay(
    study: Annotated[str, typer.Argument(help="Study name.")],
    trial_id: Annotated[int, typer.Argument(help="Trial id (see 'paretune export').")],
    db: DbOption = None,
) -> None:
    """Re-run a stored trial in this process from its stored config and seed."""
    from study._commands import replay_command

    replay_command(study, trial_id, db)


@app.command()
def report(
    study: Annotated[str | None, typer.Argument(help="Study name.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: STUDY_DIR/report).")
    ] = None,
    db: DbOption = None,
    images: Annotated[
        bool, typer.Option("--images", help="Also export PNG/SVG figures (needs kaleido).")
    ] = False,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every study in --db or under ./paretune-runs (one each)."),
    ] = False,
) -> None:
    """Write the self-contained HTML report and the tables of a study (or of all)."""
    from study._commands import report_all_command, report_command
    from study._errors import UserInputError

    if every == (study is not None):
        raise UserInputError("give a study name or --all (not both)")
    if every:
        report_all_command(db, images)
    else:
        assert study is not None
        report_command(study, db, out, images)


@app.command()
def dashboard(
    db: DbOption = None,
    study: Annotated[str | None, typer.Option(help="Study shown first (default: newest).")] = None,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (loopback only by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8050,
    refresh: Annotated[
        float, typer.Option(min=0, help="Seconds between reloads of the study (0: never).")
    ] = 5.0,
) -> None:
    """Browse a study's fronts and trials in a local web page, live while it runs."""
    import socket

    from analysis import serve_dashboard
    from study._commands import check_study_name, dashboard_stores
    from study._errors import UserInputError
    from study.store import ResultStore, redact_url

    if study is not None:
        check_study_name(study)
    urls, labels = dashboard_stores(db, study)
    if study is not None:
        if db is None and study not in labels:
            raise UserInputError(f"the study database of {study!r} cannot be read; pass --db URL")
        home = db if db is not None else urls[labels.index(study)]
        with ResultStore(home, create=False) as store:  # reachable, and holds the study
            store.get_study(study)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserInputError(
                f"--port {port} on {host} cannot be used ({error.strerror}); pick another --port"
            ) from None
    shown = f"[{host}]" if ":" in host else host
    what = redact_url(urls[0]) if len(urls) == 1 else f"{len(urls)} study databases"
    console.print(
        f"dashboard of {what} on http://{shown}:{port}/ (Ctrl+C stops it)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/] --host {host} lets other machines see the study's "
            "configs and results; the dashboard has no login"
        )
    target = urls[0] if db is not None else urls
    serve_dashboard(target, host=host, port=port, study=study, refresh_s=refresh, labels=labels)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
        if argv is None:  # the process ends: no collection over what it built at exit
            gc.freeze()
    except USER_ERRORS as error:
        err_console.print(
            f"[bold red]error:[/] {escape(describe(error))}",
            highlight=False,
            soft_wrap=True,
            markup=True,
        )
        sys.exit(exit_code_for(error))
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
