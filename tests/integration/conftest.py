"""Integration tests need the installed ``paretune`` console script."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.helpers import PARETUNE


@pytest.fixture(autouse=True)
def _needs_console_script() -> None:
    if not shutil.which(PARETUNE):
        pytest.fail(f"the paretune console script is not installed at {PARETUNE}")
