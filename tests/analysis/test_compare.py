"""Method comparisons on small hand-made trials frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    best_at_sparsity_levels,
    hypervolume,
    hypervolume_vs_budget,
    hypervolume_within_noise,
    method_fronts,
    method_summary,
    objective_reference,
    seed_summary,
)

DIRECTIONS = ["maximize", "maximize"]


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (method, seed, status, delta_t, sparsity, iterations)."""
    frame = pd.DataFrame(
        rows, columns=["method", "seed", "status", "delta_t", "sparsity", "iterations"]
    )
    frame["trial_id"] = np.arange(1, len(frame) + 1)
    frame["is_reference"] = frame["trial_id"] == 1
    start = pd.Timestamp("2025-01-01", tz="UTC")
    frame["finished_at"] = [start + pd.Timedelta(minutes=k) for k in range(len(frame))]
    frame.loc[frame["status"] == "RUNNING", "finished_at"] = pd.NaT
    return frame


@pytest.fixture
def trials() -> pd.DataFrame:
    nan = math.nan
    return _frame(
        [
            ("dense", 0, "COMPLETE", 0.0, 0.0, 100),  # 1: the reference
            ("a", 0, "COMPLETE", 1.0, 0.5, 100),  # 2
            ("a", 0, "COMPLETE", 0.5, 0.8, 100),  # 3
            ("a", 0, "COMPLETE", -1.0, 0.9, 100),  # 4
            ("a", 0, "FAILED", nan, nan, 40),  # 5
            ("a", 0, "COMPLETE", -3.0, 0.95, 100),  # 6
            ("a", 0, "COMPLETE", 0.0, 0.6, 100),  # 7: dominated by 3
            ("b", 0, "COMPLETE", 2.0, 0.5, 100),  # 8
            ("b", 0, "COMPLETE", -0.5, 0.91, 100),  # 9
            ("b", 0, "RUNNING", nan, nan, 10),  # 10
            ("b", 0, "COMPLETE", -5.0, 0.99, 100),  # 11
            ("b", 0, "COMPLETE", nan, 0.99, 100),  # 12: complete but Delta_T unknown
        ]
    )


def test_best_at_sparsity_levels_by_hand(trials: pd.DataFrame) -> None:
    table = best_at_sparsity_levels(trials)
    nan = math.nan
    expected = pd.DataFrame(
        {
            0.5: [nan, 1.0, 2.0],
            0.7: [nan, 0.5, -0.5],
            0.8: [nan, 0.5, -0.5],
            0.9: [nan, -1.0, -0.5],
            0.95: [nan, -3.0, -5.0],
            0.98: [nan, nan, -5.0],
            0.99: [nan, nan, -5.0],
        },
        index=pd.Index(["dense", "a", "b"], name="method"),
    )
    expected.columns.name = "sparsity >="
    pd.testing.assert_frame_equal(table, expected)
    # Level 0 includes the dense reference; a minimised value takes the smallest.
    low = best_at_sparsity_levels(trials, levels=(0.0,), direction="minimize")
    assert low.loc["dense", 0.0] == 0.0 and low.loc["a", 0.0] == -3.0


def test_best_at_levels_ignores_unfinished_trials() -> None:
    frame = _frame([("a", 0, "RUNNING", 5.0, 0.95, 10), ("a", 0, "COMPLETE", 1.0, 0.9, 100)])
    table = best_at_sparsity_levels(frame, levels=(0.9, 0.95))
    assert table.loc["a", 0.9] == 1.0 and math.isnan(table.loc["a", 0.95])


def test_method_fronts(trials: pd.DataFrame) -> None:
    fronts = method_fronts(trials).set_index("trial_id")
    assert sorted(fronts.index) == [1, 2, 3, 4, 6, 7, 8, 9, 11]  # complete with both values
    assert sorted(fronts.index[fronts["on_front"]]) == [1, 2, 3, 4, 6, 8, 9, 11]
    assert sorted(fronts.index[fronts["on_front_overall"]]) == [3, 6, 8, 9, 11]


def test_objective_reference_rule(trials: pd.DataFrame) -> None:
    # Delta_T range among completed trials is [-5, 2]: reference -5 - 0.7; sparsity: 0.
    np.testing.assert_allclose(objective_reference(trials), [-5.7, 0.0])
    flipped = objective_reference(trials, [("sparsity", "minimize"), ("delta_t", "minimize")])
    np.testing.assert_allclose(flipped, [0.99 + 0.099, 2.0 + 0.7])


def test_hypervolume_vs_budget(trials: pd.DataFrame) -> None:
    curves = hypervolume_vs_budget(trials, budget="iterations")
    a = curves[curves["method"] == "a"]
    assert a["trial_id"].tolist() == [2, 3, 4, 5, 6, 7]
    assert a["budget"].tolist() == [100, 200, 300, 340, 440, 540]
    assert a["n_complete"].tolist() == [1, 2, 3, 3, 4, 5]
    reference = objective_reference(trials)
    points = trials.set_index("trial_id").loc[[2, 3, 4, 6, 7], ["delta_t", "sparsity"]]
    final = hypervolume(points.to_numpy(), DIRECTIONS, reference)
    assert a["hypervolume"].iloc[-1] == pytest.approx(final)
    assert a["hypervolume"].iloc[3] == a["hypervolume"].iloc[2]  # the failed trial adds none
    assert a["hypervolume"].iloc[-1] == a["hypervolume"].iloc[-2]  # dominated trial adds none
    assert np.all(np.diff(a["hypervolume"]) >= 0)
    b = curves[curves["method"] == "b"]
    assert 10 not in b["trial_id"].tolist()  # running: not finished
    by_trials = hypervolume_vs_budget(trials)
    assert by_trials[by_trials["method"] == "b"]["budget"].tolist() == [1, 2, 3, 4]


def test_budget_order_follows_finish_time(trials: pd.DataFrame) -> None:
    trials = trials.copy()
    trials.loc[trials["trial_id"] == 2, "finished_at"] = pd.Timestamp("2026-01-01", tz="UTC")
    a = hypervolume_vs_budget(trials)
    assert a[a["method"] == "a"]["trial_id"].tolist() == [3, 4, 5, 6, 7, 2]


def test_budget_errors(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="budget must be one of trials, iterations"):
        hypervolume_vs_budget(trials, budget="epochs")
    trials = trials.assign(flops=math.nan)
    with pytest.raises(ValueError, match="budget 'flops' is not recorded for any finished"):
        hypervolume_vs_budget(trials, budget="flops")
    with pytest.raises(ValueError, match="the trials frame has no column 'wall_time_s'"):
        hypervolume_vs_budget(trials, budget="wall_time_s")


def test_seed_summary_and_noise() -> None:
    rows = []
    # Method "a" is clearly better than "c"; "b" is close to "a" but noisy.
    for seed, shift in enumerate([0.0, 0.2, -0.1]):
        rows += [("a", seed, "COMPLETE", 1.0 + shift, 0.9, 10)]
        rows += [("b", seed, "COMPLETE", 1.0 + 3 * shift, 0.9, 10)]
        rows += [("c", seed, "COMPLETE", -2.0 + shift / 10, 0.9, 10)]
    frame = _frame(rows)
    summary = seed_summary(frame, levels=(0.9, 0.95))
    reference = np.asarray(summary.reference)
    np.testing.assert_allclose(reference, objective_reference(frame))
    per_seed = summary.per_seed.set_index(["method", "seed"])
    assert per_seed.loc[("a", 1), "hypervolume"] == pytest.approx((1.2 - reference[0]) * 0.9)
    assert per_seed.loc[("a", 1), "best_at_0.9"] == pytest.approx(1.2)
    assert math.isnan(per_seed.loc[("a", 1), "best_at_0.95"])
    a = summary.per_method.loc["a"]
    hv = [(1.0 + s - reference[0]) * 0.9 for s in (0.0, 0.2, -0.1)]
    assert a["n_seeds"] == 3
    assert a["hypervolume_mean"] == pytest.approx(np.mean(hv))
    assert a["hypervolume_std"] == pytest.approx(np.std(hv, ddof=1))
    assert hypervolume_within_noise(summary, "a", "b")
    assert not hypervolume_within_noise(summary, "a", "c")
    with pytest.raises(ValueError, match="unknown method 'z'; choose one of: a, b, c"):
        hypervolume_within_noise(summary, "a", "z")


def test_noise_needs_two_seeds(trials: pd.DataFrame) -> None:
    summary = seed_summary(trials)
    assert math.isnan(summary.per_method.loc["a", "hypervolume_std"])
    with pytest.raises(ValueError, match="method 'a' has 1 seed"):
        hypervolume_within_noise(summary, "a", "b")


def test_method_summary(trials: pd.DataFrame) -> None:
    table = method_summary(trials)
    assert table.loc["a", ["n_trials", "n_complete", "n_failed", "n_running"]].tolist() == [
        6,
        5,
        1,
        0,
    ]
    assert table.loc["b", "n_running"] == 1
    assert table.loc["a", "pareto_size"] == 4 and table.loc["b", "pareto_size"] == 3
    assert table.loc["a", "best_delta_t"] == -1.0 and table.loc["b", "best_delta_t"] == -0.5
    assert table.loc["dense", "hypervolume"] == 0.0  # sparsity 0 equals the reference


def test_empty_and_bad_objectives() -> None:
    empty = pd.DataFrame()
    assert method_fronts(empty).empty
    assert hypervolume_vs_budget(empty).empty
    assert best_at_sparsity_levels(empty).empty
    assert seed_summary(empty).per_seed.empty
    with pytest.raises(ValueError, match="cannot derive a hypervolume reference"):
        objective_reference(empty)
    frame = _frame([("a", 0, "COMPLETE", 1.0, 0.9, 10)])
    with pytest.raises(ValueError, match=r"objectives\[1\] direction must be 'maximize'"):
        method_fronts(frame, [("delta_t", "maximize"), ("sparsity", "up")])
    with pytest.raises(ValueError, match="the trials frame has no column 'parameters'"):
        method_fronts(frame, [("delta_t", "maximize"), ("parameters", "minimize")])
    with pytest.raises(ValueError, match="sparsity levels must lie in"):
        best_at_sparsity_levels(frame, levels=(90,))
