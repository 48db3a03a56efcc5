"""Confidence intervals over seeds, paired differences and the sentences that state them.

With ``n`` seeds, a method's mean over seeds gets a Student-t interval
``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)`` (``s`` the sample standard deviation); the
difference of two methods measured on the same seeds (same data order and
initialisation per seed) is a *paired* difference: the interval of the per-seed
differences' mean. A percentile bootstrap is offered for skewed samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval (``low``/``high`` NaN with fewer than 2 values).

    Attributes:
        mean: the sample mean.
        low: lower bound.
        high: upper bound.
        n: sample size.
        confidence: e.g. 0.95.
        method: ``t`` or ``bootstrap``.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = DEFAULT_CONFIDENCE
    method: str = "t"

    @property
    def known(self) -> bool:
        """Whether the interval exists (at least 2 finite values)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of 0."""
        return self.known and (self.low > 0 or self.high < 0)

    def text(self, decimals: int = 2, unit: str = "") -> str:
        """``+1.23 (95% CI 0.40..2.06, n=3)`` (``n=1`` has no interval)."""
        body = f"{self.mean:+.{decimals}f}{unit}"
        if not self.known:
            return f"{body} (n={self.n}, no interval)"
        level = f"{self.confidence:.0%}"
        bounds = f"{self.low:+.{decimals}f}..{self.high:+.{decimals}f}"
        return f"{body} ({level} CI {bounds}, n={self.n})"


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def mean_interval(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Student-t interval of the mean of the finite ``values``."""
    from scipy.special import stdtrit  # the t quantile, without importing scipy.stats

    sample = _finite(values)
    n = len(sample)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(sample.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence)
    half = float(stdtrit(n - 1, (1 + confidence) / 2)) * float(sample.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def bootstrap_interval(
    values: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean (seeded, so reports are repeatable)."""
    sample = _finite(values)
    n = len(sample)
    if n < 2:
        base = mean_interval(sample.tolist(), confidence)
        return Interval(base.mean, base.low, base.high, n, confidence, "bootstrap")
    rng = np.random.default_rng(seed)
    means = rng.choice(sample, size=(resamples, n), replace=True).mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(sample.mean()), float(low), float(high), n, confidence, "bootstrap")


def paired_difference(
    first: Sequence[float], second: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Interval of ``mean(first_i - second_i)`` over the pairs where both are finite."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths; got {len(a)} and {len(b)}")
    keep = np.isfinite(a) & np.isfinite(b)
    return mean_interval(a[keep] - b[keep], confidence)


def comparison_sentence(
    first: str, second: str, difference: Interval, where: str = "", unit: str = ""
) -> str:
    """``adapmtl beats magnitude at 90% by +4.10 (95% CI 1.02..7.18, n=3)``, or says they
    cannot be told apart (the interval holds 0, or one seed gives no interval)."""
    at = f" {where}" if where else ""
    if not difference.known:
        return (
            f"{first} vs {second}{at}: {difference.text(unit=unit)}; "
            f"more seeds are needed to tell this from noise"
        )
    if not difference.excludes_zero():
        return f"{first} and {second} are not distinguishable{at}: {difference.text(unit=unit)}"
    better, worse = (first, second) if difference.mean > 0 else (second, first)
    shown = difference if difference.mean > 0 else _negated(difference)
    return f"{better} beats {worse}{at} by {shown.text(unit=unit)}"


def _negated(interval: Interval) -> Interval:
    return Interval(
        -interval.mean, -interval.high, -interval.low, interval.n, interval.confidence,
        interval.method,
    )  # fmt: skip
