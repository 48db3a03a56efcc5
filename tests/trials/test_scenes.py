"""The built-in procedural scene data sets: ground truth, determinism, cache, contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import trials.data._scenes as scenes_module
from trials.data import (
    DATASETS,
    IGNORE_INDEX,
    SCENE_CLASS_NAMES,
    MultiTaskDataset,
    ScenesOptions,
    build_dataset,
    render_split,
)
from trials.data._cache import load_arrays, save_arrays
from trials.data._scenes_render import FIELD_OF_VIEW_DEG

SMALL: dict[str, Any] = {"resolution": 32, "num_train": 16, "num_val": 8, "num_test": 8}


def scene_camera_rays(resolution: int) -> np.ndarray:
    """Unit rays ``(3, H, W)`` through the pixel centres of the scenes' pinhole camera
    (x right, y down, z forward, ``FIELD_OF_VIEW_DEG`` across): ``depth * ray / ray_z``
    is a pixel's 3D point. Derived here, independently of the renderer's own rays."""
    focal = 0.5 * resolution / np.tan(np.radians(FIELD_OF_VIEW_DEG) / 2)
    centres = (np.arange(resolution) + 0.5 - resolution / 2) / focal
    y, x = np.meshgrid(centres, centres, indexing="ij")
    rays = np.stack([x, y, np.ones_like(x)])
    return (rays / np.linalg.norm(rays, axis=0)).astype(np.float32)


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PARETUNE_CACHE", str(folder))
    return folder


@pytest.fixture
def render_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts scenes passed to the renderer."""
    calls: list[int] = []
    original = scenes_module.render_scenes

    def counting(seeds, settings):  # type: ignore[no-untyped-def]
        calls.append(len(seeds))
        return original(seeds, settings)

    monkeypatch.setattr(scenes_module, "render_scenes", counting)
    return calls


def whole(dataset: MultiTaskDataset) -> dict[str, torch.Tensor]:
    return dataset.get_batch(list(range(len(dataset))))


def test_presets_are_registered_with_their_tasks_and_metric_style() -> None:
    nyu = build_dataset("scenes-nyu", "train", **SMALL)
    taskonomy = build_dataset("scenes-taskonomy", "train", **SMALL)
    assert nyu.tasks == ("segment_semantic", "depth_zbuffer", "normal")
    assert nyu.metric_style == "nyu"
    assert taskonomy.tasks == (
        "segment_semantic",
        "depth_zbuffer",
        "normal",
        "keypoints2d",
        "edge_texture",
    )
    assert taskonomy.metric_style == "taskonomy"
    assert {"scenes-nyu", "scenes-taskonomy"} <= set(DATASETS.names())
    assert len(nyu) == 16 and len(build_dataset("scenes-nyu", "val", **SMALL)) == 8


def test_sample_contract_shapes_and_dtypes() -> None:
    dataset = build_dataset("scenes-taskonomy", "test", **SMALL)
    sample = dataset[0]
    assert set(sample) == {"image", *dataset.tasks}
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["segment_semantic"].shape == (32, 32)
    assert sample["segment_semantic"].dtype == torch.int64
    for task in ("depth_zbuffer", "keypoints2d", "edge_texture"):
        assert sample[task].shape == (1, 32, 32) and sample[task].dtype == torch.float32
    assert sample["normal"].shape == (3, 32, 32) and sample["normal"].dtype == torch.float32


def test_same_configuration_gives_identical_arrays() -> None:
    options = ScenesOptions(**SMALL, seed=3)
    first, second = render_split(options, "train"), render_split(options, "train")
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_splits_and_seeds_give_different_scenes() -> None:
    options = ScenesOptions(**SMALL)
    train = render_split(options, "train")["image"]
    val = render_split(options, "val")["image"]
    other_seed = render_split(ScenesOptions(**SMALL, seed=1), "train")["image"]
    flat_train = train.reshape(len(train), -1)
    for image in val.reshape(len(val), -1):
        assert not (flat_train == image).all(axis=1).any()
    assert not (train == other_seed).all(axis=(1, 2, 3)).any()


def test_growing_a_split_keeps_its_first_scenes() -> None:
    small = render_split(ScenesOptions(**{**SMALL, "num_train": 5}), "train")
    large = render_split(ScenesOptions(**SMALL), "train")
    for key in small:
        np.testing.assert_array_equal(small[key], large[key][:5])


def test_depth_normals_and_labels_agree_on_valid_pixels() -> None:
    batch = whole(build_dataset("scenes-nyu", "train", **SMALL))
    depth = batch["depth_zbuffer"][:, 0]
    valid = depth > 0
    labels = batch["segment_semantic"]
    normal = batch["normal"]
    assert valid.float().mean() > 0.5
    assert torch.equal(~valid, labels == IGNORE_INDEX)  # sky: no depth, no label
    length = normal.norm(dim=1)
    assert torch.allclose(length[valid], torch.ones(()), atol=1e-4)
    assert torch.all(length[~valid] == 0)
    assert depth[valid].min() > 0.5 and depth.max() < 20.0
    # Every visible surface faces the camera.
    rays = torch.from_numpy(scene_camera_rays(32)).view(1, 3, 32, 32)
    assert ((normal * rays).sum(dim=1)[valid] < 0).all()


def test_floor_points_lie_on_one_plane_with_the_floor_normal() -> None:
    batch = whole(build_dataset("scenes-nyu", "train", **SMALL))
    rays = torch.from_numpy(scene_camera_rays(32)).double().view(3, 32, 32)
    checked = 0
    for labels, depth, normal in zip(
        batch["segment_semantic"], batch["depth_zbuffer"], batch["normal"], strict=True
    ):
        floor = labels == 0
        if floor.sum() < 10:
            continue
        points = (depth[0].double() * rays / rays[2])[:, floor]  # camera-frame 3D points
        vectors = normal[:, floor].double()
        assert (vectors - vectors[:, :1]).abs().max() < 2e-3  # one normal ...
        offsets = (vectors.mean(dim=1, keepdim=True) * points).sum(dim=0)
        assert offsets.std() < 2e-3 * offsets.abs().mean()  # ... and one plane n . p = d
        checked += 1
    assert checked >= 8


def test_normals_agree_with_the_surface_implied_by_depth() -> None:
    """Normals from finite differences of back-projected depth match the analytic ones."""
    batch = whole(build_dataset("scenes-taskonomy", "train", **{**SMALL, "resolution": 48}))
    rays = torch.from_numpy(scene_camera_rays(48)).double()
    angles, flat = [], []
    for depth, labels, edges, normal in zip(
        batch["depth_zbuffer"],
        batch["segment_semantic"],
        batch["edge_texture"],
        batch["normal"],
        strict=True,
    ):
        points = depth[0].double() * rays / rays[2]
        dx = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
        dy = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
        implied = torch.linalg.cross(dx, dy, dim=0)
        implied = implied / implied.norm(dim=0).clamp_min(1e-12)
        inner = labels[1:-1, 1:-1]
        # Pixels whose four neighbours lie on the same surface, away from any edge.
        ok = inner != IGNORE_INDEX
        for shifted in (labels[1:-1, 2:], labels[1:-1, :-2], labels[2:, 1:-1], labels[:-2, 1:-1]):
            ok &= shifted == inner
        e = edges[0]
        for shifted in (e[1:-1, 1:-1], e[1:-1, 2:], e[1:-1, :-2], e[2:, 1:-1], e[:-2, 1:-1]):
            ok &= shifted == 0
        cos = (implied * normal[:, 1:-1, 1:-1].double()).sum(dim=0).abs().clamp(max=1)
        angle = torch.rad2deg(torch.acos(cos))
        angles.append(angle[ok])
        flat.append(angle[ok & ((inner == 0) | (inner == 1) | (inner == 3))])  # planes, boxes
    curved_and_flat, planar = torch.cat(angles), torch.cat(flat)
    assert len(planar) > 10_000 and planar.max() < 0.5
    assert curved_and_flat.median() < 1.0 and curved_and_flat.quantile(0.99) < 10.0


def test_at_least_six_classes_occur_and_labels_stay_in_range() -> None:
    for num_classes in (6, 7, 9):
        dataset = build_dataset(
            "scenes-nyu", "train", **{**SMALL, "num_train": 48}, num_classes=num_classes
        )
        labels = whole(dataset)["segment_semantic"]
        present = set(labels.unique().tolist()) - {IGNORE_INDEX}
        assert present == set(range(num_classes))
        assert dataset.num_classes == num_classes
        assert dataset.class_names == SCENE_CLASS_NAMES[:num_classes]


def test_object_count_range_is_respected() -> None:
    plain = whole(build_dataset("scenes-nyu", "train", **SMALL, min_objects=0, max_objects=1))
    busy = whole(build_dataset("scenes-nyu", "train", **SMALL, min_objects=8, max_objects=8))
    object_pixels = lambda batch: (batch["segment_semantic"].clamp(max=254) >= 2).float().mean()  # noqa: E731
    assert object_pixels(busy) > 3 * object_pixels(plain)


def test_colour_alone_does_not_determine_the_class() -> None:
    batch = whole(build_dataset("scenes-nyu", "train", **{**SMALL, "num_train": 64}))
    features, classes = [], []
    for image, labels in zip(batch["image"], batch["segment_semantic"], strict=True):
        for label in labels.unique().tolist():
            region = labels == label
            if label != IGNORE_INDEX and region.sum() >= 4:
                features.append(image[:, region].mean(dim=1))
                classes.append(label)
    feats, labels = torch.stack(features), torch.tensor(classes)
    for label in labels.unique():
        # The same class looks very different from one image to the next ...
        assert feats[labels == label].std(dim=0).min() > 0.3
    # ... so a nearest-mean-colour classifier is no better than guessing the commonest.
    half = len(labels) // 2
    centroids = torch.stack([feats[:half][labels[:half] == c].mean(0) for c in range(7)])
    predicted = torch.cdist(feats[half:], centroids).argmin(dim=1)
    accuracy = (predicted == labels[half:]).float().mean()
    majority = labels[half:].bincount().max() / (len(labels) - half)
    assert accuracy < majority + 0.1


def test_image_is_normalised_with_fixed_constants() -> None:
    image = whole(build_dataset("scenes-nyu", "train", **{**SMALL, "num_train": 32}))["image"]
    assert abs(image.mean()) < 0.25
    assert 0.7 < image.std() < 1.3


def test_keypoints_and_edges_are_in_range_and_present() -> None:
    batch = whole(build_dataset("scenes-taskonomy", "train", **SMALL))
    keypoints, edges = batch["keypoints2d"], batch["edge_texture"]
    assert keypoints.min() >= 0 and keypoints.max() <= 1
    assert keypoints.amax(dim=(1, 2, 3)).gt(0.5).float().mean() > 0.9  # blobs of peak 1
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    # Edges mark where the surface changes: no edge inside uniform label runs.
    labels, marked = batch["segment_semantic"], edges[:, 0] > 0
    for axis in (1, 2):
        changes = labels.diff(dim=axis) != 0
        first, second = marked.narrow(axis, 0, 31), marked.narrow(axis, 1, 31)
        assert (first | second)[changes].all()
    assert edges.mean() < 0.3


def test_get_batch_matches_stacked_getitem() -> None:
    dataset = build_dataset("scenes-taskonomy", "val", **SMALL)
    indices = [5, 0, 7, 5]
    batch = dataset.get_batch(indices)
    stacked = {key: torch.stack([dataset[i][key] for i in indices]) for key in batch}
    for key in batch:
        assert torch.equal(batch[key], stacked[key]), key
    assert torch.equal(dataset.get_batch(torch.tensor(indices))["image"], batch["image"])
    with pytest.raises(IndexError, match="out of range"):
        dataset[8]


def test_cache_hit_returns_identical_data_without_rendering(
    cache_folder: Path, render_calls: list[int]
) -> None:
    first = whole(build_dataset("scenes-taskonomy", "train", **SMALL))
    assert sum(render_calls) == 16
    files = list((cache_folder / "scenes").glob("train-*.npz"))
    assert len(files) == 1
    again = whole(build_dataset("scenes-nyu", "train", **SMALL))  # same arrays, other preset
    assert sum(render_calls) == 16
    for key in again:
        assert torch.equal(first[key], again[key])
    assert not list((cache_folder / "scenes").glob(".*.tmp"))  # no temporary left behind


def test_cache_key_covers_the_configuration(cache_folder: Path, render_calls: list[int]) -> None:
    build_dataset("scenes-nyu", "train", **SMALL)
    build_dataset("scenes-nyu", "train", **SMALL, num_classes=8)
    build_dataset("scenes-nyu", "train", **SMALL, seed=5)
    assert len(list((cache_folder / "scenes").glob("train-*.npz"))) == 3
    assert sum(render_calls) == 48


def test_cache_off_writes_nothing(cache_folder: Path, render_calls: list[int]) -> None:
    build_dataset("scenes-nyu", "train", **SMALL, cache=False)
    build_dataset("scenes-nyu", "train", **SMALL, cache=False)
    assert not cache_folder.exists()
    assert sum(render_calls) == 32


def test_root_overrides_the_cache_folder(tmp_path: Path, cache_folder: Path) -> None:
    build_dataset("scenes-nyu", "val", root=str(tmp_path / "elsewhere"), **SMALL)
    assert list((tmp_path / "elsewhere" / "scenes").glob("val-*.npz"))
    assert not cache_folder.exists()


def test_corrupt_cache_file_is_rendered_again(cache_folder: Path, render_calls: list[int]) -> None:
    expected = whole(build_dataset("scenes-nyu", "val", **SMALL))
    (path,) = (cache_folder / "scenes").glob("val-*.npz")
    path.write_bytes(b"not a zip file")
    again = whole(build_dataset("scenes-nyu", "val", **SMALL))
    assert sum(render_calls) == 16
    assert torch.equal(expected["depth_zbuffer"], again["depth_zbuffer"])
    assert load_arrays(path) is not None  # rewritten


def test_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "arrays.npz"
    save_arrays(path, {"a": np.arange(3)})

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_arrays(path, {"a": np.arange(5)})
    stored = load_arrays(path)
    assert stored is not None and stored["a"].tolist() == [0, 1, 2]  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match="unknown data set 'scenes-nyu' option 'num_object'"):
        build_dataset("scenes-nyu", "train", num_object=3)
    with pytest.raises(ValueError, match="did you mean 'num_classes'"):
        build_dataset("scenes-nyu", "train", num_clases=7)


def test_bad_option_values_are_explained() -> None:
    with pytest.raises(
        ValueError, match="option 'num_classes' should be greater than or equal to 6"
    ):
        build_dataset("scenes-nyu", "train", num_classes=5)
    with pytest.raises(ValueError, match=r"min_objects \(4\) must not exceed max_objects \(2\)"):
        build_dataset("scenes-nyu", "train", min_objects=4, max_objects=2)
    with pytest.raises(ValueError, match="unknown data set 'scenes-nyu' task 'keypoints2d'"):
        build_dataset("scenes-nyu", "train", tasks=["keypoints2d"])


def test_task_subset_keeps_only_those_targets() -> None:
    dataset = build_dataset("scenes-taskonomy", "train", **SMALL, tasks=["normal", "edge_texture"])
    assert dataset.tasks == ("normal", "edge_texture")
    assert dataset.num_classes == 0
    assert set(dataset[0]) == {"image", "normal", "edge_texture"}
