"""The ``paretune`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from study._console import console, err_console
from study._errors import USER_ERRORS, describe, exit_code_for

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
    model: Annotated[str, typer.Option(help="Backbone name.")] = "resnet-tiny",
    head: Annotated[str, typer.Option(help="Head name.")] = "light",
    method: Annotated[str, typer.Option(help="Weight pruning method.")] = "dense",
    target_sparsity: Annotated[float | None, typer.Option(help="Target overall sparsity.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Method parameter KEY=VALUE.")] = None,
    iterations: Annotated[int, typer.Option(help="Training iterations.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:i].")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    reference: Annotated[Path | None, typer.Option(help="Dense trial JSON for Delta_T.")] = None,
) -> None:
    """Run one trial in this process (no Ray) and print its metrics."""
    from study._trial_command import parse_assignments, read_reference, run_trial_command

    method_params = parse_assignments(param or [], "--param")
    if target_sparsity is not None:
        method_params["target_sparsity"] = target_sparsity
    fields = {
        "dataset": dataset,
        "dataset_root": dataset_root,
        "model": model,
        "head": head,
        "method": method,
        "method_params": method_params,
        "iterations": iterations,
        "batch_size": batch_size,
        "seed": seed,
        "threads": threads,
        "device": device,
        "reference": read_reference(reference) if reference else None,
    }
    run_trial_command(fields, json_out)


@app.command()
def models() -> None:
    """List every backbone and head with parameter counts."""
    from rich.table import Table

    from trials.models import describe_models

    table = Table(title="models (3 NYU-like tasks)")
    rows = describe_models()
    for column in rows[0]:
        table.add_column(column, justify="right" if column != "backbone" else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
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
