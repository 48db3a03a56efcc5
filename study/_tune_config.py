"""What travels in a Tune trial's config, encoded and decoded in one place.

A Tune config holds three parts: the fixed ``TrialConfig`` fields under ``paretune``, the
route (the method run a trial belongs to, where it reads its seed's dense reference and
which objectives it reports) under ``paretune_route``, and the searcher's suggestions
beside them. The router encodes; the trainable, the recorder, the scheduler and the
progress view decode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

FIXED_KEY = "paretune"
ROUTE_KEY = "paretune_route"
FINAL_KEY = "paretune_final"
ERROR_KEY = "paretune_error"
#: In-trial progress (``iteration``, ``iterations``, ``loss``), reported every few seconds.
PROGRESS_KEY = "paretune_progress"
_RESERVED = (FIXED_KEY, ROUTE_KEY)


@dataclass(frozen=True)
class TrialRoute:
    """Where a Tune trial belongs and what it reports.

    Attributes:
        method: the method run's name (``dense`` for a reference).
        seed: the run's seed.
        reference: the trial is its seed's dense reference.
        board: the name of the reference board the trial reads (see :mod:`study._board`).
        objectives: the objectives its method run's search optimizes, reported by name.
        device_share: CPUs (or GPUs, when the trial has any) it holds, for ``device_s``.
    """

    method: str
    seed: int
    reference: bool = False
    board: str = ""
    objectives: tuple[str, ...] = field(default_factory=tuple)
    device_share: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "objectives": list(self.objectives)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRoute:
        return cls(
            method=str(data.get("method", "")),
            seed=int(data.get("seed", 0)),
            reference=bool(data.get("reference", False)),
            board=str(data.get("board", "")),
            objectives=tuple(data.get("objectives") or ()),
            device_share=float(data.get("device_share", 1.0)),
        )


def encode(
    fields: Mapping[str, Any], route: TrialRoute, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The Tune config of one trial."""
    clash = sorted(set(params) & set(_RESERVED))
    if clash:
        raise ValueError(f"a searched parameter may not be called {clash[0]!r}")
    return {FIXED_KEY: dict(fields), ROUTE_KEY: route.to_dict(), **params}


def route_of(config: Mapping[str, Any]) -> TrialRoute:
    """The route of a Tune config (method and seed from the fixed fields if absent)."""
    route = dict(config.get(ROUTE_KEY) or {})
    fixed = config.get(FIXED_KEY) or {}
    route.setdefault("method", fixed.get("method", ""))
    route.setdefault("seed", fixed.get("seed", 0))
    return TrialRoute.from_dict(route)


def searched_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The searcher's suggestions of a Tune config (the fixed part left out)."""
    return {name: value for name, value in config.items() if name not in _RESERVED}


def trial_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``TrialConfig`` fields of a Tune config: fixed fields and searched parameters.

    A searched name that is a ``TrialConfig`` field (e.g. ``lr``) sets that field; every
    other searched name is a parameter of the method.
    """
    from trials._config import TrialConfig

    fields = dict(config[FIXED_KEY])
    method_params = dict(fields.get("method_params") or {})
    for name, value in searched_params(config).items():
        if name in TrialConfig.model_fields:
            fields[name] = value
        else:
            method_params[name] = value
    fields["method_params"] = method_params
    return fields


def planned_iterations(fields: Mapping[str, Any]) -> int | None:
    """The training iterations of a trial with these ``TrialConfig`` fields; None when a
    FLOPs or seconds budget sets them inside the trial."""
    if fields.get("max_flops") or fields.get("max_seconds"):
        return None
    value = fields.get("iterations")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class TrialResources:
    """What a Tune trial reserves: ``cpus`` and ``gpus``; a dense reference that trials of
    its seed wait for takes ``reference_slots`` times the CPUs (see
    ``StudyConfig.reference_slots``).

    Tune pickles it with the trainable into every worker: it lives here, in a module that
    imports nothing heavy, so a worker does not load the driver's modules to unpickle it."""

    cpus: float
    gpus: float
    reference_slots: int = 1

    def __call__(self, config: dict[str, Any]) -> dict[str, float]:
        slots = self.reference_slots if route_of(config).reference else 1
        return {"cpu": self.cpus * slots, "gpu": self.gpus}
