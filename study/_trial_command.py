"""``paretune trial``: one trial in-process, without Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from study._console import console, mapping_table, metrics_table
from study._errors import UserInputError


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """Parses ``KEY=VALUE`` strings, values read as YAML scalars (numbers, bools, lists)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"{option}: expected KEY=VALUE but got {item!r}")
        parsed[key.strip()] = yaml.safe_load(raw)
    return parsed


def read_reference(path: Path) -> dict[str, dict[str, float]]:
    """The ``metrics`` of a trial JSON written by ``paretune trial --json``."""
    try:
        data = json.loads(path.read_text())
        return {task: dict(values) for task, values in data["metrics"].items()}
    except FileNotFoundError:
        raise UserInputError(f"--reference: file {path} does not exist") from None
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
        raise UserInputError(
            f"--reference: {path} is not a trial JSON with a 'metrics' map"
        ) from None


def run_trial_command(config_fields: dict[str, Any], json_path: Path | None) -> Any:
    """Runs one trial with a progress bar and prints its metrics.

    Everything is validated first (names, parameters, grouping, the data folder, the
    initial weights: the trial's data, model and pruner are built), so a bad input is one
    error line before any progress is shown.
    """
    import time

    from trials import Trainer, build_setup, run_trial, validate_data, validate_trial_config
    from trials.grouping import is_architecture_search

    started = time.perf_counter()
    config = validate_trial_config(config_fields)
    validate_data(config)
    setup = None if is_architecture_search(config.method) else build_setup(config)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} it  loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(
            f"{config.method} seed {config.seed}", total=config.iterations, loss=float("nan")
        )

        def on_step(iteration: int, loss: float) -> None:
            progress.update(bar, completed=iteration, loss=loss)

        def on_evaluation(evaluation: Any) -> None:
            summary = ", ".join(
                f"{task}: " + " ".join(f"{k}={v:.3g}" for k, v in list(m.items())[:2])
                for task, m in evaluation.metrics.items()
            )
            progress.console.print(
                f"  it {evaluation.iteration:>6}  sparsity {evaluation.sparsity:6.1%}  {summary}"
            )

        if setup is None:
            result = run_trial(config, on_evaluation=on_evaluation, on_step=on_step)
        else:
            trainer = Trainer(setup, on_evaluation=on_evaluation, on_step=on_step)
            result = trainer.train(started=started)

    console.print(metrics_table(result.metrics, title=f"{result.method} (seed {result.seed})"))
    console.print(
        mapping_table(
            {"overall": result.sparsity["overall"], **result.sparsity["components"]},
            "component",
            "sparsity",
            "{:.2%}",
        )
    )
    if result.thresholds:
        console.print(mapping_table(result.thresholds, "threshold", "sigmoid(s)", "{:.4g}"))
    if result.task_weights:
        console.print(mapping_table(result.task_weights, "task", "weight", "{:.3f}"))
    if result.delta_t is not None:
        console.print(f"Delta_T vs reference: {result.delta_t:+.2f}%")
    console.print(f"wall time {result.wall_time_s:.1f} s, {result.parameters:,} parameters")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        if result.checkpoint:  # next to the JSON: name it relative to it
            result.checkpoint = Path(result.checkpoint).name
        json_path.write_text(result.to_json())
        console.print(f"wrote {json_path}")
    return result
