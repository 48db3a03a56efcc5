"""Tiny-Taskonomy: per-building folders of PNGs (Zamir et al., "Taskonomy: Disentangling
Task Transfer Learning", CVPR 2018).

Layout::

    root/<building>/rgb/point_0_view_0_domain_rgb.png
    root/<building>/segment_semantic/point_0_view_0_domain_segment_semantic.png
    root/<building>/{depth_zbuffer,normal,keypoints2d,edge_texture}/...

Files of one frame share the part of their name before ``_domain_`` (the whole stem when
there is none). Encodings, as Taskonomy stores them:

* ``rgb``: 8-bit RGB, normalised with ImageNet statistics.
* ``segment_semantic``: 8-bit class ids; 0 (background) is kept as a class, ids
  ``>= num_classes`` become :data:`~trials.data.IGNORE_INDEX`.
* ``depth_zbuffer``: 16-bit, units of 1/512 m; 65535 means invalid and becomes 0.
* ``normal``: 8-bit RGB mapped to ``[-1, 1]`` and rescaled to unit length; vectors
  shorter than 0.5 (the grey 127/128 background) become zero (invalid).
* ``keypoints2d``, ``edge_texture``: 16-bit, divided by 65535 into ``[0, 1]``.

Splits are by building: ``buildings`` lists a split's buildings; by default the sorted
buildings under ``root`` are split 80/10/10 (at least one each for val and test) into
train, val and test in that order. Samples are read lazily; the folder structure is
checked when the split is built.

The references' setup resizes frames to 256x256 and trains on random 224x224 crops of
them rescaled by 0.5-1.5 and mirrored: ``resolution=256, augment={"crop": 224}`` (see
:class:`~trials.data.AugmentOptions`); val and test are then resized to 224x224.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from trials.data._augment import AugmentOptions
from trials.data._base import DATASETS, IGNORE_INDEX, TASK_NAMES, DatasetError
from trials.data._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LazyDataset,
    as_size,
    normalize_image,
    parse_options,
    resize_sample,
    select_tasks,
    split_sizes,
    unit_normals,
)

#: Depth units per metre, and the value that marks an invalid depth.
DEPTH_UNITS_PER_METRE = 512.0
DEPTH_INVALID = 65535


class TaskonomyOptions(BaseModel):
    """Options of the ``taskonomy`` data set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buildings: tuple[str, ...] | None = Field(
        default=None, description="buildings of this split; default: an 80/10/10 split by building"
    )
    tasks: tuple[str, ...] | None = Field(default=None, description="subset of the five tasks")
    num_classes: int = Field(default=17, ge=1, le=255, description="segmentation classes kept")
    resolution: int | tuple[int, int] | None = Field(
        default=None, description="resize to this size (int: square); None keeps the stored size"
    )
    augment: AugmentOptions | None = Field(
        default=None, description="random scale, mirror and crop of the train split"
    )


def default_buildings(buildings: list[str], split: str, root: Path) -> list[str]:
    """The buildings of ``split`` in the default 80/10/10 split of sorted ``buildings``."""
    count = len(buildings)
    if count < 3:
        raise DatasetError(
            f"Taskonomy folder {root} has {count} building(s) but the default split by "
            "building needs at least 3; pass buildings=[...] for each split"
        )
    n_val = n_test = max(1, round(0.1 * count))
    n_train = count - n_val - n_test
    ordered = sorted(buildings)
    return {
        "train": ordered[:n_train],
        "val": ordered[n_train : n_train + n_val],
        "test": ordered[n_train + n_val :],
    }[split]


def _frame(path: Path) -> str:
    """``point_0_view_0_domain_rgb.png`` -> ``point_0_view_0``."""
    return path.stem.split("_domain_")[0]


def _frames(folder: Path) -> dict[str, Path]:
    return {_frame(path): path for path in sorted(folder.glob("*.png"))}


class TaskonomyDataset(LazyDataset):
    """One split of Tiny-Taskonomy (metric style ``taskonomy``)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        buildings: tuple[str, ...] | None = None,
        tasks: tuple[str, ...] = TASK_NAMES,
        num_classes: int = 17,
        resolution: int | tuple[int, int] | None = None,
        augment: AugmentOptions | None = None,
    ) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"Taskonomy folder {root} does not exist")
        if buildings is None:
            found = [path.name for path in root.iterdir() if path.is_dir()]
            buildings = tuple(default_buildings(found, split, root))
        self.tasks = tasks
        self.num_classes = num_classes if "segment_semantic" in tasks else 0
        self.metric_style = "taskonomy"
        self.buildings = buildings
        self._size = as_size(resolution)
        self._label_classes = num_classes
        self._samples: list[dict[str, Path]] = []
        for building in buildings:
            self._samples += self._index_building(root / building)
        if not self._samples:
            raise DatasetError(
                f"Taskonomy split {split!r} has no frames in {root} "
                f"(buildings: {', '.join(buildings) or 'none'})"
            )
        super().__init__(len(self._samples), augment)
        self._load(0)  # fail now, with the file's name, if the images are malformed

    def _index_building(self, building: Path) -> list[dict[str, Path]]:
        if not building.is_dir():
            raise DatasetError(f"building {building} does not exist")
        folders = {"rgb": building / "rgb"} | {task: building / task for task in self.tasks}
        for name, folder in folders.items():
            if not folder.is_dir():
                raise DatasetError(f"building {building} has no {name} folder")
        frames = {name: _frames(folder) for name, folder in folders.items()}
        rgb = frames["rgb"]
        for name, found in frames.items():
            if len(found) != len(rgb):
                raise DatasetError(
                    f"expected {len(rgb)} files in {folders[name]} (as in {folders['rgb']}), "
                    f"found {len(found)}"
                )
            missing = sorted(set(rgb) - set(found))
            if missing:
                raise DatasetError(f"{folders[name]} has no file for frame {missing[0]!r}")
        return [{name: frames[name][frame] for name in folders} for frame in sorted(rgb)]

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        files = self._samples[index]
        rgb = _read(files["rgb"], ("RGB", "RGBA", "L", "P"))
        image = np.asarray(rgb.convert("RGB"), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        sample = {"image": normalize_image(tensor, IMAGENET_MEAN, IMAGENET_STD)}
        for task in self.tasks:
            sample[task] = self._target(task, files[task])
            if tuple(sample[task].shape[-2:]) != image.shape[:2]:
                raise DatasetError(
                    f"{files[task]} is {tuple(sample[task].shape[-2:])} pixels but its rgb "
                    f"image {files['rgb']} is {image.shape[:2]}"
                )
        if self._size is not None:
            sample = resize_sample(sample, self._size)
        return sample

    def _target(self, task: str, path: Path) -> torch.Tensor:
        if task == "segment_semantic":
            labels = np.asarray(_read(path, ("L", "P")), dtype=np.int64).copy()
            labels[labels >= self._label_classes] = IGNORE_INDEX
            return torch.from_numpy(labels)
        if task == "normal":
            rgb = np.asarray(_read(path, ("RGB", "RGBA")).convert("RGB"), dtype=np.float32)
            normal = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
            return unit_normals(normal / 255.0 * 2.0 - 1.0)
        values = _sixteen_bit(path)
        if task == "depth_zbuffer":
            depth = np.where(values == DEPTH_INVALID, 0.0, values / DEPTH_UNITS_PER_METRE)
            return torch.from_numpy(depth.astype(np.float32))[None]
        return torch.from_numpy((values / 65535.0).astype(np.float32))[None]


def _read(path: Path, modes: tuple[str, ...]) -> Image.Image:
    """Opens a PNG whose mode is one of ``modes``."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read Taskonomy image {path}: {exc}") from None
    if image.mode not in modes:
        raise DatasetError(
            f"{path} should be a PNG of mode {' or '.join(modes)} but has mode {image.mode}"
        )
    return image


def _sixteen_bit(path: Path) -> np.ndarray:
    """A 16-bit single-channel PNG as float64 values 0..65535."""
    image = _read(path, ("I;16", "I;16B", "I", "L"))
    values = np.asarray(image).astype(np.float64)
    if image.mode == "L":
        raise DatasetError(f"{path} should be a 16-bit PNG but is 8-bit")
    return values


@DATASETS.register("taskonomy")
def taskonomy(split: str, root: str | None = None, **options: Any) -> TaskonomyDataset:
    """Tiny-Taskonomy read from ``root``; options are the fields of
    :class:`TaskonomyOptions`."""
    owner = "data set 'taskonomy'"
    parsed = parse_options(TaskonomyOptions, owner, options)
    tasks = select_tasks(parsed.tasks, TASK_NAMES, owner)
    if root is None:
        raise DatasetError("data set 'taskonomy' needs its folder: set the dataset root")
    size, augment = split_sizes(parsed.resolution, parsed.augment, split)
    return TaskonomyDataset(root, split, parsed.buildings, tasks, parsed.num_classes, size, augment)
