"""Starting or joining Ray without leaking onto the network."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trials.errors import ParetuneError


class RayAddressError(ParetuneError):
    """A Ray address that cannot be reached."""


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of a GCS address (``ray://`` client URLs included)."""
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_address(address: str, timeout_s: float = 3.0) -> None:
    """Raises :class:`RayAddressError` unless something listens at ``address``."""
    if address == "auto":
        return
    target = _host_port(address)
    if target is None:
        raise RayAddressError(f"ray_address: expected HOST:PORT but got {address!r}")
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RayAddressError(f"cannot reach Ray at {address}: {reason}") from None


def configure_ray_output(verbose: bool) -> None:
    """Keeps Ray's and Optuna's own tables and notices out of paretune's compact view.

    Call before ``ray.tune`` is imported (some switches are read at import time).
    """
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A failed trial reports its error instead of the objectives; the searcher handles it.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"


#: Variables of this process that every Ray worker of a study gets too.
WORKER_VARIABLES = ("PARETUNE_CACHE", "CUBLAS_WORKSPACE_CONFIG")


def runtime_environment() -> dict[str, Any]:
    """What every Ray worker gets: this process's :data:`WORKER_VARIABLES` and quiet
    deprecation warnings."""
    kept = {name: os.environ[name] for name in WORKER_VARIABLES if name in os.environ}
    return {"env_vars": {"PYTHONWARNINGS": "ignore::DeprecationWarning", **kept}}


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Runs the block in ``path`` (made if missing): Ray adds the driver's working
    directory to its workers' import path, where a user's own ``trials/`` or ``study/``
    folder would shadow ours."""
    previous = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Keeps the local Ray started in the block on 127.0.0.1.

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when it is first imported; when it is
    off, every Ray server takes the loopback address instead of the machine's outward one.
    The variable is set for Ray's own processes (started in the block) and the constant
    for this one, which may have imported Ray already; both are restored afterwards, so
    this process can still join a cluster later.
    """
    from ray._private import ray_constants

    name = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    before_env, before_constant = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_constant
        if before_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before_env


@dataclass
class LocalRay:
    """A local Ray this process started, with the reaper that stops it if we die.

    Attributes:
        session: the folder Ray keeps its session in (sockets, logs); the driver lease
            stores it so that a later ``run``/``resume`` can clean up after a crash.
    """

    session: Path
    reaper: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Shuts Ray down; the reaper then stops anything left (the logs stay)."""
        import ray

        ray.shutdown()
        if _RUNNING.get("local") is self:
            del _RUNNING["local"]
        if self.reaper.stdin is not None:
            self.reaper.stdin.close()
        try:
            self.reaper.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.reaper.kill()

    def stop_in_background(self) -> None:
        """Stops Ray in a thread, so that what follows (a study's summary and report) need
        not wait for Ray's shutdown; :func:`start_ray` and the interpreter's exit wait
        for it."""
        thread = threading.Thread(target=self.stop, name="paretune-ray-stop")
        _STOPPING.append(thread)
        thread.start()


@contextlib.contextmanager
def local_ray_beside(work: Callable[[], None], verbose: bool = False) -> Iterator[LocalRay | None]:
    """Starts a local Ray (:func:`start_ray`) while ``work`` runs in a thread, then runs
    the block; Ray stops (in the background) when the block ends.

    Ray's start mostly waits for its own processes, so work such as a study's checks
    costs no time beside it. What ``work`` raises is raised once Ray is up, and Ray
    stopped; it wins over an error of Ray's start. Yields None when Ray ran already.
    """
    import ray  # noqa: F401  (imported before ``work`` starts importing in its thread)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="paretune-beside-ray")
    thread.start()
    try:
        local = start_ray(None, verbose=verbose)
    except BaseException:
        thread.join()
        if errors:
            raise errors[0] from None
        raise
    thread.join()
    try:
        if errors:
            raise errors[0]
        yield local
    finally:
        if local is not None:
            local.stop_in_background()


def wait_for_stopping() -> None:
    """Returns once every local Ray stopping in the background has stopped."""
    while _STOPPING:
        _STOPPING.pop().join()


#: Local Rays of this process stopping in the background (non-daemon threads).
_STOPPING: list[threading.Thread] = []

#: The local Ray running in this process. Held here because the reaper watches its pipe:
#: a caller dropping what ``start_ray`` returned must not close it and stop Ray.
_RUNNING: dict[str, LocalRay] = {}


def ray_session_root() -> Path:
    """Where local Ray sessions live (under ``RAY_TMPDIR`` if set): a short path, because
    Ray's socket paths must be."""
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    return Path(base) / f"paretune-ray-{os.getuid()}"


def _start_reaper(session: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        # -I: no working directory on the import path (a user's study/ folder there)
        [sys.executable, "-I", "-m", "study._reaper", str(os.getpid()), str(session)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or a kill of the driver's group spares it
    )


def start_ray(
    address: str | None,
    num_cpus: float | None = None,
    verbose: bool = False,
) -> LocalRay | None:
    """Joins ``address``, or starts a local single-node Ray bound to 127.0.0.1.

    Ray otherwise binds to the machine's outward address; the local default keeps every
    Ray server on 127.0.0.1 (nothing listens on the LAN). A local Ray gets its own
    session folder and a reaper (:mod:`study._reaper`): it cannot outlive this process.
    It starts from its session folder, which holds nothing its workers could import.

    Returns:
        The local Ray started here (None when joining a cluster or Ray already runs).
    """
    import ray

    wait_for_stopping()
    if ray.is_initialized():
        return None
    common: dict[str, Any] = {
        "runtime_env": runtime_environment(),
        "log_to_driver": verbose,
        "configure_logging": True,
        "logging_level": "INFO" if verbose else "ERROR",
    }
    if address:
        check_address(address)
        ray.init(address=address, **common)
        return None
    cpus = None if num_cpus is None else max(1, int(num_cpus))
    root = ray_session_root()
    root.mkdir(mode=0o700, exist_ok=True)
    session = Path(tempfile.mkdtemp(prefix="s", dir=root))
    reaper = _start_reaper(session)
    try:
        with _loopback_only(), working_directory(session):
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=str(session),
                **common,
            )
    except BaseException:
        LocalRay(session, reaper).stop()
        raise
    _RUNNING["local"] = LocalRay(session, reaper)
    return _RUNNING["local"]
