"""Hypervolume indicator: an exact numpy sweep for two objectives, moocore beyond.

The hypervolume of a point set is the volume of objective space it dominates up to a
reference point (Zitzler and Thiele, "Multiobjective optimization using evolutionary
algorithms - a comparative case study", PPSN 1998). Points that are not strictly better than
the reference in every objective contribute nothing. Three or more objectives use moocore's
maintained implementation (Fonseca, Paquete and Lopez-Ibanez 2006; Guerreiro and Fonseca
2018).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import moocore
import numpy as np

from analysis._pareto import as_minimization

__all__ = ["default_reference", "hypervolume", "hypervolume_trace"]

DEFAULT_MARGIN = 0.1


def default_reference(
    points: np.ndarray | Sequence[Sequence[float]],
    directions: Sequence[str],
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """A reference point just worse than every point, per objective.

    Rule: in each objective take the worst observed value and move it further towards
    "worse" by ``margin`` times the observed range (by ``margin * max(|worst|, 1)`` when all
    values are equal), so every point, including the extremes, adds volume. For example a
    maximised ``delta_t`` observed in ``[-8, 2]`` gets the reference ``-9``. Objectives with a
    natural worst value (a maximised sparsity's 0) are better given explicitly; see
    :func:`analysis.objective_reference`.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``; at least one point.
        directions: ``"maximize"`` or ``"minimize"`` per column.
        margin: Fraction of the observed range added beyond the worst value.

    Returns:
        The reference point in the objectives' own directions, shape ``(n_objectives,)``.
    """
    loss = as_minimization(points, directions)
    if len(loss) == 0:
        raise ValueError("default_reference needs at least one point; got 0")
    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    worst = loss.max(axis=0)
    span = worst - loss.min(axis=0)
    pad = np.where(span > 0, margin * span, margin * np.maximum(np.abs(worst), 1.0))
    signs = as_minimization(np.ones((1, loss.shape[1])), directions)[0]
    return (worst + pad) * signs + 0.0


def _reference_loss(
    reference: np.ndarray | Sequence[float], directions: Sequence[str], n_objectives: int
) -> np.ndarray:
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (n_objectives,) or not np.all(np.isfinite(ref)):
        raise ValueError(
            f"reference must hold one finite value per objective ({n_objectives}); "
            f"got {ref.tolist()}"
        )
    return as_minimization(ref[None, :], directions)[0]


def _hypervolume_loss(loss: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of minimisation points ``loss`` against ``ref`` (same form)."""
    loss = loss[np.all(loss < ref, axis=1)]
    if len(loss) == 0:
        return 0.0
    if loss.shape[1] == 1:
        return float(ref[0] - loss[:, 0].min())
    if loss.shape[1] == 2:
        order = np.lexsort((loss[:, 1], loss[:, 0]))
        x = loss[order, 0]
        y = np.minimum.accumulate(loss[order, 1])
        widths = np.diff(np.append(x, ref[0]))
        return float(np.sum(widths * (ref[1] - y)))
    return float(moocore.hypervolume(loss, ref=ref))


def hypervolume(
    points: np.ndarray | Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: np.ndarray | Sequence[float] | None = None,
) -> float:
    """Exact hypervolume dominated by ``points`` up to ``reference``.

    Two objectives use a sort-and-sweep (``O(n log n)``); three or more call
    :func:`moocore.hypervolume`. Dominated and duplicate points are allowed.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.
        reference: Reference point in the objectives' own directions; defaults to
            :func:`default_reference` of ``points``.

    Returns:
        The hypervolume (0.0 for no points or none better than the reference).
    """
    loss = as_minimization(points, directions)
    if len(loss) == 0:
        return 0.0
    if reference is None:
        reference = default_reference(points, directions)
    ref = _reference_loss(reference, directions, loss.shape[1])
    return _hypervolume_loss(loss, ref)


def _trace_2d(loss: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume after each point is added, for two objectives, updated incrementally.

    The current front is kept sorted by x (so y decreases); a new point adds the area between
    the front's staircase and its own y, and removes the front points it dominates.
    """
    out = np.empty(len(loss))
    xs: list[float] = []
    ys: list[float] = []
    total = 0.0
    rx, ry = float(ref[0]), float(ref[1])
    for k, (x, y) in enumerate(loss.tolist()):
        if not (x < rx and y < ry):
            out[k] = total
            continue
        i = bisect.bisect_left(xs, x)
        dominated = (i > 0 and ys[i - 1] <= y) or (i < len(xs) and xs[i] == x and ys[i] <= y)
        if dominated:
            out[k] = total
            continue
        left = x
        height = ys[i - 1] if i > 0 else ry
        area = 0.0
        j = i
        while j < len(xs) and ys[j] >= y:
            area += (xs[j] - left) * (height - y)
            left, height = xs[j], ys[j]
            j += 1
        end = xs[j] if j < len(xs) else rx
        area += (end - left) * (height - y)
        xs[i:j] = [x]
        ys[i:j] = [y]
        total += area
        out[k] = total
    return out


def _trace_nd(loss: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.empty(len(loss))
    front = np.empty((0, loss.shape[1]))
    total = 0.0
    for k, point in enumerate(loss):
        if np.all(point < ref) and not np.any(np.all(front <= point, axis=1)):
            front = np.vstack([front[~np.all(point <= front, axis=1)], point])
            total = _hypervolume_loss(front, ref)
        out[k] = total
    return out


def hypervolume_trace(
    points: np.ndarray | Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """Hypervolume of ``points[:k + 1]`` for every ``k`` (points in arrival order).

    Two objectives update the front incrementally (about ``O(n log n)`` plus front edits);
    three or more recompute the hypervolume only when a point enters the front.

    Args:
        points: Objective values in arrival order, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.
        reference: Reference point in the objectives' own directions; defaults to
            :func:`default_reference` of all ``points``.

    Returns:
        Non-decreasing hypervolumes, shape ``(n_points,)``.
    """
    loss = as_minimization(points, directions)
    if len(loss) == 0:
        return np.zeros(0)
    if reference is None:
        reference = default_reference(points, directions)
    ref = _reference_loss(reference, directions, loss.shape[1])
    if loss.shape[1] == 2:
        return _trace_2d(loss, ref)
    if loss.shape[1] == 1:
        best = np.minimum.accumulate(loss[:, 0])
        return np.maximum(ref[0] - best, 0.0)
    return _trace_nd(loss, ref)
