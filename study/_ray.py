"""Starting or joining Ray without leaking onto the network."""

from __future__ import annotations

import os
import socket
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


def runtime_environment(env: dict[str, str] | None = None) -> dict[str, Any]:
    """What every Ray worker gets: ``env`` plus quiet deprecation warnings."""
    return {"env_vars": {"PYTHONWARNINGS": "ignore::DeprecationWarning", **(env or {})}}


def start_ray(
    address: str | None,
    num_cpus: float | None = None,
    verbose: bool = False,
    env: dict[str, str] | None = None,
) -> None:
    """Joins ``address``, or starts a local single-node Ray bound to 127.0.0.1.

    Ray otherwise binds to the machine's outward address; the local default keeps every
    Ray server on 127.0.0.1 (nothing listens on the LAN).
    """
    import ray

    if ray.is_initialized():
        return
    common: dict[str, Any] = {
        "runtime_env": runtime_environment(env),
        "log_to_driver": verbose,
        "configure_logging": True,
        "logging_level": "INFO" if verbose else "ERROR",
    }
    if address:
        check_address(address)
        ray.init(address=address, **common)
        return
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    cpus = None if num_cpus is None else max(1, int(num_cpus))
    ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **common)
