"""The rule a study's name follows (it names a folder under ``paretune-runs``), in a module
light enough for every command to check a name before loading anything else."""

from __future__ import annotations

import re

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
STUDY_NAME_RULE = "must be 1-100 letters, digits, '-' or '_', starting with a letter or digit"


def is_study_name(name: str) -> bool:
    """Whether ``name`` can name a study (and its folder under ``paretune-runs``)."""
    return isinstance(name, str) and bool(_SLUG.fullmatch(name))
