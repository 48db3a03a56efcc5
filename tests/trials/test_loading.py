"""The data pipeline of real data sets: the references' augmentation, seeded batch streams
through ``DataLoader`` workers, and trials that give the same result with any worker count."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.fabricate import nyuv2_folder, taskonomy_folder
from trials import run_trial
from trials._config import LoaderOptions
from trials.data import (
    IGNORE_INDEX,
    AugmentOptions,
    BatchStream,
    DatasetOptionError,
    augment_sample,
    build_dataset,
    held_out_batches,
)
from trials.data._augment import black_image
from trials.data._common import IMAGENET_MEAN, IMAGENET_STD

SIZE = (12, 16)
FILL = black_image(IMAGENET_MEAN, IMAGENET_STD)


@pytest.fixture
def nyu_root(tmp_path: Path) -> Path:
    return nyuv2_folder(tmp_path / "nyuv2", train=10, val=4, size=SIZE)


def _sample(root: Path) -> dict[str, torch.Tensor]:
    return build_dataset("nyuv2", "train", root=str(root))[3]


def _mirroring_seed(options: AugmentOptions, mirrored: bool) -> int:
    """A seed whose second draw mirrors (or does not)."""
    for seed in range(100):
        flag = torch.rand(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        if (float(flag[1]) > 0.5) == mirrored:
            return seed
    raise AssertionError("no such seed")


def test_augmentation_crops_and_keeps_labels_exact(nyu_root: Path) -> None:
    sample = _sample(nyu_root)
    options = AugmentOptions(crop=(8, 10))
    labels = set(sample["segment_semantic"].unique().tolist())
    depths = set(sample["depth_zbuffer"].unique().tolist())
    shapes = set()
    for seed in range(20):
        out = augment_sample(sample, options, seed, FILL)
        assert out["image"].shape == (3, 8, 10)
        assert out["segment_semantic"].shape == (8, 10)
        assert out["depth_zbuffer"].shape == (1, 8, 10) and out["normal"].shape == (3, 8, 10)
        # Nearest-neighbour targets: only values of the sample, or the padding.
        assert set(out["segment_semantic"].unique().tolist()) <= labels | {IGNORE_INDEX}
        assert set(out["depth_zbuffer"].unique().tolist()) <= depths | {0.0}
        assert out["segment_semantic"].dtype == torch.int64
        shapes.add(tuple(out["image"][0, 0, :3].tolist()))
    assert len(shapes) > 10  # the seeds give different crops and scales


def test_same_seed_same_augmentation(nyu_root: Path) -> None:
    sample = _sample(nyu_root)
    options = AugmentOptions(crop=8)
    first, again = (augment_sample(sample, options, 7, FILL) for _ in range(2))
    assert all(torch.equal(first[key], again[key]) for key in first)
    other = augment_sample(sample, options, 8, FILL)
    assert not torch.equal(first["image"], other["image"])


def test_padding_is_no_label(nyu_root: Path) -> None:
    sample = _sample(nyu_root)
    options = AugmentOptions(crop=(16, 20), scale=(1.0, 1.0), flip=False)
    out = augment_sample(sample, options, 0, FILL)
    # 12x16 padded to 16x20, centred: two rows above and below, two columns each side.
    assert torch.equal(out["image"][:, 2:14, 2:18], sample["image"])
    assert torch.allclose(out["image"][:, 0, 0], torch.tensor(FILL))
    assert (out["segment_semantic"][:2] == IGNORE_INDEX).all()
    assert (out["depth_zbuffer"][:, :, :2] == 0).all() and (out["normal"][:, -2:] == 0).all()
    assert torch.equal(out["segment_semantic"][2:14, 2:18], sample["segment_semantic"])


def test_mirroring_negates_normal_x(nyu_root: Path) -> None:
    sample = _sample(nyu_root)
    options = AugmentOptions(crop=SIZE, scale=(1.0, 1.0))
    mirrored = augment_sample(sample, options, _mirroring_seed(options, True), FILL)
    assert torch.equal(mirrored["image"], sample["image"].flip(-1))
    assert torch.equal(mirrored["segment_semantic"], sample["segment_semantic"].flip(-1))
    assert torch.equal(mirrored["normal"][0], -sample["normal"][0].flip(-1))
    assert torch.equal(mirrored["normal"][1:], sample["normal"][1:].flip(-1))
    kept = AugmentOptions(crop=SIZE, scale=(1.0, 1.0), flip_normals=False)
    as_stored = augment_sample(sample, kept, _mirroring_seed(kept, True), FILL)
    assert torch.equal(as_stored["normal"], sample["normal"].flip(-1))
    unmirrored = augment_sample(sample, options, _mirroring_seed(options, False), FILL)
    assert all(torch.equal(unmirrored[key], sample[key]) for key in sample)
    never = AugmentOptions(crop=SIZE, scale=(1.0, 1.0), flip=False)
    plain = augment_sample(sample, never, _mirroring_seed(never, True), FILL)
    assert torch.equal(plain["image"], sample["image"])


def test_only_the_train_split_augments_and_held_out_splits_take_the_crop(nyu_root: Path) -> None:
    options = {"augment": {"crop": 8}}
    train = build_dataset("nyuv2", "train", root=str(nyu_root), **options)
    val = build_dataset("nyuv2", "val", root=str(nyu_root), **options)
    assert train.augments and not val.augments
    assert train[0]["image"].shape == (3, *SIZE)  # stored size; cropped in sample()
    assert train.sample(0, seed=1)["image"].shape == (3, 8, 8)
    assert torch.equal(train.sample(0)["image"], train[0]["image"])  # no seed: as stored
    assert val[0]["image"].shape == (3, 8, 8)  # AdapMTL's evaluation at the crop size
    stored = build_dataset(
        "nyuv2", "val", root=str(nyu_root), augment={"crop": 8, "held_out": "stored"}
    )
    assert stored[0]["image"].shape == (3, *SIZE)


def test_taskonomy_augments_after_resizing(tmp_path: Path) -> None:
    root = taskonomy_folder(tmp_path / "taskonomy", size=SIZE)
    train = build_dataset("taskonomy", "train", root=str(root), resolution=10, augment={"crop": 8})
    test = build_dataset("taskonomy", "test", root=str(root), resolution=10, augment={"crop": 8})
    sample = train.sample(1, seed=5)
    assert {key: tuple(value.shape[-2:]) for key, value in sample.items()} == dict.fromkeys(
        sample, (8, 8)
    )
    assert train[1]["image"].shape == (3, 10, 10) and test[0]["image"].shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ({"crop": 0}, r"option 'augment\.crop' .*positive sizes"),
        ({"crop": 8, "scale": [1.5, 0.5]}, r"option 'augment\.scale' .*0 < low <= high"),
        ({"crop": 8, "mirror": True}, r"unknown data set 'nyuv2' option 'augment\.mirror'"),
    ],
)
def test_bad_augment_options(nyu_root: Path, augment: dict, message: str) -> None:
    with pytest.raises(DatasetOptionError, match=message):
        build_dataset("nyuv2", "train", root=str(nyu_root), augment=augment)


def _stream_batches(root: Path, workers: int, count: int) -> tuple[list, torch.Generator]:
    train = build_dataset("nyuv2", "train", root=str(root), augment={"crop": 8})
    generator = torch.Generator().manual_seed(4)
    options = LoaderOptions(num_workers=workers, prefetch_factor=2)
    stream = BatchStream(train, 3, generator, options, torch.device("cpu"))
    try:
        return [stream.next() for _ in range(count)], generator
    finally:
        stream.close()


def test_batches_are_the_same_with_and_without_workers(nyu_root: Path) -> None:
    inline, advanced = _stream_batches(nyu_root, 0, 5)
    loaded, untouched = _stream_batches(nyu_root, 2, 5)
    again, _ = _stream_batches(nyu_root, 2, 5)
    for one, two, three in zip(inline, loaded, again, strict=True):
        assert one.keys() == two.keys()
        assert all(torch.equal(one[key], two[key]) for key in one)
        assert all(torch.equal(two[key], three[key]) for key in one)
    assert inline[0]["image"].shape == (3, 3, 8, 8)
    assert not all(torch.equal(inline[0]["image"], batch["image"]) for batch in inline[1:])
    # Workers draw from a copy: the trial's own generator is left where it was.
    fresh = torch.Generator().manual_seed(4)
    assert torch.equal(untouched.get_state(), fresh.get_state())
    assert not torch.equal(advanced.get_state(), fresh.get_state())


def test_held_out_batches_with_workers_match(nyu_root: Path) -> None:
    val = build_dataset("nyuv2", "val", root=str(nyu_root))
    cpu = torch.device("cpu")
    inline = list(held_out_batches(val, 3, None, LoaderOptions(), cpu))
    loaded = list(held_out_batches(val, 3, None, LoaderOptions(num_workers=2), cpu))
    assert [b["image"].shape[0] for b in inline] == [3, 1] == [b["image"].shape[0] for b in loaded]
    for one, two in zip(inline, loaded, strict=True):
        assert all(torch.equal(one[key], two[key]) for key in one)
    assert len(list(held_out_batches(val, 3, 1, LoaderOptions(num_workers=2), cpu))) == 1
    first = next(held_out_batches(val, 3, None, LoaderOptions(), cpu, channels_last=True))
    assert first["image"].is_contiguous(memory_format=torch.channels_last)


def _nyu_trial(root: Path, workers: int) -> dict:
    return {
        "dataset": "nyuv2",
        "dataset_root": str(root),
        "dataset_options": {"augment": {"crop": 8}},
        "model": "resnet-tiny",
        "model_options": {"width": 8},
        "head_options": {"hidden": 8},
        "method": "magnitude",
        "method_params": {"target_sparsity": 0.5},
        "iterations": 6,
        "batch_size": 4,
        "eval_every": 3,
        "threads": 1,
        "seed": 2,
        "loader": {"num_workers": workers},
    }


def test_a_trial_gives_the_same_result_with_any_worker_count(nyu_root: Path) -> None:
    runs = {workers: run_trial(_nyu_trial(nyu_root, workers)) for workers in (0, 2)}
    repeat = run_trial(_nyu_trial(nyu_root, 2))
    assert runs[0].metrics == runs[2].metrics == repeat.metrics
    assert runs[0].sparsity == runs[2].sparsity
    assert [e.losses for e in runs[0].evaluations] == [e.losses for e in runs[2].evaluations]
    other_seed = run_trial({**_nyu_trial(nyu_root, 2), "seed": 3})
    assert other_seed.metrics != runs[2].metrics
