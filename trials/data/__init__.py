"""Multi-task data sets: the built-in procedural scenes and real-format loaders.

Registered in :data:`DATASETS`: ``scenes-nyu`` and ``scenes-taskonomy`` (rendered, the
default, no download), ``nyuv2`` (preprocessed ``.npy`` layout) and ``taskonomy``
(Tiny-Taskonomy PNGs); attribute sets (metric style ``attributes``): ``attributes``
(generated, with a known task grouping) and ``celeba`` (the distributed layout).

Real data sets take an ``augment`` option (:class:`AugmentOptions`: the references' random
scale, mirror and crop of the training split); :class:`BatchStream` and
:func:`held_out_batches` feed a trial, in its own process or through ``DataLoader``
workers, with the same batches either way.
"""

from trials.data._attributes import (
    ASPECTS as ATTRIBUTE_ASPECTS,
)
from trials.data._attributes import (
    AttributesDataset,
    AttributesOptions,
    attribute_groups,
    generate_attributes,
)
from trials.data._augment import AugmentOptions, augment_sample
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
from trials.data._celeba import (
    DEFAULT_ATTRIBUTES as CELEBA_DEFAULT_ATTRIBUTES,
)
from trials.data._celeba import (
    CelebADataset,
    CelebAOptions,
)
from trials.data._inspect import SplitSummary, inspect_split
from trials.data._loading import (
    BatchStream,
    draw_keys,
    held_out_batches,
    load_batch,
    move_batch,
)
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
from trials.data._taskonomy import TaskonomyDataset, TaskonomyOptions

__all__ = [
    "ATTRIBUTE_ASPECTS",
    "CACHE_ENV",
    "CELEBA_DEFAULT_ATTRIBUTES",
    "DATASETS",
    "IGNORE_INDEX",
    "RENDERER_VERSION",
    "SCENE_CLASS_NAMES",
    "TASK_NAMES",
    "AttributesDataset",
    "AttributesOptions",
    "AugmentOptions",
    "BatchStream",
    "CelebADataset",
    "CelebAOptions",
    "DatasetError",
    "DatasetOptionError",
    "MultiTaskDataset",
    "NYUv2Dataset",
    "NYUv2Options",
    "SceneDataset",
    "ScenesOptions",
    "SplitSummary",
    "TaskonomyDataset",
    "TaskonomyOptions",
    "attribute_groups",
    "augment_sample",
    "build_dataset",
    "cache_dir",
    "draw_keys",
    "generate_attributes",
    "held_out_batches",
    "inspect_split",
    "load_batch",
    "load_split",
    "move_batch",
    "render_split",
    "scene_seeds",
]
