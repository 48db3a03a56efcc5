"""The ``attributes`` data set and the binary attribute task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trials.data import DATASETS, DatasetOptionError, attribute_groups, build_dataset
from trials.metrics import METRICS, adjusted_rand_index, delta_t, total_error
from trials.tasks import AttributeTask, build_task

SMALL = {"num_train": 40, "num_val": 12, "num_test": 12}


def test_registered_with_tasks_groups_and_style() -> None:
    assert "attributes" in DATASETS
    train = build_dataset("attributes", "train", **SMALL)
    assert train.metric_style == "attributes" and train.num_classes == 0
    assert len(train.tasks) == 9
    assert train.task_groups == attribute_groups(9, 3)
    assert [train.task_groups[t] for t in train.tasks] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    batch = train.get_batch(torch.arange(5))
    assert batch["image"].shape == (5, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert abs(float(batch["image"].mean())) < 1.0
    for task in train.tasks:
        assert batch[task].shape == (5, 1)
        assert set(batch[task].unique().tolist()) <= {0.0, 1.0}
    sample = train[3]
    torch.testing.assert_close(sample["image"], batch["image"][3])


def test_deterministic_and_splits_disjoint() -> None:
    first = build_dataset("attributes", "train", **SMALL)
    again = build_dataset("attributes", "train", **SMALL)
    for key, value in first.get_batch(torch.arange(40)).items():
        assert torch.equal(value, again.get_batch(torch.arange(40))[key])
    other_seed = build_dataset("attributes", "train", **SMALL, seed=1)
    assert not torch.equal(first[0]["image"], other_seed[0]["image"])
    factors = {
        split: build_dataset("attributes", split, **SMALL).factors
        for split in ("train", "val", "test")
    }
    rows = {split: {f.tobytes() for f in value} for split, value in factors.items()}
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]


def test_each_attribute_depends_on_its_group_only() -> None:
    data = build_dataset("attributes", "train", num_train=3000, num_val=4, num_test=4)
    labels = data.get_batch(torch.arange(3000))
    factors = data.factors.reshape(3000, -1)
    for task, group in data.task_groups.items():
        y = labels[task][:, 0].numpy()
        assert 0.3 < y.mean() < 0.7  # roughly balanced
        # a least-squares linear probe on the group's own factors nearly separates it (no label
        # noise), the other groups' factors carry no signal
        own = np.c_[factors[:, 3 * group : 3 * group + 3] - 0.5, np.ones(3000)]
        direction, *_ = np.linalg.lstsq(own, y - 0.5, rcond=None)
        assert ((own @ direction > 0) == (y > 0.5)).mean() > 0.9
        majority = max(y.mean(), 1 - y.mean())
        for other in {0, 1, 2} - {group}:
            foreign = np.c_[factors[:, 3 * other : 3 * other + 3] - 0.5, np.ones(3000)]
            weights, *_ = np.linalg.lstsq(foreign, y - 0.5, rcond=None)
            assert ((foreign @ weights > 0) == (y > 0.5)).mean() < majority + 0.05


def test_a_groups_tasks_are_thresholds_of_nearly_one_projection() -> None:
    data = build_dataset("attributes", "train", num_train=3000, num_val=4, num_test=4)
    labels = data.get_batch(torch.arange(3000))
    y = np.stack([labels[task][:, 0].numpy() for task in data.tasks], axis=1)
    correlation = np.corrcoef(y, rowvar=False)
    groups = np.array([data.task_groups[task] for task in data.tasks])
    same = groups[:, None] == groups[None, :]
    off_diagonal = ~np.eye(len(groups), dtype=bool)
    assert correlation[same & off_diagonal].min() > 0.4  # strong transfer inside a group
    assert np.abs(correlation[~same]).max() < 0.1  # none across groups
    # the thresholds step: the rate of positives falls from a group's first task to its last
    for group in set(groups):
        rates = y[:, groups == group].mean(axis=0)
        assert rates[0] > rates[1] > rates[2]


def test_options_groups_and_task_subsets() -> None:
    data = build_dataset(
        "attributes",
        "val",
        **SMALL,
        num_tasks=8,
        num_groups=4,
        resolution=24,
        tasks=["frame_1", "shape_0"],
    )
    assert data.tasks == ("shape_0", "frame_1")
    assert data.task_groups == {"shape_0": 0, "frame_1": 3}
    assert data[0]["image"].shape == (3, 24, 24)
    assert list(attribute_groups(7, 3).values()) == [0, 0, 0, 1, 1, 2, 2]
    noisy = build_dataset("attributes", "train", **SMALL, label_noise=0.3)
    clean = build_dataset("attributes", "train", **SMALL)
    differ = sum(
        int((noisy.get_batch(torch.arange(40))[t] != clean.get_batch(torch.arange(40))[t]).sum())
        for t in clean.tasks
    )
    assert differ > 40


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"num_task": 9},
            r"unknown data set 'attributes' option 'num_task'.*did you mean 'num_tasks'",
        ),
        ({"num_groups": 5}, "option 'num_groups' .*less than or equal to 4 but got 5"),
        ({"num_tasks": 2, "num_groups": 3}, r"num_tasks \(2\) must be at least num_groups \(3\)"),
        ({"tasks": ["shape_7"]}, r"unknown data set 'attributes' task 'shape_7'.*did you mean"),
        ({"tasks": []}, "needs at least one task"),
        ({"resolution": 8}, "option 'resolution' .*greater than or equal to 16 but got 8"),
    ],
)
def test_bad_options(options: dict[str, object], match: str) -> None:
    with pytest.raises(DatasetOptionError, match=match):
        build_dataset("attributes", "train", **options)


def test_attribute_task_loss_and_accuracy() -> None:
    task = build_task("Wearing_Hat", style="attributes")
    assert isinstance(task, AttributeTask) and task.name == "Wearing_Hat"
    assert task.out_channels == 1 and [m.name for m in task.metric_infos] == ["accuracy"]
    maps = torch.zeros(4, 1, 3, 3, requires_grad=True)
    with torch.no_grad():
        maps[:, 0] += torch.tensor([2.0, -1.0, 0.5, -3.0])[:, None, None]
    target = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    loss = task.loss(maps, target)
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target[:, 0])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    metrics = task.new_metrics()
    assert math.isnan(metrics.compute()["accuracy"])
    metrics.update(maps.detach(), target)
    metrics.update(torch.full((2, 1, 5, 5), -1.0), torch.tensor([0.0, 1.0]))
    assert metrics.compute() == {"accuracy": 100.0 * 4 / 6}
    with pytest.raises(ValueError, match="one 0/1 label per image"):
        task.loss(maps, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\) but got \(4, 2, 3, 3\)"):
        task.loss(torch.zeros(4, 2, 3, 3), target)


def test_scores_of_attribute_metrics() -> None:
    assert METRICS["accuracy"].higher_is_better
    scores = {"a": {"accuracy": 90.0}, "b": {"accuracy": 80.0}}
    reference = {"a": {"accuracy": 80.0}, "b": {"accuracy": 80.0}}
    assert math.isclose(delta_t(scores, reference)[0], 6.25)
    assert math.isclose(total_error(scores), 30.0)
    with pytest.raises(ValueError, match="needs an 'accuracy' metric for every task"):
        total_error({"a": {"accuracy": 90.0}, "b": {"miou": 1.0}})
    with pytest.raises(ValueError, match="none for any task"):
        total_error({})


def test_adjusted_rand_index() -> None:
    truth = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert adjusted_rand_index([5, 5, 5, 7, 7, 7, 1, 1, 1], truth) == 1.0
    assert math.isclose(adjusted_rand_index([0, 0, 0, 0, 0, 0, 2, 2, 2], truth), 0.5)
    assert adjusted_rand_index([0, 1, 2, 0, 1, 2, 0, 1, 2], truth) < 0
    assert adjusted_rand_index([0, 0, 0], [1, 1, 1]) == 1.0
    with pytest.raises(ValueError, match="equally long"):
        adjusted_rand_index([0, 1], [0])
