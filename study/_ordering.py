"""Which method run a free slot serves in a study's last rounds.

Taking method runs in turn is fair to every method's search, but it ignores how long their
trials take: the study's last trial may be a slow one, started while another slot is about
to run dry, and that slot then idles until it ends. In the last rounds the router therefore
picks the run whose next trial lets the study end soonest, predicted by list scheduling
(Graham's longest-processing-time rule): every trial still to start takes, longest first,
the slot that frees first, each trial lasting as long as its run's finished trials did on
average, a running trial ending when its start plus that average says. Ties keep the turn.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

#: The last rounds: the study has at most this many trials per slot left to start.
ENDGAME_ROUNDS = 4


def predicted_end(slot_ends: Sequence[float], durations: Sequence[float]) -> float:
    """When the last of ``durations`` ends, each started (longest first) on the slot that
    frees first; ``slot_ends`` are when the slots free (at least one)."""
    slots = list(slot_ends)
    heapq.heapify(slots)
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(slots, slots[0] + duration)
    return max(slots)


def soonest_end(
    now: float,
    running_ends: Sequence[float],
    expected: Sequence[float],
    remaining: Sequence[int],
) -> int:
    """The candidate whose trial, started now on the free slot, lets everything end soonest.

    Args:
        now: the clock now.
        running_ends: when the running trials are expected to end.
        expected: each candidate run's expected trial duration.
        remaining: each candidate's trials still to start (at least one each).

    Returns:
        The index of the first candidate with the earliest predicted end.
    """
    pending = [d for d, count in zip(expected, remaining, strict=True) for _ in range(count)]
    best, best_end = 0, float("inf")
    for index, duration in enumerate(expected):
        rest = list(pending)
        rest.remove(duration)
        end = predicted_end([*running_ends, now + duration], rest)
        if end < best_end - 1e-9:
            best, best_end = index, end
    return best
