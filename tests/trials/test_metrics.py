"""Metric directions and the multi-task scores Delta_T and Delta_m (``trials.metrics``)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from trials.metrics import METRICS, MetricInfo, delta_m, delta_t, higher_is_better, metric_info
from trials.registry import UnknownNameError

REPO = Path(__file__).resolve().parents[2]

# The AdapMTL paper's NYUv2 example (DESIGN section 7): segmentation at ~90% sparsity.
DENSE_SEG = {"miou": 19.94, "pixel_acc": 48.71}
PRUNED_SEG = {"miou": 20.16, "pixel_acc": 49.14}
# Three tasks: task 2 gains 5.25% on a higher-is-better metric, task 3 lowers an error 0.75%.
THREE_TASK_SCORES = {
    "segment_semantic": PRUNED_SEG,
    "normal": {"within_30": 105.25},
    "depth_zbuffer": {"abs_err": 0.9925},
}
THREE_TASK_REFERENCE = {
    "segment_semantic": DENSE_SEG,
    "normal": {"within_30": 100.0},
    "depth_zbuffer": {"abs_err": 1.0},
}


def test_every_metric_has_the_documented_direction() -> None:
    higher = {
        "miou",
        "pixel_acc",
        "delta_1.25",
        "delta_1.25^2",
        "delta_1.25^3",
        "within_11.25",
        "within_22.5",
        "within_30",
        "cosine",
        "accuracy",
    }
    lower = {"cross_entropy", "abs_err", "rel_err", "angle_mean", "angle_median", "l1"}
    assert set(METRICS) == higher | lower
    for name in higher:
        assert higher_is_better(name) is True
    for name in lower:
        assert higher_is_better(name) is False
    assert all(info.name == name for name, info in METRICS.items())
    assert metric_info("cosine") == MetricInfo("cosine", True)


def test_unknown_metric_lists_choices_and_suggests() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown metric 'mIoU'; choose one of: .*miou"):
        higher_is_better("mIoU")
    with pytest.raises(ValueError, match=r"did you mean 'abs_err'\?"):
        higher_is_better("abs_eror")


def test_worked_example_single_task() -> None:
    total, per_task = delta_t({"segment_semantic": PRUNED_SEG}, {"segment_semantic": DENSE_SEG})
    miou_term = (20.16 - 19.94) / 19.94 * 100
    acc_term = (49.14 - 48.71) / 48.71 * 100
    assert round(miou_term, 2) == 1.10
    assert round(acc_term, 2) == 0.88
    assert round(per_task["segment_semantic"], 2) == 1.99
    assert total == pytest.approx(per_task["segment_semantic"])


def test_worked_example_three_tasks() -> None:
    scores, reference = THREE_TASK_SCORES, THREE_TASK_REFERENCE
    total, per_task = delta_t(scores, reference)
    assert per_task["normal"] == pytest.approx(5.25)
    assert per_task["depth_zbuffer"] == pytest.approx(0.75)
    assert round(total, 2) == 2.66
    assert list(per_task) == ["segment_semantic", "normal", "depth_zbuffer"]


def test_delta_m_weighs_every_metric_the_same() -> None:
    """The three-task example: per-metric terms 100 * (20.16 - 19.94) / 19.94 = 1.1033,
    100 * (49.14 - 48.71) / 48.71 = 0.8828, +5.25 and +0.75; Delta_m is their mean
    (7.9861 / 4 = 1.9965), while Delta_T first sums segmentation's two (2.66)."""
    scores, reference = THREE_TASK_SCORES, THREE_TASK_REFERENCE
    terms = [100 * 0.22 / 19.94, 100 * 0.43 / 48.71, 5.25, 0.75]
    assert delta_m(scores, reference) == pytest.approx(sum(terms) / 4)
    assert round(delta_m(scores, reference), 4) == 1.9965
    # one metric per task: the two scores agree
    single = {task: dict(list(values.items())[:1]) for task, values in scores.items()}
    assert delta_m(single, reference) == pytest.approx(delta_t(single, reference)[0])
    with pytest.raises(ValueError, match="delta_m needs at least one metric"):
        delta_m({"seg": {"miou": 1.0}}, {"depth": {"abs_err": 1.0}})


def test_direction_signs() -> None:
    # Lower error and higher accuracy are both improvements: positive terms.
    _, better = delta_t({"d": {"abs_err": 0.5}}, {"d": {"abs_err": 1.0}})
    assert better["d"] == pytest.approx(50.0)
    _, worse = delta_t({"d": {"abs_err": 1.5}}, {"d": {"abs_err": 1.0}})
    assert worse["d"] == pytest.approx(-50.0)
    _, higher = delta_t({"s": {"miou": 30.0}}, {"s": {"miou": 20.0}})
    assert higher["s"] == pytest.approx(50.0)
    # Per-task delta is a sum over metrics: one +10%, one -20% -> -10.
    _, mixed = delta_t(
        {"d": {"abs_err": 0.9, "delta_1.25": 80.0}}, {"d": {"abs_err": 1.0, "delta_1.25": 100.0}}
    )
    assert mixed["d"] == pytest.approx(10.0 - 20.0)


def test_negative_reference_keeps_the_sign_right() -> None:
    _, per_task = delta_t({"n": {"cosine": -0.1}}, {"n": {"cosine": -0.2}})
    assert per_task["n"] == pytest.approx(50.0)  # cosine went up: an improvement


def test_only_shared_tasks_and_metrics_count() -> None:
    total, per_task = delta_t(
        {"a": {"miou": 22.0, "pixel_acc": 1.0}, "b": {"l1": 0.5}},
        {"a": {"miou": 20.0}, "c": {"l1": 1.0}},
    )
    assert per_task == {"a": pytest.approx(10.0)}
    assert total == pytest.approx(10.0)


def test_zero_reference_metric_is_skipped() -> None:
    total, per_task = delta_t(
        {"a": {"miou": 22.0, "l1": 0.3}, "b": {"l1": 0.2}},
        {"a": {"miou": 20.0, "l1": 0.0}, "b": {"l1": 0.0}},
    )
    # ``a`` keeps only miou; ``b`` has no usable metric and leaves the mean.
    assert per_task == {"a": pytest.approx(10.0)}
    assert total == pytest.approx(10.0)


def test_nan_propagates() -> None:
    total, per_task = delta_t(
        {"a": {"miou": math.nan}, "b": {"l1": 0.5}}, {"a": {"miou": 20.0}, "b": {"l1": 1.0}}
    )
    assert math.isnan(per_task["a"])
    assert per_task["b"] == pytest.approx(50.0)
    assert math.isnan(total)


def test_no_shared_task_raises() -> None:
    with pytest.raises(ValueError, match=r"at least one task .* score tasks \['a'\]"):
        delta_t({"a": {"miou": 1.0}}, {"b": {"miou": 1.0}})
    with pytest.raises(ValueError, match="at least one task"):
        delta_t({"a": {"miou": 1.0}}, {"a": {"pixel_acc": 1.0}})


def test_unknown_metric_in_delta_t_raises() -> None:
    with pytest.raises(UnknownNameError, match="unknown metric 'f1_score'"):
        delta_t({"a": {"f1_score": 1.0}}, {"a": {"f1_score": 2.0}})


def test_module_imports_without_torch() -> None:
    code = "import sys, trials.metrics; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
