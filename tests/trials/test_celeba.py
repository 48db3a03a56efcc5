"""The CelebA loader on a tiny folder fabricated in the distributed layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trials.data import CELEBA_DEFAULT_ATTRIBUTES, DatasetError, DatasetOptionError, build_dataset
from trials.tasks import build_task

NAMES = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Smiling", "Wearing_Hat"]
#: image -> (partition, attribute values)
ROWS = {
    "000001.jpg": (0, [1, -1, 1, 1, -1]),
    "000002.jpg": (0, [-1, 1, -1, -1, 1]),
    "000003.jpg": (0, [-1, -1, 1, 1, 1]),
    "000004.jpg": (1, [1, 1, -1, -1, -1]),
    "000005.jpg": (2, [-1, -1, -1, 1, 1]),
}


def fabricate(root: Path) -> Path:
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ROWS:
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name, quality=95)
    lines = [str(len(ROWS)), " ".join(NAMES)]
    lines += [
        f"{name}  " + " ".join(f"{v:2d}" for v in values) for name, (_, values) in ROWS.items()
    ]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [f"{name} {split}" for name, (split, _) in ROWS.items()]
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


def test_splits_labels_and_images(tmp_path: Path) -> None:
    root = fabricate(tmp_path)
    options = {"attributes": ["Wearing_Hat", "Blond_Hair"], "resolution": 32}
    train = build_dataset("celeba", "train", str(root), **options)
    assert len(train) == 3 and train.tasks == ("Wearing_Hat", "Blond_Hair")
    assert train.metric_style == "attributes"
    batch = train.get_batch([0, 1, 2])
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["Wearing_Hat"][:, 0].tolist() == [0.0, 1.0, 1.0]
    assert batch["Blond_Hair"][:, 0].tolist() == [1.0, 0.0, 1.0]
    val = build_dataset("celeba", "val", str(root), **options)
    test = build_dataset("celeba", "test", str(root), **options)
    assert (len(val), len(test)) == (1, 1)
    assert val[0]["Wearing_Hat"].tolist() == [0.0] and test[0]["Wearing_Hat"].tolist() == [1.0]
    full = build_dataset("celeba", "val", str(root), attributes=["Smiling"], resolution=None)
    assert full[0]["image"].shape == (3, 218, 178)
    subset = build_dataset("celeba", "train", str(root), attributes=NAMES, tasks=["Smiling"])
    assert subset.tasks == ("Smiling",)
    task = build_task("Smiling", style=subset.metric_style)
    assert task.loss(torch.zeros(3, 1, 4, 4), subset.get_batch([0, 1, 2])["Smiling"]) > 0


def test_default_attributes_are_the_nine_of_the_grouping_papers() -> None:
    assert len(CELEBA_DEFAULT_ATTRIBUTES) == 9
    assert {"Goatee", "Mustache", "No_Beard", "Wearing_Hat"} <= set(CELEBA_DEFAULT_ATTRIBUTES)


def test_missing_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="needs its folder"):
        build_dataset("celeba", "train", None)
    with pytest.raises(DatasetError, match=r"CelebA folder .*nowhere does not exist"):
        build_dataset("celeba", "train", str(tmp_path / "nowhere"))
    root = fabricate(tmp_path / "a")
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(DatasetError, match=r"cannot read the CelebA partition file .*list_eval"):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"])
    root = fabricate(tmp_path / "b")
    (root / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"cannot read CelebA image .*000001.jpg"):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"])
    root = tmp_path / "c"
    root.mkdir()
    with pytest.raises(
        DatasetError, match=r"CelebA image folder .*img_align_celeba does not exist"
    ):
        build_dataset("celeba", "train", str(root))


def test_unknown_attributes_suggest_a_name(tmp_path: Path) -> None:
    root = fabricate(tmp_path)
    with pytest.raises(
        DatasetOptionError, match=r"unknown CelebA attribute 'Smilng'.*did you mean 'Smiling'"
    ):
        build_dataset("celeba", "train", str(root), attributes=["Smilng"])
    with pytest.raises(DatasetOptionError, match="unknown CelebA attribute 'Brown_Hair'"):
        build_dataset("celeba", "train", str(root))  # the defaults need the full 40 names
    with pytest.raises(DatasetOptionError, match=r"task 'Black_Hair'; choose one of: Smiling"):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"], tasks=["Black_Hair"])
    with pytest.raises(DatasetOptionError, match=r"option 'atributes'.*did you mean 'attributes'"):
        build_dataset("celeba", "train", str(root), atributes=["Smiling"])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda lines: ["five", *lines[1:]], r"line 1 must be the number of images but is 'five'"),
        (lambda lines: ["6", *lines[1:]], "announces 6 images on line 1 but lists 5"),
        (
            lambda lines: [*lines[:3], "000002.jpg 1 -1", *lines[4:]],
            r"line 4 must hold an image name and 5 values",
        ),
        (
            lambda lines: [*lines[:4], lines[4].replace("-1", "0", 1), *lines[5:]],
            "line 5 has values other than 1 and -1",
        ),
    ],
)
def test_malformed_attribute_lines_name_the_line(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    root = fabricate(tmp_path)
    path = root / "list_attr_celeba.txt"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(DatasetError, match=match):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"])


def test_malformed_partition_lines(tmp_path: Path) -> None:
    root = fabricate(tmp_path)
    path = root / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000003.jpg 0", "000003.jpg 7"))
    with pytest.raises(
        DatasetError, match=r"list_eval_partition.txt line 3 must be an image name and 0, 1 or 2"
    ):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"])
    path.write_text("000001.jpg 0\n")
    with pytest.raises(DatasetError, match=r"has no partition for image 000002\.jpg"):
        build_dataset("celeba", "train", str(root), attributes=["Smiling"])
