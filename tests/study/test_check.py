"""``paretune check``: the pre-flight on good and broken set-ups, and that it writes nothing.

Real things throughout: fabricated NYUv2 files, real SQLite files and PostgreSQL databases,
a real TCP port with nothing behind it. The multi-node Ray cases (nodes listed, GPUs too
few, a refused token) are in ``tests/integration/test_check_cluster.py``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import create_engine, inspect, text

from study._check import check_command
from study._cluster import NodeInfo, fit_trials
from study._config import parse_config
from study.cli import main
from study.store import ResultStore
from tests.fabricate import nyuv2_folder
from tests.postgres import PostgresServer


@pytest.fixture
def nyu_root(tmp_path: Path) -> Path:
    return nyuv2_folder(tmp_path / "nyuv2", train=8, val=3, size=(24, 32))


def study_config(root: Path, folder: Path, **changes: Any) -> dict[str, Any]:
    """A tiny study on fabricated NYUv2 (sections in ``changes`` replace the defaults)."""
    config: dict[str, Any] = {
        "name": "preflight",
        "dataset": {"name": "nyuv2", "root": str(root), "options": {"augment": {"crop": 16}}},
        "model": {
            "backbone": "resnet-tiny",
            "head": "light",
            "options": {"width": 8},
            "head_options": {"hidden": 8},
        },
        "methods": [{"name": "magnitude"}, {"name": "adapmtl"}],
        "budget": {"trials_per_method": 2, "iterations": 50, "batch_size": 2, "seeds": [0]},
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
        "study_dir": str(folder / "runs" / "preflight"),
    }
    config.update(changes)
    return config


def write(config: dict[str, Any], folder: Path) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_check(path: Path, *args: str) -> int:
    """``paretune check`` in this process; its exit code."""
    with pytest.raises(SystemExit) as stopped:
        main(["check", str(path), *args])
        raise SystemExit(0)
    return int(stopped.value.code or 0)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def lines_of(output: str, status: str, topic: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{status:<4}  {topic}:")]


def test_a_good_setup_passes_and_writes_nothing(tmp_path, nyu_root, capsys):
    config = study_config(nyu_root, tmp_path)
    path = write(config, tmp_path)
    before = snapshot(tmp_path)
    assert run_check(path, "--iterations", "2") == 0
    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before
    assert not Path(config["study_dir"]).exists()
    assert lines_of(out, "ok", "config") and "5 trials (1 dense reference)" in out
    (train,) = [line for line in lines_of(out, "ok", "data") if " train 8 samples" in line]
    assert "(8 read): image 3x16x16, segment_semantic 16x16" in train  # the training crop
    assert "val 3 samples (3 read): image 3x16x16" in out  # held out at the crop size
    assert lines_of(out, "warn", "data")  # 8 of the standard 795 samples
    assert "a local Ray on 127.0.0.1" in out
    assert lines_of(out, "ok", "resources")
    assert "does not exist yet; paretune run creates it" in out
    assert "name 'preflight' is free" in out
    measured, totals = lines_of(out, "ok", "estimate")
    assert "measured on this machine's cpu" in measured and "magnitude" in measured
    assert "5 trials (1 x dense reference (50 it); 2 x magnitude (50 it); 2 x adapmtl (50 it))" in (
        totals
    )
    assert "CPU-hours" in totals and "wall with 2 trial(s) at once" in totals
    assert out.rstrip().endswith("ready: nothing was written")


def test_missing_files_fail_on_one_line(tmp_path, nyu_root, capsys):
    (nyu_root / "train" / "label" / "7.npy").unlink()
    path = write(study_config(nyu_root, tmp_path), tmp_path)
    assert run_check(path, "--no-estimate") == 2
    captured = capsys.readouterr()
    (failure,) = lines_of(captured.out, "FAIL", "data")
    assert "expected 8 files in" in failure and "train/label" in failure and "found 7" in failure
    assert "estimate" not in captured.out
    assert "error: 1 problem(s) found; nothing was written" in captured.err


def test_wrong_shapes_fail(tmp_path, nyu_root, capsys):
    # The last file is always read: its depth map does not match its image.
    np.save(nyu_root / "train" / "depth" / "7.npy", np.ones((20, 32), dtype=np.float32))
    path = write(study_config(nyu_root, tmp_path), tmp_path)
    assert run_check(path, "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "data")
    assert "depth/7.npy is (20, 32) pixels but its image" in failure


def test_samples_of_different_sizes_fail(tmp_path, nyu_root, capsys):
    nyuv2_folder(tmp_path / "other", train=8, val=3, size=(12, 16))
    for name in ("image", "label", "depth", "normal"):
        (tmp_path / "other" / "val" / name / "2.npy").replace(nyu_root / "val" / name / "2.npy")
    config = study_config(nyu_root, tmp_path)
    config["dataset"]["options"] = {}  # no crop, no resize: sizes must agree
    assert run_check(write(config, tmp_path), "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "data")
    assert "nyuv2 val: sample 2 has image of shape (3, 12, 16)" in failure
    assert "cannot share a batch (set the resolution option)" in failure


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_ray_fails(tmp_path, nyu_root, capsys):
    path = write(study_config(nyu_root, tmp_path), tmp_path)
    address = f"127.0.0.1:{free_port()}"
    assert run_check(path, "--no-estimate", "--address", address) == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "ray")
    assert failure.endswith(f"cannot reach Ray at {address}: Connection refused")


def test_too_few_gpus_for_resources_fail(tmp_path, nyu_root, capsys):
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" or _gpus():
        pytest.skip("this machine has a GPU")
    resources = {"cpus_per_trial": 1, "gpus_per_trial": 0.5, "max_concurrent": 2}
    path = write(study_config(nyu_root, tmp_path, resources=resources), tmp_path)
    assert run_check(path, "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "resources")
    assert failure.endswith(
        "too few GPUs: a trial needs 0.5 GPU (resources.gpus_per_trial) but the largest "
        "machine has 0"
    )


def _gpus() -> int:
    from trials._device import visible_gpus

    return visible_gpus()


def test_fit_trials_counts_what_each_node_holds():
    nodes = [NodeInfo("a", 8, 2), NodeInfo("b", 4, 1), NodeInfo("c", 16, 0)]
    assert fit_trials(nodes, 2, 0.5).slots == 4 + 2  # GPUs bound a and b; c has none
    assert fit_trials(nodes, 2, 0).slots == 4 + 2 + 8
    assert fit_trials(nodes, 3, 0.25).slots == 2 + 1
    assert fit_trials(nodes, 1, 3).problem == (
        "too few GPUs: a trial needs 3 GPU (resources.gpus_per_trial) but the largest node has 2"
    )
    assert fit_trials(nodes, 32, 0).problem == (
        "too few CPUs: a trial needs 32 CPUs (resources.cpus_per_trial) but the largest node has 16"
    )


def _create_study(url: str, config: dict[str, Any]) -> None:
    parsed = parse_config(config)
    with ResultStore(url) as store:
        store.create_study(parsed.name, parsed.public_dict(), [tuple(o) for o in parsed.objectives])


def test_an_existing_sqlite_study_is_resumable_and_left_unchanged(tmp_path, nyu_root, capsys):
    config = study_config(nyu_root, tmp_path)
    _create_study(parse_config(config).storage_url(), config)
    folder = Path(config["study_dir"])
    before = snapshot(folder)
    assert run_check(write(config, tmp_path), "--no-estimate") == 0
    out = capsys.readouterr().out
    assert snapshot(folder) == before  # same files, same bytes
    assert "is reachable and writable (probe rolled back)" in out
    assert "'preflight' exists (CREATED): paretune resume preflight finishes it" in out


@pytest.mark.parametrize(
    ("budget", "code", "line"),
    [
        (
            {"iterations": 80},
            2,
            "FAIL  study: 'preflight' exists in sqlite:///{db} with another config "
            "(budget.iterations: 50 -> 80); choose another name",
        ),
        (
            {"trials_per_method": 4},
            0,
            "ok    study: 'preflight' exists (CREATED); this config adds trials: paretune "
            "resume preflight --config CONFIG",
        ),
    ],
)
def test_an_existing_study_with_another_config(tmp_path, nyu_root, capsys, budget, code, line):
    config = study_config(nyu_root, tmp_path)
    url = parse_config(config).storage_url()
    _create_study(url, config)
    changed = {**config, "budget": {**config["budget"], **budget}}
    assert run_check(write(changed, tmp_path), "--no-estimate") == code
    assert line.format(db=url.removeprefix("sqlite:///")) in capsys.readouterr().out.splitlines()


def test_a_read_only_sqlite_database_fails(tmp_path, nyu_root, capsys):
    config = study_config(nyu_root, tmp_path)
    url = parse_config(config).storage_url()
    _create_study(url, config)
    database = url.removeprefix("sqlite:///")
    read_only = study_config(
        nyu_root, tmp_path, storage=f"sqlite:///file:{database}?mode=ro&uri=true"
    )
    before = snapshot(Path(config["study_dir"]))
    assert run_check(write(read_only, tmp_path), "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "database")
    assert "is not reachable or not writable: attempt to write a readonly database" in failure
    assert snapshot(Path(config["study_dir"])) == before


def test_an_unreachable_database_fails(tmp_path, nyu_root, capsys):
    storage = f"postgresql+psycopg://paretune:secret@127.0.0.1:{free_port()}/paretune"
    path = write(study_config(nyu_root, tmp_path, storage=storage), tmp_path)
    assert run_check(path, "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "database")
    assert "postgresql+psycopg://paretune:***@127.0.0.1" in failure
    assert "is not reachable or not writable" in failure and "secret" not in failure


def _tables(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return {
                name: int(connection.scalar(text(f'SELECT count(*) FROM "{name}"')) or 0)
                for name in names
            }
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_probe_leaves_the_tables_as_they_were(
    tmp_path, nyu_root, capsys, postgres_url: str
):
    config = study_config(nyu_root, tmp_path, storage=postgres_url)
    assert run_check(write(config, tmp_path), "--no-estimate") == 0  # an empty database
    assert _tables(postgres_url) == {}
    _create_study(postgres_url, config)
    before = _tables(postgres_url)
    assert before["paretune_studies"] == 1
    assert run_check(write(config, tmp_path), "--no-estimate") == 0
    out = capsys.readouterr().out
    assert _tables(postgres_url) == before
    assert "'preflight' exists (CREATED)" in out and "probe rolled back" in out
    assert not Path(config["study_dir"]).exists()


@pytest.mark.postgres
def test_a_read_only_postgres_database_fails(
    tmp_path, nyu_root, capsys, postgres_server: PostgresServer, postgres_url: str
):
    name = postgres_url.rsplit("/", 1)[1]
    postgres_server.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    path = write(study_config(nyu_root, tmp_path, storage=postgres_url), tmp_path)
    assert run_check(path, "--no-estimate") == 2
    (failure,) = lines_of(capsys.readouterr().out, "FAIL", "database")
    assert "cannot execute CREATE TABLE in a read-only transaction" in failure


def test_a_bad_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmethods: [{name: adapmt}]\n")
    assert run_check(path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: methods[0].name: unknown method 'adapmt'") and "\n" not in err


def test_check_command_returns_its_findings(tmp_path, nyu_root):
    path = write(study_config(nyu_root, tmp_path), tmp_path)
    findings = check_command(path, estimate=False)
    topics = {"config", "data", "ray", "resources", "database", "study"}
    assert {finding.topic for finding in findings} == topics
    assert all(f.status != "fail" for f in findings)
