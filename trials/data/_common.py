"""Helpers shared by the data set modules: typed options, task subsets, image handling."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel

from trials._options import parse_options as _parse_options
from trials.data._augment import AugmentOptions, augment_sample, black_image
from trials.data._base import TASK_NAMES, DatasetOptionError, MultiTaskDataset
from trials.registry import unknown_name_message

#: ImageNet statistics, used to normalise the images of real photographs.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

P = TypeVar("P", bound=BaseModel)


def parse_options(params_type: type[P], owner: str, options: Mapping[str, Any]) -> P:
    """Validates keyword ``options`` of ``owner``; errors raise :class:`DatasetOptionError`."""
    return _parse_options(params_type, owner, options, DatasetOptionError)


def select_tasks(
    requested: Sequence[str] | None, available: Sequence[str], owner: str
) -> tuple[str, ...]:
    """The requested tasks (all of ``available`` if ``None``) in canonical order."""
    if requested is None:
        return tuple(available)
    if isinstance(requested, str):
        requested = [requested]
    for task in requested:
        if task not in available:
            raise DatasetOptionError(unknown_name_message(f"{owner} task", task, list(available)))
    if not requested:
        raise DatasetOptionError(
            f"{owner} needs at least one task; choose from: {', '.join(available)}"
        )
    return tuple(task for task in TASK_NAMES if task in requested)


def normalize_image(
    image: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a float image ``(..., 3, H, W)`` in ``[0, 1]``."""
    m = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    return (image - m) / s


def unit_normals(normal: torch.Tensor) -> torch.Tensor:
    """Rescales ``(3, H, W)`` vectors to unit length; vectors shorter than 0.5 become zero
    (invalid), as do non-finite ones."""
    normal = torch.nan_to_num(normal, nan=0.0, posinf=0.0, neginf=0.0)
    length = (normal * normal).sum(dim=0, keepdim=True).sqrt()  # Tensor.norm is slow here
    return torch.where(length >= 0.5, normal / length.clamp_min(1e-12), torch.zeros_like(normal))


def resize_sample(
    sample: dict[str, torch.Tensor], size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Resizes a sample: the image bilinearly (antialiased), every target by nearest
    neighbour so labels and invalid markers stay exact."""
    out = {}
    for key, value in sample.items():
        if tuple(value.shape[-2:]) == size:
            out[key] = value
            continue
        batch = value[None] if value.dim() == 3 else value[None, None]
        if key == "image":
            resized = F.interpolate(batch, size=size, mode="bilinear", antialias=True)
        else:
            resized = F.interpolate(batch.float(), size=size, mode="nearest").to(value.dtype)
        out[key] = resized[0] if value.dim() == 3 else resized[0, 0]
    return out


def as_size(resolution: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``64`` -> ``(64, 64)``; pairs and ``None`` pass through."""
    if resolution is None:
        return None
    if isinstance(resolution, int):
        return (resolution, resolution)
    return (int(resolution[0]), int(resolution[1]))


def split_sizes(
    resolution: int | tuple[int, int] | None, augment: AugmentOptions | None, split: str
) -> tuple[tuple[int, int] | None, AugmentOptions | None]:
    """``(resize to, augmentation)`` of ``split``: the training split keeps ``resolution``
    and is augmented; held-out splits are resized to the crop when ``augment.held_out`` is
    ``crop`` (AdapMTL's evaluation), else to ``resolution``."""
    if split == "train":
        return as_size(resolution), augment
    if augment is not None and augment.held_out == "crop":
        return augment.crop_size, None
    return as_size(resolution), None


class LazyDataset(MultiTaskDataset):
    """A data set that reads each sample from disk when it is indexed, and augments it in
    :meth:`sample` when built with an :class:`~trials.data.AugmentOptions`."""

    #: The padding of augmented images: black in ImageNet-normalised values.
    image_fill: tuple[float, ...] = black_image(IMAGENET_MEAN, IMAGENET_STD)

    def __init__(self, length: int, augment: AugmentOptions | None = None) -> None:
        self._length = length
        self._augment = augment

    @property
    def augments(self) -> bool:  # type: ignore[override]
        return self._augment is not None

    def sample(self, index: int, seed: int | None = None) -> dict[str, torch.Tensor]:
        sample = self[index]
        if self._augment is None or seed is None:
            return sample
        return augment_sample(sample, self._augment, seed, self.image_fill)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self._length <= index < self._length:
            raise IndexError(f"index {index} is out of range for a split of {self._length}")
        return self._load(index % self._length)

    @abc.abstractmethod
    def _load(self, index: int) -> dict[str, torch.Tensor]:
        """Sample ``index`` (already within range)."""


def spatial(array: np.ndarray, channels: int, path: str) -> np.ndarray:
    """``array`` as ``(channels, H, W)`` from ``HxW`` (one channel), ``HxWxC`` or ``CxHxW``.

    Raises:
        ValueError: the shape fits none of these layouts (the message names ``path``).
    """
    if array.ndim == 2 and channels == 1:
        return array[None]
    if array.ndim == 3:
        if array.shape[-1] == channels and array.shape[0] != channels:
            return np.moveaxis(array, -1, 0)
        if array.shape[0] == channels:
            return array
        if array.shape[-1] == channels:
            return np.moveaxis(array, -1, 0)
    layouts = "HxW, HxWx1 or 1xHxW" if channels == 1 else f"HxWx{channels} or {channels}xHxW"
    raise ValueError(f"{path} should hold a {layouts} array but has shape {array.shape}")
