"""Shared fixtures: a private data cache per test session and tiny trial settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Tiny scenes: fast to render and to train on, still all five tasks.
TINY_SCENES = {"resolution": 32, "num_train": 48, "num_val": 16, "num_test": 16}


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keeps rendered data sets out of the user's cache."""
    if "PARETUNE_TEST_CACHE" in os.environ:
        os.environ["PARETUNE_CACHE"] = os.environ["PARETUNE_TEST_CACHE"]
    else:
        os.environ["PARETUNE_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def tiny_trial() -> dict[str, object]:
    """Fields of a TrialConfig that trains in about a second."""
    return {
        "dataset": "scenes-nyu",
        "dataset_options": dict(TINY_SCENES),
        "model": "resnet-tiny",
        "model_options": {"width": 8},
        "head_options": {"hidden": 8},
        "iterations": 12,
        "batch_size": 4,
        "eval_every": 6,
        "threads": 1,
        "seed": 3,
    }


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
