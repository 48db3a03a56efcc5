"""A study on a real two-node Ray cluster: head and worker in their own network
namespaces, token authentication on, the driver inside the head's namespace."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from study.store import ResultStore
from tests.integration.cluster import PYTHON, RayCluster, started_cluster
from tests.integration.helpers import PARETUNE, db_url, tiny_study, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RayCluster]:
    """Head (1 CPU, ``head_slot``) and worker (1 CPU, ``worker_slot``); always torn down."""
    yield started_cluster(request, tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def cluster_study(cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny study run by a driver in the head's namespace with ``--address``.

    Trials start from the dense reference's weights (``init: dense``), so the worker node
    reads them from the shared study folder; they train long enough that both nodes get
    some while the other is busy (a cached worker of a finished trial would otherwise take
    the next one before a new worker has started on the other node)."""
    folder = tmp_path_factory.mktemp("cluster-study")
    config = tiny_study(
        "spread",
        folder,
        methods=[{"name": "dense"}, {"name": "random"}],
        budget={
            "trials_per_method": 4,
            "iterations": 400,
            "seeds": [0],
            "batch_size": 4,
            "eval_every": 200,
        },
        reference={"iterations": 12},
    )
    path = write_config(config, folder)
    began = time.monotonic()
    run = cluster.run_in(
        cluster.head, [PARETUNE, "run", str(path), "--address", cluster.address], timeout=600
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    print(f"cluster study: {time.monotonic() - began:.1f} s")
    return {"config": config, "run": run, "nodes": cluster.alive_nodes()}


def test_nodes_have_their_own_addresses_and_resources(cluster_study, cluster):
    nodes = {n["NodeManagerAddress"]: n["Resources"] for n in cluster_study["nodes"]}
    assert set(nodes) == {cluster.head.address, cluster.worker.address}
    head, worker = nodes[cluster.head.address], nodes[cluster.worker.address]
    assert head["CPU"] == 1 and head["head_slot"] == 1 and "worker_slot" not in head
    assert worker["CPU"] == 1 and worker["worker_slot"] == 1 and "head_slot" not in worker


def test_trials_ran_on_both_nodes_and_their_node_ids_are_stored(cluster_study):
    ids = {n["NodeManagerAddress"]: n["NodeID"] for n in cluster_study["nodes"]}
    with ResultStore(db_url(cluster_study["config"]), create=False) as store:
        trials = store.trials_of("spread")
    expected, found = 5, len(trials)
    complete = sum(t.status == "COMPLETE" for t in trials)
    print(f"trials expected {expected}, found {found}, complete {complete}")
    assert found == expected and complete == expected, [(t.status, t.error) for t in trials]
    used = {t.node_id for t in trials}
    print(f"node ids stored: {sorted(used)}; cluster: {ids}")
    assert used == set(ids.values())  # both nodes ran trials, and nothing else did
    reference = next(t for t in trials if t.is_reference)
    searched = [t for t in trials if not t.is_reference]
    assert all(t.config["init"] == reference.config["save_checkpoint"] for t in searched)


def test_checkpoints_of_both_nodes_land_in_the_shared_study_folder(cluster_study):
    folder = Path(cluster_study["config"]["study_dir"]) / "ray"
    checkpoints = [p for p in folder.rglob("checkpoint_*") if p.is_dir()]
    trial_dirs = {p.parent for p in checkpoints}
    assert len(trial_dirs) == 5, sorted(str(p) for p in trial_dirs)


def test_a_driver_with_a_wrong_token_is_refused(cluster, tmp_path):
    script = f"import ray; ray.init(address={cluster.address!r})"
    log = tmp_path / "wrong-token.log"
    driver = cluster.popen_in(
        cluster.head, [PYTHON, "-c", script], log, RAY_AUTH_TOKEN="0" * 64, HOME=str(tmp_path)
    )
    try:
        deadline = time.monotonic() + 60
        while "InvalidAuthToken" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        driver.kill()
        driver.wait(timeout=30)
    assert "Connected to Ray cluster" not in log.read_text()


def test_a_driver_without_a_token_is_refused(cluster, tmp_path):
    script = f"import ray; ray.init(address={cluster.address!r})"
    run = cluster.run_in(
        cluster.head,
        [PYTHON, "-c", script],
        timeout=120,
        drop=("RAY_AUTH_TOKEN",),
        HOME=str(tmp_path),  # no ~/.ray/auth_token to fall back on
    )
    assert run.returncode != 0
    assert "no authentication token was found" in run.stderr


def test_the_token_is_not_in_the_study_output(cluster_study, cluster):
    run: subprocess.CompletedProcess[str] = cluster_study["run"]
    assert cluster.token not in run.stdout + run.stderr
