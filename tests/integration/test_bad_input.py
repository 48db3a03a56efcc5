"""Bad input: one line naming the field, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from tests.integration.helpers import paretune, tiny_study, write_config

pytestmark = pytest.mark.integration

CASES = {
    "unknown-method": (
        {"methods": [{"name": "adapmt"}]},
        r"unknown method 'adapmt'.*did you mean 'adapmtl'",
    ),
    "zero-budget": ({"budget": {"trials_per_method": 0}}, r"budget\.trials_per_method"),
    "low-above-high": (
        {
            "methods": [
                {
                    "name": "magnitude",
                    "search_space": {"target_sparsity": {"low": 0.9, "high": 0.5}},
                }
            ]
        },
        r"target_sparsity.*0\.9.*0\.5",
    ),
    "unknown-key": ({"budgte": {}}, r"budgte"),
    "unreachable-database": (
        {"storage": "postgresql+psycopg://paretune:s3cret-pw@127.0.0.1:1/paretune"},
        r"cannot connect to database",
    ),
    "unreachable-ray": ({"ray_address": "127.0.0.1:1"}, r"cannot reach Ray at 127\.0\.0\.1:1"),
    "missing-dataset": ({"dataset": {"name": "nyuv2", "root": "/no/such/nyu"}}, r"/no/such/nyu"),
    "too-many-groups": (
        {"methods": [{"name": "dmtg", "search_space": {"num_groups": 12}}]},
        r"num_groups must be between 1 and 3.*got 12",
    ),
    "no-groups": (
        {"methods": [{"name": "dmtg", "search_space": {"num_groups": 0}}]},
        r"num_groups",
    ),
    "unknown-task": (
        {"tasks": ["segment_semantic", "depth"]},
        r"task 'depth'; choose one of: depth_zbuffer",
    ),
    "grouping-without-search": (
        {"methods": [{"name": "magnitude", "grouping": {"trial": "best"}}]},
        r"runs no 'dmtg' method",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_one_line_exit_2_and_writes_nothing(case, tmp_path):
    changes, pattern = CASES[case]
    config = tiny_study(f"bad-{case}", tmp_path, **changes)
    path = write_config(config, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    run = paretune("run", str(path), cwd=tmp_path, check=False, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert "s3cret-pw" not in run.stderr + run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before
