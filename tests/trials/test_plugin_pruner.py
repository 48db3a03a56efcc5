"""A new weight pruner is its module plus its search space, nothing else.

A throwaway pruner (one-shot global magnitude pruning) and its search space are
registered here, under a name no other code knows, and then go through everything a
registered method goes through: the pruner contract, ``run_trial``, the study config and
its preflight, and the Optuna conversion of the space.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest
import torch
import yaml
from pydantic import Field
from torch import nn

from search_spaces import SEARCH_SPACES, Float, SearchSpace, get_search_space
from study import load_config
from study._commands import validate_study
from tests.trials.pruner_contract import check_lifecycle, check_optimizer_groups, check_params
from trials import run_trial
from trials._validate import validate_trial_config
from trials.pruning import (
    PRUNERS,
    PrunerParams,
    PruningContext,
    WeightPruner,
    build_pruner,
    global_topk,
    keep_count,
    prunable_parameters,
)
from trials.registry import UnknownNameError

NAME = "one-shot-plugin"

pytestmark = pytest.mark.usefixtures("one_thread")


class OneShotParams(PrunerParams):
    """Knobs of the throwaway pruner: the target and when to prune."""

    prune_at: float = Field(0.5, gt=0.0, lt=1.0)


class OneShotMagnitudePruner(WeightPruner):
    """One-shot global magnitude pruning (Han et al., "Learning both Weights and
    Connections for Efficient Neural Networks", NeurIPS 2015): after ``prune_at`` of the
    budget, the smallest weights over all components are cut to the target and stay cut.
    """

    Params: ClassVar[type[PrunerParams]] = OneShotParams

    def attach(self, model: nn.Module, context: PruningContext) -> None:
        super().attach(model, context)
        params = self.params
        assert isinstance(params, OneShotParams)
        self.prune_after = max(1, round(params.prune_at * context.total_iterations))
        self.layers = {
            f"{component}/{name}": layer
            for component, module in model.components().items()  # type: ignore[operator]
            for name, layer in prunable_parameters(module)
        }
        self.masks: dict[str, torch.Tensor] = {}

    def before_step(self, iteration: int) -> None:
        for name, mask in self.masks.items():
            grad = self.layers[name].weight.grad
            if grad is not None:
                grad.mul_(mask)

    def after_step(self, iteration: int) -> None:
        if not self.masks and iteration + 1 >= self.prune_after:
            scores = {name: layer.weight.detach().abs() for name, layer in self.layers.items()}
            size = sum(score.numel() for score in scores.values())
            target = self.params.target_sparsity
            self.masks = global_topk(scores, keep_count(size, target))
        self._apply_masks()

    def finalize(self) -> nn.Module:
        self._apply_masks()
        return self._model()

    def _apply_masks(self) -> None:
        with torch.no_grad():
            for name, mask in self.masks.items():
                self.layers[name].weight.mul_(mask)


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


def test_the_study_config_and_its_preflight_accept_it(
    plugin: str, tmp_path: Path, tiny_trial: dict[str, Any]
) -> None:
    data = {
        "name": "plugin",
        "dataset": {"name": "scenes-nyu", "options": tiny_trial["dataset_options"]},
        "model": {"backbone": "resnet-tiny", "options": {"width": 8}},
        "methods": [{"name": plugin, "search_space": {"prune_at": [0.3, 0.6]}}, {"name": "dense"}],
        "budget": {"iterations": 12, "batch_size": 4, "seeds": [0]},
        "study_dir": str(tmp_path / "plugin"),
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(path)
    space = config.method_space(plugin)
    assert (space["prune_at"].low, space["prune_at"].high) == (0.3, 0.6)
    validate_study(config)  # every trial the study would run, before Ray starts
    fields = config.trial_config(plugin, {"target_sparsity": 0.9}, seed=0)
    trial = validate_trial_config(fields)
    assert trial.method == plugin
    assert trial.method_params == {"target_sparsity": 0.9, "prune_at": 0.5}
