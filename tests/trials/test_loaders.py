"""Real-format loaders (NYUv2 ``.npy`` layout, Tiny-Taskonomy PNGs) on fabricated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.fabricate import H, W, nyuv2_folder, taskonomy_folder, write_frame, write_nyuv2
from trials.data import IGNORE_INDEX, DatasetError, build_dataset


@pytest.fixture
def nyu_root(tmp_path: Path) -> Path:
    return nyuv2_folder(tmp_path / "nyuv2")


def test_nyuv2_loads_shapes_dtypes_and_values(nyu_root: Path) -> None:
    dataset = build_dataset("nyuv2", "train", root=str(nyu_root))
    assert len(dataset) == 12
    assert dataset.tasks == ("segment_semantic", "depth_zbuffer", "normal")
    assert dataset.metric_style == "nyu" and dataset.num_classes == 13
    sample = dataset[4]
    assert sample["image"].shape == (3, H, W) and sample["image"].dtype == torch.float32
    assert sample["segment_semantic"].shape == (H, W)
    assert sample["segment_semantic"].dtype == torch.int64
    assert sample["depth_zbuffer"].shape == (1, H, W)
    assert sample["normal"].shape == (3, H, W)
    raw_image = np.load(nyu_root / "train" / "image" / "4.npy")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (raw_image - mean) / std
    np.testing.assert_allclose(sample["image"].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    raw_label = np.load(nyu_root / "train" / "label" / "4.npy")
    labels = sample["segment_semantic"]
    assert labels[0, 0] == IGNORE_INDEX and labels[0, 1] == IGNORE_INDEX  # -1 and 255
    assert torch.equal(labels[1:], torch.from_numpy(raw_label[1:]).long())
    raw_depth = np.load(nyu_root / "train" / "depth" / "4.npy")
    assert torch.equal(sample["depth_zbuffer"][0], torch.from_numpy(raw_depth))
    length = sample["normal"].norm(dim=0)
    assert length[1, 1] == 0 and torch.allclose(length[length > 0], torch.ones(()), atol=1e-5)


def test_nyuv2_test_split_reads_val(nyu_root: Path) -> None:
    test = build_dataset("nyuv2", "test", root=str(nyu_root))
    val = build_dataset("nyuv2", "val", root=str(nyu_root))
    assert len(test) == len(val) == 3
    assert torch.equal(test[2]["image"], val[2]["image"])


def test_nyuv2_accepts_other_layouts(tmp_path: Path) -> None:
    root = tmp_path / "nyu"
    write_nyuv2(root, "train", 2)
    folder = root / "train"
    image = np.load(folder / "image" / "0.npy")
    np.save(folder / "image" / "0.npy", (image * 255).astype(np.uint8).transpose(2, 0, 1))
    np.save(folder / "depth" / "0.npy", np.load(folder / "depth" / "0.npy")[..., None])
    np.save(folder / "label" / "0.npy", np.load(folder / "label" / "0.npy").astype(np.int64))
    sample = build_dataset("nyuv2", "train", root=str(root))[0]
    assert sample["image"].shape == (3, H, W)
    assert sample["depth_zbuffer"].shape == (1, H, W)
    assert sample["segment_semantic"][0, 0] == IGNORE_INDEX


def test_nyuv2_forty_classes_and_label_range(tmp_path: Path) -> None:
    root = tmp_path / "nyu"
    write_nyuv2(root, "train", 2)
    label = np.load(root / "train" / "label" / "1.npy")
    label[2, 2] = 39
    np.save(root / "train" / "label" / "1.npy", label)
    assert (
        build_dataset("nyuv2", "train", root=str(root), num_classes=40)[1]["segment_semantic"][2, 2]
        == 39
    )
    thirteen = build_dataset("nyuv2", "train", root=str(root))
    with pytest.raises(DatasetError, match=r"labels in .*1\.npy must be 0\.\.12 or 255/-1 .* 39"):
        thirteen[1]
    with pytest.raises(ValueError, match="option 'num_classes'"):
        build_dataset("nyuv2", "train", root=str(root), num_classes=20)


def test_nyuv2_task_subset_and_resize(nyu_root: Path) -> None:
    (nyu_root / "train" / "depth").rename(nyu_root / "train" / "unused")
    dataset = build_dataset(
        "nyuv2", "train", root=str(nyu_root), tasks=["normal"], resolution=(12, 16)
    )
    assert dataset.tasks == ("normal",) and dataset.num_classes == 0
    batch = dataset.get_batch([0, 1, 2])
    assert set(batch) == {"image", "normal"}
    assert batch["image"].shape == (3, 3, 12, 16) and batch["normal"].shape == (3, 3, 12, 16)


def test_nyuv2_missing_root_or_folder(nyu_root: Path) -> None:
    with pytest.raises(DatasetError, match=r"NYUv2 folder .*nowhere does not exist"):
        build_dataset("nyuv2", "train", root=str(nyu_root / "nowhere"))
    for path in (nyu_root / "train" / "depth").iterdir():
        path.unlink()
    (nyu_root / "train" / "depth").rmdir()
    with pytest.raises(DatasetError, match=r"^NYUv2 folder .*train/depth does not exist$"):
        build_dataset("nyuv2", "train", root=str(nyu_root))
    with pytest.raises(DatasetError, match="needs its folder"):
        build_dataset("nyuv2", "train")


def test_nyuv2_file_count_mismatch(nyu_root: Path) -> None:
    (nyu_root / "train" / "label" / "11.npy").unlink()
    with pytest.raises(DatasetError, match=r"expected 12 files in .*train/label .*found 11"):
        build_dataset("nyuv2", "train", root=str(nyu_root))


def test_nyuv2_misnamed_file(nyu_root: Path) -> None:
    folder = nyu_root / "train" / "normal"
    (folder / "3.npy").rename(folder / "30.npy")
    with pytest.raises(DatasetError, match=r"train/normal has no file 3\.npy"):
        build_dataset("nyuv2", "train", root=str(nyu_root))


def test_nyuv2_malformed_arrays(nyu_root: Path) -> None:
    np.save(nyu_root / "train" / "image" / "0.npy", np.full((H, W, 3), 200.0, dtype=np.float32))
    with pytest.raises(DatasetError, match=r"image values must lie in \[0, 1\].*0\.npy"):
        build_dataset("nyuv2", "train", root=str(nyu_root))
    np.save(nyu_root / "train" / "image" / "0.npy", np.zeros((H, W, 4), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"0\.npy should hold a HxWx3 or 3xHxW array"):
        build_dataset("nyuv2", "train", root=str(nyu_root))
    np.save(nyu_root / "train" / "image" / "0.npy", np.zeros((H, W, 3), dtype=np.float32))
    np.save(nyu_root / "train" / "depth" / "0.npy", np.zeros((H + 1, W), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"depth/0\.npy is \(7, 8\) pixels but its image"):
        build_dataset("nyuv2", "train", root=str(nyu_root))


def test_nyuv2_unknown_option(nyu_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'nyuv2' option 'resolutoin'"):
        build_dataset("nyuv2", "train", root=str(nyu_root), resolutoin=32)


# ----------------------------------------------------------------------- Taskonomy

TASKONOMY_TASKS = ("segment_semantic", "depth_zbuffer", "normal", "keypoints2d", "edge_texture")


@pytest.fixture
def taskonomy_root(tmp_path: Path) -> Path:
    return taskonomy_folder(tmp_path / "taskonomy")


def test_taskonomy_default_split_is_by_building(taskonomy_root: Path) -> None:
    train = build_dataset("taskonomy", "train", root=str(taskonomy_root))
    val = build_dataset("taskonomy", "val", root=str(taskonomy_root))
    test = build_dataset("taskonomy", "test", root=str(taskonomy_root))
    assert (train.buildings, val.buildings, test.buildings) == (
        ("allensville",),
        ("beechwood",),
        ("coffeen",),
    )
    assert (len(train), len(val), len(test)) == (3, 4, 5)
    assert train.tasks == TASKONOMY_TASKS and train.metric_style == "taskonomy"


def test_taskonomy_decodes_every_encoding(taskonomy_root: Path) -> None:
    building = taskonomy_root / "beechwood"
    frame = "point_1_view_0"
    seg = np.array([[0, 3, 16, 17, 200, 5, 1, 2]] * H, dtype=np.uint8)
    Image.fromarray(seg).save(
        building / "segment_semantic" / f"{frame}_domain_segment_semantic.png"
    )
    depth = np.full((H, W), 1024, dtype=np.uint16)
    depth[0, 0] = 65535
    Image.fromarray(depth).save(building / "depth_zbuffer" / f"{frame}_domain_depth_zbuffer.png")
    normal = np.zeros((H, W, 3), dtype=np.uint8)
    normal[...] = (128, 128, 255)
    normal[0, 0] = (128, 128, 128)  # background grey: no normal
    Image.fromarray(normal).save(building / "normal" / f"{frame}_domain_normal.png")
    keypoints = np.zeros((H, W), dtype=np.uint16)
    keypoints[2, 3] = 65535
    Image.fromarray(keypoints).save(building / "keypoints2d" / f"{frame}_domain_keypoints2d.png")

    dataset = build_dataset("taskonomy", "train", root=str(taskonomy_root), buildings=["beechwood"])
    sample = dataset[1]  # frames sorted: point_0, point_1, ...
    assert sample["image"].shape == (3, H, W) and sample["image"].dtype == torch.float32
    labels = sample["segment_semantic"]
    assert labels.dtype == torch.int64
    assert labels[0].tolist() == [0, 3, 16, IGNORE_INDEX, IGNORE_INDEX, 5, 1, 2]
    depth = sample["depth_zbuffer"]
    assert depth.shape == (1, H, W) and depth[0, 0, 0] == 0 and depth[0, 1, 1] == 2.0
    n = sample["normal"]
    assert n.shape == (3, H, W)
    assert torch.all(n[:, 0, 0] == 0)
    assert torch.allclose(n[:, 3, 3], torch.tensor([0.0, 0.0, 1.0]), atol=1e-2)
    assert torch.allclose(n[:, 1:].norm(dim=0), torch.ones(()), atol=1e-5)
    k = sample["keypoints2d"]
    assert k.shape == (1, H, W) and k[0, 2, 3] == 1.0 and k.sum() == 1.0
    edges = sample["edge_texture"]
    assert edges.dtype == torch.float32 and edges.min() >= 0 and edges.max() <= 1


def test_taskonomy_num_classes_tasks_and_resolution(taskonomy_root: Path) -> None:
    dataset = build_dataset(
        "taskonomy",
        "test",
        root=str(taskonomy_root),
        num_classes=4,
        tasks=["edge_texture", "segment_semantic"],
        resolution=16,
    )
    assert dataset.tasks == ("segment_semantic", "edge_texture") and dataset.num_classes == 4
    batch = dataset.get_batch([0, 4])
    assert batch["image"].shape == (2, 3, 16, 16)
    assert batch["segment_semantic"].shape == (2, 16, 16)
    assert set(batch["segment_semantic"].unique().tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}


def test_taskonomy_missing_task_folder(taskonomy_root: Path) -> None:
    folder = taskonomy_root / "coffeen" / "normal"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(DatasetError, match=r"^building .*coffeen has no normal folder$"):
        build_dataset("taskonomy", "test", root=str(taskonomy_root))
    # Not needed when normals are not asked for.
    assert (
        len(build_dataset("taskonomy", "test", root=str(taskonomy_root), tasks=["depth_zbuffer"]))
        == 5
    )


def test_taskonomy_file_count_mismatch(taskonomy_root: Path) -> None:
    folder = taskonomy_root / "allensville" / "depth_zbuffer"
    (folder / "point_2_view_0_domain_depth_zbuffer.png").unlink()
    with pytest.raises(
        DatasetError, match=r"expected 3 files in .*allensville/depth_zbuffer.*found 2"
    ):
        build_dataset("taskonomy", "train", root=str(taskonomy_root))


def test_taskonomy_frames_are_matched_by_name(taskonomy_root: Path) -> None:
    rgb = taskonomy_root / "allensville" / "rgb"
    (rgb / "point_2_view_0_domain_rgb.png").rename(rgb / "point_7_view_0_domain_rgb.png")
    with pytest.raises(
        DatasetError, match=r"allensville/segment_semantic has no file for frame 'point_7_view_0'"
    ):
        build_dataset("taskonomy", "train", root=str(taskonomy_root))


def test_taskonomy_too_few_buildings_or_unknown_building(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    write_frame(root / "only", "point_0_view_0", seed=0)
    with pytest.raises(DatasetError, match=r"has 1 building\(s\) .*pass buildings=\[\.\.\.\]"):
        build_dataset("taskonomy", "train", root=str(root))
    assert len(build_dataset("taskonomy", "train", root=str(root), buildings=["only"])) == 1
    with pytest.raises(DatasetError, match=r"^building .*tiny/elsewhere does not exist$"):
        build_dataset("taskonomy", "val", root=str(root), buildings=["elsewhere"])
    with pytest.raises(DatasetError, match=r"^Taskonomy folder .*missing does not exist$"):
        build_dataset("taskonomy", "val", root=str(tmp_path / "missing"))


def test_taskonomy_wrong_bit_depth(taskonomy_root: Path) -> None:
    path = (
        taskonomy_root / "allensville" / "depth_zbuffer" / "point_0_view_0_domain_depth_zbuffer.png"
    )
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(path)
    with pytest.raises(
        DatasetError, match=r"point_0_view_0_domain_depth_zbuffer\.png should be a 16-bit PNG"
    ):
        build_dataset("taskonomy", "train", root=str(taskonomy_root))


def test_taskonomy_unknown_option_and_task(taskonomy_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'taskonomy' option 'building'"):
        build_dataset("taskonomy", "train", root=str(taskonomy_root), building=["x"])
    with pytest.raises(ValueError, match="unknown data set 'taskonomy' task 'depth'"):
        build_dataset("taskonomy", "train", root=str(taskonomy_root), tasks=["depth"])
