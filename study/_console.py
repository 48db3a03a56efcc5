"""Terminal output helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def metrics_table(rows: Mapping[str, Mapping[str, float]], title: str | None = None) -> Table:
    """A task x metric table: one row per task, its metrics as ``name value`` pairs."""
    table = Table(title=title, show_lines=False)
    table.add_column("task")
    table.add_column("metrics")
    for task, metrics in rows.items():
        text = "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())
        table.add_row(task, text)
    return table


def mapping_table(values: Mapping[str, float], key: str, value: str, fmt: str = "{:.4f}") -> Table:
    """A two-column table of a flat mapping."""
    table = Table()
    table.add_column(key)
    table.add_column(value, justify="right")
    for name, number in values.items():
        table.add_row(name, fmt.format(number))
    return table
