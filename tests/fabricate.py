"""Small real-format files written to disk: NYUv2 ``.npy`` folders and Tiny-Taskonomy PNG
buildings, exactly in the layouts the loaders read (``trials.data._nyuv2`` and
``trials.data._taskonomy``), and torchvision's ImageNet ResNet-34 state dict (random values,
its key names and shapes). Used by the loader and initialisation tests, the example-config
and ``paretune check`` tests, and the loader benchmark."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

#: Default frame size of fabricated samples (small: fast to write and to read).
H, W = 6, 8


def write_nyuv2(
    root: Path, split: str, count: int, seed: int = 0, size: tuple[int, int] = (H, W)
) -> None:
    """``count`` samples of NYUv2 split ``split`` under ``root`` (MTAN's ``.npy`` layout:
    float images in [0, 1], 13-class labels with -1 and 255 ignored, depth with an invalid
    pixel, unit normals with an invalid pixel)."""
    height, width = size
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
        label = rng.integers(0, 13, (height, width)).astype(np.float32)
        label[0, 0] = -1  # MTAN's ignore value
        label[0, 1] = 255
        depth = rng.uniform(0.5, 8.0, (height, width)).astype(np.float32)
        depth[1, 1] = 0.0  # invalid
        normal = rng.normal(size=(height, width, 3)).astype(np.float32)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        normal[1, 1] = 0.0
        for name, array in (
            ("image", image),
            ("label", label),
            ("depth", depth),
            ("normal", normal),
        ):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{i}.npy", array)


def nyuv2_folder(root: Path, train: int = 12, val: int = 3, size: tuple[int, int] = (H, W)) -> Path:
    """A whole NYUv2 folder (train and val splits) at ``root``; returns ``root``."""
    write_nyuv2(root, "train", train, size=size)
    write_nyuv2(root, "val", val, seed=1, size=size)
    return root


def write_frame(building: Path, frame: str, seed: int, size: tuple[int, int] = (H, W)) -> None:
    """One Tiny-Taskonomy frame (rgb and the five tasks' PNGs) in ``building``."""
    height, width = size
    rng = np.random.default_rng(seed)
    files = {
        "rgb": Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)),
        "segment_semantic": Image.fromarray(rng.integers(0, 17, (height, width), dtype=np.uint8)),
        "depth_zbuffer": Image.fromarray(rng.integers(512, 4096, (height, width), dtype=np.uint16)),
        "normal": Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)),
        "keypoints2d": Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16)),
        "edge_texture": Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16)),
    }
    for task, image in files.items():
        folder = building / task
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{frame}_domain_{task}.png")


def taskonomy_folder(
    root: Path,
    buildings: tuple[str, ...] = ("allensville", "beechwood", "coffeen"),
    size: tuple[int, int] = (H, W),
) -> Path:
    """A Tiny-Taskonomy folder at ``root``: building ``b`` holds ``3 + b`` frames (the
    default 80/10/10 split then puts one building in each split); returns ``root``."""
    for b, building in enumerate(buildings):
        for view in range(3 + b):
            write_frame(root / building, f"point_{view}_view_0", seed=10 * b + view, size=size)
    return root


def batch_norm_state(state: OrderedDict, name: str, channels: int) -> None:
    """The tensors of a torchvision ``BatchNorm2d`` called ``name``, added to ``state``."""
    for key in ("weight", "bias", "running_mean", "running_var"):
        state[f"{name}.{key}"] = torch.randn(channels)
    state[f"{name}.num_batches_tracked"] = torch.tensor(0)


def torchvision_resnet34() -> OrderedDict:
    """The keys and shapes of ``torchvision.models.resnet34().state_dict()`` (BasicBlock
    layers [3, 4, 6, 3]; ``downsample`` on the first block of layers 2-4; ``fc``)."""
    state: OrderedDict = OrderedDict()
    state["conv1.weight"] = torch.randn(64, 3, 7, 7)
    batch_norm_state(state, "bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), 1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            state[f"{prefix}.conv1.weight"] = torch.randn(planes, inplanes, 3, 3)
            batch_norm_state(state, f"{prefix}.bn1", planes)
            state[f"{prefix}.conv2.weight"] = torch.randn(planes, planes, 3, 3)
            batch_norm_state(state, f"{prefix}.bn2", planes)
            if block == 0 and layer > 1:
                state[f"{prefix}.downsample.0.weight"] = torch.randn(planes, inplanes, 1, 1)
                batch_norm_state(state, f"{prefix}.downsample.1", planes)
            inplanes = planes
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    return state
