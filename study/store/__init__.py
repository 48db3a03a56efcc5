"""The SQL results store: schema, engines, the scoped-session helper and the store.

Example:
    >>> from study.store import ResultStore
    >>> store = ResultStore("sqlite://")
    >>> study_id = store.create_study("demo", {}, [("delta_t", "maximize")])
    >>> run = store.start_method_run("demo", "magnitude", seed=0)
    >>> trial = store.add_trial(run, params={"target_sparsity": 0.9})
"""

from __future__ import annotations

from study.store._bulk import EVALUATION_KEYS, TRIAL_KEYS
from study.store._engine import create_store_engine
from study.store._errors import StoreError, TransientStoreError
from study.store._leases import DriverRunning
from study.store._models import SCHEMA_VERSION, RunStatus, TrialStatus
from study.store._records import (
    EVALUATION_COLUMNS,
    TRIAL_COLUMNS,
    ArtifactRecord,
    DriverLease,
    EvaluationRecord,
    MethodRunRecord,
    StudyRecord,
    TrialRecord,
)
from study.store._schema import ColumnInfo, Kind
from study.store._session import SessionRunner
from study.store._sql import EVALUATION_FIELDS, TRIAL_FIELDS, ResultStore, collect_versions
from study.store._url import redact_url

__all__ = [
    "EVALUATION_COLUMNS",
    "EVALUATION_FIELDS",
    "EVALUATION_KEYS",
    "SCHEMA_VERSION",
    "TRIAL_COLUMNS",
    "TRIAL_FIELDS",
    "TRIAL_KEYS",
    "ArtifactRecord",
    "ColumnInfo",
    "DriverLease",
    "DriverRunning",
    "EvaluationRecord",
    "Kind",
    "MethodRunRecord",
    "ResultStore",
    "RunStatus",
    "SessionRunner",
    "StoreError",
    "StudyRecord",
    "TransientStoreError",
    "TrialRecord",
    "TrialStatus",
    "collect_versions",
    "create_store_engine",
    "redact_url",
]
