"""Task weightings: equal, AdapMTL's adaptive weighting, uncertainty and DWA."""

from __future__ import annotations

import itertools
import math

import pydantic
import pytest
import torch

from trials.registry import UnknownNameError
from trials.weighting import (
    WEIGHTINGS,
    AdaptiveWeighting,
    AdaptiveWeightingParams,
    DWAWeighting,
    EqualWeighting,
    TaskWeighting,
    UncertaintyWeighting,
    WeightingParams,
    build_weighting,
    resolve_window,
    tempered_normalization,
)

TASKS = ("a", "b", "c")


def oscillating(iteration: int) -> dict[str, float]:
    """Task a's loss moves most, b's less, c's hardly at all."""
    sign = (-1) ** iteration
    return {"a": 1.0 + 0.5 * sign, "b": 2.0 + 0.2 * sign, "c": 1.0 - 0.001 * iteration}


def as_tensors(values: dict[str, float]) -> dict[str, torch.Tensor]:
    return {
        task: torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for task, value in values.items()
    }


def run_adaptive(weighting: AdaptiveWeighting, iterations: int) -> list[dict[str, float]]:
    weighting.attach(TASKS, 100)
    seen = []
    for iteration in range(iterations):
        weighting.combine(as_tensors(oscillating(iteration)), iteration)
        seen.append(weighting.weights())
    return seen


def reference_weights(iteration: int, window: int) -> dict[str, float]:
    """The paper's normalization ``T * r_t / sum_j r_j`` over the last ``window`` samples
    (any iteration from 1 on), computed by hand."""
    robustness = {}
    for task in TASKS:
        samples = []
        for i in range(max(1, iteration - window + 1), iteration + 1):
            previous, current = oscillating(i - 1)[task], oscillating(i)[task]
            samples.append(abs(previous - current) / current)
        robustness[task] = sum(samples) / len(samples)
    total = sum(robustness.values())
    return {task: len(TASKS) * value / total for task, value in robustness.items()}


# -- registry and validation -----------------------------------------------------------


def test_registered_names_and_errors() -> None:
    assert {"adaptive", "dwa", "equal", "uncertainty"} <= set(WEIGHTINGS.names())
    assert isinstance(build_weighting("adaptive", temperature=2.0), AdaptiveWeighting)
    with pytest.raises(UnknownNameError, match="did you mean 'adaptive'"):
        build_weighting("adaptiv")
    with pytest.raises(pydantic.ValidationError, match="temperature"):
        build_weighting("adaptive", temperature=0.0)
    with pytest.raises(pydantic.ValidationError, match="start_fraction"):
        build_weighting("adaptive", start_fraction=1.5)
    with pytest.raises(pydantic.ValidationError, match="window"):
        build_weighting("dwa", window=0)
    with pytest.raises(pydantic.ValidationError, match="no_such_knob"):
        build_weighting("equal", no_such_knob=1)


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_every_weighting_meets_the_contract(name: str) -> None:
    """Typed strict params, a docstring, and over a whole budget a finite scalar loss
    that every task's loss reaches, with one finite positive weight per task."""
    cls = WEIGHTINGS.get(name)
    assert issubclass(cls, TaskWeighting) and issubclass(cls.Params, WeightingParams)
    assert cls.__doc__ and cls.__doc__.strip()
    with pytest.raises(pydantic.ValidationError, match="no_such_knob"):
        build_weighting(name, no_such_knob=1)
    weighting = build_weighting(name)
    weighting.attach(TASKS, 40)
    assert all(isinstance(p, torch.nn.Parameter) for p in weighting.parameters())
    for iteration in range(40):
        losses = as_tensors(oscillating(iteration))
        loss = weighting.combine(losses, iteration)
        assert loss.dim() == 0 and math.isfinite(loss.item())
        loss.backward()
        assert all(value.grad is not None and value.grad.item() > 0 for value in losses.values())
        weights = weighting.weights()
        assert list(weights) == list(TASKS)
        assert all(isinstance(w, float) and math.isfinite(w) and w > 0 for w in weights.values())


def test_combine_checks_attachment_and_tasks() -> None:
    weighting = build_weighting("adaptive")
    with pytest.raises(RuntimeError, match="AdaptiveWeighting is not attached"):
        weighting.combine(as_tensors({"a": 1.0}), 0)
    weighting.attach(TASKS, 10)
    with pytest.raises(ValueError, match="losses lack task 'b'; expected tasks: a, b, c"):
        weighting.combine(as_tensors({"a": 1.0, "c": 1.0}), 0)


def test_default_window_is_a_fortieth_of_the_budget() -> None:
    assert resolve_window(None, 20000) == 500
    assert resolve_window(None, 400) == 10
    assert resolve_window(None, 40) == 5
    assert resolve_window(7, 20000) == 7


# -- equal -----------------------------------------------------------------------------


def test_equal_weighting_sums_the_losses() -> None:
    weighting = EqualWeighting()
    weighting.attach(TASKS, 10)
    losses = as_tensors({"a": 1.5, "b": 0.25, "c": 2.0})
    total = weighting.combine(losses, 0)
    assert total.item() == pytest.approx(3.75)
    total.backward()
    assert all(loss.grad.item() == 1.0 for loss in losses.values())
    assert weighting.weights() == {"a": 1.0, "b": 1.0, "c": 1.0}


# -- adaptive (AdapMTL) ----------------------------------------------------------------


#: The adaptive weighting's knobs before reference defaults.
SHORT_BUDGET = {"record_from": "first-iteration", "adapt_after": "start"}


def test_calibrations_of_the_adaptive_knobs() -> None:
    reference = AdaptiveWeightingParams()
    assert (reference.record_from, reference.adapt_after, reference.weight_sum) == (
        "start",
        "full-window",
        None,
    )
    short = AdaptiveWeightingParams.calibrated("short-budget")
    assert (short.record_from, short.adapt_after) == ("first-iteration", "start")
    assert short.model_dump() == {**reference.model_dump(), **SHORT_BUDGET}
    with pytest.raises(pydantic.ValidationError, match="record_from"):
        build_weighting("adaptive", record_from="never")
    with pytest.raises(pydantic.ValidationError, match="weight_sum"):
        build_weighting("adaptive", weight_sum=0.0)


def test_reference_weights_change_only_after_the_window_fills_past_the_start() -> None:
    weighting = build_weighting("adaptive", window=5, start_fraction=0.2)
    assert isinstance(weighting, AdaptiveWeighting)
    seen = run_adaptive(weighting, 40)
    # start 20: the first sample at 21, more than 5 samples first at 26
    for iteration in range(26):
        assert seen[iteration] == {"a": 1.0, "b": 1.0, "c": 1.0}, iteration
    assert seen[26] != {"a": 1.0, "b": 1.0, "c": 1.0}
    # from then on, the last 5 samples, none from before the start
    for iteration in (26, 27, 39):
        assert seen[iteration] == pytest.approx(reference_weights(iteration, 5), rel=1e-12)


def test_weight_sum_three_is_the_reference_literal() -> None:
    weighting = build_weighting("adaptive", window=2, start_fraction=0.0, weight_sum=3.0)
    tasks = ("a", "b", "c", "d", "e")
    weighting.attach(tasks, 10)
    for iteration in range(3):  # at most 2 samples: not yet adaptive
        weighting.combine(as_tensors(dict.fromkeys(tasks, 1.0 + iteration)), iteration)
        assert weighting.weights() == dict.fromkeys(tasks, 0.6)
    weighting.combine(as_tensors({t: 1.0 + 3 + i for i, t in enumerate(tasks)}), 3)
    weights = weighting.weights()
    assert weights != dict.fromkeys(tasks, 0.6)
    assert sum(weights.values()) == pytest.approx(3.0)


def test_short_budget_adaptive_weights_are_exactly_one_before_the_start() -> None:
    weighting = build_weighting("adaptive", window=5, start_fraction=0.2, **SHORT_BUDGET)
    assert isinstance(weighting, AdaptiveWeighting)
    weighting.attach(TASKS, 100)
    for iteration in range(20):
        values = oscillating(iteration)
        losses = as_tensors(values)
        total = weighting.combine(losses, iteration)
        assert weighting.weights() == {"a": 1.0, "b": 1.0, "c": 1.0}
        assert total.item() == pytest.approx(sum(values.values()))
    weighting.combine(as_tensors(oscillating(20)), 20)
    assert weighting.weights() != {"a": 1.0, "b": 1.0, "c": 1.0}


def test_short_budget_windows_hold_samples_from_before_the_start() -> None:
    weighting = build_weighting(
        "adaptive", window=5, start_fraction=0.2, temperature=1.0, **SHORT_BUDGET
    )
    assert isinstance(weighting, AdaptiveWeighting)
    seen = run_adaptive(weighting, 40)
    for iteration in (20, 27, 39):
        expected = reference_weights(iteration, 5)
        assert seen[iteration] == pytest.approx(expected, rel=1e-9)
        assert sum(seen[iteration].values()) == pytest.approx(3.0)
    final = seen[-1]
    # the task whose loss moves most (least robust) gets the largest weight
    assert final["a"] > final["b"] > final["c"]


def test_adaptive_loss_uses_the_weights_as_constants() -> None:
    weighting = build_weighting("adaptive", window=5, start_fraction=0.0)
    assert isinstance(weighting, AdaptiveWeighting)
    run_adaptive(weighting, 30)
    losses = as_tensors(oscillating(30))
    total = weighting.combine(losses, 30)
    weights = weighting.weights()
    assert total.item() == pytest.approx(sum(weights[t] * losses[t].item() for t in TASKS))
    total.backward()
    for task in TASKS:
        assert losses[task].grad.item() == pytest.approx(weights[task])


def test_larger_temperature_moves_toward_equal_weights() -> None:
    spreads = []
    for temperature in (0.5, 1.0, 2.0, 8.0):
        weighting = build_weighting(
            "adaptive", window=5, start_fraction=0.2, temperature=temperature
        )
        assert isinstance(weighting, AdaptiveWeighting)
        final = run_adaptive(weighting, 40)[-1]
        assert sum(final.values()) == pytest.approx(3.0)
        spreads.append(max(final.values()) - min(final.values()))
    assert all(a > b for a, b in itertools.pairwise(spreads))
    assert spreads[-1] < 0.5 * spreads[1]


def test_tempered_normalization_is_stable_for_small_temperatures_and_zero_scores() -> None:
    sharp = tempered_normalization([1e-3, 2e-3, 5e-4], 0.01)
    assert all(math.isfinite(w) for w in sharp)
    assert sum(sharp) == pytest.approx(3.0)
    assert sharp[1] == pytest.approx(3.0)
    assert tempered_normalization([0.0, 0.0], 1.0) == pytest.approx([1.0, 1.0])
    assert tempered_normalization([2.0, 1.0, 1.0], 1.0) == pytest.approx([1.5, 0.75, 0.75])
    assert tempered_normalization([2.0, 1.0, 1.0], 1.0, weight_sum=8.0) == [4.0, 2.0, 2.0]
    assert sum(tempered_normalization([1e-3, 2e-3, 5e-4], 0.5, weight_sum=3.0)) == pytest.approx(3)
    # tau = 1 is the plain ratio; other temperatures agree with it in the limit
    assert tempered_normalization([0.3, 0.2, 0.1], 1.0 + 1e-9) == pytest.approx(
        tempered_normalization([0.3, 0.2, 0.1], 1.0), rel=1e-8
    )


def test_constant_losses_give_equal_adaptive_weights() -> None:
    weighting = build_weighting("adaptive", window=3, start_fraction=0.0)
    weighting.attach(TASKS, 20)
    for iteration in range(10):
        weighting.combine(as_tensors({"a": 0.5, "b": 2.0, "c": 1.0}), iteration)
    assert weighting.weights() == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})


def test_non_finite_losses_are_not_recorded() -> None:
    weighting = build_weighting("adaptive", window=3, start_fraction=0.0)
    assert isinstance(weighting, AdaptiveWeighting)
    weighting.attach(("a", "b"), 20)
    weighting.record({"a": 1.0, "b": 1.0})
    weighting.record({"a": float("nan"), "b": 2.0})
    weighting.record({"a": 3.0, "b": 2.0})
    assert weighting.robustness() == pytest.approx([0.0, 0.25])


# -- uncertainty -----------------------------------------------------------------------


def test_uncertainty_weighting_learns_log_variances() -> None:
    weighting = build_weighting("uncertainty", log_variance_init=0.5)
    assert isinstance(weighting, UncertaintyWeighting)
    weighting.attach(("small", "large"), 10)
    parameters = weighting.parameters()
    assert len(parameters) == 2 and all(p.requires_grad for p in parameters)
    losses = as_tensors({"small": 0.1, "large": 5.0})
    total = weighting.combine(losses, 0)
    expected = sum(math.exp(-0.5) * value + 0.5 for value in (0.1, 5.0))
    assert total.item() == pytest.approx(expected)
    assert weighting.weights() == pytest.approx({"small": math.exp(-0.5), "large": math.exp(-0.5)})
    total.backward()
    assert all(p.grad is not None and p.grad.item() != 0 for p in parameters)
    optimizer = torch.optim.SGD(parameters, lr=0.1)
    optimizer.step()
    weights = weighting.weights()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L: a large loss raises s and lowers its weight
    assert weights["large"] < math.exp(-0.5) < weights["small"]


# -- DWA -------------------------------------------------------------------------------


def test_dwa_favours_the_task_whose_loss_falls_slower() -> None:
    weighting = build_weighting("dwa", window=3, temperature=2.0)
    assert isinstance(weighting, DWAWeighting)
    weighting.attach(("fast", "slow"), 100)
    history: dict[str, list[float]] = {"fast": [], "slow": []}
    for iteration in range(12):
        values = {"fast": 0.8**iteration, "slow": 0.98**iteration}
        weighting.combine(as_tensors(values), iteration)
        weights = weighting.weights()
        if iteration < 6:
            assert weights == {"fast": 1.0, "slow": 1.0}
        else:
            ratios = {
                task: (sum(history[task][-3:]) / 3) / (sum(history[task][-6:-3]) / 3)
                for task in history
            }
            exps = {task: math.exp(ratio / 2.0) for task, ratio in ratios.items()}
            norm = sum(exps.values())
            assert weights == pytest.approx({t: 2 * e / norm for t, e in exps.items()})
            assert weights["slow"] > weights["fast"]
            assert sum(weights.values()) == pytest.approx(2.0)
        for task, value in values.items():
            history[task].append(value)
