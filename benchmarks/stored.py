"""Benchmark: the CLI and the dashboard on a study of many stored trials.

Writes a study of ``--trials`` finished trials (synthetic, five methods, three seeds, each
with ``--evaluations`` periodic evaluations) into a SQLite file, or into ``--db URL``, or
into a throwaway PostgreSQL server (``--postgres``, as the tests start one), then times, each
as the user runs it: ``paretune status``, ``paretune ls``, ``paretune export --format
parquet`` (each a fresh process, start-up included) and one refresh of the dashboard's
data in this process (the study already loaded once, as a running dashboard has it); each
the median of three runs.

    python -m benchmarks.stored                     # 20,000 trials in SQLite
    python -m benchmarks.stored --postgres          # the same in PostgreSQL
    python -m benchmarks.stored --quick             # 5,000 trials
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.analysis import synthetic_trials, write_to_store

STUDY = "bench"
#: Targets of the CLI commands and the dashboard's refresh, seconds.
TARGETS = {"status": 2.0, "ls": 2.0, "export parquet": 5.0, "dashboard refresh": 1.0}


def add_evaluations(url: str, per_trial: int) -> None:
    """``per_trial`` evaluations for every trial of the study."""
    from study.store import ResultStore

    rng = np.random.default_rng(0)
    with ResultStore(url) as store:
        for trial in store.trials_of(STUDY):
            evaluations = [
                {
                    "iteration": (k + 1) * 100,
                    "sparsity": float(trial.sparsity or 0) * (k + 1) / per_trial,
                    "delta_t": float(rng.normal(-5, 2)),
                    "elapsed_s": 10.0 * (k + 1),
                    "metrics": trial.metrics,
                    "losses": {"segment_semantic": float(rng.uniform(0.1, 1))},
                }
                for k in range(per_trial)
            ]
            store.add_evaluations(trial.id, evaluations)


#: Each command and refresh is timed this many times; the median is reported.
REPEATS = 3


def median_seconds(action: Callable[[], object]) -> float:
    """Median wall seconds of ``action()`` over :data:`REPEATS` calls."""
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def timed_command(*args: str) -> float:
    """Median wall seconds of ``paretune ARGS`` over :data:`REPEATS` fresh processes."""
    command = [str(Path(sys.executable).with_name("paretune")), *args]
    return median_seconds(lambda: subprocess.run(command, check=True, capture_output=True))


def dashboard_refresh(url: str) -> float:
    """Seconds of one refresh tick of the dashboard (the study list and the Pareto overlay)
    after the page's first load (median of :data:`REPEATS` ticks)."""
    from analysis._dashboard import StudySource, refresh_overlay

    source = StudySource(url)

    def tick() -> None:
        source.studies()
        refresh_overlay(source, STUDY)

    tick()
    seconds = median_seconds(tick)
    source.close()
    return seconds


@contextlib.contextmanager
def database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    if args.db:
        yield args.db
    elif args.postgres:
        from tests.postgres import PostgresServer

        with PostgresServer() as server:
            yield server.create_database()
    else:
        yield f"sqlite:///{folder / 'paretune.db'}"


def measure(url: str, folder: Path) -> dict[str, float]:
    out = folder / "exports"
    return {
        "status": timed_command("status", STUDY, "--db", url),
        "ls": timed_command("ls", "--db", url),
        "export parquet": timed_command(
            "export", STUDY, "--db", url, "--format", "parquet", "--out", str(out)
        ),
        "dashboard refresh": dashboard_refresh(url),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--evaluations", type=int, default=5)
    parser.add_argument("--db", help="a results database URL (an empty one)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server")
    parser.add_argument("--quick", action="store_true", help="5,000 trials")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials = 5_000
    folder = Path(tempfile.mkdtemp(prefix="paretune-stored-"))
    with database(args, folder) as url:
        start = time.perf_counter()
        write_to_store(synthetic_trials(args.trials), url, STUDY)
        add_evaluations(url, args.evaluations)
        backend = url.split(":", 1)[0].split("+")[0]
        print(
            f"{args.trials} trials x {args.evaluations} evaluations written to {backend} "
            f"in {time.perf_counter() - start:.0f} s"
        )
        figures: dict[str, Any] = measure(url, folder)
    for name, seconds in figures.items():
        print(f"  {name:<18} {seconds:6.2f} s (target < {TARGETS[name]:g} s)")
    worst = max(figures[name] / TARGETS[name] for name in figures)
    print(f"{backend}, {args.trials} trials: slowest against its target {worst:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
