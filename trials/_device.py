"""Device selection and reproducibility settings."""

from __future__ import annotations

import random

import numpy as np
import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; other names are passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, NumPy and torch; returns a generator for the trial's data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def limit_gpu_memory(fraction: float, device: torch.device) -> None:
    """Caps this process's share of GPU memory (fractional GPUs are bookkeeping only)."""
    if device.type == "cuda" and 0 < fraction < 1:
        torch.cuda.set_per_process_memory_fraction(fraction, device)


def visible_gpus() -> int:
    """CUDA devices this process sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
