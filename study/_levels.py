"""Sparsity levels: when a trial counts as having reached one."""

from __future__ import annotations

__all__ = ["LEVEL_TOLERANCE"]

LEVEL_TOLERANCE = 1e-4
"""A trial reaches a sparsity level when ``sparsity >= level - LEVEL_TOLERANCE``: 0.01
points, more than rounding a layer's weight count to an integer leaves."""
