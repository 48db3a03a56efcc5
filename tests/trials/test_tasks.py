"""Task losses and split-exact metrics against hand-computed values (``trials.tasks``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trials import metrics as metric_table
from trials.registry import UnknownNameError
from trials.tasks import TASKS, MetricInfo, SegmentationMetrics, Task, build_task

STYLES = ("nyu", "taskonomy")
NUM_CLASSES = 4


def _one_hot_logits(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits ``(B, C, H, W)`` whose argmax is ``labels`` (ignore labels map to class 0)."""
    clean = torch.where(labels == 255, torch.zeros_like(labels), labels)
    return F.one_hot(clean, num_classes).permute(0, 3, 1, 2).float() * 5.0


def _random_batch(task: Task, batch: int = 2, size: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction/target pair following the data contract, with some invalid pixels."""
    gen = torch.Generator().manual_seed(0)
    shape = (batch, task.out_channels, size, size)
    prediction = torch.randn(shape, generator=gen)
    if task.name == "segment_semantic":
        target = torch.randint(0, task.out_channels, (batch, size, size), generator=gen)
        target[:, 0, 0] = 255
    elif task.name == "depth_zbuffer":
        target = torch.rand(shape, generator=gen) + 0.5
        target[:, :, 0, 0] = 0.0
        prediction = prediction.abs() + 0.1
    elif task.name == "normal":
        target = F.normalize(torch.randn(shape, generator=gen), dim=1)
        target[:, :, 0, 0] = 0.0
    else:
        target = torch.rand(shape, generator=gen)
    return prediction, target


def _assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


# ---------------------------------------------------------------- contract, all tasks


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", TASKS.names())
def test_contract_every_registered_task(name: str, style: str) -> None:
    task = build_task(name, style, NUM_CLASSES)
    assert isinstance(task, Task)
    assert task.name == name
    assert all(isinstance(info, MetricInfo) for info in task.metric_infos)
    for info in task.metric_infos:  # one source of truth for directions
        assert metric_table.METRICS[info.name] == info
    keys = [info.name for info in task.metric_infos]
    assert list(task.new_metrics().compute()) == keys  # before any update: all NaN
    assert all(math.isnan(v) for v in task.new_metrics().compute().values())

    prediction, target = _random_batch(task)
    metrics = task.new_metrics()
    metrics.update(prediction, target)
    values = metrics.compute()
    assert list(values) == keys
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", TASKS.names())
def test_two_batches_equal_one_batch_of_both(name: str, style: str) -> None:
    task = build_task(name, style, NUM_CLASSES)
    prediction, target = _random_batch(task, batch=3)
    whole = task.new_metrics()
    whole.update(prediction, target)
    split = task.new_metrics()
    split.update(prediction[:1], target[:1])
    split.update(prediction[1:], target[1:])
    _assert_same(split.compute(), whole.compute())


@pytest.mark.parametrize("name", TASKS.names())
def test_loss_is_a_differentiable_scalar(name: str) -> None:
    task = build_task(name, "nyu", NUM_CLASSES)
    prediction, target = _random_batch(task)
    prediction.requires_grad_(True)
    loss = task.loss(prediction, target)
    assert loss.dim() == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert prediction.grad is not None
    assert torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["segment_semantic", "depth_zbuffer", "normal"])
def test_loss_and_metrics_ignore_invalid_pixels(name: str) -> None:
    task = build_task(name, "nyu", NUM_CLASSES)
    prediction, target = _random_batch(task)  # pixel (0, 0) of every sample is invalid
    changed = prediction.clone()
    changed[:, :, 0, 0] = torch.tensor([7.0, -3.0, 2.0, 9.0])[: task.out_channels]
    assert torch.equal(task.loss(prediction, target), task.loss(changed, target))
    first, second = task.new_metrics(), task.new_metrics()
    first.update(prediction, target)
    second.update(changed, target)
    assert first.compute() == second.compute()

    changed.requires_grad_(True)
    task.loss(changed, target).backward()
    assert changed.grad is not None
    assert torch.all(changed.grad[:, :, 0, 0] == 0)


@pytest.mark.parametrize("name", ["segment_semantic", "depth_zbuffer", "normal"])
def test_nothing_valid_gives_zero_loss_and_nan_metrics(name: str) -> None:
    task = build_task(name, "nyu", NUM_CLASSES)
    prediction, target = _random_batch(task)
    target = torch.full_like(target, 255) if name == "segment_semantic" else target * 0
    prediction.requires_grad_(True)
    loss = task.loss(prediction, target)
    assert loss.item() == 0.0
    loss.backward()
    assert prediction.grad is not None
    assert torch.all(prediction.grad == 0)
    metrics = task.new_metrics()
    metrics.update(prediction.detach(), target)
    assert all(math.isnan(v) for v in metrics.compute().values())


# ---------------------------------------------------------------- segmentation


SEG_TARGET = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
SEG_PREDICTED = torch.tensor([[[0, 1, 1], [1, 1, 0]]])


def test_segmentation_hand_computed_miou_and_pixel_accuracy() -> None:
    # Confusion (rows true 0..3, columns predicted), the ignored pixel left out:
    #   [[1, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    # IoU: class 0 = 1 / (2 + 1 - 1) = 0.5; class 1 = 2 / (2 + 4 - 2) = 0.5;
    # class 2 = 0 / (1 + 0 - 0) = 0; class 3 never appears (union 0) and is left out.
    task = build_task("segment_semantic", "nyu", num_classes=4)
    metrics = task.new_metrics()
    assert isinstance(metrics, SegmentationMetrics)
    metrics.update(_one_hot_logits(SEG_PREDICTED, 4), SEG_TARGET)
    expected_confusion = torch.tensor([[1, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(metrics.confusion, expected_confusion)
    values = metrics.compute()
    assert values["miou"] == pytest.approx(100.0 / 3.0)
    assert values["pixel_acc"] == pytest.approx(60.0)  # 3 of 5 labelled pixels


def test_segmentation_taskonomy_cross_entropy() -> None:
    # Two classes, logits (log 3, 0) everywhere: p(class 0) = 3/4, p(class 1) = 1/4.
    target = torch.tensor([[[0, 1, 255]]])
    logits = torch.zeros(1, 2, 1, 3)
    logits[:, 0] = math.log(3.0)
    task = build_task("segment_semantic", "taskonomy", num_classes=2)
    metrics = task.new_metrics()
    metrics.update(logits, target)
    values = metrics.compute()
    expected = (math.log(4.0 / 3.0) + math.log(4.0)) / 2.0
    assert values["cross_entropy"] == pytest.approx(expected)
    # Everything predicted class 0: IoU class 0 = 1/2, class 1 = 0/1.
    assert values["miou"] == pytest.approx(25.0)
    assert task.loss(logits, target).item() == pytest.approx(expected)


def test_segmentation_loss_matches_cross_entropy_with_ignore() -> None:
    task = build_task("segment_semantic", "nyu", num_classes=3)
    logits = torch.randn(1, 3, 2, 3, generator=torch.Generator().manual_seed(1))
    expected = F.cross_entropy(logits, SEG_TARGET, ignore_index=255)
    assert task.loss(logits, SEG_TARGET).item() == pytest.approx(expected.item())


def test_segmentation_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"segment_semantic needs num_classes >= 1 .* got 0"):
        build_task("segment_semantic", "nyu", num_classes=0)
    task = build_task("segment_semantic", "nyu", num_classes=3)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2 or be 255 .* got \[3, 7\]"):
        task.loss(torch.zeros(1, 3, 1, 3), torch.tensor([[[0, 3, 7]]]))
    with pytest.raises(ValueError, match=r"prediction must have shape \(1, 3, 2, 3\)"):
        task.new_metrics().update(torch.zeros(1, 4, 2, 3), SEG_TARGET)
    with pytest.raises(ValueError, match=r"target must have shape \(B, H, W\)"):
        task.loss(torch.zeros(1, 3, 2, 3), SEG_TARGET[:, None])
    with pytest.raises(ValueError, match=r"integer labels but got torch\.float32"):
        task.loss(torch.zeros(1, 3, 2, 3), SEG_TARGET.float())


# ---------------------------------------------------------------- depth

# Four pixels, the last invalid (depth 0): errors 0.2, 1.0, 0.9; relative 0.1, 0.25, 0.9;
# ratios max(p/g, g/p) = 1.1, 4/3, 1.9.
DEPTH_TARGET = torch.tensor([2.0, 4.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
DEPTH_PREDICTION = torch.tensor([2.2, 3.0, 1.9, 7.0]).reshape(1, 1, 2, 2)


def test_depth_hand_computed_metrics() -> None:
    metrics = build_task("depth_zbuffer", "nyu").new_metrics()
    metrics.update(DEPTH_PREDICTION, DEPTH_TARGET)
    values = metrics.compute()
    assert values["abs_err"] == pytest.approx(2.1 / 3.0)
    assert values["rel_err"] == pytest.approx(1.25 / 3.0)
    assert values["delta_1.25"] == pytest.approx(100.0 / 3.0)  # only 1.1 < 1.25
    assert values["delta_1.25^2"] == pytest.approx(200.0 / 3.0)  # 4/3 < 1.5625, 1.9 is not
    assert values["delta_1.25^3"] == pytest.approx(100.0)  # 1.9 < 1.953125


def test_depth_taskonomy_and_loss() -> None:
    metrics = build_task("depth_zbuffer", "taskonomy").new_metrics()
    metrics.update(DEPTH_PREDICTION, DEPTH_TARGET)
    assert metrics.compute() == {"abs_err": pytest.approx(0.7)}
    loss = build_task("depth_zbuffer", "nyu").loss(DEPTH_PREDICTION, DEPTH_TARGET)
    assert loss.item() == pytest.approx(0.7)


def test_depth_non_positive_prediction_fails_every_delta() -> None:
    metrics = build_task("depth_zbuffer", "nyu").new_metrics()
    target = torch.tensor([2.0, 2.0]).reshape(1, 1, 1, 2)
    metrics.update(torch.tensor([-2.0, 0.0]).reshape(1, 1, 1, 2), target)
    values = metrics.compute()
    assert values["delta_1.25^3"] == 0.0
    assert values["abs_err"] == pytest.approx(3.0)  # (4 + 2) / 2


def test_depth_rejects_wrong_shapes() -> None:
    task = build_task("depth_zbuffer", "nyu")
    with pytest.raises(
        ValueError, match=r"depth_zbuffer prediction must have shape \(1, 1, 2, 2\)"
    ):
        task.loss(torch.zeros(1, 3, 2, 2), DEPTH_TARGET)
    with pytest.raises(ValueError, match=r"depth_zbuffer target must have shape \(B, 1, H, W\)"):
        task.new_metrics().update(DEPTH_PREDICTION[0], DEPTH_TARGET[0])


# ---------------------------------------------------------------- normals


def _normal_pixels(vectors: list[list[float]]) -> torch.Tensor:
    """``(1, 3, 1, N)`` from N 3-vectors."""
    return torch.tensor(vectors).T.reshape(1, 3, 1, len(vectors))


UP = [0.0, 0.0, 1.0]
# Angles to UP: 0, 20, 45, 90 degrees (unnormalised on purpose), then one invalid pixel.
NORMAL_PREDICTION = _normal_pixels(
    [
        [0.0, 0.0, 5.0],
        [math.sin(math.radians(20)), 0.0, math.cos(math.radians(20))],
        [2.0, 0.0, 2.0],
        [0.0, -3.0, 0.0],
        [1.0, 0.0, 0.0],
    ]
)
NORMAL_TARGET = _normal_pixels([UP, UP, UP, UP, [0.0, 0.0, 0.0]])
COSINES = [1.0, math.cos(math.radians(20)), math.sqrt(0.5), 0.0]


def test_normal_hand_computed_angles() -> None:
    metrics = build_task("normal", "nyu").new_metrics()
    metrics.update(NORMAL_PREDICTION, NORMAL_TARGET)
    values = metrics.compute()
    assert values["angle_mean"] == pytest.approx((0 + 20 + 45 + 90) / 4, abs=1e-4)
    assert values["angle_median"] == pytest.approx((20 + 45) / 2, abs=1e-4)
    assert values["within_11.25"] == pytest.approx(25.0)
    assert values["within_22.5"] == pytest.approx(50.0)
    assert values["within_30"] == pytest.approx(50.0)
    # A fifth valid angle (30.5 degrees) makes the count odd: the median is that angle.
    extra = _normal_pixels([[math.sin(math.radians(30.5)), 0.0, math.cos(math.radians(30.5))]])
    metrics.update(extra, _normal_pixels([UP]))
    values = metrics.compute()
    assert values["angle_median"] == pytest.approx(30.5, abs=1e-4)
    assert values["within_30"] == pytest.approx(40.0)


def test_normal_zero_angle_is_exact() -> None:
    metrics = build_task("normal", "nyu").new_metrics()
    tilted = F.normalize(torch.tensor([0.3, -0.4, 0.8]), dim=0).tolist()
    metrics.update(_normal_pixels([tilted]) * 3.0, _normal_pixels([tilted]))
    assert metrics.compute()["angle_mean"] == pytest.approx(0.0, abs=1e-5)


def test_normal_zero_prediction_counts_as_90_degrees() -> None:
    metrics = build_task("normal", "nyu").new_metrics()
    metrics.update(_normal_pixels([[0.0, 0.0, 0.0]]), _normal_pixels([UP]))
    assert metrics.compute()["angle_mean"] == pytest.approx(90.0)


def test_normal_taskonomy_cosine_and_loss() -> None:
    metrics = build_task("normal", "taskonomy").new_metrics()
    metrics.update(NORMAL_PREDICTION, NORMAL_TARGET)
    values = metrics.compute()
    assert values["cosine"] == pytest.approx(sum(COSINES) / 4, abs=1e-6)
    assert values["angle_mean"] == pytest.approx(38.75, abs=1e-4)
    loss = build_task("normal", "nyu").loss(NORMAL_PREDICTION, NORMAL_TARGET)
    assert loss.item() == pytest.approx(1.0 - sum(COSINES) / 4, abs=1e-6)


# ---------------------------------------------------------------- keypoints and edges


@pytest.mark.parametrize("name", ["keypoints2d", "edge_texture"])
def test_dense_l1_hand_computed(name: str) -> None:
    task = build_task(name, "taskonomy")
    target = torch.tensor([0.0, 0.5, 1.0, 0.25]).reshape(1, 1, 2, 2)
    prediction = torch.tensor([0.1, 0.5, 0.7, 0.25]).reshape(1, 1, 2, 2)
    assert task.loss(prediction, target).item() == pytest.approx(0.1)  # (0.1 + 0.3) / 4
    metrics = task.new_metrics()
    metrics.update(prediction, target)
    metrics.update(target[:, :, :1], target[:, :, :1])  # two more pixels, zero error
    assert metrics.compute() == {"l1": pytest.approx(0.4 / 6)}
    with pytest.raises(ValueError, match=rf"{name} prediction must have shape \(1, 1, 2, 2\)"):
        task.loss(prediction[:, :, :1], target)


# ---------------------------------------------------------------- registry and styles


def test_canonical_task_names_are_registered() -> None:
    assert TASKS.names() == [
        "depth_zbuffer",
        "edge_texture",
        "keypoints2d",
        "normal",
        "segment_semantic",
    ]
    out = {name: build_task(name, "nyu", 13).out_channels for name in TASKS.names()}
    assert out == {
        "depth_zbuffer": 1,
        "edge_texture": 1,
        "keypoints2d": 1,
        "normal": 3,
        "segment_semantic": 13,
    }


def test_unknown_task_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown task 'depth'; choose one of: .*normal"):
        build_task("depth")
    with pytest.raises(ValueError, match=r"did you mean 'normal'\?"):
        build_task("normals")


def test_unknown_style_is_rejected() -> None:
    with pytest.raises(
        ValueError, match="metric style must be 'nyu' or 'taskonomy' but got 'kitti'"
    ):
        build_task("normal", "kitti")
    with pytest.raises(ValueError, match=r"depth_zbuffer metric style .* got 'NYU'"):
        TASKS.get("depth_zbuffer")(style="NYU", num_classes=0)
