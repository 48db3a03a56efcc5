"""``paretune check`` against a real two-node Ray cluster (network namespaces, token
authentication on): nodes and their GPUs listed against ``resources``, too few GPUs, and a
process without the cluster's token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fabricate import nyuv2_folder
from tests.integration.cluster import RayCluster, started_cluster
from tests.integration.helpers import PARETUNE, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RayCluster]:
    """Head (1 CPU, no GPU) and worker (2 CPUs, 1 GPU declared); always torn down."""
    root = tmp_path_factory.mktemp("check-cluster")
    yield started_cluster(request, root, worker_cpus=2, worker_gpus=1)


def _config(folder: Path, gpus_per_trial: float) -> Path:
    root = nyuv2_folder(folder / "nyuv2", train=4, val=2, size=(16, 16))
    config: dict[str, Any] = {
        "name": f"gpus-{str(gpus_per_trial).replace('.', '-')}",
        "dataset": {"name": "nyuv2", "root": str(root)},
        "model": {"backbone": "resnet-tiny", "options": {"width": 8}},
        "methods": [{"name": "magnitude"}],
        "budget": {"trials_per_method": 2, "iterations": 20, "batch_size": 2},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": gpus_per_trial, "max_concurrent": 2},
        "study_dir": str(folder / "runs"),
    }
    return write_config(config, folder)


def _check(cluster: RayCluster, path: Path, **env: Any) -> tuple[int, str]:
    done = cluster.run_in(
        cluster.head,
        [PARETUNE, "check", str(path), "--no-estimate", "--address", cluster.address],
        timeout=300,
        **env,
    )
    return done.returncode, done.stdout + done.stderr


def test_nodes_and_their_gpus_are_listed_against_resources(cluster, tmp_path):
    code, out = _check(cluster, _config(tmp_path, 0.5))
    assert code == 0, out
    assert (
        f"ok    ray: Ray at {cluster.address}: 2 node(s): {cluster.head.address} (1 CPU, 0 GPU); "
        f"{cluster.worker.address} (2 CPU, 1 GPU)"
    ) in out
    # Only the worker has a GPU: two half-GPU trials of one CPU each.
    assert "ok    resources: the nodes run 2 trial(s) at once (1 CPU, 0.5 GPU per trial)" in out


def test_too_few_gpus_fail(cluster, tmp_path):
    code, out = _check(cluster, _config(tmp_path, 2))
    assert code == 2, out
    assert (
        "FAIL  resources: too few GPUs: a trial needs 2 GPU (resources.gpus_per_trial) but the "
        "largest node has 1"
    ) in out


def test_a_process_without_the_token_is_refused(cluster, tmp_path):
    code, out = _check(cluster, _config(tmp_path, 0.5), drop=("RAY_AUTH_TOKEN",))
    assert code == 2, out
    (line,) = [line for line in out.splitlines() if line.startswith("FAIL  ray:")]
    assert f"Ray at {cluster.address} refused the connection: InvalidAuthToken" in line
    assert "set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN" in line
