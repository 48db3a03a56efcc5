"""Benchmark: every weight pruner at one target on scenes-nyu, same budget and seed.

Prints the paper-style table (per-task metrics, per-component sparsity, Delta_T against the
dense run of the same budget) and the AdapMTL training-step time divided by the dense
step time, both measured in this one run. Writes ``benchmarks/results/pruners.json``.

    python -m benchmarks.pruners [--iterations 300] [--target 0.9] [--methods a,b]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import to_markdown
from trials import TrialConfig, TrialResult
from trials._trainer import Trainer, build_setup
from trials.pruning import PRUNERS

#: Metrics shown per task (the table keeps the ones the paper reports first).
SHOWN = {
    "segment_semantic": ("miou", "pixel_acc"),
    "depth_zbuffer": ("abs_err", "rel_err"),
    "normal": ("angle_mean", "within_11.25"),
}
RESULTS = Path(__file__).resolve().parent / "results"


def run_method(
    method: str, base: dict[str, Any], target: float, reference: dict[str, dict[str, float]] | None
) -> tuple[TrialResult, float]:
    """One trial; returns its result and the median seconds per training step."""
    params = {} if method == "dense" else {"target_sparsity": target}
    config = TrialConfig(**base, method=method, method_params=params, reference=reference)
    stamps: list[float] = []
    trainer = Trainer(
        build_setup(config), on_step=lambda i, loss: stamps.append(time.perf_counter())
    )
    result = trainer.train()
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return result, statistics.median(steps)


def table_row(result: TrialResult) -> dict[str, float | None]:
    row: dict[str, float | None] = {}
    for task, names in SHOWN.items():
        for name in names:
            row[f"{task}:{name}"] = result.metrics.get(task, {}).get(name)
    row["sparsity"] = 100 * result.sparsity["overall"]
    for component, value in result.sparsity["components"].items():
        row[f"sparsity:{component}"] = 100 * value
    row["delta_t"] = result.delta_t
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default=",".join(PRUNERS.names()))
    args = parser.parse_args(argv)
    base = {"iterations": args.iterations, "seed": args.seed, "threads": args.threads}
    methods = [m for m in args.methods.split(",") if m != "dense"]

    dense, dense_step = run_method("dense", base, args.target, None)
    rows = {"dense": {**table_row(dense), "delta_t": 0.0}}
    step_times = {"dense": dense_step}
    for method in methods:
        result, step = run_method(method, base, args.target, dense.metrics)
        rows[method] = table_row(result)
        step_times[method] = step
        print(
            f"  {method:<26} sparsity {result.sparsity['overall']:.1%}  "
            f"Delta_T {result.delta_t:+.2f}  {step * 1000:.0f} ms/step",
            flush=True,
        )
    table = pd.DataFrame.from_dict(rows, orient="index")
    print(
        f"\nscenes-nyu, resnet-tiny, {args.iterations} iterations, target "
        f"{args.target:.0%}, seed {args.seed} (metrics in %, angles in degrees)"
    )
    print(to_markdown(table))
    summary: dict[str, Any] = {
        "iterations": args.iterations,
        "target": args.target,
        "table": rows,
        "step_seconds": step_times,
    }
    if "adapmtl" in step_times:
        ratio = step_times["adapmtl"] / step_times["dense"]
        summary["adapmtl_step_ratio"] = ratio
        print(
            f"\nadapmtl step {step_times['adapmtl'] * 1000:.1f} ms / dense step "
            f"{step_times['dense'] * 1000:.1f} ms: ratio {ratio:.2f} (target <= 1.25)"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pruners.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
