"""Benchmark: DMTG's grouping against naive multi-task learning and other task groupings.

The DMTG paper's claim (Gao et al., ICML 2024): one shot of differentiable grouping finds
groupings that beat naive multi-task learning and earlier grouping methods, at a fraction
of their search cost. Every arm trains the same model family on the same data, for the
same iterations, with the same seeds (same data order and initialisation per seed):

* ``naive``: one shared backbone, one head per task (all tasks share everything);
* ``single-task``: one whole network per task (a grouping with every task alone and no
  shared stem);
* ``random``: a uniformly random grouping with K non-empty branches (seeded per seed);
* ``oracle`` (``attributes`` only): the data set's true factor groups;
* ``tag``: inter-task affinity from lookahead losses (Fifty et al., "Efficiently
  Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021), gathered while
  training the naive model for as many iterations as DMTG searches; then the grouping
  into at most K groups with the highest mean affinity onto each task from its group;
* ``dmtg``: a ``dmtg`` trial at its defaults with ``num_groups`` K (search, then
  fine-tuning of the grouped model within the trial's iterations);
* ``dmtg-reference``: the same with the reference code's values of the defaults that
  deviate from it (``DMTGParams.REFERENCE_VALUES``).

Grouped arms share the stem DMTG shares (``shared_stages`` of ``DMTGParams``); every
grouping but DMTG's trains from scratch for the full iterations. Reported per arm and seed:
total error (``attributes``: the sum over tasks of ``100 - accuracy``), Delta_T against
the naive model of the same seed, the search cost in training FLOPs (DMTG's search phase;
TAG's affinity run, lookahead passes counted) and the total FLOPs, and the ARI of the
grouping against the true one. Over seeds: means with 95% t intervals, and DMTG's paired
difference to every other arm. On ``scenes-taskonomy`` (5 dense tasks, no known truth):
DMTG's grouping per seed, its stability (ARI between every pair of seeds) and its Delta_T
against naive MTL. Writes ``benchmarks/results/grouping.json`` (``grouping-<data set>.json``
for one data set).

    python -m benchmarks.grouping                       # both data sets, seeds 0-5
    python -m benchmarks.grouping --quick               # attributes, 2 seeds, shorter
    python -m benchmarks.grouping --dataset attributes --seeds 0,1,2
    python -m benchmarks.grouping --ablation            # DMTG's deviations, one at a time
    python -m benchmarks.grouping --report benchmarks/results/grouping.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.func import functional_call

from analysis import comparison_sentence, mean_interval, paired_difference, to_markdown
from trials import TrialConfig, run_trial
from trials._flops import forward_flops_per_image
from trials._trainer import Trainer, build_setup
from trials.data import attribute_groups, build_dataset
from trials.grouping import DMTGParams
from trials.metrics import adjusted_rand_index, delta_t, total_error

RESULTS = Path(__file__).resolve().parent / "results"
ARMS = ("naive", "single-task", "random", "oracle", "tag", "dmtg", "dmtg-reference")
#: TAG's score for a task alone in its group: its network selection never keeps one.
SINGLETON = -1e6

SETTINGS: dict[str, dict[str, Any]] = {
    "attributes": {  # the recovery test's budget (tests/trials/test_grouping_recovery.py)
        "dataset_options": {"num_train": 1000, "num_val": 64, "num_test": 1000},
        "model_options": {"width": 16},
        "head_options": {"hidden": 16},
        "iterations": 300,
        "batch_size": 32,
    },
    "scenes-taskonomy": {
        "dataset_options": {"resolution": 32, "num_train": 800, "num_val": 32, "num_test": 200},
        "model_options": {"width": 16},
        "head_options": {"hidden": 16},
        "iterations": 300,
        "batch_size": 16,
    },
}
QUICK = {"seeds": "0,1", "iterations": 120}
RECOVERY_ITERATIONS = 300


# -- groupings -----------------------------------------------------------------------------


def set_partitions(count: int, max_blocks: int) -> Iterator[tuple[int, ...]]:
    """Every partition of ``count`` items into at most ``max_blocks`` blocks, once each, as
    block labels in first-appearance order (restricted growth strings)."""

    def grow(prefix: list[int], used: int) -> Iterator[tuple[int, ...]]:
        if len(prefix) == count:
            yield tuple(prefix)
            return
        for label in range(min(used + 1, max_blocks)):
            yield from grow([*prefix, label], max(used, label + 1))

    if count:
        yield from grow([0], 1)


def affinity_score(affinity: np.ndarray, labels: Sequence[int]) -> float:
    """TAG's score of a grouping: the mean over tasks of the mean affinity onto the task
    from the other members of its group (``affinity[i, j]``: task ``i``'s update onto task
    ``j``); a task alone scores :data:`SINGLETON`."""
    scores = []
    for j, group in enumerate(labels):
        others = [i for i, g in enumerate(labels) if g == group and i != j]
        scores.append(float(np.mean(affinity[others, j])) if others else SINGLETON)
    return float(np.mean(scores))


def best_grouping(affinity: np.ndarray, max_groups: int) -> tuple[int, ...]:
    """The partition into at most ``max_groups`` groups with the highest
    :func:`affinity_score` (exhaustive; the first of equal scores)."""
    return max(
        set_partitions(len(affinity), max_groups),
        key=lambda labels: affinity_score(affinity, labels),
    )


def random_grouping(count: int, groups: int, seed: int) -> tuple[int, ...]:
    """A uniformly random assignment of ``count`` tasks to ``groups`` branches, redrawn
    until every branch has a task."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    while True:
        labels = tuple(int(g) for g in rng.integers(groups, size=count))
        if len(set(labels)) == groups:
            return labels


def pairwise_ari(assignments: Sequence[Sequence[int]]) -> list[float]:
    """Adjusted Rand index of every pair of assignments (a grouping's stability)."""
    return [
        adjusted_rand_index(list(a), list(b)) for a, b in itertools.combinations(assignments, 2)
    ]


# -- TAG's affinity run --------------------------------------------------------------------


def _adam_lookahead(optimizer: Any, parameter: Any, gradient: Any) -> Any:
    """The step Adam would take on ``parameter`` were ``gradient`` its whole gradient
    (TAG looks ahead with the training optimizer's own update)."""
    group = next(g for g in optimizer.param_groups if any(p is parameter for p in g["params"]))
    beta1, beta2 = group["betas"]
    state = optimizer.state.get(parameter, {})
    step = float(state["step"]) + 1 if state else 1.0
    first = gradient * (1 - beta1)
    second = gradient.square() * (1 - beta2)
    if state:
        first = first + beta1 * state["exp_avg"]
        second = second + beta2 * state["exp_avg_sq"]
    first_hat = first / (1 - beta1**step)
    second_hat = second / (1 - beta2**step)
    return -group["lr"] * first_hat / (torch.sqrt(second_hat) + group["eps"])


def tag_affinity(fields: dict[str, Any], iterations: int) -> tuple[np.ndarray, float]:
    """TAG's inter-task affinity, gathered while training the naive model.

    Trains the naive model of ``fields`` for ``iterations`` steps with the trainer's setup
    and batch stream (the ``naive`` arm's initialisation and data order), its task
    weighting, and Adam at the trial's lr and step schedule. At every step, for every task
    ``i``, the shared backbone takes the step Adam would take on ``i``'s gradient alone,
    and ``Z[i, j] = 1 - L_j(after) / L_j(before)`` on the same batch (Fifty et al. 2021,
    eq. 3). Returns ``Z`` averaged over the steps, and the FLOPs spent: 3 forward FLOPs
    per image for each training step (the trainer's convention), plus per task and step
    one backward pass through the backbone and that task's head (2x their forward) and one
    forward pass of the whole model for the lookahead.
    """
    config = TrialConfig(**{**fields, "method": "dense"})
    setup = build_setup(config)
    trainer = Trainer(setup)
    model, tasks = setup.model, setup.tasks
    names = list(tasks)
    model.train()
    setup.weighting.attach(tuple(names), iterations)
    shared = dict(model.backbone.named_parameters())
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=config.adam_betas or (0.9, 0.999)
    )
    step_size = max(1, round(config.lr_step_fraction * iterations))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=config.lr_gamma)
    example = trainer.example_image()
    whole = forward_flops_per_image(model, example)
    backbone = forward_flops_per_image(model.backbone, example)
    head = (whole - backbone) / len(names)
    per_image = 3 * whole + len(names) * (2 * (backbone + head) + whole)
    total = np.zeros((len(names), len(names)))
    try:
        for iteration in range(iterations):
            batch = trainer.draw_batch()
            outputs = model(batch["image"])
            losses = {n: tasks[n].loss(outputs[n], batch[n]) for n in names}
            before = torch.stack([losses[n].detach() for n in names])
            buffers = {name: b.clone() for name, b in model.named_buffers()}
            for i, name in enumerate(names):
                grads = torch.autograd.grad(losses[name], list(shared.values()), retain_graph=True)
                ahead = {
                    f"backbone.{key}": p.detach() + _adam_lookahead(optimizer, p, g.detach())
                    for (key, p), g in zip(shared.items(), grads, strict=True)
                }
                with torch.no_grad():
                    state = {key: b.clone() for key, b in buffers.items()}
                    looked = functional_call(model, {**ahead, **state}, (batch["image"],))
                    after = torch.stack([tasks[n].loss(looked[n], batch[n]) for n in names])
                total[i] += (1.0 - after / before).cpu().numpy()
            optimizer.zero_grad(set_to_none=True)
            setup.weighting.combine(losses, iteration).backward()
            optimizer.step()
            scheduler.step()
    finally:
        trainer.close_batches()
    flops = per_image * config.batch_size * iterations
    return total / iterations, flops


# -- arms ----------------------------------------------------------------------------------


def _fields(args: argparse.Namespace, dataset: str, seed: int) -> dict[str, Any]:
    setting = SETTINGS[dataset]
    iterations = args.iterations or setting["iterations"]
    return {
        "dataset": dataset,
        "dataset_options": setting["dataset_options"],
        "eval_split": "test",
        "model": "resnet-tiny",
        "model_options": setting["model_options"],
        "head_options": setting["head_options"],
        "iterations": iterations,
        "batch_size": setting["batch_size"],
        "eval_every": iterations,
        "threads": args.threads,
        "seed": seed,
    }


def _grouped(
    fields: dict[str, Any], tasks: Sequence[str], labels: Sequence[int], shared_stages: int
) -> dict[str, Any]:
    assignment = dict(zip(tasks, (int(g) for g in labels), strict=True))
    grouping = {"assignment": assignment, "shared_stages": shared_stages}
    return {**fields, "method": "dense", "grouping": grouping}


def _outcome(
    result: Any,
    tasks: Sequence[str],
    labels: Sequence[int] | None,
    search_flops: float,
    seconds: float,
) -> dict[str, Any]:
    return {
        "metrics": result.metrics,
        "assignment": None if labels is None else [int(g) for g in labels],
        "search_flops": search_flops,
        "flops": float(result.flops or 0.0) + search_flops,
        "parameters": result.parameters,
        "seconds": seconds,
        "tasks": list(tasks),
    }


def run_arm(
    arm: str, fields: dict[str, Any], tasks: Sequence[str], groups: int, truth: Sequence[int] | None
) -> dict[str, Any]:
    """One arm on one seed: its trial (and TAG's affinity run) and what the tables need."""
    started = time.perf_counter()
    stages = DMTGParams().shared_stages
    seed = fields["seed"]
    search_flops = 0.0
    extra: dict[str, Any] = {}
    labels: Sequence[int] | None
    if arm == "naive":
        labels = [0] * len(tasks)
        result = run_trial({**fields, "method": "dense"})
    elif arm == "single-task":
        labels = list(range(len(tasks)))
        result = run_trial(_grouped(fields, tasks, labels, 0))
    elif arm == "random":
        labels = random_grouping(len(tasks), groups, seed)
        result = run_trial(_grouped(fields, tasks, labels, stages))
    elif arm == "oracle":
        if truth is None:
            raise ValueError("the oracle arm needs a data set with a known grouping")
        labels = truth
        result = run_trial(_grouped(fields, tasks, labels, stages))
    elif arm == "tag":
        search_iterations = max(1, round(DMTGParams().search_fraction * fields["iterations"]))
        affinity, search_flops = tag_affinity(fields, search_iterations)
        labels = best_grouping(affinity, groups)
        extra["affinity"] = affinity.round(6).tolist()
        result = run_trial(_grouped(fields, tasks, labels, stages))
    elif arm in ("dmtg", "dmtg-reference"):
        params = {"num_groups": groups}
        if arm == "dmtg-reference":
            params.update(DMTGParams.REFERENCE_VALUES)
        result = run_trial({**fields, "method": "dmtg", "method_params": params})
        assert result.grouping is not None
        labels = [int(result.grouping["assignment"][t]) for t in tasks]
        search_flops = float(result.grouping["search_flops"])
        extra["probabilities"] = result.grouping["probabilities"]
        result.flops = float(result.flops or 0.0) - search_flops  # counted once below
    else:
        raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(ARMS)}")
    outcome = _outcome(result, tasks, labels, search_flops, time.perf_counter() - started)
    return {**outcome, **extra}


def score(
    outcome: dict[str, Any], naive: dict[str, Any], truth: Sequence[int] | None, attributes: bool
) -> dict[str, float]:
    """The table row of one arm and seed."""
    row = {
        "delta_t": delta_t(outcome["metrics"], naive["metrics"])[0],
        "search_gflops": outcome["search_flops"] / 1e9,
        "total_gflops": outcome["flops"] / 1e9,
        "parameters": float(outcome["parameters"]),
    }
    if attributes:
        row["total_error"] = total_error(outcome["metrics"])
    if truth is not None and outcome["assignment"] is not None:
        row["ari"] = adjusted_rand_index(outcome["assignment"], list(truth))
    return row


# -- tables --------------------------------------------------------------------------------


def _interval_text(values: Sequence[float]) -> str:
    interval = mean_interval(values)
    if not np.isfinite(interval.low):
        return f"{interval.mean:.2f}"
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def summarize(
    rows: dict[tuple[str, int], dict[str, float]], seeds: Sequence[int], key: str
) -> tuple[pd.DataFrame, list[str]]:
    """Per arm over ``seeds``: total error (if measured) and Delta_T, each as its mean and
    95% t interval; DMTG's paired difference in ``key`` to the arm (``dmtg - arm``) with
    its interval; the mean search and total GFLOPs and the mean ARI to the truth (if
    known). Also one sentence per arm comparing DMTG with it (higher Delta_T or lower
    total error is better)."""
    arms = list(dict.fromkeys(arm for arm, _ in rows))
    sign = -1.0 if key == "total_error" else 1.0
    table: dict[str, dict[str, str]] = {}
    sentences = []
    for arm in arms:
        values = [rows[(arm, s)] for s in seeds]
        entry = {
            column: _interval_text([v[column] for v in values])
            for column in ("total_error", "delta_t")
            if column in values[0]
        }
        if arm != "dmtg" and "dmtg" in arms:
            difference = paired_difference(
                [rows[("dmtg", s)][key] for s in seeds], [v[key] for v in values]
            )
            entry[f"dmtg - arm ({key})"] = difference.text(decimals=2)
            better = paired_difference(
                [sign * rows[("dmtg", s)][key] for s in seeds], [sign * v[key] for v in values]
            )
            sentences.append(comparison_sentence("dmtg", arm, better, unit=""))
        else:
            entry[f"dmtg - arm ({key})"] = ""
        for column in ("search_gflops", "total_gflops", "ari"):
            if column in values[0]:
                entry[column] = f"{np.mean([v[column] for v in values]):.3g}"
        table[arm] = entry
    return pd.DataFrame.from_dict(table, orient="index"), sentences


def _seed_table(rows: dict[tuple[str, int], dict[str, float]], seed: int) -> pd.DataFrame:
    return pd.DataFrame.from_dict({a: r for (a, s), r in rows.items() if s == seed}, orient="index")


def print_dataset(name: str, data: dict[str, Any]) -> None:
    """Per-seed tables, the summary over seeds and DMTG's paired comparisons."""
    seeds = data["seeds"]
    rows = _rows(data)
    for seed in seeds:
        print(f"\n{name}, seed {seed}\n{to_markdown(_seed_table(rows, seed))}")
    key = "total_error" if name == "attributes" else "delta_t"
    summary, sentences = summarize(rows, seeds, key)
    print(f"\n{name}, over seeds {seeds}: mean [95% t interval]")
    print(to_markdown(summary))
    for sentence in sentences:
        print(f"  {sentence}")
    found = [data["assignments"][str(s)] for s in seeds if str(s) in data["assignments"]]
    if len(found) > 1:
        stability = pairwise_ari(found)
        print(f"\ndmtg's grouping per seed: {found}")
        print(
            f"stability: ARI between seeds {np.mean(stability):.2f} mean, "
            f"{min(stability):.2f} min over {len(stability)} pairs"
        )


def run_dataset(args: argparse.Namespace, name: str, seeds: Sequence[int]) -> dict[str, Any]:
    """Every arm of ``args.arms`` on every seed of data set ``name``."""
    truth_map = attribute_groups(9, 3) if name == "attributes" else None
    arms = [a for a in args.arms if truth_map is not None or a != "oracle"]
    rows: dict[str, dict[str, float]] = {}
    raw: dict[str, dict[str, Any]] = {}
    assignments: dict[str, list[int]] = {}
    for seed in seeds:
        fields = _fields(args, name, seed)
        tasks = build_dataset(name, "val", None, **fields["dataset_options"]).tasks
        truth = None if truth_map is None else [truth_map[t] for t in tasks]
        outcomes = {arm: run_arm(arm, fields, tasks, args.groups, truth) for arm in arms}
        naive = outcomes.get("naive") or run_arm("naive", fields, tasks, args.groups, truth)
        for arm, outcome in outcomes.items():
            row = score(outcome, naive, truth, name == "attributes")
            rows[f"{arm}/seed-{seed}"] = row
            raw[f"{arm}/seed-{seed}"] = outcome
            print(
                f"{name} seed {seed} {arm}: "
                + ", ".join(f"{k} {v:.3g}" for k, v in row.items())
                + f" ({outcome['seconds']:.0f} s)",
                flush=True,
            )
        if "dmtg" in outcomes:
            assignments[str(seed)] = outcomes["dmtg"]["assignment"]
    return {"seeds": list(seeds), "rows": rows, "raw": raw, "assignments": assignments}


# -- ablation ------------------------------------------------------------------------------


def recovery_trial(
    seed: int,
    method_params: dict[str, Any] | None = None,
    iterations: int = RECOVERY_ITERATIONS,
    eval_every: int | None = None,
) -> dict[str, Any]:
    """The ``dmtg`` trial of the recovery test (``tests/trials/test_grouping_recovery.py``)
    and of the ablation: ``attributes`` (9 tasks, 3 factor groups) from 1000 training
    images, resnet-tiny at width 16 with 16-channel heads, batch 32, one thread; DMTG at
    its defaults with ``num_groups`` 3 unless ``method_params`` say otherwise."""
    return {
        "dataset": "attributes",
        "dataset_options": {"num_train": 1000, "num_val": 64, "num_test": 32},
        "model": "resnet-tiny",
        "model_options": {"width": 16},
        "head_options": {"hidden": 16},
        "method": "dmtg",
        "method_params": {"num_groups": 3, **(method_params or {})},
        "iterations": iterations,
        "batch_size": 32,
        "eval_every": eval_every or iterations,
        "threads": 1,
        "seed": seed,
    }


def decided_at(history: Sequence[dict[str, Any]]) -> int:
    """The first recorded search iteration from which every task's argmax branch stays
    the same to the end of the search."""
    argmaxes = [tuple(int(np.argmax(row)) for row in h["probabilities"]) for h in history]
    first = len(argmaxes) - 1
    while first > 0 and argmaxes[first - 1] == argmaxes[-1]:
        first -= 1
    return int(history[first]["iteration"])


def diagnose(found: Sequence[int], truth: Sequence[int], probabilities: Any) -> str:
    """What a search ended in: ``recovered`` (ARI >= 0.8); ``undecided`` (the mean largest
    assignment probability is below 0.5: ``Theta`` hardly moved, the argmax is noise);
    ``collapse`` (one branch holds most tasks of two true groups); else ``mixed`` (the
    branches each settled on a mix of groups)."""
    if adjusted_rand_index(list(found), list(truth)) >= 0.8:
        return "recovered"
    if float(np.mean(np.max(np.asarray(probabilities), axis=1))) < 0.5:
        return "undecided"
    for branch in set(found):
        held = [t for f, t in zip(found, truth, strict=True) if f == branch]
        majorities = [g for g in set(truth) if 2 * held.count(g) > list(truth).count(g)]
        if len(majorities) >= 2:
            return "collapse"
    return "mixed"


def run_ablation(args: argparse.Namespace, seeds: Sequence[int]) -> dict[str, Any]:
    """DMTG's recovery trial (:func:`recovery_trial`) at its defaults, with each default
    that deviates from the reference code set back to the reference's value, and with all
    of them set back. Per variant and seed: the ARI of the found grouping, the branch
    sizes, :func:`diagnose`'s verdict, the iteration the assignment was decided at, and the
    history of the assignment probabilities (every 25 search steps)."""
    truth_map = attribute_groups(9, 3)
    truth = list(truth_map.values())
    reference = DMTGParams.REFERENCE_VALUES
    variants: dict[str, dict[str, Any]] = {"defaults": {}}
    variants.update({f"{name}={value}": {name: value} for name, value in reference.items()})
    variants["all of DG's values"] = dict(reference)
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for label, params in variants.items():
        for seed in seeds:
            trial = recovery_trial(
                seed, {"num_groups": args.groups, **params}, args.iterations or 300, 25
            )
            result = run_trial(trial)
            assert result.grouping is not None
            found = [int(result.grouping["assignment"][t]) for t in truth_map]
            probabilities = result.grouping["probabilities"]
            run = {
                "ari": adjusted_rand_index(found, truth),
                "assignment": found,
                "sizes": "-".join(str(n) for n in sorted(np.bincount(found), reverse=True)),
                "verdict": diagnose(found, truth, probabilities),
                "decided_at": decided_at(result.grouping["history"]),
                "confidence": float(np.mean(np.max(np.asarray(probabilities), axis=1))),
                "history": result.grouping["history"],
            }
            runs.setdefault(label, {})[str(seed)] = run
            print(
                f"ablation {label} seed {seed}: ARI {run['ari']:.2f} {run['verdict']} "
                f"{found} sizes {run['sizes']} decided at {run['decided_at']} "
                f"confidence {run['confidence']:.2f}",
                flush=True,
            )
    return {"seeds": list(seeds), "runs": runs}


def needed_deviations(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[str]]:
    """Per seed recovered at the defaults: the deviations it needs (set back alone to the
    reference's value, the seed fails)."""
    single = [label for label in runs if "=" in label]
    return {
        seed: [label.split("=")[0] for label in single if runs[label][seed]["ari"] < 0.8]
        for seed, run in runs["defaults"].items()
        if run["ari"] >= 0.8
    }


def _verdict(run: dict[str, Any]) -> str:
    return f"{run['verdict']} {run['sizes']} @{run['decided_at']}"


def print_ablation(data: dict[str, Any]) -> None:
    runs = data["runs"]
    ari = pd.DataFrame.from_dict(
        {label: {s: r["ari"] for s, r in by_seed.items()} for label, by_seed in runs.items()},
        orient="index",
    )
    ari["recovered"] = (ari >= 0.8).sum(axis=1).astype(float)
    print(f"\nattributes, DMTG's ARI per seed (recovered: ARI >= 0.8)\n{to_markdown(ari)}")
    verdicts = pd.DataFrame.from_dict(
        {
            label: {
                s: f"{r['verdict']} {r['sizes']} @{r['decided_at']}" for s, r in by_seed.items()
            }
            for label, by_seed in runs.items()
        },
        orient="index",
    )
    print(f"\nverdict, branch sizes, decided at (search step)\n{to_markdown(verdicts)}")
    for seed, needs in needed_deviations(runs).items():
        print(f"seed {seed} needs: {', '.join(needs) or 'none of the deviations alone'}")


# -- main ----------------------------------------------------------------------------------


def _rows(part: dict[str, Any]) -> dict[tuple[str, int], dict[str, float]]:
    return {
        (arm, int(seed)): row
        for key, row in part["rows"].items()
        for arm, seed in [key.rsplit("/seed-", 1)]
    }


def summary_line(data: dict[str, Any]) -> str:
    """One line: DMTG against naive MTL (and TAG's search cost) per data set, or the
    ablation's recovery counts."""
    if "ablation" in data:
        runs = data["ablation"]["runs"]
        seeds = len(data["ablation"]["seeds"])
        counts = {
            label: sum(run["ari"] >= 0.8 for run in by_seed.values())
            for label, by_seed in runs.items()
        }
        others = ", ".join(f"{label} {count}/{seeds}" for label, count in counts.items())
        return f"grouping recovered (ARI >= 0.8): {others}"
    parts = []
    for name, part in data.get("datasets", {}).items():
        rows, seeds = _rows(part), part["seeds"]
        key = "total_error" if name == "attributes" else "delta_t"
        if ("dmtg", seeds[0]) not in rows or ("naive", seeds[0]) not in rows:
            continue
        dmtg = [rows[("dmtg", s)][key] for s in seeds]
        naive = [rows[("naive", s)][key] for s in seeds]
        difference = paired_difference(dmtg, naive)
        text = f"{name}: dmtg {key} {np.mean(dmtg):.1f} vs naive {np.mean(naive):.1f}"
        text += f" (difference {difference.text(decimals=1)})"
        if ("tag", seeds[0]) in rows:
            ratio = np.mean([rows[("dmtg", s)]["search_gflops"] for s in seeds]) / np.mean(
                [rows[("tag", s)]["search_gflops"] for s in seeds]
            )
            text += f", search FLOPs {ratio:.2f}x tag's"
        parts.append(text)
    return "; ".join(parts) or "no data set measured"


def print_tables(data: dict[str, Any]) -> None:
    for name, part in data.get("datasets", {}).items():
        print_dataset(name, part)
    if "ablation" in data:
        print_ablation(data["ablation"])


def report(data: dict[str, Any]) -> int:
    """``--report``: the tables of a stored run, without training anything."""
    print_tables(data)
    print(summary_line(data))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=(*SETTINGS, "both"), default="both")
    parser.add_argument("--seeds", default="0,1,2,3,4,5")
    parser.add_argument("--iterations", type=int, help="per trial (default: per data set)")
    parser.add_argument("--groups", type=int, default=3, help="K: branches of every grouping")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="attributes, 2 seeds, shorter")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="DMTG's deviations from the reference, one at a time",
    )
    parser.add_argument("--report", type=Path, help="print the tables of a results JSON")
    args = parser.parse_args(argv)
    if args.report is not None:
        return report(json.loads(args.report.read_text()))
    if args.quick:
        args.seeds, args.dataset = QUICK["seeds"], "attributes"
        args.iterations = args.iterations or QUICK["iterations"]
    args.arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm {unknown[0]!r}; choose from: {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    data: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "report"}}
    if args.ablation:
        data["ablation"] = run_ablation(args, seeds)
    else:
        names = list(SETTINGS) if args.dataset == "both" else [args.dataset]
        data["datasets"] = {name: run_dataset(args, name, seeds) for name in names}
    data["wall_s"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    suffix = "-ablation" if args.ablation else ("-quick" if args.quick else "")
    if not suffix and args.dataset != "both":
        suffix = f"-{args.dataset}"
    (RESULTS / f"grouping{suffix}.json").write_text(json.dumps(data, indent=1))
    print_tables(data)
    print(f"\nwall time {data['wall_s'] / 60:.1f} min")
    print(summary_line(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
