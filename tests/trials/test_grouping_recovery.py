"""DMTG recovers a known task grouping at its defaults: 9 attributes, 3 factor groups, K = 3.

Each ``attributes`` task depends on exactly one factor group (``task_groups``); the
searched assignment is compared with it by the adjusted Rand index over six seeds. The
method's parameters are its defaults with ``num_groups=3``, the trainer's the reference
calibration's (lr 1e-3 halved every 20% of each phase); the test picks only the trial's
budget: 1000 training images, resnet-tiny at width 16 with 16-channel heads, 300
iterations (150 of search) of batch 32, one thread.

Measured (per seed 0..5, ARI): the defaults 1.0, 1.0, 1.0, 0.11, 1.0, 1.0; DMTG's own
values (``DMTGParams.REFERENCE_VALUES``) at this budget make no decision. Every
deviation's share is in ``benchmarks/README.md`` (``python -m benchmarks.grouping
--ablation``).
"""

from __future__ import annotations

import pytest

from benchmarks.grouping import recovery_trial
from trials import run_trial
from trials.data import attribute_groups
from trials.metrics import adjusted_rand_index

SEEDS = (0, 1, 2, 3, 4, 5)


def recovered_ari(seed: int) -> float:
    result = run_trial(recovery_trial(seed))
    assert result.grouping is not None
    truth = attribute_groups(9, 3)
    found = result.grouping["assignment"]
    return adjusted_rand_index([found[task] for task in truth], list(truth.values()))


@pytest.mark.slow
def test_dmtg_recovers_the_true_grouping_at_its_defaults_in_five_of_six_seeds() -> None:
    scores = [recovered_ari(seed) for seed in SEEDS]
    assert sum(score >= 0.8 for score in scores) >= 5, f"ARI per seed: {scores}"
