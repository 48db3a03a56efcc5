"""Fronts, ranks, crowding, knees and hypervolume against Optuna, moocore and brute force."""

from __future__ import annotations

import time

import moocore
import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _fast_non_domination_rank, _is_pareto_front

from study._pareto import (
    as_minimization,
    crowding_distance,
    default_reference,
    hypervolume,
    hypervolume_trace,
    knee_point,
    non_dominated_sort,
    pareto_mask,
)

DIRECTION_SETS = [
    ("maximize", "maximize"),
    ("minimize", "maximize"),
    ("minimize", "minimize"),
    ("maximize", "minimize", "maximize"),
    ("minimize", "minimize", "minimize"),
    ("maximize", "minimize", "maximize", "minimize"),
]


def _integer_points(rng: np.random.Generator, n: int, m: int, high: int = 6) -> np.ndarray:
    """Small integer grid: ties in single objectives and exact duplicates are frequent."""
    points = rng.integers(0, high, size=(n, m)).astype(float)
    points[-3:] = points[:3]  # guarantee some duplicated rows
    return points


def _maximise(directions: tuple[str, ...]) -> list[bool]:
    return [d == "maximize" for d in directions]


@pytest.mark.parametrize("directions", DIRECTION_SETS)
@pytest.mark.parametrize("seed", range(5))
def test_ranks_match_optuna_and_moocore(directions: tuple[str, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = _integer_points(rng, 60, len(directions))
    ranks = non_dominated_sort(points, directions)
    loss = as_minimization(points, directions)
    np.testing.assert_array_equal(ranks, _fast_non_domination_rank(loss))
    np.testing.assert_array_equal(
        ranks, moocore.pareto_rank(points, maximise=_maximise(directions))
    )
    # Duplicates share a rank.
    assert ranks[-1] == ranks[2] and ranks[-3] == ranks[0]


@pytest.mark.parametrize("directions", DIRECTION_SETS)
@pytest.mark.parametrize("seed", range(5))
def test_front_mask_matches_optuna_and_moocore(directions: tuple[str, ...], seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    points = _integer_points(rng, 80, len(directions), high=8)
    mask = pareto_mask(points, directions)
    loss = as_minimization(points, directions)
    np.testing.assert_array_equal(mask, _is_pareto_front(loss, assume_unique_lexsorted=False))
    np.testing.assert_array_equal(
        mask, moocore.is_nondominated(points, maximise=_maximise(directions), keep_weakly=True)
    )
    np.testing.assert_array_equal(mask, non_dominated_sort(points, directions) == 0)


def test_continuous_points_match_moocore() -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(500, 3))
    directions = ("maximize", "minimize", "maximize")
    np.testing.assert_array_equal(
        non_dominated_sort(points, directions),
        moocore.pareto_rank(points, maximise=_maximise(directions)),
    )


def test_identical_points_are_mutually_non_dominated() -> None:
    points = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.5]])
    directions = ("maximize", "maximize")
    np.testing.assert_array_equal(pareto_mask(points, directions), [True, True, False, False])
    np.testing.assert_array_equal(non_dominated_sort(points, directions), [0, 0, 2, 1])


def test_one_objective_and_empty_input() -> None:
    points = np.array([[3.0], [1.0], [3.0], [2.0]])
    np.testing.assert_array_equal(non_dominated_sort(points, ["maximize"]), [0, 2, 0, 1])
    np.testing.assert_array_equal(pareto_mask(points, ["minimize"]), [False, True, False, False])
    assert non_dominated_sort(np.empty((0, 2)), ["maximize", "maximize"]).shape == (0,)
    assert pareto_mask(np.empty((0, 2)), ["maximize", "maximize"]).shape == (0,)
    assert hypervolume(np.empty((0, 2)), ["maximize", "maximize"], [0.0, 0.0]) == 0.0


def test_large_two_objective_front_is_fast_and_correct() -> None:
    rng = np.random.default_rng(3)
    points = np.round(rng.random((100_000, 2)), 3)
    start = time.perf_counter()
    mask = pareto_mask(points, ("maximize", "maximize"))
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(
        mask, moocore.is_nondominated(points, maximise=True, keep_weakly=True)
    )
    assert elapsed < 2.0
    ranks = non_dominated_sort(points[:20_000], ("maximize", "minimize"))
    np.testing.assert_array_equal(
        ranks, moocore.pareto_rank(points[:20_000], maximise=[True, False])
    )


@pytest.mark.parametrize("directions", DIRECTION_SETS[:5])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_optuna_and_moocore(directions: tuple[str, ...], seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    points = _integer_points(rng, 40, len(directions), high=10)
    reference = np.where(np.array(_maximise(directions)), 2.0, 7.0)  # some points beyond it
    value = hypervolume(points, directions, reference)
    loss = as_minimization(points, directions)
    ref_loss = as_minimization(reference[None, :], directions)[0]
    inside = loss[np.all(loss < ref_loss, axis=1)]
    assert len(inside) < len(loss)  # the "beyond the reference" rule is exercised
    assert value == pytest.approx(compute_hypervolume(inside, ref_loss), rel=1e-12)
    assert value == pytest.approx(
        moocore.hypervolume(points, ref=reference, maximise=_maximise(directions)), rel=1e-12
    )


def test_hypervolume_by_hand_in_two_dimensions() -> None:
    # Maximise both with reference (0, 0): union of [0,3]x[0,1], [0,2]x[0,2], [0,1]x[0,3].
    points = [[3.0, 1.0], [2.0, 2.0], [1.0, 3.0], [1.0, 1.0], [2.0, 2.0]]
    assert hypervolume(points, ["maximize", "maximize"], [0.0, 0.0]) == pytest.approx(6.0)
    # A point equal to the reference in one objective adds nothing.
    assert hypervolume([[5.0, 0.0]], ["maximize", "maximize"], [0.0, 0.0]) == 0.0
    assert hypervolume([[0.5, 0.5]], ["minimize", "minimize"], [1.0, 1.0]) == pytest.approx(0.25)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_trace_matches_prefix_hypervolumes(m: int) -> None:
    rng = np.random.default_rng(m)
    directions = ["maximize"] * (m - 1) + ["minimize"]
    points = _integer_points(rng, 50, m, high=12)
    reference = default_reference(points, directions)
    trace = hypervolume_trace(points, directions, reference)
    expected = [hypervolume(points[: k + 1], directions, reference) for k in range(len(points))]
    np.testing.assert_allclose(trace, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(trace) >= -1e-12)


def test_default_reference_rule() -> None:
    points = np.array([[-8.0, 0.5], [2.0, 0.9], [0.0, 0.7]])
    reference = default_reference(points, ["maximize", "minimize"])
    np.testing.assert_allclose(reference, [-9.0, 0.94])
    # All equal: pad by margin * max(|worst|, 1).
    np.testing.assert_allclose(default_reference([[5.0]], ["maximize"]), [4.5])
    # Every point adds volume against the default reference.
    assert hypervolume(points, ["maximize", "minimize"]) > 0


def test_crowding_distance() -> None:
    points = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    distance = crowding_distance(points)
    assert np.isinf(distance[0]) and np.isinf(distance[3])
    # Point 1: (3 - 0) / 4 + (4 - 1) / 4 = 1.5; point 2: (4 - 1) / 4 + (3 - 0) / 4 = 1.5.
    np.testing.assert_allclose(distance[1:3], [1.5, 1.5])
    assert np.all(np.isinf(crowding_distance([[1.0, 2.0], [2.0, 1.0]])))


def test_knee_point() -> None:
    # Convex front (maximise both): (0.9, 0.85) bulges towards the ideal corner.
    front = np.array([[1.0, 0.0], [0.9, 0.85], [0.5, 0.95], [0.0, 1.0]])
    assert knee_point(front, ["maximize", "maximize"]) == 1
    # Same shape in minimisation form with the rows shuffled.
    assert knee_point(-front[[3, 2, 1, 0]], ["minimize", "minimize"]) == 2
    # Straight front: no point beyond the line, closest to the ideal wins (the middle one).
    line = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert knee_point(line, ["maximize", "maximize"]) == 1
    # Three objectives: closest to the normalised ideal point.
    cube = np.array([[1.0, 0.0, 0.0], [0.8, 0.8, 0.7], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert knee_point(cube, ["maximize"] * 3) == 1
    assert knee_point([[1.0, 2.0]], ["maximize", "maximize"]) == 0


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"directions\[1\] must be 'maximize' or 'minimize'"):
        pareto_mask([[1.0, 2.0]], ["maximize", "max"])
    with pytest.raises(ValueError, match="one entry per objective"):
        non_dominated_sort([[1.0, 2.0]], ["maximize"])
    with pytest.raises(ValueError, match="row 1"):
        hypervolume([[1.0, 2.0], [np.nan, 1.0]], ["maximize", "maximize"], [0.0, 0.0])
    with pytest.raises(ValueError, match="reference must hold one finite value per objective"):
        hypervolume([[1.0, 2.0]], ["maximize", "maximize"], [0.0])
    with pytest.raises(ValueError, match="2-D array"):
        pareto_mask([1.0, 2.0], ["maximize"])
    with pytest.raises(ValueError, match="at least one point"):
        knee_point(np.empty((0, 2)), ["maximize", "maximize"])


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_ranks(loss: np.ndarray) -> np.ndarray:
    """Front ranks by definition: peel the points no remaining point dominates, O(n^2) each."""
    ranks = np.full(len(loss), -1)
    remaining = list(range(len(loss)))
    rank = 0
    while remaining:
        front = [i for i in remaining if not any(_dominates(loss[j], loss[i]) for j in remaining)]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def _brute_hypervolume(loss: np.ndarray, ref: np.ndarray) -> float:
    """Sum of the grid cells (between distinct coordinates) some point dominates."""
    inside = loss[np.all(loss < ref, axis=1)]
    if len(inside) == 0:
        return 0.0
    edges = [np.unique(np.append(inside[:, j], ref[j])) for j in range(loss.shape[1])]
    lows = np.stack(np.meshgrid(*[e[:-1] for e in edges], indexing="ij"), -1).reshape(-1, len(ref))
    sizes = np.stack(np.meshgrid(*[np.diff(e) for e in edges], indexing="ij"), -1).reshape(
        -1, len(ref)
    )
    covered = np.any(np.all(inside[None, :, :] <= lows[:, None, :], axis=2), axis=1)
    return float(np.prod(sizes[covered], axis=1).sum())


@pytest.mark.parametrize("directions", DIRECTION_SETS[:5])
@pytest.mark.parametrize("seed", range(4))
def test_moocore_backed_results_match_brute_force(directions: tuple[str, ...], seed: int) -> None:
    """Mask, ranks and hypervolume against O(n^2) definitions on data full of ties."""
    rng = np.random.default_rng(300 + seed)
    m = len(directions)
    points = _integer_points(rng, 45, m, high=7)
    points[5:10] = points[10:15]  # more exact duplicates
    points[20:25, 0] = points[25:30, 0]  # ties in one objective only
    loss = as_minimization(points, directions)
    ranks = _brute_ranks(loss)
    np.testing.assert_array_equal(non_dominated_sort(points, directions), ranks)
    np.testing.assert_array_equal(pareto_mask(points, directions), ranks == 0)
    reference = np.where(np.array(_maximise(directions)), 1.0, 5.0)  # some points beyond it
    ref_loss = as_minimization(reference[None, :], directions)[0]
    expected = _brute_hypervolume(loss, ref_loss)
    assert expected > 0
    assert hypervolume(points, directions, reference) == pytest.approx(expected, rel=1e-12)
    continuous = rng.normal(size=(40, m))
    continuous[-4:] = continuous[:4]
    loss = as_minimization(continuous, directions)
    np.testing.assert_array_equal(non_dominated_sort(continuous, directions), _brute_ranks(loss))
    reference = default_reference(continuous, directions)
    ref_loss = as_minimization(reference[None, :], directions)[0]
    assert hypervolume(continuous, directions, reference) == pytest.approx(
        _brute_hypervolume(loss, ref_loss), rel=1e-10
    )


def test_rows_with_nan_are_refused_by_every_function() -> None:
    points = [[1.0, 2.0], [np.inf, 1.0], [np.nan, 0.0]]
    directions = ["maximize", "maximize"]
    for function in (pareto_mask, non_dominated_sort, knee_point, default_reference):
        with pytest.raises(ValueError, match=r"points must be finite; row 1 is \[inf, 1.0\]"):
            function(points, directions)
    with pytest.raises(ValueError, match="row 2"):
        crowding_distance([[1.0, 2.0], [0.0, 3.0], [np.nan, 0.0]])
    with pytest.raises(ValueError, match="row 1"):
        hypervolume_trace(points, directions, [0.0, 0.0])
