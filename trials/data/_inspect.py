"""Checking a data folder before a study: every split builds, and sampled files load with
shapes a batch can hold."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trials.data._base import DatasetError, build_dataset


@dataclass(frozen=True)
class SplitSummary:
    """One split of a data set as inspected.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        size: its number of samples.
        expected_size: the size of the standard split, if the data set knows one.
        sampled: how many samples were read.
        shapes: key -> shape of a sample as training or evaluation sees it.
    """

    split: str
    size: int
    expected_size: int | None
    sampled: int
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        """``train 795 samples (8 read): image 3x321x321, ...``."""
        shapes = ", ".join(
            f"{key} {'x'.join(map(str, shape))}" for key, shape in self.shapes.items()
        )
        return f"{self.split} {self.size} samples ({self.sampled} read): {shapes}"


def _indices(size: int, count: int, seed: int) -> list[int]:
    """The first and the last index and ``count - 2`` others at random (seeded)."""
    if size <= count:
        return list(range(size))
    rest = random.Random(seed).sample(range(1, size - 1), max(0, count - 2))
    return sorted({0, size - 1, *rest})


def inspect_split(
    name: str,
    split: str,
    root: str | None,
    options: Mapping[str, Any],
    samples: int = 8,
    seed: int = 0,
) -> SplitSummary:
    """Builds ``split`` and reads ``samples`` of its samples (augmented as training draws
    them, for an augmenting split).

    Raises:
        DatasetError: a missing or malformed folder or file, or samples of different shapes
            (they could not be stacked into one batch); the message names the files.
        DatasetOptionError: an unknown option or task.
    """
    dataset = build_dataset(name, split, root, **options)
    shapes: dict[str, tuple[int, ...]] = {}
    first: dict[str, int] = {}
    indices = _indices(len(dataset), samples, seed)
    for index in indices:
        sample = dataset.sample(index, seed + index) if dataset.augments else dataset[index]
        for key, value in sample.items():
            shape = tuple(value.shape)
            if key not in shapes:
                shapes[key], first[key] = shape, index
            elif shape != shapes[key]:
                raise DatasetError(
                    f"{name} {split}: sample {index} has {key} of shape {shape} but sample "
                    f"{first[key]} has {shapes[key]}; samples of different sizes cannot share "
                    "a batch (set the resolution option)"
                )
    expected = dataset.standard_sizes.get(split)
    return SplitSummary(split, len(dataset), expected, len(indices), shapes)
