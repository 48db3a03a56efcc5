"""Studies: the typed config, the SQL results store, and (loaded on use) their execution.

Importing this package imports neither torch nor Ray nor Optuna.
"""

from __future__ import annotations

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
    "TrialStatus",
    "create_store_engine",
    "format_validation_error",
    "load_config",
    "parse_config",
    "redact_url",
]
