"""What a study's trials can run on: the nodes of a Ray cluster (asked from a short-lived
process) or this machine, and how many trials they fit at once.

``python -m study._cluster ADDRESS`` connects to ``ADDRESS`` as a Ray driver, prints the
alive nodes as one JSON line and disconnects; :func:`cluster_nodes` runs it with a timeout
so that an unresponsive cluster cannot hang ``paretune check``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass

from study._ray import RayAddressError, check_address

#: Prefixes of the probe's output lines.
NODES_LINE = "PARETUNE_NODES="
ERROR_LINE = "PARETUNE_ERROR="
#: Seconds the probe may take to connect and list the nodes.
PROBE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class NodeInfo:
    """One node that can run trials: its address and what it offers."""

    address: str
    cpus: float
    gpus: float

    def describe(self) -> str:
        return f"{self.address} ({_count(self.cpus)} CPU, {_count(self.gpus)} GPU)"


def _count(value: float) -> str:
    return f"{value:g}"


def local_node() -> NodeInfo:
    """This machine as the local single-node Ray would see it (all CPUs, its GPUs)."""
    from trials._device import visible_gpus

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return NodeInfo("this machine", float(cpus or 1), float(visible_gpus()))


#: What Ray's GCS client logs when the cluster refuses the token.
_TOKEN_REFUSED = "InvalidAuthToken"


def _refusal(stdout: str, stderr: str) -> str:
    """Why the probe could not connect: a refused token (from Ray's log), else its error."""
    for line in stderr.splitlines():
        if _TOKEN_REFUSED in line:
            reason = line[line.index(_TOKEN_REFUSED) :].strip()
            return (
                f"{reason}; set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN "
                "(or ~/.ray/auth_token)"
            )
    for line in stdout.splitlines():
        if line.startswith(ERROR_LINE):
            return line.removeprefix(ERROR_LINE)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no reason given"


def cluster_nodes(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> list[NodeInfo]:
    """The alive nodes of the Ray cluster at ``address``, by address.

    Raises:
        RayAddressError: nothing listens there, the connection is refused (a missing or
            wrong token included) or the cluster does not answer within ``timeout_s``.
    """
    check_address(address)
    command = [sys.executable, "-I", "-m", "study._cluster", address]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ)
        )
    except subprocess.TimeoutExpired:
        raise RayAddressError(
            f"Ray at {address} accepted a connection but listed no nodes within "
            f"{timeout_s:.0f} s (a wrong token or another service on that port?)"
        ) from None
    for line in done.stdout.splitlines():
        if line.startswith(NODES_LINE):
            nodes = [NodeInfo(**node) for node in json.loads(line.removeprefix(NODES_LINE))]
            return sorted(nodes, key=lambda node: node.address)
    reason = _refusal(done.stdout, done.stderr)
    raise RayAddressError(f"Ray at {address} refused the connection: {reason}")


@dataclass(frozen=True)
class Fit:
    """How many trials the nodes run at once, and why not more."""

    slots: int
    problem: str | None = None


def fit_trials(nodes: list[NodeInfo], cpus_per_trial: float, gpus_per_trial: float) -> Fit:
    """Trials that run at once: per node, as many as its CPUs and GPUs each hold.

    ``problem`` says why none fits: too few GPUs or too few CPUs on every node.
    """
    slots = 0
    for node in nodes:
        fits = math.floor(node.cpus / cpus_per_trial + 1e-9) if cpus_per_trial > 0 else 0
        if gpus_per_trial > 0:
            fits = min(fits, math.floor(node.gpus / gpus_per_trial + 1e-9))
        slots += fits
    if slots:
        return Fit(slots)
    most_gpus = max((node.gpus for node in nodes), default=0.0)
    most_cpus = max((node.cpus for node in nodes), default=0.0)
    if gpus_per_trial > most_gpus:
        where = "node" if len(nodes) > 1 else "machine"
        return Fit(
            0,
            f"too few GPUs: a trial needs {_count(gpus_per_trial)} GPU "
            f"(resources.gpus_per_trial) but the largest {where} has {_count(most_gpus)}",
        )
    return Fit(
        0,
        f"too few CPUs: a trial needs {_count(cpus_per_trial)} CPUs "
        f"(resources.cpus_per_trial) but the largest node has {_count(most_cpus)}",
    )


def _probe(address: str) -> int:
    """Connects to ``address``, prints its alive nodes (or the error) and disconnects."""
    try:
        import logging

        import ray

        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        nodes = [
            {
                "address": str(node["NodeManagerAddress"]),
                "cpus": float(node["Resources"].get("CPU", 0.0)),
                "gpus": float(node["Resources"].get("GPU", 0.0)),
            }
            for node in ray.nodes()
            if node.get("Alive")
        ]
        ray.shutdown()
    except Exception as error:  # every failure becomes one line for the parent
        text = " ".join(str(error).split()) or type(error).__name__
        print(ERROR_LINE + f"{type(error).__name__}: {text}"[:300], flush=True)
        return 1
    print(NODES_LINE + json.dumps(nodes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_probe(sys.argv[1]))
