"""A new weight pruner is its module plus its search space, nothing else.

The throwaway plugin package ``tests/plugins/oneshot`` (one-shot global magnitude pruning)
is used in place here: its pruner and a search space are registered in code, under a name
no other code knows, and then go through everything a registered method goes through:
the pruner contract, ``run_trial``, the study config and its preflight, and the Optuna
conversion of the space. A study may also name the class as ``module:Class``.
``tests/integration/test_plugin_package.py`` installs the same package and loads it
through its entry points.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from search_spaces import SEARCH_SPACES, Float, SearchSpace, get_search_space
from study import ConfigError, check_study, load_config
from tests.plugins.oneshot.paretune_oneshot.pruner import LonelyPruner, OneShotMagnitudePruner
from tests.trials.pruner_contract import check_lifecycle, check_optimizer_groups, check_params
from trials import run_trial, validate_trial_config
from trials.pruning import PRUNERS, build_pruner
from trials.registry import PluginError, UnknownNameError

NAME = "one-shot-plugin"
#: The pruner class named as ``module:Class`` (its ``search_space`` attribute is its space).
REFERENCE = "tests.plugins.oneshot.paretune_oneshot.pruner:OneShotMagnitudePruner"

pytestmark = pytest.mark.usefixtures("one_thread")


SPACE = SearchSpace(
    (
        Float("target_sparsity", 0.5, 0.95, default=0.8),
        Float("prune_at", 0.2, 0.8, default=0.5),
    ),
    NAME,
)


@pytest.fixture
def plugin() -> Iterator[str]:
    """The throwaway pruner and its space, registered for one test only."""
    PRUNERS.register(NAME)(OneShotMagnitudePruner)
    try:
        SEARCH_SPACES.register(NAME)(SPACE)
        try:
            yield NAME
        finally:
            SEARCH_SPACES.unregister(NAME)
    finally:
        PRUNERS.unregister(NAME)


def test_nothing_else_knows_the_throwaway_name() -> None:
    assert NAME not in PRUNERS and NAME not in SEARCH_SPACES
    with pytest.raises(UnknownNameError, match=f"unknown method '{NAME}'"):
        build_pruner(NAME)


@pytest.mark.parametrize("target", [0.5, 0.9])
def test_the_pruner_contract_holds(plugin: str, target: float, tmp_path: Path) -> None:
    check_params(plugin)
    check_optimizer_groups(plugin)
    check_lifecycle(build_pruner(plugin, target_sparsity=target), target, tmp_path)


def test_the_base_class_supplies_the_optional_parts(plugin: str) -> None:
    pruner = build_pruner(plugin)
    assert pruner.default_weighting == "equal"
    assert pruner.weighting_params() == {}
    assert pruner.thresholds() == {}


def test_run_trial_prunes_to_the_target(plugin: str, tiny_trial: dict[str, Any]) -> None:
    params = {"target_sparsity": 0.7, "prune_at": 0.75}  # prunes after step 9 of 12
    result = run_trial({**tiny_trial, "method": plugin, "method_params": params})
    assert result.method == plugin
    assert result.iterations == tiny_trial["iterations"] == 12
    assert result.sparsity["overall"] == pytest.approx(0.7, abs=1e-3)
    assert set(result.sparsity["components"]) == {
        "backbone",
        "head:segment_semantic",
        "head:depth_zbuffer",
        "head:normal",
    }
    assert result.grouping is None and result.thresholds == {}
    first, last = result.evaluations
    assert (first.iteration, first.sparsity) == (6, 0.0)  # still dense at step 6
    assert last.iteration == 12 and last.sparsity == result.sparsity["overall"]


def test_the_space_converts_to_optuna(plugin: str) -> None:
    space = get_search_space(plugin)
    assert space is SPACE and get_search_space(plugin, "short-budget") is SPACE
    distributions = space.to_optuna()
    assert list(distributions) == ["target_sparsity", "prune_at"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask(distributions)
    assert 0.5 <= trial.params["target_sparsity"] <= 0.95
    assert 0.2 <= trial.params["prune_at"] <= 0.8
    # what Optuna proposes is a valid set of the pruner's parameters
    assert build_pruner(plugin, **trial.params).params.model_dump() == {
        "target_sparsity": trial.params["target_sparsity"],
        "prune_at": trial.params["prune_at"],
    }


def _study_file(method: str, tmp_path: Path, tiny_trial: dict[str, Any]) -> Path:
    data = {
        "name": "plugin",
        "dataset": {"name": "scenes-nyu", "options": tiny_trial["dataset_options"]},
        "model": {"backbone": "resnet-tiny", "options": {"width": 8}},
        "methods": [{"name": method, "search_space": {"prune_at": [0.3, 0.6]}}, {"name": "dense"}],
        "budget": {"iterations": 12, "batch_size": 4, "seeds": [0]},
        "study_dir": str(tmp_path / "plugin"),
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_study_config_and_its_preflight_accept_it(
    plugin: str, tmp_path: Path, tiny_trial: dict[str, Any]
) -> None:
    config = load_config(_study_file(plugin, tmp_path, tiny_trial))
    space = config.method_space(plugin)
    assert (space["prune_at"].low, space["prune_at"].high) == (0.3, 0.6)
    check_study(config)  # every trial the study would run, before Ray starts
    fields = config.trial_config(plugin, {"target_sparsity": 0.9}, seed=0)
    trial = validate_trial_config(fields)
    assert trial.method == plugin
    assert trial.method_params == {"target_sparsity": 0.9, "prune_at": 0.5}


@pytest.fixture
def reference() -> Iterator[str]:
    """The class named as ``module:Class``; its registrations are dropped afterwards."""
    yield REFERENCE
    for registry in (PRUNERS, SEARCH_SPACES):
        if REFERENCE in registry.names():
            registry.unregister(REFERENCE)


def test_a_study_can_name_the_class_itself(
    reference: str, tmp_path: Path, tiny_trial: dict[str, Any]
) -> None:
    assert reference in PRUNERS and PRUNERS.get(reference) is OneShotMagnitudePruner
    assert PRUNERS.origin(reference) == reference
    space = get_search_space(reference)
    assert space.names == ["target_sparsity", "prune_at"] and space.method == reference
    config = load_config(_study_file(reference, tmp_path, tiny_trial))
    check_study(config)
    fields = config.trial_config(reference, {"target_sparsity": 0.7}, seed=0)
    assert fields["method_params"] == {"target_sparsity": 0.7, "prune_at": 0.5}
    params = fields["method_params"]
    result = run_trial({**tiny_trial, "method": reference, "method_params": params})
    assert result.method == reference
    assert result.sparsity["overall"] == pytest.approx(0.7, abs=1e-3)


def test_a_class_name_that_does_not_import_says_why(
    tmp_path: Path, tiny_trial: dict[str, Any]
) -> None:
    missing = "tests.plugins.oneshot.paretune_oneshot.nowhere:Pruner"
    with pytest.raises(PluginError, match=r"cannot import module .*nowhere"):
        PRUNERS.get(missing)
    assert missing not in PRUNERS
    typo = "tests.plugins.oneshot.paretune_oneshot.pruner:OneShotPruner"
    with pytest.raises(ConfigError, match=r"has no attribute 'OneShotPruner'"):
        load_config(_study_file(typo, tmp_path, tiny_trial))


@pytest.fixture
def lonely() -> Iterator[str]:
    """A pruner registered in code without a search space."""
    PRUNERS.register("lonely-plugin")(LonelyPruner)
    yield "lonely-plugin"
    PRUNERS.unregister("lonely-plugin")


def test_a_pruner_without_a_search_space_is_named_with_what_to_add(
    lonely: str, tmp_path: Path, tiny_trial: dict[str, Any]
) -> None:
    message = (
        r"method 'lonely-plugin' \(weight pruner registered in trials.pruning.PRUNERS\) has no "
        r"search space; add one under 'lonely-plugin' to the 'paretune.search_spaces' entry "
        r"point group or register it with search_spaces.SEARCH_SPACES.register\('lonely-plugin'\)"
    )
    with pytest.raises(PluginError, match=message):
        get_search_space(lonely)
    with pytest.raises(ConfigError, match=message):
        load_config(_study_file(lonely, tmp_path, tiny_trial))
    # its class named directly: the class has no search_space attribute
    name = "tests.plugins.oneshot.paretune_oneshot.pruner:LonelyPruner"
    with pytest.raises(PluginError, match=r"has no search space: LonelyPruner is no"):
        get_search_space(name)
    # a trial needs no search space
    assert run_trial({**tiny_trial, "method": lonely}).method == lonely
    PRUNERS.unregister(name)
