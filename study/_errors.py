"""Which exceptions the CLI reports as one line, and with which exit code."""

from __future__ import annotations

import click
from pydantic import ValidationError

from trials.errors import ParetuneError


def format_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error as ``field: message (got value)``."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "config"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        return f"unknown key {location!r}"
    return f"{location}: {message} (got {first.get('input')!r})"


class UserInputError(ParetuneError):
    """A command-line value a user can fix."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ParetuneError,
    ValidationError,
    click.ClickException,
    click.exceptions.Abort,
)


def exit_code_for(error: BaseException) -> int:
    """2 for every input error (like argparse), the error's own code when it has one."""
    if isinstance(error, click.ClickException):
        return error.exit_code
    return getattr(error, "exit_code", 2)


def describe(error: BaseException) -> str:
    """One line for the user."""
    if isinstance(error, ValidationError):
        return format_validation_error(error)
    if isinstance(error, click.ClickException):
        return error.format_message()
    if isinstance(error, click.exceptions.Abort):
        return "aborted"
    return str(error)
