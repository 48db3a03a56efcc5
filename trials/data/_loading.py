"""Feeding a trial: seeded batch streams, in this process or through ``DataLoader`` workers.

A trial trains on batches of sample indices drawn with replacement from a seeded
generator (and, for a training split that :attr:`~trials.data.MultiTaskDataset.augments`,
one augmentation seed per sample drawn right after them). :class:`BatchStream` serves
those batches in that order:

* ``num_workers == 0``: each batch is drawn from the trial's generator when it is asked
  for and built in this process (the procedural data sets' path, unchanged);
* ``num_workers > 0``: a :class:`torch.utils.data.DataLoader` whose batch sampler draws the
  same keys from a copy of the generator, and whose workers build each batch with the same
  function (:func:`load_batch`), ``prefetch_factor`` batches ahead per worker, pinned when
  the trial runs on CUDA.

All randomness is drawn in the trial's process, so a weight-pruning trial gets the same
batches, and the same result, with any number of workers. (``dmtg`` draws its Gumbel noise
from the trial's generator too; in this process the batch draws interleave with it, so its
results depend on whether workers are used, not on how many.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from trials.data._base import MultiTaskDataset

#: Augmentation seeds are drawn below this bound.
SEED_BOUND = 2**62

Keys = tuple[list[int], list[int] | None]


def draw_keys(
    size: int, batch_size: int, generator: torch.Generator, seeded: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sample indices (with replacement) and, if ``seeded``, one augmentation seed each."""
    indices = torch.randint(size, (batch_size,), generator=generator)
    seeds = torch.randint(SEED_BOUND, (batch_size,), generator=generator) if seeded else None
    return indices, seeds


def load_batch(
    dataset: MultiTaskDataset,
    indices: Sequence[int] | torch.Tensor,
    seeds: Sequence[int] | torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The batch of ``indices``: ``get_batch``, or augmented samples when seeds are given."""
    if seeds is None:
        return dataset.get_batch(indices)
    samples = [dataset.sample(int(i), int(s)) for i, s in zip(indices, seeds, strict=True)]
    return default_collate(samples)  # in a worker: stacked straight into shared memory


def move_batch(
    batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool = False
) -> dict[str, torch.Tensor]:
    """``batch`` on ``device`` (asynchronously from pinned memory); images in
    ``channels_last`` layout if asked."""
    moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    if channels_last and moved["image"].dim() == 4:
        moved["image"] = moved["image"].contiguous(memory_format=torch.channels_last)
    return moved


class _Batches(Dataset[dict[str, torch.Tensor]]):
    """A data set whose items are whole batches, keyed by ``(indices, seeds)``."""

    def __init__(self, dataset: MultiTaskDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, keys: Keys) -> dict[str, torch.Tensor]:
        indices, seeds = keys
        return load_batch(self.dataset, indices, seeds)


class _TrainingKeys(Sampler[Keys]):
    """Endless keys of training batches, drawn like :meth:`BatchStream.next` draws them."""

    def __init__(
        self, size: int, batch_size: int, generator: torch.Generator, seeded: bool
    ) -> None:
        self.size, self.batch_size, self.seeded = size, batch_size, seeded
        self.generator = generator

    def __iter__(self) -> Iterator[Keys]:
        while True:
            indices, seeds = draw_keys(self.size, self.batch_size, self.generator, self.seeded)
            yield indices.tolist(), None if seeds is None else seeds.tolist()


class _HeldOutKeys(Sampler[Keys]):
    """Consecutive batches of a held-out split, the first ``limit`` of them."""

    def __init__(self, size: int, batch_size: int, limit: int | None) -> None:
        self.size, self.batch_size = size, batch_size
        count = -(-size // batch_size)
        self.count = count if limit is None else min(count, limit)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Keys]:
        for start in range(0, self.count * self.batch_size, self.batch_size):
            yield list(range(start, min(start + self.batch_size, self.size))), None


def _worker_init(_worker: int) -> None:
    """A loader worker builds batches on one thread (the trial's threads train)."""
    import random

    import numpy as np

    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _loader(
    dataset: MultiTaskDataset, sampler: Sampler[Keys], options: Any, device: torch.device
) -> DataLoader[dict[str, torch.Tensor]]:
    return DataLoader(
        _Batches(dataset),
        batch_size=None,  # every item is a whole batch
        sampler=sampler,
        num_workers=options.num_workers,
        pin_memory=options.pin_memory and device.type == "cuda",
        persistent_workers=options.persistent_workers,
        prefetch_factor=options.prefetch_factor,
        worker_init_fn=_worker_init,
    )


class BatchStream:
    """The training batches of one trial, on its device (see the module docstring).

    Args:
        dataset: the training split.
        batch_size: samples per batch.
        generator: the trial's data-order generator (advanced only with no workers).
        options: a :class:`~trials._config.LoaderOptions`.
        device: where batches go.
        channels_last: images in ``channels_last`` layout.
    """

    def __init__(
        self,
        dataset: MultiTaskDataset,
        batch_size: int,
        generator: torch.Generator,
        options: Any,
        device: torch.device,
        channels_last: bool = False,
    ) -> None:
        self.dataset, self.batch_size, self.options = dataset, batch_size, options
        self.generator, self.device, self.channels_last = generator, device, channels_last
        self._iterator: Iterator[dict[str, torch.Tensor]] | None = None
        if options.num_workers > 0:
            copy = torch.Generator()
            copy.set_state(generator.get_state())
            keys = _TrainingKeys(len(dataset), batch_size, copy, dataset.augments)
            self._iterator = iter(_loader(dataset, keys, options, device))

    def next(self) -> dict[str, torch.Tensor]:
        """The next training batch."""
        if self._iterator is not None:
            batch = next(self._iterator)
        else:
            indices, seeds = draw_keys(
                len(self.dataset), self.batch_size, self.generator, self.dataset.augments
            )
            batch = load_batch(self.dataset, indices, seeds)
            if self.options.pin_memory and self.device.type == "cuda":
                batch = {key: value.pin_memory() for key, value in batch.items()}
        return move_batch(batch, self.device, self.channels_last)

    def close(self) -> None:
        """Stops the loader's workers (if any); the stream is not used afterwards."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def held_out_batches(
    dataset: MultiTaskDataset,
    batch_size: int,
    max_batches: int | None,
    options: Any | None,
    device: torch.device,
    channels_last: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Consecutive batches of a held-out split on ``device``; loaded by workers when
    ``options`` asks for them (started for this pass and stopped after it)."""
    keys = _HeldOutKeys(len(dataset), batch_size, max_batches)
    if options is None or options.num_workers == 0:
        for indices, _ in keys:
            batch = dataset.get_batch(torch.tensor(indices, dtype=torch.long))
            yield move_batch(batch, device, channels_last)
        return
    loader = _loader(
        dataset, keys, options.model_copy(update={"persistent_workers": False}), device
    )
    for batch in loader:
        yield move_batch(batch, device, channels_last)
