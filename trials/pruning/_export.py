"""Sparse checkpoints: a file whose size scales with the density of the pruned weights."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from trials.pruning._base import prunable_parameters

#: Identifies the file layout; ``load_sparse`` refuses anything else.
SPARSE_FORMAT = "paretune-sparse"
SPARSE_VERSION = 1

_DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
}


def _dtype_name(dtype: torch.dtype) -> str:
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"sparse export supports dtypes {sorted(_DTYPES)} but got {name}")
    return name


def _prunable_keys(model: nn.Module) -> set[str]:
    keys = set()
    for name, layer in prunable_parameters(model):
        if parametrize.is_parametrized(layer):
            raise ValueError(
                f"save_sparse needs a finalized model but layer {name!r} still has a "
                "parametrization; call the pruner's finalize() first"
            )
        keys.add(f"{name}.weight" if name else "weight")
    return keys


def _pack(tensor: torch.Tensor, values_dtype: torch.dtype | None) -> dict[str, Any]:
    flat = tensor.detach().cpu().reshape(-1)
    nonzero = flat != 0
    bits = np.packbits(nonzero.numpy())
    values = flat[nonzero]
    if values_dtype is not None:
        values = values.to(values_dtype)
    return {
        "layout": "bitmask",
        "shape": list(tensor.shape),
        "dtype": _dtype_name(tensor.dtype),
        "bits": torch.from_numpy(bits),
        "values": values.clone(),
    }


def _unpack(entry: dict[str, Any], key: str) -> torch.Tensor:
    shape = [int(size) for size in entry["shape"]]
    dtype = _DTYPES[entry["dtype"]]
    numel = int(np.prod(shape)) if shape else 1
    nonzero = np.unpackbits(entry["bits"].numpy(), count=numel).astype(bool)
    values = entry["values"]
    if int(nonzero.sum()) != values.numel():
        raise ValueError(
            f"sparse checkpoint entry {key!r} is corrupt: its bitmask marks "
            f"{int(nonzero.sum())} nonzeros but it holds {values.numel()} values"
        )
    dense = torch.zeros(numel, dtype=dtype)
    dense[torch.from_numpy(nonzero)] = values.to(dtype)
    return dense.view(shape)


def save_sparse(model: nn.Module, path: str | os.PathLike[str], half: bool = False) -> int:
    """Writes ``model``'s state dict with prunable weights stored sparsely.

    Every conv/linear weight is stored as a packed bitmask of its nonzero positions plus
    the nonzero values; every other tensor (biases, norm layers, buffers) densely. The
    file holds only tensors, strings, ints and lists, so ``torch.load(...,
    weights_only=True)`` reads it.

    Args:
        model: a finalized model (plain weights, no parametrizations).
        path: the file to write.
        half: store the nonzero values as float16 (smaller, no longer exact).

    Returns:
        The size of the written file in bytes.
    """
    sparse_keys = _prunable_keys(model)
    tensors: dict[str, dict[str, Any]] = {}
    for key, tensor in model.state_dict().items():
        if key in sparse_keys and tensor.is_floating_point():
            tensors[key] = _pack(tensor, torch.float16 if half else None)
        else:
            tensors[key] = {"layout": "dense", "data": tensor.detach().cpu().clone()}
    payload = {
        "format": SPARSE_FORMAT,
        "version": SPARSE_VERSION,
        "keys": list(tensors),
        "tensors": tensors,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, target)
    return checkpoint_size(target)


def load_sparse(path: str | os.PathLike[str]) -> OrderedDict[str, torch.Tensor]:
    """Reads a checkpoint written by :func:`save_sparse` back into a dense state dict."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"sparse checkpoint {str(target)!r} does not exist")
    payload = torch.load(target, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != SPARSE_FORMAT:
        raise ValueError(
            f"{str(target)!r} is not a paretune sparse checkpoint (format must be "
            f"{SPARSE_FORMAT!r})"
        )
    if payload.get("version") != SPARSE_VERSION:
        raise ValueError(
            f"sparse checkpoint {str(target)!r} has version {payload.get('version')!r}; "
            f"this paretune reads version {SPARSE_VERSION}"
        )
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key in payload["keys"]:
        entry = payload["tensors"][key]
        if entry["layout"] == "bitmask":
            state[key] = _unpack(entry, key)
        else:
            state[key] = entry["data"]
    return state


def checkpoint_size(path: str | os.PathLike[str]) -> int:
    """Size of a checkpoint file in bytes."""
    return os.path.getsize(path)
