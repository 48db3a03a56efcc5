"""The search space of every method, registered by method name.

Parameter names equal the fields of each method's typed ``Params`` in ``trials/``
(``trials.pruning`` for weight pruners, the DMTG grouping model for ``dmtg``). The
registered spaces are the ``reference`` calibration: their defaults are the methods'
reference defaults; :data:`CALIBRATED_SPACES` holds the other calibrations' ranges (see
the pruners' docstrings). The trainer's ``lr`` is not searched for pruning methods.
"""

from __future__ import annotations

import dataclasses

from search_spaces._params import Float, Int, Param
from search_spaces._space import SearchSpace
from trials.registry import ENTRY_POINT_GROUPS, PluginError, Registry, UnknownNameError


def space_of(method: str, obj: object) -> SearchSpace:
    """The search space a plugin gives for ``method``: ``obj`` itself when it is a
    :class:`SearchSpace`, else its ``search_space`` attribute (a pruner class may carry its
    space). The space is named after ``method``.

    Raises:
        PluginError: ``obj`` is neither (the message says what to add).
    """
    space = obj if isinstance(obj, SearchSpace) else getattr(obj, "search_space", None)
    if not isinstance(space, SearchSpace):
        owner = getattr(obj, "__qualname__", type(obj).__name__)
        raise PluginError(
            f"method {method!r} has no search space: {owner} is no "
            f"search_spaces.SearchSpace and has no 'search_space' attribute holding one"
        )
    return space if space.method == method else dataclasses.replace(space, method=method)


SEARCH_SPACES: Registry[SearchSpace] = Registry(
    "method", group=ENTRY_POINT_GROUPS["search_spaces"], adapt=space_of
)
"""Method name -> its default :class:`SearchSpace`. Plugins add theirs through the
``paretune.search_spaces`` entry point group (a :class:`SearchSpace`, or a pruner class
with a ``search_space`` attribute, under the method's name); a ``module:Class`` method
takes the ``search_space`` attribute of its class."""


def _register(method: str, *params: Param) -> SearchSpace:
    space = SearchSpace(params, method)
    return SEARCH_SPACES.register(method)(space)


def _target_sparsity() -> Float:
    return Float("target_sparsity", 0.5, 0.99, default=0.9)


# -- soft thresholds (AdapMTL, its ablations, STR) ------------------------------------------
# Reference ranges (AdapMTL's reference defaults: s_init -30.5 for every threshold, the
# thresholds in the weights' Adam group at the trainer's lr 1e-3, weight decay 1e-4). With
# Adam a threshold moves by about its lr per step towards 0, so from -30.5 at lr 1e-3 it
# moves at most ~0.5 in 500 steps and prunes nothing: the ranges also hold what can prune
# within a few hundred to a few thousand steps. Measured on the default trial
# (scenes-nyu, resnet-tiny, 500 iterations, reference trainer): the defaults 0% sparsity;
# s_init -4.6 (sigmoid ~ 0.01) 38%; s_init -4, threshold lr 2e-2, penalty 1e-2 83%; from
# -30.5 a threshold lr of 0.15 only 3%.
#: s_init range, reference calibration (default: AdapMTL ``args.py:13``).
THRESHOLD_INIT_RANGE = {"low": -30.5, "high": -2.0, "default": -30.5}
#: threshold lr range, reference calibration. The default is the reference trainer's lr
#: (``TrialConfig.lr`` 1e-3): at that lr the thresholds share the weights' group, as with
#: the pruners' ``threshold_lr=None``.
THRESHOLD_LR_RANGE = {"low": 1e-3, "high": 3e-1, "log": True, "default": 1e-3}
#: sparsity penalty (weight decay) range, reference calibration (default ``args.py:14``;
#: the reference's logged runs use 5e-8 .. 7.5e-4).
SPARSITY_PENALTY_RANGE = {"low": 1e-6, "high": 3e-2, "log": True, "default": 1e-4}

# short-budget ranges: paretune's before reference defaults (from-scratch budgets of a
# few hundred iterations). sigmoid(-3.5) ~ 0.029 is already past the weight scale of
# resnet-tiny's and the light heads' 3x3 convs (PyTorch's default init bound
# 1/sqrt(fan_in) ~ 0.04): a higher init empties a head before training can react.
#: s_init range, short-budget calibration (and STR's in every calibration).
SHORT_THRESHOLD_INIT_RANGE = {"low": -7.0, "high": -3.5, "default": -4.0}
#: threshold lr range, short-budget calibration (and STR's).
SHORT_THRESHOLD_LR_RANGE = {"low": 5e-3, "high": 5e-2, "log": True, "default": 2e-2}
#: sparsity penalty range, short-budget calibration (and STR's).
SHORT_SPARSITY_PENALTY_RANGE = {"low": 1e-3, "high": 3e-2, "log": True, "default": 1e-2}


def _float(name: str, spec: dict[str, float | bool]) -> Float:
    return Float(name, **spec)  # type: ignore[arg-type]


def _threshold_lr(spec: dict[str, float | bool] = THRESHOLD_LR_RANGE) -> Float:
    return _float("threshold_lr", spec)


def _sparsity_penalty(spec: dict[str, float | bool] = SPARSITY_PENALTY_RANGE) -> Float:
    return _float("sparsity_penalty", spec)


def _threshold_init(name: str, spec: dict[str, float | bool] = THRESHOLD_INIT_RANGE) -> Float:
    return _float(name, spec)


def _temperature() -> Float:
    return Float("temperature", 0.25, 4.0, log=True, default=1.0)


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
    # 0: rewind to the initial weights (AdapMTL SOTA_methods/README.md:5).
    Float("rewind_fraction", 0.0, 0.15, default=0.0),
)

# DiSparse's dynamic variant (Sun et al. CVPR 2022): prune-and-regrow rate and end; the
# reference runs prune rate 0.5 and END at 75% of the budget (DS config_nyuv2.py:26,28).
_register(
    "disparse-dynamic",
    _target_sparsity(),
    Float("prune_rate", 0.1, 0.7, default=0.5),
    Float("end_fraction", 0.5, 0.9, default=0.75),
)

# STR (Kusupati et al. ICML 2020): one soft threshold per layer. No reference code in the
# three reference repositories: paretune's ranges in every calibration.
_register(
    "str",
    _threshold_init("threshold_init", SHORT_THRESHOLD_INIT_RANGE),
    _threshold_lr(SHORT_THRESHOLD_LR_RANGE),
    _sparsity_penalty(SHORT_SPARSITY_PENALTY_RANGE),
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

# DMTG (Gao et al. ICML 2024): task grouping architecture search. Defaults: DMTGParams'
# (tau 2.5, the reference code's CelebA value) and the trainer's reference lr 1e-3 (its
# Taskonomy value); the ranges hold both of its configurations (tau 4.0 and 2.5, lr 1e-3
# and 8e-4).
_register(
    "dmtg",
    Int("num_groups", 1, 3, default=3),  # at most the number of tasks (3 on scenes-nyu)
    Float("tau", 0.5, 8.0, log=True, default=2.5),
    Float("lr", 3e-4, 1e-2, log=True, default=1e-3),
    Int("shared_stages", 0, 2, default=1),
)


#: Objectives a method is searched on unless the study sets them for it: an architecture
#: search trades accuracy against model size, not against sparsity.
METHOD_OBJECTIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "dmtg": (("delta_t", "maximize"), ("parameters", "minimize")),
}


_SHORT_SOFT_THRESHOLD: dict[str, object] = {
    "threshold_lr": SHORT_THRESHOLD_LR_RANGE,
    "sparsity_penalty": SHORT_SPARSITY_PENALTY_RANGE,
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
        "adapmtl": {
            "threshold_init_backbone": SHORT_THRESHOLD_INIT_RANGE,
            "threshold_init_heads": SHORT_THRESHOLD_INIT_RANGE,
            **_SHORT_SOFT_THRESHOLD,
        },
        "adapmtl-global-threshold": {
            "threshold_init": SHORT_THRESHOLD_INIT_RANGE,
            **_SHORT_SOFT_THRESHOLD,
        },
        "adapmtl-equal-weights": {
            "threshold_init_backbone": SHORT_THRESHOLD_INIT_RANGE,
            "threshold_init_heads": SHORT_THRESHOLD_INIT_RANGE,
            **_SHORT_SOFT_THRESHOLD,
        },
        "lth": {"rewind_fraction": {"default": 0.05}},
    },
}


def get_search_space(method: str, calibration: str = "reference") -> SearchSpace:
    """The search space of ``method`` under ``calibration``.

    Raises:
        trials.registry.UnknownNameError: ``method`` or ``calibration`` is not known; the
            message lists the valid names and suggests the closest one.
        trials.registry.PluginError: ``method`` is a plugin's method without a search space
            (the message says where to add one), or a ``module:Class`` reference that does
            not import or whose class has no ``search_space``.
    """
    from trials._calibration import check_calibration

    try:
        space = SEARCH_SPACES.get(method)
    except UnknownNameError:
        owner = _method_owner(method)
        if owner is None:
            raise
        raise PluginError(
            f"method {method!r} ({owner}) has no search space; add one under {method!r} to "
            f"the {ENTRY_POINT_GROUPS['search_spaces']!r} entry point group or register it "
            f"with search_spaces.SEARCH_SPACES.register({method!r})"
        ) from None
    overrides = CALIBRATED_SPACES.get(check_calibration(calibration), {}).get(method)
    return space.override(overrides) if overrides else space


def _method_owner(method: str) -> str | None:
    """What ``method`` is when a plugin registered it without a search space: ``weight
    pruner of plugin my-plugin 0.1``, ``weight pruner registered in trials.pruning.PRUNERS``
    (registered in code), or None for a name nobody registered.

    Entry points are read without importing the plugins; the registries of ``trials`` are
    only asked when that package is already loaded (so a typo does not load torch).
    """
    import importlib.metadata
    import sys

    for kind, group in (
        ("weight pruner", ENTRY_POINT_GROUPS["pruners"]),
        ("architecture search", ENTRY_POINT_GROUPS["architecture_searches"]),
    ):
        for entry_point in importlib.metadata.entry_points(group=group, name=method):
            dist = entry_point.dist
            source = f"{dist.metadata['Name']} {dist.version}" if dist else entry_point.value
            return f"{kind} of plugin {source}"
    for kind, module, name in (
        ("weight pruner", "trials.pruning", "PRUNERS"),
        ("architecture search", "trials.grouping", "ARCHITECTURE_SEARCHES"),
    ):
        registry = getattr(sys.modules.get(module), name, None)
        if registry is not None and method in registry:
            return f"{kind} registered in {module}.{name}"
    return None
