"""Metric names, their directions, and the multi-task scores Delta_T and Delta_m.

Pure Python (no torch, no numpy) so that light-weight callers can use it.

Units of the metrics the tasks report:

=================  =======  =============================================================
name               better   meaning
=================  =======  =============================================================
``miou``           higher   mean intersection over union of the classes seen, percent
``pixel_acc``      higher   correctly labelled non-ignored pixels, percent
``cross_entropy``  lower    mean per-pixel cross-entropy (nats) over non-ignored pixels
``abs_err``        lower    mean absolute depth error over valid pixels (data set units)
``rel_err``        lower    mean ``|p - g| / g`` over valid pixels (a ratio, not percent)
``delta_1.25``     higher   valid pixels with ``max(p/g, g/p) < 1.25``, percent
``delta_1.25^2``   higher   same with ``1.25**2``, percent
``delta_1.25^3``   higher   same with ``1.25**3``, percent
``angle_mean``     lower    mean angle between predicted and true normals, degrees
``angle_median``   lower    exact median of that angle over all valid pixels, degrees
``within_11.25``   higher   valid pixels with angle error < 11.25 degrees, percent
``within_22.5``    higher   same with 22.5 degrees, percent
``within_30``      higher   same with 30 degrees, percent
``cosine``         higher   mean cosine similarity of normals over valid pixels
``l1``             lower    mean absolute error over all pixels (keypoints, edges)
``accuracy``       higher   correctly predicted binary attributes (images), percent
=================  =======  =============================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trials.registry import UnknownNameError, unknown_name_message


@dataclass(frozen=True)
class MetricInfo:
    """A metric's name and direction."""

    name: str
    higher_is_better: bool


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("miou", True),
        MetricInfo("pixel_acc", True),
        MetricInfo("cross_entropy", False),
        MetricInfo("abs_err", False),
        MetricInfo("rel_err", False),
        MetricInfo("delta_1.25", True),
        MetricInfo("delta_1.25^2", True),
        MetricInfo("delta_1.25^3", True),
        MetricInfo("angle_mean", False),
        MetricInfo("angle_median", False),
        MetricInfo("within_11.25", True),
        MetricInfo("within_22.5", True),
        MetricInfo("within_30", True),
        MetricInfo("cosine", True),
        MetricInfo("l1", False),
        MetricInfo("accuracy", True),
    )
}
"""Every metric a task can report, by name."""


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; unknown names raise listing the choices."""
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("metric", name, list(METRICS))) from None


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better."""
    return metric_info(name).higher_is_better


def _changes(
    scores: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
) -> dict[str, list[float]]:
    """Per task (in the order of ``scores``), the signed relative change in percent of each
    metric present in both mappings with a non-zero reference value; tasks left without
    one are absent."""
    changes: dict[str, list[float]] = {}
    for task, task_scores in scores.items():
        task_reference = reference.get(task)
        if task_reference is None:
            continue
        terms = []
        for name, value in task_scores.items():
            if name not in task_reference:
                continue
            ref = float(task_reference[name])
            if ref == 0.0:
                continue
            sign = 1.0 if higher_is_better(name) else -1.0
            terms.append(sign * (float(value) - ref) / abs(ref) * 100.0)
        if terms:
            changes[task] = terms
    return changes


def delta_scores(
    scores: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
) -> tuple[float, dict[str, float], float]:
    """``(Delta_T, {task: Delta_Ti}, Delta_m)`` of ``scores`` against ``reference`` (see
    :func:`delta_t` and :func:`delta_m`), what a trial reports at each evaluation."""
    total, per_task = delta_t(scores, reference)
    return total, per_task, delta_m(scores, reference)


def delta_t(
    scores: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
) -> tuple[float, dict[str, float]]:
    """Multi-task score of ``scores`` against ``reference`` (usually the dense model).

    For task ``i`` with metrics ``j`` present in both mappings,
    ``Delta_Ti = sum_j s_j * (M_j - M_ref_j) / |M_ref_j| * 100`` with ``s_j = +1`` when
    higher is better and ``-1`` otherwise (a *sum* over the task's metrics), and
    ``Delta_T = mean_i Delta_Ti`` over the tasks present in both (AdapMTL's form, Xiang
    et al., ACM MM 2024, after Maninis et al., CVPR 2019; :func:`delta_m` averages over
    metrics instead). Dividing by ``|M_ref_j|``
    equals the published formula for the non-negative metrics and keeps the sign right
    for a negative reference (a cosine below zero).

    A metric whose reference value is 0 has no relative change and is skipped; a task
    left with no metric is skipped too. NaN values propagate (a NaN metric means the
    split had nothing valid to score, or a run diverged).

    Args:
        scores: task -> metric name -> value of the model being scored.
        reference: task -> metric name -> value of the reference model.

    Returns:
        ``(Delta_T, {task: Delta_Ti})`` in percent, tasks in the order of ``scores``.

    Raises:
        ValueError: no task has a metric in both mappings with a non-zero reference.
        UnknownNameError: a shared metric name is not in :data:`METRICS`.

    Example:
        >>> total, per_task = delta_t(
        ...     {"seg": {"miou": 20.16, "pixel_acc": 49.14}},
        ...     {"seg": {"miou": 19.94, "pixel_acc": 48.71}},
        ... )
        >>> round(per_task["seg"], 2)
        1.99
    """
    per_task = {task: math.fsum(terms) for task, terms in _changes(scores, reference).items()}
    if not per_task:
        raise ValueError(
            "delta_t needs at least one task with a metric in both the scores and the "
            f"reference (non-zero reference value) but got score tasks {sorted(scores)} "
            f"and reference tasks {sorted(reference)}"
        )
    return math.fsum(per_task.values()) / len(per_task), per_task


def delta_m(
    scores: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
) -> float:
    """Multi-task score in the form most multi-task papers tabulate (Maninis et al., CVPR
    2019): the *mean over every metric of every task* of
    ``s_j * (M_j - M_ref_j) / |M_ref_j| * 100``, percent.

    :func:`delta_t` sums a task's metrics and then averages over tasks, so a task with
    more metrics weighs more there; here every metric weighs the same. Metrics are
    matched, skipped and signed as in :func:`delta_t`.

    Raises:
        ValueError: no metric is in both mappings with a non-zero reference.

    Example:
        >>> round(delta_m({"seg": {"miou": 22.0, "pixel_acc": 50.0}, "depth": {"abs_err": 0.9}},
        ...               {"seg": {"miou": 20.0, "pixel_acc": 50.0}, "depth": {"abs_err": 1.0}}), 4)
        6.6667
    """
    terms = [term for task_terms in _changes(scores, reference).values() for term in task_terms]
    if not terms:
        raise ValueError(
            "delta_m needs at least one metric in both the scores and the reference "
            f"(non-zero reference value) but got score tasks {sorted(scores)} and "
            f"reference tasks {sorted(reference)}"
        )
    return math.fsum(terms) / len(terms)


def total_error(metrics: Mapping[str, Mapping[str, float]]) -> float:
    """Sum over the tasks of the classification error ``100 - accuracy``, in percent.

    The task-grouping papers' score on attribute data sets (TAG, Fifty et al. NeurIPS
    2021; DMTG, Gao et al. ICML 2024): lower is better.

    Raises:
        ValueError: no task, or a task without an ``accuracy`` metric.
    """
    missing = [task for task, values in metrics.items() if "accuracy" not in values]
    if missing or not metrics:
        raise ValueError(
            f"total_error needs an 'accuracy' metric for every task but got none for "
            f"{missing or 'any task'}"
        )
    return math.fsum(100.0 - float(values["accuracy"]) for values in metrics.values())


def adjusted_rand_index(labels: Sequence[object], truth: Sequence[object]) -> float:
    """Adjusted Rand index of two partitions given as one label per item (Hubert & Arabie,
    1985): 1 for identical partitions (up to renaming), about 0 for chance agreement.

    Two partitions that both put every item in one cluster (or both in singletons) count
    as identical (1.0).

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(labels) != len(truth) or not labels:
        raise ValueError(
            f"adjusted_rand_index needs two equally long non-empty labelings but got "
            f"{len(labels)} and {len(truth)} labels"
        )

    def pairs(count: int) -> float:
        return count * (count - 1) / 2.0

    joint: dict[tuple[object, object], int] = {}
    rows: dict[object, int] = {}
    cols: dict[object, int] = {}
    for a, b in zip(labels, truth, strict=True):
        joint[(a, b)] = joint.get((a, b), 0) + 1
        rows[a] = rows.get(a, 0) + 1
        cols[b] = cols.get(b, 0) + 1
    index = math.fsum(pairs(n) for n in joint.values())
    row_sum = math.fsum(pairs(n) for n in rows.values())
    col_sum = math.fsum(pairs(n) for n in cols.values())
    expected = row_sum * col_sum / pairs(len(labels)) if len(labels) > 1 else 0.0
    maximum = (row_sum + col_sum) / 2.0
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)
