"""Multi-task data sets: the built-in procedural scenes and real-format loaders."""

from trials.data._base import (
    DATASETS,
    IGNORE_INDEX,
    TASK_NAMES,
    DatasetError,
    MultiTaskDataset,
    build_dataset,
)

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "TASK_NAMES",
    "DatasetError",
    "MultiTaskDataset",
    "build_dataset",
]
