"""Benchmark: analysis of a 100k-trial study (fronts, hypervolume, best-at-levels, tables).

Run ``python -m benchmarks.analysis [--trials N] [--store]``. The synthetic trials frame has
the columns of the store/analysis contract (five methods, three tasks' metrics, four
components, searched parameters); :func:`run` times the analysis on any frames and is what
the store benchmark calls after loading.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

if __package__ in (None, ""):  # run as a script: import the repository's packages, not this file
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import pandas as pd

import analysis

TARGET_S = 5.0
METHODS = ("dense", "magnitude", "snip", "disparse", "adapmtl")
TASKS = {
    "segment_semantic": ("miou", "pixel_acc"),
    "normal": ("mean_angle", "within_22_5"),
    "depth": ("abs_err", "delta_1_25"),
}
COMPONENTS = ("backbone", "head:segment_semantic", "head:normal", "head:depth")


class _HasTrials(Protocol):
    trials: pd.DataFrame


def synthetic_trials(n_trials: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """A realistic trials frame: sparsity vs Delta_T trade-offs that differ per method.

    Args:
        n_trials: Number of rows.
        seed: Random seed.

    Returns:
        The trials frame (one dense reference trial first).
    """
    rng = np.random.default_rng(seed)
    n = n_trials
    method_index = rng.integers(1, len(METHODS), size=n)
    method_index[: max(1, n // 200)] = 0  # a few dense trials
    methods = np.asarray(METHODS)[method_index]
    dense = method_index == 0
    sparsity = np.where(dense, 0.0, rng.uniform(0.3, 0.995, size=n))
    quality = np.array([0.0, 1.0, 1.3, 0.8, 0.6])[method_index]  # lower is better
    delta_t = -quality * 4.0 * (sparsity / (1.0 - sparsity + 1e-3)) ** 0.5 / 5.0
    delta_t = np.round(delta_t + rng.normal(0.0, 0.6, size=n) * ~dense, 3)
    status = rng.choice(
        np.array(["COMPLETE", "FAILED", "PRUNED", "RUNNING"]), size=n, p=[0.9, 0.05, 0.03, 0.02]
    )
    status[0] = "COMPLETE"
    unfinished = status != "COMPLETE"
    delta_t = np.where(unfinished, np.nan, delta_t)
    sparsity_col = np.where(status == "COMPLETE", sparsity, np.nan)
    start = pd.Timestamp("2025-01-01", tz="UTC")
    started = (start + pd.to_timedelta(np.sort(rng.uniform(0, 3e6, size=n)), unit="s")).floor("us")
    wall = rng.uniform(30.0, 300.0, size=n)
    finished = pd.Series(started + pd.to_timedelta(wall, unit="s")).dt.floor("us")
    finished[status == "RUNNING"] = pd.NaT
    lr = 10 ** rng.uniform(-4, -2, size=n)
    weight_decay = 10 ** rng.uniform(-8, -4, size=n)
    threshold_init = np.where(method_index == 4, rng.uniform(-6.0, -2.0, size=n), np.nan)
    optimizer = rng.choice(np.array(["adam", "sgd"]), size=n)
    frame: dict[str, Any] = {
        "study": "bench",
        "method": methods,
        "trial_id": np.arange(1, n + 1),
        "number": np.zeros(n, dtype=int),
        "seed": rng.integers(0, 3, size=n),
        "status": status,
        "is_reference": np.arange(n) == 0,
        "delta_t": delta_t,
        "sparsity": sparsity_col,
        "iterations": np.full(n, 400),
        "wall_time_s": wall,
        "device_s": wall * 2.0,
        "flops": np.full(n, np.nan),
        "started_at": started,
        "finished_at": finished.to_numpy(),
        "error": ["RuntimeError: out of memory" if s == "FAILED" else None for s in status],
        "node_id": "node-0",
        "host": "localhost",
    }
    for k, component in enumerate(COMPONENTS):
        spread = rng.normal(0.0, 0.03, size=n) * (k + 1)
        frame[f"sparsity:{component}"] = np.clip(sparsity_col + spread, 0.0, 1.0)
    for task, metrics in TASKS.items():
        base = rng.uniform(20.0, 60.0)
        for metric in metrics:
            frame[f"metric:{task}:{metric}"] = base * (1 + delta_t / 100.0) + rng.normal(
                0, 0.1, size=n
            )
        frame[f"delta:{task}"] = delta_t + rng.normal(0.0, 0.3, size=n)
    adap = method_index == 4
    for component in COMPONENTS:
        frame[f"threshold:{component}"] = np.where(adap, rng.uniform(0.01, 0.05, size=n), np.nan)
    for task in TASKS:
        frame[f"weight:{task}"] = np.where(adap, rng.uniform(0.5, 1.5, size=n), np.nan)
    frame["param:lr"] = lr
    frame["param:weight_decay"] = weight_decay
    frame["param:threshold_init"] = threshold_init
    frame["param:optimizer"] = optimizer
    trials = pd.DataFrame(frame)
    trials["number"] = trials.groupby("method").cumcount()
    names = ("lr", "weight_decay", "optimizer")
    columns = [lr.tolist(), weight_decay.tolist(), optimizer.tolist()]
    rows = zip(*columns, strict=True)
    trials["params"] = [dict(zip(names, values, strict=True)) for values in rows]
    trials["config"] = [{"method": m, "iterations": 400} for m in methods.tolist()]
    return trials


def _value(value: Any) -> Any:
    """A plain Python value for the store (NaN and NaT become None)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _store_rows(group: pd.DataFrame) -> list[dict[str, Any]]:
    """Trial mappings for ``ResultStore.add_trials`` from rows of the trials frame."""
    metric_columns = [c for c in group.columns if c.startswith("metric:")]
    nested = {
        prefix: [c for c in group.columns if c.startswith(prefix)]
        for prefix in ("sparsity:", "threshold:", "weight:", "delta:")
    }
    scalars = ["status", "is_reference", "params", "config", "seed", "started_at",
               "finished_at", "error", "host", "node_id", "sparsity", "delta_t",
               "iterations", "wall_time_s", "device_s", "flops"]  # fmt: skip
    rows = []
    for record in group.to_dict("records"):
        row = {name: _value(record[name]) for name in scalars}
        metrics: dict[str, dict[str, float]] = {}
        for column in metric_columns:
            value = _value(record[column])
            if value is not None:
                _, task, metric = column.split(":", 2)
                metrics.setdefault(task, {})[metric] = value
        row["metrics"] = metrics
        for prefix, field in (
            ("sparsity:", "components"),
            ("threshold:", "thresholds"),
            ("weight:", "task_weights"),
            ("delta:", "delta_t_per_task"),
        ):
            values = {c[len(prefix) :]: _value(record[c]) for c in nested[prefix]}
            row[field] = {k: v for k, v in values.items() if v is not None}
        rows.append(row)
    return rows


def write_to_store(trials: pd.DataFrame, url: str, study_name: str = "bench") -> float:
    """Write the synthetic trials into a results store; the seconds it took.

    Args:
        trials: Frame from :func:`synthetic_trials`.
        url: Store URL (e.g. ``sqlite:///bench.db``).
        study_name: Name of the study to create.

    Returns:
        Wall-clock seconds of the writes.
    """
    from study.store import ResultStore

    start = time.perf_counter()
    with ResultStore(url) as store:
        store.create_study(study_name, {}, [list(p) for p in analysis.DEFAULT_OBJECTIVES])
        for (method, seed), group in trials.groupby(["method", "seed"], sort=False):
            run_id = store.start_method_run(study_name, str(method), seed=int(seed))
            store.add_trials(run_id, _store_rows(group))
    return time.perf_counter() - start


def _timed(timings: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    timings[name] = time.perf_counter() - start
    return result


def run(
    frames: _HasTrials | pd.DataFrame,
    objectives: Sequence[tuple[str, str]] = analysis.DEFAULT_OBJECTIVES,
) -> dict[str, float]:
    """Time the analysis of a study: fronts, hypervolume, best-at-levels, tables.

    Args:
        frames: A :class:`analysis.StudyFrames`-like object (with ``.trials``) or the trials
            frame itself.
        objectives: The study's objectives.

    Returns:
        Seconds per step and ``"total"``.
    """
    trials = frames if isinstance(frames, pd.DataFrame) else frames.trials
    timings: dict[str, float] = {}
    start = time.perf_counter()
    _timed(timings, "fronts", lambda: analysis.method_fronts(trials, objectives))
    summary = _timed(timings, "summary+hypervolume", lambda: analysis.method_summary(trials))
    _timed(timings, "best_at_levels", lambda: analysis.best_at_sparsity_levels(trials))
    paper = _timed(timings, "paper_table", lambda: analysis.paper_table(trials, 0.9, objectives))
    levels = _timed(timings, "sparsity_level_table", lambda: analysis.sparsity_level_table(trials))
    _timed(
        timings,
        "render_tables",
        lambda: [
            f(t)
            for t in (paper, levels, summary)
            for f in (analysis.to_markdown, analysis.to_latex)
        ],
    )
    timings["total"] = time.perf_counter() - start
    return timings


def _print(timings: dict[str, float], n_trials: int) -> None:
    for name, seconds in timings.items():
        if name != "total":
            print(f"  {name:<22} {seconds:6.3f} s")
    total = timings["total"]
    print(
        f"analysis of {n_trials} trials: {total:.2f} s (target <= {TARGET_S:g} s): "
        f"ratio {total / TARGET_S:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    """Build the synthetic study, time the analysis (and the store round trip) and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument(
        "--store",
        action="store_true",
        help="also write the trials to a temporary SQLite store and time loading them back",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    trials = synthetic_trials(args.trials)
    print(f"built a synthetic frame of {len(trials)} trials in {time.perf_counter() - start:.1f} s")
    _print(run(trials), len(trials))
    if not args.store:
        return
    load_study = getattr(analysis, "load_study", None)
    if load_study is None:
        raise SystemExit("--store needs analysis.load_study (analysis/_load.py), not available")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        print(f"store write of {len(trials)} trials: {write_to_store(trials, url):.1f} s")
        start = time.perf_counter()
        frames = load_study(url, "bench")
        loaded = time.perf_counter() - start
        print(f"load_study of {len(frames.trials)} trials: {loaded:.2f} s")
        timings = run(frames)
        _print(timings, len(frames.trials))
        print(f"load + analysis: {loaded + timings['total']:.2f} s")


if __name__ == "__main__":
    main()
