"""Backend-neutral search spaces of every method, convertible to Optuna distributions.

Importing this package does not import torch or Optuna (Optuna loads inside
:meth:`SearchSpace.to_optuna`).
"""

from __future__ import annotations

from search_spaces._methods import (
    CALIBRATED_SPACES,
    METHOD_OBJECTIVES,
    SEARCH_SPACES,
    get_search_space,
)
from search_spaces._params import Categorical, Fixed, Float, Int, Param, SearchSpaceError
from search_spaces._space import BaseSearchSpace, SearchSpace

__all__ = [
    "CALIBRATED_SPACES",
    "METHOD_OBJECTIVES",
    "SEARCH_SPACES",
    "BaseSearchSpace",
    "Categorical",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "get_search_space",
]
