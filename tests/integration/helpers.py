"""Helpers for tests that run whole studies through the CLI, Ray and a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PARETUNE = str(Path(sys.executable).with_name("paretune"))

TINY_DATA = {"resolution": 32, "num_train": 48, "num_val": 16, "num_test": 16}


def tiny_study(name: str, tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A study config that runs in well under a minute on 2 cores."""
    config: dict[str, Any] = {
        "name": name,
        "dataset": {"name": "scenes-nyu", "options": dict(TINY_DATA)},
        "model": {
            "backbone": "resnet-tiny",
            "options": {"width": 8},
            "head_options": {"hidden": 8},
        },
        "methods": [{"name": "dense"}, {"name": "magnitude"}, {"name": "adapmtl"}],
        "budget": {
            "trials_per_method": 2,
            "iterations": 12,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 6,
        },
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
        # a dozen iterations: the reference defaults (threshold -30.5) would prune nothing
        "calibration": "short-budget",
        "study_dir": str(tmp_path / name),
    }
    config.update(changes)
    return config


def write_config(config: dict[str, Any], folder: Path) -> Path:
    path = folder / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def db_url(config: dict[str, Any]) -> str:
    return config.get("storage") or f"sqlite:///{Path(config['study_dir']) / 'paretune.db'}"


def paretune(
    *args: str, cwd: Path | None = None, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Runs the installed ``paretune`` command."""
    run = subprocess.run(
        [PARETUNE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=worker_env(),
    )
    if check and run.returncode != 0:
        raise AssertionError(
            f"paretune {' '.join(args)} exited {run.returncode}\n"
            f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
        )
    return run


def start_driver(config: dict[str, Any], folder: Path) -> subprocess.Popen[bytes]:
    """``paretune run`` of ``config`` in the background, in a session of its own."""
    return subprocess.Popen(
        [PARETUNE, "run", str(write_config(config, folder))],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=worker_env(),
        start_new_session=True,
    )


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["COLUMNS"] = "160"
    return env
