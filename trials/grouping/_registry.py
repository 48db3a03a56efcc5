"""Methods that search the multi-task architecture inside one trial (next to weight pruners)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from trials.registry import Registry, UnknownNameError, unknown_name_message

if TYPE_CHECKING:
    from trials._config import Evaluation, TrialConfig, TrialResult


class ArchitectureSearch(abc.ABC):
    """A trial method that searches the architecture instead of pruning weights.

    Contract: ``Params`` holds the typed ``method_params``; ``validate(config, searched)``
    checks them against the data set's tasks and the backbone before anything trains
    (names in ``searched`` are set later by a searcher and are not checked);
    ``run(config, on_evaluation, on_step, started)`` trains and evaluates the trial like
    :func:`trials.run_trial` and returns its :class:`~trials.TrialResult`.
    """

    Params: ClassVar[type[BaseModel]]

    @abc.abstractmethod
    def validate(self, config: TrialConfig, searched: tuple[str, ...] = ()) -> None:
        """Raises a :class:`~trials.errors.ParetuneError` naming the first problem."""

    @abc.abstractmethod
    def run(
        self,
        config: TrialConfig,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        on_step: Callable[[int, float], None] | None = None,
        started: float | None = None,
    ) -> TrialResult:
        """Runs the whole trial."""


ARCHITECTURE_SEARCHES: Registry = Registry("method", plugins=__package__)
"""``ArchitectureSearch`` subclasses by method name (``dmtg``)."""


def method_params_type(method: str) -> type[BaseModel]:
    """The typed parameters of ``method``: an architecture search or a weight pruner.

    Raises:
        UnknownNameError: neither kind has ``method``; the message lists both kinds' names.
    """
    from trials.pruning import PRUNERS

    if method in ARCHITECTURE_SEARCHES:
        return ARCHITECTURE_SEARCHES.get(method).Params
    if method in PRUNERS:
        return PRUNERS.get(method).Params
    choices = PRUNERS.names() + ARCHITECTURE_SEARCHES.names()
    raise UnknownNameError(unknown_name_message("method", method, choices))


def is_architecture_search(method: str) -> bool:
    """Whether ``method`` is a registered architecture search (not a weight pruner)."""
    return method in ARCHITECTURE_SEARCHES


def run_architecture_search(config: TrialConfig, **callbacks: Any) -> TrialResult:
    """Runs ``config`` with its registered architecture search."""
    return ARCHITECTURE_SEARCHES.get(config.method)().run(config, **callbacks)
