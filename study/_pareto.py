"""Pareto maths in plain numpy and moocore: fronts, ranks, crowding, knees, hypervolume.

Every function takes the objective values as an ``(n_points, n_objectives)`` array and the
objectives' directions (``"maximize"`` or ``"minimize"``, one per column) and works on the
minimisation form internally. Point ``a`` dominates ``b`` when ``a`` is no worse in every
objective and strictly better in at least one; identical points therefore never dominate
each other and always share a front. Rows with a NaN or infinite value are refused with an
error naming the row (drop unknown objective values first).

The front mask, the front ranks and the hypervolume come from moocore, a maintained C
library (Lopez-Ibanez et al.), which agrees with these rules: ``is_nondominated`` with
``keep_weakly=True`` keeps duplicated non-dominated points, ``pareto_rank`` gives identical
points one rank. Crowding distance, knee points and the hypervolume trace are ours: moocore
has none of them. This module loads neither pandas nor plotly (the ``mo-asha`` scheduler
uses it in the Ray driver). moocore costs about 65-130 ms to import on its own (its data
set module loads urllib, ssl and email) but 11-30 ms where Ray Tune or pandas is loaded
already, as in every module that uses this one.

References:
    Deb, Pratap, Agarwal and Meyarivan, "A fast and elitist multiobjective genetic algorithm:
    NSGA-II", IEEE TEVC 2002 (fronts and crowding distance).
    Jensen, "Reducing the run-time complexity of multiobjective EAs: the NSGA-II and other
    algorithms", IEEE TEVC 2003 (moocore's two-objective sort).
    Das, "On characterizing the 'knee' of the Pareto curve based on normal-boundary
    intersection", Structural Optimization 1999 (the knee as the point farthest from the
    line through the extremes).
    Zitzler and Thiele, "Multiobjective optimization using evolutionary algorithms - a
    comparative case study", PPSN 1998 (the hypervolume indicator); Fonseca, Paquete and
    Lopez-Ibanez 2006 and Guerreiro and Fonseca 2018 (moocore's algorithms).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import moocore
import numpy as np

__all__ = [
    "DEFAULT_MARGIN",
    "DIRECTIONS",
    "as_minimization",
    "crowding_distance",
    "default_reference",
    "hypervolume",
    "hypervolume_trace",
    "knee_point",
    "non_dominated_sort",
    "pareto_mask",
]

DIRECTIONS = ("maximize", "minimize")
DEFAULT_MARGIN = 0.1
"""Share of the observed range a default reference point lies beyond the worst value."""

Points = np.ndarray | Sequence[Sequence[float]]


def _check_points(points: Points) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim != 2:
        raise ValueError(
            f"points must be a 2-D array (n_points, n_objectives); got shape {array.shape}"
        )
    if array.size and not np.all(np.isfinite(array)):
        row = int(np.flatnonzero(~np.all(np.isfinite(array), axis=1))[0])
        raise ValueError(
            f"points must be finite; row {row} is {array[row].tolist()} "
            "(drop trials with unknown objective values first)"
        )
    return array


def _check_directions(directions: Sequence[str], n_objectives: int) -> np.ndarray:
    if isinstance(directions, str):
        raise ValueError(
            f"directions must be a sequence with one direction per objective; got {directions!r}"
        )
    directions = list(directions)
    if len(directions) != n_objectives:
        raise ValueError(
            f"directions must have one entry per objective ({n_objectives}); "
            f"got {len(directions)}: {directions}"
        )
    for i, direction in enumerate(directions):
        if direction not in DIRECTIONS:
            raise ValueError(f"directions[{i}] must be 'maximize' or 'minimize'; got {direction!r}")
    return np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def as_minimization(points: Points, directions: Sequence[str]) -> np.ndarray:
    """Return a float copy of ``points`` with every maximised column negated.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        The values to minimise (``-0.0`` normalised to ``0.0``).
    """
    array = _check_points(points)
    signs = _check_directions(directions, array.shape[1])
    return array * signs + 0.0


def non_dominated_sort(points: Points, directions: Sequence[str]) -> np.ndarray:
    """Rank points by Pareto front (0 = the Pareto front, 1 = the front once 0 is removed, ...).

    :func:`moocore.pareto_rank`: two objectives take ``O(n log n)`` (Jensen 2003); three or
    more peel one front at a time. Identical points get the same rank; with one objective
    the rank is the position of the value among the distinct values.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        Integer front rank per point, shape ``(n_points,)``.
    """
    loss = as_minimization(points, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(moocore.pareto_rank(loss), dtype=np.int64)


def pareto_mask(points: Points, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the points on the Pareto front (rank 0), duplicates included.

    :func:`moocore.is_nondominated` with ``keep_weakly=True``: ``O(n log n)`` for up to
    three objectives.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        ``True`` for every non-dominated point.
    """
    loss = as_minimization(points, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(loss, keep_weakly=True), dtype=bool)


def crowding_distance(points: Points) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (Deb et al. 2002).

    For each objective the points are sorted; the two boundary points get infinity and every
    other point adds the gap between its neighbours divided by the objective's range (an
    objective with zero range adds nothing). Directions do not matter.

    Args:
        points: Objective values of one front, shape ``(n_points, n_objectives)``.

    Returns:
        Crowding distance per point (larger = more isolated).
    """
    array = _check_points(points)
    n_points, n_objectives = array.shape
    distance = np.zeros(n_points)
    if n_points <= 2:
        distance[:] = np.inf
        return distance
    for j in range(n_objectives):
        order = np.argsort(array[:, j], kind="stable")
        values = array[order, j]
        distance[order[0]] = np.inf
        distance[order[-1]] = np.inf
        span = values[-1] - values[0]
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def knee_point(front_points: Points, directions: Sequence[str]) -> int:
    """Index of the knee of a front: the best trade-off point.

    Objectives are first normalised to ``[0, 1]`` in minimisation form (0 = best value on the
    front). With two objectives the knee is the point farthest from the straight line through
    the two extreme points, on the side of the ideal point (Das 1999); when no point lies on
    that side (a straight or concave front), or with three or more objectives, the knee is
    the point closest (Euclidean) to the normalised ideal point ``(0, ..., 0)``. Ties go to
    the first index.

    Args:
        front_points: Objective values of the front, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        Row index into ``front_points``.
    """
    loss = as_minimization(front_points, directions)
    n_points, n_objectives = loss.shape
    if n_points == 0:
        raise ValueError("front_points must contain at least one point; got 0")
    if n_points == 1:
        return 0
    low = loss.min(axis=0)
    span = loss.max(axis=0) - low
    span[span == 0] = 1.0
    norm = (loss - low) / span
    if n_objectives == 2:
        # Extremes: best in objective 0 (ties -> best in 1) and best in objective 1.
        first = int(np.lexsort((norm[:, 1], norm[:, 0]))[0])
        second = int(np.lexsort((norm[:, 0], norm[:, 1]))[0])
        a, b = norm[first], norm[second]
        direction = b - a
        length = float(np.hypot(*direction))
        if length > 0:
            # Signed distance; positive on the side of the ideal point (origin).
            normal = np.array([-direction[1], direction[0]]) / length
            if float(normal @ (0.0 - a)) < 0:
                normal = -normal
            signed = (norm - a) @ normal
            best = int(np.argmax(signed))
            if signed[best] > 1e-12:
                return best
    return int(np.argmin(np.linalg.norm(norm, axis=1)))


def default_reference(
    points: Points, directions: Sequence[str], margin: float = DEFAULT_MARGIN
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
    """Hypervolume of minimisation points ``loss`` against ``ref`` (same form).

    moocore leaves out the points that are not strictly better than ``ref`` in every
    objective itself (the tests hold it to a brute-force definition), so they are not
    filtered here.
    """
    if len(loss) == 0:
        return 0.0
    return float(moocore.hypervolume(loss, ref=ref))


def hypervolume(
    points: Points,
    directions: Sequence[str],
    reference: np.ndarray | Sequence[float] | None = None,
) -> float:
    """Exact hypervolume dominated by ``points`` up to ``reference``.

    Points that are not strictly better than the reference in every objective contribute
    nothing; dominated and duplicate points are allowed. :func:`moocore.hypervolume`:
    ``O(n log n)`` for two and three objectives.

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
    points: Points,
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
