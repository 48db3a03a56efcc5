"""CelebA (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015) in its
distributed layout, as binary attribute tasks.

Layout under ``root``::

    img_align_celeba/000001.jpg ...   the aligned and cropped 178x218 JPEGs
    list_attr_celeba.txt              line 1: image count; line 2: the 40 attribute names;
                                      then ``000001.jpg  -1  1 ...`` (one value per name)
    list_eval_partition.txt           ``000001.jpg 0`` (0 train, 1 val, 2 test)

Each selected attribute is one task (metric style ``attributes``) whose target is a
float32 ``(1,)`` label, 1 where the file says ``1`` and 0 where it says ``-1``. Images are
read lazily, resized (bilinear, antialiased) to ``resolution`` and normalised with the
ImageNet statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from trials.data._base import DATASETS, DatasetError, DatasetOptionError
from trials.data._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LazyDataset,
    as_size,
    normalize_image,
    parse_options,
    resize_sample,
)
from trials.registry import unknown_name_message

#: The nine attributes of the task-grouping studies on CelebA: TAG (Fifty et al.,
#: NeurIPS 2021), whose choice DMTG (Gao et al., ICML 2024) reuses.
DEFAULT_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Goatee",
    "Mustache",
    "No_Beard",
    "Rosy_Cheeks",
    "Wearing_Hat",
)
_PARTITIONS = {"train": 0, "val": 1, "test": 2}


class CelebAOptions(BaseModel):
    """Options of the ``celeba`` data set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attributes: tuple[str, ...] = Field(
        default=DEFAULT_ATTRIBUTES, min_length=1, description="attributes used as tasks"
    )
    tasks: tuple[str, ...] | None = Field(default=None, description="subset of the attributes")
    resolution: int | tuple[int, int] | None = Field(
        default=64, description="resize to this size (int: square); None keeps 178x218"
    )


def read_attribute_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Image names, attribute names and the ``(n, attributes)`` int8 table of ``path``.

    Raises:
        DatasetError: the file is missing or a line is malformed (names the line).
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read the CelebA attribute file {path}: {exc}") from None
    if len(lines) < 2:
        raise DatasetError(f"{path} needs a count line and an attribute-name line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(
            f"{path} line 1 must be the number of images but is {lines[0].strip()!r}"
        ) from None
    names = lines[1].split()
    rows = [line for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise DatasetError(f"{path} announces {count} images on line 1 but lists {len(rows)}")
    images: list[str] = []
    table = np.empty((count, len(names)), dtype=np.int8)
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise DatasetError(
                f"{path} line {number} must hold an image name and {len(names)} values "
                f"but has {len(fields)} fields"
            )
        if not set(fields[1:]) <= {"1", "-1"}:
            raise DatasetError(f"{path} line {number} has values other than 1 and -1")
        table[len(images)] = [int(value) for value in fields[1:]]
        images.append(fields[0])
    return images, names, table


def read_partition_file(path: Path) -> dict[str, int]:
    """Image name -> partition (0 train, 1 val, 2 test) of ``path``.

    Raises:
        DatasetError: the file is missing or a line is malformed (names the line).
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read the CelebA partition file {path}: {exc}") from None
    partition: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DatasetError(
                f"{path} line {number} must be an image name and 0, 1 or 2 but is {line.strip()!r}"
            )
        partition[fields[0]] = int(fields[1])
    return partition


class CelebADataset(LazyDataset):
    """One split of CelebA with binary attribute tasks (metric style ``attributes``)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES,
        resolution: int | tuple[int, int] | None = 64,
    ) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"CelebA folder {root} does not exist")
        self.folder = root / "img_align_celeba"
        if not self.folder.is_dir():
            raise DatasetError(f"CelebA image folder {self.folder} does not exist")
        images, names, table = read_attribute_file(root / "list_attr_celeba.txt")
        for attribute in attributes:
            if attribute not in names:
                raise DatasetOptionError(unknown_name_message("CelebA attribute", attribute, names))
        partition_path = root / "list_eval_partition.txt"
        partition = read_partition_file(partition_path)
        wanted = _PARTITIONS[split]
        rows = []
        for row, image in enumerate(images):
            if image not in partition:
                raise DatasetError(f"{partition_path} has no partition for image {image}")
            if partition[image] == wanted:
                rows.append(row)
        if not rows:
            raise DatasetError(f"{partition_path} puts no image in the {split} split")
        self.tasks = tuple(attributes)
        self.num_classes = 0
        self.metric_style = "attributes"
        self.images = [images[row] for row in rows]
        columns = [names.index(attribute) for attribute in attributes]
        self._labels = torch.from_numpy((table[np.ix_(rows, columns)] > 0).astype(np.float32))
        self._size = as_size(resolution)
        super().__init__(len(rows))
        self._load(0)  # fail now, with the file's name, if the first image is unreadable

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        path = self.folder / self.images[index]
        try:
            with Image.open(path) as picture:
                rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
        except OSError as exc:
            raise DatasetError(f"cannot read CelebA image {path}: {exc}") from None
        image = normalize_image(torch.from_numpy(rgb).permute(2, 0, 1), IMAGENET_MEAN, IMAGENET_STD)
        sample = {"image": image}
        if self._size is not None:
            sample = resize_sample(sample, self._size)
        labels = self._labels[index]
        for column, task in enumerate(self.tasks):
            sample[task] = labels[column : column + 1]
        return sample


@DATASETS.register("celeba")
def celeba(split: str, root: str | None = None, **options: Any) -> CelebADataset:
    """CelebA read from ``root`` with binary attribute tasks; options are the fields of
    :class:`CelebAOptions` (``tasks``, if given, must be a subset of ``attributes``)."""
    owner = "data set 'celeba'"
    parsed = parse_options(CelebAOptions, owner, options)
    attributes = parsed.attributes
    if parsed.tasks is not None:
        for task in parsed.tasks:
            if task not in attributes:
                raise DatasetOptionError(
                    unknown_name_message(f"{owner} task", task, list(attributes))
                )
        if not parsed.tasks:
            raise DatasetOptionError(f"{owner} needs at least one task")
        attributes = tuple(a for a in attributes if a in parsed.tasks)
    if root is None:
        raise DatasetError("data set 'celeba' needs its folder: set the dataset root")
    return CelebADataset(root, split, attributes, parsed.resolution)
