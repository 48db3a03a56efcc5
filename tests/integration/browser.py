"""Helpers for the browser tests: a quickstart-like study, the system Chromium, ports."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from study.store import ResultStore
from tests.integration.helpers import PARETUNE, worker_env

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no GPU, and no traffic of the browser's own (updates, sync, proxies).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
]
KEEP_SCREENSHOTS = "PARETUNE_KEEP_SCREENSHOTS"
SCREENSHOT_DIR = Path(__file__).resolve().parent / "screenshots"

QUICKSTART_METHODS = ("dense", "adapmtl", "magnitude", "disparse")
TASK_METRICS = {
    "segment_semantic": {"miou": 31.2, "pixel_acc": 58.4},
    "depth_zbuffer": {"abs_err": 0.62, "rel_err": 0.241},
    "normal": {"angle_mean": 33.1, "angle_median": 28.7},
}
LOWER_IS_BETTER = {"abs_err", "rel_err", "angle_mean", "angle_median"}
COMPONENTS = ("backbone", "head:segment_semantic", "head:depth_zbuffer", "head:normal")
ITERATIONS = 300
EVAL_EVERY = 60
PARAMETERS = 1_204_803


def _trial_config(method: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """A full TrialConfig dict as ``paretune run`` stores it (for replay)."""
    return {
        "dataset": "scenes-nyu",
        "dataset_root": None,
        "dataset_options": {},
        "tasks": None,
        "model": "resnet-tiny",
        "head": "light",
        "model_options": {},
        "head_options": {},
        "method": method,
        "method_params": dict(params),
        "weighting": None,
        "weighting_params": {},
        "iterations": ITERATIONS,
        "batch_size": 16,
        "optimizer": "adam",
        "lr": 0.002,
        "weight_decay": 0.0,
        "lr_step_fraction": 0.4,
        "lr_gamma": 0.5,
        "eval_every": EVAL_EVERY,
        "eval_batches": None,
        "eval_split": "val",
        "seed": seed,
        "threads": 1,
        "device": "cpu",
        "amp": False,
        "reference": None if method == "dense" else TASK_METRICS,
    }


def _params(method: str, rng: np.random.Generator) -> dict[str, Any]:
    target = round(float(rng.uniform(0.5, 0.99)), 4)
    if method == "adapmtl":
        return {
            "threshold_init_backbone": round(float(rng.uniform(-6, -2)), 3),
            "threshold_init_heads": round(float(rng.uniform(-6, -2)), 3),
            "sparsity_penalty": round(float(np.exp(rng.uniform(np.log(1e-3), np.log(5e-2)))), 5),
            "temperature": round(float(np.exp(rng.uniform(np.log(0.25), np.log(4.0)))), 3),
            "threshold_lr": round(float(np.exp(rng.uniform(np.log(5e-3), np.log(0.1)))), 4),
            "target_sparsity": target,
        }
    if method == "magnitude":
        return {
            "target_sparsity": target,
            "start_fraction": round(float(rng.uniform(0.0, 0.3)), 3),
            "end_fraction": round(float(rng.uniform(0.5, 0.9)), 3),
        }
    return {"target_sparsity": target}


#: How fast each method loses accuracy with sparsity (AdapMTL degrades last).
_DROP = {"adapmtl": (2.0, 7.0), "magnitude": (3.0, 5.0), "disparse": (3.5, 6.0)}


def _metrics(delta_t: float, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for task, values in TASK_METRICS.items():
        change = delta_t / 100 + float(rng.normal(0, 0.004))
        out[task] = {
            name: round(value * (1 - change if name in LOWER_IS_BETTER else 1 + change), 4)
            for name, value in values.items()
        }
    return out


def _task_deltas(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    deltas = {}
    for task, values in metrics.items():
        signs = [
            (-1 if name in LOWER_IS_BETTER else 1)
            * (value - TASK_METRICS[task][name])
            / TASK_METRICS[task][name]
            for name, value in values.items()
        ]
        deltas[task] = round(100 * float(np.mean(signs)), 4)
    return deltas


def _components(method: str, sparsity: float, rng: np.random.Generator) -> dict[str, float]:
    if method == "adapmtl":  # prunes the backbone harder than the heads
        shares = {"backbone": 1.03, "head:segment_semantic": 0.9}
        shares |= {"head:depth_zbuffer": 0.86, "head:normal": 0.88}
    else:
        shares = {c: 1.0 + float(rng.normal(0, 0.01)) for c in COMPONENTS}
    return {c: round(min(0.999, sparsity * shares[c]), 4) for c in COMPONENTS}


@dataclass(frozen=True)
class SyntheticStudy:
    """A stored study: its URL and name and the trial ids written."""

    url: str
    name: str
    trial_ids: dict[str, list[int]] = field(default_factory=dict)


def write_quickstart_like_study(
    url: str, name: str = "quickstart", seed: int = 0
) -> SyntheticStudy:
    """Stores a study shaped like ``examples/quickstart.yaml`` after it ran.

    The dense reference, then six trials each of adapmtl, magnitude and disparse with
    their searched hyperparameters, final metrics of the three NYU-like tasks, per-task
    Delta_T, per-component sparsity, AdapMTL's thresholds and task weights, full trial
    configs and five evaluations per trial; one disparse trial failed.
    """
    rng = np.random.default_rng(seed)
    start = datetime(2030, 5, 4, 9, 0, tzinfo=UTC)
    ids: dict[str, list[int]] = {m: [] for m in QUICKSTART_METHODS}
    study_config = {
        "name": name,
        "dataset": {"name": "scenes-nyu"},
        "model": {"backbone": "resnet-tiny", "head": "light"},
        "methods": [{"name": m} for m in ("adapmtl", "magnitude", "disparse", "dense")],
        "budget": {"trials_per_method": 6, "iterations": ITERATIONS, "seeds": [0]},
    }
    objectives = [("delta_t", "maximize"), ("sparsity", "maximize")]
    clock = start
    with ResultStore(url) as store:
        store.create_study(name, study_config, objectives)
        for method in QUICKSTART_METHODS:
            run = store.start_method_run(name, method, 0)
            for number in range(1 if method == "dense" else 6):
                params = {} if method == "dense" else _params(method, rng)
                target = float(params.get("target_sparsity", 0.0))
                sparsity = round(min(0.995, target * (1 + float(rng.normal(0, 0.004)))), 4)
                linear, power = _DROP.get(method, (0.0, 1.0))
                delta = (
                    0.0
                    if method == "dense"
                    else round(0.8 - linear * sparsity**power * 3 + float(rng.normal(0, 0.25)), 4)
                )
                metrics = TASK_METRICS if method == "dense" else _metrics(delta, rng)
                wall = round(float(rng.uniform(70, 95)), 2)
                failed = method == "disparse" and number == 4
                fields: dict[str, Any] = {
                    "params": params,
                    "config": _trial_config(method, params, 0),
                    "is_reference": method == "dense",
                    "started_at": clock,
                    "host": "laptop",
                    "node_id": "a1b2c3d4",
                    "parameters": PARAMETERS,
                }
                clock += timedelta(seconds=wall)
                if failed:
                    fields |= {
                        "status": "FAILED",
                        "iterations": 120,
                        "finished_at": clock,
                        "error": (
                            "Traceback (most recent call last):\n"
                            '  File "trials/_train.py", line 211, in train\n'
                            "FloatingPointError: training loss is NaN at iteration 120"
                        ),
                    }
                else:
                    fields |= {
                        "status": "COMPLETE",
                        "metrics": metrics,
                        "sparsity": sparsity,
                        "components": _components(method, sparsity, rng),
                        "delta_t": delta,
                        "delta_t_per_task": _task_deltas(metrics),
                        "iterations": ITERATIONS,
                        "wall_time_s": wall,
                        "device_s": wall,
                        "finished_at": clock,
                    }
                    if method == "adapmtl":
                        fields["thresholds"] = {
                            c: round(float(1 / (1 + math.exp(4.0 - sparsity))) / 4, 5)
                            for c in COMPONENTS
                        }
                        fields["task_weights"] = {
                            "segment_semantic": 0.85,
                            "depth_zbuffer": 1.05,
                            "normal": 1.1,
                        }
                trial_id = store.add_trial(run, number=number, **fields)
                ids[method].append(trial_id)
                last = fields["iterations"]
                store.add_evaluations(
                    trial_id,
                    [
                        _evaluation(method, it, fields, rng)
                        for it in range(EVAL_EVERY, last + 1, EVAL_EVERY)
                    ],
                )
            store.finish_method_run(run)
        store.set_study_status(name, "COMPLETE")
    return SyntheticStudy(url, name, ids)


def _evaluation(
    method: str, iteration: int, fields: dict[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    progress = iteration / ITERATIONS
    final = float(fields.get("sparsity") or fields["params"].get("target_sparsity", 0.0))
    ramp = 0.0 if method == "dense" else final * min(1.0, progress * 1.25) ** 3
    ramp = final if method == "disparse" else ramp  # static: pruned at initialisation
    delta = float(fields.get("delta_t") or 0.0) - 4.0 * (1 - progress) ** 2
    evaluation: dict[str, Any] = {
        "iteration": iteration,
        "metrics": _metrics(delta, rng),
        "losses": {
            "segment_semantic": round(2.1 * (1.2 - progress), 4),
            "depth_zbuffer": round(0.9 * (1.2 - progress), 4),
            "normal": round(0.5 * (1.2 - progress), 4),
        },
        "sparsity": round(ramp, 4),
        "components": {
            c: round(ramp * share / final if final else 0.0, 4)
            for c, share in (fields.get("components") or dict.fromkeys(COMPONENTS, final)).items()
        },
        "delta_t": None if method == "dense" else round(delta, 4),
        "elapsed_s": round(float(fields.get("wall_time_s") or 60.0) * progress, 2),
        "images_seen": iteration * 16,
    }
    if method == "adapmtl":
        evaluation["thresholds"] = {
            c: round((0.004 + 0.02 * progress) * (1.2 if c == "backbone" else 0.8 + 0.1 * k), 5)
            for k, c in enumerate(COMPONENTS)
        }
        evaluation["task_weights"] = {
            "segment_semantic": round(1.0 - 0.15 * progress, 4),
            "depth_zbuffer": round(1.0 + 0.05 * progress, 4),
            "normal": round(1.0 + 0.1 * progress, 4),
        }
    return evaluation


# --- the browser -------------------------------------------------------------------------
def require_chromium() -> str:
    """The system Chromium's path; fails (never skips) when it is missing."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(
            f"the browser tests need Chromium at {CHROMIUM}; run `make test` "
            "(it installs it with .ci/system-deps)"
        )
    return str(CHROMIUM)


class PageProblems:
    """JavaScript console errors, uncaught exceptions and requests leaving the machine
    seen by a page; every request to another host is aborted."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.external: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.route("**/*", self._route)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location})")

    def _route(self, route: Any) -> None:
        url = route.request.url
        parsed = urlparse(url)
        local = parsed.scheme in ("file", "data", "blob") or parsed.hostname == "127.0.0.1"
        if local:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def check(self) -> None:
        assert not self.external, f"the page requested other hosts: {self.external}"
        assert not self.errors, "JavaScript errors:\n" + "\n".join(self.errors)


def keep_screenshot(path: Path) -> None:
    """Copies a screenshot into tests/integration/screenshots/ when asked to by the
    ``PARETUNE_KEEP_SCREENSHOTS`` environment variable."""
    if os.environ.get(KEEP_SCREENSHOTS):
        SCREENSHOT_DIR.mkdir(exist_ok=True)
        shutil.copy2(path, SCREENSHOT_DIR / path.name)


# --- the dashboard process ---------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        table = Path("/proc/net") / name
        if not table.is_file():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@dataclass
class Dashboard:
    """A running ``paretune dashboard`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _get(url: str, timeout: float) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(url, timeout=timeout) as response:
        return int(response.status)


@contextmanager
def serving(
    args: list[str], url: str, folder: Path, log_name: str, timeout: float = 60.0
) -> Iterator[Dashboard]:
    """Starts the web server ``args`` and waits until ``url`` answers 200; always stops it."""
    log = folder / log_name
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args, stdout=sink, stderr=subprocess.STDOUT, cwd=folder, env=worker_env()
        )
    server = Dashboard(process, url, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{Path(args[0]).name} exited {process.returncode}:\n{server.output()}"
                )
            try:
                if _get(url, 1.0) == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{Path(args[0]).name} did not answer within {timeout:.0f} s:\n"
                    f"{server.output()}"
                )
            time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def running_dashboard(
    db: str, study: str, folder: Path, *extra: str, timeout: float = 60.0
) -> Iterator[Dashboard]:
    """Starts ``paretune dashboard`` on a free loopback port; always stops it."""
    port = free_port()
    args = [PARETUNE, "dashboard", "--db", db, "--study", study, "--port", str(port), *extra]
    with serving(args, f"http://127.0.0.1:{port}/", folder, "dashboard.log", timeout) as server:
        yield server


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """The system Chromium, headless (a Playwright ``Browser``); ``width`` x ``height`` is
    the viewport of :func:`new_page`."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, width: int = 1280, timeout_ms: float = 20_000) -> Iterator[Any]:
    """A page of its own context (``width`` x 900) with its :class:`PageProblems`."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page, PageProblems(page)
    finally:
        context.close()
