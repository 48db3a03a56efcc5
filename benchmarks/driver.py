"""Benchmark: what paretune's driver costs per trial, against plain Ray Tune.

The same trivially short trainable (a few results, then a final one; no sleep, no model)
is scheduled (a) by a hand-written ``Tuner`` with nothing else and (b) by paretune's whole
driver path: the router over several method runs, each with Optuna's multi-objective TPE
on the study's database, the results store written for every trial and result, the
reference board and the progress view. Each arm runs in its own process (peak memory is
that process's), on one local Ray that advertises ``--concurrency`` CPUs, so that many
trials run at once whatever the machine's cores. For each concurrency the benchmark prints
trials/s and results/s of both arms and their ratio, the driver's CPU time per trial and
its peak memory; ``--stored`` repeats paretune's arm with that many trials already in the
database (another study), to show how the driver's costs grow with the store.

    python -m benchmarks.driver                              # 500 trials at 16, 64, 200
    python -m benchmarks.driver --quick                      # 100 trials at 16
    python -m benchmarks.driver --concurrency 64 --stored 20000
    python -m benchmarks.driver --concurrency 64 --repeats 3  # medians of interleaved runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Results a trial reports before its final one.
EVALUATIONS = 3
#: Method runs of paretune's arm (trials are spread evenly over them).
METHODS = ("magnitude", "random", "snip", "imp")
RESULTS = Path(__file__).resolve().parent / "results"


def tiny_trainable(config: dict[str, Any]) -> None:
    """Reports :data:`EVALUATIONS` evaluations and a final outcome as a paretune trial does."""
    from ray import tune

    from study._tune_config import FINAL_KEY

    x = float(config.get("target_sparsity", config.get("x", 0.5)))
    metrics = {"segment_semantic": {"miou": x}}
    for iteration in range(1, EVALUATIONS + 1):
        evaluation = {
            "iteration": iteration,
            "metrics": metrics,
            "losses": {"segment_semantic": 1.0 / iteration},
            "sparsity": x * iteration / EVALUATIONS,
            "components": {"backbone": x},
            "delta_t": -x,
            "elapsed_s": 0.01 * iteration,
            "images_seen": iteration,
        }
        tune.report({"iteration": iteration, "evaluation": evaluation, "delta_t": -x})
    outcome = {
        "metrics": metrics,
        "sparsity": x,
        "components": {"backbone": x},
        "delta_t": -x,
        "delta_m": -x,
        "delta_t_per_task": {"segment_semantic": -x},
        "iterations": EVALUATIONS,
        "wall_time_s": 0.03,
        "device_s": 0.03,
    }
    tune.report({"delta_t": -x, "sparsity": x, FINAL_KEY: outcome})


def _start_ray(concurrency: int) -> None:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from study._ray import configure_ray_output

    configure_ray_output(verbose=False)
    import ray

    ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)


def plain_arm(trials: int, concurrency: int, folder: Path) -> None:
    """(a) the trainable under a hand-written Tuner: default searcher, no callbacks."""
    from ray import tune

    tuner = tune.Tuner(
        tiny_trainable,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(
            num_samples=trials, max_concurrent_trials=concurrency, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(folder / "ray"), verbose=0),
    )
    tuner.fit()


def study_config(trials: int, concurrency: int, folder: Path, name: str) -> Any:
    """A study of :data:`METHODS` whose trials the tiny trainable runs."""
    from study import parse_config

    per_method = max(1, trials // len(METHODS))
    return parse_config(
        {
            "name": name,
            "study_dir": str(folder / name),
            "storage": f"sqlite:///{folder / 'paretune.db'}",
            "methods": [{"name": m} for m in METHODS],
            "init": "scratch",
            "reference": {"enabled": False},
            "budget": {"trials_per_method": per_method, "iterations": EVALUATIONS},
            "resources": {"cpus_per_trial": 1, "max_concurrent": concurrency},
            "sampler": {"name": "tpe", "seed": 0},
        }
    )


def paretune_arm(trials: int, concurrency: int, folder: Path) -> None:
    """(b) the trainable under paretune's driver (router, TPE, store, board, progress)."""
    from study._progress import study_progress
    from study._runner import StudyRunner
    from study.store import ResultStore

    config = study_config(trials, concurrency, folder, "driver")
    url = config.storage_url()
    with ResultStore(url) as store:
        runner = StudyRunner(config, store, url, trainable=tiny_trainable)
        runner.create()
        with study_progress() as progress:  # off a terminal: drawn once at the end
            problems = runner.run(progress)
        stored = store.count_trials(config.name, status="COMPLETE")
    if problems or stored != config.budget.trials_per_method * len(METHODS):
        raise SystemExit(f"paretune arm: {stored} trials COMPLETE, problems: {problems[:3]}")


def store_others(url: str, count: int) -> None:
    """``count`` finished trials of another study in the database at ``url``."""
    from study.store import ResultStore

    with ResultStore(url) as store:
        store.create_study("others", {}, [("delta_t", "maximize"), ("sparsity", "maximize")])
        run = store.start_method_run("others", "magnitude", 0)
        outcome = {"status": "COMPLETE", "delta_t": -1.0, "sparsity": 0.9, "iterations": 3}
        for start in range(0, count, 5000):
            batch = [dict(outcome, params={"k": k}) for k in range(start, min(count, start + 5000))]
            store.add_trials(run, batch)


def run_arm(arm: str, trials: int, concurrency: int, stored: int) -> dict[str, Any]:
    """Runs one arm in this process; its figures."""
    folder = Path(tempfile.mkdtemp(prefix="paretune-driver-"))
    if stored:
        store_others(f"sqlite:///{folder / 'paretune.db'}", stored)
    _start_ray(concurrency)
    cpu, start = time.process_time(), time.perf_counter()
    (plain_arm if arm == "plain" else paretune_arm)(trials, concurrency, folder)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    done = trials if arm == "plain" else max(1, trials // len(METHODS)) * len(METHODS)
    return {
        "arm": arm,
        "concurrency": concurrency,
        "stored": stored,
        "trials": done,
        "wall_s": wall,
        "trials_per_s": done / wall,
        "results_per_s": done * (EVALUATIONS + 1) / wall,
        "cpu_ms_per_trial": 1000 * cpu / done,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(arm: str, trials: int, concurrency: int, stored: int = 0) -> dict[str, Any]:
    """One arm in a fresh process (its own Ray and peak memory)."""
    command = [sys.executable, "-m", "benchmarks.driver", "--arm", arm, "--trials", str(trials)]
    command += ["--concurrency", str(concurrency), "--stored", str(stored)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    # Ray's own warnings may reach stdout after the figures: take the last JSON line.
    return json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("{")))


def _row(figures: dict[str, Any]) -> str:
    return (
        f"{figures['arm']:<9} {figures['concurrency']:>4} {figures['stored']:>7} "
        f"{figures['trials_per_s']:8.2f} {figures['results_per_s']:9.2f} "
        f"{figures['cpu_ms_per_trial']:9.1f} {figures['peak_mb']:8.0f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--concurrency", default="16,64,200", help="comma-separated")
    parser.add_argument("--stored", default="0", help="comma-separated stored trial counts")
    parser.add_argument("--quick", action="store_true", help="100 trials at concurrency 16")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each arm, interleaved; medians compared"
    )
    parser.add_argument("--arm", choices=("plain", "paretune"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm:  # one arm, in this process
        figures = run_arm(args.arm, args.trials, int(args.concurrency), int(args.stored))
        print(json.dumps(figures))
        return 0
    trials = 100 if args.quick else args.trials
    levels = [16] if args.quick else [int(c) for c in args.concurrency.split(",")]
    stored_counts = [int(s) for s in args.stored.split(",")]
    print(f"{trials} trials of {EVALUATIONS + 1} results each; figures per arm:")
    print("arm       conc  stored  trials/s results/s  cpu ms/t  peak MB")
    rows, ratios = [], []
    for concurrency in levels:
        plain_runs: list[float] = []
        ours_runs: dict[int, list[float]] = {stored: [] for stored in stored_counts}
        for _ in range(args.repeats):  # interleaved: both arms see the same drift
            plain = measure("plain", trials, concurrency)
            print(_row(plain), flush=True)
            rows.append(plain)
            plain_runs.append(plain["trials_per_s"])
            for stored in stored_counts:
                ours = measure("paretune", trials, concurrency, stored)
                print(_row(ours), flush=True)
                rows.append(ours)
                ours_runs[stored].append(ours["trials_per_s"])
        for stored, runs in ours_runs.items():
            ratio = float(np.median(runs) / np.median(plain_runs))
            ratios.append(ratio)
            print(
                f"  paretune / plain trials/s at {concurrency} ({stored} stored, median of "
                f"{args.repeats}): {ratio:.2f}"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "driver.json").write_text(json.dumps(rows, indent=1))
    print(f"paretune / plain trial throughput: {min(ratios):.2f} at worst (target >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
