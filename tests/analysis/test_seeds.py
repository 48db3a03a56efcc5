"""Seed noise: spread across seeds, the verdict in words, the per-seed fronts figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    is_message_figure,
    objective_reference,
    seed_bands,
    seed_fronts,
    seed_fronts_figure,
    seed_noise_report,
)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (method, seed, delta_t, sparsity); a dense reference per seed first."""
    seeds = sorted({r[1] for r in rows})
    reference = [("dense", s, 0.0, 0.0) for s in seeds]
    frame = pd.DataFrame(reference + rows, columns=["method", "seed", "delta_t", "sparsity"])
    frame["trial_id"] = np.arange(1, len(frame) + 1)
    frame["status"] = "COMPLETE"
    frame["is_reference"] = frame.index < len(reference)
    return frame


def noisy_study() -> pd.DataFrame:
    """Method a beats c by far; b is close to a but moves a lot from seed to seed."""
    rows = []
    for seed, shift in enumerate([0.0, 0.2, -0.2]):
        rows += [("a", seed, 1.0 + shift, 0.9), ("a", seed, 2.0 + shift, 0.5)]
        rows += [("b", seed, 0.95 + 3 * shift, 0.9), ("b", seed, 1.95 + 3 * shift, 0.5)]
        rows += [("c", seed, -2.0 + shift / 10, 0.9)]
    return _frame(rows)


def test_within_and_beyond_noise_in_words() -> None:
    trials = noisy_study()
    report = seed_noise_report(trials, sparsity=0.9)
    assert report.seeds == (0, 1, 2) and report.message is None
    verdicts = {(c.higher, c.lower): c for c in report.comparisons}
    assert set(verdicts) == {("a", "b"), ("a", "c"), ("b", "c")}
    ab, ac = verdicts[("a", "b")], verdicts[("a", "c")]
    assert ab.within_noise and not ac.within_noise
    table = report.table
    assert ab.difference == pytest.approx(
        table.loc["a", "hypervolume mean"] - table.loc["b", "hypervolume mean"]
    )
    assert ab.spread == pytest.approx(
        math.hypot(table.loc["a", "hypervolume std"], table.loc["b", "hypervolume std"])
    )
    text = report.statements()
    assert f"a vs b: hypervolume difference {ab.difference:.3g} is within seed noise " in text[0]
    assert f"(spread {ab.spread:.3g})." in text[0]
    assert any(
        s.startswith(f"a vs c: hypervolume difference {ac.difference:.3g} exceeds seed noise")
        and s.endswith("a is ahead across seeds.")
        for s in text
    )


def test_seed_table_mean_spread_min_max() -> None:
    trials = noisy_study()
    reference = objective_reference(trials)
    report = seed_noise_report(trials, sparsity=0.9)
    # a's front per seed: (0.5, 2 + s) and (0.9, 1 + s): hypervolume by hand.
    hv = [(1.0 + s - reference[0]) * 0.9 + (2.0 + s - (1.0 + s)) * 0.5 for s in (0.0, 0.2, -0.2)]
    row = report.table.loc["a"]
    assert row["seeds"] == 3
    assert row["hypervolume mean"] == pytest.approx(np.mean(hv))
    assert row["hypervolume std"] == pytest.approx(np.std(hv, ddof=1))
    assert row["hypervolume min"] == pytest.approx(min(hv))
    assert row["hypervolume max"] == pytest.approx(max(hv))
    assert row["best Delta_T at >= 90% min"] == pytest.approx(0.8)
    assert row["best Delta_T at >= 90% max"] == pytest.approx(1.2)
    assert "dense" not in report.table.index  # reference trials take no part


def test_one_seed_says_no_estimate_is_possible() -> None:
    trials = _frame([("a", 0, 1.0, 0.9), ("b", 0, 0.5, 0.8)])
    report = seed_noise_report(trials)
    assert report.seeds == (0,) and report.comparisons == () and len(report.table) == 0
    assert report.statements() == [report.message]
    assert "ran one seed (0): no estimate of seed noise is possible" in str(report.message)
    fig = seed_fronts_figure(trials)
    assert is_message_figure(fig) and "Only one seed" in fig.layout.meta["message"]


def test_method_with_one_seed_is_left_out_with_a_note() -> None:
    rows = [("a", s, 1.0 + s / 10, 0.9) for s in range(3)] + [("b", 0, 0.2, 0.9)]
    rows += [("c", s, 0.8, 0.9) for s in range(3)]
    report = seed_noise_report(_frame(rows))
    assert "b has 1 seed: left out of the noise comparisons." in report.notes
    assert [(c.higher, c.lower) for c in report.comparisons] == [("a", "c")]


def test_a_single_method_has_nothing_to_compare() -> None:
    report = seed_noise_report(_frame([("a", s, 1.0 + s / 10, 0.9) for s in range(2)]))
    assert report.comparisons == () and list(report.table.index) == ["a"]
    assert report.statements() == [
        "Fewer than two methods have two or more seeds: no pair to compare."
    ]


def test_no_completed_trials() -> None:
    trials = _frame([("a", 0, 1.0, 0.9), ("a", 1, 1.0, 0.9)])
    trials["status"] = "FAILED"
    report = seed_noise_report(trials)
    assert report.message == "No completed trials yet: no seed statistics."


def test_seed_fronts_flags_each_seed_separately() -> None:
    rows = [("a", 0, 1.0, 0.9), ("a", 0, 0.5, 0.8), ("a", 1, 0.5, 0.8), ("a", 1, -1.0, 0.7)]
    fronts = seed_fronts(_frame(rows)).set_index(["seed", "delta_t"])
    assert not fronts.loc[(0, 0.5), "on_seed_front"]  # dominated by (0.9, 1.0) of seed 0
    assert fronts.loc[(1, 0.5), "on_seed_front"]  # seed 1 has no better point
    assert not fronts.loc[(1, -1.0), "on_seed_front"]
    assert "dense" not in set(fronts["method"])


def test_seed_bands_by_hand() -> None:
    rows = [("a", 0, 1.0, 0.9), ("a", 0, 2.0, 0.5), ("a", 1, 0.0, 0.8), ("a", 1, 3.0, 0.6)]
    (band,) = seed_bands(_frame(rows))
    # seed 1 reaches 0.8 at most, so the band stops there.
    np.testing.assert_allclose(band.levels, [0.5, 0.6, 0.8])
    # best delta_t at >= level: seed 0 -> 2, 1, 1; seed 1 -> 3, 3, 0
    np.testing.assert_allclose(band.low, [2.0, 1.0, 0.0])
    np.testing.assert_allclose(band.high, [3.0, 3.0, 1.0])
    np.testing.assert_allclose(band.mean, [2.5, 2.0, 0.5])
    assert band.n_seeds == 2


def test_seed_fronts_figure_traces() -> None:
    fig = seed_fronts_figure(noisy_study())
    kinds = [(t.meta["kind"], t.meta["method"], t.meta.get("seed")) for t in fig.data]
    assert ("seed_band", "a", None) in kinds and ("seed_mean", "c", None) in kinds
    assert {k for k in kinds if k[0] == "seed_front" and k[1] == "a"} == {
        ("seed_front", "a", s) for s in (0, 1, 2)
    }
    front = next(t for t in fig.data if t.meta == {"kind": "seed_front", "method": "a", "seed": 1})
    np.testing.assert_allclose(front.x, [50.0, 90.0])
    np.testing.assert_allclose(front.y, [2.2, 1.2])
