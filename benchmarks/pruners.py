"""Benchmark: every weight pruner at one target on scenes-nyu, same budget, several seeds.

Two protocols: ``--init scratch`` trains every method from a fresh initialisation for
``--iterations``; ``--init dense`` (the papers' protocol) first trains each seed's dense
model for ``--dense-iterations`` and starts every method of that seed from its weights,
fine-tuning for ``--iterations``. It prints, per seed, the paper-style table (per-task
metrics, per-component sparsity, Delta_T and per-task deltas against the dense model of
the same seed); over seeds, each method's mean Delta_T with a 95% t interval; and, for the
paper's ordering (AdapMTL > DiSparse > IMP > LTH > SNIP, AdapMTL > its global-threshold
ablation), the paired difference of each pair with its interval. Writes
``benchmarks/results/pruners-<init>.json``.

    python -m benchmarks.pruners --init dense --dense-iterations 3000 --iterations 500 \\
        --seeds 0,1,2 [--target 0.9] [--methods a,b] [--calibration reference] [--workers 2] \\
        [--variant 'adapmtl@short-budget:adapmtl:short-budget:{}' ...]

A ``--variant NAME:METHOD:CALIBRATION:PARAMS`` adds a row ``NAME``: ``METHOD`` with that
calibration and those method parameters (JSON), e.g. to show a method under other settings
beside its defaults.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import comparison_sentence, mean_interval, paired_difference, to_markdown
from trials import TrialConfig
from trials._trainer import Trainer, build_setup
from trials.pruning import PRUNERS

#: Metrics shown per task (the table keeps the ones the paper reports first).
SHOWN = {
    "segment_semantic": ("miou", "pixel_acc"),
    "depth_zbuffer": ("abs_err", "rel_err"),
    "normal": ("angle_mean", "within_11.25"),
}
#: The paper's Table 2 ordering at 90% (Xiang et al. 2024), as (better, worse) pairs.
PAPER_ORDER = (
    ("adapmtl", "disparse"),
    ("disparse", "imp"),
    ("imp", "lth"),
    ("lth", "snip"),
    ("adapmtl", "adapmtl-global-threshold"),
)
RESULTS = Path(__file__).resolve().parent / "results"
CONVERGED = 2.0  # percent: the dense model's metrics move less over its last 20%


def run_trial(fields: dict[str, Any]) -> dict[str, Any]:
    """One trial (in a worker process); its result and median seconds per step."""
    stamps: list[float] = []
    trainer = Trainer(
        build_setup(TrialConfig(**fields)),
        on_step=lambda i, loss: stamps.append(time.perf_counter()),
    )
    result = trainer.train()
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return {**result.model_dump(mode="json"), "step_s": statistics.median(steps)}


def convergence(dense: dict[str, Any]) -> float:
    """Largest relative change (%) of any dense metric over the last 20% of its training."""
    evaluations = dense["evaluations"]
    final = evaluations[-1]
    mark = 0.8 * final["iteration"]
    earlier = min(evaluations, key=lambda e: abs(e["iteration"] - mark))
    changes = [
        abs(value - earlier["metrics"][task][name]) / abs(earlier["metrics"][task][name]) * 100
        for task, metrics in final["metrics"].items()
        for name, value in metrics.items()
        if earlier["metrics"][task].get(name)
    ]
    return max(changes) if changes else float("nan")


def table_row(result: dict[str, Any]) -> dict[str, float | None]:
    row: dict[str, float | None] = {}
    for task, names in SHOWN.items():
        for name in names:
            row[f"{task}:{name}"] = result["metrics"].get(task, {}).get(name)
    row["sparsity"] = 100 * result["sparsity"]["overall"]
    for component, value in result["sparsity"]["components"].items():
        row[f"sparsity:{component}"] = 100 * value
    for task, value in (result.get("delta_t_per_task") or {}).items():
        row[f"delta:{task}"] = value
    row["delta_t"] = result["delta_t"]
    return row


def _base(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "threads": args.threads,
        "calibration": args.calibration,
        "dataset_options": {"resolution": args.resolution},
    }


def _dense_fields(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    iterations = args.dense_iterations if args.init == "dense" else args.iterations
    fields = {**_base(args, seed), "method": "dense", "iterations": iterations}
    fields["eval_every"] = max(1, iterations // 10)
    if args.init == "dense":
        fields["save_checkpoint"] = str(RESULTS / "checkpoints" / f"dense-seed-{seed}.pt")
    return fields


def _method_fields(args: argparse.Namespace, method: str, seed: int, dense: dict) -> dict:
    name, calibration, params = method, args.calibration, {}
    if method in args.variants:
        name, calibration, params = args.variants[method]
    return {
        **_base(args, seed),
        "calibration": calibration,
        "method": name,
        "method_params": {"target_sparsity": args.target, **params},
        "iterations": args.iterations,
        "reference": dense["metrics"],
        "init": dense["checkpoint"] if args.init == "dense" else "scratch",
    }


def paper_pairs(methods: Sequence[str]) -> list[tuple[str, str]]:
    """The paper's pairs among ``methods``; for each variant tag (``adapmtl@at-target``)
    the same pairs again with the tagged rows in place of their base methods."""
    tags = sorted({m.split("@", 1)[1] for m in methods if "@" in m})
    pairs = []
    for tag in ["", *tags]:
        for better, worse in PAPER_ORDER:
            pair = tuple(f"{m}@{tag}" if tag and f"{m}@{tag}" in methods else m
                         for m in (better, worse))  # fmt: skip
            if all(m in methods for m in pair) and (pair not in pairs):
                pairs.append(pair)
    return pairs  # type: ignore[return-value]


#: A method counts as at the target when its sparsity is at most this far below (points).
TOLERANCE = 0.5


def summarize(
    rows: dict[tuple[str, int], dict], seeds: list[int], target: float
) -> tuple[pd.DataFrame, list]:
    """Per method: mean sparsity, Delta_T with its interval, per-task deltas; and the
    paper's pairs as paired differences with their sentences. A pair is compared only
    when both methods reached the target in every seed (Delta_T at 0% sparsity says
    nothing about pruning)."""
    methods = list(dict.fromkeys(method for method, _ in rows))
    summary = {}
    for method in methods:
        values = [rows[(method, seed)] for seed in seeds if (method, seed) in rows]
        delta = mean_interval([v["delta_t"] for v in values])
        entry = {
            "sparsity": statistics.mean(v["sparsity"] for v in values),
            "delta_t": delta.mean,
            "ci_low": delta.low,
            "ci_high": delta.high,
        }
        for task in SHOWN:
            deltas = [v.get(f"delta:{task}") for v in values]
            entry[f"delta:{task}"] = statistics.mean(d for d in deltas if d is not None)
        summary[method] = entry
    pairs = []
    for better, worse in paper_pairs(methods):
        short = [
            f"{m} reached {min(rows[(m, s)]['sparsity'] for s in seeds):.1f}%"
            for m in (better, worse)
            if min(rows[(m, s)]["sparsity"] for s in seeds) < 100 * target - TOLERANCE
        ]
        if short:
            pairs.append({"pair": f"{better} > {worse}", "verdict": "not comparable",
                          "sentence": f"not at {target:.0%}: {'; '.join(short)}"})  # fmt: skip
            continue
        first = [rows[(better, seed)]["delta_t"] for seed in seeds]
        second = [rows[(worse, seed)]["delta_t"] for seed in seeds]
        difference = paired_difference(first, second)
        if difference.excludes_zero():
            verdict = "holds" if difference.mean > 0 else "flips"
        else:
            verdict = "within noise"
        sentence = comparison_sentence(better, worse, difference, unit="")
        pairs.append({"pair": f"{better} > {worse}", "verdict": verdict, "sentence": sentence,
                      "difference": difference.mean, "low": difference.low,
                      "high": difference.high})  # fmt: skip
    return pd.DataFrame.from_dict(summary, orient="index"), pairs


def print_summary(rows: dict[tuple[str, int], dict], seeds: list[int], target: float) -> tuple:
    summary, pairs = summarize(rows, seeds, target)
    print(f"\nmean over seeds {seeds}: Delta_T with its 95% t interval\n{to_markdown(summary)}")
    print("\nthe paper's ordering, paired over seeds:")
    for pair in pairs:
        print(f"  {pair['pair']}: {pair['verdict']} -- {pair['sentence']}")
    return summary, pairs


def report(data: dict[str, Any]) -> int:
    """``--report``: the summary of a stored run, without training anything."""
    rows = {}
    for key, row in data["rows"].items():
        method, seed = key.rsplit("/seed-", 1)
        rows[(method, int(seed))] = row
    seeds = sorted({seed for _, seed in rows})
    print_summary(rows, seeds, data["args"]["target"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", choices=("scratch", "dense"), default="scratch")
    parser.add_argument("--dense-iterations", type=int, default=3000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="trials run at once")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--calibration", default="reference")
    parser.add_argument("--methods", default=",".join(PRUNERS.names()))
    parser.add_argument("--variant", action="append", default=[], metavar="N:M:C:PARAMS")
    parser.add_argument("--report", type=Path, help="print the summary of a results JSON")
    args = parser.parse_args(argv)
    if args.report is not None:
        return report(json.loads(args.report.read_text()))
    args.variants = {}
    for spec in args.variant:
        label, method, calibration, params = spec.split(":", 3)
        args.variants[label] = (method, calibration, json.loads(params))
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m and m != "dense"] + list(args.variants)
    RESULTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        denses = dict(zip(seeds, pool.map(run_trial, [_dense_fields(args, s) for s in seeds]),
                          strict=True))  # fmt: skip
        for seed, dense in denses.items():
            print(
                f"dense seed {seed}: {dense['iterations']} iterations, metrics moved by at most "
                f"{convergence(dense):.2f}% over the last 20% (converged below {CONVERGED:g}%: "
                f"{'yes' if convergence(dense) < CONVERGED else 'no'})",
                flush=True,
            )
        jobs = [(m, s) for s in seeds for m in methods]
        fields = [_method_fields(args, m, s, denses[s]) for m, s in jobs]
        results = dict(zip(jobs, pool.map(run_trial, fields), strict=True))
    zero = {f"delta:{task}": 0.0 for task in SHOWN} | {"delta_t": 0.0}
    rows = {("dense", s): {**table_row(d), **zero} for s, d in denses.items()}
    rows.update({job: table_row(result) for job, result in results.items()})
    protocol = (
        f"dense {args.dense_iterations} iterations, then {args.iterations} per method"
        if args.init == "dense"
        else f"{args.iterations} iterations from scratch"
    )
    print(
        f"\nscenes-nyu {args.resolution}x{args.resolution}, resnet-tiny, {protocol}, target "
        f"{args.target:.0%}, calibration {args.calibration}, seeds {args.seeds} "
        f"(metrics in %, angles in degrees)"
    )
    for seed in seeds:
        table = pd.DataFrame.from_dict(
            {m: r for (m, s), r in rows.items() if s == seed}, orient="index"
        )
        print(f"\nseed {seed}\n{to_markdown(table)}")
    summary, pairs = print_summary(rows, seeds, args.target)
    steps = {m: statistics.median(r["step_s"] for (mm, _), r in results.items() if mm == m)
             for m in methods}  # fmt: skip
    dense_step = statistics.median(d["step_s"] for d in denses.values())
    if "adapmtl" in steps:
        print(f"\nadapmtl step / dense step: {steps['adapmtl'] / dense_step:.2f} "
              f"({args.workers} trials at once)")  # fmt: skip
    wall = time.perf_counter() - started
    print(f"wall time {wall / 60:.1f} min")
    summary_json = {
        "args": vars(args),
        "convergence_percent": {s: convergence(d) for s, d in denses.items()},
        "rows": {f"{m}/seed-{s}": r for (m, s), r in rows.items()},
        "summary": summary.to_dict(orient="index"),
        "pairs": pairs,
        "wall_s": wall,
    }
    (RESULTS / f"pruners-{args.init}.json").write_text(json.dumps(summary_json, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
