"""Pareto dominance in plain numpy: non-dominated sorting, fronts, crowding and knees.

Every function takes the objective values as an ``(n_points, n_objectives)`` array and the
objectives' directions (``"maximize"`` or ``"minimize"``, one per column) and works on the
minimisation form internally. Point ``a`` dominates ``b`` when ``a`` is no worse in every
objective and strictly better in at least one; identical points therefore never dominate
each other and always share a front.

References:
    Deb, Pratap, Agarwal and Meyarivan, "A fast and elitist multiobjective genetic algorithm:
    NSGA-II", IEEE TEVC 2002 (fronts and crowding distance).
    Jensen, "Reducing the run-time complexity of multiobjective EAs: the NSGA-II and other
    algorithms", IEEE TEVC 2003 (the O(n log n) two-objective sort used here).
    Das, "On characterizing the 'knee' of the Pareto curve based on normal-boundary
    intersection", Structural Optimization 1999 (the knee as the point farthest from the
    line through the extremes).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

__all__ = [
    "DIRECTIONS",
    "as_minimization",
    "crowding_distance",
    "knee_point",
    "non_dominated_sort",
    "pareto_mask",
]

DIRECTIONS = ("maximize", "minimize")


def _check_points(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
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


def as_minimization(
    points: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]
) -> np.ndarray:
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


def _unique_rows(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows in lexicographic order and the inverse map back to ``loss``."""
    order = np.lexsort(loss.T[::-1])  # first column is the primary key
    ordered = loss[order]
    starts = np.ones(len(loss), dtype=bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(loss), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


def _front_2d(unique: np.ndarray) -> np.ndarray:
    """Front mask of unique, lexsorted two-objective losses: a new running minimum of y."""
    on_front = np.ones(len(unique), dtype=bool)
    if len(unique) > 1:
        running_min = np.minimum.accumulate(unique[:, 1])
        on_front[1:] = unique[1:, 1] < running_min[:-1]
    return on_front


def _front_nd(unique: np.ndarray) -> np.ndarray:
    """Front mask of unique, lexsorted losses of any dimension.

    In lexicographic order no later point can dominate an earlier one, so the first remaining
    point is always non-dominated; every point it dominates is discarded and the scan goes on.
    The cost is ``O(n * front size)``.
    """
    on_front = np.zeros(len(unique), dtype=bool)
    remaining = np.arange(len(unique))
    while remaining.size:
        first = remaining[0]
        on_front[first] = True
        # Unique points: "no worse everywhere" means dominated by ``first``.
        survives = np.any(unique[remaining] < unique[first], axis=1)
        remaining = remaining[survives]
    return on_front


def _ranks_2d(unique: np.ndarray) -> np.ndarray:
    """Front ranks of unique, lexsorted two-objective losses in ``O(n log n)`` (Jensen 2003).

    Points arrive by increasing x; the last point placed on each front has that front's
    smallest y and those minima are non-decreasing from front to front, so a binary search
    finds the first front whose last point does not dominate the new one.
    """
    ranks = np.empty(len(unique), dtype=np.int64)
    last_y: list[float] = []
    for i, y in enumerate(unique[:, 1].tolist()):
        rank = bisect.bisect_right(last_y, y)
        if rank == len(last_y):
            last_y.append(y)
        else:
            last_y[rank] = y
        ranks[i] = rank
    return ranks


def _ranks_nd(unique: np.ndarray) -> np.ndarray:
    """Front ranks of unique, lexsorted losses by peeling one front at a time."""
    ranks = np.empty(len(unique), dtype=np.int64)
    remaining = np.arange(len(unique))
    rank = 0
    while remaining.size:
        on_front = _front_nd(unique[remaining])
        ranks[remaining[on_front]] = rank
        remaining = remaining[~on_front]
        rank += 1
    return ranks


def non_dominated_sort(
    points: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]
) -> np.ndarray:
    """Rank points by Pareto front (0 = the Pareto front, 1 = the front once 0 is removed, ...).

    Two objectives take ``O(n log n)``; three or more peel fronts one at a time (about
    ``O(n^2)`` in the worst case). Identical points get the same rank.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        Integer front rank per point, shape ``(n_points,)``.
    """
    loss = as_minimization(points, directions)
    n_points, n_objectives = loss.shape
    if n_points == 0:
        return np.zeros(0, dtype=np.int64)
    unique, inverse = _unique_rows(loss)
    if n_objectives == 1:
        ranks = np.arange(len(unique), dtype=np.int64)
    elif n_objectives == 2:
        ranks = _ranks_2d(unique)
    else:
        ranks = _ranks_nd(unique)
    return ranks[inverse]


def pareto_mask(
    points: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]
) -> np.ndarray:
    """Boolean mask of the points on the Pareto front (rank 0), duplicates included.

    Two objectives take ``O(n log n)`` (a sort and a running minimum); three or more take
    ``O(n * front size)``.

    Args:
        points: Objective values, shape ``(n_points, n_objectives)``.
        directions: ``"maximize"`` or ``"minimize"`` per column.

    Returns:
        ``True`` for every non-dominated point.
    """
    loss = as_minimization(points, directions)
    n_points, n_objectives = loss.shape
    if n_points == 0:
        return np.zeros(0, dtype=bool)
    if n_objectives == 1:
        return loss[:, 0] == loss[:, 0].min()
    unique, inverse = _unique_rows(loss)
    on_front = _front_2d(unique) if n_objectives == 2 else _front_nd(unique)
    return on_front[inverse]


def crowding_distance(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
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


def knee_point(
    front_points: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]
) -> int:
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
