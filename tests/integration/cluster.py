"""A real two-node Ray cluster on one machine, each node in its own network namespace.

The namespaces are joined by a veth pair on a random ``10.77.N.0/24`` subnet: the head
is ``10.77.N.1``, the worker ``10.77.N.2``; neither namespace has a route anywhere else,
so every Ray connection stays between them (or on each namespace's own loopback). Token
authentication is on: each cluster gets its own random token through ``RAY_AUTH_TOKEN``,
so ``~/.ray/auth_token`` is neither read nor written.

Teardown never runs ``ray stop``: it kills *every* Ray process on the machine, whatever
its namespace. Instead it signals exactly the processes ``ip netns pids`` lists for the
cluster's own namespaces, then deletes the namespaces (which deletes the veth pair).

Example:
    >>> with RayCluster(tmp_path) as cluster:  # doctest: +SKIP
    ...     cluster.run_in(cluster.head, [PARETUNE, "run", "cfg.yaml",
    ...                                   "--address", cluster.address])
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import worker_env

RAY = str(Path(sys.executable).with_name("ray"))
PYTHON = sys.executable
#: The GCS port of the head (each namespace has its own port space).
GCS_PORT = 6379
#: Faster detection of a dead node than Ray's defaults (about 30 s).
HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
#: Environment variables that make a test fail instead of skipping without root.
STRICT_ENV = ("CI", "PARETUNE_REQUIRE_CLUSTER")


def require_network_namespaces() -> None:
    """Skips the test where network namespaces cannot be made (not root, no ``ip``);
    fails instead in CI, where the cluster tests must run."""
    problem = None
    if os.geteuid() != 0:
        problem = "network namespaces need root (CAP_NET_ADMIN)"
    elif shutil.which("ip") is None:
        problem = "the `ip` command (iproute2) is missing"
    if problem is None:
        return
    if any(os.environ.get(name) for name in STRICT_ENV):
        pytest.fail(f"cannot build the test Ray cluster: {problem}")
    pytest.skip(f"cannot build the test Ray cluster: {problem}")


def started_cluster(request: pytest.FixtureRequest, root: Path, **options: Any) -> RayCluster:
    """A started :class:`RayCluster` (``options`` are its fields) that the test session
    tears down whatever happens; skips or fails as :func:`require_network_namespaces`."""
    require_network_namespaces()
    made = RayCluster(root, **options)
    request.addfinalizer(made.close)
    return made.start()


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def namespace_pids(namespace: str) -> list[int]:
    """Process ids running in network namespace ``namespace``."""
    result = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=30
    )
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def kill_namespace(namespace: str, grace_s: float = 5.0) -> int:
    """Terminates every process in ``namespace`` (SIGKILL after ``grace_s``); how many."""
    pids = namespace_pids(namespace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while namespace_pids(namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in namespace_pids(namespace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


@dataclass
class Node:
    """One Ray node: its namespace, address, CPUs, custom resources, temp folder and the
    GPUs it declares (Ray takes ``--num-gpus`` on trust: none need be present)."""

    namespace: str
    address: str
    cpus: int
    resources: dict[str, float]
    temp_dir: Path
    gpus: int = 0

    def command(self, args: list[str]) -> list[str]:
        """``args`` run inside this node's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def pids(self) -> list[int]:
        return namespace_pids(self.namespace)


@dataclass
class RayCluster:
    """A head and a worker node, each started with ``ray start`` in its own namespace.

    Args:
        root: a folder for the nodes' logs.
        head_cpus, worker_cpus: ``--num-cpus`` of each node.
        head_resources, worker_resources: custom resources of each node.
        head_gpus, worker_gpus: ``--num-gpus`` each node declares.
    """

    root: Path
    head_cpus: int = 1
    worker_cpus: int = 1
    head_resources: dict[str, float] = field(default_factory=lambda: {"head_slot": 1.0})
    worker_resources: dict[str, float] = field(default_factory=lambda: {"worker_slot": 1.0})
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    head_gpus: int = 0
    worker_gpus: int = 0

    def __post_init__(self) -> None:
        tag = secrets.token_hex(3)
        subnet = f"10.77.{secrets.randbelow(254) + 1}"
        self.head = self._node(f"pt-{tag}-head", f"{subnet}.1", self.head_cpus, self.head_resources)
        self.worker = self._node(
            f"pt-{tag}-work", f"{subnet}.2", self.worker_cpus, self.worker_resources
        )
        self.head.gpus, self.worker.gpus = self.head_gpus, self.worker_gpus
        self._links = (f"pt{tag}h", f"pt{tag}w")
        self._made: list[str] = []

    def _node(self, namespace: str, address: str, cpus: int, resources: dict[str, float]) -> Node:
        # Short temp folders: Ray's Unix socket paths must stay under 108 bytes.
        temp = Path(tempfile.mkdtemp(prefix="ptray-", dir="/tmp"))
        return Node(namespace, address, cpus, dict(resources), temp)

    @property
    def address(self) -> str:
        """The head's GCS address, ``10.77.N.1:6379``."""
        return f"{self.head.address}:{GCS_PORT}"

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.head, self.worker

    def env(self, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
        """The environment of anything joining the cluster: its token, quiet Ray;
        ``extra`` variables added and the ``drop`` ones removed."""
        env = worker_env()
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, **HEALTH_CHECKS)
        env.update(extra)
        # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (set by a local Ray) would refuse a worker node.
        for name in (
            "RAY_ADDRESS",
            "RAY_AUTH_TOKEN_PATH",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
            *drop,
        ):
            env.pop(name, None)
        return env

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> RayCluster:
        """Creates the namespaces and the veth pair, starts both nodes, waits for them."""
        for node in self.nodes:
            _ip("netns", "add", node.namespace)
            self._made.append(node.namespace)
        link_head, link_worker = self._links
        _ip("link", "add", link_head, "type", "veth", "peer", "name", link_worker)
        for node, link in zip(self.nodes, self._links, strict=True):
            _ip("link", "set", link, "netns", node.namespace)
            _ip("-n", node.namespace, "addr", "add", f"{node.address}/24", "dev", link)
            _ip("-n", node.namespace, "link", "set", link, "up")
            _ip("-n", node.namespace, "link", "set", "lo", "up")
        self._ray_start(self.head, ["--head", f"--port={GCS_PORT}", "--include-dashboard=false"])
        self._ray_start(self.worker, [f"--address={self.address}"])
        self.wait_for_nodes(2)
        return self

    def _ray_start(self, node: Node, role: list[str]) -> None:
        args = [
            RAY,
            "start",
            *role,
            f"--node-ip-address={node.address}",
            f"--num-cpus={node.cpus}",
            f"--num-gpus={node.gpus}",
            f"--resources={json.dumps(node.resources)}",
            f"--temp-dir={node.temp_dir}",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
        ]
        log = self.root / f"ray-start-{node.namespace}.log"
        with log.open("w") as sink:
            result = subprocess.run(
                node.command(args),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env(),
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"ray start in {node.namespace} exited {result.returncode}:\n"
                f"{log.read_text()[-3000:]}"
            )

    def alive_nodes(self) -> list[dict[str, Any]]:
        """``ray.nodes()`` of the alive nodes, asked from inside the head's namespace."""
        script = (
            "import json, ray\n"
            f"ray.init(address={self.address!r}, log_to_driver=False, logging_level='ERROR')\n"
            "print('NODES=' + json.dumps([n for n in ray.nodes() if n['Alive']]))\n"
        )
        result = self.run_in(self.head, [PYTHON, "-c", script], timeout=120)
        for line in result.stdout.splitlines():
            if line.startswith("NODES="):
                return list(json.loads(line.removeprefix("NODES=")))
        raise RuntimeError(f"cannot list the Ray nodes:\n{result.stdout}\n{result.stderr}")

    def wait_for_nodes(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Waits until exactly ``count`` nodes are alive; their ``ray.nodes()`` entries."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.alive_nodes()
            if len(nodes) == count:
                return nodes
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} alive Ray nodes, found {len(nodes)}")
            time.sleep(1.0)

    def kill_node(self, node: Node) -> int:
        """Kills every process of ``node`` at once (SIGKILL), like a crashed machine."""
        return kill_namespace(node.namespace, grace_s=0)

    def close(self) -> None:
        """Stops both nodes (only this cluster's processes), deletes the namespaces and
        the temp folders; safe to call twice."""
        for namespace in reversed(self._made):
            kill_namespace(namespace)
            with contextlib.suppress(RuntimeError):
                _ip("netns", "delete", namespace)
        self._made.clear()
        for link in self._links:  # left in the root namespace only if a move failed
            if Path("/sys/class/net", link).exists():
                with contextlib.suppress(RuntimeError):
                    _ip("link", "delete", link)
        for node in self.nodes:
            shutil.rmtree(node.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- running commands ----------------------------------------------------------------
    def run_in(
        self,
        node: Node,
        args: list[str],
        *,
        timeout: float = 900,
        drop: tuple[str, ...] = (),
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``args`` in ``node``'s namespace with the cluster's environment."""
        return subprocess.run(
            node.command(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(drop, **env),
            check=False,
        )

    def popen_in(
        self, node: Node, args: list[str], log: Path, drop: tuple[str, ...] = (), **env: str
    ) -> subprocess.Popen[bytes]:
        """Starts ``args`` in ``node``'s namespace, output to ``log``."""
        with log.open("wb") as sink:
            return subprocess.Popen(
                node.command(args),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env(drop, **env),
                start_new_session=True,
            )
