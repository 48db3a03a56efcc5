"""Typed keyword options of plugins (data sets, backbones, heads) with one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from trials.registry import unknown_name_message

P = TypeVar("P", bound=BaseModel)


def parse_options(
    params_type: type[P], owner: str, options: Mapping[str, Any], error_type: type[Exception]
) -> P:
    """Validates the keyword ``options`` of ``owner`` (e.g. ``backbone 'resnet-tiny'``).

    Raises:
        error_type: one sentence naming the option, the rule and the value got; an unknown
            option lists the valid ones and suggests the closest.
    """
    try:
        return params_type(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            message = unknown_name_message(f"{owner} option", field, list(params_type.model_fields))
        else:
            rule = error["msg"].removeprefix("Value error, ").removeprefix("Input ")
            if field:
                message = f"{owner} option {field!r} {rule} but got {error.get('input')!r}"
            else:  # a rule across several options; its message names them
                message = f"{owner}: {rule}"
        raise error_type(message) from None
