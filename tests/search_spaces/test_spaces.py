"""Search-space definitions, overrides, Optuna conversion and the per-method registry."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from search_spaces import (
    SEARCH_SPACES,
    Categorical,
    Fixed,
    Float,
    Int,
    SearchSpace,
    SearchSpaceError,
    get_search_space,
)
from trials.registry import UnknownNameError

EXPECTED = {
    "dense": [],
    "random": ["target_sparsity"],
    "snip": ["target_sparsity"],
    "disparse": ["target_sparsity"],
    "magnitude": ["target_sparsity", "start_fraction", "end_fraction"],
    "imp": ["target_sparsity", "rounds"],
    "lth": ["target_sparsity", "rounds", "rewind_fraction"],
    "disparse-dynamic": ["target_sparsity", "prune_rate", "end_fraction"],
    "str": ["threshold_init", "threshold_lr", "sparsity_penalty", "target_sparsity"],
    "adapmtl": [
        "threshold_init_backbone",
        "threshold_init_heads",
        "sparsity_penalty",
        "temperature",
        "threshold_lr",
        "target_sparsity",
    ],
    "adapmtl-global-threshold": [
        "threshold_init",
        "sparsity_penalty",
        "temperature",
        "threshold_lr",
        "target_sparsity",
    ],
    "adapmtl-equal-weights": [
        "threshold_init_backbone",
        "threshold_init_heads",
        "sparsity_penalty",
        "threshold_lr",
        "target_sparsity",
    ],
    "dmtg": ["num_groups", "tau", "lr", "shared_stages"],
}


def test_registry_holds_a_space_for_exactly_the_methods_of_trials():
    assert set(EXPECTED) <= set(SEARCH_SPACES.names())
    pruning = pytest.importorskip("trials.pruning")
    grouping = pytest.importorskip("trials.grouping")
    methods = pruning.PRUNERS.names() + grouping.ARCHITECTURE_SEARCHES.names()
    assert SEARCH_SPACES.names() == sorted(methods)


@pytest.mark.parametrize("method", SEARCH_SPACES.names())
def test_space_names_defaults_and_optuna(method):
    space = get_search_space(method)
    assert space.names == EXPECTED.get(method, space.names)
    assert space.method == method
    distributions = space.to_optuna()
    assert list(distributions) == space.names
    for name, default in space.defaults().items():
        distribution = distributions[name]
        assert distribution._contains(distribution.to_internal_repr(default)), name
    if "target_sparsity" in space:
        assert space.defaults()["target_sparsity"] == 0.9
        assert (space["target_sparsity"].low, space["target_sparsity"].high) == (0.5, 0.99)
    assert "lr" not in space or method == "dmtg"


def test_calibrated_defaults_and_log_scales():
    adapmtl = get_search_space("adapmtl")
    assert adapmtl.defaults() == {
        "threshold_init_backbone": -30.5,
        "threshold_init_heads": -30.5,
        "sparsity_penalty": 1e-4,
        "temperature": 1.0,
        "threshold_lr": 1e-3,
        "target_sparsity": 0.9,
    }
    assert adapmtl["sparsity_penalty"].log and adapmtl["temperature"].log
    assert adapmtl["threshold_lr"].log
    assert not adapmtl["threshold_init_heads"].log
    dmtg = get_search_space("dmtg").to_optuna()
    assert isinstance(dmtg["num_groups"], optuna.distributions.IntDistribution)
    assert (dmtg["num_groups"].low, dmtg["num_groups"].high) == (1, 3)
    assert dmtg["tau"].log and dmtg["lr"].log
    assert get_search_space("dmtg").defaults() == {
        "num_groups": 3,
        "tau": 2.5,  # DMTGParams' default (the DMTG reference's CelebA value)
        "lr": 1e-3,
        "shared_stages": 1,
    }
    assert get_search_space("disparse-dynamic").defaults()["end_fraction"] == 0.75
    assert get_search_space("magnitude").defaults()["end_fraction"] == 0.7
    assert get_search_space("lth").defaults() == {
        "target_sparsity": 0.9,
        "rounds": 3,
        "rewind_fraction": 0.0,
    }
    assert get_search_space("lth", "short-budget").defaults()["rewind_fraction"] == 0.05


#: The soft-threshold and LTH spaces before reference defaults (short-budget keeps them).
_INIT = {"type": "float", "low": -7.0, "high": -3.5, "log": False, "default": -4.0}
_LR = {"type": "float", "low": 5e-3, "high": 5e-2, "log": True, "default": 2e-2}
_PENALTY = {"type": "float", "low": 1e-3, "high": 3e-2, "log": True, "default": 1e-2}
_TEMPERATURE = {"type": "float", "low": 0.25, "high": 4.0, "log": True, "default": 1.0}
_TARGET = {"type": "float", "low": 0.5, "high": 0.99, "log": False, "default": 0.9}
_ROUNDS = {"type": "int", "low": 2, "high": 5, "log": False, "default": 3}
BEFORE_REFERENCE_DEFAULTS = {
    "adapmtl": {
        "threshold_init_backbone": _INIT,
        "threshold_init_heads": _INIT,
        "sparsity_penalty": _PENALTY,
        "temperature": _TEMPERATURE,
        "threshold_lr": _LR,
        "target_sparsity": _TARGET,
    },
    "adapmtl-global-threshold": {
        "threshold_init": _INIT,
        "sparsity_penalty": _PENALTY,
        "temperature": _TEMPERATURE,
        "threshold_lr": _LR,
        "target_sparsity": _TARGET,
    },
    "adapmtl-equal-weights": {
        "threshold_init_backbone": _INIT,
        "threshold_init_heads": _INIT,
        "sparsity_penalty": _PENALTY,
        "threshold_lr": _LR,
        "target_sparsity": _TARGET,
    },
    "str": {
        "threshold_init": _INIT,
        "threshold_lr": _LR,
        "sparsity_penalty": _PENALTY,
        "target_sparsity": _TARGET,
    },
    "lth": {
        "target_sparsity": _TARGET,
        "rounds": _ROUNDS,
        "rewind_fraction": {
            "type": "float",
            "low": 0.0,
            "high": 0.15,
            "log": False,
            "default": 0.05,
        },
    },
}


@pytest.mark.parametrize("method", sorted(BEFORE_REFERENCE_DEFAULTS))
def test_short_budget_spaces_are_the_spaces_before_reference_defaults(method):
    assert get_search_space(method, "short-budget").to_dict() == BEFORE_REFERENCE_DEFAULTS[method]


@pytest.mark.parametrize(
    "method", ["adapmtl", "adapmtl-global-threshold", "adapmtl-equal-weights", "str"]
)
def test_reference_soft_threshold_ranges_hold_the_reference_and_short_runs(method):
    space = get_search_space(method)
    if method == "str":  # no reference code: paretune's ranges in every calibration
        assert space.to_dict() == get_search_space(method, "short-budget").to_dict()
        return
    for name in space.names:
        if name.startswith("threshold_init"):
            assert (space[name].low, space[name].high, space[name].default) == (-30.5, -2.0, -30.5)
    lr, penalty = space["threshold_lr"], space["sparsity_penalty"]
    assert lr.log and lr.low <= 1e-3 == lr.default and lr.high >= 0.1
    assert penalty.log and penalty.low <= 1e-6 and penalty.high >= 3e-2
    assert penalty.default == 1e-4


def test_dmtg_short_budget_space_is_the_space_before_reference_defaults():
    space = get_search_space("dmtg", "short-budget")
    assert space == SearchSpace(
        (
            Int("num_groups", 1, 3, default=3),
            Float("tau", 0.5, 8.0, log=True, default=2.5),
            Float("lr", 3e-4, 1e-2, log=True, default=2e-3),
            Int("shared_stages", 0, 2, default=1),
        ),
        "dmtg",
    )
    reference = get_search_space("dmtg")
    for name, low, high in (("tau", 0.5, 8.0), ("lr", 3e-4, 1e-2)):  # same ranges
        assert (reference[name].low, reference[name].high) == (low, high)
    # the reference's CelebA values lie in the ranges too
    assert reference["tau"].low <= 2.5 <= reference["tau"].high
    assert reference["lr"].low <= 8e-4 <= reference["lr"].high


def test_dense_space_is_empty():
    dense = get_search_space("dense")
    assert len(dense) == 0 and dense.to_optuna() == {} and dense.defaults() == {}
    with pytest.raises(SearchSpaceError, match="method 'dense' has no parameters"):
        dense.override({"target_sparsity": 0.9})


def test_unknown_method_lists_choices_and_suggests():
    with pytest.raises(
        UnknownNameError,
        match=r"unknown method 'adapmt'; choose one of: "
        r"adapmtl, .*\(did you mean 'adapmtl'\?\)",
    ):
        get_search_space("adapmt")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Float("threshold_lr", 0.1, 0.01),
            r"range for 'threshold_lr' has low 0\.1 > high 0\.01",
        ),
        (lambda: Float("tau", 0.0, 1.0, log=True), r"log range for 'tau' needs low > 0"),
        (
            lambda: Float("x", 0.0, 1.0, default=2.0),
            r"default for 'x' is 2\.0 but must be within \[0\.0, 1\.0\]",
        ),
        (lambda: Float("x", "a", 1.0), r"low of 'x' must be a number \(got 'a'\)"),
        (lambda: Int("rounds", 5, 2), r"range for 'rounds' has low 5 > high 2"),
        (lambda: Int("rounds", 1.5, 3), r"low of 'rounds' must be an integer \(got 1\.5\)"),
        (lambda: Categorical("opt", ()), r"choices for 'opt' must not be empty"),
        (
            lambda: Categorical("opt", ("a", "b"), "c"),
            r"default for 'opt' is 'c' but must be one of: 'a', 'b'",
        ),
        (lambda: Categorical("opt", ("a", "a")), r"choices for 'opt' repeat a value"),
        (lambda: Categorical("opt", ([1], 2)), r"choices for 'opt' must be numbers"),
        (lambda: SearchSpace((Float("a", 0, 1), Int("a", 0, 1))), r"'a' appears twice"),
        (lambda: Float("not a name", 0, 1), r"parameter name must be an identifier"),
    ],
)
def test_invalid_definitions(build, message):
    with pytest.raises(SearchSpaceError, match=message):
        build()


def test_computed_defaults():
    assert Float("x", 0.0, 1.0).default == 0.5
    assert Float("x", 1e-4, 1e-2, log=True).default == pytest.approx(1e-3)
    assert Int("n", 1, 4).default in (2, 3)
    assert Categorical("opt", ("adam", "sgd")).default == "adam"


def test_override_scalar_fixes_the_parameter():
    space = get_search_space("adapmtl").override({"target_sparsity": 0.95})
    assert isinstance(space["target_sparsity"], Fixed)
    assert "target_sparsity" not in space.to_optuna()
    assert space.fixed() == {"target_sparsity": 0.95}
    assert space.defaults()["target_sparsity"] == 0.95
    assert len(space.searched) == 5


def test_override_range_and_mapping():
    base = get_search_space("adapmtl")
    space = base.override(
        {
            "threshold_lr": [2e-3, 5e-3],  # the default 1e-3 falls outside: recomputed
            "temperature": {"high": 2.0},  # partial: low, log and default kept
            "threshold_init_heads": {"low": -5, "high": -3, "default": -3.5},
        }
    )
    lr = space["threshold_lr"]
    assert (lr.low, lr.high, lr.log) == (2e-3, 5e-3, True)
    assert lr.default == pytest.approx((2e-3 * 5e-3) ** 0.5)
    temperature = space["temperature"]
    assert (temperature.low, temperature.high, temperature.default) == (0.25, 2.0, 1.0)
    assert temperature.log
    assert space["threshold_init_heads"].default == -3.5
    assert space.to_optuna()["threshold_lr"] == optuna.distributions.FloatDistribution(
        2e-3, 5e-3, log=True
    )
    assert base["threshold_lr"].high == 3e-1  # the registered space is unchanged


def test_override_choices_and_int_ranges():
    space = get_search_space("imp").override(
        {
            "target_sparsity": {"choices": [0.8, 0.9, 0.95]},
            "rounds": [2, 3],
        }
    )
    assert isinstance(space["target_sparsity"], Categorical)
    assert space["target_sparsity"].default == 0.9
    assert space.to_optuna()["target_sparsity"] == optuna.distributions.CategoricalDistribution(
        (0.8, 0.9, 0.95)
    )
    assert space.to_optuna()["rounds"] == optuna.distributions.IntDistribution(2, 3)
    assert space.override({"target_sparsity": ["a", "b"]})["target_sparsity"].default == "a"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"thresold_lr": 0.1},
            r"unknown adapmtl parameter 'thresold_lr'; choose one of: "
            r"sparsity_penalty, .*\(did you mean 'threshold_lr'\?\)",
        ),
        ({"threshold_lr": [0.1, 0.01]}, r"range for 'threshold_lr' has low 0\.1 > high 0\.01"),
        ({"threshold_lr": [0.1]}, r"range for 'threshold_lr' must be \[low, high\]"),
        ({"threshold_lr": {"lo": 0.1}}, r"override for 'threshold_lr' has unknown key 'lo'"),
        ({"threshold_lr": None}, r"override for 'threshold_lr' is empty"),
        ({"threshold_lr": {"low": 0.0}}, r"log range for 'threshold_lr' needs low > 0"),
        ({"threshold_lr": "fast"}, r"fixed value of 'threshold_lr' must be a number"),
        ({"temperature": {"log": "yes"}}, r"log of 'temperature' must be true or false"),
        ({"target_sparsity": {"choices": []}}, r"choices for 'target_sparsity' must not be"),
    ],
)
def test_invalid_overrides(overrides, message):
    with pytest.raises(SearchSpaceError, match=message):
        get_search_space("adapmtl").override(overrides)


def test_int_fixed_value_must_be_integral():
    assert get_search_space("imp").override({"rounds": 4.0}).fixed() == {"rounds": 4}
    with pytest.raises(SearchSpaceError, match=r"fixed value of 'rounds' must be an integer"):
        get_search_space("imp").override({"rounds": 2.5})


def test_dict_round_trip():
    space = get_search_space("adapmtl").override(
        {"target_sparsity": 0.8, "temperature": {"choices": [0.5, 1.0, 2.0]}}
    )
    again = SearchSpace.from_dict(space.to_dict(), "adapmtl")
    assert again == space
    with pytest.raises(SearchSpaceError, match=r"unknown type 'weird'"):
        SearchSpace.from_dict({"x": {"type": "weird"}})


def test_sampling_stays_inside_the_space():
    space = get_search_space("lth")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask(space.to_optuna())
        assert 0.5 <= trial.params["target_sparsity"] <= 0.99
        assert trial.params["rounds"] in (2, 3, 4, 5)
        study.tell(trial, 0.0)


def test_import_needs_neither_torch_nor_optuna(repo_root):
    code = (
        "import sys, search_spaces\n"
        "search_spaces.get_search_space('adapmtl').defaults()\n"
        "heavy = [m for m in ('torch', 'optuna', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


def test_names_match_the_pruners_typed_params():
    pruning = pytest.importorskip("trials.pruning")
    checked = 0
    for method in SEARCH_SPACES.names():
        if method == "dmtg" or method not in pruning.PRUNERS:
            continue
        fields = set(pruning.PRUNERS.get(method).Params.model_fields)
        space = get_search_space(method)
        assert set(space.names) <= fields, (method, set(space.names) - fields)
        params = pruning.PRUNERS.get(method).Params(**space.defaults())
        assert params.model_dump(include=set(space.names)) == space.defaults()
        checked += 1
    assert checked >= 10


def test_disparse_short_budget_spaces_are_the_spaces_before_reference_defaults():
    assert get_search_space("disparse", "short-budget") == SearchSpace(
        (Float("target_sparsity", 0.5, 0.99, default=0.9),), "disparse"
    )
    assert get_search_space("disparse-dynamic", "short-budget") == SearchSpace(
        (
            Float("target_sparsity", 0.5, 0.99, default=0.9),
            Float("prune_rate", 0.1, 0.5, default=0.3),
            Float("end_fraction", 0.5, 0.9, default=0.75),
        ),
        "disparse-dynamic",
    )
    reference = get_search_space("disparse-dynamic")
    assert reference.defaults() == {"target_sparsity": 0.9, "prune_rate": 0.5, "end_fraction": 0.75}
    assert (reference["prune_rate"].low, reference["prune_rate"].high) == (0.1, 0.7)


# The space defaults equal the Params defaults of the calibration, except where a Params
# default of None stands for a value the space must spell out (the common init, the
# weights' lr): there the effective value is compared. A searched name that is not a
# parameter of the method is a trainer field (dmtg's lr): its default is the trainer's.
_EFFECTIVE = {
    "threshold_init_backbone": "threshold_init",
    "threshold_init_heads": "threshold_init",
}


@pytest.mark.parametrize("calibration", ["reference", "short-budget"])
@pytest.mark.parametrize("method", SEARCH_SPACES.names())
def test_space_defaults_are_the_calibrated_params_defaults(method, calibration):
    grouping = pytest.importorskip("trials.grouping")
    config = pytest.importorskip("trials._config")
    calibrated = grouping.method_params_type(method).calibrated(calibration).model_dump()
    trainer = config.TrialConfig(calibration=calibration)
    for name, default in get_search_space(method, calibration).defaults().items():
        value = calibrated[name] if name in calibrated else getattr(trainer, name)
        if value is None and name in _EFFECTIVE:
            value = calibrated[_EFFECTIVE[name]]
        if value is None and name == "threshold_lr":  # None: the weights' lr
            value = trainer.lr
        assert value == default, (method, calibration, name)
