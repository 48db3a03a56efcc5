"""A study's plan: which method runs (method x seed) it holds and their Optuna study names.

Read by the runner, which drives the runs, and by the end-of-study audit, which checks
each run's Optuna study against the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search_spaces import SearchSpace
    from study._config import GroupingSource, StudyConfig

REFERENCE_METHOD = "dense"


@dataclass(frozen=True)
class MethodPlan:
    """One method run: a method with its search space, for one seed.

    ``method`` is the run's name (``magnitude@grouped`` when ``grouping`` says which
    grouped architecture the method prunes).
    """

    method: str
    seed: int
    space: SearchSpace
    trials: int
    grouping: GroupingSource | None = None
    #: ``target_sparsity`` values its trials spread evenly over (empty: searched freely).
    levels: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} (seed {self.seed})"


def plan_methods(config: StudyConfig) -> list[MethodPlan]:
    """The study's method runs in order; the dense reference is planned separately."""
    plans = []
    for seed in config.budget.seeds:
        for spec in config.methods:
            if spec.name == REFERENCE_METHOD:
                continue
            name = spec.run_name
            trials = config.trials_for(name)
            space = config.method_space(name)
            levels = config.levels_for(name)
            plans.append(MethodPlan(name, seed, space, trials, spec.grouping, levels))
    return plans


def optuna_study_name(study: str, method: str, seed: int) -> str:
    """The Optuna study of one method run (in the study's database)."""
    return f"{study}/{method}/seed-{seed}"
