"""The search space of every method, registered by method name.

Parameter names equal the fields of each method's typed ``Params`` in ``trials/``
(``trials.pruning`` for weight pruners, the DMTG grouping model for ``dmtg``). Ranges
are calibrated for budgets of a few hundred training iterations (see the pruners'
docstrings); the trainer's ``lr`` is not searched for pruning methods.
"""

from __future__ import annotations

from search_spaces._params import Float, Int, Param
from search_spaces._space import SearchSpace
from trials.registry import Registry

SEARCH_SPACES: Registry[SearchSpace] = Registry("method")
"""Method name -> its default :class:`SearchSpace`."""


def _register(method: str, *params: Param) -> SearchSpace:
    space = SearchSpace(params, method)
    return SEARCH_SPACES.register(method)(space)


def _target_sparsity() -> Float:
    return Float("target_sparsity", 0.5, 0.99, default=0.9)


def _threshold_lr() -> Float:
    return Float("threshold_lr", 5e-3, 5e-2, log=True, default=2e-2)


def _sparsity_penalty() -> Float:
    return Float("sparsity_penalty", 1e-3, 3e-2, log=True, default=1e-2)


def _temperature() -> Float:
    return Float("temperature", 0.25, 4.0, log=True, default=1.0)


def _threshold_init(name: str) -> Float:
    # sigmoid(-3.5) ~ 0.029 is already past the weight scale of resnet-tiny's and the light
    # heads' 3x3 convs (PyTorch's default init bound 1/sqrt(fan_in) ~ 0.04): a higher init
    # empties a head before training can react.
    return Float(name, -7.0, -3.5, default=-4.0)


# The reference: no pruning, nothing to search.
_register("dense")

# Baselines sharing only the target.
_register("random", _target_sparsity())
_register("snip", _target_sparsity())
_register("disparse", _target_sparsity())

# Gradual magnitude pruning (Zhu & Gupta 2017): when the cubic schedule starts and ends.
_register(
    "magnitude",
    _target_sparsity(),
    Float("start_fraction", 0.0, 0.3, default=0.1),
    Float("end_fraction", 0.5, 0.9, default=0.7),
)

# Iterative magnitude pruning and the lottery ticket with rewinding (Frankle et al.).
_register("imp", _target_sparsity(), Int("rounds", 2, 5, default=3))
_register(
    "lth",
    _target_sparsity(),
    Int("rounds", 2, 5, default=3),
    Float("rewind_fraction", 0.0, 0.15, default=0.05),
)

# DiSparse's dynamic variant (Sun et al. CVPR 2022): prune-and-regrow rate and end; the
# reference runs prune rate 0.5 and END at 75% of the budget (DS config_nyuv2.py:26,28).
_register(
    "disparse-dynamic",
    _target_sparsity(),
    Float("prune_rate", 0.1, 0.7, default=0.5),
    Float("end_fraction", 0.5, 0.9, default=0.75),
)

# STR (Kusupati et al. ICML 2020): one soft threshold per layer.
_register(
    "str",
    _threshold_init("threshold_init"),
    _threshold_lr(),
    _sparsity_penalty(),
    _target_sparsity(),
)

# AdapMTL (Xiang et al. ACM MM 2024) and its two ablations.
_register(
    "adapmtl",
    _threshold_init("threshold_init_backbone"),
    _threshold_init("threshold_init_heads"),
    _sparsity_penalty(),
    _temperature(),
    _threshold_lr(),
    _target_sparsity(),
)
_register(
    "adapmtl-global-threshold",
    _threshold_init("threshold_init"),
    _sparsity_penalty(),
    _temperature(),
    _threshold_lr(),
    _target_sparsity(),
)
_register(
    "adapmtl-equal-weights",
    _threshold_init("threshold_init_backbone"),
    _threshold_init("threshold_init_heads"),
    _sparsity_penalty(),
    _threshold_lr(),
    _target_sparsity(),
)

# DMTG (Gao et al. ICML 2024): task grouping architecture search. Defaults: the reference
# code's Taskonomy configuration (tau 4.0, Adam lr 1e-3); the ranges hold its CelebA values
# too (tau 2.5, lr 8e-4).
_register(
    "dmtg",
    Int("num_groups", 1, 3, default=3),  # at most the number of tasks (3 on scenes-nyu)
    Float("tau", 0.5, 8.0, log=True, default=4.0),
    Float("lr", 3e-4, 1e-2, log=True, default=1e-3),
    Int("shared_stages", 0, 2, default=1),
)


#: Objectives a method is searched on unless the study sets them for it: an architecture
#: search trades accuracy against model size, not against sparsity.
METHOD_OBJECTIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "dmtg": (("delta_t", "maximize"), ("parameters", "minimize")),
}


#: Calibration -> method -> overrides of the method's space (see
#: :meth:`SearchSpace.override`): the ranges and defaults that go with the calibration's
#: parameter defaults (``trials._calibration``). ``reference`` is the spaces as registered.
CALIBRATED_SPACES: dict[str, dict[str, dict[str, object]]] = {
    "short-budget": {
        # paretune's space before reference defaults (DMTGParams' short-budget tau, the
        # trainer's short-budget lr)
        "dmtg": {"tau": {"default": 2.5}, "lr": {"default": 2e-3}},
        "disparse-dynamic": {"prune_rate": {"low": 0.1, "high": 0.5, "default": 0.3}},
    },
}


def get_search_space(method: str, calibration: str = "reference") -> SearchSpace:
    """The search space of ``method`` under ``calibration``.

    Raises:
        trials.registry.UnknownNameError: ``method`` or ``calibration`` is not known; the
            message lists the valid names and suggests the closest one.
    """
    from trials._calibration import check_calibration

    space = SEARCH_SPACES.get(method)
    overrides = CALIBRATED_SPACES.get(check_calibration(calibration), {}).get(method)
    return space.override(overrides) if overrides else space
