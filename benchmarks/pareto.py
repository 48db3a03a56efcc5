"""Benchmark: front mask, front ranks and hypervolume of 100k two-objective points.

Run ``python -m benchmarks.pareto [--points N] [--repeats R]``. Times, side by side in one
run, the moocore-backed functions of ``study._pareto`` against the plain numpy code they
replaced (kept here only as the baseline: a lexicographic sort with a running minimum for
the mask, Jensen's binary-search sort for the ranks, a sort-and-sweep for the
hypervolume), checks that both give the same results and writes
``benchmarks/results/pareto.json``. Points are rounded to three decimals, so ties and
duplicates are frequent, as with stored Delta_T values.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages, not this file
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from study._pareto import as_minimization, hypervolume, non_dominated_sort, pareto_mask

RESULTS = Path(__file__).resolve().parent / "results"
DIRECTIONS = ("maximize", "maximize")
REFERENCE = (0.0, 0.0)


# --- the previous numpy implementation (baseline only) -----------------------------------
def _unique_rows(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows in lexicographic order and the inverse map back to ``loss``."""
    order = np.lexsort(loss.T[::-1])
    ordered = loss[order]
    starts = np.ones(len(loss), dtype=bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(loss), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


def numpy_pareto_mask(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Two objectives: a new running minimum of y over unique rows sorted by x."""
    unique, inverse = _unique_rows(as_minimization(points, directions))
    on_front = np.ones(len(unique), dtype=bool)
    running_min = np.minimum.accumulate(unique[:, 1])
    on_front[1:] = unique[1:, 1] < running_min[:-1]
    return on_front[inverse]


def numpy_ranks(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Two objectives: Jensen's O(n log n) sort with a binary search per point."""
    unique, inverse = _unique_rows(as_minimization(points, directions))
    ranks = np.empty(len(unique), dtype=np.int64)
    last_y: list[float] = []
    for i, y in enumerate(unique[:, 1].tolist()):
        rank = bisect.bisect_right(last_y, y)
        if rank == len(last_y):
            last_y.append(y)
        else:
            last_y[rank] = y
        ranks[i] = rank
    return ranks[inverse]


def numpy_hypervolume(
    points: np.ndarray, directions: Sequence[str], reference: Sequence[float]
) -> float:
    """Two objectives: sort by x, running minimum of y, sum the strips."""
    loss = as_minimization(points, directions)
    ref = as_minimization(np.asarray(reference, dtype=float)[None, :], directions)[0]
    loss = loss[np.all(loss < ref, axis=1)]
    order = np.lexsort((loss[:, 1], loss[:, 0]))
    x = loss[order, 0]
    y = np.minimum.accumulate(loss[order, 1])
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - y)))


# --- timing ------------------------------------------------------------------------------
def _best_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The fastest of ``repeats`` calls in milliseconds, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3, result


def run(n_points: int = 100_000, repeats: int = 7, seed: int = 0) -> dict[str, Any]:
    """Time both implementations on the same points; check that they agree.

    Args:
        n_points: Number of two-objective points.
        repeats: Calls per function; the fastest counts.
        seed: Random seed of the points.

    Returns:
        ``{"points": n, <step>: {"moocore_ms", "numpy_ms", "ratio", "same"}}``.
    """
    points = np.round(np.random.default_rng(seed).random((n_points, 2)), 3)
    steps: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "mask": (
            lambda: pareto_mask(points, DIRECTIONS),
            lambda: numpy_pareto_mask(points, DIRECTIONS),
        ),
        "ranks": (
            lambda: non_dominated_sort(points, DIRECTIONS),
            lambda: numpy_ranks(points, DIRECTIONS),
        ),
        "hypervolume": (
            lambda: hypervolume(points, DIRECTIONS, REFERENCE),
            lambda: numpy_hypervolume(points, DIRECTIONS, REFERENCE),
        ),
    }
    figures: dict[str, Any] = {"points": n_points, "repeats": repeats}
    for name, (new, old) in steps.items():
        new_ms, new_result = _best_ms(new, repeats)
        old_ms, old_result = _best_ms(old, repeats)
        if name == "hypervolume":
            difference = abs(new_result - old_result) / abs(old_result)
            same = bool(difference <= 1e-12)
        else:
            difference = float(np.count_nonzero(new_result != old_result))
            same = difference == 0
        figures[name] = {
            "moocore_ms": new_ms,
            "numpy_ms": old_ms,
            "ratio": new_ms / old_ms,
            "same": same,
            "difference": difference,
        }
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Time, print and write the figures; non-zero when the implementations disagree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    figures = run(args.points, args.repeats, args.seed)
    print(f"{args.points} two-objective points, fastest of {args.repeats} calls:")
    for name in ("mask", "ranks", "hypervolume"):
        step = figures[name]
        agree = "same result" if step["same"] else f"DIFFERENT ({step['difference']:.3g})"
        print(
            f"  {name:<12} moocore {step['moocore_ms']:6.1f} ms  "
            f"previous numpy {step['numpy_ms']:6.1f} ms  ratio {step['ratio']:.2f}  {agree}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pareto.json").write_text(json.dumps(figures, indent=1))
    same = all(figures[name]["same"] for name in ("mask", "ranks", "hypervolume"))
    ratios = ", ".join(f"{name} {figures[name]['ratio']:.2f}" for name in ("mask", "ranks"))
    print(
        f"Pareto maths on {args.points} points, moocore / previous numpy time: {ratios}, "
        f"hypervolume {figures['hypervolume']['ratio']:.2f}; "
        + ("results agree" if same else "results DIFFER")
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
