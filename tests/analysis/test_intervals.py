"""Intervals over seeds and paired differences, by hand and against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis import (
    Interval,
    bootstrap_interval,
    comparison_sentence,
    mean_interval,
    paired_difference,
)


def test_t_interval_by_hand() -> None:
    # mean 2, s = 1, n = 3: half width t_{0.975, 2} * 1 / sqrt(3) = 4.302653 / 1.732051
    interval = mean_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.high - 2.0 == pytest.approx(4.302652729 / math.sqrt(3), rel=1e-9)
    assert interval.low == pytest.approx(2.0 - 2.484138, abs=1e-6)


def test_t_interval_matches_scipy_on_fixed_samples() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 12):
        sample = rng.normal(3.0, 2.0, size=n)
        low, high = stats.t.interval(0.9, n - 1, loc=sample.mean(), scale=stats.sem(sample))
        interval = mean_interval(sample, confidence=0.9)
        assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)


def test_paired_difference_is_the_interval_of_the_differences() -> None:
    a, b = [10.0, 12.0, 11.0, math.nan], [9.0, 10.0, 10.5, 1.0]
    interval = paired_difference(a, b)
    expected = stats.ttest_rel(a[:3], b[:3]).confidence_interval(0.95)
    assert interval.n == 3 and interval.mean == pytest.approx(3.5 / 3)  # 1, 2, 0.5
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0], [1.0, 2.0])


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    sample = [1.0, 2.0, 2.5, 7.0, 3.0]
    one, two = bootstrap_interval(sample, seed=3), bootstrap_interval(sample, seed=3)
    assert one == two and one.method == "bootstrap"
    assert one.low < one.mean < one.high


def test_sentences() -> None:
    wins = Interval(4.1, 1.02, 7.18, 3)
    assert comparison_sentence("adapmtl", "magnitude", wins, "at 90%") == (
        "adapmtl beats magnitude at 90% by +4.10 (95% CI +1.02..+7.18, n=3)"
    )
    loses = Interval(-4.1, -7.18, -1.02, 3)
    assert comparison_sentence("adapmtl", "magnitude", loses).startswith(
        "magnitude beats adapmtl by +4.10 (95% CI +1.02..+7.18"
    )
    same = Interval(0.5, -1.0, 2.0, 3)
    assert "not distinguishable" in comparison_sentence("a", "b", same)
    single = mean_interval([2.0])
    assert not single.known
    assert "more seeds are needed" in comparison_sentence("a", "b", single)
