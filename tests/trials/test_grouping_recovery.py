"""DMTG recovers a known task grouping: 9 attributes from 3 factor groups, K = 3.

Each ``attributes`` task depends on exactly one factor group (``task_groups``); the
searched assignment is compared with it by the adjusted Rand index over three seeds.
Narrow branches (``width`` 4) make capacity the bottleneck, so one branch serves one group
well but not three; calibration ``short-budget`` (decoupled heads, a frozen-``Theta``
warm-up, the load balance, the stem's gradient x``1/sqrt(N)`` and the trainer's lr halved
at 40% of the budget) does the rest. The test runs that calibration explicitly because it
is what these 300 iterations and the two-of-three threshold were measured with. The
reference recipe (``DMTGParams``' defaults, DMTG's own) is a different search: with this
test's parameters it recovered the grouping in none of the three seeds (ARI 0.48, 0.27,
0.0), with DMTG's Taskonomy ``tau=4`` and ``Theta`` at the network's rate in two (1.0,
1.0, 0.15). The logits' rate is ``4 * 5e-3 = 0.02``, the preset's ``10 * 2e-3``.
"""

from __future__ import annotations

import pytest

from trials import run_trial
from trials.data import attribute_groups
from trials.metrics import adjusted_rand_index

SEEDS = (0, 1, 2)
ITERATIONS = 300


def recovered_ari(seed: int) -> float:
    result = run_trial(
        {
            "dataset": "attributes",
            "dataset_options": {"num_train": 1000, "num_val": 64, "num_test": 32},
            "model": "resnet-tiny",
            "model_options": {"width": 4},
            "head_options": {"hidden": 4},
            "method": "dmtg",
            "calibration": "short-budget",
            "method_params": {
                "num_groups": 3,
                "tau": 2.5,
                "shared_stages": 1,
                "search_fraction": 1.0,
                "logits_lr_scale": 4.0,
            },
            "iterations": ITERATIONS,
            "lr": 5e-3,
            "batch_size": 32,
            "eval_every": ITERATIONS,
            "threads": 1,
            "seed": seed,
        }
    )
    assert result.grouping is not None
    truth = attribute_groups(9, 3)
    found = result.grouping["assignment"]
    return adjusted_rand_index([found[task] for task in truth], list(truth.values()))


@pytest.mark.slow
def test_dmtg_recovers_the_true_grouping_in_two_of_three_seeds() -> None:
    scores = [recovered_ari(seed) for seed in SEEDS]
    assert sum(score >= 0.8 for score in scores) >= 2, f"ARI per seed: {scores}"
