"""Group, then prune: the grouped architecture a method prunes, taken from a stored trial."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from trials.errors import ParetuneError

if TYPE_CHECKING:
    from study._config import GroupingSource
    from study.store import ResultStore, TrialRecord


class GroupingSourceError(ParetuneError):
    """The trial a group-then-prune method should take its architecture from is unusable."""


def _has_grouping(trial: TrialRecord) -> bool:
    return trial.status == "COMPLETE" and bool((trial.grouping or {}).get("assignment"))


def _best(trials: list[TrialRecord]) -> TrialRecord:
    """Highest Delta_T; the smaller model on ties."""
    return max(
        trials,
        key=lambda t: (
            t.delta_t if t.delta_t is not None else -math.inf,
            -(t.parameters or 0),
            -t.id,
        ),
    )


def source_trial(store: ResultStore, study: str, source: GroupingSource, seed: int) -> TrialRecord:
    """The stored trial whose grouping ``source`` names (for the study ``study``).

    ``best`` prefers the trials of the same seed and falls back to any seed.

    Raises:
        GroupingSourceError: no such trial, or it holds no finished grouping.
    """
    from study.store import StoreError

    where = source.study or study
    if source.trial == "best":
        try:
            found = [t for t in store.trials_of(where, method=source.method) if _has_grouping(t)]
        except StoreError as error:
            raise GroupingSourceError(f"grouping source: {error}") from None
        if not found:
            raise GroupingSourceError(
                f"grouping source: study {where!r} has no finished {source.method!r} trial "
                "with a grouping"
            )
        return _best([t for t in found if t.seed == seed] or found)
    try:
        trial = store.get_trial(source.trial)
    except StoreError:
        raise GroupingSourceError(
            f"grouping source: trial {source.trial} does not exist; "
            f"'paretune status {where}' lists the trials"
        ) from None
    if trial.study != where:
        raise GroupingSourceError(
            f"grouping source: trial {source.trial} belongs to study {trial.study!r}, not {where!r}"
        )
    if not _has_grouping(trial):
        raise GroupingSourceError(
            f"grouping source: trial {source.trial} ({trial.method}, {trial.status}) holds "
            "no finished grouping"
        )
    return trial


def grouping_fields(trial: TrialRecord) -> dict[str, Any]:
    """The ``TrialConfig.grouping`` of a method pruning ``trial``'s grouped architecture."""
    grouping = trial.grouping
    return {
        "assignment": dict(grouping["assignment"]),
        "shared_stages": int(grouping.get("shared_stages", 0)),
    }
