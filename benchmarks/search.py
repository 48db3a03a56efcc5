"""Benchmark: hypervolume after the same number of trials, per Optuna sampler.

Runs one study per sampler (multi-objective TPE, NSGA-II, GP and random search) through
the CLI on the built-in scenes, each with the same method, budget and seeds; each seed is
its own search (sampler seed = ``sampler.seed + seed``). All studies share one SQLite
database, so one hypervolume reference point (from every sampler's trials) is used for
all of them. Prints each sampler's median hypervolume over seeds divided by random
search's, measured side by side in one run, and writes ``benchmarks/results/search.json``.

    python -m benchmarks.search            # adapmtl, 8 trials x 100 iterations, 3 seeds
    python -m benchmarks.search --quick    # 4 trials x 40 iterations on smaller scenes
    python -m benchmarks.search --db URL   # measures the finished studies in URL again
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import hypervolume_within_noise, load_study, seed_summary
from study._samplers import SAMPLERS as REGISTERED

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "random"
#: Every registered sampler, the default first and the baseline last.
SAMPLERS = ("tpe", *(n for n in REGISTERED.names() if n not in ("tpe", BASELINE)), BASELINE)
OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
FULL = {"trials": 8, "iterations": 100, "seeds": 3, "scenes": {}}
QUICK = {
    "trials": 4,
    "iterations": 40,
    "seeds": 2,
    "scenes": {"resolution": 32, "num_train": 96, "num_val": 32, "num_test": 32},
}


def sampler_options(name: str, trials: int) -> dict[str, Any]:
    """Options that let a sampler leave its random start-up within ``trials`` trials.

    With their defaults TPE and GP sample the first 10 trials at random and NSGA-II's first
    generation has 50 members, so on a budget of 8 trials all three would be random search.
    """
    startup = max(2, trials // 2)
    options: dict[str, dict[str, Any]] = {
        "tpe": {"n_startup_trials": startup, "multivariate": True},
        "gp": {"n_startup_trials": startup},
        "nsga2": {"population_size": startup},
        "random": {},
    }
    return options[name]


def study_config(
    sampler: str, method: str, budget: dict[str, Any], folder: Path, storage: str
) -> dict[str, Any]:
    """The config of one sampler's study (every sampler gets the same budget and seeds)."""
    return {
        "name": f"search-{sampler}",
        "study_dir": str(folder / f"search-{sampler}"),
        "storage": storage,
        "dataset": {"name": "scenes-nyu", "options": dict(budget["scenes"])},
        "model": {"backbone": "resnet-tiny", "head": "light"},
        "methods": [{"name": method}],
        "budget": {
            "trials_per_method": budget["trials"],
            "iterations": budget["iterations"],
            "eval_every": budget["iterations"],
            "seeds": list(range(budget["seeds"])),
            "batch_size": 16,
        },
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0, "max_concurrent": 2},
        "sampler": {
            "name": sampler,
            "seed": 0,
            "options": sampler_options(sampler, budget["trials"]),
        },
        "objectives": [list(pair) for pair in OBJECTIVES],
        "init": budget.get("init", "dense"),
        "calibration": budget.get("calibration", "reference"),
        **(
            {"reference": {"iterations": budget["reference_iterations"]}}
            if budget.get("init", "dense") == "dense"
            else {}
        ),
    }


def run_studies(
    samplers: Sequence[str], method: str, budget: dict[str, Any]
) -> tuple[str, dict[str, float]]:
    """Runs one study per sampler in a temporary folder; returns (url, wall s per sampler)."""
    folder = Path(tempfile.mkdtemp(prefix="paretune-bench-search-"))
    url = f"sqlite:///{folder / 'search.db'}"
    paretune = Path(sys.executable).with_name("paretune")
    walls = {}
    for sampler in samplers:
        path = folder / f"{sampler}.yaml"
        path.write_text(yaml.safe_dump(study_config(sampler, method, budget, folder, url)))
        print(f"-- study search-{sampler}", flush=True)
        start = time.perf_counter()
        subprocess.run([str(paretune), "run", str(path)], check=True, cwd=folder)
        walls[sampler] = time.perf_counter() - start
    return url, walls


def sampler_frame(url: str, samplers: Sequence[str]) -> pd.DataFrame:
    """The searched trials of every sampler's study, with ``method`` set to the sampler."""
    frames = load_study(url, [f"search-{s}" for s in samplers], evaluations=False)
    trials = frames.trials
    trials = trials[~trials["is_reference"]].copy()
    trials["method"] = trials["study"].str.removeprefix("search-")
    return trials


def measure(trials: pd.DataFrame, samplers: Sequence[str]) -> dict[str, Any]:
    """Per-seed hypervolumes (one shared reference) and median ratios to random search."""
    summary = seed_summary(trials, OBJECTIVES, levels=())
    per_seed = summary.per_seed
    figures: dict[str, Any] = {"reference": summary.reference, "samplers": {}}
    medians = {}
    for sampler in samplers:
        rows = per_seed[per_seed["method"] == sampler]
        values = rows["hypervolume"].to_numpy(dtype=float)
        medians[sampler] = float(np.median(values)) if len(values) else math.nan
        figures["samplers"][sampler] = {
            "hypervolume_per_seed": dict(
                zip(rows["seed"].astype(int).tolist(), values.tolist(), strict=True)
            ),
            "median": medians[sampler],
            "complete_per_seed": rows["n_complete"].astype(int).tolist(),
        }
    base = medians.get(BASELINE, math.nan)
    seeds = summary.per_method["n_seeds"]
    for sampler in samplers:
        entry = figures["samplers"][sampler]
        entry["ratio_to_random"] = (
            medians[sampler] / base if base and math.isfinite(base) else math.nan
        )
        noisy = sampler != BASELINE and min(seeds.get(sampler, 0), seeds.get(BASELINE, 0)) >= 2
        entry["within_seed_noise_of_random"] = (
            hypervolume_within_noise(summary, sampler, BASELINE) if noisy else None
        )
    return figures


def summary_line(figures: dict[str, Any]) -> str:
    """One line: each sampler's median hypervolume and its ratio to random search."""
    parts = []
    for name, entry in figures["samplers"].items():
        noise = entry.get("within_seed_noise_of_random")
        verdict = "" if noise is None else (", within seed noise" if noise else ", beyond noise")
        parts.append(f"{name} {entry['median']:.3g} (x{entry['ratio_to_random']:.2f}{verdict})")
    budget = figures.get("budget", {})
    head = (
        f"search, {figures.get('method', '?')} {budget.get('trials', '?')} trials x "
        f"{budget.get('iterations', '?')} iterations, {budget.get('seeds', '?')} seeds: "
    )
    return head + "median hypervolume (ratio to random): " + ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller variant")
    parser.add_argument("--method", default="adapmtl")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--trials", type=int)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--init", choices=("dense", "scratch"), default="dense")
    parser.add_argument("--reference-iterations", type=int, default=1500)
    parser.add_argument("--calibration", default="reference")
    parser.add_argument("--db", help="measure the finished search-<sampler> studies in URL")
    args = parser.parse_args(argv)
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        parser.error(f"unknown sampler {unknown[0]!r}; choose from {', '.join(SAMPLERS)}")
    if BASELINE not in samplers:
        parser.error(f"--samplers must include {BASELINE!r}, the baseline of the ratios")
    budget = dict(QUICK if args.quick else FULL)
    for key in ("trials", "iterations", "seeds"):
        if getattr(args, key) is not None:
            budget[key] = getattr(args, key)
    budget.update(
        init=args.init,
        calibration=args.calibration,
        reference_iterations=args.reference_iterations if not args.quick else 300,
    )
    walls: dict[str, float] = {}
    if args.db:
        url = args.db
    else:
        url, walls = run_studies(samplers, args.method, budget)
    figures = measure(sampler_frame(url, samplers), samplers)
    figures.update(
        method=args.method,
        quick=args.quick,
        budget={k: budget[k] for k in ("trials", "iterations", "seeds")},
        scenes=budget["scenes"],
        wall_s=walls,
        storage=url,
    )
    print(summary_line(figures), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
