"""Benchmark: orchestration overhead of a study (Ray Tune + Optuna + the store).

Compares the study's wall time (the whole ``paretune run``: start-up, Ray, every trial and
the report) with the trials' own compute spread over the slots the study may fill:
``overhead = wall / (sum(device seconds) / (max_concurrent x devices per trial)) - 1``. A
trial's device seconds are its wall time times the CPUs (or GPUs) it held, so a dense
reference that trains on several slots counts for all of them. Writes
``benchmarks/results/orchestration.json``.

    python -m benchmarks.orchestration                      # runs examples/quickstart.yaml
    python -m benchmarks.orchestration --db URL --study S   # measures a finished study
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from study.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def run_study(config_path: Path) -> tuple[str, str, float]:
    """Runs a copy of the config in a temporary folder; returns (url, study, wall seconds)."""
    config = yaml.safe_load(config_path.read_text())
    folder = Path(tempfile.mkdtemp(prefix="paretune-bench-"))
    config["study_dir"] = str(folder / config["name"])
    copy = folder / "study.yaml"
    copy.write_text(yaml.safe_dump(config))
    paretune = Path(sys.executable).with_name("paretune")
    start = time.perf_counter()
    subprocess.run([str(paretune), "run", str(copy)], check=True, cwd=folder)
    wall = time.perf_counter() - start
    return f"sqlite:///{folder / config['name'] / 'paretune.db'}", config["name"], wall


def measure(url: str, study: str, wall: float | None) -> dict[str, Any]:
    """Overhead figures of a finished study (wall time from the store when not given)."""
    store = ResultStore(url)
    try:
        record = store.get_study(study)
        trials = [t for t in store.trials_of(study) if t.wall_time_s]
    finally:
        store.close()
    resources = record.config["resources"]
    concurrency = resources["max_concurrent"]
    per_trial = resources.get("gpus_per_trial") or resources.get("cpus_per_trial") or 1
    if wall is None:
        start = min(t.started_at for t in trials if t.started_at)
        end = max(t.finished_at for t in trials if t.finished_at)
        wall = (end - start).total_seconds()
    compute = sum(t.device_s or t.wall_time_s * per_trial for t in trials)
    ideal = compute / (concurrency * per_trial)
    return {
        "study": study,
        "trials": len(trials),
        "concurrency": concurrency,
        "wall_s": wall,
        "trial_compute_s": compute,
        "ideal_s": ideal,
        "overhead": wall / ideal - 1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--db")
    parser.add_argument("--study")
    args = parser.parse_args(argv)
    if args.db:
        figures = measure(args.db, args.study, None)
    else:
        url, study, wall = run_study(args.config)
        figures = measure(url, study, wall)
    print(
        f"study {figures['study']}: {figures['trials']} trials, wall {figures['wall_s']:.0f} s, "
        f"trial device time {figures['trial_compute_s']:.0f} s over {figures['concurrency']} "
        f"slots = {figures['ideal_s']:.0f} s: orchestration overhead {figures['overhead']:.1%} "
        f"(target <= 5%)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "orchestration.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
