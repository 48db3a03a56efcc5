"""Benchmark: hypervolume against compute, mo-asha early stopping vs none (fifo).

Two studies on the built-in scenes run through the CLI with the same method, search space,
sampler and seeds: one with ``scheduler: fifo`` (every trial trains to the end), one with
``scheduler: mo-asha`` and more trials, so that both spend about the same total compute.
Compute is counted per searched trial (the dense reference is left out: both studies train
the same one) as the iterations it trained, a stopped trial's being its last reported
evaluation; ``device_s`` is reported beside it. Per seed the two studies share one
hypervolume reference point. The figure of merit is the compute mo-asha needs to reach the
fifo study's final hypervolume, as a fraction of the fifo study's compute (target: median
over seeds <= 0.6). Writes ``benchmarks/results/mo_asha.json``.

    python -m benchmarks.mo_asha                 # 3 seeds, magnitude, 240 iterations
    python -m benchmarks.mo_asha --tiny          # a quick check (writes mo_asha_tiny.json)
    python -m benchmarks.mo_asha --db-fifo URL --db-asha URL   # measure finished studies
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import hypervolume_vs_budget, load_study, objective_reference

RESULTS = Path(__file__).resolve().parent / "results"
OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
TARGET = 0.6


def study_config(args: argparse.Namespace, scheduler: str) -> dict[str, Any]:
    """The study config of one arm (``fifo`` or ``mo-asha``)."""
    trials = args.trials if scheduler == "fifo" else args.trials * args.asha_factor
    config: dict[str, Any] = {
        "name": f"bench-{scheduler}",
        "dataset": {"name": "scenes-nyu"},
        "model": {"backbone": "resnet-tiny", "head": "light"},
        "methods": [{"name": args.method}],
        "budget": {
            "trials_per_method": trials,
            "iterations": args.iterations,
            "eval_every": args.eval_every,
            "seeds": list(args.seeds),
            "batch_size": 16,
        },
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
        "sampler": {"name": "tpe", "seed": 0},
        "objectives": [list(pair) for pair in OBJECTIVES],
        "init": args.init,
        "calibration": args.calibration,
    }
    if args.init == "dense":
        config["reference"] = {"iterations": args.reference_iterations}
    if scheduler == "mo-asha":
        config["scheduler"] = {"name": "mo-asha", "grace_period": args.grace_period, "eta": 3}
    if args.tiny:
        config["dataset"]["options"] = {
            "resolution": 32,
            "num_train": 48,
            "num_val": 16,
            "num_test": 16,
        }
        config["model"]["options"] = {"width": 8}
        config["model"]["head_options"] = {"hidden": 8}
    return config


def run_study(config: dict[str, Any], folder: Path) -> str:
    """Runs a study through ``paretune run``; returns its database URL."""
    config = {**config, "study_dir": str(folder / config["name"])}
    path = folder / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    paretune = Path(sys.executable).with_name("paretune")
    subprocess.run([str(paretune), "run", str(path)], check=True, cwd=folder)
    return f"sqlite:///{folder / config['name'] / 'paretune.db'}"


def spent_frame(url: str, study: str) -> pd.DataFrame:
    """Searched trials with their compute: ``iterations`` trained and ``device_s``.

    A trial stopped early has no final result; its compute is its last evaluation
    (iteration, and elapsed seconds times the CPUs per trial) and it counts as PRUNED.
    """
    frames = load_study(url, study)
    trials = frames.trials[~frames.trials["is_reference"].astype(bool)].copy()
    evaluations = frames.evaluations
    last = evaluations.sort_values("iteration").groupby("trial_id").last()
    cpus = float(frames.studies[0]["config"]["resources"]["cpus_per_trial"])
    stopped = trials["status"].astype(str) != "COMPLETE"
    ids = trials.loc[stopped, "trial_id"]
    trials.loc[stopped, "iterations"] = ids.map(last["iteration"]).fillna(0).to_numpy()
    trials.loc[stopped, "device_s"] = ids.map(last["elapsed_s"] * cpus).fillna(0).to_numpy()
    trials.loc[stopped & (trials["status"].astype(str) != "FAILED"), "status"] = "PRUNED"
    # start order: a stopped trial may have no finish time
    return trials.drop(columns=["finished_at"]).sort_values("trial_id")


def compare_seed(fifo: pd.DataFrame, asha: pd.DataFrame, budget: str) -> dict[str, Any]:
    """Hypervolume against compute of both arms for one seed, on a shared reference."""
    reference = objective_reference(pd.concat([fifo, asha]), OBJECTIVES)
    curves = {
        arm: hypervolume_vs_budget(frame, budget, OBJECTIVES, reference)
        for arm, frame in (("fifo", fifo), ("mo-asha", asha))
    }
    fifo_spent = float(curves["fifo"]["budget"].iloc[-1])
    fifo_hv = float(curves["fifo"]["hypervolume"].iloc[-1])
    curve = curves["mo-asha"]
    reached = curve[curve["hypervolume"] >= fifo_hv - 1e-12]
    needed = float(reached["budget"].iloc[0]) if len(reached) else float("nan")
    within = curve[curve["budget"] <= fifo_spent]
    return {
        "fifo_compute": fifo_spent,
        "fifo_hypervolume": fifo_hv,
        "mo_asha_compute": float(curve["budget"].iloc[-1]),
        "mo_asha_hypervolume": float(curve["hypervolume"].iloc[-1]),
        "mo_asha_hypervolume_at_fifo_compute": float(within["hypervolume"].iloc[-1])
        if len(within)
        else 0.0,
        "compute_to_match": needed,
        "compute_ratio": needed / fifo_spent if fifo_spent > 0 else float("nan"),
        "reference": [float(v) for v in reference],
    }


def summarize(fifo_url: str, asha_url: str, iterations: int) -> dict[str, Any]:
    """Per-seed figures and their medians, in iterations and in device seconds."""
    fifo_all = spent_frame(fifo_url, "bench-fifo")
    asha_all = spent_frame(asha_url, "bench-mo-asha")
    stopped = int((asha_all["iterations"] < iterations).sum())
    figures: dict[str, Any] = {
        "trials_fifo": len(fifo_all),
        "trials_mo_asha": len(asha_all),
        "stopped_early": stopped,
        "seeds": {},
    }
    for seed in sorted(set(fifo_all["seed"]) & set(asha_all["seed"])):
        fifo = fifo_all[fifo_all["seed"] == seed]
        asha = asha_all[asha_all["seed"] == seed]
        figures["seeds"][int(seed)] = {
            budget: compare_seed(fifo, asha, budget) for budget in ("iterations", "device_s")
        }
    for budget in ("iterations", "device_s"):
        ratios = [s[budget]["compute_ratio"] for s in figures["seeds"].values()]
        finite = [r if np.isfinite(r) else float("inf") for r in ratios]
        figures[f"median_ratio_{budget}"] = statistics.median(finite) if finite else None
    return figures


def rank_agreement(url: str, study: str) -> dict[str, dict[str, float]]:
    """How well a trial's objectives at each evaluation predict its final ones.

    Per objective and evaluated iteration: Spearman's rank correlation between the values
    there and the final values, over the finished trials of each seed, averaged over seeds.
    Early stopping can only help where this is high at the rungs.
    """
    from scipy.stats import spearmanr

    frames = load_study(url, study)
    trials = frames.trials[~frames.trials["is_reference"].astype(bool)]
    trials = trials[trials["status"].astype(str) == "COMPLETE"].set_index("trial_id")
    evaluations = frames.evaluations[frames.evaluations["trial_id"].isin(trials.index)]
    agreement: dict[str, dict[str, float]] = {}
    for objective, _ in OBJECTIVES:
        per_iteration: dict[str, float] = {}
        for iteration, at in evaluations.groupby("iteration"):
            values = at.set_index("trial_id")[objective]
            scores = []
            for _, seed_trials in trials.groupby("seed"):
                ids = [i for i in seed_trials.index if i in values.index]
                early, final = values.loc[ids], seed_trials.loc[ids, objective]
                if len(ids) >= 3 and early.nunique() > 1 and final.nunique() > 1:
                    scores.append(float(spearmanr(early, final).statistic))
            if scores:
                per_iteration[str(int(iteration))] = float(np.mean(scores))
        agreement[objective] = per_iteration
    return agreement


def summary_line(figures: dict[str, Any]) -> str:
    """One line: the median compute ratio against the target, per-seed ratios beside it."""
    ratio = figures["median_ratio_iterations"]
    per_seed = ", ".join(
        f"seed {seed}: {s['iterations']['compute_ratio']:.2f}"
        for seed, s in figures["seeds"].items()
    )
    verdict = "meets" if ratio is not None and ratio <= TARGET else "misses"
    line = (
        f"mo-asha reaches the fifo hypervolume with {ratio:.2f} of its compute in iterations "
        f"(median of {len(figures['seeds'])} seeds; {per_seed}; device seconds "
        f"{figures['median_ratio_device_s']:.2f}); target <= {TARGET}: {verdict}; "
        f"{figures['stopped_early']} of {figures['trials_mo_asha']} mo-asha trials stopped early"
    )
    if figures["stopped_early"] == 0:
        line += " (none: is the scheduler passed to Tune by the study runner?)"
    rung = str(figures["settings"]["grace_period"])
    agreement = figures.get("rank_agreement", {})
    if all(rung in by_iteration for by_iteration in agreement.values()):
        ranks = ", ".join(f"{name} {values[rung]:+.2f}" for name, values in agreement.items())
        line += f"; rank correlation with the final values at the first rung ({rung}): {ranks}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="magnitude")
    parser.add_argument("--trials", type=int, default=8, help="fifo trials per seed")
    parser.add_argument("--asha-factor", type=int, default=2, help="mo-asha trials / fifo's")
    parser.add_argument("--iterations", type=int, default=240)
    parser.add_argument(
        "--grace-period",
        type=int,
        default=120,
        help="first rung; before mid-training the objectives' ranks do not predict the "
        "final ones on the built-in data (see rank_agreement in the JSON)",
    )
    parser.add_argument("--eval-every", type=int, default=40)
    parser.add_argument("--init", choices=("dense", "scratch"), default="dense")
    parser.add_argument("--reference-iterations", type=int, default=1500)
    parser.add_argument("--calibration", default="reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tiny", action="store_true", help="tiny data and model, 2 trials")
    parser.add_argument("--db-fifo")
    parser.add_argument("--db-asha")
    args = parser.parse_args(argv)
    if args.tiny:
        args.trials, args.iterations, args.grace_period, args.seeds = 2, 24, 6, args.seeds[:1]
        args.eval_every = 6
    if args.db_fifo and args.db_asha:
        fifo_url, asha_url = args.db_fifo, args.db_asha
    else:
        folder = Path(tempfile.mkdtemp(prefix="paretune-bench-mo-asha-"))
        fifo_url = run_study(study_config(args, "fifo"), folder)
        asha_url = run_study(study_config(args, "mo-asha"), folder)
    figures = summarize(fifo_url, asha_url, args.iterations)
    figures["settings"] = {k: v for k, v in vars(args).items() if not k.startswith("db_")}
    figures["rank_agreement"] = rank_agreement(fifo_url, "bench-fifo")
    print(summary_line(figures))
    RESULTS.mkdir(exist_ok=True)
    name = "mo_asha_tiny.json" if args.tiny else "mo_asha.json"
    (RESULTS / name).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
