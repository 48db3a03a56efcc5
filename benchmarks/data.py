"""Benchmark: data throughput (``python benchmarks/data.py``).

Each benchmark function returns a :class:`Measurement` (value, unit, target); ``main``
runs every function listed in :data:`BENCHMARKS` and prints one line per measurement, e.g.
``scenes rendered: 812.3/s at 64x64 (target >= 500/s): ratio 1.62``. Add a measurement by
decorating a function with :func:`benchmark`.

The renderer and the trainers run on one core. The loader measurements read fabricated
NYUv2 files at the stored 480x640 (``tests/fabricate.py``, in a temporary folder) through
the training pipeline (random scale, mirror, 321x321 crop, batches of 16) with 0, 1 and 2
``DataLoader`` workers of one thread each (best of two rounds), alone and feeding a GPU
whose training step takes :data:`GPU_STEP_S` per batch (the trial's process waits that
long, as it does on a GPU), then state the gain of the workers in both; with
``--loader-only`` only those run.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# One core: limit the math libraries before numpy / torch start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

if __package__ in (None, ""):  # run as a script: import the repository's packages, not this file
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from trials.data import ScenesOptions, render_split  # noqa: E402

#: Scenes per second the renderer must reach at 64x64 on one core.
RENDER_TARGET = 500.0


@dataclass(frozen=True)
class Measurement:
    """One benchmark result; ``target`` is the least value that counts as fast enough."""

    name: str
    value: float
    unit: str
    detail: str = ""
    target: float | None = None

    def line(self) -> str:
        """``name: value unit detail (target >= t unit): ratio r``."""
        text = f"{self.name}: {self.value:.1f}{self.unit}"
        if self.detail:
            text += f" {self.detail}"
        if self.target is not None:
            text += f" (target >= {self.target:g}{self.unit}): ratio {self.value / self.target:.2f}"
        return text


#: The benchmarks ``main`` runs, in order.
BENCHMARKS: list[Callable[[], Measurement]] = []


def benchmark(function: Callable[[], Measurement]) -> Callable[[], Measurement]:
    """Adds ``function`` to :data:`BENCHMARKS`."""
    BENCHMARKS.append(function)
    return function


def render_rate(resolution: int = 64, n: int = 500, repeats: int = 3) -> float:
    """Scenes rendered per second on one core, caching off (best of ``repeats`` runs).

    Times :func:`trials.data.render_split` (sampling, ray casting, all five targets and
    the conversion to storage dtypes) for a split of ``n`` scenes.
    """
    torch.set_num_threads(1)
    options = ScenesOptions(resolution=resolution, num_train=n, cache=False)
    render_split(ScenesOptions(resolution=resolution, num_train=8), "train", progress=False)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        render_split(options, "train", progress=False)
        best = min(best, time.perf_counter() - start)
    return n / best


@benchmark
def scene_rendering() -> Measurement:
    """The built-in data set's renderer at the default 64x64."""
    return Measurement("scenes rendered", render_rate(64), "/s", "at 64x64", RENDER_TARGET)


def training_rate(backbone: str, steps: int = 12, batch_size: int = 16) -> float:
    """Training images per second of ``backbone`` with light heads on 64x64 scenes-nyu.

    Times optimizer steps only (data set building and evaluation excluded), after two
    warm-up steps, with one torch thread.
    """
    from trials import TrialConfig
    from trials._trainer import Trainer, build_setup

    torch.set_num_threads(1)
    config = TrialConfig(
        dataset="scenes-nyu",
        dataset_options={"num_train": 64, "num_val": 16, "num_test": 16},
        model=backbone,
        iterations=steps + 2,
        eval_every=steps + 2,
        eval_batches=1,
        batch_size=batch_size,
        threads=1,
    )
    stamps: list[float] = []
    trainer = Trainer(
        build_setup(config), on_step=lambda i, loss: stamps.append(time.perf_counter())
    )
    trainer.train()
    timed = stamps[2:]
    return (len(timed) - 1) * batch_size / (timed[-1] - timed[0])


def _training_benchmark(backbone: str) -> Callable[[], Measurement]:
    def measure() -> Measurement:
        rate = training_rate(backbone)
        return Measurement(f"trainer {backbone}", rate, " images/s", "(batch 16, 64x64, 1 thread)")

    measure.__name__ = f"training_{backbone.replace('-', '_')}"
    return measure


for _backbone in ("resnet-tiny", "mobilenetv2", "deeplab-resnet34"):
    benchmark(_training_benchmark(_backbone))

#: Worker counts of the loader measurements; the gain compares the last with the first.
LOADER_WORKERS = (0, 1, 2)
#: NYUv2's stored frame size, the training crop and the batch of the AdapMTL setup.
NYUV2_SIZE, NYUV2_CROP, NYUV2_BATCH = (480, 640), 321, 16


@functools.cache
def fabricated_nyuv2(samples: int = 48) -> Path:
    """A NYUv2 folder of ``samples`` training frames at 480x640 in a temporary folder
    (removed when the process ends)."""
    from tests.fabricate import nyuv2_folder

    folder = Path(tempfile.mkdtemp(prefix="paretune-bench-nyuv2-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return nyuv2_folder(folder / "nyuv2", train=samples, val=2, size=NYUV2_SIZE)


#: Seconds of one training step the loader feeds in the second scenario: about what an
#: A100 takes for DeepLab-ResNet34 at 321x321, batch 16 with AMP (``benchmarks/gpu.py``
#: measures it on a GPU). The trial's process waits that long per batch, its CPU free.
GPU_STEP_S = 0.15


def loader_rate(workers: int, batches: int = 8, step_s: float = 0.0) -> float:
    """Training images per second the NYUv2 pipeline delivers with ``workers`` workers.

    One warm-up batch first (it starts the workers); then ``batches`` batches are timed.
    With ``step_s`` the trial's process waits that long after each batch, as it does while
    a GPU runs the training step, so loading overlaps with it exactly when workers load.
    """
    from trials._config import LoaderOptions
    from trials.data import BatchStream, build_dataset

    torch.set_num_threads(1)
    train = build_dataset(
        "nyuv2", "train", root=str(fabricated_nyuv2()), augment={"crop": NYUV2_CROP}
    )
    options = LoaderOptions(num_workers=workers, prefetch_factor=2)
    generator = torch.Generator().manual_seed(0)
    stream = BatchStream(train, NYUV2_BATCH, generator, options, torch.device("cpu"))
    try:
        stream.next()
        start = time.perf_counter()
        for _ in range(batches):
            stream.next()
            if step_s:
                time.sleep(step_s)
        return batches * NYUV2_BATCH / (time.perf_counter() - start)
    finally:
        stream.close()


#: The two scenarios: the loader alone, and the loader feeding a GPU's training steps.
SCENARIOS = {"alone": 0.0, "feeding": GPU_STEP_S}


@functools.cache
def loader_rates(scenario: str, rounds: int = 2) -> dict[int, float]:
    """The best rate of each worker count over ``rounds`` rounds; the counts alternate in
    order from round to round, so that a change of load on a shared machine meets them all."""
    best = dict.fromkeys(LOADER_WORKERS, 0.0)
    for round_ in range(rounds):
        order = LOADER_WORKERS if round_ % 2 == 0 else LOADER_WORKERS[::-1]
        for workers in order:
            rate = loader_rate(workers, step_s=SCENARIOS[scenario])
            best[workers] = max(best[workers], rate)
    return best


def _describe(scenario: str) -> str:
    if SCENARIOS[scenario]:
        return f"feeding a {SCENARIOS[scenario] * 1000:.0f} ms GPU step per batch"
    return "alone"


def _loader_benchmark(scenario: str, workers: int) -> Callable[[], Measurement]:
    def measure() -> Measurement:
        rate = loader_rates(scenario)[workers]
        detail = (
            f"(NYUv2 480x640 .npy -> augmented 321x321 batches of 16, {workers} workers, "
            f"{_describe(scenario)})"
        )
        return Measurement("loader", rate, " images/s", detail)

    measure.__name__ = f"loader_{scenario}_{workers}_workers"
    return measure


def _loader_gain(scenario: str) -> Callable[[], Measurement]:
    def measure() -> Measurement:
        rates = loader_rates(scenario)
        low = LOADER_WORKERS[0]
        best = max(LOADER_WORKERS[1:], key=lambda workers: rates[workers])
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        load = os.getloadavg()[0]
        return Measurement(
            f"loader gain of workers, {_describe(scenario)}",
            rates[best] / rates[low],
            "x",
            f"({best} worker{'s' if best > 1 else ''}, the best) over {low} workers on "
            f"{cores or os.cpu_count()} cores, best of 2 alternating rounds (load average "
            f"{load:.1f} at the end)",
        )

    measure.__name__ = f"loader_gain_{scenario}"
    return measure


LOADER_BENCHMARKS = [
    function
    for scenario in SCENARIOS
    for function in (
        *(_loader_benchmark(scenario, w) for w in LOADER_WORKERS),
        _loader_gain(scenario),
    )
]
BENCHMARKS.extend(LOADER_BENCHMARKS)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmarks and prints one line each; returns 1 if any misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loader-only", action="store_true", help="only the loader measurements")
    args = parser.parse_args(argv)
    measurements = []
    for function in LOADER_BENCHMARKS if args.loader_only else BENCHMARKS:
        measurement = function()
        print(measurement.line(), flush=True)
        measurements.append(measurement)
    slow = [m for m in measurements if m.target is not None and m.value < m.target]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
