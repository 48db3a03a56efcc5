"""Benchmark: one GPU trial of the paper's setup (``python benchmarks/gpu.py``).

On a machine with CUDA it measures, with paretune's own trainer, DeepLab-ResNet34 with
ASPP heads (hidden 1024, dropout 0.5, as AdapMTL) at 321x321 and batch 16 on three
NYUv2-like tasks:

* images/s and peak GPU memory of ``dense`` and ``adapmtl``, AMP off and on (bfloat16
  where the GPU has it, else float16 with a gradient scaler), and ``adapmtl`` with AMP and
  ``channels_last`` (the settings of ``examples/nyuv2_table2.yaml``);
* two trials side by side on one GPU, each in its own process capped at half the GPU's
  memory (what ``gpus_per_trial: 0.5`` gives every trial): each one's images/s and peak
  memory, and their sum against one trial alone.

Training batches come from the built-in scenes rendered at 321x321 and held in memory, so
the figures are the GPU's, not a data loader's (``benchmarks/data.py`` measures that). The
whole run takes about two minutes on a current GPU (under five). Without CUDA it prints one
line saying so and exits 0: it is a benchmark, not a test. ``tests/benchmarks/test_gpu.py``
runs the same code on the CPU, AMP off, at a tiny size.

    python benchmarks/gpu.py                 # table on stdout, JSON in benchmarks/results/
    python benchmarks/gpu.py --steps 40      # more timed steps per variant
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages, not this file
    sys.path[0] = str(Path(__file__).resolve().parents[1])

RESULTS = Path(__file__).resolve().parent / "results"
NO_CUDA = "benchmarks/gpu.py: no CUDA device on this machine; nothing measured (it needs a GPU)"


@dataclass(frozen=True)
class Setup:
    """What every variant trains: model, data size and how many steps are timed."""

    device: str = "cuda"
    resolution: int = 321
    batch_size: int = 16
    steps: int = 20
    warmup: int = 5
    backbone: str = "deeplab-resnet34"
    head: str = "aspp"
    head_options: dict[str, Any] = field(default_factory=lambda: {"hidden": 1024, "dropout": 0.5})
    scenes: int = 64
    threads: int | None = None  # torch CPU threads of each trial (None: torch's default)


@dataclass(frozen=True)
class Variant:
    """One measured configuration of a trial."""

    name: str
    method: str
    amp: bool = False
    channels_last: bool = False


#: The variants measured one at a time (AMP variants only where AMP is on: on CUDA).
VARIANTS = (
    Variant("dense", "dense"),
    Variant("adapmtl", "adapmtl"),
    Variant("dense + AMP", "dense", amp=True),
    Variant("adapmtl + AMP", "adapmtl", amp=True),
    Variant("adapmtl + AMP + channels_last", "adapmtl", amp=True, channels_last=True),
)


@dataclass(frozen=True)
class Measurement:
    """Images/s of a variant's timed steps and the peak memory of its process."""

    variant: str
    images_per_s: float
    peak_memory_mib: float | None
    amp_dtype: str | None
    memory_fraction: float | None = None


def trial_fields(setup: Setup, variant: Variant, memory_fraction: float | None) -> dict[str, Any]:
    """The ``TrialConfig`` of ``variant``: the paper's model and optimizer, few iterations."""
    iterations = setup.warmup + setup.steps
    return {
        "dataset": "scenes-nyu",
        "dataset_options": {
            "resolution": setup.resolution,
            "num_train": setup.scenes,
            "num_val": setup.batch_size,
            "num_test": setup.batch_size,
        },
        "model": setup.backbone,
        "head": setup.head,
        "head_options": dict(setup.head_options),
        "method": variant.method,
        "iterations": iterations,
        "eval_every": iterations,
        "eval_batches": 1,
        "batch_size": setup.batch_size,
        "adam_betas": (0.5, 0.999),
        "device": setup.device,
        "amp": variant.amp,
        "channels_last": variant.channels_last,
        "gpu_memory_fraction": memory_fraction,
        "threads": setup.threads,
    }


def measure(setup: Setup, variant: Variant, memory_fraction: float | None = None) -> Measurement:
    """Trains ``variant`` for ``warmup + steps`` iterations; images/s of the timed steps."""
    import torch

    from trials._config import TrialConfig
    from trials._trainer import Trainer, amp_dtype, build_setup

    config = TrialConfig(**trial_fields(setup, variant, memory_fraction))
    built = build_setup(config)
    cuda = built.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(built.device)
        torch.cuda.reset_peak_memory_stats(built.device)
    stamps: list[float] = []

    def on_step(_iteration: int, _loss: float) -> None:  # the loss was read: steps are done
        stamps.append(time.perf_counter())

    Trainer(built, on_step=on_step).train()
    timed = stamps[setup.warmup - 1 :]
    rate = (len(timed) - 1) * setup.batch_size / (timed[-1] - timed[0])
    peak = torch.cuda.max_memory_allocated(built.device) / 2**20 if cuda else None
    dtype = amp_dtype(config, built.device)
    return Measurement(
        variant.name, rate, peak, None if dtype is None else str(dtype), memory_fraction
    )


def _side_by_side_worker(setup: Setup, variant: Variant, start: Any, results: Any) -> None:
    start.wait()
    try:
        results.put(("ok", asdict(measure(setup, variant, memory_fraction=0.5))))
    except Exception as error:  # reported by the parent
        results.put(("error", f"{type(error).__name__}: {error}"))


def side_by_side(setup: Setup, variant: Variant, count: int = 2) -> list[Measurement]:
    """``count`` trials of ``variant`` at once, each in its own process with half the GPU's
    memory (``gpus_per_trial: 0.5``); they start training together."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be shared by forking
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=_side_by_side_worker, args=(setup, variant, start, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [text for status, text in outcomes if status == "error"]
    if errors:
        raise RuntimeError(f"a side-by-side trial failed: {errors[0]}")
    return [Measurement(**data) for _, data in outcomes]


def run(setup: Setup, variants: Sequence[Variant] = VARIANTS) -> dict[str, Any]:
    """Every variant alone, then two trials of the last variant side by side."""
    alone = [measure(setup, variant) for variant in variants]
    pair_variant = variants[-1]
    pair = side_by_side(setup, pair_variant)
    single = next(m for m in alone if m.variant == pair_variant.name)
    return {
        "setup": asdict(setup),
        "alone": [asdict(m) for m in alone],
        "side_by_side": {
            "variant": pair_variant.name,
            "trials": [asdict(m) for m in pair],
            "images_per_s": sum(m.images_per_s for m in pair),
            "over_one_alone": sum(m.images_per_s for m in pair) / single.images_per_s,
        },
    }


def _memory(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MiB"


def report(figures: dict[str, Any]) -> list[str]:
    """The lines ``main`` prints."""
    setup = figures["setup"]
    lines = [
        f"{setup['backbone']} + {setup['head']} heads, {setup['resolution']}x"
        f"{setup['resolution']}, batch {setup['batch_size']}, {setup['steps']} timed steps "
        f"after {setup['warmup']}, on {setup['device']}:"
    ]
    for m in figures["alone"]:
        dtype = f" ({m['amp_dtype']})" if m["amp_dtype"] else ""
        lines.append(
            f"  {m['variant'] + dtype:<44} {m['images_per_s']:8.1f} images/s  "
            f"peak {_memory(m['peak_memory_mib'])}"
        )
    pair = figures["side_by_side"]
    shown = ", ".join(
        f"{m['images_per_s']:.1f} images/s (peak {_memory(m['peak_memory_mib'])})"
        for m in pair["trials"]
    )
    lines.append(
        f"two 0.5-GPU trials of {pair['variant']} side by side: {shown}; together "
        f"{pair['images_per_s']:.1f} images/s, {pair['over_one_alone']:.2f}x one trial alone"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=Setup.steps, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=Setup.warmup, help="untimed first steps")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    started = time.perf_counter()
    figures = run(Setup(steps=args.steps, warmup=args.warmup))
    figures["gpu"] = torch.cuda.get_device_name(0)
    figures["wall_s"] = time.perf_counter() - started
    print(f"GPU: {figures['gpu']}")
    for line in report(figures):
        print(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu.json").write_text(json.dumps(figures, indent=1))
    print(f"gpu benchmark: {figures['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
