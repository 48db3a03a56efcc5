"""The built-in procedural scene data sets ``scenes-nyu`` and ``scenes-taskonomy``.

Random rooms with objects on the floor are ray cast with exact per-pixel ground truth
(see :mod:`trials.data._scenes_render` for the scenes and the meaning of every target).
No download is needed: a split is rendered on first use (about 1000 scenes per second at
64x64 on one core) and cached on disk, keyed by a hash of its whole configuration and the
renderer version, in ``$PARETUNE_CACHE`` (default ``~/.cache/paretune``).

Scene ``i`` of a split depends only on the base ``seed``, the split and ``i`` (plus the
rendering options): train, val and test draw from disjoint seed streams
(``SeedSequence(seed, spawn_key=(split, i))``), and growing ``num_train`` keeps the
first scenes unchanged.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trials.data._base import DATASETS, IGNORE_INDEX, InMemoryDataset
from trials.data._cache import cache_dir, config_key, load_arrays, save_arrays
from trials.data._common import parse_options, select_tasks
from trials.data._scenes_render import (
    CLASS_NAMES,
    MAX_CLASSES,
    MIN_CLASSES,
    RENDERER_VERSION,
    SKY_LABEL,
    RenderSettings,
    render_scenes,
)

assert SKY_LABEL == IGNORE_INDEX

#: Seed stream of each split.
SPLITS = {"train": 0, "val": 1, "test": 2}

#: Fixed per-channel statistics of rendered images in ``[0, 1]`` (measured once on the
#: default configuration), used to normalise every split the same way.
IMAGE_MEAN = (0.290, 0.285, 0.290)
IMAGE_STD = (0.176, 0.176, 0.180)

_BLOCK = 256  # scenes per renderer call: bounds the float32 intermediates
_SCENES_PER_SECOND = 500.0  # conservative, for deciding whether to show progress

#: Storage dtype of every array (normals and keypoints in float16: the angle error of a
#: stored normal is below 0.1 degree, and normals are rescaled to unit length on access).
_STORAGE = {
    "image": np.uint8,
    "segment_semantic": np.uint8,
    "depth_zbuffer": np.float32,
    "normal": np.float16,
    "keypoints2d": np.float16,
    "edge_texture": np.uint8,
}


class ScenesOptions(BaseModel):
    """Options of the ``scenes-nyu`` and ``scenes-taskonomy`` data sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int = Field(default=64, ge=16, le=1024, description="image height and width")
    num_classes: int = Field(
        default=7,
        ge=MIN_CLASSES,
        le=MAX_CLASSES,
        description=f"segmentation classes: the first k of {', '.join(CLASS_NAMES)}",
    )
    min_objects: int = Field(default=2, ge=0, le=32, description="fewest objects in a scene")
    max_objects: int = Field(default=6, ge=1, le=32, description="most objects in a scene")
    num_train: int = Field(default=2000, ge=1, description="scenes in the train split")
    num_val: int = Field(default=256, ge=1, description="scenes in the val split")
    num_test: int = Field(default=256, ge=1, description="scenes in the test split")
    seed: int = Field(default=0, ge=0, description="base seed of the data set")
    tasks: tuple[str, ...] | None = Field(default=None, description="subset of the preset's tasks")
    cache: bool = Field(default=True, description="read and write the on-disk cache")

    @model_validator(mode="after")
    def _object_range(self) -> ScenesOptions:
        if self.min_objects > self.max_objects:
            raise ValueError(
                f"min_objects ({self.min_objects}) must not exceed max_objects ({self.max_objects})"
            )
        return self

    def size(self, split: str) -> int:
        """Number of scenes in ``split``."""
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]

    def settings(self) -> RenderSettings:
        """The renderer's view of these options."""
        return RenderSettings(
            resolution=self.resolution,
            num_classes=self.num_classes,
            min_objects=self.min_objects,
            max_objects=self.max_objects,
        )

    def cache_config(self, split: str) -> dict[str, Any]:
        """Everything that determines the rendered arrays of ``split``."""
        return {
            "renderer": RENDERER_VERSION,
            "split": split,
            "count": self.size(split),
            "seed": self.seed,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "min_objects": self.min_objects,
            "max_objects": self.max_objects,
        }


def scene_seeds(seed: int, split: str, count: int) -> list[np.random.SeedSequence]:
    """The seed of every scene of ``split``: disjoint streams per split."""
    stream = SPLITS[split]
    return [np.random.SeedSequence(seed, spawn_key=(stream, i)) for i in range(count)]


def expected_render_seconds(count: int, resolution: int = 64) -> float:
    """A conservative estimate of the time to render ``count`` scenes on one core."""
    return count * (resolution / 64) ** 2 / _SCENES_PER_SECOND


def render_split(
    options: ScenesOptions, split: str, progress: bool | None = None
) -> dict[str, np.ndarray]:
    """Renders every scene of ``split`` (ignoring the cache), in storage dtypes.

    Args:
        options: the data set's options.
        split: ``train``, ``val`` or ``test``.
        progress: show a progress bar; by default only on a terminal and only when the
            render should take more than about two seconds.
    """
    count = options.size(split)
    res = options.resolution
    settings = options.settings()
    shapes = {
        "image": (count, 3, res, res),
        "normal": (count, 3, res, res),
    }
    arrays = {
        key: np.empty(shapes.get(key, (count, res, res)), dtype=dtype)
        for key, dtype in _STORAGE.items()
    }
    seeds = scene_seeds(options.seed, split, count)
    if progress is None:
        progress = expected_render_seconds(count, res) > 2.0 and sys.stderr.isatty()
    with _progress_bar(f"rendering {split} scenes", count, progress) as advance:
        for start in range(0, count, _BLOCK):
            stop = min(start + _BLOCK, count)
            block = render_scenes(seeds[start:stop], settings)
            for key, value in block.items():
                if arrays[key].dtype == np.float16:  # torch converts far faster than numpy
                    value = torch.from_numpy(value).half().numpy()
                arrays[key][start:stop] = value
            advance(stop - start)
    return arrays


def load_split(
    options: ScenesOptions, split: str, cache_root: str | None = None
) -> dict[str, np.ndarray]:
    """The arrays of ``split``: from the on-disk cache if present, else rendered (and
    then cached when ``options.cache`` is set)."""
    if not options.cache:
        return render_split(options, split)
    config = options.cache_config(split)
    stamp = json.dumps(config, sort_keys=True)
    path = cache_dir(cache_root) / "scenes" / f"{split}-{config_key(config)[:24]}.npz"
    stored = load_arrays(path)
    if stored is not None and _matches(stored, stamp, options, split):
        stored.pop("config")
        return stored
    arrays = render_split(options, split)
    try:
        save_arrays(path, {**arrays, "config": np.array(stamp)})
    except OSError as exc:
        warnings.warn(f"could not write the scene cache {path}: {exc}", stacklevel=2)
    return arrays


def _matches(stored: dict[str, np.ndarray], stamp: str, options: ScenesOptions, split: str) -> bool:
    """Whether a cache file holds exactly this configuration's arrays."""
    if "config" not in stored or str(stored["config"]) != stamp:
        return False
    count, res = options.size(split), options.resolution
    for key, dtype in _STORAGE.items():
        value = stored.get(key)
        channels = (3,) if key in ("image", "normal") else ()
        if value is None or value.dtype != dtype or value.shape != (count, *channels, res, res):
            return False
    return True


@contextlib.contextmanager
def _progress_bar(description: str, total: int, show: bool) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a transient rich progress bar on stderr if ``show``."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _decode_normal(stored: torch.Tensor) -> torch.Tensor:
    normal = stored.float()
    # Sum of squares by hand: Tensor.norm over dim 1 is very slow on one CPU thread.
    squared = (normal * normal).sum(dim=1, keepdim=True)
    return normal * squared.clamp_min(1e-12).rsqrt()  # sky stays zero


#: Storage -> contract conversion of every target for a batch (leading dimension).
_DECODE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "segment_semantic": lambda stored: stored.long(),
    "depth_zbuffer": lambda stored: stored.unsqueeze(1),
    "normal": _decode_normal,
    "keypoints2d": lambda stored: stored.float().unsqueeze(1),
    "edge_texture": lambda stored: stored.float().unsqueeze(1),
}


class SceneDataset(InMemoryDataset):
    """A split of procedural scenes held in memory in compact dtypes.

    ``get_batch`` gathers a batch with one fancy index per array and converts it to the
    :class:`MultiTaskDataset` contract (float32 normalised image, int64 labels with
    255 for sky, float32 targets with a channel dimension).
    """

    #: Class names by id (``class_names[k]`` is class ``k``).
    class_names: tuple[str, ...]

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        tasks: Sequence[str],
        num_classes: int,
        metric_style: str,
    ) -> None:
        self.tasks = tuple(tasks)
        self.num_classes = num_classes if "segment_semantic" in self.tasks else 0
        self.metric_style = metric_style
        self.class_names = CLASS_NAMES[:num_classes]
        self._image = torch.from_numpy(arrays["image"])
        self._targets = {task: torch.from_numpy(arrays[task]) for task in self.tasks}
        mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch by fancy indexing (no per-sample Python work)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        batch = {"image": torch.addcmul(self._shift, self._image[index].float(), self._scale)}
        for task, stored in self._targets.items():
            batch[task] = _DECODE[task](stored[index])
        return batch


def build_scenes(
    name: str,
    available: Sequence[str],
    metric_style: str,
    split: str,
    root: str | None,
    options: dict[str, Any],
) -> SceneDataset:
    """Builds split ``split`` of the scene preset ``name`` (``root`` overrides the cache
    folder)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of train, val, test but got {split!r}")
    owner = f"data set {name!r}"
    parsed = parse_options(ScenesOptions, owner, options)
    tasks = select_tasks(parsed.tasks, available, owner)
    arrays = load_split(parsed, split, cache_root=root)
    return SceneDataset(arrays, tasks, parsed.num_classes, metric_style)


@DATASETS.register("scenes-nyu")
def scenes_nyu(split: str, root: str | None = None, **options: Any) -> SceneDataset:
    """Procedural scenes with the NYUv2 tasks (segmentation, depth, normals) and metrics.

    Options are the fields of :class:`ScenesOptions`; ``root`` overrides the cache folder.
    """
    return build_scenes(
        "scenes-nyu",
        ("segment_semantic", "depth_zbuffer", "normal"),
        "nyu",
        split,
        root,
        options,
    )


@DATASETS.register("scenes-taskonomy")
def scenes_taskonomy(split: str, root: str | None = None, **options: Any) -> SceneDataset:
    """Procedural scenes with the five Taskonomy tasks and metrics.

    Options are the fields of :class:`ScenesOptions`; ``root`` overrides the cache folder.
    """
    return build_scenes(
        "scenes-taskonomy",
        ("segment_semantic", "depth_zbuffer", "normal", "keypoints2d", "edge_texture"),
        "taskonomy",
        split,
        root,
        options,
    )
