"""NYUv2 in the common preprocessed ``.npy`` layout (as distributed with MTAN and AdaShare).

Layout (Liu et al., "End-to-End Multi-Task Learning with Attention", CVPR 2019)::

    root/{train,val}/image/<i>.npy    HxWx3 (or 3xHxW) float in [0, 1] (uint8 0..255 too)
    root/{train,val}/label/<i>.npy    HxW class ids 0..12 (or 0..39); 255 or -1 = ignore
    root/{train,val}/depth/<i>.npy    HxW (or HxWx1, 1xHxW) metres, 0 = invalid
    root/{train,val}/normal/<i>.npy   HxWx3 (or 3xHxW) in [-1, 1], zero = invalid

The data set has no separate test split: ``test`` reads ``val`` (as the papers evaluate).
Samples are read lazily; the folder structure is checked when the split is built.

The paper setup (AdapMTL, DiSparse) trains on random 321x321 crops of the stored 480x640
frames rescaled by 0.5-1.5 and mirrored: ``augment={"crop": 321}`` (see
:class:`~trials.data.AugmentOptions`); the val split is then resized to 321x321.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from trials.data._augment import AugmentOptions
from trials.data._base import DATASETS, IGNORE_INDEX, DatasetError
from trials.data._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LazyDataset,
    as_size,
    normalize_image,
    parse_options,
    resize_sample,
    select_tasks,
    spatial,
    split_sizes,
)

_TASKS = ("segment_semantic", "depth_zbuffer", "normal")
#: Sub-folder of every task.
_FOLDERS = {"segment_semantic": "label", "depth_zbuffer": "depth", "normal": "normal"}


class NYUv2Options(BaseModel):
    """Options of the ``nyuv2`` data set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_classes: Literal[13, 40] = Field(default=13, description="13- or 40-class labels")
    tasks: tuple[str, ...] | None = Field(default=None, description="subset of the three tasks")
    resolution: int | tuple[int, int] | None = Field(
        default=None, description="resize to this size (int: square); None keeps the stored size"
    )
    augment: AugmentOptions | None = Field(
        default=None, description="random scale, mirror and crop of the train split"
    )


def _numbered(folder: Path) -> list[Path]:
    """The ``.npy`` files of ``folder`` in numeric order of their stems (else by name)."""
    files = [path for path in folder.iterdir() if path.suffix == ".npy"]
    if all(path.stem.isdigit() for path in files):
        return sorted(files, key=lambda path: int(path.stem))
    return sorted(files)


class NYUv2Dataset(LazyDataset):
    """One split of preprocessed NYUv2 (metric style ``nyu``)."""

    #: Samples of the standard splits (Silberman et al. 2012; ``test`` reads ``val``).
    standard_sizes: ClassVar[Mapping[str, int]] = MappingProxyType(
        {"train": 795, "val": 654, "test": 654}
    )

    def __init__(
        self,
        root: str | Path,
        split: str,
        num_classes: int = 13,
        tasks: tuple[str, ...] = _TASKS,
        resolution: int | tuple[int, int] | None = None,
        augment: AugmentOptions | None = None,
    ) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"NYUv2 folder {root} does not exist")
        folder = root / ("val" if split == "test" else split)
        if not folder.is_dir():
            raise DatasetError(f"NYUv2 folder {folder} does not exist")
        self.tasks = tasks
        self.num_classes = num_classes if "segment_semantic" in tasks else 0
        self.metric_style = "nyu"
        self.root = root
        self._size = as_size(resolution)
        self._label_classes = num_classes
        folders = {"image": folder / "image"} | {task: folder / _FOLDERS[task] for task in tasks}
        for path in folders.values():
            if not path.is_dir():
                raise DatasetError(f"NYUv2 folder {path} does not exist")
        images = _numbered(folders["image"])
        if not images:
            raise DatasetError(f"NYUv2 folder {folders['image']} has no .npy files")
        names = [path.name for path in images]
        self._files: dict[str, list[Path]] = {"image": images}
        for task in tasks:
            files = _numbered(folders[task])
            if len(files) != len(images):
                raise DatasetError(
                    f"expected {len(images)} files in {folders[task]} (as in "
                    f"{folders['image']}), found {len(files)}"
                )
            missing = sorted(set(names) - {path.name for path in files})
            if missing:
                raise DatasetError(f"NYUv2 folder {folders[task]} has no file {missing[0]}")
            self._files[task] = [folders[task] / name for name in names]
        super().__init__(len(images), augment)
        self._load(0)  # fail now, with the file's name, if the arrays are malformed

    def _read(self, key: str, index: int) -> np.ndarray:
        path = self._files[key][index]
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read NYUv2 file {path}: {exc}") from None

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        path = self._files["image"][index]
        try:
            image = spatial(self._read("image", index), 3, str(path))
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        image = np.ascontiguousarray(image, dtype=np.float32)  # HxWx3 files: channels first
        if image.size and (image.min() < -0.01 or image.max() > 1.01):
            raise DatasetError(
                f"image values must lie in [0, 1] (or be uint8) but {path} spans "
                f"[{image.min():g}, {image.max():g}]"
            )
        sample = {"image": normalize_image(torch.from_numpy(image), IMAGENET_MEAN, IMAGENET_STD)}
        for task in self.tasks:
            sample[task] = self._target(task, index)
            if tuple(sample[task].shape[-2:]) != tuple(image.shape[-2:]):
                raise DatasetError(
                    f"{self._files[task][index]} is {tuple(sample[task].shape[-2:])} pixels but "
                    f"its image {path} is {tuple(image.shape[-2:])}"
                )
        if self._size is not None:
            sample = resize_sample(sample, self._size)
        return sample

    def _target(self, task: str, index: int) -> torch.Tensor:
        path = self._files[task][index]
        array = self._read(task, index)
        if task == "segment_semantic":
            return torch.from_numpy(self._labels(array, path))
        channels = 3 if task == "normal" else 1
        try:
            values = np.ascontiguousarray(spatial(array, channels, str(path)), dtype=np.float32)
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0, copy=False)
        if task == "depth_zbuffer":
            return torch.from_numpy(np.maximum(values, 0.0))
        length = np.sqrt((values * values).sum(axis=0, keepdims=True))
        unit = np.divide(values, length, out=np.zeros_like(values), where=length > 1e-6)
        return torch.from_numpy(unit)

    def _labels(self, array: np.ndarray, path: Path) -> np.ndarray:
        if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
            array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
        if array.ndim != 2:
            raise DatasetError(f"{path} should hold an HxW label array but has shape {array.shape}")
        labels = np.rint(np.nan_to_num(array.astype(np.float64), nan=-1.0)).astype(np.int64)
        labels[labels == -1] = IGNORE_INDEX
        bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= self._label_classes))
        if bad.any():
            raise DatasetError(
                f"labels in {path} must be 0..{self._label_classes - 1} or 255/-1 (ignore) "
                f"but include {int(labels[bad][0])}"
            )
        return labels


@DATASETS.register("nyuv2")
def nyuv2(split: str, root: str | None = None, **options: Any) -> NYUv2Dataset:
    """Preprocessed NYUv2 read from ``root`` (``test`` reads ``val``); options are the
    fields of :class:`NYUv2Options`."""
    owner = "data set 'nyuv2'"
    parsed = parse_options(NYUv2Options, owner, options)
    tasks = select_tasks(parsed.tasks, _TASKS, owner)
    if root is None:
        raise DatasetError("data set 'nyuv2' needs its folder: set the dataset root")
    size, augment = split_sizes(parsed.resolution, parsed.augment, split)
    return NYUv2Dataset(root, split, parsed.num_classes, tasks, size, augment)
