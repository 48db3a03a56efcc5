"""The built-in ``attributes`` data set: binary image attributes with a known task grouping.

Small CelebA-like RGB images are drawn from ``num_groups`` groups of three latent factors
each, and every group drives one visually distinct aspect of the picture:

=============  ==================================================================
group          what its factors change
=============  ==================================================================
``shape``      an ellipse's hole (disc to ring), width and height
``texture``    the ellipse's fill: colour (red to green), stripe frequency and angle
``background`` brightness, direction of a brightness gradient, blue tint
``frame``      a border's thickness and brightness, the size of a corner square
=============  ==================================================================

Aspects whose group is not used (``num_groups`` below 4) still vary, driven by unlabelled
nuisance factors. Each of the ``num_tasks`` binary attributes is a threshold of a linear
function of exactly one group's factors, ``w . (u - 0.5) > b`` with a fixed unit direction
``w`` per task scattered a little around its group's direction (``spread``) and thresholds
``threshold_step`` apart inside a group (``-0.08, 0, 0.08`` for three tasks), so a group's
tasks are nested cuts of nearly one projection (strong transfer inside a group, none
across groups) and roughly balanced. The aspects need different features and each can be
read after global average pooling (no labelled factor is a position). Groups get
``num_tasks / num_groups`` tasks each (contiguous blocks; the first groups get one more
when it does not divide). Task names say their group (``shape_0``, ``texture_1``, ...);
:attr:`AttributesDataset.task_groups` is the true grouping; ``label_noise`` flips each
label with that probability.

A split is generated quickly (about 1 s per 1000 images on one core; no cache): the
directions come from ``SeedSequence(seed)``, the images of train, val and test from disjoint streams
``SeedSequence(seed, spawn_key=(split,))``, so the same options give the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trials.data._base import DATASETS, DatasetOptionError, InMemoryDataset
from trials.data._common import parse_options
from trials.registry import unknown_name_message

#: Aspects in the order groups use them.
ASPECTS = ("shape", "texture", "background", "frame")
#: Latent factors per group.
FACTORS_PER_GROUP = 3
_SPLITS = {"train": 0, "val": 1, "test": 2}
_NOISE_STD = 0.02
#: Fixed normalisation of the ``[0, 1]`` images.
_MEAN, _STD = 0.45, 0.25


class AttributesOptions(BaseModel):
    """Options of the ``attributes`` data set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_tasks: int = Field(default=9, ge=1, le=64, description="binary attributes")
    num_groups: int = Field(
        default=3, ge=1, le=len(ASPECTS), description="latent factor groups (aspects)"
    )
    resolution: int = Field(default=32, ge=16, le=256, description="image height and width")
    num_train: int = Field(default=2000, ge=1, description="images in the train split")
    num_val: int = Field(default=256, ge=1, description="images in the val split")
    num_test: int = Field(default=256, ge=1, description="images in the test split")
    seed: int = Field(default=0, ge=0, description="base seed of the data set")
    label_noise: float = Field(default=0.0, ge=0.0, lt=0.5, description="label flip rate")
    spread: float = Field(
        default=0.1, ge=0.0, description="how far a group's task directions scatter"
    )
    threshold_step: float = Field(
        default=0.08, ge=0.0, le=0.2, description="threshold gap between a group's tasks"
    )
    tasks: tuple[str, ...] | None = Field(default=None, description="subset of the attributes")

    @model_validator(mode="after")
    def _enough_tasks(self) -> AttributesOptions:
        if self.num_tasks < self.num_groups:
            raise ValueError(
                f"num_tasks ({self.num_tasks}) must be at least num_groups ({self.num_groups})"
            )
        return self

    def size(self, split: str) -> int:
        """Number of images in ``split``."""
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]


def attribute_groups(num_tasks: int, num_groups: int) -> dict[str, int]:
    """Task name -> group index for ``num_tasks`` attributes in ``num_groups`` groups."""
    groups = [task * num_groups // num_tasks for task in range(num_tasks)]
    names = []
    for task, group in enumerate(groups):
        names.append(f"{ASPECTS[group]}_{task - groups.index(group)}")
    return dict(zip(names, groups, strict=True))


def attribute_thresholds(num_tasks: int, num_groups: int, step: float = 0.08) -> np.ndarray:
    """The threshold ``b`` of every task, ``(num_tasks,)``: a group's tasks cut its factor
    projection at ``step`` apart, centred on 0 (``-step, 0, step`` for three tasks)."""
    groups = list(attribute_groups(num_tasks, num_groups).values())
    thresholds = np.zeros(num_tasks)
    for group in set(groups):
        members = [task for task, g in enumerate(groups) if g == group]
        thresholds[members] = step * (np.arange(len(members)) - (len(members) - 1) / 2)
    return thresholds


def attribute_directions(
    seed: int, num_tasks: int, num_groups: int, spread: float = 0.1
) -> np.ndarray:
    """The unit direction ``w`` of every task, ``(num_tasks, FACTORS_PER_GROUP)``.

    The tasks of a group scatter around a common random direction (``w = normalise(c_g +
    spread * e)`` with standard normal ``c_g`` and ``e``), so like CelebA's beard
    attributes they are related but not identical.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    centres = rng.normal(size=(num_groups, FACTORS_PER_GROUP))
    groups = list(attribute_groups(num_tasks, num_groups).values())
    directions = centres[groups] + spread * rng.normal(size=(num_tasks, FACTORS_PER_GROUP))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def _ellipse(
    xx: np.ndarray, yy: np.ndarray, cx: np.ndarray, cy: np.ndarray, rx: np.ndarray, ry: np.ndarray
) -> np.ndarray:
    """Soft (anti-aliased) ellipse masks ``(n, H, W)``."""
    distance = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1.0 - distance) * 8.0, 0.0, 1.0)


def render_attribute_images(
    factors: np.ndarray, resolution: int, rng: np.random.Generator
) -> np.ndarray:
    """Images ``(n, 3, H, W)`` in ``[0, 1]`` (float32) from factors ``(n, 4, 3)`` in ``[0, 1]``.

    ``factors[:, g]`` drives aspect ``ASPECTS[g]``; ``rng`` adds a little pixel noise and
    the ellipse's position jitter (neither depends on a labelled factor).
    """
    n = factors.shape[0]
    axis = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    yy, xx = axis[None, :, None], axis[None, None, :]
    shape, texture, background, frame = (factors[:, g, :, None, None] for g in range(4))

    # background: brightness, gradient direction, blue tint
    angle = background[:, 1] * (np.pi / 2)
    ramp = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)
    level = 0.2 + 0.45 * background[:, 0] + 0.35 * ramp
    tint = background[:, 2] - 0.5
    image = np.stack([level - 0.15 * tint, level - 0.05 * tint, level + 0.3 * tint], axis=1)

    # frame: border thickness and brightness, corner square size
    thickness = (1.0 + 3.0 * frame[:, 0]) / resolution
    border = (np.minimum(np.minimum(xx, 1 - xx), np.minimum(yy, 1 - yy)) < thickness).astype(
        np.float32
    )
    corner = ((xx < 0.08 + 0.17 * frame[:, 2]) & (yy < 0.08 + 0.17 * frame[:, 2])).astype(
        np.float32
    )
    frame_value = 0.1 + 0.8 * frame[:, 1]
    mask = np.maximum(border, corner)[:, None]
    image = image * (1 - mask) + frame_value[:, None] * mask

    # shape: position, width, height; texture: fill colour, stripe frequency and angle
    jitter = rng.uniform(-0.06, 0.06, size=(n, 2, 1, 1)).astype(np.float32)
    cx, cy = 0.5 + jitter[:, 0], 0.55 + jitter[:, 1]
    rx, ry = 0.1 + 0.26 * shape[:, 1], 0.1 + 0.26 * shape[:, 2]
    hole = 0.75 * shape[:, 0]  # inner radius as a share of the outer one: disc to thin ring
    ellipse = (
        _ellipse(xx, yy, cx, cy, rx, ry)
        * (1.0 - _ellipse(xx, yy, cx, cy, rx * hole + 1e-3, ry * hole + 1e-3))
    )[:, None]
    red, green = np.array([0.95, 0.2, 0.15]), np.array([0.15, 0.85, 0.25])
    colour = (
        red[None, :, None, None] * (1 - texture[:, 0:1])
        + green[None, :, None, None] * texture[:, 0:1]
    )
    stripe_angle = texture[:, 2] * (np.pi / 2)
    frequency = 1.5 + 4.5 * texture[:, 1]
    phase = (xx * np.cos(stripe_angle) + yy * np.sin(stripe_angle)) * frequency * 2 * np.pi
    stripes = (0.55 + 0.45 * np.sin(phase))[:, None]
    image = image * (1 - ellipse) + colour * stripes * ellipse

    image = image + _NOISE_STD * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def generate_attributes(options: AttributesOptions, split: str) -> dict[str, np.ndarray]:
    """``image`` (uint8 ``(n, 3, H, W)``), ``factors`` (``(n, 4, 3)``) and ``labels``
    (uint8 ``(n, num_tasks)``, columns in task order) of ``split``."""
    count = options.size(split)
    rng = np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=(_SPLITS[split],)))
    factors = rng.uniform(size=(count, len(ASPECTS), FACTORS_PER_GROUP)).astype(np.float32)
    groups = list(attribute_groups(options.num_tasks, options.num_groups).values())
    directions = attribute_directions(
        options.seed, options.num_tasks, options.num_groups, options.spread
    )
    scores = np.einsum("ntf,tf->nt", factors[:, groups, :] - 0.5, directions)
    labels = scores > attribute_thresholds(
        options.num_tasks, options.num_groups, options.threshold_step
    )
    if options.label_noise > 0:
        labels ^= rng.uniform(size=labels.shape) < options.label_noise
    images = render_attribute_images(factors, options.resolution, rng)
    return {
        "image": np.rint(images * 255).astype(np.uint8),
        "factors": factors,
        "labels": labels.astype(np.uint8),
    }


class AttributesDataset(InMemoryDataset):
    """A split of the ``attributes`` data set, in memory (metric style ``attributes``).

    Each task's target is a float32 ``(1,)`` label in ``{0, 1}``.

    Attributes:
        task_groups: task -> index of the factor group it depends on (the true grouping).
        factors: ``(n, 4, 3)`` latent factors of every image (``factors[:, g]`` drives
            ``ASPECTS[g]``).
    """

    def __init__(
        self, arrays: dict[str, np.ndarray], tasks: Sequence[str], groups: dict[str, int]
    ) -> None:
        self.tasks = tuple(tasks)
        self.num_classes = 0
        self.metric_style = "attributes"
        self.task_groups = {task: groups[task] for task in self.tasks}
        self.factors = arrays["factors"]
        columns = [list(groups).index(task) for task in self.tasks]
        self._image = torch.from_numpy(arrays["image"])
        self._labels = torch.from_numpy(arrays["labels"][:, columns].astype(np.float32))

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch by fancy indexing: normalised images and one ``(B, 1)`` label per task."""
        index = torch.as_tensor(indices, dtype=torch.long)
        image = (self._image[index].float() / 255.0 - _MEAN) / _STD
        labels = self._labels[index]
        batch = {"image": image}
        for column, task in enumerate(self.tasks):
            batch[task] = labels[:, column : column + 1]
        return batch


@DATASETS.register("attributes")
def attributes(split: str, root: str | None = None, **options: Any) -> AttributesDataset:
    """Synthetic binary attributes with a known task grouping (see the module docstring).

    Options are the fields of :class:`AttributesOptions`; ``root`` is not used.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of train, val, test but got {split!r}")
    owner = "data set 'attributes'"
    parsed = parse_options(AttributesOptions, owner, options)
    groups = attribute_groups(parsed.num_tasks, parsed.num_groups)
    tasks = tuple(groups)
    if parsed.tasks is not None:
        for task in parsed.tasks:
            if task not in groups:
                raise DatasetOptionError(unknown_name_message(f"{owner} task", task, list(groups)))
        if not parsed.tasks:
            raise DatasetOptionError(
                f"{owner} needs at least one task; choose from: {', '.join(groups)}"
            )
        tasks = tuple(task for task in groups if task in parsed.tasks)
    return AttributesDataset(generate_attributes(parsed, split), tasks, groups)
