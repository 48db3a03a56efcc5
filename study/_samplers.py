"""Optuna samplers a study can use, by name (Optuna is imported only to build one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trials.registry import Registry

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

SAMPLERS: Registry = Registry("sampler")
"""Factories ``(seed, **options) -> optuna.samplers.BaseSampler`` by sampler name."""


@SAMPLERS.register("tpe")
def _tpe(seed: int, **options: Any) -> BaseSampler:
    """Multi-objective TPE (multivariate unless told otherwise)."""
    import optuna

    options.setdefault("multivariate", True)
    return optuna.samplers.TPESampler(seed=seed, **options)


@SAMPLERS.register("nsga2")
def _nsga2(seed: int, **options: Any) -> BaseSampler:
    import optuna

    options.setdefault("population_size", 8)
    return optuna.samplers.NSGAIISampler(seed=seed, **options)


@SAMPLERS.register("gp")
def _gp(seed: int, **options: Any) -> BaseSampler:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, **options)


@SAMPLERS.register("random")
def _random(seed: int, **options: Any) -> BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed, **options)


def build_sampler(name: str, seed: int, options: dict[str, Any] | None = None) -> BaseSampler:
    """A seeded Optuna sampler (samplers are not persisted: resume re-creates them)."""
    return SAMPLERS.get(name)(seed, **dict(options or {}))


def sampler_seed(study_seed: int, run_seed: int, stored_trials: int) -> int:
    """The seed of a method run's sampler, given the trials its Optuna study holds.

    A new run gets ``study_seed + run_seed``. A resumed run must not replay the random
    draws of its first start (its sampler would suggest the finished configurations
    again), so its seed also depends on how many trials are stored.
    """
    base = study_seed + run_seed
    if stored_trials == 0:
        return base
    return (base * 1_000_003 + stored_trials) % 2**32
