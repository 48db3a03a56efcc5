"""Studies: the typed config, running and resuming them, and the SQL results store.

The public entry points: :func:`run_study` runs a study from a :class:`StudyConfig` or
its YAML file, :func:`resume_study` finishes (or extends) one whose driver stopped,
:func:`open_study` opens a stored one; each returns a :class:`StudyHandle` whose trials
are a pandas frame, with its Pareto fronts, summary, comparison, figure and report.
:func:`check_study` checks a config (plugins, data, objectives) without running anything.

Importing this package imports none of its modules (each public name loads its module
on first use): neither torch nor Ray nor Optuna nor pandas load before a study runs or
its results are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trials.lazy import lazy_exports

if TYPE_CHECKING:
    from study._api import StudyHandle, check_study, open_study, resume_study, run_study
    from study._config import (
        BudgetSpec,
        ConfigError,
        DatasetSpec,
        MethodSpec,
        ModelSpec,
        ReferenceSpec,
        ResourcesSpec,
        SamplerSpec,
        SchedulerSpec,
        StudyConfig,
        format_validation_error,
        load_config,
        parse_config,
    )
    from study.store import (
        SCHEMA_VERSION,
        ResultStore,
        RunStatus,
        StoreError,
        TrialStatus,
        create_store_engine,
        redact_url,
    )

__all__ = [
    "SCHEMA_VERSION",
    "BudgetSpec",
    "ConfigError",
    "DatasetSpec",
    "MethodSpec",
    "ModelSpec",
    "ReferenceSpec",
    "ResourcesSpec",
    "ResultStore",
    "RunStatus",
    "SamplerSpec",
    "SchedulerSpec",
    "StoreError",
    "StudyConfig",
    "StudyHandle",
    "TrialStatus",
    "check_study",
    "create_store_engine",
    "format_validation_error",
    "load_config",
    "open_study",
    "parse_config",
    "redact_url",
    "resume_study",
    "run_study",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
