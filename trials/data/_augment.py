"""Training-time augmentation of real data sets: random scale, mirror and crop.

As the AdapMTL and DiSparse loaders do it (AM ``data/nyuv2_dataloader_adashare.py:35-90``,
``data/taskonomy_dataloader_adashare.py:45-112``; DS ``dataloaders/nyu_v2_dataloader.py:36-90``):
the sample is rescaled by a factor drawn uniformly from ``scale`` (image bilinear, targets
nearest), mirrored left-right with probability one half, then padded (centred) to at least
the crop size and cut at a uniform random offset. Padding is "no label": black for the
image, :data:`~trials.data.IGNORE_INDEX` for segmentation, zero (invalid) for depth and
normals, zero for keypoints and edges.

Every random number of one sample comes from a generator seeded with that sample's
``seed``: the trainer draws the seeds with the sample indices in its own process, so a
batch is the same whichever process loads it (see :mod:`trials.data._loading`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trials.data._base import IGNORE_INDEX


class AugmentOptions(BaseModel):
    """The ``augment`` option of a real data set (applied to its ``train`` split only).

    Attributes:
        crop: training crop, ``H`` or ``[H, W]`` (AdapMTL: 321 on NYUv2, 224 on Taskonomy).
        scale: range of the random rescaling factor (the references: 0.5 to 1.5).
        flip: mirror left-right with probability 0.5.
        flip_normals: negate the x component of mirrored normals (as AM's Taskonomy loader
            does; its NYUv2 loader mirrors normal images without negating).
        held_out: ``crop`` resizes the val and test splits to the crop size (AdapMTL's
            ``__scale__val__``); ``stored`` keeps them at ``resolution`` or the stored size
            (DiSparse evaluates NYUv2 at 480x640).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop: int | tuple[int, int] = Field(description="training crop size (int: square)")
    scale: tuple[float, float] = Field(default=(0.5, 1.5), description="random scale range")
    flip: bool = Field(default=True, description="random left-right mirroring")
    flip_normals: bool = Field(default=True, description="negate normal x when mirrored")
    held_out: Literal["crop", "stored"] = Field(
        default="crop", description="val/test resized to the crop size, or left as stored"
    )

    @field_validator("crop")
    @classmethod
    def _positive_crop(cls, crop: int | tuple[int, int]) -> int | tuple[int, int]:
        sides = (crop,) if isinstance(crop, int) else crop
        if any(side <= 0 for side in sides):
            raise ValueError(f"must be positive sizes (got {crop!r})")
        return crop

    @field_validator("scale")
    @classmethod
    def _ordered_scale(cls, scale: tuple[float, float]) -> tuple[float, float]:
        low, high = scale
        if not 0 < low <= high:
            raise ValueError(f"must be [low, high] with 0 < low <= high (got {list(scale)})")
        return scale

    @property
    def crop_size(self) -> tuple[int, int]:
        """``(H, W)`` of the crop."""
        crop = self.crop
        return (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))


#: Fill value of every target where a crop reaches past the (rescaled) sample.
TARGET_FILL: dict[str, float] = {
    "segment_semantic": float(IGNORE_INDEX),
    "depth_zbuffer": 0.0,
    "normal": 0.0,
    "keypoints2d": 0.0,
    "edge_texture": 0.0,
}


def black_image(mean: Sequence[float], std: Sequence[float]) -> tuple[float, ...]:
    """The normalised value of a black pixel per channel (the image's padding)."""
    return tuple(-m / s for m, s in zip(mean, std, strict=True))


def _rescale(value: torch.Tensor, size: tuple[int, int], bilinear: bool) -> torch.Tensor:
    batch = value[None] if value.dim() == 3 else value[None, None]
    if bilinear:  # cv2.resize's INTER_LINEAR: no antialiasing
        resized = F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
    else:
        resized = F.interpolate(batch.float(), size=size, mode="nearest").to(value.dtype)
    return resized[0] if value.dim() == 3 else resized[0, 0]


def _pad_and_crop(
    value: torch.Tensor,
    crop: tuple[int, int],
    start: tuple[int, int],
    fill: float | Sequence[float],
) -> torch.Tensor:
    """``value`` padded (centred) to at least ``crop`` with ``fill``, cut at ``start``."""
    height, width = value.shape[-2:]
    padded_h, padded_w = max(height, crop[0]), max(width, crop[1])
    if (padded_h, padded_w) != (height, width):
        canvas = torch.empty((*value.shape[:-2], padded_h, padded_w), dtype=value.dtype)
        if isinstance(fill, float | int):
            canvas.fill_(fill)
        else:  # one value per channel
            canvas.copy_(torch.tensor(fill, dtype=value.dtype).view(-1, 1, 1).expand_as(canvas))
        top, left = (padded_h - height) // 2, (padded_w - width) // 2
        canvas[..., top : top + height, left : left + width] = value
        value = canvas
    top, left = start
    return value[..., top : top + crop[0], left : left + crop[1]].contiguous()


def augment_sample(
    sample: Mapping[str, torch.Tensor],
    options: AugmentOptions,
    seed: int,
    image_fill: Sequence[float],
) -> dict[str, torch.Tensor]:
    """One randomly rescaled, mirrored and cropped copy of ``sample``.

    Args:
        sample: a sample of the :class:`~trials.data.MultiTaskDataset` contract.
        options: the augmentation.
        seed: this sample's seed; the same seed gives the same augmentation.
        image_fill: the normalised image value of padding (see :func:`black_image`).
    """
    generator = torch.Generator().manual_seed(int(seed))
    draws = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    low, high = options.scale
    factor = low + (high - low) * draws[0]
    height, width = sample["image"].shape[-2:]
    size = (max(1, int(height * factor)), max(1, int(width * factor)))
    mirror = options.flip and draws[1] > 0.5
    crop = options.crop_size
    room = (max(size[0], crop[0]) - crop[0], max(size[1], crop[1]) - crop[1])
    start = (
        min(room[0], int(draws[2] * (room[0] + 1))),
        min(room[1], int(draws[3] * (room[1] + 1))),
    )
    out = {}
    for key, value in sample.items():
        if tuple(value.shape[-2:]) != size:
            value = _rescale(value, size, bilinear=key == "image")
        if mirror:
            value = value.flip(-1)
            if key == "normal" and options.flip_normals:
                value = value.clone()
                value[0] = -value[0]
        fill = image_fill if key == "image" else TARGET_FILL.get(key, 0.0)
        out[key] = _pad_and_crop(value, crop, start, fill)
    return out
