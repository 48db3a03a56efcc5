"""Where a trial's weights start: a fresh initialisation or a checkpoint.

``TrialConfig.init`` is ``scratch`` or the path of one of:

* a **paretune checkpoint**, written by a trial with ``save_checkpoint`` (a study's dense
  reference, ``paretune trial --json`` next to its JSON): the whole model, architecture
  checked, loaded strictly;
* a **trial JSON** (``paretune trial --json``) whose ``checkpoint`` names such a file;
* a **model state dict** of the same architecture (e.g. a user's own trained model);
* **ImageNet-pretrained backbone weights in torchvision's format** (``resnet34`` for
  ``deeplab-resnet34``, ``mobilenet_v2`` for ``mobilenetv2``): the backbone's tensors are
  taken in order, each of the same shape as torchvision's (the classifier and any layer
  past the backbone are left out); the heads keep their fresh initialisation.

Every file is read with ``torch.load(weights_only=True)``: nothing in it can run code.
Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trials.errors import ParetuneError

FORMAT = "paretune-weights"
SCRATCH = "scratch"
#: Keys of torchvision classifiers, never part of a backbone.
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")


class InitError(ParetuneError):
    """A checkpoint that cannot initialise the trial's model; the message says why."""


def save_weights(model: nn.Module, path: str | Path, about: Mapping[str, Any]) -> Path:
    """Writes ``model``'s state dict with ``about`` (model, head, tasks) atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **dict(about), "state_dict": state}, temporary)
    temporary.replace(target)
    return target


def checkpoint_path(init: str) -> Path | None:
    """The weights file ``init`` names (None for ``scratch``); a trial JSON is followed to
    its ``checkpoint``."""
    if init == SCRATCH:
        return None
    path = Path(init).expanduser()
    if path.suffix == ".json":
        try:
            named = json.loads(path.read_text()).get("checkpoint")
        except (OSError, ValueError, AttributeError) as error:
            raise InitError(f"init: cannot read trial JSON {path} ({error})") from None
        if not named:
            raise InitError(
                f"init: {path} names no checkpoint (write one with 'paretune trial --json')"
            )
        path = (path.parent / named).resolve()
    if not path.is_file():
        raise InitError(f"init: checkpoint file {path} does not exist")
    return path


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with code, a truncated file, not torch at all
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise InitError(f"init: {path} is not a readable weights file ({reason})") from None
    if not isinstance(data, Mapping):
        raise InitError(f"init: {path} holds a {type(data).__name__}, not a state dict")
    return data


def _tensors(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _is_torchvision_backbone(state: Mapping[str, Any]) -> bool:
    return "conv1.weight" in state or "features.0.0.weight" in state


def _load_model(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    missing, unexpected = [], []
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        if wrong:
            key = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (first: {key} "
                f"{tuple(state[key].shape)} vs {tuple(own[key].shape)})"
            )
        raise InitError(f"init: {path} does not fit this model: " + "; ".join(parts))
    model.load_state_dict(dict(state))


def _load_backbone(backbone: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> str:
    """Torchvision weights in order onto the backbone's tensors of the same shapes."""
    source = [(k, v) for k, v in state.items() if not k.startswith(_CLASSIFIER_PREFIXES)]
    target = list(backbone.state_dict().items())
    if len(source) < len(target):
        raise InitError(
            f"init: {path} has {len(source)} backbone tensors, the backbone needs {len(target)}"
        )
    mapped = {}
    for (theirs, value), (ours, mine) in zip(source, target, strict=False):
        if tuple(value.shape) != tuple(mine.shape):
            raise InitError(
                f"init: {path} does not fit this backbone: {theirs} {tuple(value.shape)} "
                f"would load into {ours} {tuple(mine.shape)}"
            )
        mapped[ours] = value.to(mine.dtype)
    backbone.load_state_dict(mapped)
    left = len(source) - len(target)
    return f"backbone from {path.name} ({len(target)} tensors" + (
        f"; {left} past the backbone left out)" if left else ")"
    )


def load_initial_weights(model: nn.Module, init: str, about: Mapping[str, Any]) -> str:
    """Loads ``init`` into ``model`` (nothing for ``scratch``); a line saying what loaded.

    Args:
        model: the trial's multi-task model (``backbone`` and ``heads``).
        init: ``scratch`` or a path (see the module docstring).
        about: the trial's ``model`` and ``head`` names, checked against a paretune
            checkpoint's.

    Raises:
        InitError: the file is missing, unreadable or does not fit the model.
    """
    path = checkpoint_path(init)
    if path is None:
        return "scratch"
    data = _read(path)
    if data.get("format") == FORMAT:
        for key in ("model", "head"):
            if key in data and key in about and data[key] != about[key]:
                raise InitError(
                    f"init: {path} holds a {key} {data[key]!r} but this trial uses {about[key]!r}"
                )
        state = _tensors(data.get("state_dict") or {})
        _load_model(model, state, path)
        return f"model from {path.name}"
    state = _tensors(data)
    if _is_torchvision_backbone(state):
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise InitError(f"init: {path} holds backbone weights; this model has no backbone")
        return _load_backbone(backbone, state, path)
    _load_model(model, state, path)
    return f"model from {path.name}"
