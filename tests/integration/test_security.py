"""Security: the database password never leaks, the dashboard stays on loopback unless
told otherwise, YAML is parsed safely and checkpoints never unpickle arbitrary objects."""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from study.store import ResultStore
from tests.integration.browser import listening_addresses, running_dashboard
from tests.integration.cluster import PYTHON, require_network_namespaces
from tests.integration.helpers import (
    PARETUNE,
    paretune,
    start_driver,
    tiny_study,
    worker_env,
    write_config,
)
from tests.postgres import PostgresServer, start_for_tests

pytestmark = pytest.mark.integration


# --- the database password -----------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with start_for_tests() as server:
        yield server


@pytest.fixture(scope="module")
def secret_study(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A tiny study on PostgreSQL; every output of it and of the commands that read it."""
    folder = tmp_path_factory.mktemp("secret")
    ray_tmp = Path(tempfile.mkdtemp(prefix="ptsec-", dir="/tmp"))  # Ray's session logs
    url = postgres.create_database("secret_study")
    config = tiny_study(
        "secret",
        folder,
        methods=[{"name": "dense"}, {"name": "random"}],
        storage=url,
    )
    path = write_config(config, folder)
    env = {**worker_env(), "RAY_TMPDIR": str(ray_tmp)}
    outputs = []
    for args, code in (
        (["run", str(path)], 0),
        (["status", "secret", "--db", url], 0),
        (["ls", "--db", url], 0),
        (["export", "secret", "--db", url, "--format", "json", "--out", str(folder / "t.json")], 0),
        (["report", "secret", "--db", url], 0),
        (["run", str(path)], 2),  # refused: the study exists (an error message)
    ):
        run = subprocess.run(
            [PARETUNE, *args], capture_output=True, text=True, cwd=folder, env=env, timeout=600
        )
        outputs.append(run.stdout + run.stderr)
        assert run.returncode == code, (args, run.stdout[-2000:], run.stderr[-2000:])
    yield {"url": url, "folder": folder, "ray_tmp": ray_tmp, "outputs": outputs}
    shutil.rmtree(ray_tmp, ignore_errors=True)


def _files_holding(secret: bytes, *folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    if secret in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    continue
    return found


@pytest.mark.postgres
def test_password_is_in_no_output_file_or_table(secret_study, postgres):
    password = postgres.password
    assert len(password) >= 16 and password in secret_study["url"]
    assert "***" in secret_study["outputs"][0]  # the redacted URL is shown instead
    assert "already exists" in secret_study["outputs"][-1]
    leaks = [
        f"output of command {n}" for n, o in enumerate(secret_study["outputs"]) if password in o
    ]
    folders = (secret_study["folder"], secret_study["ray_tmp"])
    files = [p for f in folders for p in f.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".log" for p in files)
    config = str(secret_study["folder"] / "secret.yaml")  # the user's own input
    leaks += [p for p in _files_holding(password.encode(), *folders) if p != config]
    store = ResultStore(secret_study["url"], create=False)
    try:
        with store.engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            rows = {t: connection.execute(text(f'SELECT * FROM "{t}"')).all() for t in tables}
    finally:
        store.close()
    assert {"paretune_trials", "paretune_studies", "trials", "studies"} <= set(tables)
    assert len(rows["paretune_trials"]) == 3
    leaks += [f"table {t}" for t, content in rows.items() if password in repr(content)]
    print(
        f"searched {len(secret_study['outputs'])} outputs, {len(files)} files, {len(rows)} tables"
    )
    assert leaks == [], f"the database password is in: {leaks}"


# --- the study's local Ray ---------------------------------------------------------------
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _listening(pid: int) -> set[tuple[str, int, str]]:
    """``(address, port, process name)`` of every TCP socket the process and its
    descendants listen on."""
    import psutil

    found = set()
    root = psutil.Process(pid)
    for process in (root, *root.children(recursive=True)):
        try:
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    found.add((connection.laddr.ip, connection.laddr.port, process.name()))
        except psutil.Error:
            continue
    return found


def test_a_study_driver_listens_on_loopback_only(tmp_path):
    """The local Ray of ``paretune run`` (GCS, raylet, agents, workers) stays on 127.0.0.1."""
    config = tiny_study(
        "loopback",
        tmp_path,
        methods=[{"name": "dense"}, {"name": "random"}],
        budget={"trials_per_method": 2, "iterations": 300, "seeds": [0], "batch_size": 4},
    )
    driver = start_driver(config, tmp_path)
    try:
        deadline = time.monotonic() + 300
        seen: set[tuple[str, int, str]] = set()
        while time.monotonic() < deadline and driver.poll() is None:
            seen |= _listening(driver.pid)
            if len({name for _, _, name in seen}) >= 4:  # GCS, raylet, agents, a worker
                break
            time.sleep(0.5)
        assert len(seen) >= 4, seen
        outward = sorted(entry for entry in seen if entry[0] not in LOOPBACK)
        assert outward == [], f"listening beyond loopback: {outward}"
    finally:
        os.killpg(driver.pid, 9)
        driver.wait()


# --- the dashboard --------------------------------------------------------------------------
def _study_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'paretune.db'}"
    with ResultStore(url) as store:
        store.create_study("shown", {}, [("delta_t", "maximize"), ("sparsity", "maximize")])
    return url


def test_dashboard_listens_on_loopback_by_default(tmp_path):
    url = _study_database(tmp_path)
    with running_dashboard(url, "shown", tmp_path) as dashboard:
        port = int(dashboard.url.rsplit(":", 1)[1].strip("/"))
        assert listening_addresses(port) == {"127.0.0.1"}


def _connects(namespace: str, host: str, port: int) -> bool:
    probe = (
        "import socket, sys\n"
        f"try: socket.create_connection(({host!r}, {port}), timeout=2).close()\n"
        "except OSError: sys.exit(1)\n"
    )
    return subprocess.run(["ip", "netns", "exec", namespace, PYTHON, "-c", probe]).returncode == 0


def test_dashboard_listens_on_the_host_it_is_given(tmp_path):
    require_network_namespaces()
    namespace = f"pt-{secrets.token_hex(3)}-dash"
    address = f"10.77.{secrets.randbelow(254) + 1}.1"
    url = _study_database(tmp_path)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    dashboard = None
    try:
        for command in (
            ["link", "set", "lo", "up"],
            ["link", "add", "dash0", "type", "veth", "peer", "name", "dash1"],
            ["addr", "add", f"{address}/24", "dev", "dash0"],
            ["link", "set", "dash0", "up"],
            ["link", "set", "dash1", "up"],
        ):
            subprocess.run(["ip", "-n", namespace, *command], check=True)
        log = tmp_path / "dashboard.log"
        with log.open("wb") as sink:
            dashboard = subprocess.Popen(
                [
                    *("ip", "netns", "exec", namespace, PARETUNE, "dashboard", "--db", url),
                    *("--study", "shown", "--host", address, "--port", "8050"),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=worker_env(),
            )
        deadline = time.monotonic() + 60
        while not _connects(namespace, address, 8050):
            assert dashboard.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert not _connects(namespace, "127.0.0.1", 8050)  # only the address it was given
        assert "lets other machines see the study" in log.read_text()
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=30)
        subprocess.run(["ip", "netns", "delete", namespace], check=False)


# --- YAML and checkpoints -----------------------------------------------------------------
def test_yaml_python_tags_are_rejected(tmp_path):
    marker = tmp_path / "executed"
    config = tmp_path / "evil.yaml"
    config.write_text(
        f"name: !!python/object/apply:os.system ['touch {marker}']\nmethods: [{{name: dense}}]\n"
    )
    run = paretune("run", str(config), cwd=tmp_path, check=False)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid YAML at line 1" in lines[0], run.stderr
    assert "python/object/apply:os.system" in lines[0]
    assert not marker.exists()


class _Payload:
    """Unpickling this creates a file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mknod, (str(self.marker),))


def test_a_malicious_checkpoint_is_refused_without_running_its_code(tmp_path):
    import torch

    from trials.pruning import load_sparse

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "paretune-sparse", "payload": _Payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"Weights only load failed"):
        load_sparse(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: a full unpickle runs it
    assert marker.exists()
