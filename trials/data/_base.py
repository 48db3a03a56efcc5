"""The dataset contract every multi-task data source follows."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

import torch

from trials.errors import ParetuneError
from trials.registry import Registry

#: Canonical task names (Taskonomy naming). NYUv2-like sets use the first three.
TASK_NAMES = ("segment_semantic", "depth_zbuffer", "normal", "keypoints2d", "edge_texture")

#: Segmentation label meaning "no label": excluded from loss and metrics.
IGNORE_INDEX = 255


class MultiTaskDataset(torch.utils.data.Dataset, abc.ABC):
    """A split of a dense multi-task data set.

    Contract (one sample, returned by ``__getitem__`` as a dict of tensors):
        ``image``: float32 ``(3, H, W)``, roughly zero mean and unit variance.
        ``segment_semantic``: int64 ``(H, W)``, class ids ``0..num_classes-1``,
            :data:`IGNORE_INDEX` where unlabelled.
        ``depth_zbuffer``: float32 ``(1, H, W)``, depth > 0 where valid, 0 where invalid.
        ``normal``: float32 ``(3, H, W)``, unit vectors where valid, all-zero where invalid.
        ``keypoints2d``: float32 ``(1, H, W)`` heatmap in ``[0, 1]``.
        ``edge_texture``: float32 ``(1, H, W)`` edge strength in ``[0, 1]``.
    Only the keys of :attr:`tasks` (plus ``image``) are present. ``get_batch`` returns
    the same keys with a leading batch dimension; in-memory data sets override it with
    fancy indexing so the trainer never pays per-sample Python overhead.
    """

    #: Task names present in this split, a subset of :data:`TASK_NAMES`, in order.
    tasks: tuple[str, ...]
    #: Number of segmentation classes (0 when there is no segmentation task).
    num_classes: int
    #: ``"nyu"`` or ``"taskonomy"``: which metric family evaluates this data set.
    metric_style: str
    #: Whether :meth:`sample` draws a random augmentation from its seed (the training split
    #: of a real data set with ``augment``); the trainer then draws one seed per sample.
    augments: bool = False
    #: Samples in each split of the data set's standard release (empty: none is standard).
    standard_sizes: ClassVar[Mapping[str, int]] = MappingProxyType({})

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples in the split."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One sample, keys as described in the class docstring."""

    def sample(self, index: int, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Sample ``index``, augmented as ``seed`` draws it when :attr:`augments` (the same
        seed, the same augmentation); otherwise ``self[index]``."""
        return self[index]

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch of samples stacked along a new first dimension (never augmented)."""
        samples = [self[int(i)] for i in indices]
        # Stacked in shared memory when a DataLoader worker builds the batch (no copy to
        # send it to the trial's process).
        return torch.utils.data.default_collate(samples)


class InMemoryDataset(MultiTaskDataset):
    """A split held in memory: subclasses keep their images in ``_image`` (first dimension:
    samples) and implement ``get_batch``; single samples are cut from a batch of one."""

    _image: torch.Tensor

    def __len__(self) -> int:
        return int(self._image.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a split of {len(self)}")
        return {key: value[0] for key, value in self.get_batch([index]).items()}

    @abc.abstractmethod
    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch by fancy indexing (no per-sample Python work)."""


class DatasetError(ParetuneError, ValueError):
    """A data folder is missing or malformed; the message names the path."""


class DatasetOptionError(ParetuneError, ValueError):
    """A data set got an unknown option, task or bad value; the message names it."""


DATASETS: Registry = Registry("dataset", plugins=__package__)
"""Factories ``(split: str, root: str | None, **options) -> MultiTaskDataset``."""


def build_dataset(
    name: str, split: str, root: str | None = None, **options: object
) -> MultiTaskDataset:
    """Builds split ``train``/``val``/``test`` of the registered data set ``name``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be one of train, val, test but got {split!r}")
    return DATASETS.get(name)(split=split, root=root, **options)
