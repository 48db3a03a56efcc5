"""The Ray Tune trainable: one paretune trial inside a Ray worker.

The driver puts the fixed part of the trial under the ``paretune`` key of the Tune config;
the searcher's suggestions sit beside it. Every evaluation is reported with
``ray.tune.report`` and a small progress checkpoint; the final report carries the trial's
outcome as the store's columns (:mod:`study._outcome`). In between, a running trial
reports where its training is under ``paretune_progress`` at most every
:data:`PROGRESS_EVERY_S` seconds, without a checkpoint (:class:`ProgressTicker`), for the
driver's live display. A trial that raises (or whose loss
goes NaN) reports a final result with ``paretune_error`` instead of raising, because
retrying a deterministic failure would only repeat it; Ray's own retries are kept for lost
workers and nodes.

Beside the searcher's suggestions, ``paretune_route`` says which method run a trial belongs
to and where to read its seed's dense reference (:mod:`study._board`): Delta_T is computed
here, against the reference, as soon as the reference is known.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from study._objectives import objective_values
from study._outcome import result_outcome
from study._tune_config import (
    ERROR_KEY,
    FINAL_KEY,
    FIXED_KEY,
    PROGRESS_KEY,
    TrialRoute,
    planned_iterations,
    route_of,
    trial_fields,
)

PROGRESS_FILE = "progress.json"
#: Seconds between two in-trial progress reports (never one per step).
PROGRESS_EVERY_S = 2.0

logger = logging.getLogger(__name__)


def _reported(record: dict[str, Any], route: TrialRoute) -> dict[str, float]:
    """What a trial reports to Tune besides its record: the value of every objective."""
    return objective_values(route.objectives, record, route.device_share)


class TrialSession(Protocol):
    """Where a routed trial reports: Ray Tune in a worker (:class:`TuneSession`), or a
    test's recorder."""

    def where(self) -> dict[str, str]:
        """``host`` and ``node_id`` of the process running the trial."""

    def restore(self) -> dict[str, Any] | None:
        """The progress an earlier attempt of this trial saved, if any."""

    def report(self, metrics: dict[str, Any], progress: dict[str, Any]) -> None:
        """Reports ``metrics`` and saves ``progress`` for a retried attempt."""

    def tick(self, metrics: dict[str, Any]) -> None:
        """Reports in-trial progress: no checkpoint, nothing for the store or the search."""


class ReferenceReader(Protocol):
    """The reference metrics of the trial's seed (see :class:`study._board.BoardReader`)."""

    def peek(self) -> dict[str, Any] | None: ...

    def wait(self) -> dict[str, Any] | None: ...


class TuneSession:
    """A trial's session inside a Ray Tune function trainable."""

    def where(self) -> dict[str, str]:
        import ray

        try:
            node_id = ray.get_runtime_context().get_node_id()
        except Exception:  # not inside Ray (replay, tests)
            node_id = ""
        return {"host": socket.gethostname(), "node_id": node_id}

    def restore(self) -> dict[str, Any] | None:
        """The progress saved by an earlier attempt of this trial, if readable."""
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        try:
            with checkpoint.as_directory() as folder:
                progress = json.loads(Path(folder, PROGRESS_FILE).read_text())
            if not isinstance(progress, dict):
                kind = type(progress).__name__
                raise ValueError(f"{PROGRESS_FILE} holds a {kind}, not a mapping")
            return progress
        except (OSError, ValueError) as error:
            logger.warning(
                "checkpoint of this trial is unreadable (%s); restarting from scratch", error
            )
            return None

    def report(self, metrics: dict[str, Any], progress: dict[str, Any]) -> None:
        from ray import tune

        with tempfile.TemporaryDirectory(prefix="paretune-ckpt-") as folder:
            Path(folder, PROGRESS_FILE).write_text(json.dumps(progress))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    def tick(self, metrics: dict[str, Any]) -> None:
        from ray import tune

        tune.report(metrics)


def _reference_reader(config: dict[str, Any], route: TrialRoute) -> ReferenceReader:
    """Where this trial reads its seed's reference (nothing for the reference itself)."""
    from study._board import BoardReader

    if route.reference:
        return BoardReader("", route.seed)
    return BoardReader(route.board, route.seed, config[FIXED_KEY].get("reference"))


def _score(record: dict[str, Any], reference: dict[str, Any] | None, route: TrialRoute) -> None:
    """Sets ``delta_t``, ``delta_t_per_task`` and ``delta_m`` of ``record`` in place.

    The reference scores 0 against itself, by definition; without a reference yet, the
    record is left unscored.
    """
    from trials.metrics import delta_scores

    if route.reference:
        record["delta_t"] = record["delta_m"] = 0.0
        record["delta_t_per_task"] = dict.fromkeys(record["metrics"], 0.0)
    elif reference is not None:
        scored = delta_scores(record["metrics"], reference)
        record["delta_t"], record["delta_t_per_task"], record["delta_m"] = scored


class ProgressTicker:
    """Tells the session where training is: at its first step, then at most every
    ``every_s`` seconds.

    Called after every optimizer step (``trials.run_trial``'s ``on_step``); all but one
    call in ``every_s`` seconds return after reading the clock. :meth:`phase` says what a
    trial does before it trains (``setting up``: importing torch, building its data and
    model). A report holds only ``paretune_progress`` (``iteration``, ``iterations``,
    ``loss`` or ``phase``): the recorder stores
    evaluations and outcomes only, the searchers and ``mo-asha`` read objectives that it
    does not carry, and it saves no checkpoint.

    Args:
        session: where to report.
        iterations: the trial's planned iterations (None when a FLOPs or seconds budget
            sets them inside the trial).
        every_s: seconds between reports.
        clock: a monotonic clock.
    """

    def __init__(
        self,
        session: TrialSession,
        iterations: int | None,
        every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.iterations = iterations
        self.every_s = every_s
        self.clock = clock
        self.last = -math.inf
        self.reports = 0

    def phase(self, name: str) -> None:
        """Reports what the trial does before its first step."""
        self.reports += 1
        progress = {"iteration": 0, "iterations": self.iterations, "phase": name}
        self.session.tick({PROGRESS_KEY: progress})

    def __call__(self, iteration: int, loss: Any) -> None:
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        self.reports += 1
        value = float(loss)
        progress = {
            "iteration": int(iteration),
            "iterations": self.iterations,
            "loss": value if math.isfinite(value) else None,
        }
        self.session.tick({PROGRESS_KEY: progress})


def run_tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable (see the module docstring)."""
    threads = config[FIXED_KEY].get("threads")
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    run_routed_trial(config, TuneSession(), _reference_reader(config, route_of(config)))


def run_routed_trial(
    config: dict[str, Any],
    session: TrialSession,
    references: ReferenceReader,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> None:
    """Runs the trial of a Tune ``config``, reporting to ``session``.

    Every evaluation is scored against what ``references`` knows so far and
    reported with the objectives' values; the final report carries the trial's outcome
    columns (:mod:`study._outcome`) under ``paretune_final``, scored once the reference
    has finished. In between, where training is goes to ``session.tick`` every
    ``progress_every_s`` seconds. A trial that raises reports ``paretune_error`` instead.
    A retried trial whose earlier attempt finished reports that outcome again without
    training.
    """
    route = route_of(config)
    where = session.where()
    previous = session.restore()
    if previous is not None and previous.get("final") is not None:
        final = previous["final"]
        session.report({**_reported(final, route), FINAL_KEY: final, **where}, previous)
        return

    ticker = ProgressTicker(session, planned_iterations(trial_fields(config)), progress_every_s)
    ticker.phase("setting up")
    from trials import TrialConfig, run_trial

    evaluations = 0

    def on_evaluation(evaluation: Any) -> None:
        nonlocal evaluations
        record = evaluation.model_dump()
        _score(record, references.peek(), route)
        evaluations += 1
        metrics = {"iteration": record["iteration"], "evaluation": record, **where}
        session.report({**metrics, **_reported(record, route)}, {"evaluations": evaluations})

    try:
        trial_config = TrialConfig.model_validate({**trial_fields(config), "reference": None})
        result = run_trial(trial_config, on_evaluation=on_evaluation, on_step=ticker)
        scored = result.model_dump(exclude={"evaluations"})
        _score(scored, references.wait(), route)
        final = result_outcome(scored, route.device_share)
    except Exception as error:
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        logger.warning("trial failed: %s", text)
        session.report(
            {ERROR_KEY: text, "traceback": traceback.format_exc(limit=20), **where},
            {"final": None, "error": text},
        )
        return
    session.report({**_reported(final, route), FINAL_KEY: final, **where}, {"final": final})
