"""Methods compared level by level across paired seeds (values checked by hand and against
scipy.stats)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from analysis import compare_at_levels, hypervolume_intervals, level_sentences

#: method, seed, sparsity, delta_t
ROWS = [
    ("dense", 0, 0.0, 0.0),
    ("a", 0, 0.9, 5.0),
    ("a", 1, 0.9, 6.0),
    ("a", 2, 0.9, 7.0),
    ("a", 0, 0.7, 9.0),  # only counts at 0.7: best at or above 0.7 in seed 0 is 9
    ("b", 0, 0.89995, 1.0),  # within the tolerance of 0.9 (a rounded weight count)
    ("b", 1, 0.9, 1.5),
    ("b", 2, 0.9, 2.5),
    ("c", 0, 0.8, 3.0),  # never reaches 0.9
]


def _trials() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["method", "seed", "sparsity", "delta_t"])
    frame["status"] = "COMPLETE"
    frame["trial_id"] = range(len(frame))
    frame["is_reference"] = frame["method"] == "dense"
    return frame


def test_pairs_at_a_level_are_paired_over_seeds() -> None:
    (at_90,) = compare_at_levels(_trials(), levels=[0.9])
    assert list(at_90.methods) == ["a", "b"] and at_90.short == ["c"]
    assert at_90.methods["a"].mean == pytest.approx(6.0)
    (first, second, difference) = at_90.pairs[0]
    assert (first, second) == ("a", "b")
    # per-seed differences 4, 4.5, 4.5: mean 4.3333, sd 0.2887, t(0.975, 2) = 4.3027
    half = 4.302652729911275 * math.sqrt(1 / 12) / math.sqrt(3)
    assert difference.mean == pytest.approx(13 / 3)
    assert (difference.low, difference.high) == pytest.approx((13 / 3 - half, 13 / 3 + half))
    scipy = stats.ttest_rel([5, 6, 7], [1, 1.5, 2.5]).confidence_interval(0.95)
    assert (difference.low, difference.high) == pytest.approx((scipy.low, scipy.high))
    sentences = at_90.sentences()
    assert sentences[0].startswith("a beats b at 90% by +4.33 (95% CI")


def test_a_lower_level_takes_the_best_trial_at_or_above_it() -> None:
    (at_70,) = compare_at_levels(_trials(), levels=[0.7])
    assert at_70.methods["a"].mean == pytest.approx((9 + 6 + 7) / 3)
    assert at_70.methods["c"].n == 1 and at_70.short == []
    # c has one seed: its pairs have one difference and no interval
    pair = next(d for f, s, d in at_70.pairs if {f, s} == {"a", "c"})
    assert pair.n == 1 and not pair.known


def test_sentences_per_level() -> None:
    lines = level_sentences(compare_at_levels(_trials(), levels=[0.9, 0.95]))
    assert lines[0].startswith("a beats b at 90% by +4.33")
    assert "at 90%: no trial at or above the level for c" in lines
    assert lines[-1] == "at 95%: no method has a trial at or above the level"
    one_seed = _trials()[_trials()["seed"] == 0]
    lines = level_sentences(compare_at_levels(one_seed, levels=[0.9]))
    assert (
        lines[0]
        == "a vs b at 90%: +4.00 (n=1, no interval); more seeds are needed to tell this from noise"
    )
    assert compare_at_levels(pd.DataFrame(), levels=[0.9]) == []


def test_hypervolume_per_method_over_seeds() -> None:
    """Reference point (delta_t -1, sparsity 0): a's seed fronts cover (5+1)*0.9 + ...;
    seed 0 of a: points (5, .9) and (9, .7): 0.7*10 + 0.2*6 = 8.2; seeds 1, 2: 6.3, 7.2."""
    volumes = hypervolume_intervals(_trials(), reference=[-1.0, 0.0])
    a = volumes["a"]
    assert a.n == 3 and a.mean == pytest.approx((8.2 + 0.9 * 7 + 0.9 * 8) / 3)
    scipy = stats.t.interval(0.95, 2, loc=a.mean, scale=stats.sem([8.2, 6.3, 7.2]))
    assert (a.low, a.high) == pytest.approx(scipy)
    assert "dense" not in volumes and volumes["c"].n == 1
