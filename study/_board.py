"""The reference board: how trials learn the dense reference's metrics while they run.

A study's dense reference trains in the same Tune run as the searched trials, so the
searched trials start at once instead of waiting for it. The driver posts each seed's
reference metrics (or its failure) on a small Ray actor; a trial reads the board at every
evaluation (Delta_T is left out until the reference is known) and waits for it before its
final report, so every final result carries Delta_T.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

Metrics = dict[str, dict[str, float]]

PENDING = "pending"
FAILED = "failed"
READY = "ready"
REFERENCE_FAILED = "the dense reference of this seed failed; this trial was not scored"


class ReferenceUnavailable(RuntimeError):
    """The reference of a trial's seed failed, or the board is gone (driver stopped)."""


class _Board:
    """Seed -> reference metrics or failure (the actor's state)."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[str, Any]] = {}

    def post(self, seed: int, metrics: Metrics) -> None:
        self.entries[seed] = (READY, metrics)

    def fail(self, seed: int, reason: str) -> None:
        self.entries[seed] = (FAILED, reason)

    def read(self, seed: int) -> tuple[str, Any]:
        return self.entries.get(seed, (PENDING, None))


def create_board() -> tuple[Any, str]:
    """A new board actor (no CPU reserved) owned by the driver, and the name trials use."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"paretune-reference-{uuid.uuid4().hex[:12]}"
    # On the driver's node: a lost worker node must not take the board with it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0, scheduling_strategy=here)(_Board)
    return actor.options(name=name).remote(), name


class BoardReader:
    """A trial's view of the board: the reference metrics of one seed."""

    def __init__(self, name: str, seed: int, known: Metrics | None = None) -> None:
        self.name = name
        self.seed = seed
        self.metrics = known
        self._actor: Any = None

    def _read(self) -> tuple[str, Any]:
        import ray

        try:
            if self._actor is None:
                self._actor = ray.get_actor(self.name)
            return ray.get(self._actor.read.remote(self.seed))
        except (ValueError, ray.exceptions.RayActorError) as error:
            raise ReferenceUnavailable(f"the reference board is gone ({error})") from None

    def peek(self) -> Metrics | None:
        """The metrics if already known, else None (never blocks)."""
        if self.metrics is None and self.name:
            state, value = self._read()
            if state == FAILED:
                raise ReferenceUnavailable(REFERENCE_FAILED)
            if state == READY:
                self.metrics = value
        return self.metrics

    def wait(self, poll_s: float = 0.5) -> Metrics | None:
        """The metrics, waiting while the reference still trains (None without a board)."""
        while self.name and self.peek() is None:
            time.sleep(poll_s)
        return self.metrics
