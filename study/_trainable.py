"""The Ray Tune trainable: one paretune trial inside a Ray worker.

The driver puts the fixed part of the trial under the ``paretune`` key of the Tune config;
the searcher's suggestions sit beside it. Every evaluation is reported with
``ray.tune.report`` and a small progress checkpoint; the final report carries the whole
:class:`~trials.TrialResult`. A trial that raises (or whose loss goes NaN) reports a final
result with ``paretune_error`` instead of raising, because retrying a deterministic failure
would only repeat it; Ray's own retries are kept for lost workers and nodes.

Beside the searcher's suggestions, ``paretune_route`` says which method run a trial belongs
to and where to read its seed's dense reference (:mod:`study._board`): Delta_T is computed
here, against the reference, as soon as the reference is known.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import traceback
from pathlib import Path
from typing import Any

FIXED_KEY = "paretune"
ROUTE_KEY = "paretune_route"
FINAL_KEY = "paretune_final"
ERROR_KEY = "paretune_error"
PROGRESS_FILE = "progress.json"

logger = logging.getLogger(__name__)


def trial_fields(config: dict[str, Any]) -> dict[str, Any]:
    """Merges the fixed trial fields with the searched parameters.

    A searched name that is a ``TrialConfig`` field (e.g. ``lr``) sets that field; every
    other searched name is a parameter of the method.
    """
    from trials import TrialConfig

    fixed = dict(config[FIXED_KEY])
    method_params = dict(fixed.get("method_params") or {})
    for name, value in config.items():
        if name in (FIXED_KEY, ROUTE_KEY):
            continue
        if name in TrialConfig.model_fields:
            fixed[name] = value
        else:
            method_params[name] = value
    fixed["method_params"] = method_params
    return fixed


def _where() -> dict[str, str]:
    import ray

    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # not inside Ray (replay, tests)
        node_id = ""
    return {"host": socket.gethostname(), "node_id": node_id}


def _read_checkpoint() -> dict[str, Any] | None:
    """The progress saved by an earlier attempt of this trial, if readable."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    try:
        with checkpoint.as_directory() as folder:
            progress = json.loads(Path(folder, PROGRESS_FILE).read_text())
        if not isinstance(progress, dict):
            raise ValueError(f"{PROGRESS_FILE} holds a {type(progress).__name__}, not a mapping")
        return progress
    except (OSError, ValueError) as error:
        logger.warning(
            "checkpoint of this trial is unreadable (%s); restarting from scratch", error
        )
        return None


def _report(metrics: dict[str, Any], progress: dict[str, Any]) -> None:
    from ray import tune

    with tempfile.TemporaryDirectory(prefix="paretune-ckpt-") as folder:
        Path(folder, PROGRESS_FILE).write_text(json.dumps(progress))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _objective_values(result: dict[str, Any]) -> dict[str, float]:
    delta = result.get("delta_t")
    values = {
        "delta_t": 0.0 if delta is None else float(delta),
        "sparsity": float(result["sparsity"]["overall"]),
        "parameters": float(result.get("parameters", 0)),
    }
    for name in ("flops", "wall_time_s"):
        if result.get(name) is not None:
            values[name] = float(result[name])
    return values


def _reference_reader(config: dict[str, Any]) -> Any:
    """Where this trial reads its seed's reference (nothing for the reference itself)."""
    from study._board import BoardReader

    fixed = config[FIXED_KEY]
    route = config.get(ROUTE_KEY) or {}
    if route.get("reference"):
        return BoardReader("", int(fixed.get("seed", 0)))
    return BoardReader(route.get("board", ""), int(fixed.get("seed", 0)), fixed.get("reference"))


def _score(record: dict[str, Any], reference: dict[str, Any] | None) -> None:
    """Sets ``delta_t`` (and per task, for a final result) of ``record`` in place."""
    from trials.metrics import delta_t

    if reference is None:
        return
    record["delta_t"], per_task = delta_t(record["metrics"], reference)
    if "delta_t_per_task" in record:
        record["delta_t_per_task"] = per_task


def run_tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable (see the module docstring)."""
    threads = config[FIXED_KEY].get("threads")
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    where = _where()
    previous = _read_checkpoint()
    if previous is not None and previous.get("final") is not None:
        final = previous["final"]
        _report({**_objective_values(final), FINAL_KEY: final, **where}, previous)
        return

    from trials import TrialConfig, run_trial

    reader = _reference_reader(config)
    evaluations: list[dict[str, Any]] = []

    def on_evaluation(evaluation: Any) -> None:
        record = evaluation.model_dump()
        _score(record, reader.peek())
        evaluations.append(record)
        metrics = {
            "iteration": record["iteration"],
            "sparsity": record["sparsity"],
            "evaluation": record,
            **where,
        }
        if record["delta_t"] is not None:
            metrics["delta_t"] = record["delta_t"]
        _report(metrics, {"evaluations": len(evaluations), "final": None})

    try:
        trial_config = TrialConfig.model_validate({**trial_fields(config), "reference": None})
        result = run_trial(trial_config, on_evaluation=on_evaluation)
        final = result.model_dump(exclude={"evaluations"})
        _score(final, reader.wait())
    except Exception as error:
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        logger.warning("trial failed: %s", text)
        _report(
            {ERROR_KEY: text, "traceback": traceback.format_exc(limit=20), **where},
            {"final": None, "error": text},
        )
        return
    _report({**_objective_values(final), FINAL_KEY: final, **where}, {"final": final})
