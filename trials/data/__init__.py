"""Multi-task data sets: the built-in procedural scenes and real-format loaders.

Registered in :data:`DATASETS`: ``scenes-nyu`` and ``scenes-taskonomy`` (rendered, the
default, no download), ``nyuv2`` (preprocessed ``.npy`` layout) and ``taskonomy``
(Tiny-Taskonomy PNGs).
"""

from trials.data._base import (
    DATASETS,
    IGNORE_INDEX,
    TASK_NAMES,
    DatasetError,
    DatasetOptionError,
    MultiTaskDataset,
    build_dataset,
)
from trials.data._cache import CACHE_ENV, cache_dir
from trials.data._nyuv2 import NYUv2Dataset, NYUv2Options
from trials.data._scenes import (
    SceneDataset,
    ScenesOptions,
    load_split,
    render_split,
    scene_seeds,
)
from trials.data._scenes_render import CLASS_NAMES as SCENE_CLASS_NAMES
from trials.data._scenes_render import RENDERER_VERSION
from trials.data._scenes_render import camera_rays as scene_camera_rays
from trials.data._taskonomy import TaskonomyDataset, TaskonomyOptions

__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "IGNORE_INDEX",
    "RENDERER_VERSION",
    "SCENE_CLASS_NAMES",
    "TASK_NAMES",
    "DatasetError",
    "DatasetOptionError",
    "MultiTaskDataset",
    "NYUv2Dataset",
    "NYUv2Options",
    "SceneDataset",
    "ScenesOptions",
    "TaskonomyDataset",
    "TaskonomyOptions",
    "build_dataset",
    "cache_dir",
    "load_split",
    "render_split",
    "scene_camera_rays",
    "scene_seeds",
]
